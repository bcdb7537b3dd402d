/* SPDX-License-Identifier: MIT */
/*
 * The daemon's shared state: struct server, the one object every layer is handed, as data
 * (its tables, counters and limits), with the two services every layer needs from it, the
 * clocks and thread-pool jobs. It sits in the base layer so that a domain module can read
 * its table or count a stat without depending on the server (server.h), which sets the
 * state up, accepts connections and runs the shutdown. Nothing here calls up: the end of a
 * job reports through the check_finished hook the server sets.
 */
#ifndef MMAPD_DAEMON_STATE_H
#define MMAPD_DAEMON_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config.h"
#include "htab.h"

#define SERVER_STAT_OPS_MAX   48    /* a request counter per op, and one for unknown ops */
#define SERVER_STAT_ERRNO_MAX 160   /* error replies counted per errno below this */

/* Counters of the stats op, from the start of the daemon. */
struct server_stats {
	uint64_t requests[SERVER_STAT_OPS_MAX];   /* by index in the op table (OPS_TABLE) */
	uint64_t errors[SERVER_STAT_ERRNO_MAX];   /* error replies by errno */
	uint64_t accepted;                        /* connections accepted */
	uint64_t refused;                         /* connections refused (limits, allow_connect) */
	uint64_t flushes;                         /* fdatasyncs and range flushes that succeeded */
	uint64_t flush_failures;
	uint64_t bytes_flushed;                   /* the region's size (a range: its length) at
	                                             each successful flush */
};

struct cJSON;
struct conn;
struct conn_listener;
struct region_listener;
struct dirindex;
struct extwatch;
struct meta_writer;
struct region;
struct resize;

struct server {
	uv_loop_t *loop;
	const struct config *cfg;
	const struct limits *limits;
	/*
	 * Called on SIGHUP to read the configuration again and apply what may change (set by
	 * main; NULL: reloading is not possible).
	 */
	void (*reload)(struct server *s, void *arg);
	void *reload_arg;

	int listen_fd;
	uv_poll_t listen_poll;
	bool listen_active;        /* listen_poll initialised and not yet closed */
	int spare_fd;              /* /dev/null, given up to accept-and-close on EMFILE */
	dev_t sock_dev;            /* the socket file we bound, so we unlink only our own */
	ino_t sock_ino;
	bool activated;            /* the listening socket came from the service manager */
	int dir_fd;                /* the data directory */
	struct dirindex *dirindex; /* its region names, for list and status (dirindex.h) */

	uv_signal_t sig_term, sig_int, sig_hup;
	bool signals_active;

	struct conn *conns;        /* every connection not yet closed */
	size_t nconns;
	/* Connections whose buffered requests wait for their next turn (conn.c), and the idle
	 * handle that gives each one turn per loop iteration while any waits. */
	struct conn *turns_head, *turns_tail;
	uv_idle_t turns_idle;
	bool turns_init;           /* turns_idle initialised and not yet closed */
	size_t nconns_unprivileged;/* of those, peers that are not exempt from budgets */
	struct htab budgets;       /* struct budget by uid (budget.c) */
	uint32_t self_uid;         /* the daemon's effective uid: exempt like root */
	uint64_t fd_limit;         /* RLIMIT_NOFILE's soft limit at start */
	uint64_t mem_half;         /* half the machine's memory, max_anonymous_bytes_all_users' 0 */
	uint64_t anon_bytes_users; /* anonymous bytes owned by uids not exempt, all together */
	uint64_t conn_serial;      /* numbers connections in the log */

	struct htab regions;       /* the region table, by name */
	struct htab adopted;       /* adopted regions in the table, by inode (adopt.h) */
	struct region *all_regions;/* every region struct alive, in the table or not */
	/* File regions nobody holds, kept in the table as a lookup cache (region.c), oldest
	 * idle first, and the timer that drops those idle too long. */
	struct region *idle_head, *idle_tail;
	size_t nidle;
	uv_timer_t *idle_timer;
	size_t nanonymous;         /* anonymous regions in the table */
	bool fdstore;              /* anonymous regions are kept in the fd store (fdstore.c) */
	struct cJSON *handover;    /* connections handed over at stop (fdconn.c), or NULL */
	uint64_t ngrants;          /* open grants over all connections */

	size_t work_pending;       /* thread-pool jobs not yet completed */
	unsigned long tmp_counter; /* numbers temporary files */

	struct htab meta;          /* struct meta by name (meta.c) */
	int meta_fd;               /* <data-dir>/.mmapd/meta */
	struct meta_writer *meta_writer;

	uint64_t lock_serial;      /* the last lock id given out */
	uint64_t nlocks;           /* locks held, all connections */
	uint64_t nlock_waiters;    /* locks waited for */
	uint64_t wait_mark;        /* marks connections visited by a deadlock search */
	uint64_t nsubscriptions;
	struct extwatch *extwatch; /* files watched for changes made outside mmapd (extwatch.h) */
	uint64_t shrink_serial;    /* the last shrink id given out */
	struct resize *shrinks;    /* shrinks waiting for acknowledgements */
	uv_timer_t size_timer;     /* size_check_ms */
	bool size_timer_active;
	uv_timer_t sd_timer;       /* watchdog keep-alives and STATUS= for the service manager */
	bool sd_timer_active;
	uint64_t watchdog_usec;    /* $WATCHDOG_USEC, or 0 */
	char *sd_status;           /* the STATUS= last sent (malloc'd) */

	struct server_stats stats;

	/*
	 * What the lower layers call up through, so that none of them names a module above it
	 * (STYLE.md, "Seams"); server_init wires them. The transport hands each frame to the
	 * dispatcher (ops_handle_frame); a region's waiters run again, trimmed while they wait,
	 * through the dispatcher's continuations (ops_run, ops_request_trim); the fd store gives
	 * stored connections to fdconn.c (fdconn_adopt). The listener lists (NULL-terminated)
	 * are the teardown hooks of conn.h and region.h.
	 */
	void (*handle_frame)(struct conn *c, const char *payload, size_t len);
	void (*rerun)(struct conn *c, uint64_t id, struct cJSON *req);
	struct cJSON *(*request_trim)(struct cJSON *req);
	void (*adopt_conn)(struct server *s, const struct cJSON *handover, const char *fdname,
	                   int fd);
	const struct conn_listener *const *conn_listeners;
	const struct region_listener *const *region_listeners;

	/*
	 * Called when a connection closed or a job finished (state_check_finished), to end the
	 * shutdown when all is quiet; set by server_init (NULL: nothing to do).
	 */
	void (*check_finished)(struct server *s);

	bool stopping;
	bool finished;
	uint64_t start_ms;
};

/* Milliseconds since the server started. */
uint64_t state_uptime_ms(const struct server *s);
/* The loop's clock in milliseconds (monotonic) and the wall clock (Unix epoch ms). */
uint64_t state_now_ms(void);
uint64_t state_epoch_ms(void);

/* A job on libuv's thread pool; embed it first in the job's own struct. */
struct state_job {
	uv_work_t work;
	struct server *srv;
	void (*run)(struct state_job *job);    /* on a pool thread: touches only the job */
	void (*done)(struct state_job *job);   /* on the loop afterwards */
};

/*
 * Queues job: run on the thread pool, then done on the loop (and the shutdown waits for it).
 * Returns 0, or a negative libuv error (done is then never called).
 */
int state_job_start(struct server *s, struct state_job *job, void (*run)(struct state_job *),
                     void (*done)(struct state_job *));

/* Runs s->check_finished, if set: a connection closed or a job finished. */
void state_check_finished(struct server *s);

#endif
