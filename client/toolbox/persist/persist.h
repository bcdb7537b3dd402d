/* SPDX-License-Identifier: MIT */
/*
 * Private plumbing of libmmapd's persistent structures, shared by their files:
 *   pstruct.c  the self-describing header (layout validation, race-safe formatting) that
 *              starts every persistent struct, vector and hash map, and the byte hash;
 *   pregion.c  the region under a vector or hash map: opened read-write with a fixed address
 *              reservation, caught up with other processes' growth, grown, locked;
 *   pjournal.c the redo record that makes each operation of a vector or hash map atomic with
 *              respect to the death of its process, and its durable ordering;
 *   pwrite.c   journalled writes into persistent structs (a region's struct journal);
 *   fstr.c     fixed-capacity strings (UTF-8 checked, double-buffered: crash-atomic sets);
 *   pvec.c     the vector;
 *   phash.c    the hash map;
 *   pstrmap.c  the string map (keys and values of any length) built on both;
 *   pnd.c      N-dimensional arrays;
 *   pfield.c   containers as fields of a struct, in companion regions.
 */
#ifndef MMAPD_CLIENT_PERSIST_H
#define MMAPD_CLIENT_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmapd-persist.h"

/* FNV-1a, 64 bits: persist_hash(PERSIST_HASH_INIT, ...) hashes bytes, chaining allowed. */
#define PERSIST_HASH_INIT 0xcbf29ce484222325ull
uint64_t persist_hash(uint64_t hash, const void *data, size_t len);

/*
 * Formats a freshly claimed body (zeroed) before anyone else may see it. Returns 0 or a
 * negative errno (message set), which undoes the format.
 */
typedef int pstruct_init_fn(void *body, void *ctx);

/* mmapd_pstruct_open() with a formatting step (init may be NULL). */
int pstruct_open(struct mmapd_region *region, uint64_t off, const struct mmapd_layout *layout,
                 unsigned flags, pstruct_init_fn *init, void *ctx, void **ret_ptr);

/* Where the elements of a vector and the slots of a hash map start: the header has a page. */
#define PERSIST_DATA_OFF 4096u

/* The region under a vector or hash map, and the daemon lock on its header. */
struct pregion {
	struct mmapd_client *client;   /* borrowed */
	struct mmapd_region *region;
	bool locked;
	bool durable;                  /* MMAPD_PERSIST_DURABLE: msync around each commit */
	uint32_t pid;                  /* getpid() at open: what the journal records */
	uint64_t lock;
	/* When set (pwrite.c), a record's copy goes into this region, copy_dst a region
	 * offset of it, instead of into this one; NULL otherwise. Borrowed. */
	struct mmapd_region *target;
};

/*
 * The redo record of a vector or hash map (pjournal.c), kept in its header. An operation
 * that cannot become visible through one aligned store is written as a record: an optional
 * shift (count blocks of unit bytes, each moved by delta bytes, in the order that keeps the
 * block still to be moved intact; cursor counts the blocks moved), then an optional copy
 * (n bytes, src to dst, not overlapping), then up to PJ_STORES stores of 4 or 8 bytes. All
 * offsets are from the region's first byte. Its op word is the commit point: 0, or the
 * journal is live and whoever finds it live with its writer (pid) dead plays it to the end.
 * Every step can be played again from its start: a copy reads bytes nothing else writes
 * while the record is live, a store stores an absolute value, and the shift resumes at its
 * cursor.
 */
#define PJ_STORES 4
struct pj_store {
	uint64_t off;
	uint64_t val;
	uint32_t width;                /* 4 or 8; 0: unused */
	uint32_t pad;
};
struct pjournal {
	_Atomic uint32_t op;           /* 0: empty; PJ_LIVE: committed, being played */
	uint32_t pid;                  /* the writer's process id */
	uint64_t shift_first;          /* offset of the lowest block to move */
	uint64_t shift_count;          /* blocks */
	uint64_t shift_unit;           /* bytes per block */
	int64_t shift_delta;           /* bytes each block moves (one unit up or down) */
	_Atomic uint64_t cursor;       /* blocks moved */
	uint64_t copy_src, copy_dst, copy_len;
	struct pj_store store[PJ_STORES];
};
#define PJ_LIVE 0x4a524e4cu        /* "LNRJ" */

/* A record being built in private memory before pjournal_commit() publishes it. */
void pjournal_begin(struct pjournal *rec);
void pjournal_shift(struct pjournal *rec, uint64_t first, uint64_t count, uint64_t unit,
                    int64_t delta);
void pjournal_copy(struct pjournal *rec, uint64_t src, uint64_t dst, uint64_t len);
void pjournal_store(struct pjournal *rec, uint64_t off, uint64_t val, uint32_t width);
/*
 * Publishes rec into the shared journal j (committing it), plays it, and empties the
 * journal: the operation is then done, or, if this process dies on the way, it will be
 * finished by the next process that finds the journal live. With p->durable, the staged
 * bytes (stage_off, stage_len) and the record are made durable before the commit, the
 * commit before the play, and what the play wrote before the journal is emptied. Returns 0,
 * -EBADMSG (a record out of the region's bounds) or -EIO (msync).
 */
