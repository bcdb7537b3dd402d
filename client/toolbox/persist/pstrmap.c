/* SPDX-License-Identifier: MIT */
/*
 * Persistent string maps: keys and values of any length (strings above all), shared by every
 * process that opens the map by name. Built from the two crash-safe structures beside it:
 *   - an arena, the byte vector "<name>.arena" (pvec.c), to which every key and value is
 *     appended and never changed, so a pointer into it stays valid while the map is open;
 *   - an index, the hash map "<name>" (phash.c) from (64-bit hash of the key, k) to where the
 *     key and value lie in the arena. Keys whose hashes collide take k = 0, 1, 2, ...; a
 *     removed entry stays in its chain as a tombstone (key length PSTRMAP_TOMB), so the chain
 *     never has a hole, and a later put of a key in that chain reuses it.
 * A put appends its bytes to the arena (committed by the arena's length store), then puts
 * one index entry (committed by the index's journal); a remove is one index put. So each
 * operation becomes visible in one atomic step, and a crash before it leaves at most some
 * unreferenced bytes in the arena.
 *
 * The map keeps three words of its own in the index's spare bytes (phash_spare()): the live
 * count, stored by the same journal record as the put or remove that changes it (so
 * mmapd_pstrmap_count() is one load), a mark that the count is kept (a map made before it was
 * is counted once at open), and the base: the arena offset every entry's offsets are from.
 * The base is what makes compaction (mmapd_pstrmap_compact(), below) atomic: the packed copy
 * of the live bytes is appended, and one index replace points every entry at it by setting the
 * base to where it starts; moving it down to the arena's start and the base back to 0 is then
 * done where nothing refers to the bytes being written.
 *
 * Every offset and length read from the index is checked against the arena's length before
 * it is used, and a chain walk is bounded by the index's count.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"
#include "toolbox.h"

#define PSTRMAP_LEN_MAX (1u << 31)
#define PSTRMAP_TOMB 0xffffffffu
#define PSTRMAP_NAME_MAX 255
#define PSTRMAP_LOCK_MS 10000      /* how long open waits for the lock to count a map */

struct pstrmap_key {
	uint64_t hash;
	uint64_t k;
};

struct pstrmap_entry {
	uint64_t key_off;
	uint64_t val_off;
	uint32_t key_len;              /* PSTRMAP_TOMB: removed */
	uint32_t val_len;
};

struct mmapd_pstrmap {
	struct mmapd_phash *index;
	struct mmapd_pvec *arena;
};

/* The map's own words, in the index's spare bytes (phash_spare()). */
enum {
	PSTRMAP_W_KEPT,                /* PSTRMAP_KEPT once the live count below is kept */
	PSTRMAP_W_LIVE,                /* entries, tombstones not counted */
	PSTRMAP_W_BASE,                /* arena offset the entries' offsets are from */
	PSTRMAP_WORDS
};
#define PSTRMAP_KEPT 0x544e554f43534d50ull   /* "PMSCOUNT" */
_Static_assert(PSTRMAP_WORDS * 8 <= PHASH_SPARE, "the string map's words fit the spare bytes");

static uint64_t pstrmap_word(const struct mmapd_pstrmap *m, unsigned i)
{
	return atomic_load_explicit((_Atomic uint64_t *)phash_spare(m->index) + i,
	                            memory_order_acquire);
}

/* A store of word i, for the journal record of an index operation. */
static struct pj_store pstrmap_also(const struct mmapd_pstrmap *m, unsigned i, uint64_t val)
{
	return (struct pj_store){ phash_spare_off(m->index) + i * 8u, val, 8, 0 };
}

static int pstrmap_count_live(struct mmapd_pstrmap *m, uint64_t *ret_live);

/*
 * A map made before the live count was kept (its word still 0) gets it counted once, under
 * the lock: the count is stored first and the mark after it, so a crash between the two
 * leaves the map to be counted again.
 */
