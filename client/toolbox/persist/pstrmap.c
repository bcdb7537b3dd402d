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
 * unreferenced bytes in the arena. The arena is never compacted: replaced and removed entries'
 * bytes stay (a copy into a fresh map reclaims them).
 *
 * Every offset and length read from the index is checked against the arena's length before
 * it is used, and a chain walk is bounded by the index's count.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"
#include "toolbox.h"

#define PSTRMAP_LEN_MAX (1u << 31)
#define PSTRMAP_TOMB 0xffffffffu
#define PSTRMAP_NAME_MAX 255

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

/* Points *ret at len arena bytes from off, after checking they lie below its length. */
static int pstrmap_bytes(struct mmapd_pstrmap *m, uint64_t off, uint64_t len, const void **ret)
{
	static const char empty[1];
	uint64_t have = mmapd_pvec_len(m->arena);
	void *first, *last;

	if (len == 0) {
		*ret = empty;
		return 0;
	}
	if (off > have || len > have - off)
		return tbx_error(-EBADMSG, "the string map '%s' points past its arena",
		                 mmapd_region_name(mmapd_phash_region(m->index)));
	/* The arena is contiguous: reaching its last byte maps all of them. */
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
	uint64_t k = 0, at;
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
	/* The commit: one index put. */
	r = mmapd_phash_put(map->index, &ik, &e);
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
	int r = pstrmap_lookup(map, key, klen, &ik, &e);

	if (r < 0)
		return r;
	e.key_len = PSTRMAP_TOMB;
	r = mmapd_phash_put(map->index, &ik, &e);
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
