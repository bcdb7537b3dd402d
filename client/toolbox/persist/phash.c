/* SPDX-License-Identifier: MIT */
/*
 * Persistent hash maps: fixed-size keys and values in a region of their own, shared by every
 * process that opens it by name.
 *
 * The region holds a persistent struct "mmapd.phash" (pstruct.c) at offset 0 with the sizes,
 * the number of slots (a power of two, or 0 before the first put), the count of live entries
 * and of tombstones, and the journal (pjournal.c); at PERSIST_DATA_OFF a staging area of one
 * key and value (rounded up to a page), then the slots. A slot is a state word (empty, full,
 * tombstone), 32 bits of the key's hash, the key and the value, padded to 8 bytes.
 *
 * Open addressing with linear probing: a lookup walks from the key's home slot until it finds
 * the key or an empty slot; a removal leaves a tombstone so that the walk goes on past it; an
 * insertion takes the first tombstone of its walk. When live entries plus tombstones would
 * pass 3/4 of the slots (the load factor), the table is rebuilt: the live entries go into a
 * fresh table built in scratch space past the new table's end (the region grows to twice the
 * table for it), which one journalled copy then moves over the old one.
 *
 * Crash safety: every put, remove and rebuild is one journal record (the new key and value
 * staged first), so a map whose writer died is finished by the next process that uses it. A
 * new entry's state and tag are one 8-byte store, which leaves room in the record's four
 * stores for one more that the string map (pstrmap.c) adds to its puts and removes; the
 * string map also keeps its words in PHASH_SPARE bytes of the header page, below the staging
 * area, that the map itself never uses.
 *
 * Format 2 (this file) replaced format 1's "rebuilding" mark (a map whose rebuild was
 * interrupted was refused) with the journal, and added the staging area; a format 1 map is
 * refused with -EPROTO by pstruct.c's layout check.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
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
	uint32_t pad;
	_Atomic uint64_t nslots;
	_Atomic uint64_t count;
	_Atomic uint64_t tombs;
	struct pjournal journal;
};

struct phash_slot {
	_Atomic uint32_t state;
	uint32_t tag;
	uint8_t kv[];                  /* key, then value */
};

struct mmapd_phash {
	struct pregion pr;
	struct phash_header *h;
	uint32_t key_size, val_size, slot_size;
	uint64_t data_off;             /* where slot 0 starts */
};

static const struct mmapd_layout phash_layout = {
	sizeof(struct mmapd_layout), "mmapd.phash", 2, sizeof(struct phash_header),
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
	return map->data_off + nslots * map->slot_size;
}

/* Slot i of a table starting at region offset table. */
static struct phash_slot *phash_slot_in(const struct mmapd_phash *map, uint64_t table,
                                        uint64_t i)
{
	return (struct phash_slot *)(pregion_data(&map->pr) + table + i * map->slot_size);
}

static struct phash_slot *phash_slot(const struct mmapd_phash *map, uint64_t i)
{
	return phash_slot_in(map, map->data_off, i);
}

/* Region offset of a field of the header or of a slot, for the journal's stores. */
static uint64_t phash_off(const struct mmapd_phash *map, const void *field)
{
	return (uint64_t)((const uint8_t *)field - pregion_data(&map->pr));
}

/*
 * Checks the header before any access, after finishing the operation of a writer that died
 * (writer: refusing to run beside a live one), since another process may have rebuilt the
 * table, and returns in *ret_nslots the number of slots it made sure are mapped: the walks
 * use that, not a later read, so that even a writer breaking the locking rule cannot make
 * them leave the mapping.
 */
