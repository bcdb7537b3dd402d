/* SPDX-License-Identifier: MIT */
/*
 * Intrusive chained hash table (see htab.h). The bucket array doubles when the load passes
 * one node per bucket; each node keeps its full hash, so rehashing needs no key and a chain
 * walk skips most foreign keys without comparing them.
 */
#include "htab.h"

#include <errno.h>
#include <stdlib.h>

#define HTAB_INITIAL_BUCKETS 16

void htab_init(struct htab *t)
{
	t->buckets = NULL;
	t->nbuckets = 0;
	t->count = 0;
}

void htab_done(struct htab *t)
{
	free(t->buckets);
	htab_init(t);
}

static void htab_grow(struct htab *t)
{
	size_t n = t->nbuckets ? t->nbuckets * 2 : HTAB_INITIAL_BUCKETS;
	struct hnode **nb;
	size_t i;

	if (n < t->nbuckets)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	for (i = 0; i < t->nbuckets; i++) {
		struct hnode *node = t->buckets[i];

		while (node) {
			struct hnode *next = node->next;
			size_t b = node->hash & (n - 1);

			node->next = nb[b];
			nb[b] = node;
			node = next;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

int htab_insert(struct htab *t, struct hnode *node, uint64_t hash)
{
	size_t b;

	if (t->count >= t->nbuckets)
		htab_grow(t);
	/* Without any bucket array (the very first allocation failed) there is no chain at all. */
	if (t->nbuckets == 0)
		return -ENOMEM;
	node->hash = hash;
	b = hash & (t->nbuckets - 1);
	node->next = t->buckets[b];
	t->buckets[b] = node;
	t->count++;
	return 0;
}

void htab_remove(struct htab *t, struct hnode *node)
{
	struct hnode **pp = &t->buckets[node->hash & (t->nbuckets - 1)];

	while (*pp && *pp != node)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = node->next;
		node->next = NULL;
		t->count--;
	}
}

struct hnode *htab_find_first(const struct htab *t, uint64_t hash)
{
	struct hnode *node;

	if (t->nbuckets == 0)
		return NULL;
	for (node = t->buckets[hash & (t->nbuckets - 1)]; node; node = node->next)
		if (node->hash == hash)
			return node;
	return NULL;
}

struct hnode *htab_find_next(const struct hnode *node)
{
	uint64_t hash = node->hash;

	for (node = node->next; node; node = node->next)
		if (node->hash == hash)
			return (struct hnode *)node;
	return NULL;
}

void htab_iter_init(const struct htab *t, struct htab_iter *it)
{
	it->bucket = 0;
	it->next = t->nbuckets ? t->buckets[0] : NULL;
}

struct hnode *htab_iter_next(const struct htab *t, struct htab_iter *it)
{
	struct hnode *node;

	while (!it->next) {
		if (++it->bucket >= t->nbuckets)
			return NULL;
		it->next = t->buckets[it->bucket];
	}
	node = it->next;
	it->next = node->next;
	return node;
}

uint64_t htab_hash_string(const char *s)
{
	uint64_t h = 14695981039346656037ULL;   /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

uint64_t htab_hash_u64(uint64_t v)
{
	/* splitmix64's finaliser: sequential handles spread over all buckets. */
	v ^= v >> 30;
	v *= 0xbf58476d1ce4e5b9ULL;
	v ^= v >> 27;
	v *= 0x94d049bb133111ebULL;
	v ^= v >> 31;
	return v;
}