int pjournal_commit(struct pregion *p, struct pjournal *j, const struct pjournal *rec,
                    uint64_t stage_off, uint64_t stage_len);
/*
 * Finishes an operation whose writer died (journal live, its pid gone), taking the
 * structure's lock for it unless this handle holds it. what names the structure for
 * messages. Returns 0 (nothing to do, done, or a live writer is at work), -EBADMSG, -EIO,
 * or the errors of mmapd_lock().
 */
int pjournal_settle(struct pregion *p, struct pjournal *j, const char *what);
/* As pjournal_settle(), but -EBUSY when a live process other than this one is mid-operation:
 * for writers, who must not work under another writer's feet. */
int pjournal_settle_writer(struct pregion *p, struct pjournal *j, const char *what);
/* msync() of [off, off + len) rounded out to whole pages when the handle is durable. */
int pregion_sync(struct pregion *p, uint64_t off, uint64_t len);
/* The same for window offsets of another region (a journal's target). */
int pregion_sync_other(const struct pregion *p, struct mmapd_region *region, uint64_t off,
                       uint64_t len);

/*
 * For the struct writer's fixed-string set (fstr.c): pwrite_prepare() checks that [dst, dst +
 * len) lies in w's owner window and finishes a dead writer's write first; returns 0, -EINVAL,
 * -ERANGE, or the errors of settling. pwrite_sync() msyncs such a range of the owner when w is
 * durable (0 or -EIO).
 */
int pwrite_prepare(struct mmapd_pwriter *w, const void *dst, size_t len);
int pwrite_sync(struct mmapd_pwriter *w, const void *dst, size_t len);

/*
 * What the string map (pstrmap.c) builds on the hash map and the vector, beyond their public
 * calls. also (may be NULL) is one more store made by the same journal record as the
 * operation, so that it is atomic with it (the string map's count and arena base).
 */
int phash_put_also(struct mmapd_phash *map, const void *key, const void *val,
                   const struct pj_store *also);
int phash_remove_also(struct mmapd_phash *map, const void *key, const struct pj_store *also);
/*
 * Replaces every entry of the map by the count keys and values at kvs (key then value, each
 * pair key_size + val_size bytes, keys distinct) in one journalled step with also. Returns 0,
 * or the errors of growing the region and of the journal.
 */
int phash_replace(struct mmapd_phash *map, const void *kvs, uint64_t count,
                  const struct pj_store *also);
/*
 * PHASH_SPARE bytes of the hash map's header page that the map itself never uses (zero when
 * created): the string map keeps its words there. phash_spare_off() is their region offset
 * (for also stores), phash_spare() their address; phash_spare_store() stores word i of them
 * alone (an aligned 8-byte store, synced when the map is durable).
 */
#define PHASH_SPARE 64u
uint64_t phash_spare_off(const struct mmapd_phash *map);
void *phash_spare(const struct mmapd_phash *map);
int phash_spare_store(struct mmapd_phash *map, unsigned i, uint64_t val);
/*
 * Copies count elements from index src to index dst (both ranges below the length, not
 * overlapping) with plain stores, synced when the vector is durable: not journalled, for
 * elements nothing refers to yet (the string map's compaction).
 */
int pvec_copy_unjournalled(struct mmapd_pvec *vec, uint64_t dst, uint64_t src, uint64_t count);

/*
 * Takes the body of a structure just opened into its handle (ctx) and checks what its header
 * says against it. Returns 0 or a negative errno (message set).
 */
typedef int pregion_check_fn(void *body, void *ctx);

/*
 * Opens region name read-write with MMAPD_PERSIST_RESERVE of address space (flags:
 * MMAPD_PERSIST_*; a region it creates has size bytes), then the persistent struct of layout
 * at offset 0, formatting it with init(body, ctx) when empty, then hands the body to
 * check(body, ctx). Returns 0, or a negative errno (message set; nothing left open).
 */
int pregion_open(struct pregion *p, struct mmapd_client *client, const char *name,
                 unsigned flags, uint64_t size, const struct mmapd_layout *layout,
                 pstruct_init_fn *init, pregion_check_fn *check, void *ctx);
/* Releases the lock if held and closes the region. */
void pregion_close(struct pregion *p);
/* The mapping's first byte (it never moves while open). */
uint8_t *pregion_data(const struct pregion *p);
/*
 * Makes sure the first bytes bytes of the region are mapped here, catching up with growth
 * another process made (one round trip to the daemon). Returns 0, or -EBADMSG when the region
 * really is shorter (what == the structure's name, for the message).
 */
int pregion_need(struct pregion *p, uint64_t bytes, const char *what);
/*
 * Grows the region to at least bytes (never shrinks it) and maps them. Returns 0, -EFBIG
 * (beyond MMAPD_PERSIST_RESERVE), or the errors of mmapd_stat() and mmapd_resize().
 */
int pregion_grow(struct pregion *p, uint64_t bytes, const char *what);
/* The header lock: mmapd_lock() of the header, exclusive. -EALREADY / -ENOLCK as documented. */
int pregion_lock(struct pregion *p, int timeout_ms);
int pregion_unlock(struct pregion *p);

#endif