static int pstrmap_keep_count(struct mmapd_pstrmap *m)
{
	struct tbx_saved saved;
	uint64_t live;
	int r;

	if (pstrmap_word(m, PSTRMAP_W_KEPT) == PSTRMAP_KEPT)
		return 0;
	if ((r = mmapd_phash_lock(m->index, PSTRMAP_LOCK_MS)) < 0)
		return r;
	if (pstrmap_word(m, PSTRMAP_W_KEPT) != PSTRMAP_KEPT &&
	    (r = pstrmap_count_live(m, &live)) == 0 &&
	    (r = phash_spare_store(m->index, PSTRMAP_W_LIVE, live)) == 0)
		r = phash_spare_store(m->index, PSTRMAP_W_KEPT, PSTRMAP_KEPT);
	tbx_message_save(&saved);
	mmapd_phash_unlock(m->index);
	tbx_message_restore(&saved, r);
	return r;
}

MMAPD_EXPORT int mmapd_pstrmap_open(struct mmapd_client *client, const char *name,
                                    unsigned flags, struct mmapd_pstrmap **ret_map)
{
	char arena[PSTRMAP_NAME_MAX + 2];
	struct mmapd_pstrmap *m;
	int r;

	if (!client || !name || !ret_map)
		return tbx_error(-EINVAL, "client, name or ret_map is NULL");
	if ((size_t)snprintf(arena, sizeof(arena), "%s.arena", name) > PSTRMAP_NAME_MAX)
		return tbx_error(-ENAMETOOLONG, "'%s.arena' would be longer than %d bytes", name,
		                 PSTRMAP_NAME_MAX);
	m = calloc(1, sizeof(*m));
	if (!m)
		return tbx_error(-ENOMEM, "out of memory");
	r = mmapd_phash_open(client, name, sizeof(struct pstrmap_key),
	                     sizeof(struct pstrmap_entry), flags, &m->index);
	if (r == 0)
		r = mmapd_pvec_open(client, arena, 1, flags, &m->arena);
	if (r == 0)
		r = pstrmap_keep_count(m);
	if (r < 0) {
		struct tbx_saved saved;

		tbx_message_save(&saved);
		mmapd_pstrmap_close(m);
		tbx_message_restore(&saved, r);
		return r;
	}
	*ret_map = m;
	return 0;
}

MMAPD_EXPORT void mmapd_pstrmap_close(struct mmapd_pstrmap *map)
{
	if (!map)
		return;
	mmapd_pvec_close(map->arena);
	mmapd_phash_close(map->index);
	free(map);
}

MMAPD_EXPORT int mmapd_pstrmap_lock(struct mmapd_pstrmap *map, int timeout_ms)
{
	return map ? mmapd_phash_lock(map->index, timeout_ms) : tbx_error(-EINVAL, "map is NULL");
}

MMAPD_EXPORT int mmapd_pstrmap_unlock(struct mmapd_pstrmap *map)
{
	return map ? mmapd_phash_unlock(map->index) : tbx_error(-EINVAL, "map is NULL");
}

MMAPD_EXPORT struct mmapd_phash *mmapd_pstrmap_index(const struct mmapd_pstrmap *map)
{
	return map ? map->index : NULL;
}

MMAPD_EXPORT struct mmapd_pvec *mmapd_pstrmap_arena(const struct mmapd_pstrmap *map)
{
	return map ? map->arena : NULL;
}

MMAPD_EXPORT uint64_t mmapd_pstrmap_count(const struct mmapd_pstrmap *map)
{
	return map ? pstrmap_word(map, PSTRMAP_W_LIVE) : 0;
}

/*
 * Points *ret at len arena bytes from off (from the arena's base), after checking they lie
 * below its length.
 */
static int pstrmap_bytes(struct mmapd_pstrmap *m, uint64_t off, uint64_t len, const void **ret)
{
	static const char empty[1];
	uint64_t have = mmapd_pvec_len(m->arena), base = pstrmap_word(m, PSTRMAP_W_BASE);
	void *first, *last;

	if (len == 0) {
		*ret = empty;
		return 0;
	}
	if (base > have || off > have - base || len > have - base - off)
		return tbx_error(-EBADMSG, "the string map '%s' points past its arena",
		                 mmapd_region_name(mmapd_phash_region(m->index)));
	/* The arena is contiguous: reaching its last byte maps all of them. */
	off += base;
	if (mmapd_pvec_at(m->arena, off, &first) < 0 || mmapd_pvec_at(m->arena, off + len - 1,
	                                                              &last) < 0)
		return -EBADMSG;
	*ret = first;
	return 0;
}

