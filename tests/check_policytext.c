/* SPDX-License-Identifier: MIT */
/*
 * Tests of the text calls of the public API that need no daemon: flush policies as text
 * (client/policytext.c: mmapd_policy_parse(), mmapd_policy_format()) and the failure sentence
 * code built on libmmapd records (mmapd_set_last_message(), client/error.c).
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "mmapd.h"

/* Parses text, asserting success, and returns the policy. */
static struct mmapd_policy parse_ok(const char *text)
{
	struct mmapd_policy p = { MMAPD_POLICY_INTERVAL, 12345 };
	int r = mmapd_policy_parse(text, &p);

	ck_assert_msg(r == 0, "parse '%s': %d (%s)", text, r, mmapd_last_message());
	return p;
}

/* Parses text, asserting err and a message that contains want. */
static void parse_fails(const char *text, int err, const char *want)
{
	struct mmapd_policy p = { MMAPD_POLICY_INTERVAL, 12345 };
	int r = mmapd_policy_parse(text, &p);

	ck_assert_msg(r == err, "parse '%s': %d (%s), expected %d", text, r, mmapd_last_message(),
	              err);
	ck_assert_msg(strstr(mmapd_last_message(), want), "parse '%s': message '%s' lacks '%s'",
	              text, mmapd_last_message(), want);
	ck_assert_int_eq(p.kind, MMAPD_POLICY_INTERVAL);
	ck_assert_uint_eq(p.value, 12345);
}

START_TEST(test_policytext_parse_reads_every_kind_and_its_value)
{
	struct mmapd_policy p;

	p = parse_ok("manual");
	ck_assert_int_eq(p.kind, MMAPD_POLICY_MANUAL);
	ck_assert_uint_eq(p.value, 0);
	p = parse_ok("always");
	ck_assert_int_eq(p.kind, MMAPD_POLICY_ALWAYS);
	ck_assert_uint_eq(p.value, 0);
	p = parse_ok("every-bytes 4096");
	ck_assert_int_eq(p.kind, MMAPD_POLICY_EVERY_BYTES);
	ck_assert_uint_eq(p.value, 4096);
	ck_assert_uint_eq(parse_ok("every-bytes 64K").value, 65536);
	ck_assert_uint_eq(parse_ok("every-bytes 2MiB").value, 2u << 20);
	ck_assert_uint_eq(parse_ok("every-bytes 1g").value, 1ull << 30);
	p = parse_ok("every-writes 3");
	ck_assert_int_eq(p.kind, MMAPD_POLICY_EVERY_WRITES);
	ck_assert_uint_eq(p.value, 3);
	p = parse_ok("interval 500");
	ck_assert_int_eq(p.kind, MMAPD_POLICY_INTERVAL);
	ck_assert_uint_eq(p.value, 500);
}
END_TEST

START_TEST(test_policytext_parse_refuses_what_is_not_a_policy_and_says_why)
{
	struct mmapd_policy p;

	parse_fails("sometimes", -EINVAL, "unknown policy 'sometimes' (manual, always,");
	parse_fails("", -EINVAL, "unknown policy ''");
	parse_fails("manual 3", -EINVAL, "policy 'manual' takes no value");
	parse_fails("always ", -EINVAL, "policy 'always' takes no value");
	parse_fails("every-writes", -EINVAL, "policy 'every-writes' needs a value");
	parse_fails("every-writes 0", -EINVAL, "invalid value '0' for policy 'every-writes'");
	parse_fails("every-writes -1", -EINVAL, "invalid value '-1'");
	parse_fails("every-writes 3x", -EINVAL, "invalid value '3x'");
	parse_fails("interval 5K", -EINVAL, "invalid value '5K' for policy 'interval'");
	parse_fails("every-bytes 5X", -EINVAL, "invalid value '5X'");
	parse_fails("every-writes  3", -EINVAL, "invalid value ' 3'");
	parse_fails("every-writes 18446744073709551616", -ERANGE, "too large");
	parse_fails("every-bytes 17179869184G", -ERANGE, "too large");
	ck_assert_int_eq(mmapd_policy_parse(NULL, &p), -EINVAL);
	ck_assert_int_eq(mmapd_policy_parse("manual", NULL), -EINVAL);
}
END_TEST

