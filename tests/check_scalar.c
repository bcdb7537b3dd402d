/* SPDX-License-Identifier: MIT */
/*
 * Tests of the byte-order accessors (client/scalar.c: mmapd_region_get_scalar(),
 * mmapd_region_put_scalar() and the typed forms of mmapd.h) against a real mmapd: numbers put
 * by one process at odd offsets are the exact bytes of their stated order and read back the
 * same by another; offsets outside the window, or whose end overflows, are refused, and so
 * are puts on a read-only region and sizes or orders that do not exist.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"

static struct test_daemon dmn;

static void suite_setup(void)
{
	test_daemon_start(&dmn, NULL);
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

static struct mmapd_region *region_in(struct mmapd_client *c, enum mmapd_mode mode,
                                      uint64_t size)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.flags = size ? MMAPD_OPEN_CREATE : 0, .mode = mode, .size = size);
	struct mmapd_region *region = NULL;

	ck_assert_msg(mmapd_region_open(c, "numbers", &o, &region) == 0, "open: %s",
	              mmapd_last_message());
	return region;
}

/* Where each number goes: odd offsets, so nothing is aligned. */
enum { AT_U32BE = 1, AT_U32LE = 5, AT_U16BE = 9, AT_U64BE = 11, AT_I16LE = 19, AT_F32BE = 21,
       AT_F64LE = 25, AT_U8 = 33, AT_I8 = 34, AT_I64LE = 35, AT_I32BE = 43, AT_U16LE = 47,
       AT_U64LE = 49, AT_F64BE = 57, AT_F32LE = 65, AT_I16BE = 69, AT_I32LE = 71,
       AT_I64BE = 75, AT_END = 83 };

/* The bytes each number must be stored as. */
static const unsigned char want[AT_END] = {
	[AT_U32BE] = 0x01, 0x02, 0x03, 0x04,
	[AT_U32LE] = 0x04, 0x03, 0x02, 0x01,
	[AT_U16BE] = 0xbe, 0xef,
	[AT_U64BE] = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	[AT_I16LE] = 0xfe, 0xff,                               /* -2 */
	[AT_F32BE] = 0x3f, 0xc0, 0x00, 0x00,                   /* 1.5f */
	[AT_F64LE] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0xbf, /* -0.25 */
	[AT_U8] = 0xab,
	[AT_I8] = 0x80,                                        /* -128 */
	[AT_I64LE] = 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* -1 */
	[AT_I32BE] = 0xff, 0xff, 0xff, 0xfd,                   /* -3 */
	[AT_U16LE] = 0xef, 0xbe,
	[AT_U64LE] = 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
	[AT_F64BE] = 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, /* 3.141592653589793 */
	[AT_F32LE] = 0x00, 0x00, 0x20, 0xc1,                   /* -10.0f */
	[AT_I16BE] = 0x80, 0x00,                               /* INT16_MIN */
	[AT_I32LE] = 0x00, 0x00, 0x00, 0x80,                   /* INT32_MIN */
	[AT_I64BE] = 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* INT64_MAX */
};

static int put_all(struct mmapd_region *r)
{
	return mmapd_region_put_u32be(r, AT_U32BE, 0x01020304) ||
	       mmapd_region_put_u32le(r, AT_U32LE, 0x01020304) ||
	       mmapd_region_put_u16be(r, AT_U16BE, 0xbeef) ||
	       mmapd_region_put_u64be(r, AT_U64BE, 0x0102030405060708ull) ||
	       mmapd_region_put_i16le(r, AT_I16LE, -2) ||
	       mmapd_region_put_f32be(r, AT_F32BE, 1.5f) ||
	       mmapd_region_put_f64le(r, AT_F64LE, -0.25) ||
	       mmapd_region_put_u8(r, AT_U8, 0xab) ||
	       mmapd_region_put_i8(r, AT_I8, -128) ||
	       mmapd_region_put_i64le(r, AT_I64LE, -1) ||
	       mmapd_region_put_i32be(r, AT_I32BE, -3) ||
	       mmapd_region_put_u16le(r, AT_U16LE, 0xbeef) ||
	       mmapd_region_put_u64le(r, AT_U64LE, 0x0102030405060708ull) ||
	       mmapd_region_put_f64be(r, AT_F64BE, 3.141592653589793) ||
	       mmapd_region_put_f32le(r, AT_F32LE, -10.0f) ||
	       mmapd_region_put_i16be(r, AT_I16BE, INT16_MIN) ||
	       mmapd_region_put_i32le(r, AT_I32LE, INT32_MIN) ||
	       mmapd_region_put_i64be(r, AT_I64BE, INT64_MAX) ? 1 : 0;
}

