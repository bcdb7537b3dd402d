/* SPDX-License-Identifier: MIT */
/*
 * Persistent hash maps: fixed-size keys and values in a region of their own, shared by every
 * process that opens it by name.
 *
 * The region holds a persistent struct "mmapd.phash" (pstruct.c) at offset 0 with the sizes,
 * the number of slots (a power of two, or 0 before the first put), the count of live entries
 * and of tombstones; the slots start at PERSIST_DATA_OFF. A slot is a state word (empty,
 * full, tombstone), 32 bits of the key's hash, the key and the value, padded to 8 bytes.
 *
 * Open addressing with linear probing: a lookup walks from the key's home slot until it finds
 * the key or an empty slot; a removal leaves a tombstone so that the walk goes on past it; an
 * insertion takes the first tombstone of its walk. When live entries plus tombstones would
 * pass 3/4 of the slots, the table is rebuilt in place: the live entries are copied out
 * (into this process's memory), the slot area grows through the daemon if the live entries
 * alone would fill more than half of it, is cleared, and the entries go back in. The header's
 * "rebuilding" word is set meanwhile, so a map whose rebuild a crash interrupted is refused
 * rather than read with entries missing.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"
#include "toolbox.h"

#define PHASH_SIZE_MAX (1u << 20)
#define PHASH_SLOTS_MIN 64u
#define PHASH_OPEN_LOCK_MS 10000 /* how long open waits for a writer to finish */

enum { SLOT_EMPTY = 0, SLOT_FULL = 1, SLOT_TOMB = 2 };

struct phash_header {
	uint32_t key_size;
	uint32_t val_size;
	uint32_t slot_size;
	_Atomic uint32_t rebuilding;
	uint64_t nslots;
	_Atomic uint64_t count;
	uint64_t tombs;
};

struct phash_slot {
	uint32_t state;
	uint32_t tag;
	uint8_t kv[];                  /* key, then value */
};

struct mmapd_phash {
	struct pregion pr;
	struct phash_header *h;
	uint32_t key_size, val_size, slot_size;
};

static const struct mmapd_layout phash_layout = {
	sizeof(struct mmapd_layout), "mmapd.phash", 1, sizeof(struct phash_header),
	_Alignof(struct phash_header)
};

static uint32_t phash_slot_size(uint32_t key_size, uint32_t val_size)
{
	return (uint32_t)((sizeof(struct phash_slot) + key_size + val_size + 7) / 8 * 8);
}

static int phash_init(void *body, void *ctx)
{
	const struct mmapd_phash *map = ctx;
	struct phash_header *h = body;

	h->key_size = map->key_size;
	h->val_size = map->val_size;
	h->slot_size = map->slot_size;
	return 0;
}

static uint64_t phash_bytes(const struct mmapd_phash *map, uint64_t nslots)
{
	return PERSIST_DATA_OFF + nslots * map->slot_size;
}

static struct phash_slot *phash_slot(const struct mmapd_phash *map, uint64_t i)
{
	return (struct phash_slot *)(pregion_data(&map->pr) + phash_bytes(map, i));
}

/*
 * Checks the header before any access, since another process may have rebuilt the table, and
 * returns in *ret_nslots the number of slots it made sure are mapped: the walks use that, not
 * a later read, so that even a writer breaking the locking rule cannot make them leave the
 * mapping.
 */
static int phash_check(struct mmapd_phash *map, uint64_t *ret_nslots)
{
	const struct phash_header *h = map->h;
	const char *name = mmapd_region_name(map->pr.region);
	uint64_t n = h->nslots, count = atomic_load(&h->count);
	int r;

	if (h->key_size != map->key_size || h->val_size != map->val_size)
		return tbx_error(-EPROTO, "'%s' is a hash map of %u-byte keys and %u-byte values, "
		                 "not %u and %u", name, h->key_size, h->val_size, map->key_size,
		                 map->val_size);
	if (atomic_load(&h->rebuilding))
		return tbx_error(-EBADMSG, "the hash map '%s' was being rebuilt by a process that "
		                 "stopped before finishing; its entries are incomplete", name);
	if (h->slot_size != map->slot_size || (n & (n - 1)) != 0 ||
	    n > (MMAPD_PERSIST_RESERVE - PERSIST_DATA_OFF) / map->slot_size ||
	    count > n || h->tombs > n - count)
		return tbx_error(-EBADMSG, "the hash map header of '%s' is corrupt (%llu slots, "
		                 "%llu entries, %llu tombstones)", name, (unsigned long long)n,
		                 (unsigned long long)count, (unsigned long long)h->tombs);
	r = pregion_need(&map->pr, phash_bytes(map, n), "hash map");
	if (r == 0)
		*ret_nslots = n;
	return r;
}

/*
 * Open reads the header without the lock, so a put or a rebuild under way in another process
 * can look like damage (the rebuild mark, count and tombstones changing). It asks again
 * under the lock: a header still wrong then is damage, its writer having died holding the
 * lock (which died with it).
 */
