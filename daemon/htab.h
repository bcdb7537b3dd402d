/* SPDX-License-Identifier: MIT */
/*
 * A small intrusive hash table with chaining. The caller embeds a struct hnode in its own
 * struct, computes the hash, and compares keys itself while walking a chain; the table only
 * links nodes. Used for the region table (by name), and per connection for grants (by
 * handle) and for the regions it holds (by region). When the bucket array cannot grow,
 * chains just get longer; insertion fails only if no bucket array could be made at all.
 */
#ifndef MMAPD_DAEMON_HTAB_H
#define MMAPD_DAEMON_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct hnode {
	struct hnode *next;
	uint64_t hash;
};

struct htab {
	struct hnode **buckets;
	size_t nbuckets;   /* a power of two, or 0 before the first insertion */
	size_t count;
};

#define htab_entry(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

void htab_init(struct htab *t);
/* Frees the bucket array; the nodes belong to the caller. */
void htab_done(struct htab *t);

/* Returns 0, or -ENOMEM when the table has no buckets and none could be allocated. */
int htab_insert(struct htab *t, struct hnode *node, uint64_t hash);
/* Unlinks node, which must be in t. */
void htab_remove(struct htab *t, struct hnode *node);

/* The first node whose hash equals hash, then the next ones: compare keys on each. */
struct hnode *htab_find_first(const struct htab *t, uint64_t hash);
struct hnode *htab_find_next(const struct hnode *node);

/*
 * Iteration over every node: htab_iter_init, then htab_iter_next until it returns NULL.
 * The node just returned may be removed before the next call; no other node may.
 */
struct htab_iter {
	size_t bucket;
	struct hnode *next;
};
void htab_iter_init(const struct htab *t, struct htab_iter *it);
struct hnode *htab_iter_next(const struct htab *t, struct htab_iter *it);

/* Hashes for the keys we use. */
uint64_t htab_hash_string(const char *s);
uint64_t htab_hash_u64(uint64_t v);

#endif