/*
 * Walks key's chain. Returns 1 with the entry's k and entry when found, 0 when absent with
 * *ret_free the k a put would take (the first tombstone, else the end of the chain), or a
 * negative errno.
 */
static int pstrmap_find(struct mmapd_pstrmap *m, const void *key, size_t klen,
                        struct pstrmap_key *ret_key, struct pstrmap_entry *ret_entry,
                        uint64_t *ret_free)
{
	uint64_t bound = mmapd_phash_count(m->index) + 1, tomb = UINT64_MAX;
	struct pstrmap_key ik = { persist_hash(PERSIST_HASH_INIT, key, klen), 0 };
	struct pstrmap_entry e;
	const void *stored;
	int r;

	for (; ik.k <= bound; ik.k++) {
		r = mmapd_phash_get(m->index, &ik, &e);
		if (r == -ENOENT)
			break;
		if (r < 0)
			return r;
		if (e.key_len == PSTRMAP_TOMB) {
			if (tomb == UINT64_MAX)
				tomb = ik.k;
			continue;
		}
		if (e.key_len != klen)
			continue;
		if ((r = pstrmap_bytes(m, e.key_off, e.key_len, &stored)) < 0)
			return r;
		if (memcmp(stored, key, klen) == 0) {
			*ret_key = ik;
			*ret_entry = e;
			return 1;
		}
	}
	*ret_free = tomb != UINT64_MAX ? tomb : ik.k;
	ret_key->hash = ik.hash;
	return 0;
}

static int pstrmap_args(const struct mmapd_pstrmap *m, const void *key, size_t klen)
{
	if (!m || (!key && klen))
		return tbx_error(-EINVAL, "map or key is NULL");
	if (klen >= PSTRMAP_LEN_MAX)
		return tbx_error(-E2BIG, "a key of %zu bytes is too long", klen);
	return 0;
}

MMAPD_EXPORT int mmapd_pstrmap_put(struct mmapd_pstrmap *map, const void *key, size_t klen,
                                   const void *val, size_t vlen)
{
	struct pstrmap_key ik;
	struct pstrmap_entry e;
	struct pj_store also;
	uint64_t k = 0, at, base;
	uint8_t *buf;
	int found, r = pstrmap_args(map, key, klen);

	if (r < 0)
		return r;
	if ((!val && vlen) || vlen >= PSTRMAP_LEN_MAX)
		return tbx_error(-EINVAL, "val is NULL or too long");
	found = pstrmap_find(map, key, klen, &ik, &e, &k);
	if (found < 0)
		return found;
	/* The bytes first, past the arena's length until it commits them. */
	at = mmapd_pvec_len(map->arena);
	base = pstrmap_word(map, PSTRMAP_W_BASE);
	if (base > at)
		return tbx_error(-EBADMSG, "the string map '%s' has its base past its arena",
		                 mmapd_region_name(mmapd_phash_region(map->index)));
	at -= base;
	buf = malloc(klen + vlen + 1);
	if (!buf)
		return tbx_error(-ENOMEM, "out of memory");
	if (found) {
		memcpy(buf, val, vlen);
		r = mmapd_pvec_extend(map->arena, buf, vlen);
		e.val_off = at;
		e.val_len = (uint32_t)vlen;
	} else {
		if (klen)
			memcpy(buf, key, klen);
		if (vlen)
			memcpy(buf + klen, val, vlen);
		r = mmapd_pvec_extend(map->arena, buf, klen + vlen);
		ik.k = k;
		e = (struct pstrmap_entry){ at, at + klen, (uint32_t)klen, (uint32_t)vlen };
	}
	free(buf);
	if (r < 0)
		return r;
	/* The commit: one index put, which also counts a new entry. */
	also = pstrmap_also(map, PSTRMAP_W_LIVE, pstrmap_word(map, PSTRMAP_W_LIVE) + !found);
	r = phash_put_also(map->index, &ik, &e, &also);
	return r < 0 ? r : found;
}

/* The entry of key (checked): 0 with *ret_ik and *ret_e, -ENOENT (message set) or -errno. */
static int pstrmap_lookup(struct mmapd_pstrmap *map, const void *key, size_t klen,
                          struct pstrmap_key *ret_ik, struct pstrmap_entry *ret_e)
{
	uint64_t k;
	int r = pstrmap_args(map, key, klen);

