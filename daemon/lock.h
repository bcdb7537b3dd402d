/*
 * The lock manager: advisory byte-range locks held by connections and kept in the daemon
 * (docs/coordination.md, "Locks"). Never fcntl or flock on passed descriptors: those would
 * be shared with the daemon's own and outlive the holder.
 *
 * Each region has a list of held locks and a queue of waiters in arrival order. A waiter is
 * granted when it conflicts with nothing ahead of it (no held lock and no earlier waiter),
 * so shared lockers cannot starve an exclusive one. Before a request is queued, the
 * wait-for graph between connections (kept up to date as waiters join and locks go) is
 * searched: a request that would close a cycle through two or more connections fails with
 * EDEADLK. Queuing or dropping a lock costs one pass over its region's locks plus, for a
 * waiter, a search over connections; a closing connection costs one pass per region. A waiter may carry a timeout; a
 * connection that goes away releases its locks and drops its waits, and the waiters behind
 * them are granted at once.
 *
 * A region with a control page (control.h) has its whole-region locks taken and dropped in
 * shared memory by its fast-path clients while the daemon has no lock or waiter of its own
 * there. Any request that needs the daemon (a protocol client's lock, a fast client that
 * waited too long, the locks op) first takes the page over: each holder found in the page
 * becomes a held lock of its connection here (a "shadow", whose id is the one the holder
 * wrote in its slot), and everything goes through the daemon until only shadows are left,
 * when the page gets its locks back.
 */
#ifndef MMAPD_DAEMON_LOCK_H
#define MMAPD_DAEMON_LOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "htab.h"

struct conn;
struct lock;
struct region;
struct server;

/* A region's locks (in struct region). */
struct lock_queue {
	struct lock *held_head, *held_tail;   /* in the order they were granted */
	struct lock *wait_head, *wait_tail;   /* in arrival order */
	uint64_t nheld, nwaiting;
	uint64_t nheld_exclusive;             /* of nheld: a shared waiter need not scan if 0 */
	uint64_t nshadow;                     /* of nheld: taken over from the control page */
	struct htab edges;                    /* struct lock_edge by connection pair (lock.c) */
	struct region *release_next;          /* regions a closing connection had locks in */
	bool release_pending;
};

struct lock_args {
	uint64_t offset;
	uint64_t length;              /* 0: to the end of every possible size */
	bool exclusive;
	bool wait;
	bool has_timeout;
	uint64_t timeout_ms;
};

/*
 * The lock op: grants a lock on r to c, now or once it can, and answers request id
 * ({"lock", "waited_ms"} or an error) itself.
 */
void lock_acquire(struct conn *c, uint64_t id, struct region *r, const struct lock_args *a);

/*
 * The unlock op: releases c's held lock lock_id and answers request id (EBADF when c holds
 * no such lock); then tells r's subscribers if someone waited for it, and grants waiters.
 */
void lock_release(struct conn *c, uint64_t id, uint64_t lock_id);

/* c is going away: releases its locks and drops its waits (nothing is answered to c). */
void lock_conn_release(struct conn *c);

/*
 * Handing c over to the next daemon (fdconn.h). lock_conn_cancel_waits answers each lock c
 * waits for with ECANCELED (message: why) and drops it. lock_conn_held_json: c's held locks
 * as an array of lock objects (as in the locks op, plus "anonymous"), NULL on ENOMEM.
 * lock_adopt makes c hold lock id on r again, answering nothing, held since since_ms (Unix
 * epoch ms, 0: now): 0, -EINVAL (id 0 or taken, bad range), -EBUSY (it conflicts with a lock
 * held already) or -ENOMEM.
 */
void lock_conn_cancel_waits(struct conn *c, const char *why);
/*
 * Before the handover: the daemon takes over the locks of every control page for good, so that
 * lock_conn_held_json lists the fast path's holders too (with the ids they know them by).
 * Returns 0, or the first error (-EAGAIN, -ENOMEM) after trying every region.
 */
int lock_manage_all(struct server *srv);
cJSON *lock_conn_held_json(const struct conn *c);
int lock_adopt(struct conn *c, struct region *r, uint64_t id, uint64_t offset, uint64_t length,
               bool exclusive, uint64_t since_ms);

/*
 * c was just given a slot in r's control page: if r has locks or waiters, the daemon keeps
 * managing them (the page says so before c can use it). Returns 0, -EAGAIN or -ENOMEM.
 */
int lock_control_attached(struct region *r);

/* r was deleted: every waiter gets ECANCELED. Held locks stay until released. */
void lock_region_retire(struct region *r);

/*
 * Calls cb with the object of each lock of r ({"region", "lock", "state", ...}; consumed by
 * cb), holders first, then waiters in queue order. Stops at the first negative return of cb
 * and returns it; returns 0 otherwise, or -ENOMEM.
 */
int lock_region_list(struct region *r, int (*cb)(void *userdata, cJSON *obj), void *userdata);

#endif
