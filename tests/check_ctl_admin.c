/* SPDX-License-Identifier: MIT */
/*
 * mmapctl's operator commands against a real mmapd: clients, stats (table, --json,
 * --prometheus following Prometheus' naming conventions, --output replacing a file at once),
 * chown and chmod, and the owner and mode that stat shows afterwards; flush of a range; help, the "no regions"
 * and "no locks" lines, and exit status 3 with a hint when the daemon is unreachable. Each
 * test starts its own daemon, so counters and regions never leak from one test to the next.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* The exposition follows Prometheus' conventions, all in the mmapd_ namespace. */
START_TEST(stats_prometheus_follows_the_conventions)
{
	static char out[1 << 16];
	struct test_conn c;

	test_conn_open_hello(&c, &dmn);
	CTL(0, out, "stats", "--prometheus");
	ck_assert_uint_gt(test_assert_prometheus(out), 10);
	ck_assert_msg(strstr(out, "mmapd_requests_total{op=\"") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\n# TYPE mmapd_uptime_seconds gauge\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\nmmapd_resident_memory_bytes ") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\nmmapd_open_fds ") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\nmmapd_max_fds ") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\nmmapd_start_time_seconds ") != NULL, "%s", out);
	/* Per-uid budgets: one metric per budget, each in its own unit. */
	ck_assert_msg(strstr(out, "\nmmapd_user_anonymous_bytes{uid=\"") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\nmmapd_user_connections{uid=\"") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "budget=") == NULL, "%s", out);
	test_conn_close(&c);
}
END_TEST

/* --output FILE replaces FILE once the output is complete, and leaves nothing else behind. */
START_TEST(stats_output_replaces_the_file)
{
	static char out[1 << 16];
	char dir[TEST_PATH_MAX], path[TEST_PATH_MAX + 16], text[1 << 16];
	struct stat st;
	FILE *f;
	size_t n;

	test_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/mmapd.prom", dir);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs("old\n", f);
	fclose(f);
	CTL(0, out, "stats", "--prometheus", "--output", path);
	ck_assert_str_eq(out, "");
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	ck_assert_uint_gt(test_assert_prometheus(text), 10);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0644);
	/* A daemon that cannot be reached leaves the old file, and no temporary one. */
	ck_assert_int_eq(test_run_ctl_merged(NULL, out, sizeof(out), "--socket", dir, "stats",
	                                     "--prometheus", "-o", path, (char *)NULL), 3);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(text, 1, sizeof(text) - 1, f), n);
	fclose(f);
	ck_assert_int_eq(test_rmtree(dir), 0);
	CTL(2, out, "watch", "x", "--output", path);
}
END_TEST

/* uptime is named the same in status and stats: "uptime" in tables, "uptime_ms" in JSON. */
START_TEST(stats_json_has_uptime_ms_as_status)
{
	static char out[1 << 16];
	cJSON *obj;

	CTL(0, out, "--json", "status");
	obj = json_parse(out);
	test_json_u64(obj, "uptime_ms");
	cJSON_Delete(obj);
	CTL(0, out, "status");
	ck_assert_msg(strstr(out, "\nuptime             ") != NULL, "%s", out);

	CTL(0, out, "--json", "stats");
	obj = json_parse(out);
	test_json_u64(obj, "uptime_ms");
	test_json_u64(obj, "uptime_seconds");
	test_json_u64(obj, "connections_accepted_total");
	ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(obj, "requests")));
	ck_assert(cJSON_GetObjectItemCaseSensitive(obj, "id") == NULL);
	cJSON_Delete(obj);

	/* The table shows the same figures, and the requests as a section. */
	CTL(0, out, "stats");
	ck_assert_msg(strncmp(out, "uptime ", 7) == 0, "%s", out);
	ck_assert_msg(strstr(out, "uptime_") == NULL, "%s", out);
	ck_assert_msg(strstr(out, "\nrequests:\n  ") != NULL, "%s", out);

	/* --prometheus is for stats alone, and not with --json. */
	CTL(2, out, "--json", "stats", "--prometheus");
	CTL(2, out, "list", "--prometheus");
}
END_TEST