	if (r < 0)
		return r;
	r = pstrmap_find(map, key, klen, ret_ik, ret_e, &k);
	if (r < 0)
		return r;
	if (r == 0)
		return tbx_error(-ENOENT, "no such key in string map '%s'",
		                 mmapd_region_name(mmapd_phash_region(map->index)));
	return 0;
}

MMAPD_EXPORT int mmapd_pstrmap_get(struct mmapd_pstrmap *map, const void *key, size_t klen,
                                   const void **ret_val, size_t *ret_len)
{
	struct pstrmap_key ik;
	struct pstrmap_entry e;
	const void *v;
	int r = pstrmap_lookup(map, key, klen, &ik, &e);

	if (r < 0)
		return r;
	if ((r = pstrmap_bytes(map, e.val_off, e.val_len, &v)) < 0)
		return r;
	if (ret_val)
		*ret_val = v;
	if (ret_len)
		*ret_len = e.val_len;
	return 0;
}

MMAPD_EXPORT int mmapd_pstrmap_remove(struct mmapd_pstrmap *map, const void *key, size_t klen)
{
	struct pstrmap_key ik;
	struct pstrmap_entry e;
	struct pj_store also;
	int r = pstrmap_lookup(map, key, klen, &ik, &e);

	if (r < 0)
		return r;
	e.key_len = PSTRMAP_TOMB;
	also = pstrmap_also(map, PSTRMAP_W_LIVE, pstrmap_word(map, PSTRMAP_W_LIVE) - 1);
	r = phash_put_also(map->index, &ik, &e, &also);
	return r < 0 ? r : 0;
}

MMAPD_EXPORT int mmapd_pstrmap_next(struct mmapd_pstrmap *map, uint64_t *cursor,
                                    const void **ret_key, size_t *ret_klen,
                                    const void **ret_val, size_t *ret_vlen)
{
	struct pstrmap_entry e;
	const void *kp, *vp;
	int r;

	if (!map || !cursor)
		return tbx_error(-EINVAL, "map or cursor is NULL");
	while ((r = mmapd_phash_next(map->index, cursor, NULL, &e)) == 1) {
		if (e.key_len == PSTRMAP_TOMB)
			continue;
		if ((r = pstrmap_bytes(map, e.key_off, e.key_len, &kp)) < 0 ||
		    (r = pstrmap_bytes(map, e.val_off, e.val_len, &vp)) < 0)
			return r;
		if (ret_key)
			*ret_key = kp;
		if (ret_klen)
			*ret_klen = e.key_len;
		if (ret_val)
			*ret_val = vp;
		if (ret_vlen)
			*ret_vlen = e.val_len;
		return 1;
	}
	return r;
}

/* Counts the entries that are not tombstones, walking the index. */
static int pstrmap_count_live(struct mmapd_pstrmap *m, uint64_t *ret_live)
{
	struct pstrmap_entry e;
	uint64_t cursor = 0, live = 0;
	int r;

	while ((r = mmapd_phash_next(m->index, &cursor, NULL, &e)) == 1)
		live += e.key_len != PSTRMAP_TOMB;
	*ret_live = live;
	return r;
}

/* A live entry as compaction collects it: its index key and entry, then its new ones. */
struct pstrmap_kv {
	struct pstrmap_key ik;
	struct pstrmap_entry e;
};

/* Chain order: by hash, then by k, so that renumbering keeps each chain's order. */
static int pstrmap_kv_cmp(const void *a, const void *b)
{
	const struct pstrmap_kv *x = a, *y = b;

	if (x->ik.hash != y->ik.hash)
		return x->ik.hash < y->ik.hash ? -1 : 1;
	return x->ik.k < y->ik.k ? -1 : x->ik.k > y->ik.k;
}

/*
 * Collects the live entries into *ret_kvs (sorted, renumbered: k = 0, 1, ... in each chain,
 * so the tombstones go) and their bytes, packed, into *ret_bytes, rewriting each entry's
 * offsets to the packed ones. Returns 0 with *ret_n and *ret_total, or a negative errno.
 */
