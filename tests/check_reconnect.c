/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of libmmapd's reconnection (docs/coordination.md, "Reconnection"): client
 * processes keep their mappings while the daemon is killed with SIGKILL and restarted on the
 * same paths, libmmapd reconnects by itself (from mmapd_client_dispatch() or from the next call),
 * reports MMAPD_EVENT_RECONNECTED, and MMAPD_EVENT_LOCKS_LOST when locks were held; regions and
 * subscriptions are re-established and later operations work.
 *
 * The clients are session processes ($MMAPD_TESTCLIENT session, on libmmapd); the test checks
 * what the restarted daemon sees over raw connections.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void expect_found(struct test_sess *s, const char *prefix, const char *who)
{
	char *e = test_sess_find_event(s, prefix, TEST_WAIT_MS);

	ck_assert_msg(e != NULL, "%s (pid %d) did not report \"%s\" within %d ms", who, (int)s->pid,
	              prefix, TEST_WAIT_MS);
	free(e);
}

static void ptr_of(struct test_sess *s, const char *idx, char *buf, size_t size)
{
	const char *o = test_sess_ok(s, "ptr %s", idx);
	const char *p = strstr(o, "ptr=");
	size_t n;

	ck_assert(p != NULL);
	p += 4;
	n = strcspn(p, " ");
	ck_assert(n < size);
	memcpy(buf, p, n);
	buf[n] = '\0';
}