/* No daemon behind the socket: exit status 3 and a hint, for every command. */
START_TEST(unreachable_daemon_exits_3_with_a_hint)
{
	static char out[1 << 14];
	char dir[TEST_PATH_MAX], sock[TEST_PATH_MAX + 8];

	test_mkdtemp(dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/none", dir);
	ck_assert_int_eq(test_run_ctl_merged(NULL, out, sizeof(out), "--socket", sock, "status",
	                                     (char *)NULL), 3);
	ck_assert_msg(strstr(out, "cannot connect to mmapd") && strstr(out, sock), "%s", out);
	ck_assert_msg(strstr(out, "hint: is mmapd running?") &&
	              strstr(out, "systemctl status mmapd.socket"), "%s", out);
	ck_assert_int_eq(test_run_ctl_merged(NULL, out, sizeof(out), "--socket", sock, "locks",
	                                     (char *)NULL), 3);
	test_rmtree(dir);
}
END_TEST

/* A socket the user may not open: exit status 3 and the group hint. */
START_TEST(unreachable_socket_permission_hints_group_mmapd)
{
	static char out[1 << 14];
	struct test_daemon d;
	pid_t pid;
	int st;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{\"socket_mode\": \"0600\"}");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(TEST_NOBODY) < 0 || setuid(TEST_NOBODY) < 0)
			_exit(99);
		st = test_run_ctl_merged(&d, out, sizeof(out), "status", (char *)NULL);
		_exit(st == 3 && strstr(out, "hint: are you in group mmapd?") ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	test_daemon_stop(&d);
}
END_TEST

/* Reads lines of p until one contains want (asserted within TEST_WAIT_MS each). */
static void proc_expect_containing(struct test_proc *p, const char *want)
{
	char line[1024];

	for (;;) {
		ck_assert_msg(test_proc_readline(p, line, sizeof(line), TEST_WAIT_MS) == 1,
		              "no line containing \"%s\"", want);
		if (strstr(line, want))
			return;
	}
}

/* watch says that it lost the connection and reconnects, then prints "reconnected". */
START_TEST(watch_says_it_is_reconnecting)
{
	char *argv[] = { (char *)test_env_path("MMAPCTL_BIN"), (char *)"watch", (char *)"w", NULL };
	static char out[1 << 14];
	struct test_proc p;

	test_daemon_create(&dmn, "w", 4096, false);
	test_proc_spawn_merged(&p, &dmn, argv);
	/* Once watch is subscribed, a change reaches it. */
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "subscriptions", 1), 1);
	CTL(0, out, "resize", "w", "8K");
	proc_expect_containing(&p, "resized w size=8192");
	test_daemon_kill(&dmn);
	proc_expect_containing(&p, "mmapctl: watch w: lost the connection to mmapd");
	test_daemon_restart(&dmn);
	proc_expect_containing(&p, " reconnected");
	CTL(0, out, "resize", "w", "12K");
	proc_expect_containing(&p, "resized w size=12288");
	test_proc_kill(&p, SIGTERM);
	ck_assert_int_eq(test_proc_wait(&p), 0);
}
END_TEST

/* help, help COMMAND and COMMAND --help; help for an unknown command is a usage error. */
START_TEST(help_explains_each_command)
{
	static char out[1 << 14];

	ck_assert_int_eq(test_run_ctl(NULL, out, sizeof(out), "help", (char *)NULL), 0);
	ck_assert_msg(strstr(out, "Usage: mmapctl") && strstr(out, "\n  watch NAME ") &&
	              strstr(out, "3 daemon unreachable"), "%s", out);
	ck_assert_int_eq(test_run_ctl(NULL, out, sizeof(out), "help", "watch", (char *)NULL), 0);
	ck_assert_msg(strncmp(out, "Usage: mmapctl [OPTION]... watch NAME [--external]\n", 51) == 0 &&
	              strstr(out, "reconnects"), "%s", out);
	ck_assert_int_eq(test_run_ctl(NULL, out, sizeof(out), "create", "--help", (char *)NULL), 0);
	ck_assert_msg(strstr(out, "watch NAME") == NULL && strstr(out, "create NAME SIZE") &&
	              strstr(out, "--anonymous"), "%s", out);
	ck_assert_int_eq(test_run_ctl(NULL, out, sizeof(out), "--help", (char *)NULL), 0);
	ck_assert_msg(strstr(out, "\n  chmod NAME MODE "), "%s", out);
	ck_assert_int_eq(test_run_ctl_merged(NULL, out, sizeof(out), "help", "nope", (char *)NULL), 2);
	ck_assert_msg(strstr(out, "unknown command 'nope'"), "%s", out);
}
END_TEST

