/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for shared/name.c and shared/num.c: the region name rules that keep every name a
 * single harmless path component, and the strict number parsing used for options and config.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "name.h"
#include "num.h"

static int check_str(const char *name)
{
	return name_check(name, strlen(name));
}

START_TEST(test_name_accepts_valid_names)
{
	static const char *const good[] = {
		"a", "cache", "Cache_2", "feature-store", "a.b", "a..b", "x-", "x.", "0", "9lives",
		"_hidden_not", "A.B-C_D.e",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(check_str(good[i]) == 0, "refused %s", good[i]);
		ck_assert_str_eq(name_problem(good[i], strlen(good[i])), "the name is valid");
	}
}
END_TEST

START_TEST(test_name_rejects_dot_names_and_paths)
{
	static const char *const bad[] = { ".", "..", ".hidden", "/a", "a/b", "a/", "../x", "a\\b" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(check_str(bad[i]) == -EINVAL, "accepted %s", bad[i]);
	ck_assert_str_eq(name_problem("..", 2), "the name starts with '.'");
	ck_assert_str_eq(name_problem("a/b", 3), "the name contains '/'");
}
END_TEST

START_TEST(test_name_rejects_empty)
{
	ck_assert_int_eq(name_check("", 0), -EINVAL);
	ck_assert_int_eq(name_check("abc", 0), -EINVAL);
	ck_assert_str_eq(name_problem("", 0), "the name is empty");
}
END_TEST

START_TEST(test_name_limits_length_to_255_bytes)
{
	char name[257];

	memset(name, 'n', sizeof(name));
	ck_assert_int_eq(name_check(name, 255), 0);
	ck_assert_int_eq(name_check(name, 256), -ENAMETOOLONG);
	ck_assert_int_eq(name_check(name, 257), -ENAMETOOLONG);
	ck_assert_str_eq(name_problem(name, 256), "the name is longer than 255 bytes");
	/* Length is judged first: a long name of bad bytes is still "too long". */
	memset(name, '/', sizeof(name));
	ck_assert_int_eq(name_check(name, 256), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_name_rejects_control_chars_and_space)
{
	static const char *const bad[] = { "a b", " a", "a ", "a\tb", "a\nb", "a\rb", "\x01", "a\x7f" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(check_str(bad[i]) == -EINVAL, "accepted byte 0x%02x", (unsigned char)bad[i][1]);
}
END_TEST

START_TEST(test_name_rejects_embedded_nul)
{
	ck_assert_int_eq(name_check("ab\0cd", 5), -EINVAL);
	ck_assert_int_eq(name_check("ab\0", 3), -EINVAL);
	ck_assert_str_eq(name_problem("ab\0cd", 5), "the name contains a NUL byte");
	/* The same bytes with the length stopping before the NUL are fine. */
	ck_assert_int_eq(name_check("ab\0cd", 2), 0);
}
END_TEST

START_TEST(test_name_rejects_leading_dash_and_dot)
{
	ck_assert_int_eq(check_str("-rf"), -EINVAL);
	ck_assert_int_eq(check_str("-"), -EINVAL);
	ck_assert_int_eq(check_str(".a"), -EINVAL);
	ck_assert_str_eq(name_problem("-rf", 3), "the name starts with '-'");
}
END_TEST

START_TEST(test_name_rejects_non_ascii)
{
	static const char *const bad[] = { "caf\xc3\xa9", "\xe2\x80\x8bz", "a\xff", "\xc0\xae\xc0\xae" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(check_str(bad[i]), -EINVAL);
	ck_assert_str_eq(name_problem("caf\xc3\xa9", 5),
			 "the name contains a byte outside A-Z, a-z, 0-9, '.', '_' and '-'");
}
END_TEST

START_TEST(test_num_parses_u64)
{
	uint64_t v = 0;

	ck_assert_int_eq(num_parse_u64("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(num_parse_u64("4096", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(num_parse_u64("007", &v), 0);
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(num_parse_u64("18446744073709551615", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

/* Each of the n bad strings is -EINVAL to parse, and parse leaves the output alone. */
static void check_parse_rejects(int (*parse)(const char *, uint64_t *), const char *const *bad, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t v = 77;

		ck_assert_msg(parse(bad[i], &v) == -EINVAL, "accepted '%s'", bad[i]);
		ck_assert_uint_eq(v, 77);
	}
}

START_TEST(test_num_u64_rejects_junk_and_signs)
{
	static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1x", "0x10", "1.0", "4K", "-0" };

	check_parse_rejects(num_parse_u64, bad, sizeof(bad) / sizeof(bad[0]));
}
END_TEST

START_TEST(test_num_u64_reports_overflow)
{
	uint64_t v = 77;

	ck_assert_int_eq(num_parse_u64("18446744073709551616", &v), -ERANGE);
	ck_assert_int_eq(num_parse_u64("99999999999999999999999999", &v), -ERANGE);
	ck_assert_uint_eq(v, 77);
	/* Junk after an overlong number is junk first. */
	ck_assert_int_eq(num_parse_u64("99999999999999999999999999x", &v), -EINVAL);
}
END_TEST

START_TEST(test_num_parses_size_suffixes)
{
	static const struct {
		const char *text;
		uint64_t value;
	} cases[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "4K", 4096 },
		{ "4k", 4096 },
		{ "4KiB", 4096 },
		{ "4kib", 4096 },
		{ "1MiB", 1ULL << 20 },
		{ "1M", 1ULL << 20 },
		{ "2g", 2ULL << 30 },
		{ "2GiB", 2ULL << 30 },
		{ "1T", 1ULL << 40 },
		{ "1tib", 1ULL << 40 },
		{ "16777215T", 16777215ULL << 40 },
		{ "18446744073709551615", UINT64_MAX },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0;

		ck_assert_msg(num_parse_size(cases[i].text, &v) == 0, "refused '%s'", cases[i].text);
		ck_assert_uint_eq(v, cases[i].value);
	}
}
END_TEST

START_TEST(test_num_size_rejects_bad_input)
{
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "1X", "K", "1KB", "1Ki", "1iB", "1KiBx", "1 K", "1.5M", "1P", "1B",
	};

	check_parse_rejects(num_parse_size, bad, sizeof(bad) / sizeof(bad[0]));
}
END_TEST

START_TEST(test_num_size_reports_overflow)
{
	uint64_t v = 77;

	ck_assert_int_eq(num_parse_size("18446744073709551616", &v), -ERANGE);
	ck_assert_int_eq(num_parse_size("16777216T", &v), -ERANGE);
	ck_assert_int_eq(num_parse_size("17179869184G", &v), -ERANGE);
	ck_assert_int_eq(num_parse_size("18446744073709551615K", &v), -ERANGE);
	ck_assert_uint_eq(v, 77);
	/* A bad suffix is reported as such even on an overlong number. */
	ck_assert_int_eq(num_parse_size("99999999999999999999X", &v), -EINVAL);
}
END_TEST

static Suite *name_suite(void)
{
	Suite *s = suite_create("name");
	TCase *tc = tcase_create("name");

	tcase_add_test(tc, test_name_accepts_valid_names);
	tcase_add_test(tc, test_name_rejects_dot_names_and_paths);
	tcase_add_test(tc, test_name_rejects_empty);
	tcase_add_test(tc, test_name_limits_length_to_255_bytes);
	tcase_add_test(tc, test_name_rejects_control_chars_and_space);
	tcase_add_test(tc, test_name_rejects_embedded_nul);
	tcase_add_test(tc, test_name_rejects_leading_dash_and_dot);
	tcase_add_test(tc, test_name_rejects_non_ascii);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *num_suite(void)
{
	Suite *s = suite_create("num");
	TCase *tc = tcase_create("num");

	tcase_add_test(tc, test_num_parses_u64);
	tcase_add_test(tc, test_num_u64_rejects_junk_and_signs);
	tcase_add_test(tc, test_num_u64_reports_overflow);
	tcase_add_test(tc, test_num_parses_size_suffixes);
	tcase_add_test(tc, test_num_size_rejects_bad_input);
	tcase_add_test(tc, test_num_size_reports_overflow);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(name_suite());
	int failed;

	srunner_add_suite(sr, num_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
