/* SPDX-License-Identifier: MIT */
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
 * connection keeps its grants by handle and, per region, a holder counting them; the region
 * lists its holders, so that events reach every connection holding it once.
 *
 * A file region also stays in the table while anything of the coordination protocol needs
 * it (locks held or waited for, subscriptions, a resize, flushing). Once nothing does
 * (region_check_idle) it stays as a lookup cache, so that the next open, lock or change
 * report of it does not go to the disk again: at most REGION_IDLE_MAX of them, each for
 * REGION_IDLE_MS unused, the oldest given up first when max_regions would refuse a region or
 * descriptors run short; and trusted only while the data directory's inotify watch saw no
 * change of its name since its file was looked up (dirindex_unchanged; region_lookup drops a
 * stale one). Its generation and change seq live as long as it is in the table;
 * its policy and poison are also kept in its metadata (meta.c), which outlives it. A region
 * that is deleted is "retired": waiters are cancelled, subscribers and holders told, and
 * what it still holds (grants, held locks) lives on until released.
 */
#ifndef MMAPD_DAEMON_REGION_H
#define MMAPD_DAEMON_REGION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <cjson/cJSON.h>

#include "access.h"
#include "budget.h"
#include "flush.h"
#include "fsdir.h"
#include "htab.h"
#include "lock.h"
#include "memfd.h"
#include "resize.h"
#include "state.h"

struct conn;
struct control;
struct sub;
struct xwatch;

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

/* How many grants one connection holds on one region. */
struct holder {
	struct hnode node;            /* in conn->holders, by region */
	struct holder *rprev, *rnext; /* region->holders */
	struct conn *conn;
	struct region *region;
	uint64_t count;
};

struct region {
	struct hnode node;            /* in srv->regions while in_table */
	struct server *srv;
	struct region *prev, *next;   /* srv->all_regions */
	unsigned refs;
	bool in_table;
	bool anonymous;
	bool rdonly;                  /* the daemon could only open it O_RDONLY */
	bool retired;                 /* deleted: the name is no longer this region's */
	bool exec;                    /* anonymous: created executable (x bits may be set) */
	/* When the last grant goes (lifetime.h): deleted, or truncated to final_size. */
	bool temporary;
	bool has_final_size;
	uint64_t final_size;
	enum memfd_huge huge;         /* anonymous: its huge pages (memfd.h) */
	enum region_state state;
	int fd;                       /* the daemon's one descriptor, or -1 */
	uint64_t size;                /* the size the daemon made or last accepted (resize.c) */
	bool size_refused;            /* a size above max_region_size was seen and logged */
	uint64_t generation;          /* 1, +1 per size change */
	uint64_t size_warned_ms;      /* resize.c: the last warning of a size change it did
	                                 not make (state_now_ms), 0: none yet */
	uint64_t size_unwarned;       /* such changes since, not logged */
	uint64_t seq;                 /* the last change announced (notify.c) */
	uint64_t grants;              /* open grants, all connections */
	uint64_t clients;             /* connections holding at least one */
	struct access acc;            /* owner and mode (access.h); in the metadata of file regions */
	struct budget *budget;        /* anonymous: its owner's budget, referenced, or NULL */
	uint64_t charged;             /* anonymous: the bytes charged to it */
	struct holder *holders;
	struct lock_queue locks;      /* lock.c */
	struct control *ctl;          /* its control page, or NULL (control.h) */
	struct sub *subs;             /* notify.c */
	uint64_t nsubs;
	uint64_t npage_subs;          /* of them, page subscriptions (notify_subscribe_page) */
	uint64_t next_tag;            /* notify.c: the tag a page subscription may get next */
	struct xwatch *xwatch;        /* its external watch, or NULL (extwatch.h) */
	struct resize_queue resizes;  /* resize.c */
	struct flush_state flush;     /* flush.c */
	struct region_waiter *wait_head, *wait_tail;
	struct adopt *adopt;          /* a file a client handed over (adopt.h), or NULL */
	/* The lookup cache (file regions): see region_check_idle. */
	bool idle;                    /* on srv's idle list */
	struct region *iprev, *inext; /* srv->idle_head list */
	uint64_t idle_since_ms;
	uint64_t seen;                /* dirindex epoch when its file was looked up (dirindex.h) */
	char name[];
};

