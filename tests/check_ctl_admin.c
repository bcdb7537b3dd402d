/* SPDX-License-Identifier: MIT */
/*
 * mmapctl's operator commands against a real mmapd: clients, stats (table, --json,
 * --prometheus), chown and chmod, and the owner and mode that stat shows afterwards. Each
 * test starts its own daemon, so counters and regions never leak from one test to the next.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct test_daemon dmn;

/* Runs mmapctl against dmn; asserts the exit status; the output is left in out. */
#define CTL(want_status, out, ...) TEST_CTL(&dmn, want_status, out, __VA_ARGS__)

static void setup(void)
{
	test_fd_setup();
	test_daemon_start(&dmn, NULL);
}

static void teardown(void)
{
	test_daemon_stop(&dmn);
	test_fd_teardown();
}

/* Parses mmapctl's --json output (asserted valid JSON); the caller frees it. */
static cJSON *json_parse(const char *out)
{
	cJSON *obj = cJSON_Parse(out);

	ck_assert_msg(obj != NULL, "mmapctl printed invalid JSON: \"%s\"", out);
	return obj;
}

/* How many entries of a clients --json array have pid pid; *ret_ctl counts "mmapctl" ones. */
static int clients_with_pid(const cJSON *arr, int64_t pid, int *ret_ctl)
{
	const cJSON *k;
	int n = 0;

	*ret_ctl = 0;
	ck_assert(cJSON_IsArray(arr));
	cJSON_ArrayForEach(k, arr) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(k, "name");

		test_json_u64(k, "id");
		test_json_u64(k, "connected_since_ms");
		test_json_u64(k, "queued_bytes");
		if ((int64_t)test_json_u64(k, "pid") == pid) {
			ck_assert_uint_eq(test_json_u64(k, "uid"), (uint64_t)getuid());
			ck_assert_uint_eq(test_json_u64(k, "gid"), (uint64_t)getgid());
			n++;
		}
		if (cJSON_IsString(name) && strcmp(name->valuestring, "mmapctl") == 0)
			(*ret_ctl)++;
	}
	return n;
}

START_TEST(clients_lists_own_connection_with_pid)
{
	static char out[1 << 16];
	struct test_conn a, b;
	char pid[32];
	cJSON *arr;
	int nctl;

	test_conn_open_hello(&a, &dmn);
	CTL(0, out, "--json", "clients");
	arr = json_parse(out);
	ck_assert_int_eq(clients_with_pid(arr, getpid(), &nctl), 1);
	ck_assert_int_eq(nctl, 1);
	cJSON_Delete(arr);

	/* A second connection appears as well. */
	test_conn_open_hello(&b, &dmn);
	CTL(0, out, "--json", "clients");
	arr = json_parse(out);
	ck_assert_int_eq(clients_with_pid(arr, getpid(), &nctl), 2);
	ck_assert_int_eq(cJSON_GetArraySize(arr), 3);
	cJSON_Delete(arr);

	/* The table names the columns and shows our pid. */
	CTL(0, out, "clients");
	snprintf(pid, sizeof(pid), " %d ", (int)getpid());
	ck_assert_msg(strncmp(out, "ID", 2) == 0 || strstr(out, " ID ") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "PID") && strstr(out, pid) && strstr(out, "mmapctl"), "%s", out);

	test_conn_close(&b);
	test_conn_close(&a);
}
END_TEST

/* Asserts one line of the exposition format: a comment or "name{labels} value". */
static void prometheus_line_check(const char *line)
{
	const char *p = line, *end;

	if (strncmp(line, "# HELP mmapd_", 13) == 0 || strncmp(line, "# TYPE mmapd_", 13) == 0)
		return;
	ck_assert_msg(strncmp(line, "mmapd_", 6) == 0, "bad line \"%s\"", line);
	p += strspn(p, "abcdefghijklmnopqrstuvwxyz_0123456789");
	if (*p == '{') {
		end = strchr(p, '}');
		ck_assert_msg(end != NULL, "unclosed labels in \"%s\"", line);
		ck_assert_msg(strchr(p, '=') && strchr(p, '"'), "bad labels in \"%s\"", line);
		p = end + 1;
	}
	ck_assert_msg(*p == ' ', "no value in \"%s\"", line);
	p++;
	ck_assert_msg(*p && strspn(p, "0123456789") == strlen(p), "bad value in \"%s\"", line);
}

