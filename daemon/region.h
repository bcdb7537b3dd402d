/*
 * Regions, grants and the work done for them on the thread pool.
 *
 * The region table maps a name to the region the daemon tracks: every anonymous region,
 * every file region that has at least one grant (the daemon then holds ONE descriptor of
 * it), and "busy" placeholders for names being created or unlinked on the thread pool.
 * Requests that name a busy region wait in its queue and are run again, in order, when the
 * work ends. A region removed from the table (deleted, or its last grant closed) lives on
 * while grants or jobs still reference it; its name is free at once.
 *
 * A grant is one descriptor handed to one connection: {handle, conn, region, mode}. The
 * connection keeps its grants by handle and, per region, how many it holds, so the region
 * can count its distinct clients.
 */
#ifndef MMAPD_DAEMON_REGION_H
#define MMAPD_DAEMON_REGION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <cjson/cJSON.h>

#include "fsdir.h"
#include "htab.h"

struct conn;
struct server;

enum region_mode {
	REGION_MODE_RO,
	REGION_MODE_RW,
	REGION_MODE_COW,
};

enum region_state {
	REGION_READY,   /* has its descriptor */
	REGION_BUSY,    /* being created or unlinked: requests naming it wait */
};

struct region_waiter;

struct region {
	struct hnode node;            /* in srv->regions while in_table */
	struct server *srv;
	struct region *prev, *next;   /* srv->all_regions */
	unsigned refs;
	bool in_table;
	bool anonymous;
	bool rdonly;                  /* the daemon could only open it O_RDONLY */
	enum region_state state;
	int fd;                       /* the daemon's one descriptor, or -1 */
	uint64_t size;                /* size when made or opened; see region_size() */
	uint64_t grants;              /* open grants, all connections */
	uint64_t clients;             /* connections holding at least one */
	struct region_waiter *wait_head, *wait_tail;
	char name[];
};

struct grant {
	struct hnode node;            /* in conn->grants, by handle */
	uint64_t handle;
	struct conn *conn;
	struct region *region;        /* referenced */
	enum region_mode mode;
};

/* Makes a region struct (one reference, not in the table, fd -1). NULL on ENOMEM. */
struct region *region_new(struct server *srv, const char *name, bool anonymous,
                          enum region_state state);
void region_ref(struct region *r);
/* Drops a reference; the last one closes the descriptor and frees the struct. */
void region_unref(struct region *r);

/* The region the table holds under name, or NULL. */
struct region *region_lookup(struct server *srv, const char *name);
/*
 * Puts r in the table (taking a reference). Returns 0, -EAGAIN when max_regions regions are
 * tracked already (unless force), -EEXIST if the name is taken, or -ENOMEM.
 */
int region_table_add(struct region *r, bool force);
/* Takes r out of the table and drops the table's reference. No-op when not in it. */
void region_table_remove(struct region *r);

/* A busy region's creation succeeded: it owns fd (O_RDWR) from now on. */
void region_set_ready(struct region *r, int fd, uint64_t size);

/* The region's current size (fstat of its descriptor, which a client may have resized). */
uint64_t region_size(struct region *r);

/* {"name", "size", "anonymous", "grants", "clients"} of r. NULL on ENOMEM. */
cJSON *region_to_json(struct region *r);

/*
 * Queues request req (consumed) with id from c behind the busy region r: it runs again,
 * through ops_run(), once r's work has ended. Returns 0 or -ENOMEM (req is then freed).
 */
int region_defer(struct region *r, struct conn *c, uint64_t id, cJSON *req);
/* Runs every request waiting on r again, in arrival order (r has just stopped being busy). */
void region_wake(struct region *r);

/* Grants: see above. grant_new counts the grant on its region and connection. */
int grant_new(struct conn *c, struct region *r, enum region_mode mode, struct grant **ret_grant);
struct grant *grant_find(struct conn *c, uint64_t handle);
/* Releases the grant; a file region left without grants leaves the table. */
void grant_free(struct grant *g);
/* Releases every grant of c. */
void grant_free_all(struct conn *c);

/* Mode names on the wire. */
const char *region_mode_name(enum region_mode mode);
int region_mode_parse(const char *s);

/* A job on libuv's thread pool for one busy region. */
enum region_job_kind {
	REGION_JOB_CREATE_FILE,
	REGION_JOB_CREATE_ANONYMOUS,
	REGION_JOB_UNLINK,
};

struct region_job {
	uv_work_t work;
	struct server *srv;
	enum region_job_kind kind;
	struct region *region;        /* referenced */
	int dir_fd;
	uint64_t size;
	bool sparse;
	char tmpname[FSDIR_TMP_NAME_MAX];
	/* Results, read by the completion. */
	int result;                   /* descriptor, 0, or -errno */
	bool fell_back;               /* fallocate unsupported: created with ftruncate */
	/* The request that asked, answered by the completion. */
	struct conn *conn;            /* referenced; its pending count covers this job */
	uint64_t id;
	cJSON *req;                   /* owned */
	void (*done)(struct region_job *job);
};

/*
 * Makes a job for region r, requested by c with id and req (consumed). The caller sets the
 * job's parameters and done callback, then calls region_job_start. NULL on ENOMEM (req freed).
 */
struct region_job *region_job_new(struct region *r, enum region_job_kind kind, struct conn *c,
                                  uint64_t id, cJSON *req);
/* Queues the job; done runs on the loop afterwards and must call region_job_free. */
int region_job_start(struct region_job *job);
void region_job_free(struct region_job *job);

#endif