struct grant {
	struct hnode node;            /* in conn->grants, by handle */
	uint64_t handle;
	struct conn *conn;
	struct region *region;        /* referenced */
	enum region_mode mode;
	uint64_t size;                /* the region's size when granted (max_bytes_granted_per_client) */
};

/*
 * Makes a region struct (one reference, not in the table, fd -1, generation 1, policy,
 * poison and owner from its metadata). NULL on ENOMEM.
 */
struct region *region_new(struct server *srv, const char *name, bool anonymous,
                          enum region_state state);
void region_ref(struct region *r);
/* Drops a reference; the last one closes the descriptor and frees the struct. */
void region_unref(struct region *r);

/*
 * The region the table holds under name, or NULL. An idle one whose name changed in the
 * directory since its file was looked up (renamed, replaced, deleted, chmod'ed: inotify's
 * queue is read first) leaves the table then, and NULL is returned: the caller looks the
 * name up on disk.
 */
struct region *region_lookup(struct server *srv, const char *name);
/*
 * Puts r in the table (taking a reference). Returns 0, -EAGAIN when max_regions regions are
 * tracked already (unless force), -EEXIST if the name is taken, or -ENOMEM.
 */
int region_table_add(struct region *r, bool force);
/* Takes r out of the table and drops the table's reference. No-op when not in it. */
void region_table_remove(struct region *r);
/*
 * Gives r, in the table, the name to (a valid region name nobody in the table has): it
 * stays the same struct, so its grants, holders, locks, subscriptions, resizes, flushes and
 * control page follow it. Returns 0, or -ENOMEM (r is then out of the table).
 */
int region_rename(struct region *r, const char *to);

/*
 * Opens the existing file region name (pathfd: its O_PATH descriptor, consumed; st: its
 * stat), read-write if the daemon can, takes the file over (owned by the daemon's user, mode
 * FSDIR_FILE_MODE, the access its mode gave recorded in its metadata; logged) and puts it in
 * the table. Returns 0 with *ret_region (referenced), -EAGAIN (max_regions), -EFBIG (the
 * file is larger than max_region_size), -EPERM (the daemon may not take the file over), or
 * -errno of the open.
 */
int region_open_file(struct server *srv, const char *name, int pathfd, const struct stat *st,
                     struct region **ret_region);

/*
 * Keeps a file region that nothing holds any more (no grant, lock, subscription, resize or
 * flushing) as an idle one of the lookup cache (above). Call it whenever one of those ends.
 */
void region_check_idle(struct region *r);
/* Gives every idle region up (descriptors run short). Returns how many were idle. */
size_t region_idle_drop(struct server *srv);

/*
 * The region was deleted by connection by (it is out of the table): cancels lock waiters and
 * resizes, tells the other grant holders and subscribers ("deleted"), drops subscriptions.
 */
void region_retire(struct region *r, const struct conn *by);

/*
 * Anonymous regions are charged to their owner's budget (budget.h): one region, one
 * descriptor, and their size. region_budget_attach charges r to b (referenced from now on)
 * at size bytes; unless force it refuses past b's limits with -EAGAIN and *ret_item (nothing
 * charged). region_budget_resize moves the bytes charged to size, whatever the limit (check
 * with budget_fits first where growth may be refused). region_budget_move charges r to the
 * budget of uid instead (chown). Returns 0 or -ENOMEM. What r was charged is given back
 * when it is freed.
 */
int region_budget_attach(struct region *r, struct budget *b, uint64_t size, bool force,
                         enum budget_item *ret_item);
void region_budget_resize(struct region *r, uint64_t size);
int region_budget_move(struct region *r, uint32_t uid);

/* A busy region's creation succeeded: it owns fd (O_RDWR) from now on. */
void region_set_ready(struct region *r, int fd, uint64_t size);

/*
 * The region's current size: fstat of its descriptor, which a client holding a read-write
 * grant may have resized. A size above max_region_size that the daemon did not accept is
 * never adopted: r->size is returned, and a file region is truncated back to it (logged at
 * warn; an anonymous region, sealed against shrinking, is logged once).
 */
