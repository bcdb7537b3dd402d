/* SPDX-License-Identifier: MIT */
/*
 * Unit suite of the daemon's intrusive hash table (daemon/htab.h): insertion, lookup by hash
 * with the caller comparing keys, removal, chains of equal hashes, growth of the bucket
 * array, and iteration that removes the node it was just given. Entries are test structs
 * with an embedded struct hnode, as the daemon's regions, grants and locks are.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "harness.h"
#include "htab.h"

struct item {
	struct hnode node;
	uint64_t key;
	bool seen;
};

/* The item with key in t under hash, or NULL (the caller's key comparison on the chain). */
static struct item *item_find(const struct htab *t, uint64_t hash, uint64_t key)
{
	struct hnode *node;

	for (node = htab_find_first(t, hash); node; node = htab_find_next(node)) {
		struct item *it = htab_entry(node, struct item, node);

		if (it->key == key)
			return it;
	}
	return NULL;
}

/* How many nodes iteration visits (marking each seen). */
static size_t count_iter(const struct htab *t)
{
	struct htab_iter it;
	struct hnode *node;
	size_t n = 0;

	htab_iter_init(t, &it);
	while ((node = htab_iter_next(t, &it)) != NULL) {
		htab_entry(node, struct item, node)->seen = true;
		n++;
	}
	return n;
}

START_TEST(test_htab_empty_finds_nothing)
{
	struct htab t;
	struct htab_iter it;

	htab_init(&t);
	ck_assert_ptr_null(htab_find_first(&t, 0));
	ck_assert_ptr_null(htab_find_first(&t, htab_hash_u64(42)));
	htab_iter_init(&t, &it);
	ck_assert_ptr_null(htab_iter_next(&t, &it));
	ck_assert_uint_eq(t.count, 0);
	htab_done(&t);
}
END_TEST

START_TEST(test_htab_insert_find_remove)
{
	struct htab t;
	struct item a = { .key = 1 }, b = { .key = 2 };

	htab_init(&t);
	ck_assert_int_eq(htab_insert(&t, &a.node, htab_hash_u64(1)), 0);
	ck_assert_int_eq(htab_insert(&t, &b.node, htab_hash_u64(2)), 0);
	ck_assert_uint_eq(t.count, 2);
	ck_assert_ptr_eq(item_find(&t, htab_hash_u64(1), 1), &a);
	ck_assert_ptr_eq(item_find(&t, htab_hash_u64(2), 2), &b);
	ck_assert_ptr_null(item_find(&t, htab_hash_u64(3), 3));

	htab_remove(&t, &a.node);
	ck_assert_uint_eq(t.count, 1);
	ck_assert_ptr_null(item_find(&t, htab_hash_u64(1), 1));
	ck_assert_ptr_eq(item_find(&t, htab_hash_u64(2), 2), &b);
	htab_remove(&t, &b.node);
	ck_assert_uint_eq(t.count, 0);
	ck_assert_ptr_null(item_find(&t, htab_hash_u64(2), 2));
	htab_done(&t);
	ck_assert_ptr_null(t.buckets);
	ck_assert_uint_eq(t.nbuckets, 0);
}
END_TEST

START_TEST(test_htab_same_hash_chain_finds_each)
{
	struct htab t;
	struct item it[5];
	size_t i;

	htab_init(&t);
	for (i = 0; i < 5; i++) {
		it[i].key = 100 + i;
		ck_assert_int_eq(htab_insert(&t, &it[i].node, 7), 0);
	}
	/* Every node of the chain has hash 7: find_first/find_next walk all five. */
	for (i = 0; i < 5; i++)
		ck_assert_ptr_eq(item_find(&t, 7, 100 + i), &it[i]);
	ck_assert_ptr_null(item_find(&t, 7, 99));
	/* Removing one from the middle of the chain keeps the others reachable. */
	htab_remove(&t, &it[2].node);
	ck_assert_ptr_null(item_find(&t, 7, 102));
	for (i = 0; i < 5; i++)
		if (i != 2)
			ck_assert_ptr_eq(item_find(&t, 7, 100 + i), &it[i]);
	ck_assert_uint_eq(t.count, 4);
	htab_done(&t);
}
END_TEST

