/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of access control and operations: region owners and modes checked on
 * grants and changes, chown/chmod rules, allow_connect and allow_create, per-client quotas,
 * socket activation, configuration reload on SIGHUP, and the clients and stats ops.
 *
 * Other users are real: the suite runs as root, and a forked child drops to another uid and
 * gid (test_conn_open_as: setgroups, setgid, setuid) just to connect() a socket the test
 * made; the kernel records the connecting process's credentials (SO_PEERCRED), so the test
 * then speaks over that socket as the other user. Without root the tests that need it are
 * skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define NOBODY  65534u   /* uid and gid of nobody/nogroup on Debian */
#define STRANGER 65533u  /* a uid and gid in no group of interest */

/* The socket is world-connectable so that other uids reach the daemon at all. */
#define CFG_OPEN "\"socket_mode\": \"0666\""

static void access_start_open(struct test_daemon *d)
{
	test_daemon_start_shared(d, "{" CFG_OPEN "}");
}

START_TEST(test_access_mode_refuses_rw_and_allows_ro_by_group)
{
	struct test_daemon d;
	struct test_conn root, nobody, stranger;

	if (!test_is_root())
		return;
	access_start_open(&d);
	test_conn_open_hello(&root, &d);
	test_reply_ok(test_conn_callf(&root, "{'op':'open','name':'g','mode':'rw','create':true,"
	                              "'size':4096,'perm':%d}", 0640));
	test_reply_ok(test_conn_callf(&root, "{'op':'chown','name':'g','gid':%u}", NOBODY));

	test_conn_open_hello_as(&nobody, &d, NOBODY, NOBODY);
	test_reply_error(test_conn_callf(&nobody, "{'op':'open','name':'g','mode':'rw'}"),
	                 "EACCES", EACCES, "permission denied");
	test_reply_ok(test_conn_callf(&nobody, "{'op':'open','name':'g','mode':'ro'}"));
	test_reply_ok(test_conn_callf(&nobody, "{'op':'stat','name':'g'}"));
	test_reply_error(test_conn_callf(&nobody, "{'op':'delete','name':'g'}"),
	                 "EACCES", EACCES, "may not write region 'g'");
	test_reply_error(test_conn_callf(&nobody, "{'op':'resize','name':'g','size':8192}"),
	                 "EACCES", EACCES, "permission denied");
	test_reply_error(test_conn_callf(&nobody, "{'op':'set-policy','name':'g',"
	                                 "'policy':{'kind':'always'}}"), "EACCES", EACCES,
	                 "permission denied");
	test_reply_error(test_conn_callf(&nobody, "{'op':'changed','name':'g','offset':0,"
	                                 "'length':1}"), "EACCES", EACCES, "permission denied");

	test_conn_open_hello_as(&stranger, &d, STRANGER, STRANGER);
	test_reply_error(test_conn_callf(&stranger, "{'op':'open','name':'g'}"),
	                 "EACCES", EACCES, "may not read region 'g'");
	test_reply_error(test_conn_callf(&stranger, "{'op':'stat','name':'g'}"),
	                 "EACCES", EACCES, "permission denied");
	test_reply_error(test_conn_callf(&stranger, "{'op':'subscribe','name':'g'}"),
	                 "EACCES", EACCES, "permission denied");
	test_conn_close(&stranger);
	test_conn_close(&nobody);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_access_owner_survives_restart_in_metadata)
{
	struct test_daemon d;
	struct test_conn root;
	const cJSON *region;
	cJSON *reply;

	access_start_open(&d);
	test_conn_open_hello(&root, &d);
	test_reply_ok(test_conn_callf(&root, "{'op':'open','name':'m','mode':'rw','create':true,"
	                              "'size':4096,'perm':%d}", 0604));
	test_reply_ok(test_conn_callf(&root, "{'op':'chown','name':'m','uid':%u,'gid':%u}",
	                              NOBODY, STRANGER));
	test_conn_close(&root);
	test_daemon_kill(&d);
	test_daemon_restart(&d);
	reply = test_daemon_stat(&d, "m", &region);
	ck_assert_uint_eq(test_json_u64(region, "uid"), NOBODY);
	ck_assert_uint_eq(test_json_u64(region, "gid"), STRANGER);
	ck_assert_uint_eq(test_json_u64(region, "perm"), 0604);
	cJSON_Delete(reply);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_access_chown_and_chmod_rules)
{
	struct test_daemon d;
	struct test_conn root, nobody;
	const cJSON *region;
	cJSON *reply;

	if (!test_is_root())
		return;
	access_start_open(&d);
	test_daemon_create(&d, "c", 4096, false);
	test_conn_open_hello(&root, &d);
	test_conn_open_hello_as(&nobody, &d, NOBODY, NOBODY);
	test_reply_error(test_conn_callf(&nobody, "{'op':'chmod','name':'c','perm':%d}", 0666),
	                 "EPERM", EPERM, "only root or the owner");
	test_reply_ok(test_conn_callf(&root, "{'op':'chown','name':'c','uid':%u}", NOBODY));
	test_reply_ok(test_conn_callf(&nobody, "{'op':'chmod','name':'c','perm':%d}", 0600));
	test_reply_error(test_conn_callf(&nobody, "{'op':'chown','name':'c','uid':0}"),
	                 "EPERM", EPERM, "only root may change the owner");
	test_reply_error(test_conn_callf(&nobody, "{'op':'chown','name':'c','gid':0}"),
	                 "EPERM", EPERM, "is not in group 0");
	test_reply_ok(test_conn_callf(&nobody, "{'op':'chown','name':'c','gid':%u}", NOBODY));
	test_reply_error(test_conn_callf(&nobody, "{'op':'chmod','name':'c','perm':512}"),
	                 "EINVAL", EINVAL, "'perm'");
	reply = test_daemon_stat(&d, "c", &region);
	ck_assert_uint_eq(test_json_u64(region, "uid"), NOBODY);
	ck_assert_uint_eq(test_json_u64(region, "gid"), NOBODY);
	ck_assert_uint_eq(test_json_u64(region, "perm"), 0600);
	cJSON_Delete(reply);
	/* Root passes every check, as it does with files. */
	test_reply_ok(test_conn_callf(&root, "{'op':'open','name':'c','mode':'rw'}"));
	test_conn_close(&nobody);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_access_allow_connect_refuses_other_uids)
{
	struct test_daemon d;
	struct test_conn nobody;
	cJSON *event;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"allow_connect\": {\"uids\": [1]}}");
	test_conn_open_as(&nobody, &d, NOBODY, NOBODY);
	event = test_conn_recv_frame(&nobody);
	test_assert_error_event(event, "EACCES", EACCES);
	cJSON_Delete(event);
	test_conn_expect_eof(&nobody, TEST_WAIT_MS);
	test_conn_close(&nobody);
	test_daemon_assert_alive(&d);   /* root is always allowed */
	test_daemon_stop(&d);
}
END_TEST

