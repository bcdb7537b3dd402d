/* SPDX-License-Identifier: MIT */
/*
 * Persistence of region metadata (docs/coordination.md, "Persistence"): the flush policy,
 * the poison of a failed flush, and how and when the daemon created the region, kept in
 * <data-dir>/.mmapd/meta/ as one JSON file per file region. Anonymous regions have none.
 *
 * All metadata is read once, at start, into a table in memory; files that are not valid
 * JSON, have the wrong version, name another region or hold bad fields are moved to
 * <data-dir>/.mmapd/quarantine/ and logged, files of regions that no longer exist are
 * removed. Afterwards the table is the truth and the files follow it: every change is
 * queued to one writer that writes each file atomically (temporary file, fsync, rename)
 * and commits a whole batch of queued changes with one fsync of the directory, on the
 * thread pool. Changes are written in the order they were made, so the file always ends
 * up with the latest state.
 */
#ifndef MMAPD_DAEMON_META_H
#define MMAPD_DAEMON_META_H

#include <stdbool.h>
#include <stdint.h>

#include "access.h"
#include "flush.h"
#include "htab.h"

struct region;
struct server;

struct meta {
	struct hnode node;            /* in srv->meta, by name */
	struct policy policy;
	bool poisoned;
	bool owned;                   /* acc is recorded (files of older versions lack it) */
	struct access acc;            /* owner and mode */
	bool created;                 /* made by mmapd: the three fields below are known */
	uint64_t created_ms;          /* Unix epoch milliseconds */
	uint64_t size;                /* size asked at creation */
	bool sparse;
	char name[];
};

/* Called when a queued change is on stable storage (result 0) or failed (-errno). */
typedef void (*meta_cb)(void *arg, int result);

/*
 * Opens (creating if needed) <data-dir>/.mmapd/meta and quarantine, then loads every
 * metadata file, quarantining the bad ones. Logs what it does. Returns 0, or -errno when
 * the directories cannot be made (a corrupt file is never fatal).
 */
int meta_init(struct server *srv);
/* Frees the table and closes the directory. Nothing may be queued any more. */
void meta_done(struct server *srv);

/* The metadata of region name, or NULL (then: manual policy, not poisoned). */
const struct meta *meta_find(struct server *srv, const char *name);

/*
 * Records the metadata of a region just created with size and sparse, with policy p and
 * owner and mode acc, and
 * queues its file. If writing it fails, the region file name is unlinked too (so a failed
 * creation leaves nothing) and the record forgotten. cb runs once it is done. Returns 0, or
 * -ENOMEM (cb is then never called).
 */
int meta_save_created(struct server *srv, const char *name, const struct policy *p,
                      const struct access *acc, uint64_t size, bool sparse, meta_cb cb,
                      void *arg);

/*
 * Records the policy, poison, owner and mode of file region r as they are now and queues its file; cb
 * (may be NULL) runs once it is done. Returns 0 or -ENOMEM (cb is then never called).
 */
int meta_save_region(struct region *r, meta_cb cb, void *arg);

/* Forgets the metadata of name (deleted) and queues the removal of its file, if any. */
void meta_remove(struct server *srv, const char *name);

/*
 * Region from was renamed to to (replacing to, if it existed): from's record becomes to's,
 * replacing any record to had, and the files follow (to's written, then from's removed;
 * from without a record: to's removed). cb (may be NULL) runs once to's file is done.
 * Returns 0 or -ENOMEM (cb is then never called; the records may have changed already).
 */
int meta_rename(struct server *srv, const char *from, const char *to, meta_cb cb, void *arg);

#endif