static int phash_check(struct mmapd_phash *map, bool writer, uint64_t *ret_nslots)
{
	const struct phash_header *h = map->h;
	const char *name = mmapd_region_name(map->pr.region);
	struct pjournal *j = &map->h->journal;
	uint64_t n, count, tombs;
	int r;

	if (h->key_size != map->key_size || h->val_size != map->val_size)
		return tbx_error(-EPROTO, "'%s' is a hash map of %u-byte keys and %u-byte values, "
		                 "not %u and %u", name, h->key_size, h->val_size, map->key_size,
		                 map->val_size);
	if (atomic_load_explicit(&j->op, memory_order_acquire) != 0 &&
	    (r = writer ? pjournal_settle_writer(&map->pr, j, "hash map")
	                : pjournal_settle(&map->pr, j, "hash map")) < 0)
		return r;
	n = atomic_load_explicit(&h->nslots, memory_order_acquire);
	count = atomic_load(&h->count);
	tombs = atomic_load(&h->tombs);
	if (h->slot_size != map->slot_size || (n & (n - 1)) != 0 ||
	    n > (MMAPD_PERSIST_RESERVE - map->data_off) / map->slot_size ||
	    count > n || tombs > n - count)
		return tbx_error(-EBADMSG, "the hash map header of '%s' is corrupt (%llu slots, "
		                 "%llu entries, %llu tombstones)", name, (unsigned long long)n,
		                 (unsigned long long)count, (unsigned long long)tombs);
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
	r = phash_check(map, false, ret_nslots);
	pregion_unlock(&map->pr);
	return r;
}