/* One user cannot take every slot: past max_clients_per_uid it is refused, others are not. */
START_TEST(test_access_one_uid_cannot_take_every_connection)
{
	struct test_daemon d;
	struct test_conn nobody[2], extra, stranger;
	cJSON *event;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_clients_per_uid\": 2}");
	test_conn_open_hello_as(&nobody[0], &d, NOBODY, NOBODY);
	test_conn_open_hello_as(&nobody[1], &d, NOBODY, NOBODY);
	test_conn_open_as(&extra, &d, NOBODY, NOBODY);
	event = test_conn_recv_frame(&extra);
	test_assert_error_event(event, "EUSERS", EUSERS);
	ck_assert_msg(strstr(test_json_str(cJSON_GetObjectItemCaseSensitive(event, "error"),
	                                   "message"), "max_clients_per_uid") != NULL,
	              "the refusal does not name the limit: %s", test_describe(event));
	cJSON_Delete(event);
	test_conn_expect_eof(&extra, TEST_WAIT_MS);
	test_conn_close(&extra);
	/* Another uid, and root, still get in. */
	test_conn_open_hello_as(&stranger, &d, STRANGER, STRANGER);
	test_conn_close(&stranger);
	test_daemon_assert_alive(&d);
	/* A slot the user gives back can be taken again. */
	test_conn_close(&nobody[1]);
	/* The status query's own connection counts too. */
	ck_assert_uint_eq(test_daemon_wait_status(&d, "clients", 2), 2);
	test_conn_open_hello_as(&nobody[1], &d, NOBODY, NOBODY);
	test_conn_close(&nobody[0]);
	test_conn_close(&nobody[1]);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_access_allow_create_refuses_creation_not_use)
{
	struct test_daemon d;
	struct test_conn nobody;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"allow_create\": {\"gids\": [12345]}}");
	test_daemon_create(&d, "shared", 4096, false);
	test_conn_open_hello_as(&nobody, &d, NOBODY, NOBODY);
	test_reply_error(test_conn_callf(&nobody, "{'op':'open','name':'x','create':true,"
	                                 "'size':4096}"), "EACCES", EACCES, "allow_create");
	test_reply_error(test_conn_callf(&nobody, "{'op':'open','name':'shared'}"),
	                 "EACCES", EACCES, "permission denied");
	test_conn_close(&nobody);
	test_conn_open_hello_as(&nobody, &d, NOBODY, 12345);
	test_reply_ok(test_conn_callf(&nobody, "{'op':'open','name':'x','create':true,"
	                              "'size':4096,'mode':'rw'}"));
	test_conn_close(&nobody);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_quota_bytes_and_regions_created_give_eagain)
{
	struct test_daemon d;
	struct test_conn c;

	test_daemon_start(&d, "{\"max_bytes_granted_per_client\": 8192,"
	                  " \"max_regions_created_per_client\": 2}");
	test_conn_open_hello(&c, &d);
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'a','create':true,'size':4096}"));
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'b','create':true,'size':4096}"));
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'c','create':true,'size':4096}"),
	                 "EAGAIN", EAGAIN, "max_regions_created_per_client");
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'a'}"), "EAGAIN", EAGAIN,
	                 "max_bytes_granted_per_client");
	test_reply_ok(test_conn_callf(&c, "{'op':'close','handle':1}"));
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'a'}"));
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/* Writes text to path (replacing it). */
static void access_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_sighup_reload_changes_limit_keeping_clients)
{
	struct test_daemon d;
	struct test_conn c;
	cJSON *reply = NULL;
	int64_t deadline;

	test_daemon_start(&d, "{\"max_grants_per_client\": 1}");
	test_conn_open_hello(&c, &d);
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'r','create':true,'size':4096}"));
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'r'}"), "EAGAIN", EAGAIN,
	                 "max_grants_per_client");

	/* An invalid file changes nothing. */
	access_write_file(d.config, "{\"max_grants_per_client\": \"lots\"}");
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	test_reply_ok(test_conn_callf(&c, "{'op':'ping'}"));
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'r'}"), "EAGAIN", EAGAIN,
	                 "max_grants_per_client");

	access_write_file(d.config, "{\"max_grants_per_client\": 4}");
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	deadline = test_now_ms() + TEST_WAIT_MS;
	do {
		cJSON_Delete(reply);
		usleep(10000);
		reply = test_conn_callf(&c, "{'op':'open','name':'r'}");
	} while (!test_json_bool(reply, "ok") && test_now_ms() < deadline);
	test_reply_ok(reply);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_clients_and_stats_report_fields)
{
	static const char *const client_keys[] = {
		"id", "pid", "uid", "gid", "connected_since_ms", "grants", "bytes_granted",
		"regions_created", "locks_held", "locks_waiting", "subscriptions", "queued_bytes",
		"queued_fds",
	};
	static const char *const stats_keys[] = {
		"uptime_ms", "uptime_seconds", "connections_accepted_total", "connections_refused_total",
		"flushes_total", "flushed_bytes_total", "open_fds", "resident_bytes",
	};
	struct test_daemon d;
	struct test_conn c;
	const cJSON *list, *me = NULL, *item;
	cJSON *reply;
	size_t i;

	test_daemon_start(&d, NULL);
	test_conn_open_hello(&c, &d);
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'s','create':true,'size':8192}"));
	test_reply_ok(test_conn_callf(&c, "{'op':'flush','name':'s'}"));
	test_reply_error(test_conn_callf(&c, "{'op':'stat','name':'nope'}"), "ENOENT", ENOENT,
	                 "does not exist");

	reply = test_conn_callf(&c, "{'op':'clients'}");
	test_assert_ok(reply);
	ck_assert(!test_json_bool(reply, "more"));
	list = cJSON_GetObjectItemCaseSensitive(reply, "clients");
	ck_assert(cJSON_IsArray(list));
	cJSON_ArrayForEach(item, list)
		if (test_json_u64(item, "pid") == (uint64_t)getpid())
			me = item;
	ck_assert_ptr_nonnull(me);
	for (i = 0; i < sizeof(client_keys) / sizeof(client_keys[0]); i++)
		test_json_u64(me, client_keys[i]);
	ck_assert_uint_eq(test_json_u64(me, "grants"), 1);
	ck_assert_uint_eq(test_json_u64(me, "bytes_granted"), 8192);
	ck_assert_uint_eq(test_json_u64(me, "regions_created"), 1);
	cJSON_Delete(reply);

	reply = test_conn_callf(&c, "{'op':'stats'}");
	test_assert_ok(reply);
	for (i = 0; i < sizeof(stats_keys) / sizeof(stats_keys[0]); i++)
		test_json_u64(reply, stats_keys[i]);
	ck_assert_uint_ge(test_json_u64(reply, "flushes_total"), 1);
	ck_assert_uint_ge(test_json_u64(reply, "resident_bytes"), 4096);
	ck_assert_uint_eq(test_json_u64(cJSON_GetObjectItemCaseSensitive(reply, "requests"), "open"), 1);
	ck_assert_uint_eq(test_json_u64(cJSON_GetObjectItemCaseSensitive(reply, "errors"), "ENOENT"), 1);
	cJSON_Delete(reply);

	reply = test_conn_callf(&c, "{'op':'stats','format':'prometheus'}");
	test_assert_ok(reply);
	ck_assert_uint_gt(test_assert_prometheus(test_json_str(reply, "text")), 10);
	ck_assert_ptr_nonnull(strstr(test_json_str(reply, "text"),
	                             "mmapd_requests_total{op=\"open\"} 1\n"));
	cJSON_Delete(reply);
	test_reply_error(test_conn_callf(&c, "{'op':'stats','format':'xml'}"), "EINVAL", EINVAL,
	                 "'format'");
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

