/* SPDX-License-Identifier: MIT */
/*
 * The index of region names that list and status answer from, so that neither reads the data
 * directory per request (issue 9: no request may stall the loop). Two sorted sets of names:
 * the region files in the data directory (what fsdir_scan would report) and the anonymous
 * regions in the region table. A list page costs O(log n) per entry it looks at, status's
 * file count is O(1), and the memory is one node per name: bounded by the directory, which
 * the operator controls, and by max_regions.
 *
 * The file set is built by one scan in server_init, before the daemon serves, and kept true
 * by an inotify watch on the data directory: every event names a file, whose presence is
 * then checked with fstatat, so events are hints and the directory is the truth (a late
 * event for a name that changed again cannot undo the later change). list and status apply
 * the queued events before answering: a change made before the request was sent (by the
 * daemon, or by an administrator in the directory) is in the answer, as with a scan. When
 * the kernel's event queue overflowed, or the watch could not be set up, the set is rebuilt
 * by a scan on the thread pool, and requests are answered from the old set meanwhile;
 * without a watch that rebuild happens at most once a second, when a request asks.
 */
#ifndef MMAPD_DAEMON_DIRINDEX_H
#define MMAPD_DAEMON_DIRINDEX_H

#include <stdbool.h>
#include <stdint.h>

struct server;

/*
 * Sets up s->dirindex: the watch (a failure is logged, and the index falls back to periodic
 * rescans) and the first scan of s->dir_fd, on the loop thread. Returns 0 or -errno (the
 * data directory cannot be read, or ENOMEM; logged).
 */
int dirindex_init(struct server *s);
/* Stops watching (the index stays readable). For the shutdown; idempotent. */
void dirindex_stop(struct server *s);
/* Frees the index (after dirindex_stop and the loop's last turn). Accepts a half-made one. */
void dirindex_done(struct server *s);

/* Brings the file set up to date with what inotify has queued. Call before reading it. */
void dirindex_sync(struct server *s);
/* The daemon created or unlinked the region file name: its presence is checked now. */
void dirindex_file_changed(struct server *s, const char *name);

/*
 * The anonymous or adopted region name (no file of the data directory) entered or left the
 * region table. Add returns 0 or -ENOMEM.
 */
int dirindex_anon_add(struct server *s, const char *name);
void dirindex_anon_remove(struct server *s, const char *name);

/*
 * For the region table's lookup cache (region.h): every check of a file name (an event for
 * it, or the daemon's own creation or unlink) stamps it with the next epoch, and lost events
 * stamp every name. dirindex_epoch is the epoch now: a region whose file the daemon looked
 * up itself records it. dirindex_unchanged applies what inotify has queued (one read of the
 * inotify descriptor, usually EAGAIN) and says whether name is still a region file in the
 * directory with no change seen since epoch since: nothing created, deleted, renamed over
 * or away, chmod'ed or chown'ed under that name. Always false without a live watch, while
 * events are lost and until the rescan that follows is in.
 */
uint64_t dirindex_epoch(const struct server *s);
bool dirindex_unchanged(struct server *s, const char *name, uint64_t since);

/*
 * The smallest name above after (NULL: the smallest of all) in either set, or NULL. The
 * string belongs to the index: valid until the index changes (any call above but this one).
 */
const char *dirindex_next(struct server *s, const char *after);
/* How many region files the data directory holds. */
uint64_t dirindex_files(const struct server *s);

#endif