static int pstrmap_pack(struct mmapd_pstrmap *m, struct pstrmap_kv **ret_kvs, uint64_t *ret_n,
                        uint8_t **ret_bytes, uint64_t *ret_total)
{
	struct pstrmap_kv *kvs = NULL, *more;
	struct pstrmap_key ik;
	struct pstrmap_entry e;
	uint64_t cursor = 0, n = 0, cap = 0, total = 0, pos = 0;
	uint8_t *bytes = NULL;
	const void *kp, *vp;
	int r;

	while ((r = mmapd_phash_next(m->index, &cursor, &ik, &e)) == 1) {
		if (e.key_len == PSTRMAP_TOMB)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if (!(more = realloc(kvs, cap * sizeof(*kvs)))) {
				r = tbx_error(-ENOMEM, "out of memory");
				goto fail;
			}
			kvs = more;
		}
		kvs[n++] = (struct pstrmap_kv){ ik, e };
		total += (uint64_t)e.key_len + e.val_len;
	}
	if (r < 0)
		goto fail;
	if (n)
		qsort(kvs, (size_t)n, sizeof(*kvs), pstrmap_kv_cmp);
	if (!(bytes = malloc(total ? (size_t)total : 1))) {
		r = tbx_error(-ENOMEM, "out of memory");
		goto fail;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct pstrmap_entry *x = &kvs[i].e;

		if ((r = pstrmap_bytes(m, x->key_off, x->key_len, &kp)) < 0 ||
		    (r = pstrmap_bytes(m, x->val_off, x->val_len, &vp)) < 0)
			goto fail;
		memcpy(bytes + pos, kp, x->key_len);
		memcpy(bytes + pos + x->key_len, vp, x->val_len);
		x->key_off = pos;
		x->val_off = pos + x->key_len;
		pos += (uint64_t)x->key_len + x->val_len;
		kvs[i].ik.k = i && kvs[i - 1].ik.hash == kvs[i].ik.hash ? kvs[i - 1].ik.k + 1 : 0;
	}
	*ret_kvs = kvs;
	*ret_n = n;
	*ret_bytes = bytes;
	*ret_total = total;
	return 0;
fail:
	free(kvs);
	free(bytes);
	return r;
}

/*
 * Compaction, in steps each of which leaves a whole map behind (see the file's comment):
 *   1. the live bytes, packed, are appended to the arena at its length L (the arena's length
 *      store commits them; nothing refers to them yet);
 *   2. one index replace (a journal record) puts every entry, renumbered and pointing into
 *      the packed copy, and sets the base to L: the commit point;
 *   3. the packed bytes are copied down to the arena's start (T <= L bytes, not overlapping;
 *      nothing refers to the bytes below L now);
 *   4. the base goes back to 0 (one store), then the arena's length to T (one store).
 * A crash after 2 leaves the map compacted, its arena as long as L + T until the next
 * compaction; before, as it was, with some more bytes in the arena.
 */
MMAPD_EXPORT int mmapd_pstrmap_compact(struct mmapd_pstrmap *map)
{
	struct pstrmap_kv *kvs = NULL;
	uint8_t *bytes = NULL;
	uint64_t n = 0, total = 0, len;
	struct pj_store also;
	int r;

	if (!map)
		return tbx_error(-EINVAL, "map is NULL");
	if ((r = pstrmap_pack(map, &kvs, &n, &bytes, &total)) < 0)
		return r;
	len = mmapd_pvec_len(map->arena);
	if (total == len && n == mmapd_phash_count(map->index))
		goto out;   /* nothing to reclaim: no dead bytes, no tombstones */
	r = mmapd_pvec_extend(map->arena, bytes, total);
	if (r < 0)
		goto out;
	_Static_assert(sizeof(struct pstrmap_kv) == sizeof(struct pstrmap_key) +
	               sizeof(struct pstrmap_entry), "a collected entry is an index key and value");
	also = pstrmap_also(map, PSTRMAP_W_BASE, len);
	if ((r = phash_replace(map->index, kvs, n, &also)) < 0 ||
	    (r = pvec_copy_unjournalled(map->arena, 0, len, total)) < 0 ||
	    (r = phash_spare_store(map->index, PSTRMAP_W_BASE, 0)) < 0)
		goto out;
	r = mmapd_pvec_truncate(map->arena, total);
out:
	free(kvs);
	free(bytes);
	return r;
}