START_TEST(stats_prometheus_lines_are_well_formed)
{
	static char out[1 << 16];
	char *line, *save = NULL;
	int n = 0;

	CTL(0, out, "stats", "--prometheus");
	ck_assert_msg(strstr(out, "mmapd_requests_total{op=\"") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "# TYPE mmapd_uptime_seconds") != NULL, "%s", out);
	ck_assert(out[strlen(out) - 1] == '\n');
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++)
		prometheus_line_check(line);
	ck_assert_int_gt(n, 10);
}
END_TEST

START_TEST(stats_json_has_uptime_seconds)
{
	static char out[1 << 16];
	cJSON *obj;

	CTL(0, out, "--json", "stats");
	obj = json_parse(out);
	test_json_u64(obj, "uptime_seconds");
	test_json_u64(obj, "connections_accepted_total");
	ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(obj, "requests")));
	ck_assert(cJSON_GetObjectItemCaseSensitive(obj, "id") == NULL);
	cJSON_Delete(obj);

	/* The table shows the same figures, and the requests as a section. */
	CTL(0, out, "stats");
	ck_assert_msg(strncmp(out, "uptime_seconds ", 15) == 0, "%s", out);
	ck_assert_msg(strstr(out, "\nrequests:\n  ") != NULL, "%s", out);

	/* --prometheus is for stats alone, and not with --json. */
	CTL(2, out, "--json", "stats", "--prometheus");
	CTL(2, out, "list", "--prometheus");
}
END_TEST

START_TEST(chmod_0600_shows_perm_384)
{
	static char out[1 << 16];
	cJSON *obj;

	test_daemon_create(&dmn, "r", 4096, false);
	CTL(0, out, "chmod", "r", "0600");
	ck_assert_str_eq(out, "");
	CTL(0, out, "--json", "stat", "r");
	obj = json_parse(out);
	ck_assert_uint_eq(test_json_u64(obj, "perm"), 384);
	cJSON_Delete(obj);
	CTL(0, out, "stat", "r");
	ck_assert_msg(strstr(out, "\nmode               0600\n") != NULL, "%s", out);
	CTL(0, out, "regions");
	ck_assert_msg(strstr(out, "MODE") && strstr(out, " 0600\n"), "%s", out);
}
END_TEST

START_TEST(chown_1_2_shows_uid_1_gid_2)
{
	static char out[1 << 16];
	cJSON *obj;

	test_daemon_create(&dmn, "r", 4096, true);
	CTL(0, out, "chown", "r", "1:2");
	CTL(0, out, "--json", "stat", "r");
	obj = json_parse(out);
	ck_assert_uint_eq(test_json_u64(obj, "uid"), 1);
	ck_assert_uint_eq(test_json_u64(obj, "gid"), 2);
	cJSON_Delete(obj);

	/* Only the group, by number; the owner stays. */
	CTL(0, out, "--json", "chown", "r", ":3");
	CTL(0, out, "stat", "r");
	ck_assert_msg(strstr(out, "\nowner              1:3\n") != NULL, "%s", out);
	CTL(0, out, "list");
	ck_assert_msg(strstr(out, "OWNER") && strstr(out, " 1:3 "), "%s", out);
}
END_TEST

