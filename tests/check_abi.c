/* SPDX-License-Identifier: MIT */
/*
 * The public ABI's promises to callers compiled against another libmmapd (mmapd.h, "How this
 * ABI grows"): option structs are read only as far as the caller's struct_size reaches, info
 * types come from the library and lists are opaque, enums are 32 bits, destructors take NULL,
 * and the coordination calls work on a region handle as well as by name. A real daemon is
 * started for the calls that need one.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"
#include "mmapd-persist.h"
#include "mmapd-ring.h"

#define PAGE 4096u

/* struct mmapd_open_opts as a caller built before `reserve` and `policy` were added saw it. */
struct old_open_opts {
	size_t struct_size;
	unsigned flags;
	enum mmapd_mode mode;
	uint64_t size;
	uint64_t offset;
	uint64_t length;
};

/* struct mmapd_open_opts as a caller built against a later libmmapd with one more field. */
struct new_open_opts {
	struct mmapd_open_opts known;
	uint64_t later_field;
};

static struct test_daemon dmn;

static void abi_setup(void)
{
	test_daemon_start(&dmn, NULL);
}

static void abi_teardown(void)
{
	test_daemon_stop(&dmn);
}

START_TEST(test_abi_public_enums_are_32_bits)
{
	ck_assert_uint_eq(sizeof(enum mmapd_mode), 4);
	ck_assert_uint_eq(sizeof(enum mmapd_policy_kind), 4);
	ck_assert_uint_eq(sizeof(enum mmapd_huge), 4);
	ck_assert_uint_eq(sizeof(enum mmapd_advice), 4);
	ck_assert_uint_eq(sizeof(enum mmapd_event_type), 4);
	ck_assert_uint_eq(sizeof(enum mmapd_copy_method), 4);
}
END_TEST

START_TEST(test_abi_destructors_accept_null_and_return_void)
{
	mmapd_disconnect(NULL);
	mmapd_region_close(NULL);
	mmapd_region_info_free(NULL);
	mmapd_region_list_free(NULL);
	mmapd_client_list_free(NULL);
	mmapd_lock_list_free(NULL);
	mmapd_status_free(NULL);
	mmapd_ring_close(NULL);
	mmapd_pvec_close(NULL);
	mmapd_phash_close(NULL);
	ck_assert_uint_eq(mmapd_region_list_count(NULL), 0);
	ck_assert_ptr_null(mmapd_region_list_at(NULL, 0));
	ck_assert_uint_eq(mmapd_client_list_count(NULL), 0);
	ck_assert_ptr_null(mmapd_client_list_at(NULL, 0));
	ck_assert_uint_eq(mmapd_lock_list_count(NULL), 0);
	ck_assert_ptr_null(mmapd_lock_list_at(NULL, 0));
}
END_TEST

/*
 * The older caller's struct ends right before an inaccessible page, so a library reading a
 * field past the caller's struct_size would fault instead of passing.
 */
