/* SPDX-License-Identifier: MIT */
/*
 * The external watch: noticing changes of a region's file that nobody reported, made by
 * processes that are not mmapd clients (docs/coordination.md, "Changes made outside mmapd").
 * A region is watched while at least one subscription asked for it ("external": true,
 * notify.c), through the descriptor the daemon holds (region->fd), never through a path, so it
 * works for any region whatever its name or directory.
 *
 * Two sources, because the kernel offers no single one:
 *  - inotify on "/proc/self/fd/N" (the daemon's own descriptor; the watch is on the inode):
 *    IN_MODIFY reports write(2), truncate and fallocate at once; IN_ATTRIB (chmod, utimes,
 *    truncate) counts only when the size or the modification time moved.
 *  - an fstat of every watched file each external_poll_ms, comparing size, mtime and ctime:
 *    stores through a shared mapping raise no inotify event, but the kernel updates mtime and
 *    ctime when a store first dirties a clean page (page_mkwrite), so the poll sees them.
 * Each source says "something changed" (never a range): the owner's hook (extwatch_init) hears
 * of it once per file per inotify read or poll tick, however many writes were made meanwhile.
 * The poll timer runs only while something is watched; the inotify descriptor is made at the
 * first watch and kept until the daemon stops. A watch that inotify refuses (ENOSPC: the
 * daemon's user has fs.inotify.max_user_watches watches) is polled only, and logged.
 */
#ifndef MMAPD_DAEMON_EXTWATCH_H
#define MMAPD_DAEMON_EXTWATCH_H

#include <stddef.h>
#include <stdint.h>

struct region;
struct server;

/* A watch found r's file changed. */
typedef void extwatch_fn(struct region *r);

/* Sets the server's watch up (nothing watched, no handle made yet). Returns 0 or -ENOMEM. */
int extwatch_init(struct server *srv, extwatch_fn *changed);
/* Closes the loop handles (the server is finishing); no handle is made after. */
void extwatch_stop(struct server *srv);
/*
 * Frees what extwatch_init made (every watch has been dropped), closing the handles first if
 * still open: then the memory goes in their close callbacks, at the loop's next turn.
 */
void extwatch_done(struct server *srv);

/*
 * One more reason to watch r (ready, with its descriptor): the first one starts watching it.
 * Returns 0, -ENOMEM, or -errno of the first fstat.
 */
int extwatch_ref(struct region *r);
/* Drops one reason; with the last one r is no longer watched. */
void extwatch_unref(struct region *r);

/* Files watched now, and of those the ones inotify watches too (the rest are only polled). */
size_t extwatch_count(const struct server *srv);
size_t extwatch_inotify_count(const struct server *srv);

#endif