uint64_t region_size(struct region *r);

/*
 * region_size into *ret_size, also keeping the fstat it made in *ret_st for
 * region_to_json_sized, so that a grant costs one fstat, not two. Returns whether *ret_st
 * holds one (false: no descriptor, or the fstat failed).
 */
bool region_size_stat(struct region *r, uint64_t *ret_size, struct stat *ret_st);

/*
 * The region object of docs/protocol.md and docs/coordination.md; region_to_json_sized with
 * a size the caller just read and the fstat it read it with (region_size_stat), whose times
 * are the object's (NULL: no times). NULL on ENOMEM.
 */
cJSON *region_to_json(struct region *r);
cJSON *region_to_json_sized(const struct region *r, uint64_t size, const struct stat *st);

/*
 * What an anonymous region's memfd cannot tell, for the fd store's state: adds "exec" and
 * "huge" to entry (false on ENOMEM); and reads them back into r (fd set), where a hugetlb
 * memfd is recognised from the descriptor itself, and a missing or bad field or a memfd
 * sealed non-executable means no exec.
 */
bool region_anon_to_json(const struct region *r, cJSON *entry);
void region_anon_from_json(struct region *r, const cJSON *entry);
/*
 * The owner and mode of file region name, whose stat is st: its metadata's, or for a file
 * made without mmapd the file's own owner and permission bits.
 */
void region_file_access(struct server *srv, const char *name, const struct stat *st,
                        struct access *ret);
/* The region object of file region name, which the daemon does not hold. NULL on ENOMEM. */
cJSON *region_file_json(struct server *srv, const char *name, const struct stat *st);

/*
 * Queues request req (consumed) with id from c behind the busy region r: it runs again,
 * through ops_run(), once r's work has ended. Returns 0 or -ENOMEM (req is then freed).
 */
int region_defer(struct region *r, struct conn *c, uint64_t id, cJSON *req);
/* Runs every request waiting on r again, in arrival order (r has just stopped being busy). */
void region_wake(struct region *r);

/*
 * Grants: see above. grant_new counts the grant on its region and connection; grant_new_sized
 * does it for a caller that just read the region's size (region_size).
 */
int grant_new(struct conn *c, struct region *r, enum region_mode mode, struct grant **ret_grant);
int grant_new_sized(struct conn *c, struct region *r, enum region_mode mode, uint64_t size,
                    struct grant **ret_grant);
struct grant *grant_find(struct conn *c, uint64_t handle);
/* True if c holds a grant on r. */
bool region_held_by(const struct region *r, const struct conn *c);
/* Releases the grant; a file region left without grants leaves the table. */
void grant_free(struct grant *g);
/* Releases every grant of c. */
void grant_free_all(struct conn *c);

/*
 * The region table's hook for the modules that hang work off a region (locks, resizes,
 * flushes, notifications), as conn_listener is the connection's: each has a listener in the
 * server's list (state.h, region_listeners, wired by server_init), so region.c names none of
 * them. busy: whether work under way keeps the region in the table; retire: the region left
 * the table (by: the connection that deleted it, or NULL); released: see below (lifetime.h).
 * Any may be NULL.
 */
struct region_listener {
	bool (*busy)(const struct region *r);
	void (*retire)(struct region *r, const struct conn *by);
	/* released: r (in the table, ready) has no grant left; returns true if it left the table. */
	bool (*released)(struct region *r);
};

/* Whether a region listener has work under way on r. */
bool region_busy(const struct region *r);

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
	struct state_job job;
	enum region_job_kind kind;
	struct region *region;        /* referenced */
	struct region *old;           /* unlink: the region the name had, or NULL; referenced */
	int dir_fd;
	uint64_t size;
	bool sparse;
	unsigned memfd_flags;         /* anonymous creation: MEMFD_EXEC, MEMFD_HUGE */
	struct policy policy;         /* creation: the region's flush policy */
	char tmpname[FSDIR_TMP_NAME_MAX];
	/* Results, read by the completion. */
	int result;                   /* descriptor, 0, or -errno */
	bool fell_back;               /* fallocate unsupported: created with ftruncate */
	enum memfd_huge huge;         /* anonymous creation: the huge pages it got */
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
