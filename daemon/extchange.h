/* SPDX-License-Identifier: MIT */
/*
 * What the daemon does with a change of a region's file made outside mmapd, once the external
 * watch found it (extwatch.h; docs/coordination.md, "Changes made outside mmapd"): a size it
 * did not make is announced first ("resized", "external": true, so that mappings follow), then
 * the change takes the next seq of the region, in the change log of its control page like any
 * other change, and goes to the subscribers that asked for external changes as a "changed"
 * event with "external": true and "ranges": null. A file found empty has nothing to re-read:
 * its "resized" event is all that is said.
 */
#ifndef MMAPD_DAEMON_EXTCHANGE_H
#define MMAPD_DAEMON_EXTCHANGE_H

struct region;

/* The external watch's hook (extwatch_fn). */
void extchange_announce(struct region *r);

#endif