/* Empty tables say so instead of printing a bare header; --json stays an empty array. */
START_TEST(empty_tables_say_no_regions_no_locks)
{
	static char out[1 << 14];

	CTL(0, out, "list");
	ck_assert_str_eq(out, "no regions\n");
	CTL(0, out, "--json", "list");
	ck_assert_str_eq(out, "[]\n");
	CTL(0, out, "locks");
	ck_assert_str_eq(out, "no locks\n");
	test_daemon_create(&dmn, "r", 4096, false);
	CTL(0, out, "locks", "r");
	ck_assert_str_eq(out, "no locks on r\n");
	CTL(0, out, "list");
	ck_assert_msg(strncmp(out, "NAME", 4) == 0, "%s", out);
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

/*
 * flush --offset/--length flushes a range: one inside the region succeeds (--json says so),
 * one past its end is the daemon's -ERANGE (exit status 1, it reached the daemon), bad
 * numbers and the options on another command are usage errors.
 */
START_TEST(flush_range_reaches_the_daemon)
{
	static char out[4096];
	cJSON *obj;

	test_daemon_create(&dmn, "r", 65536, false);
	CTL(0, out, "flush", "r", "--offset", "4K", "--length", "4096");
	ck_assert_str_eq(out, "");
	CTL(0, out, "--json", "flush", "r", "--offset", "60K");
	obj = json_parse(out);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "flushed")));
	cJSON_Delete(obj);
	CTL(0, out, "flush", "r", "--length", "0");
	TEST_CTL_MERGED(&dmn, 1, out, "flush", "r", "--offset", "128K", "--length", "4K");
	ck_assert_msg(strstr(out, "flush r: "), "%s", out);
	TEST_CTL_MERGED(&dmn, 1, out, "flush", "r", "--offset", "60K", "--length", "8K");
	CTL(2, out, "flush", "r", "--offset", "4Q");
	CTL(2, out, "flush", "r", "--length", "-1");
	CTL(2, out, "stat", "r", "--offset", "0");
	CTL(2, out, "flush", "r", "--offset");
}
END_TEST

static Suite *ctl_admin_suite(void)
{
	Suite *s = suite_create("ctl_admin");
	TCase *tc = tcase_create("ctl_admin");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, clients_lists_own_connection_with_pid);
	tcase_add_test(tc, stats_prometheus_follows_the_conventions);
	tcase_add_test(tc, stats_output_replaces_the_file);
	tcase_add_test(tc, stats_json_has_uptime_ms_as_status);
	tcase_add_test(tc, unreachable_daemon_exits_3_with_a_hint);
	tcase_add_test(tc, unreachable_socket_permission_hints_group_mmapd);
	tcase_add_test(tc, help_explains_each_command);
	tcase_add_test(tc, watch_says_it_is_reconnecting);
	tcase_add_test(tc, empty_tables_say_no_regions_no_locks);
	tcase_add_test(tc, chmod_0600_shows_perm_384);
	tcase_add_test(tc, chown_1_2_shows_uid_1_gid_2);
	tcase_add_test(tc, chmod_bad_mode_exits_2);
	tcase_add_test(tc, chown_missing_region_exits_1_does_not_exist);
	tcase_add_test(tc, policy_words_set_show_and_refuse_as_mmapd_policy_parse_reads_them);
	tcase_add_test(tc, flush_range_reaches_the_daemon);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(ctl_admin_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