START_TEST(chmod_bad_mode_exits_2)
{
	static char out[4096];

	test_daemon_create(&dmn, "r", 4096, false);
	CTL(2, out, "chmod", "r", "0800");
	CTL(2, out, "chmod", "r", "1777");
	CTL(2, out, "chmod", "r", "rw");
	CTL(2, out, "chmod", "r", "");
	CTL(2, out, "chmod", "r");
	CTL(2, out, "chown", "r", ":");
	CTL(2, out, "chown", "r", "4294967295");
	CTL(2, out, "chown", "r", "no-such-user-mmapd");
}
END_TEST

START_TEST(chown_missing_region_exits_1_does_not_exist)
{
	static char out[4096];
	char *const argv[] = {
		"/bin/sh", "-c", "exec \"$MMAPCTL_BIN\" chown nope 1:2 2>&1", NULL,
	};
	int st;

	test_env_path("MMAPCTL_BIN");
	st = test_run(&dmn, out, sizeof(out), argv);
	ck_assert_msg(st == 1, "exit status %d, output \"%s\"", st, out);
	ck_assert_msg(strstr(out, "chown nope: ") && strstr(out, "does not exist"), "%s", out);
}
END_TEST

START_TEST(policy_words_set_show_and_refuse_as_mmapd_policy_parse_reads_them)
{
	static char out[4096];
	char *const bad[] = {
		"/bin/sh", "-c", "exec \"$MMAPCTL_BIN\" policy r every-writes 0 2>&1", NULL,
	};
	const cJSON *p;
	cJSON *obj;
	int st;

	test_daemon_create(&dmn, "r", 4096, false);
	CTL(0, out, "policy", "r");
	ck_assert_str_eq(out, "manual\n");
	CTL(0, out, "policy", "r", "every-bytes", "64K");
	CTL(0, out, "policy", "r");
	ck_assert_str_eq(out, "every-bytes 65536\n");
	CTL(0, out, "--json", "policy", "r", "interval", "250");
	obj = json_parse(out);
	p = cJSON_GetObjectItemCaseSensitive(obj, "policy");
	ck_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "kind")));
	ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(p, "kind")->valuestring, "interval");
	ck_assert_uint_eq(test_json_u64(p, "value"), 250);
	cJSON_Delete(obj);
	CTL(0, out, "--json", "policy", "r", "always");
	obj = json_parse(out);
	p = cJSON_GetObjectItemCaseSensitive(obj, "policy");
	ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(p, "kind")->valuestring, "always");
	ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(p, "value"));
	cJSON_Delete(obj);
	CTL(0, out, "stat", "r");
	ck_assert_msg(strstr(out, "\npolicy             always\n") != NULL, "%s", out);

	/* Words that are no policy are usage errors, and the region keeps its policy. */
	CTL(2, out, "policy", "r", "sometimes");
	CTL(2, out, "policy", "r", "manual", "3");
	CTL(2, out, "policy", "r", "every-writes");
	CTL(2, out, "policy", "r", "every-bytes", "1Q");
	test_env_path("MMAPCTL_BIN");
	st = test_run(&dmn, out, sizeof(out), bad);
	ck_assert_msg(st == 2, "exit status %d, output \"%s\"", st, out);
	ck_assert_msg(strstr(out, "invalid value '0' for policy 'every-writes'"), "%s", out);
	CTL(0, out, "policy", "r");
	ck_assert_str_eq(out, "always\n");
}
END_TEST

static Suite *ctl_admin_suite(void)
{
	Suite *s = suite_create("ctl_admin");
	TCase *tc = tcase_create("ctl_admin");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, clients_lists_own_connection_with_pid);
	tcase_add_test(tc, stats_prometheus_lines_are_well_formed);
	tcase_add_test(tc, stats_json_has_uptime_seconds);
	tcase_add_test(tc, chmod_0600_shows_perm_384);
	tcase_add_test(tc, chown_1_2_shows_uid_1_gid_2);
	tcase_add_test(tc, chmod_bad_mode_exits_2);
	tcase_add_test(tc, chown_missing_region_exits_1_does_not_exist);
	tcase_add_test(tc, policy_words_set_show_and_refuse_as_mmapd_policy_parse_reads_them);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(ctl_admin_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