START_TEST(test_htab_find_skips_other_hashes_in_bucket)
{
	struct htab t;
	struct item a = { .key = 1 }, b = { .key = 2 };
	size_t n = 0;
	struct hnode *node;

	htab_init(&t);
	/* Hashes 3 and 3 + 2^40 land in the same bucket of any table below 2^40 buckets. */
	ck_assert_int_eq(htab_insert(&t, &a.node, 3), 0);
	ck_assert_int_eq(htab_insert(&t, &b.node, 3 + (1ULL << 40)), 0);
	for (node = htab_find_first(&t, 3); node; node = htab_find_next(node)) {
		ck_assert_uint_eq(node->hash, 3);
		n++;
	}
	ck_assert_uint_eq(n, 1);
	ck_assert_ptr_eq(htab_find_first(&t, 3 + (1ULL << 40)), &b.node);
	ck_assert_ptr_null(htab_find_next(&b.node));
	htab_done(&t);
}
END_TEST

START_TEST(test_htab_grows_past_one_per_bucket)
{
	struct htab t;
	struct item *items = calloc(100, sizeof(*items));
	size_t i, first;

	ck_assert_ptr_nonnull(items);
	htab_init(&t);
	ck_assert_int_eq(htab_insert(&t, &items[0].node, htab_hash_u64(0)), 0);
	first = t.nbuckets;
	ck_assert_uint_gt(first, 0);
	ck_assert_uint_eq(first & (first - 1), 0);
	for (i = 1; i < 100; i++) {
		items[i].key = i;
		ck_assert_int_eq(htab_insert(&t, &items[i].node, htab_hash_u64(i)), 0);
		/* The load stays at most one node per bucket (checked before each insertion). */
		ck_assert_uint_le(t.count, t.nbuckets);
	}
	ck_assert_uint_gt(t.nbuckets, first);
	ck_assert_uint_eq(t.nbuckets & (t.nbuckets - 1), 0);
	/* Rehashing kept every node findable. */
	for (i = 0; i < 100; i++)
		ck_assert_ptr_eq(item_find(&t, htab_hash_u64(i), i), &items[i]);
	htab_done(&t);
	free(items);
}
END_TEST

START_TEST(test_htab_iter_visits_every_node_once)
{
	struct htab t;
	struct item items[40];
	size_t i;

	memset(items, 0, sizeof(items));
	htab_init(&t);
	for (i = 0; i < 40; i++) {
		items[i].key = i;
		/* Some share a hash, so chains longer than one are walked too. */
		ck_assert_int_eq(htab_insert(&t, &items[i].node, htab_hash_u64(i % 25)), 0);
	}
	ck_assert_uint_eq(count_iter(&t), 40);
	for (i = 0; i < 40; i++)
		ck_assert_msg(items[i].seen, "item %zu not visited", i);
	htab_done(&t);
}
END_TEST

START_TEST(test_htab_iter_removes_current_node)
{
	struct htab t;
	struct item items[64];
	struct htab_iter it;
	struct hnode *node;
	size_t i, visited = 0;

	memset(items, 0, sizeof(items));
	htab_init(&t);
	for (i = 0; i < 64; i++) {
		items[i].key = i;
		ck_assert_int_eq(htab_insert(&t, &items[i].node, htab_hash_u64(i % 16)), 0);
	}
	/* Removing (and scribbling over) the node just returned must not derail the walk. */
	htab_iter_init(&t, &it);
	while ((node = htab_iter_next(&t, &it)) != NULL) {
		struct item *cur = htab_entry(node, struct item, node);

		ck_assert(!cur->seen);
		cur->seen = true;
		visited++;
		htab_remove(&t, node);
		node->next = (struct hnode *)(uintptr_t)0x1;
	}
	ck_assert_uint_eq(visited, 64);
	ck_assert_uint_eq(t.count, 0);
	for (i = 0; i < 64; i++)
		ck_assert_ptr_null(item_find(&t, htab_hash_u64(i % 16), i));
	htab_done(&t);
}
END_TEST