static int phash_check_locked(struct mmapd_phash *map, uint64_t *ret_nslots)
{
	int r = pregion_lock(&map->pr, PHASH_OPEN_LOCK_MS);

	if (r < 0)
		return r;
	r = phash_check(map, ret_nslots);
	pregion_unlock(&map->pr);
	return r;
}

static int phash_opened(void *body, void *ctx)
{
	struct mmapd_phash *map = ctx;
	uint64_t n;
	int r;

	map->h = body;
	r = phash_check(map, &n);
	return r == -EBADMSG ? phash_check_locked(map, &n) : r;
}

MMAPD_EXPORT int mmapd_phash_open(struct mmapd_client *client, const char *name,
                                  size_t key_size, size_t val_size, unsigned flags,
                                  struct mmapd_phash **ret_map)
{
	struct mmapd_phash *map;
	int r;

	if (!client || !ret_map)
		return tbx_error(-EINVAL, "client or ret_map is NULL");
	if (key_size == 0 || key_size > PHASH_SIZE_MAX || val_size == 0 ||
	    val_size > PHASH_SIZE_MAX)
		return tbx_error(-EINVAL, "key and value sizes must be between 1 and %u",
		                 PHASH_SIZE_MAX);
	map = calloc(1, sizeof(*map));
	if (!map)
		return tbx_error(-ENOMEM, "out of memory");
	map->key_size = (uint32_t)key_size;
	map->val_size = (uint32_t)val_size;
	map->slot_size = phash_slot_size(map->key_size, map->val_size);
	r = pregion_open(&map->pr, client, name, flags, phash_bytes(map, PHASH_SLOTS_MIN),
	                 &phash_layout, phash_init, phash_opened, map);
	if (r < 0) {
		free(map);
		return r;
	}
	*ret_map = map;
	return 0;
}

MMAPD_EXPORT void mmapd_phash_close(struct mmapd_phash *map)
{
	if (!map)
		return;
	pregion_close(&map->pr);
	free(map);
}

MMAPD_EXPORT int mmapd_phash_lock(struct mmapd_phash *map, int timeout_ms)
{
	return map ? pregion_lock(&map->pr, timeout_ms) : tbx_error(-EINVAL, "map is NULL");
}

MMAPD_EXPORT int mmapd_phash_unlock(struct mmapd_phash *map)
{
	return map ? pregion_unlock(&map->pr) : tbx_error(-EINVAL, "map is NULL");
}

MMAPD_EXPORT uint64_t mmapd_phash_count(const struct mmapd_phash *map)
{
	return map ? atomic_load_explicit(&map->h->count, memory_order_acquire) : 0;
}

MMAPD_EXPORT struct mmapd_region *mmapd_phash_region(const struct mmapd_phash *map)
{
	return map ? map->pr.region : NULL;
}

/*
 * Walks key's probe sequence in a table of n slots. Returns the slot holding key, or NULL with
 * *ret_free set to where it would go (the first tombstone, else the empty slot that ended the
 * walk; NULL when the table has no room).
 */
static struct phash_slot *phash_find(const struct mmapd_phash *map, uint64_t n,
                                     const void *key, uint64_t hash,
                                     struct phash_slot **ret_free)
{
	uint32_t tag = (uint32_t)(hash >> 32);
	struct phash_slot *tomb = NULL;

	*ret_free = NULL;
	for (uint64_t k = 0, i = hash; k < n; k++, i++) {
		struct phash_slot *s = phash_slot(map, i & (n - 1));

		if (s->state == SLOT_EMPTY) {
			*ret_free = tomb ? tomb : s;
			return NULL;
		}
		if (s->state == SLOT_TOMB) {
			if (!tomb)
				tomb = s;
		} else if (s->tag == tag && memcmp(s->kv, key, map->key_size) == 0) {
			return s;
		}
	}
	*ret_free = tomb;
	return NULL;
}

static uint64_t phash_of(const struct mmapd_phash *map, const void *key)
{
	return persist_hash(PERSIST_HASH_INIT, key, map->key_size);
}

/* Puts a slot's key and value (kv) into the free slot s of its probe sequence. */
static void phash_fill(struct mmapd_phash *map, struct phash_slot *s, uint64_t hash,
                       const void *key, const void *val)
{
	if (s->state == SLOT_TOMB)
		map->h->tombs--;
	s->tag = (uint32_t)(hash >> 32);
	memcpy(s->kv, key, map->key_size);
	memcpy(s->kv + map->key_size, val, map->val_size);
	s->state = SLOT_FULL;
}

/*
 * Rebuilds the table of n slots so that its live entries and one more fill at most half of
 * it, dropping the tombstones. The entries are counted from the slots, not taken from the
 * header's count, which a crash between filling a slot and counting it may have left one
 * short; the count is set right afterwards. Returns 0 with the new number of slots in
 * *ret_nslots, -ENOMEM, or the errors of growing the region.
 */
