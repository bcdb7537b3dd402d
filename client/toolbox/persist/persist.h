/* SPDX-License-Identifier: MIT */
/*
 * Private plumbing of libmmapd's persistent structures, shared by their files:
 *   pstruct.c  the self-describing header (layout validation, race-safe formatting) that
 *              starts every persistent struct, vector and hash map, and the byte hash;
 *   pregion.c  the region under a vector or hash map: opened read-write with a fixed address
 *              reservation, caught up with other processes' growth, grown, locked;
 *   fstr.c     fixed-capacity strings;
 *   pvec.c     the vector;
 *   phash.c    the hash map.
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
	uint64_t lock;
};

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