START_TEST(test_htab_iter_removes_every_other)
{
	struct htab t;
	struct item items[50];
	struct htab_iter it;
	struct hnode *node;
	size_t i;

	memset(items, 0, sizeof(items));
	htab_init(&t);
	for (i = 0; i < 50; i++) {
		items[i].key = i;
		ck_assert_int_eq(htab_insert(&t, &items[i].node, htab_hash_u64(i)), 0);
	}
	htab_iter_init(&t, &it);
	while ((node = htab_iter_next(&t, &it)) != NULL)
		if (htab_entry(node, struct item, node)->key % 2 == 0)
			htab_remove(&t, node);
	ck_assert_uint_eq(t.count, 25);
	for (i = 0; i < 50; i++) {
		struct item *found = item_find(&t, htab_hash_u64(i), i);

		if (i % 2 == 0)
			ck_assert_ptr_null(found);
		else
			ck_assert_ptr_eq(found, &items[i]);
	}
	ck_assert_uint_eq(count_iter(&t), 25);
	htab_done(&t);
}
END_TEST

START_TEST(test_htab_many_entries)
{
	enum { N = 20000 };
	struct item *items = calloc(N, sizeof(*items));
	struct htab t;
	size_t i;

	ck_assert_ptr_nonnull(items);
	htab_init(&t);
	for (i = 0; i < N; i++) {
		items[i].key = i;
		ck_assert_int_eq(htab_insert(&t, &items[i].node, htab_hash_u64(i)), 0);
	}
	ck_assert_uint_eq(t.count, N);
	ck_assert_uint_ge(t.nbuckets, N);
	for (i = 0; i < N; i++)
		ck_assert_ptr_eq(item_find(&t, htab_hash_u64(i), i), &items[i]);
	for (i = 0; i < N; i += 3)
		htab_remove(&t, &items[i].node);
	for (i = 0; i < N; i++) {
		struct item *found = item_find(&t, htab_hash_u64(i), i);

		ck_assert_ptr_eq(found, i % 3 == 0 ? NULL : &items[i]);
	}
	ck_assert_uint_eq(count_iter(&t), N - (N + 2) / 3);
	htab_done(&t);
	free(items);
}
END_TEST

START_TEST(test_htab_hash_string_distinguishes_keys)
{
	/* FNV-1a of "" is its offset basis; the keys below must not collide. */
	ck_assert_uint_eq(htab_hash_string(""), 14695981039346656037ULL);
	ck_assert_uint_eq(htab_hash_string("region"), htab_hash_string("region"));
	ck_assert_uint_ne(htab_hash_string("region"), htab_hash_string("regioN"));
	ck_assert_uint_ne(htab_hash_string("ab"), htab_hash_string("ba"));
}
END_TEST

START_TEST(test_htab_hash_u64_spreads_sequential_keys)
{
	bool used[16] = { false };
	size_t i, buckets = 0;

	/* Sequential handles must not all land in one bucket of a 16-bucket table. */
	for (i = 1; i <= 16; i++)
		used[htab_hash_u64(i) & 15] = true;
	for (i = 0; i < 16; i++)
		buckets += used[i];
	ck_assert_uint_ge(buckets, 6);
	ck_assert_uint_ne(htab_hash_u64(1), htab_hash_u64(2));
}
END_TEST

static Suite *htab_suite(void)
{
	Suite *s = suite_create("htab");
	TCase *tc = tcase_create("htab");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_add_test(tc, test_htab_empty_finds_nothing);
	tcase_add_test(tc, test_htab_insert_find_remove);
	tcase_add_test(tc, test_htab_same_hash_chain_finds_each);
	tcase_add_test(tc, test_htab_find_skips_other_hashes_in_bucket);
	tcase_add_test(tc, test_htab_grows_past_one_per_bucket);
	tcase_add_test(tc, test_htab_iter_visits_every_node_once);
	tcase_add_test(tc, test_htab_iter_removes_current_node);
	tcase_add_test(tc, test_htab_iter_removes_every_other);
	tcase_add_test(tc, test_htab_many_entries);
	tcase_add_test(tc, test_htab_hash_string_distinguishes_keys);
	tcase_add_test(tc, test_htab_hash_u64_spreads_sequential_keys);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(htab_suite()) == 0 ? 0 : 1;
}