static int phash_rebuild(struct mmapd_phash *map, uint64_t n, uint64_t *ret_nslots)
{
	struct phash_header *h = map->h;
	uint64_t live = 0, want = n ? n : PHASH_SLOTS_MIN;
	size_t kv = (size_t)map->key_size + map->val_size;
	uint8_t *saved, *p;
	int r;

	for (uint64_t i = 0; i < n; i++)
		live += phash_slot(map, i)->state == SLOT_FULL;
	while ((live + 1) * 2 > want)
		want *= 2;
	r = pregion_grow(&map->pr, phash_bytes(map, want), "hash map");
	if (r < 0)
		return r;
	saved = malloc(live ? live * kv : 1);
	if (!saved)
		return tbx_error(-ENOMEM, "out of memory rebuilding hash map '%s'",
		                 mmapd_region_name(map->pr.region));
	/* Shared bytes never size a private buffer: the copy stops at live entries. */
	p = saved;
	for (uint64_t i = 0; i < n && p < saved + live * kv; i++) {
		struct phash_slot *s = phash_slot(map, i);

		if (s->state == SLOT_FULL) {
			memcpy(p, s->kv, kv);
			p += kv;
		}
	}
	live = (uint64_t)(p - saved) / kv;
	atomic_store(&h->rebuilding, 1);
	memset(phash_slot(map, 0), 0, (size_t)(want * map->slot_size));
	h->nslots = want;
	h->tombs = 0;
	for (p = saved; p < saved + live * kv; p += kv) {
		uint64_t hash = phash_of(map, p);
		struct phash_slot *slot;

		/* Always true, unless a writer without the lock fills the table meanwhile. */
		if (!phash_find(map, want, p, hash, &slot) && slot)
			phash_fill(map, slot, hash, p, p + map->key_size);
	}
	atomic_store_explicit(&h->count, live, memory_order_release);
	atomic_store_explicit(&h->rebuilding, 0, memory_order_release);
	free(saved);
	*ret_nslots = want;
	return 0;
}

MMAPD_EXPORT int mmapd_phash_put(struct mmapd_phash *map, const void *key, const void *val)
{
	struct phash_header *h;
	struct phash_slot *s, *slot;
	uint64_t hash, n;
	int r;

	if (!map || !key || !val)
		return tbx_error(-EINVAL, "map, key or val is NULL");
	r = phash_check(map, &n);
	if (r < 0)
		return r;
	h = map->h;
	hash = phash_of(map, key);
	s = phash_find(map, n, key, hash, &slot);
	/* A tombstone reused adds nothing to live + tombstones; anything else adds one. */
	if (!s && (!slot || (slot->state != SLOT_TOMB &&
	                     (atomic_load(&h->count) + h->tombs + 1) * 4 > n * 3))) {
		r = phash_rebuild(map, n, &n);
		if (r < 0)
			return r;
		s = phash_find(map, n, key, hash, &slot);
	}
	if (s) {
		memcpy(s->kv + map->key_size, val, map->val_size);
		return 1;
	}
	/* Only a writer that does not hold the lock can fill the table under us. */
	if (!slot)
		return tbx_error(-EBADMSG, "hash map '%s' filled up during a put (a writer does not "
		                 "hold the lock)", mmapd_region_name(map->pr.region));
	phash_fill(map, slot, hash, key, val);
	atomic_store_explicit(&h->count, atomic_load(&h->count) + 1, memory_order_release);
	return 0;
}

/* The slot holding key, after checking the header; -ENOENT (message set) when none does. */
static int phash_entry(struct mmapd_phash *map, const void *key, struct phash_slot **ret_s)
{
	struct phash_slot *slot;
	uint64_t n;
	int r;

	if (!map || !key)
		return tbx_error(-EINVAL, "map or key is NULL");
	r = phash_check(map, &n);
	if (r < 0)
		return r;
	*ret_s = phash_find(map, n, key, phash_of(map, key), &slot);
	if (!*ret_s)
		return tbx_error(-ENOENT, "no such key in hash map '%s'", mmapd_region_name(map->pr.region));
	return 0;
}

MMAPD_EXPORT int mmapd_phash_get(struct mmapd_phash *map, const void *key, void *ret_val)
{
	struct phash_slot *s;
	int r = phash_entry(map, key, &s);

	if (r == 0 && ret_val)
		memcpy(ret_val, s->kv + map->key_size, map->val_size);
	return r;
}

MMAPD_EXPORT int mmapd_phash_remove(struct mmapd_phash *map, const void *key)
{
	struct phash_slot *s;
	int r = phash_entry(map, key, &s);

	if (r < 0)
		return r;
	s->state = SLOT_TOMB;
	map->h->tombs++;
	atomic_store_explicit(&map->h->count, atomic_load(&map->h->count) - 1,
	                      memory_order_release);
	return 0;
}

MMAPD_EXPORT int mmapd_phash_foreach(struct mmapd_phash *map, mmapd_phash_fn *fn,
                                     void *userdata)
{
	uint64_t n;
	int r;

	if (!map || !fn)
		return tbx_error(-EINVAL, "map or fn is NULL");
	r = phash_check(map, &n);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < n; i++) {
		struct phash_slot *s = phash_slot(map, i);

		if (s->state == SLOT_FULL && (r = fn(s->kv, s->kv + map->key_size, userdata)) != 0)
			return r;
	}
	return 0;
}
