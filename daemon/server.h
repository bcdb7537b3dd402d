/*
 * The server: everything one running mmapd owns. It sets up the data directory and the
 * listening socket, accepts connections (a uv_poll_t on the listening socket and our own
 * accept4, never libuv's stream machinery), enforces max_clients, handles signals, and runs
 * the orderly shutdown: stop listening, hand the connections that can be over to the next
 * daemon through the service manager's fd store (fdconn.h), tell every other client, let
 * output drain for a moment,
 * let thread-pool work finish, free everything. Work for the thread pool goes through
 * server_job_start, which counts it, so that the shutdown waits for every job.
 */
#ifndef MMAPD_DAEMON_SERVER_H
#define MMAPD_DAEMON_SERVER_H

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
	uint64_t requests[SERVER_STAT_OPS_MAX];   /* by index in the op table (ops_name) */
	uint64_t errors[SERVER_STAT_ERRNO_MAX];   /* error replies by errno */
	uint64_t accepted;                        /* connections accepted */
	uint64_t refused;                         /* connections refused (limits, allow_connect) */
	uint64_t flushes;                         /* fdatasync calls that succeeded */
	uint64_t flush_failures;
	uint64_t bytes_flushed;                   /* the region's size at each successful flush */
};

struct conn;
struct dirindex;
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
	size_t nconns_unprivileged;/* of those, peers that are not exempt from budgets */
	struct htab budgets;       /* struct budget by uid (budget.c) */
	uint32_t self_uid;         /* the daemon's effective uid: exempt like root */
	uint64_t fd_limit;         /* RLIMIT_NOFILE's soft limit at start */
	uint64_t mem_half;         /* half the machine's memory, max_anonymous_bytes_all_users' 0 */
	uint64_t anon_bytes_users; /* anonymous bytes owned by uids not exempt, all together */
	uint64_t conn_serial;      /* numbers connections in the log */

	struct htab regions;       /* the region table, by name */
	struct region *all_regions;/* every region struct alive, in the table or not */
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
	uint64_t shrink_serial;    /* the last shrink id given out */
	struct resize *shrinks;    /* shrinks waiting for acknowledgements */
	uv_timer_t size_timer;     /* size_check_ms */
	bool size_timer_active;
	uv_timer_t sd_timer;       /* watchdog keep-alives and STATUS= for the service manager */
	bool sd_timer_active;
	uint64_t watchdog_usec;    /* $WATCHDOG_USEC, or 0 */
	char *sd_status;           /* the STATUS= last sent (malloc'd) */

	struct server_stats stats;

	bool stopping;
	bool finished;
	uint64_t start_ms;
};

struct sdlisten;

/*
 * Prepares the data directory (created if missing, stale temporary files removed), the
 * anonymous regions the service manager kept in its fd store (fdstore.c) and the listening
 * socket: the one the service manager passed (socket activation), else the socket at the
 * configured path (parent directory created if missing, a stale socket replaced, another
 * live daemon refused). Everything in passed is consumed, whatever the result. Logs the
 * reason of a failure. Returns 0 or -errno.
 */
int server_init(struct server *s, uv_loop_t *loop, const struct config *cfg,
                struct sdlisten *passed);

/* Starts accepting and watching signals. Returns 0 or a negative libuv/errno error. */
int server_start(struct server *s);

/* Begins the orderly shutdown (as on SIGTERM). Idempotent. */
void server_stop(struct server *s);

/* Called when a connection closed or a job finished: ends the shutdown when all is quiet. */
void server_check_finished(struct server *s);

/* Frees what the server still holds once the loop has stopped. Accepts a half-set-up server. */
void server_done(struct server *s);

/*
 * Tells the service manager (if any) the daemon's state in STATUS=, when it changed since
 * the last report or when force is set (then with READY=1, ending a reload).
 */
void server_sd_report(struct server *s, bool force);

/* Milliseconds since the server started. */
uint64_t server_uptime_ms(const struct server *s);
/* The loop's clock in milliseconds (monotonic) and the wall clock (Unix epoch ms). */
/*
 * Whether a peer of uid may take one more connection: max_clients (less reserved_clients for
 * users that are not exempt), max_clients_per_uid and max_fds_per_uid. Returns 0, or a
 * positive errno (EUSERS, EMFILE) with why (size len) filled in.
 */
int server_admit_uid(const struct server *s, uid_t uid, char *why, size_t len);
uint64_t server_now_ms(void);
uint64_t server_epoch_ms(void);

/* A job on libuv's thread pool; embed it first in the job's own struct. */
struct server_job {
	uv_work_t work;
	struct server *srv;
	void (*run)(struct server_job *job);    /* on a pool thread: touches only the job */
	void (*done)(struct server_job *job);   /* on the loop afterwards */
};

/*
 * Queues job: run on the thread pool, then done on the loop (and the shutdown waits for it).
 * Returns 0, or a negative libuv error (done is then never called).
 */
int server_job_start(struct server *s, struct server_job *job, void (*run)(struct server_job *),
                     void (*done)(struct server_job *));

#endif