START_TEST(test_reconnect_mappings_survive_daemon_sigkill_and_libmmapd_reconnects_by_itself)
{
	struct test_daemon d;
	struct test_sess keeper, plain, idle;
	struct test_conn c;
	char p0[64], p1[64], want[128], path[PATH_MAX], buf[16];
	const cJSON *region;
	cJSON *st, *reply, *locks;
	const cJSON *l;
	int fd;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "keep", 65536, false);

	/* keeper: a read-write mapping, a lock and a subscription. */
	test_sess_start(&keeper, &d, "keeper");
	(void)test_sess_ok(&keeper, "open keep rw");
	ptr_of(&keeper, "0", p0, sizeof(p0));
	(void)test_sess_ok(&keeper, "write 0 100 before");
	(void)test_sess_ok(&keeper, "lock keep 0 0 exclusive");
	(void)test_sess_ok(&keeper, "subscribe keep");
	/* plain: a read-only mapping; its first call after the restart is an ordinary one. */
	test_sess_start(&plain, &d, "plain");
	(void)test_sess_ok(&plain, "open keep ro");
	/* idle: a mapping and nothing else to do but dispatch. */
	test_sess_start(&idle, &d, "idle");
	(void)test_sess_ok(&idle, "open keep ro");
	/* keeper and plain make no library call until told. */
	(void)test_sess_ok(&keeper, "deaf");
	(void)test_sess_ok(&plain, "deaf");

	test_daemon_kill(&d);
	/* Without a daemon the mappings are still the same shared pages. */
	(void)test_sess_ok(&keeper, "write 0 200 during-downtime");
	ck_assert_str_eq(test_sess_ok(&plain, "read 0 200 15"), " during-downtime");
	usleep(200000);
	test_daemon_restart(&d);

	/* By itself, from mmapd_client_dispatch(): */
	expect_found(&idle, "reconnected", "the idle client");
	(void)test_sess_ok(&keeper, "hear");
	expect_found(&keeper, "reconnected", "the lock holder");
	expect_found(&keeper, "locks-lost n=1", "the lock holder");
	/* From the next call: */
	(void)test_sess_ok(&plain, "stat keep");
	(void)test_sess_ok(&plain, "dispatch 1000");
	expect_found(&plain, "reconnected", "the client whose next call was stat");
	test_sess_expect_no_event(&plain, 50);
	test_sess_expect_no_event(&idle, 20);

	/* The mapping was kept, not replaced. */
	ptr_of(&keeper, "0", p1, sizeof(p1));
	ck_assert_str_eq(p0, p1);
	ck_assert_str_eq(test_sess_ok(&keeper, "read 0 100 6"), " before");
	ck_assert_str_eq(test_sess_ok(&keeper, "read 0 200 15"), " during-downtime");

	/* The restarted daemon knows the re-opened grants and the re-made subscription. */
	st = test_daemon_stat(&d, "keep", &region);
	ck_assert_uint_eq(test_json_u64(region, "grants"), 3);
	ck_assert_uint_eq(test_json_u64(region, "clients"), 3);
	cJSON_Delete(st);
	test_conn_open_hello(&c, &d);
	reply = test_conn_callf(&c, "{'op':'changed','name':'keep','offset':200,'length':15}");
	test_assert_ok(reply);
	snprintf(want, sizeof(want), "changed keep seq=%llu first=%llu ranges=200+15 writer=harness/%d",
	         (unsigned long long)test_json_u64(reply, "seq"),
	         (unsigned long long)test_json_u64(reply, "seq"), (int)getpid());
	cJSON_Delete(reply);
	test_sess_expect_event(&keeper, want);

	/* Locking works again, and the new lock is the keeper's. */
	(void)test_sess_ok(&keeper, "lock keep 0 0 exclusive nowait");
	reply = test_conn_callf(&c, "{'op':'locks','name':'keep'}");
	test_assert_ok(reply);
	locks = cJSON_GetObjectItemCaseSensitive(reply, "locks");
	ck_assert_int_eq(cJSON_GetArraySize(locks), 1);
	l = cJSON_GetArrayItem(locks, 0);
	ck_assert_uint_eq(test_json_u64(l, "pid"), (uint64_t)keeper.pid);
	ck_assert_str_eq(test_json_str(l, "client"), "keeper");
	ck_assert_str_eq(test_json_str(l, "state"), "held");
	cJSON_Delete(reply);
	test_conn_close(&c);

	/* Writes after the restart reach the file and the other processes. */
	(void)test_sess_ok(&keeper, "write 0 300 after");
	ck_assert_str_eq(test_sess_ok(&plain, "read 0 300 5"), " after");
	snprintf(path, sizeof(path), "%s/keep", d.data);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert(fd >= 0);
	ck_assert_int_eq(pread(fd, buf, 5, 300), 5);
	close(fd);
	ck_assert_int_eq(memcmp(buf, "after", 5), 0);
	(void)test_sess_ok(&keeper, "flush keep");

	ck_assert_int_eq(test_sess_end(&keeper), 0);
	ck_assert_int_eq(test_sess_end(&plain), 0);
	ck_assert_int_eq(test_sess_end(&idle), 0);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_reconnect_waits_for_a_daemon_that_comes_back_late)
{
	struct test_daemon d;
	struct test_sess s;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "late", 4096, false);
	test_sess_start(&s, &d, NULL);
	(void)test_sess_ok(&s, "open late rw");
	(void)test_sess_ok(&s, "write 0 0 x");
	test_daemon_kill(&d);
	/* Longer than several backoff steps (10 ms doubling). */
	usleep(1500000);
	test_daemon_restart(&d);
	expect_found(&s, "reconnected", "the client");
	test_sess_expect_no_event(&s, 20);
	(void)test_sess_ok(&s, "write 0 1 y");
	ck_assert_str_eq(test_sess_ok(&s, "read 0 0 2"), " xy");
	ck_assert_uint_eq(test_line_u64(test_sess_ok(&s, "stat late"), "grants"), 1);
	ck_assert_int_eq(test_sess_end(&s), 0);
	test_daemon_stop(&d);
}
END_TEST

static Suite *reconnect_suite(void)
{
	Suite *s = suite_create("reconnect");
	TCase *tc = tcase_create("reconnect");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_reconnect_mappings_survive_daemon_sigkill_and_libmmapd_reconnects_by_itself);
	tcase_add_test(tc, test_reconnect_waits_for_a_daemon_that_comes_back_late);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(reconnect_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