START_TEST(test_abi_open_opts_of_an_older_caller_are_read_only_as_far_as_its_size)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_abi");
	struct mmapd_region *region = NULL;
	struct old_open_opts *old;
	char *pages;

	pages = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(pages, MAP_FAILED);
	ck_assert_int_eq(mprotect(pages + PAGE, PAGE, PROT_NONE), 0);
	old = (struct old_open_opts *)(pages + PAGE - sizeof(*old));
	*old = (struct old_open_opts){ .struct_size = sizeof(*old), .flags = MMAPD_OPEN_CREATE,
	                               .mode = MMAPD_MODE_RW, .size = 3 * PAGE };
	ck_assert_uint_lt(sizeof(*old), sizeof(struct mmapd_open_opts));

	ck_assert_msg(mmapd_region_open(c, "old", (const struct mmapd_open_opts *)old, &region) == 0,
	              "%s", mmapd_last_message());
	ck_assert_uint_eq(mmapd_region_size(region), 3 * PAGE);
	ck_assert_int_eq(mmapd_region_mode(region), MMAPD_MODE_RW);
	ck_assert_int_eq(mmapd_region_write(region, 0, "x", 1), 0);
	mmapd_region_close(region);

	/* A window of the older struct's fields, and the defaults of the fields it lacks. */
	*old = (struct old_open_opts){ .struct_size = sizeof(*old), .offset = PAGE,
	                               .length = PAGE };
	ck_assert_int_eq(mmapd_region_open(c, "old", (const struct mmapd_open_opts *)old, &region),
	                 0);
	ck_assert_uint_eq(mmapd_region_offset(region), PAGE);
	ck_assert_uint_eq(mmapd_region_length(region), PAGE);
	ck_assert_int_eq(mmapd_region_mode(region), MMAPD_MODE_RO);
	mmapd_region_close(region);
	munmap(pages, 2 * PAGE);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_abi_open_opts_without_a_size_are_refused)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_abi");
	struct mmapd_open_opts zeroed;
	struct mmapd_region *region = NULL;

	memset(&zeroed, 0, sizeof(zeroed));
	zeroed.flags = MMAPD_OPEN_CREATE;
	zeroed.size = PAGE;
	ck_assert_int_eq(mmapd_region_open(c, "nosize", &zeroed, &region), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mmapd_last_message(), "MMAPD_OPEN_OPTS"));
	ck_assert_ptr_null(region);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_abi_open_opts_of_a_newer_caller_pass_when_the_unknown_tail_is_zero)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_abi");
	struct new_open_opts newer = { .known = MMAPD_OPEN_OPTS(.flags = MMAPD_OPEN_CREATE,
	                                                        .size = PAGE) };
	struct mmapd_region *region = NULL;

	newer.known.struct_size = sizeof(newer);
	ck_assert_int_eq(mmapd_region_open(c, "newer", &newer.known, &region), 0);
	mmapd_region_close(region);
	region = NULL;
	newer.later_field = 1;
	ck_assert_int_eq(mmapd_region_open(c, "newer", &newer.known, &region), -E2BIG);
	ck_assert_ptr_null(region);
	mmapd_disconnect(c);
}
END_TEST

static void abi_create(struct mmapd_client *c, const char *name, uint64_t size)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.flags = MMAPD_OPEN_CREATE, .size = size);
	struct mmapd_region *region = NULL;

	ck_assert_msg(mmapd_region_open(c, name, &o, &region) == 0, "%s", mmapd_last_message());
	mmapd_region_close(region);
}

START_TEST(test_abi_region_list_is_opaque_and_sorted)
{
	static const char *const names[] = { "a", "b", "c" };
	struct mmapd_client *c = test_client_connect(&dmn, "check_abi");
	struct mmapd_region_list *list = NULL;

	abi_create(c, "c", 2 * PAGE);
	abi_create(c, "a", PAGE);
	abi_create(c, "b", 3 * PAGE);
	ck_assert_int_eq(mmapd_list_regions(c, &list), 0);
	ck_assert_uint_eq(mmapd_region_list_count(list), 3);
	for (size_t i = 0; i < 3; i++) {
		const struct mmapd_region_info *info = mmapd_region_list_at(list, i);

		ck_assert_ptr_nonnull(info);
		ck_assert_str_eq(info->name, names[i]);
	}
	ck_assert_uint_eq(mmapd_region_list_at(list, 2)->size, 2 * PAGE);
	ck_assert_ptr_null(mmapd_region_list_at(list, 3));
	mmapd_region_list_free(list);
	ck_assert_int_eq(mmapd_list_regions(c, NULL), -EINVAL);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_abi_stat_and_status_are_allocated_by_the_library)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_abi");
	struct mmapd_region_info *info = NULL, *again = NULL;
	struct mmapd_status *st = NULL;
	struct mmapd_region *region = NULL;

	abi_create(c, "s", 2 * PAGE);
	ck_assert_int_eq(mmapd_stat(c, "s", &info), 0);
	ck_assert_str_eq(info->name, "s");
	ck_assert_uint_eq(info->size, 2 * PAGE);
	ck_assert_int_eq(mmapd_stat(c, "missing", &again), -ENOENT);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(mmapd_region_open(c, "s", NULL, &region), 0);
	ck_assert_int_eq(mmapd_region_stat(region, &again), 0);
	ck_assert_str_eq(again->name, "s");
	ck_assert_uint_eq(again->grants, 1);
	mmapd_region_info_free(again);
	mmapd_region_info_free(info);
	ck_assert_int_eq(mmapd_get_status(c, &st), 0);
	ck_assert_ptr_nonnull(st->version);
	ck_assert_uint_gt(strlen(st->version), 0);
	ck_assert_uint_ge(st->clients, 1);
	ck_assert_uint_eq(st->regions, 1);
	mmapd_status_free(st);
	mmapd_region_close(region);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_abi_client_list_names_every_connection)
{
	struct mmapd_client *c = test_client_connect(&dmn, "abi-one");
	struct mmapd_client *d = test_client_connect(&dmn, "abi-two");
	struct mmapd_client_list *list = NULL;
	bool one = false, two = false;

	ck_assert_int_eq(mmapd_list_clients(c, &list), 0);
	ck_assert_uint_eq(mmapd_client_list_count(list), 2);
	for (size_t i = 0; i < mmapd_client_list_count(list); i++) {
		const struct mmapd_client_info *k = mmapd_client_list_at(list, i);

		one = one || strcmp(k->name, "abi-one") == 0;
		two = two || strcmp(k->name, "abi-two") == 0;
		ck_assert_int_eq(k->pid, getpid());
	}
	ck_assert(one && two);
	ck_assert_ptr_null(mmapd_client_list_at(list, 2));
	mmapd_client_list_free(list);
	mmapd_disconnect(d);
	mmapd_disconnect(c);
}
END_TEST

