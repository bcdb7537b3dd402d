/* SPDX-License-Identifier: MIT */
/*
 * What becomes of a region when its last grant goes (docs/protocol.md, "open"'s
 * "temporary" and "truncate-on-close"): a temporary region is deleted, as by "delete"
 * (its subscribers hear "deleted"), and a region given a final size is truncated to it
 * (its subscribers hear "resized"). Grants of every connection count, so a connection that
 * dies counts as closing its grants. The region table calls in from region_check_idle,
 * which runs whenever something that held a region lets go of it, through the "released"
 * hook of its region listeners (wired by server.c), so region.c does not name this file.
 */
#ifndef MMAPD_DAEMON_LIFETIME_H
#define MMAPD_DAEMON_LIFETIME_H

#include <stdbool.h>

struct region;

/*
 * r (in the table, ready) has no grant any more: deletes it if temporary, or applies its
 * final size (unless work under way holds it: the next call does). Nothing while the daemon
 * stops. Returns true when r left the table.
 */
bool lifetime_last_grant(struct region *r);

#endif