static int phash_opened(void *body, void *ctx)
{
	struct mmapd_phash *map = ctx;
	uint64_t n;
	int r;

	map->h = body;
	r = phash_check(map, false, &n);
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
	map->data_off = PERSIST_DATA_OFF + ((uint64_t)key_size + val_size + PERSIST_DATA_OFF - 1) /
	                                   PERSIST_DATA_OFF * PERSIST_DATA_OFF;
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
 * Walks key's probe sequence in the table of n slots at region offset table. Returns the
 * slot holding key, or NULL with *ret_free set to where it would go (the first tombstone,
 * else the empty slot that ended the walk; NULL when the table has no room).
 */
static struct phash_slot *phash_find(const struct mmapd_phash *map, uint64_t table,
                                     uint64_t n, const void *key, uint64_t hash,
                                     struct phash_slot **ret_free)
{
	uint32_t tag = (uint32_t)(hash >> 32);
	struct phash_slot *tomb = NULL;

	*ret_free = NULL;
	for (uint64_t k = 0, i = hash; k < n; k++, i++) {
		struct phash_slot *s = phash_slot_in(map, table, i & (n - 1));
		uint32_t state = atomic_load_explicit(&s->state, memory_order_acquire);

		if (state == SLOT_EMPTY) {
			*ret_free = tomb ? tomb : s;
			return NULL;
		}
		if (state == SLOT_TOMB) {
			if (!tomb)
				tomb = s;
		} else if (s->tag == tag && memcmp(s->kv, key, map->key_size) == 0) {
			return s;
		}
	}
	*ret_free = tomb;
	return NULL;
}

/* A slot's state word and its tag (the hash's high half) as one 8-byte value. */
static uint64_t phash_state_tag(uint32_t state, uint64_t hash)
{
	struct { uint32_t state, tag; } st = { state, (uint32_t)(hash >> 32) };
	uint64_t v;

	_Static_assert(sizeof(st) == 8 && offsetof(struct phash_slot, tag) == 4,
	               "state and tag are one 8-byte word");
	memcpy(&v, &st, sizeof(v));
	return v;
}

static uint64_t phash_of(const struct mmapd_phash *map, const void *key)
{
	return persist_hash(PERSIST_HASH_INIT, key, map->key_size);
}

/* Yields the key and value of candidate i of a table being built, or NULL to skip it. */
typedef const uint8_t *phash_source_fn(const struct mmapd_phash *map, void *ctx, uint64_t i);

/*
 * Builds a table of want slots (at least the current n) from the candidates' entries and
 * moves it over the table in one journalled step, with the extra store also (may be NULL):
 * the new table is built in scratch space at phash_bytes(want), past both tables, then
 * copied over them. Returns 0 with the new number of slots in *ret_nslots, or the errors of
 * growing the region and of the journal.
 */
static int phash_build(struct mmapd_phash *map, uint64_t want, uint64_t candidates,
                       phash_source_fn *source, void *ctx, const struct pj_store *also,
                       uint64_t *ret_nslots)
{
	struct phash_header *h = map->h;
	struct pjournal rec;
	uint64_t live = 0, scratch = phash_bytes(map, want), bytes = want * map->slot_size;
	int r = pregion_grow(&map->pr, scratch + bytes, "hash map");

	if (r < 0)
		return r;
	memset(pregion_data(&map->pr) + scratch, 0, (size_t)bytes);
	for (uint64_t i = 0; i < candidates; i++) {
		const uint8_t *kv = source(map, ctx, i);
		struct phash_slot *slot;
		uint64_t hash;

		if (!kv)
			continue;
		hash = phash_of(map, kv);
		/* Always a free slot, unless a writer without the lock changes the map meanwhile. */
		if (phash_find(map, scratch, want, kv, hash, &slot) || !slot)
			continue;
		slot->tag = (uint32_t)(hash >> 32);
		memcpy(slot->kv, kv, (size_t)map->key_size + map->val_size);
		atomic_store(&slot->state, SLOT_FULL);
		live++;
	}
	pjournal_begin(&rec);
	pjournal_copy(&rec, scratch, map->data_off, bytes);
	pjournal_store(&rec, phash_off(map, &h->nslots), want, 8);
	pjournal_store(&rec, phash_off(map, &h->tombs), 0, 8);
	pjournal_store(&rec, phash_off(map, &h->count), live, 8);
	if (also)
		pjournal_store(&rec, also->off, also->val, also->width);
	r = pjournal_commit(&map->pr, &h->journal, &rec, scratch, bytes);
	if (r == 0)
		*ret_nslots = want;
	return r;
}

/* The slots of a table of n slots (at least) where count entries and one more fill at most
 * half, and at least min. */
static uint64_t phash_want(uint64_t n, uint64_t count, uint64_t min)
{
	uint64_t want = n ? n : PHASH_SLOTS_MIN;

	while ((count + 1) * 2 > want || want < min)
		want *= 2;
	return want;
}

static const uint8_t *phash_source_live(const struct mmapd_phash *map, void *ctx, uint64_t i)
{
	struct phash_slot *s = phash_slot(map, i);

	(void)ctx;
	return atomic_load(&s->state) == SLOT_FULL ? s->kv : NULL;
}

/*
 * Rebuilds the table of n slots into one of at least min slots where its live entries and
 * one more fill at most half, dropping the tombstones.
 */
static int phash_rebuild(struct mmapd_phash *map, uint64_t n, uint64_t min, uint64_t *ret_nslots)
{
	uint64_t live = 0;

	for (uint64_t i = 0; i < n; i++)
		live += atomic_load(&phash_slot(map, i)->state) == SLOT_FULL;
	return phash_build(map, phash_want(n, live, min), n, phash_source_live, NULL, NULL,
	                   ret_nslots);
}

static const uint8_t *phash_source_array(const struct mmapd_phash *map, void *ctx, uint64_t i)
{
	return (const uint8_t *)ctx + i * ((uint64_t)map->key_size + map->val_size);
}

int phash_replace(struct mmapd_phash *map, const void *kvs, uint64_t count,
                  const struct pj_store *also)
{
	uint64_t n;
	int r = phash_check(map, true, &n);

	if (r < 0)
		return r;
	return phash_build(map, phash_want(n, count, 0), count, phash_source_array, (void *)kvs,
	                   also, &n);
}

uint64_t phash_spare_off(const struct mmapd_phash *map)
{
	(void)map;
	return PERSIST_DATA_OFF - PHASH_SPARE;
}

void *phash_spare(const struct mmapd_phash *map)
{
	return pregion_data(&map->pr) + phash_spare_off(map);
}

int phash_spare_store(struct mmapd_phash *map, unsigned i, uint64_t val)
{
	uint64_t off = phash_spare_off(map) + i * 8u;

	atomic_store_explicit((_Atomic uint64_t *)(pregion_data(&map->pr) + off), val,
	                      memory_order_release);
	return pregion_sync(&map->pr, off, 8);
}

int phash_put_also(struct mmapd_phash *map, const void *key, const void *val,
                   const struct pj_store *also)
{
	struct phash_header *h;
	struct phash_slot *s, *slot;
	struct pjournal rec;
	uint8_t *stage;
	uint64_t hash, n, tombs;
	int r;

	if (!map || !key || !val)
		return tbx_error(-EINVAL, "map, key or val is NULL");
	r = phash_check(map, true, &n);
	if (r < 0)
		return r;
	h = map->h;
	hash = phash_of(map, key);
	s = phash_find(map, map->data_off, n, key, hash, &slot);
	/* A tombstone reused adds nothing to live + tombstones; anything else adds one. */
	if (!s && (!slot || (atomic_load(&slot->state) != SLOT_TOMB &&
	                     (atomic_load(&h->count) + atomic_load(&h->tombs) + 1) * 4 > n * 3))) {
		r = phash_rebuild(map, n, 0, &n);
		if (r < 0)
			return r;
		s = phash_find(map, map->data_off, n, key, hash, &slot);
	}
	stage = pregion_data(&map->pr) + PERSIST_DATA_OFF;
	pjournal_begin(&rec);
	if (s) {
		memcpy(stage, val, map->val_size);
		pjournal_copy(&rec, PERSIST_DATA_OFF, phash_off(map, s->kv + map->key_size),
		              map->val_size);
		if (also)
			pjournal_store(&rec, also->off, also->val, also->width);
		r = pjournal_commit(&map->pr, &h->journal, &rec, PERSIST_DATA_OFF, map->val_size);
		return r < 0 ? r : 1;
	}
	/* Only a writer that does not hold the lock can fill the table under us. */
	if (!slot)
		return tbx_error(-EBADMSG, "hash map '%s' filled up during a put (a writer does not "
		                 "hold the lock)", mmapd_region_name(map->pr.region));
	memcpy(stage, key, map->key_size);
	memcpy(stage + map->key_size, val, map->val_size);
	tombs = atomic_load(&h->tombs);
	pjournal_copy(&rec, PERSIST_DATA_OFF, phash_off(map, slot->kv),
	              (uint64_t)map->key_size + map->val_size);
	if (atomic_load(&slot->state) == SLOT_TOMB)
		pjournal_store(&rec, phash_off(map, &h->tombs), tombs ? tombs - 1 : 0, 8);
	/* State and tag, adjacent in an 8-aligned slot, in one store. */
	pjournal_store(&rec, phash_off(map, slot), phash_state_tag(SLOT_FULL, hash), 8);
	pjournal_store(&rec, phash_off(map, &h->count), atomic_load(&h->count) + 1, 8);
	if (also)
		pjournal_store(&rec, also->off, also->val, also->width);
	return pjournal_commit(&map->pr, &h->journal, &rec, PERSIST_DATA_OFF,
	                       (uint64_t)map->key_size + map->val_size);
}

MMAPD_EXPORT int mmapd_phash_put(struct mmapd_phash *map, const void *key, const void *val)
{
	return phash_put_also(map, key, val, NULL);
}

/* The slot holding key, after checking the header; -ENOENT (message set) when none does. */
static int phash_entry(struct mmapd_phash *map, const void *key, bool writer,
                       struct phash_slot **ret_s)
{
	struct phash_slot *slot;
	uint64_t n;
	int r;

	if (!map || !key)
		return tbx_error(-EINVAL, "map or key is NULL");
	r = phash_check(map, writer, &n);
	if (r < 0)
		return r;
	*ret_s = phash_find(map, map->data_off, n, key, phash_of(map, key), &slot);
	if (!*ret_s)
		return tbx_error(-ENOENT, "no such key in hash map '%s'", mmapd_region_name(map->pr.region));
	return 0;
}

MMAPD_EXPORT int mmapd_phash_get(struct mmapd_phash *map, const void *key, void *ret_val)
{
	struct phash_slot *s;
	int r = phash_entry(map, key, false, &s);

	if (r == 0 && ret_val)
		memcpy(ret_val, s->kv + map->key_size, map->val_size);
	return r;
}

int phash_remove_also(struct mmapd_phash *map, const void *key, const struct pj_store *also)
{
	struct phash_header *h;
	struct phash_slot *s;
	struct pjournal rec;
	int r = phash_entry(map, key, true, &s);

	if (r < 0)
		return r;
	h = map->h;
	pjournal_begin(&rec);
	pjournal_store(&rec, phash_off(map, &s->state), SLOT_TOMB, 4);
	pjournal_store(&rec, phash_off(map, &h->tombs), atomic_load(&h->tombs) + 1, 8);
	pjournal_store(&rec, phash_off(map, &h->count), atomic_load(&h->count) - 1, 8);
	if (also)
		pjournal_store(&rec, also->off, also->val, also->width);
	return pjournal_commit(&map->pr, &h->journal, &rec, 0, 0);
}

MMAPD_EXPORT int mmapd_phash_remove(struct mmapd_phash *map, const void *key)
{
	return phash_remove_also(map, key, NULL);
}

MMAPD_EXPORT int mmapd_phash_reserve(struct mmapd_phash *map, uint64_t count)
{
	uint64_t n;
	int r;

	if (!map)
		return tbx_error(-EINVAL, "map is NULL");
	if ((r = phash_check(map, true, &n)) < 0)
		return r;
	if (count > (MMAPD_PERSIST_RESERVE - map->data_off) / map->slot_size / 4)
		return tbx_error(-EFBIG, "hash map '%s' cannot hold %llu entries in the %llu bytes "
		                 "reserved for it", mmapd_region_name(map->pr.region),
		                 (unsigned long long)count, (unsigned long long)MMAPD_PERSIST_RESERVE);
	/* Room for count entries below the load factor, tombstones included. */
	if ((count + atomic_load(&map->h->tombs)) * 4 <= n * 3)
		return 0;
	return phash_rebuild(map, n, count * 4 / 3 + 1, &n);
}

MMAPD_EXPORT uint64_t mmapd_phash_capacity(const struct mmapd_phash *map)
{
	return map ? atomic_load_explicit(&map->h->nslots, memory_order_acquire) / 4 * 3 : 0;
}

MMAPD_EXPORT int mmapd_phash_next(struct mmapd_phash *map, uint64_t *cursor, void *ret_key,
                                  void *ret_val)
{
	uint64_t n;
	int r;

	if (!map || !cursor)
		return tbx_error(-EINVAL, "map or cursor is NULL");
	if ((r = phash_check(map, false, &n)) < 0)
		return r;
	for (uint64_t i = *cursor; i < n; i++) {
		struct phash_slot *s = phash_slot(map, i);

		if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_FULL)
			continue;
		if (ret_key)
			memcpy(ret_key, s->kv, map->key_size);
		if (ret_val)
			memcpy(ret_val, s->kv + map->key_size, map->val_size);
		*cursor = i + 1;
		return 1;
	}
	*cursor = n;
	return 0;
}

MMAPD_EXPORT int mmapd_phash_foreach(struct mmapd_phash *map, mmapd_phash_fn *fn,
                                     void *userdata)
{
	uint64_t n;
	int r;

	if (!map || !fn)
		return tbx_error(-EINVAL, "map or fn is NULL");
	r = phash_check(map, false, &n);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < n; i++) {
		struct phash_slot *s = phash_slot(map, i);

		if (atomic_load(&s->state) == SLOT_FULL &&
		    (r = fn(s->kv, s->kv + map->key_size, userdata)) != 0)
			return r;
	}
	return 0;
}
