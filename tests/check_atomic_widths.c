/* SPDX-License-Identifier: MIT */
/*
 * Tests of the atomic views of every width (client/atomic.c): 8-, 16-, 32- and 64-bit words,
 * unsigned and signed, and bool, against a real mmapd. Two processes add to the same words
 * through their own mappings and nothing is lost; a view that is not aligned to its width or
 * that leaves the window is refused.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"

static struct test_daemon dmn;

#define ADDS 20000

static void suite_setup(void)
{
	test_daemon_start(&dmn, NULL);
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

static struct mmapd_region *region_rw(struct mmapd_client *c, uint64_t size)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.flags = size ? MMAPD_OPEN_CREATE : 0, .mode = MMAPD_MODE_RW, .size = size);
	struct mmapd_region *region = NULL;

	ck_assert_int_eq(mmapd_region_open(c, "widths", &o, &region), 0);
	return region;
}

/* Where each width lives in the region: every word naturally aligned. */
enum { OFF_U8 = 1, OFF_I8 = 3, OFF_U16 = 6, OFF_I16 = 10, OFF_I32 = 20, OFF_I64 = 40,
       OFF_BOOL = 12 };

/* Adds 1 to the u8 and u16, subtracts 1 from the signed ones, ADDS times, then sets the flag. */
static void add_all(struct mmapd_region *region)
{
	_Atomic uint8_t *u8;
	_Atomic uint16_t *u16;
	_Atomic int8_t *i8;
	_Atomic int16_t *i16;
	_Atomic int32_t *i32;
	_Atomic int64_t *i64;
	_Atomic _Bool *flag;

	ck_assert_int_eq(mmapd_region_atomic_u8(region, OFF_U8, &u8), 0);
	ck_assert_int_eq(mmapd_region_atomic_u16(region, OFF_U16, &u16), 0);
	ck_assert_int_eq(mmapd_region_atomic_i8(region, OFF_I8, &i8), 0);
	ck_assert_int_eq(mmapd_region_atomic_i16(region, OFF_I16, &i16), 0);
	ck_assert_int_eq(mmapd_region_atomic_i32(region, OFF_I32, &i32), 0);
	ck_assert_int_eq(mmapd_region_atomic_i64(region, OFF_I64, &i64), 0);
	ck_assert_int_eq(mmapd_region_atomic_bool(region, OFF_BOOL, &flag), 0);
	for (int n = 0; n < ADDS; n++) {
		atomic_fetch_add(u8, 1);
		atomic_fetch_add(u16, 1);
		atomic_fetch_sub(i8, 1);
		atomic_fetch_sub(i16, 1);
		atomic_fetch_sub(i32, 1);
		atomic_fetch_sub(i64, 1);
	}
	atomic_store(flag, true);
}

START_TEST(test_atomic_every_width_is_shared_by_two_processes)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_atomic_widths");
	struct mmapd_region *region = region_rw(c, 4096);
	const uint8_t *d;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mmapd_client *cc = NULL;

		if (mmapd_connect(dmn.sock, "widths-child", &cc) < 0)
			_exit(1);
		add_all(region_rw(cc, 0));
		_exit(0);
	}
	add_all(region);
	test_child_wait(pid, 20000);
	d = mmapd_region_data(region);
	ck_assert_uint_eq(d[OFF_U8], (2 * ADDS) & 0xff);
	ck_assert_uint_eq(*(const uint16_t *)(d + OFF_U16), (2 * ADDS) & 0xffff);
	ck_assert_int_eq(*(const int8_t *)(d + OFF_I8), (int8_t)(-2 * ADDS));
	ck_assert_int_eq(*(const int16_t *)(d + OFF_I16), (int16_t)(-2 * ADDS));
	ck_assert_int_eq(*(const int32_t *)(d + OFF_I32), -2 * ADDS);
	ck_assert_int_eq(*(const int64_t *)(d + OFF_I64), -2 * ADDS);
	ck_assert_uint_eq(d[OFF_BOOL], 1);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "widths"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_atomic_views_misaligned_or_out_of_range_are_refused)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_atomic_widths");
	struct mmapd_region *region = region_rw(c, 4096);
	_Atomic uint8_t *u8;
	_Atomic uint16_t *u16;
	_Atomic int32_t *i32;
	_Atomic int64_t *i64;
	_Atomic _Bool *b;

	ck_assert_int_eq(mmapd_region_atomic_u16(region, 1, &u16), -EINVAL);
	ck_assert_int_eq(mmapd_region_atomic_i32(region, 2, &i32), -EINVAL);
	ck_assert_int_eq(mmapd_region_atomic_i64(region, 4, &i64), -EINVAL);
	ck_assert_int_eq(mmapd_region_atomic_u8(region, 4096, &u8), -ERANGE);
	ck_assert_int_eq(mmapd_region_atomic_u16_slice(region, 4094, 2, &u16), -ERANGE);
	ck_assert_int_eq(mmapd_region_atomic_bool_slice(region, 0, 0, &b), -EINVAL);
	ck_assert_int_eq(mmapd_region_atomic_bool(region, 4095, NULL), -EINVAL);
	ck_assert_int_eq(mmapd_region_atomic_u8_slice(region, 0, 4096, &u8), 0);
	ck_assert_int_eq(mmapd_region_atomic_bool(region, 4095, &b), 0);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "widths"), 0);
	mmapd_disconnect(c);
}
END_TEST

static Suite *widths_suite(void)
{
	Suite *s = suite_create("atomic_widths");
	TCase *tc = tcase_create("atomic_widths");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_atomic_every_width_is_shared_by_two_processes);
	tcase_add_test(tc, test_atomic_views_misaligned_or_out_of_range_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(widths_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
