/* SPDX-License-Identifier: MIT */
/*
 * The daemon's side of the change log (shared/changelog.h; docs/coordination.md "Change
 * notification on the control page"). A region with a control page keeps its change seq in the
 * page: writers holding the page publish changes there with no round trip, changes reported
 * through the protocol go there too, so both paths share one seq space. The relay reads what
 * writers published (when a doorbell rings, and before any change or subscription of the
 * protocol) and passes it on as today's `changed` events (notify.c) and to the flush policy
 * (flush.c). It keeps the page's route word up to date: whether writers must ring at all.
 *
 * A holder of the page can write anything into the log: the relay reads at most
 * CHANGELOG_ENTRIES entries per run, checks each range against the region, and reports what it
 * cannot read or believe as an overflow. Only the region of that page is affected.
 */
#ifndef MMAPD_DAEMON_RELAY_H
#define MMAPD_DAEMON_RELAY_H

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct region;

/* r's control page was attached: its log starts at r's seq (once). */
void relay_page_ready(struct region *r);
/* Whatever changed r's route (subscriptions, the flush policy): tells the page's writers. */
void relay_route(struct region *r);
/* Relays what the log of r holds and was not relayed yet. */
void relay_run(struct region *r);
/* r's last change seq (the log's, when it is ahead of the daemon's copy). */
uint64_t relay_seq(struct region *r);
/*
 * A change reported by c through the protocol: *ret_seq gets its seq, published in r's log when
 * r has one. Returns true when the relay sends its events (in seq order with the changes of
 * the page), false when the caller must (notify_changed).
 */
bool relay_publish(struct region *r, struct conn *c, uint64_t offset, uint64_t length,
                   uint64_t *ret_seq);
/*
 * For a page subscription: a read-only descriptor of r's control page (made now if r has
 * none) and one of its doorbell, which every change of r rings while the page has listeners
 * (control_listeners). Returns 0 or -errno (nothing to close then).
 */
int relay_listen(struct region *r, int *ret_page_fd, int *ret_bell_fd);
/*
 * A change made outside mmapd, where is not known (extwatch.h), in r whose size is size
 * (> 0): published in r's log, when r has one, after what the log holds was relayed, as the
 * whole region [0, size) with pid 0 and CHANGELOG_EXTERNAL. Returns its seq; the caller sends
 * its events (notify_changed_external).
 */
uint64_t relay_publish_external(struct region *r, uint64_t size);
/*
 * A descriptor of r's doorbell for c, which must hold a slot in r's control page. Returns 0,
 * -EACCES (no slot), -ENOENT (no page), -errno.
 */
int relay_bell(struct region *r, struct conn *c, int *ret_fd);

#endif