/* A window starting one page in: the handle calls take window offsets. */
START_TEST(test_abi_coordination_on_the_region_handle_uses_window_offsets)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_abi");
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW, .offset = PAGE,
	                                           .length = PAGE);
	struct mmapd_policy always = { .kind = MMAPD_POLICY_ALWAYS };
	struct mmapd_region_info *info = NULL;
	struct mmapd_lock_list *locks = NULL;
	const struct mmapd_lock_info *l;
	struct mmapd_region *region = NULL;
	uint64_t lock = 0, seq = 0, seq2 = 0, token = 0;

	abi_create(c, "h", 4 * PAGE);
	ck_assert_int_eq(mmapd_region_open(c, "h", &o, &region), 0);

	ck_assert_int_eq(mmapd_region_lock(region, 16, 100, MMAPD_LOCK_EXCLUSIVE, -1, &lock), 0);
	ck_assert_int_eq(mmapd_list_locks(c, "h", &locks), 0);
	ck_assert_uint_eq(mmapd_lock_list_count(locks), 1);
	l = mmapd_lock_list_at(locks, 0);
	ck_assert_str_eq(l->region, "h");
	ck_assert_str_eq(l->client, "check_abi");
	ck_assert_uint_eq(l->offset, PAGE + 16);
	ck_assert_uint_eq(l->length, 100);
	ck_assert(l->exclusive && !l->waiting);
	mmapd_lock_list_free(locks);
	ck_assert_int_eq(mmapd_lock(c, "h", PAGE + 20, 1, MMAPD_LOCK_NOWAIT, 0, &seq), -EAGAIN);
	ck_assert_int_eq(mmapd_region_unlock(region, lock), 0);
	ck_assert_int_eq(mmapd_region_unlock(region, lock), -EBADF);

	ck_assert_int_eq(mmapd_region_subscribe(region, &seq), 0);
	ck_assert_int_eq(mmapd_region_subscribe(region, NULL), -EALREADY);
	ck_assert_int_eq(mmapd_region_report_changed(region, 0, 8, &seq2), 0);
	ck_assert_uint_gt(seq2, seq);
	ck_assert_int_eq(mmapd_region_unsubscribe(region), 0);
	ck_assert_int_eq(mmapd_region_flush(region, 0, 0), 0);
	ck_assert_int_eq(mmapd_region_flush_async(region, &token), 0);
	ck_assert_int_eq(mmapd_region_set_policy(region, &always), 0);
	ck_assert_int_eq(mmapd_region_clear_error(region), 0);
	ck_assert_int_eq(mmapd_region_resize(region, 5 * PAGE, MMAPD_RESIZE_GROW_ONLY), 0);
	ck_assert_uint_eq(mmapd_region_size(region), 5 * PAGE);
	ck_assert_int_eq(mmapd_stat(c, "h", &info), 0);
	ck_assert_int_eq(info->policy.kind, MMAPD_POLICY_ALWAYS);
	ck_assert_uint_eq(info->seq, seq2);
	mmapd_region_info_free(info);

	ck_assert_int_eq(mmapd_region_lock(NULL, 0, 0, 0, -1, &lock), -EINVAL);
	ck_assert_int_eq(mmapd_region_flush(NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(mmapd_region_report_changed(NULL, 0, 1, NULL), -EINVAL);
	ck_assert_int_eq(mmapd_region_lock_start(NULL, 0, 0, 0, -1, &token), -EINVAL);
	ck_assert_int_eq(mmapd_region_resize_start(NULL, PAGE, 0, &token), -EINVAL);
	ck_assert_int_eq(mmapd_region_flush_range_async(NULL, 0, 0, &token), -EINVAL);
	ck_assert_int_eq(mmapd_region_msync_async(NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(mmapd_region_open_start(c, "h", NULL, NULL), 0);
	ck_assert_int_eq(mmapd_region_open_start(NULL, "h", NULL, &token), -EINVAL);
	mmapd_region_close(region);
	mmapd_disconnect(c);
}
END_TEST

/* A persistent struct's layout carries its size like the open options (mmapd-persist.h). */
START_TEST(test_abi_layout_is_read_as_far_as_its_size)
{
	struct abi_body { uint64_t a, b; };
	struct mmapd_layout l = MMAPD_LAYOUT(struct abi_body, "abi.body", 1);
	struct {
		struct mmapd_layout l;
		uint64_t later;   /* a field a newer header might add */
	} newer = { l, 0 };

	ck_assert_uint_eq(l.struct_size, sizeof(struct mmapd_layout));
	ck_assert_uint_eq(mmapd_pstruct_footprint(&l), MMAPD_PSTRUCT_HEADER + sizeof(struct abi_body));
	/* Not made by MMAPD_LAYOUT(): refused, not guessed. */
	l.struct_size = 0;
	ck_assert_uint_eq(mmapd_pstruct_footprint(&l), 0);
	/* A newer caller's larger layout passes while its unknown tail is zero. */
	newer.l.struct_size = sizeof(newer);
	ck_assert_uint_eq(mmapd_pstruct_footprint(&newer.l), MMAPD_PSTRUCT_HEADER + sizeof(struct abi_body));
	newer.later = 1;
	ck_assert_uint_eq(mmapd_pstruct_footprint(&newer.l), 0);
}
END_TEST

static Suite *abi_suite(void)
{
	Suite *s = suite_create("abi");
	TCase *plain = tcase_create("no daemon");
	TCase *live = tcase_create("daemon");

	tcase_add_test(plain, test_abi_public_enums_are_32_bits);
	tcase_add_test(plain, test_abi_destructors_accept_null_and_return_void);
	tcase_add_test(plain, test_abi_layout_is_read_as_far_as_its_size);
	suite_add_tcase(s, plain);

	tcase_add_checked_fixture(live, abi_setup, abi_teardown);
	tcase_set_timeout(live, 30);
	tcase_add_test(live, test_abi_open_opts_of_an_older_caller_are_read_only_as_far_as_its_size);
	tcase_add_test(live, test_abi_open_opts_without_a_size_are_refused);
	tcase_add_test(live, test_abi_open_opts_of_a_newer_caller_pass_when_the_unknown_tail_is_zero);
	tcase_add_test(live, test_abi_region_list_is_opaque_and_sorted);
	tcase_add_test(live, test_abi_stat_and_status_are_allocated_by_the_library);
	tcase_add_test(live, test_abi_client_list_names_every_connection);
	tcase_add_test(live, test_abi_coordination_on_the_region_handle_uses_window_offsets);
	suite_add_tcase(s, live);
	return s;
}

int main(void)
{
	return test_run_suite(abi_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
