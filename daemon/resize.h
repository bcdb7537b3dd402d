/* SPDX-License-Identifier: MIT */
/*
 * The resize coordinator (docs/coordination.md, "Resize"): growing a region on the thread
 * pool, the two-phase shrink, one resize at a time per region, and the periodic check for
 * size changes the daemon did not make.
 *
 * A shrink asks every connection holding a grant ("shrinking") and waits until each has
 * acknowledged (shrink-ack) or gone away; a grant opened meanwhile is asked too. Then the
 * file is truncated on the thread pool, opens of the region wait for that, and "resized"
 * goes to the holders. If an acknowledgement is missing after shrink_timeout_ms the shrink
 * fails with ETIMEDOUT and everyone asked gets "shrink-cancelled".
 */
#ifndef MMAPD_DAEMON_RESIZE_H
#define MMAPD_DAEMON_RESIZE_H

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct region;
struct resize;
struct server;

/* A region's resizes (in struct region): the one in progress, then the queued ones. */
struct resize_queue {
	struct resize *active;
	struct resize *head, *tail;
	bool starting;                /* resize_next is running */
};

/*
 * The resize op: resizes r to size (sparse: no block reservation; grow_only: a size below the
 * region's when the resize's turn comes leaves it as it is) and answers id itself.
 */
void resize_request(struct conn *c, uint64_t id, struct region *r, uint64_t size, bool sparse,
                    bool grow_only);

/* The shrink-ack op. Returns 0, or -ESRCH when no such shrink waits for c. */
int resize_ack(struct conn *c, uint64_t shrink);

/*
 * The size a grant made now may map, size being r's size (region_size, just read): while a
 * shrink of r is asking for acknowledgements, the size it is heading for. A connection that acknowledged the shrink before
 * it opened the region again is not asked again, so its new window must never reach the tail
 * that is about to go.
 */
uint64_t resize_grant_size(const struct region *r, uint64_t size);

/* c was just granted r: if a shrink of r is asking, c is asked too. */
void resize_grant_added(struct conn *c, struct region *r);

/* True while r is being truncated: opens must wait (region_defer) until it is done. */
bool resize_truncating(const struct region *r);

/* True while r has a resize in progress or queued. */
bool resize_busy(const struct region *r);

/* c is going away: it counts as having acknowledged every shrink. */
void resize_conn_gone(struct conn *c);

/* r was deleted: queued resizes and a shrink still asking fail with ECANCELED. */
void resize_region_retire(struct region *r);

/*
 * The daemon is stopping: shrinks still asking are cancelled rather than counting the
 * connections about to close as acknowledgements (their processes keep their mappings
 * while the daemon restarts).
 */
void resize_server_stop(struct server *srv);

/*
 * Notices now a size of r the daemon did not make ("resized" with "external": true), unless a
 * resize of r is under way. Returns r's current size.
 */
uint64_t resize_notice(struct region *r);

/* Starts and stops the size_check_ms timer. */
void resize_checker_start(struct server *srv);
void resize_checker_stop(struct server *srv);

#endif