START_TEST(test_policytext_format_writes_what_parse_reads)
{
	static const struct mmapd_policy policies[] = {
		{ MMAPD_POLICY_MANUAL, 0 }, { MMAPD_POLICY_ALWAYS, 0 },
		{ MMAPD_POLICY_EVERY_BYTES, 65536 }, { MMAPD_POLICY_EVERY_WRITES, 3 },
		{ MMAPD_POLICY_INTERVAL, 500 },
	};
	static const char *const texts[] = {
		"manual", "always", "every-bytes 65536", "every-writes 3", "interval 500",
	};
	struct mmapd_policy back, bad = { (enum mmapd_policy_kind)99, 0 };
	char buf[64];

	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		ck_assert_int_eq(mmapd_policy_format(&policies[i], buf, sizeof(buf)),
		                 (int)strlen(texts[i]));
		ck_assert_str_eq(buf, texts[i]);
		back = parse_ok(buf);
		ck_assert_int_eq(back.kind, policies[i].kind);
		ck_assert_uint_eq(back.value, policies[i].value);
	}
	/* A kind without a value ignores whatever value holds. */
	back = (struct mmapd_policy){ MMAPD_POLICY_ALWAYS, 7 };
	ck_assert_int_eq(mmapd_policy_format(&back, buf, sizeof(buf)), 6);
	ck_assert_str_eq(buf, "always");
	/* The NUL must fit too. */
	ck_assert_int_eq(mmapd_policy_format(&policies[3], buf, strlen(texts[3])), -ERANGE);
	ck_assert_int_eq(mmapd_policy_format(&policies[3], buf, strlen(texts[3]) + 1),
	                 (int)strlen(texts[3]));
	ck_assert_int_eq(mmapd_policy_format(&bad, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(mmapd_policy_format(NULL, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(mmapd_policy_format(&policies[0], NULL, 8), -EINVAL);
}
END_TEST

START_TEST(test_policytext_set_last_message_is_what_last_message_gives)
{
	ck_assert_int_eq(mmapd_set_last_message(-EIO, "the %s of '%s' failed", "flush", "r"), -EIO);
	ck_assert_str_eq(mmapd_last_message(), "the flush of 'r' failed");
	/* A successful library call leaves it alone. */
	ck_assert_int_eq(mmapd_policy_format(&(struct mmapd_policy){ MMAPD_POLICY_MANUAL, 0 },
	                                     (char[8]){ 0 }, 8), 6);
	ck_assert_str_eq(mmapd_last_message(), "the flush of 'r' failed");
	/* Without a sentence, the error's name; 0 forgets the failure. */
	ck_assert_int_eq(mmapd_set_last_message(-ENOSPC, NULL), -ENOSPC);
	ck_assert_str_eq(mmapd_last_message(), mmapd_strerror(-ENOSPC));
	ck_assert_int_eq(mmapd_set_last_message(0, NULL), 0);
	ck_assert_str_eq(mmapd_last_message(), "no error");
}
END_TEST

static Suite *policytext_suite(void)
{
	Suite *s = suite_create("policytext");
	TCase *tc = tcase_create("policytext");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_add_test(tc, test_policytext_parse_reads_every_kind_and_its_value);
	tcase_add_test(tc, test_policytext_parse_refuses_what_is_not_a_policy_and_says_why);
	tcase_add_test(tc, test_policytext_format_writes_what_parse_reads);
	tcase_add_test(tc, test_policytext_set_last_message_is_what_last_message_gives);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(policytext_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