#define SOCKET_ACTIVATE "/usr/bin/systemd-socket-activate"

START_TEST(test_socket_activation_uses_passed_socket_and_leaves_it)
{
	struct test_daemon d;
	struct stat st;
	int64_t deadline;
	int status, fd = -1;

	if (access(SOCKET_ACTIVATE, X_OK) != 0) {
		fprintf(stderr, "skipped: %s is not installed (Debian package systemd)\n",
		        SOCKET_ACTIVATE);
		return;
	}
	memset(&d, 0, sizeof(d));
	test_mkdtemp(d.dir, sizeof(d.dir));
	snprintf(d.sock, sizeof(d.sock), "%.200s/s", d.dir);
	snprintf(d.data, sizeof(d.data), "%.200s/data", d.dir);
	d.pid = fork();
	ck_assert_int_ge(d.pid, 0);
	if (d.pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		/* --socket names another path: the passed socket must win over it. */
		execl(SOCKET_ACTIVATE, SOCKET_ACTIVATE, "-l", d.sock, test_env_path("MMAPD_BIN"),
		      "--foreground", "--no-config", "--data-dir", d.data, "--socket", "/nonexistent/unused.sock",
		      (char *)NULL);
		_exit(127);
	}
	/* systemd-socket-activate binds before it listens: wait for a connection, not the file. */
	deadline = test_now_ms() + TEST_WAIT_MS;
	while (test_now_ms() < deadline && (fd = test_try_connect(d.sock)) < 0)
		usleep(5000);
	ck_assert_int_ge(fd, 0);
	close(fd);
	test_daemon_assert_alive(&d);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "clients"), 1);
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	status = test_wait_pid(d.pid, TEST_WAIT_MS);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	d.pid = 0;
	/* The socket belongs to the service manager: it stays. */
	ck_assert_int_eq(stat(d.sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	test_daemon_stop(&d);
}
END_TEST

static Suite *access_suite(void)
{
	Suite *s = suite_create("access");
	TCase *tc = tcase_create("access");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_access_mode_refuses_rw_and_allows_ro_by_group);
	tcase_add_test(tc, test_access_owner_survives_restart_in_metadata);
	tcase_add_test(tc, test_access_chown_and_chmod_rules);
	tcase_add_test(tc, test_access_allow_connect_refuses_other_uids);
	tcase_add_test(tc, test_access_allow_create_refuses_creation_not_use);
	tcase_add_test(tc, test_access_one_uid_cannot_take_every_connection);
	tcase_add_test(tc, test_quota_bytes_and_regions_created_give_eagain);
	tcase_add_test(tc, test_sighup_reload_changes_limit_keeping_clients);
	tcase_add_test(tc, test_clients_and_stats_report_fields);
	tcase_add_test(tc, test_socket_activation_uses_passed_socket_and_leaves_it);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(access_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