START_TEST(test_scalar_numbers_put_by_one_process_read_back_by_another)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_scalar");
	struct mmapd_region *region = region_in(c, MMAPD_MODE_RW, 4096);
	struct mmapd_region *ro;
	uint8_t u8;
	int8_t i8;
	uint16_t u16;
	int16_t i16;
	uint32_t u32;
	int32_t i32;
	uint64_t u64;
	int64_t i64;
	float f32;
	double f64;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mmapd_client *cc = NULL;

		if (mmapd_connect(dmn.sock, "scalar-writer", &cc) < 0)
			_exit(1);
		_exit(put_all(region_in(cc, MMAPD_MODE_RW, 0)) ? 2 : 0);
	}
	test_child_wait(pid, 20000);
	ck_assert_mem_eq(mmapd_region_data(region), want, sizeof(want));

	/* Read back through a read-only mapping of this process. */
	ro = region_in(c, MMAPD_MODE_RO, 0);
	ck_assert_int_eq(mmapd_region_get_u32be(ro, AT_U32BE, &u32), 0);
	ck_assert_uint_eq(u32, 0x01020304);
	ck_assert_int_eq(mmapd_region_get_u32le(ro, AT_U32LE, &u32), 0);
	ck_assert_uint_eq(u32, 0x01020304);
	/* The same bytes in the other order. */
	ck_assert_int_eq(mmapd_region_get_u32le(ro, AT_U32BE, &u32), 0);
	ck_assert_uint_eq(u32, 0x04030201);
	ck_assert_int_eq(mmapd_region_get_u16be(ro, AT_U16BE, &u16), 0);
	ck_assert_uint_eq(u16, 0xbeef);
	ck_assert_int_eq(mmapd_region_get_u16le(ro, AT_U16LE, &u16), 0);
	ck_assert_uint_eq(u16, 0xbeef);
	ck_assert_int_eq(mmapd_region_get_u64be(ro, AT_U64BE, &u64), 0);
	ck_assert_uint_eq(u64, 0x0102030405060708ull);
	ck_assert_int_eq(mmapd_region_get_u64le(ro, AT_U64LE, &u64), 0);
	ck_assert_uint_eq(u64, 0x0102030405060708ull);
	ck_assert_int_eq(mmapd_region_get_i16le(ro, AT_I16LE, &i16), 0);
	ck_assert_int_eq(i16, -2);
	ck_assert_int_eq(mmapd_region_get_i16be(ro, AT_I16BE, &i16), 0);
	ck_assert_int_eq(i16, INT16_MIN);
	ck_assert_int_eq(mmapd_region_get_i32be(ro, AT_I32BE, &i32), 0);
	ck_assert_int_eq(i32, -3);
	ck_assert_int_eq(mmapd_region_get_i32le(ro, AT_I32LE, &i32), 0);
	ck_assert_int_eq(i32, INT32_MIN);
	ck_assert_int_eq(mmapd_region_get_i64le(ro, AT_I64LE, &i64), 0);
	ck_assert_int_eq(i64, -1);
	ck_assert_int_eq(mmapd_region_get_i64be(ro, AT_I64BE, &i64), 0);
	ck_assert_int_eq(i64, INT64_MAX);
	ck_assert_int_eq(mmapd_region_get_u8(ro, AT_U8, &u8), 0);
	ck_assert_uint_eq(u8, 0xab);
	ck_assert_int_eq(mmapd_region_get_i8(ro, AT_I8, &i8), 0);
	ck_assert_int_eq(i8, -128);
	ck_assert_int_eq(mmapd_region_get_f32be(ro, AT_F32BE, &f32), 0);
	ck_assert(f32 == 1.5f);
	ck_assert_int_eq(mmapd_region_get_f32le(ro, AT_F32LE, &f32), 0);
	ck_assert(f32 == -10.0f);
	ck_assert_int_eq(mmapd_region_get_f64le(ro, AT_F64LE, &f64), 0);
	ck_assert(f64 == -0.25);
	ck_assert_int_eq(mmapd_region_get_f64be(ro, AT_F64BE, &f64), 0);
	ck_assert(f64 == 3.141592653589793);
	mmapd_region_close(ro);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "numbers"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_scalar_out_of_range_overflowing_and_bad_calls_are_refused)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_scalar");
	struct mmapd_region *region = region_in(c, MMAPD_MODE_RW, 4096);
	struct mmapd_region *ro = region_in(c, MMAPD_MODE_RO, 0);
	const unsigned char *d = mmapd_region_data(region);
	uint64_t u64 = 7, big = 0x1122334455667788ull;
	uint32_t u32;

	/* The last eight bytes of the window, and not one more. */
	ck_assert_int_eq(mmapd_region_put_u64be(region, 4088, big), 0);
	ck_assert_int_eq(mmapd_region_put_u64be(region, 4089, 1), -ERANGE);
	ck_assert_int_eq(mmapd_region_get_u64le(region, 4089, &u64), -ERANGE);
	ck_assert_uint_eq(u64, 7);
	ck_assert_int_eq(mmapd_region_get_u32le(region, 4093, &u32), -ERANGE);
	ck_assert_int_eq(mmapd_region_put_u8(region, 4096, 1), -ERANGE);
	/* off + size wraps around: still out of range. */
	ck_assert_int_eq(mmapd_region_get_u32be(region, UINT64_MAX - 1, &u32), -ERANGE);
	ck_assert_int_eq(mmapd_region_put_u64le(region, UINT64_MAX - 3, 1), -ERANGE);
	ck_assert_uint_eq(d[0], 0);
	/* A read-only region takes no puts; gets work. */
	ck_assert_int_eq(mmapd_region_put_u32le(ro, 0, 1), -EACCES);
	ck_assert_int_eq(mmapd_region_get_u64be(ro, 4088, &u64), 0);
	ck_assert_uint_eq(u64, big);
	/* Sizes and orders that do not exist, NULL arguments. */
	ck_assert_int_eq(mmapd_region_get_scalar(region, 0, 3, MMAPD_ORDER_LE, &u32), -EINVAL);
	ck_assert_int_eq(mmapd_region_get_scalar(region, 0, 16, MMAPD_ORDER_BE, &u32), -EINVAL);
	ck_assert_int_eq(mmapd_region_get_scalar(region, 0, 4, (enum mmapd_byte_order)0, &u32),
	                 -EINVAL);
	ck_assert_int_eq(mmapd_region_put_scalar(region, 0, 4, (enum mmapd_byte_order)3, &u32),
	                 -EINVAL);
	ck_assert_int_eq(mmapd_region_get_scalar(region, 0, 4, MMAPD_ORDER_LE, NULL), -EINVAL);
	ck_assert_int_eq(mmapd_region_put_scalar(region, 0, 4, MMAPD_ORDER_LE, NULL), -EINVAL);
	ck_assert_int_eq(mmapd_region_get_u32le(NULL, 0, &u32), -EINVAL);
	ck_assert_uint_eq(d[0], 0);
	mmapd_region_close(ro);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "numbers"), 0);
	mmapd_disconnect(c);
}
END_TEST

static Suite *scalar_suite(void)
{
	Suite *s = suite_create("scalar");
	TCase *tc = tcase_create("scalar");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_scalar_numbers_put_by_one_process_read_back_by_another);
	tcase_add_test(tc, test_scalar_out_of_range_overflowing_and_bad_calls_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(scalar_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
