/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of the fast path of whole-region locks (docs/coordination.md, "The control
 * page"): exclusion across processes over a million operations with fast-path and
 * protocol-path clients mixed on one region, no round trip when nobody contends, holders
 * killed with SIGKILL at random points of the fast path, the daemon taking the page's locks
 * over (protocol clients, the locks op, deadlock detection) and handing them back, the
 * control request's refusals and seals, and a hostile uid scribbling on a page.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlpage.h"
#include "harness.h"

static struct test_daemon dmn;

static void suite_setup(void)
{
	test_daemon_start_shared(&dmn, "{\"socket_mode\": \"0666\"}");
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

/* "held:exclusive:pid=N ..." for name's locks, in reply order. */
static void locks_summary(const char *name, char *buf, size_t size)
{
	struct test_conn c;
	const cJSON *l;
	cJSON *reply;
	size_t len = 0;

	test_conn_open_hello(&c, &dmn);
	reply = test_conn_callf(&c, "{'op':'locks','name':'%s'}", name);
	test_conn_close(&c);
	test_assert_ok(reply);
	buf[0] = '\0';
	cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(reply, "locks")) {
		int n = snprintf(buf + len, size - len, "%s%s:%s:pid=%llu", len ? " " : "",
		                 test_json_str(l, "state"), test_json_str(l, "mode"),
		                 (unsigned long long)test_json_u64(l, "pid"));

		ck_assert((size_t)n < size - len);
		len += (size_t)n;
	}
	cJSON_Delete(reply);
}

static void wait_locks(const char *name, const char *want)
{
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;
	char got[1024];

	for (;;) {
		locks_summary(name, got, sizeof(got));
		if (strcmp(got, want) == 0)
			return;
		ck_assert_msg(test_now_ms() < deadline, "locks of %s: expected \"%s\", got \"%s\"",
		              name, want, got);
		usleep(5000);
	}
}

/* A session with name open read-write as region 0. */
static void sess_open(struct test_sess *s, const char *name)
{
	test_sess_start(s, &dmn, NULL);
	(void)test_sess_ok(s, "open %s rw", name);
}

START_TEST(test_fast_a_million_adds_mixed_with_protocol_locks_lose_nothing)
{
	enum { FAST = 400000, SLOW = 3000 };
	struct test_sess s[3];
	char want[64];

	test_daemon_create(&dmn, "counter", 4096, false);
	for (int i = 0; i < 3; i++)
		sess_open(&s[i], "counter");
	/* Two on the fast path (whole region, no yield), one on the daemon's (a byte range
	 * that covers the counter, a yield inside). */
	test_sess_send(&s[0], "addloop counter 0 0 %d whole noyield", FAST);
	test_sess_send(&s[1], "addloop counter 0 0 %d whole noyield", FAST);
	test_sess_send(&s[2], "addloop counter 0 0 %d", SLOW);
	for (int i = 0; i < 3; i++) {
		const char *r = test_sess_result(&s[i], 120000);

		ck_assert_msg(strcmp(r, "ok") == 0, "adder %d: %s", i, r);
	}
	snprintf(want, sizeof(want), " value=%d", 2 * FAST + SLOW);
	ck_assert_str_eq(test_sess_ok(&s[0], "u64 0 0"), want);
	wait_locks("counter", "");
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(test_sess_end(&s[i]), 0);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "locks", 0), 0);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "lock_waiters"), 0);
	test_daemon_delete(&dmn, "counter");
}
END_TEST

START_TEST(test_fast_uncontended_locks_make_no_round_trip)
{
	struct test_sess s;
	uint64_t locks0, unlocks0;

	test_daemon_create(&dmn, "quiet", 4096, false);
	sess_open(&s, "quiet");
	/* The first one asks for the page. */
	(void)test_sess_ok(&s, "addloop quiet 0 0 1 whole");
	locks0 = test_daemon_requests(&dmn, "lock");
	unlocks0 = test_daemon_requests(&dmn, "unlock");
	(void)test_sess_ok(&s, "addloop quiet 0 0 10000 whole noyield");
	ck_assert_uint_eq(test_daemon_requests(&dmn, "lock"), locks0);
	ck_assert_uint_eq(test_daemon_requests(&dmn, "unlock"), unlocks0);
	/* A range is the daemon's. */
	(void)test_sess_ok(&s, "addloop quiet 0 0 10");
	ck_assert_uint_eq(test_daemon_requests(&dmn, "lock"), locks0 + 10);
	ck_assert_int_eq(test_sess_end(&s), 0);
	test_daemon_delete(&dmn, "quiet");
}
END_TEST

START_TEST(test_fast_holder_killed_hands_the_lock_to_its_waiter)
{
	struct test_sess holder, waiter;
	char want[128];
	const char *r;

	test_daemon_create(&dmn, "victim", 4096, false);
	sess_open(&holder, "victim");
	sess_open(&waiter, "victim");
	r = test_sess_ok(&holder, "lock victim 0 0 exclusive");
	ck_assert_msg(test_line_u64(r, "lock") >= CTL_FAST_ID_BASE, "not a fast lock: %s", r);
	/* The locks op shows the page's holder. */
	snprintf(want, sizeof(want), "held:exclusive:pid=%d", (int)holder.pid);
	wait_locks("victim", want);
	/* Past the fast wait, the waiter queues in the daemon behind the holder. */
	test_sess_send(&waiter, "lock victim 0 0 exclusive");
	snprintf(want, sizeof(want), "held:exclusive:pid=%d waiting:exclusive:pid=%d",
	         (int)holder.pid, (int)waiter.pid);
	wait_locks("victim", want);
	ck_assert_int_eq(test_sess_kill(&holder, SIGKILL), 128 + SIGKILL);
	r = test_sess_result(&waiter, TEST_WAIT_MS);
	ck_assert_msg(strncmp(r, "ok lock=", 8) == 0, "the waiter got \"%s\"", r);
	(void)test_sess_ok(&waiter, "unlock %llu", (unsigned long long)test_line_u64(r, "lock"));
	wait_locks("victim", "");
	/* Handed back to the page: the next lock is fast again. */
	r = test_sess_ok(&waiter, "lock victim 0 0 exclusive nowait");
	ck_assert_msg(test_line_u64(r, "lock") >= CTL_FAST_ID_BASE, "not a fast lock: %s", r);
	ck_assert_int_eq(test_sess_end(&waiter), 0);
	test_daemon_delete(&dmn, "victim");
}
END_TEST

START_TEST(test_fast_sigkill_at_random_points_never_leaves_a_stale_lock)
{
	struct test_sess killer, after;
	const char *r;

	test_daemon_create(&dmn, "stale", 4096, false);
	sess_open(&after, "stale");
	srand((unsigned)getpid());
	for (int round = 0; round < 25; round++) {
		sess_open(&killer, "stale");
		test_sess_send(&killer, "addloop stale 0 0 100000000 whole noyield");
		usleep(1000 + (useconds_t)(rand() % 20000));
		ck_assert_int_eq(test_sess_kill(&killer, SIGKILL), 128 + SIGKILL);
		/* Once the daemon sees the connection end, the lock is free again. */
		r = test_sess_cmd(&after, "lock stale 0 0 exclusive timeout=%d", TEST_WAIT_MS);
		ck_assert_msg(strncmp(r, "ok lock=", 8) == 0, "round %d: %s", round, r);
		(void)test_sess_ok(&after, "unlock %llu", (unsigned long long)test_line_u64(r, "lock"));
	}
	wait_locks("stale", "");
	ck_assert_int_eq(test_sess_end(&after), 0);
	test_daemon_delete(&dmn, "stale");
}
END_TEST

START_TEST(test_fast_protocol_client_sees_and_waits_for_a_fast_holder)
{
	struct test_sess fast;
	struct test_conn raw;
	char want[128];
	const char *r;
	cJSON *reply;
	uint64_t id, lock;

	test_daemon_create(&dmn, "mixed", 4096, false);
	sess_open(&fast, "mixed");
	r = test_sess_ok(&fast, "lock mixed 0 0 exclusive");
	lock = test_line_u64(r, "lock");
	test_conn_open_hello(&raw, &dmn);
	/* A try-lock names the fast holder. */
	reply = test_conn_callf(&raw, "{'op':'lock','name':'mixed','offset':0,'length':0,"
	                        "'mode':'shared','wait':false}");
	snprintf(want, sizeof(want), "pid %d", (int)fast.pid);
	test_reply_error(reply, "EAGAIN", EAGAIN, want);
	/* A waiting one is granted when the fast holder unlocks. */
	id = test_conn_sendf(&raw, "{'op':'lock','name':'mixed','offset':0,'length':0,"
	                     "'mode':'shared'}");
	snprintf(want, sizeof(want), "held:exclusive:pid=%d waiting:shared:pid=%d",
	         (int)fast.pid, (int)getpid());
	wait_locks("mixed", want);
	(void)test_sess_ok(&fast, "unlock %llu", (unsigned long long)lock);
	reply = test_conn_reply(&raw, id, TEST_WAIT_MS);
	test_assert_ok(reply);
	lock = test_json_u64(reply, "lock");
	cJSON_Delete(reply);
	/* While the daemon holds it for the raw client, the fast client asks the daemon. */
	r = test_sess_cmd(&fast, "lock mixed 0 0 exclusive nowait");
	ck_assert_msg(strstr(r, "EAGAIN") != NULL, "expected EAGAIN, got %s", r);
	r = test_sess_ok(&fast, "lock mixed 0 0 shared");
	ck_assert_msg(test_line_u64(r, "lock") < CTL_FAST_ID_BASE, "a fast lock: %s", r);
	(void)test_sess_ok(&fast, "unlock %llu", (unsigned long long)test_line_u64(r, "lock"));
	test_reply_ok(test_conn_callf(&raw, "{'op':'unlock','lock':%llu}",
	                              (unsigned long long)lock));
	wait_locks("mixed", "");
	r = test_sess_ok(&fast, "lock mixed 0 0 exclusive nowait");
	ck_assert_msg(test_line_u64(r, "lock") >= CTL_FAST_ID_BASE, "not a fast lock: %s", r);
	test_conn_close(&raw);
	ck_assert_int_eq(test_sess_end(&fast), 0);
	wait_locks("mixed", "");
	test_daemon_delete(&dmn, "mixed");
}
END_TEST

START_TEST(test_fast_shared_holders_exclude_a_protocol_writer_and_share_with_its_reader)
{
	struct test_sess a, b;
	struct test_conn raw;
	uint64_t la, la2, lb;

	test_daemon_create(&dmn, "readers", 4096, false);
	sess_open(&a, "readers");
	sess_open(&b, "readers");
	la = test_line_u64(test_sess_ok(&a, "lock readers 0 0 shared"), "lock");
	la2 = test_line_u64(test_sess_ok(&a, "lock readers 0 0 shared"), "lock");
	lb = test_line_u64(test_sess_ok(&b, "lock readers 0 0 shared"), "lock");
	ck_assert_uint_ge(la, CTL_FAST_ID_BASE);
	ck_assert_uint_ge(lb, CTL_FAST_ID_BASE);
	test_conn_open_hello(&raw, &dmn);
	test_reply_error(test_conn_callf(&raw, "{'op':'lock','name':'readers','offset':0,"
	                                 "'length':0,'mode':'exclusive','wait':false}"),
	                 "EAGAIN", EAGAIN, NULL);
	test_reply_ok(test_conn_callf(&raw, "{'op':'lock','name':'readers','offset':0,"
	                              "'length':4096,'mode':'shared','wait':false}"));
	test_conn_close(&raw);
	/* a's two shared locks are one holder; both must go before a writer gets in. */
	(void)test_sess_ok(&a, "unlock %llu", (unsigned long long)la);
	ck_assert_msg(strstr(test_sess_cmd(&b, "lock readers 0 0 exclusive nowait"), "EAGAIN"),
	              "a writer got in beside a's second shared lock");
	(void)test_sess_ok(&a, "unlock %llu", (unsigned long long)la2);
	(void)test_sess_ok(&b, "unlock %llu", (unsigned long long)lb);
	wait_locks("readers", "");
	lb = test_line_u64(test_sess_ok(&b, "lock readers 0 0 exclusive nowait"), "lock");
	ck_assert_uint_ge(lb, CTL_FAST_ID_BASE);
	(void)test_sess_ok(&b, "unlock %llu", (unsigned long long)lb);
	ck_assert_int_eq(test_sess_end(&a), 0);
	ck_assert_int_eq(test_sess_end(&b), 0);
	test_daemon_delete(&dmn, "readers");
}
END_TEST

START_TEST(test_fast_deadlock_between_two_fast_holders_is_edeadlk)
{
	struct test_sess a, b;
	const char *ra, *rb;

	test_daemon_create(&dmn, "dl1", 4096, false);
	test_daemon_create(&dmn, "dl2", 4096, false);
	test_sess_start(&a, &dmn, NULL);
	test_sess_start(&b, &dmn, NULL);
	(void)test_sess_ok(&a, "open dl1 rw");
	(void)test_sess_ok(&a, "open dl2 rw");
	(void)test_sess_ok(&b, "open dl1 rw");
	(void)test_sess_ok(&b, "open dl2 rw");
	(void)test_sess_ok(&a, "lock dl1 0 0 exclusive");
	(void)test_sess_ok(&b, "lock dl2 0 0 exclusive");
	test_sess_send(&a, "lock dl2 0 0 exclusive timeout=%d", TEST_WAIT_MS);
	usleep(20000);
	rb = test_sess_cmd(&b, "lock dl1 0 0 exclusive timeout=%d", TEST_WAIT_MS);
	ck_assert_msg(strstr(rb, "EDEADLK") != NULL, "b expected EDEADLK, got %s", rb);
	ck_assert_int_eq(test_sess_end(&b), 0);
	ra = test_sess_result(&a, TEST_WAIT_MS);
	ck_assert_msg(strncmp(ra, "ok lock=", 8) == 0, "a got %s", ra);
	ck_assert_int_eq(test_sess_end(&a), 0);
	wait_locks("dl1", "");
	wait_locks("dl2", "");
	test_daemon_delete(&dmn, "dl1");
	test_daemon_delete(&dmn, "dl2");
}
END_TEST

START_TEST(test_fast_control_is_for_read_write_grants_and_its_page_is_sealed)
{
	struct test_conn c;
	struct ctlpage *page;
	uint64_t ro, rw;
	int fd;

	test_daemon_create(&dmn, "sealed", 4096, false);
	test_conn_open_hello(&c, &dmn);
	ro = test_conn_grant(&c, "sealed", "ro");
	test_reply_error(test_conn_callf(&c, "{'op':'control','handle':%llu}",
	                                 (unsigned long long)ro), "EACCES", EACCES, "read-write");
	test_reply_error(test_conn_callf(&c, "{'op':'control','handle':999999}"), "EBADF", EBADF,
	                 "no grant");
	test_reply_error(test_conn_callf(&c, "{'op':'control'}"), "EINVAL", EINVAL, "handle");
	rw = test_conn_grant(&c, "sealed", "rw");
	page = test_conn_control(&c, rw, &fd);
	/* Nobody can change its size under the daemon's mapping, nor seal it. */
	ck_assert_int_eq(ftruncate(fd, 0), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_eq(ftruncate(fd, 2 * CTLPAGE_SIZE), -1);
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	munmap(page, CTLPAGE_SIZE);
	close(fd);
	test_conn_close(&c);
	test_daemon_delete(&dmn, "sealed");
}
END_TEST

/* Locks name whole and exclusively in s within timeout_ms: "ok" (and unlocks) or the error. */
static bool sess_lock_unlock(struct test_sess *s, const char *name, int timeout_ms, char *err,
                             size_t size)
{
	const char *r = test_sess_cmd(s, "lock %s 0 0 exclusive timeout=%d", name, timeout_ms);

	if (strncmp(r, "ok lock=", 8) != 0) {
		snprintf(err, size, "%s", r);
		return false;
	}
	(void)test_sess_ok(s, "unlock %llu", (unsigned long long)test_line_u64(r, "lock"));
	return true;
}

START_TEST(test_fast_hostile_uid_scribbling_a_page_hurts_only_that_region)
{
	struct test_sess victim, fresh;
	struct test_conn nobody;
	struct ctlpage *page;
	char err[256];
	pid_t child;
	int fd;

	if (!test_is_root())
		return;
	/* nobody may write "open" (0666), not "shut" (0644). */
	test_daemon_create_perm(&dmn, "open", 4096, 0666);
	test_daemon_create_perm(&dmn, "shut", 4096, 0644);
	test_sess_start(&victim, &dmn, NULL);
	(void)test_sess_ok(&victim, "open open rw");
	(void)test_sess_ok(&victim, "open shut rw");
	ck_assert(sess_lock_unlock(&victim, "open", 1000, err, sizeof(err)));

	test_conn_open_hello_as(&nobody, &dmn, TEST_NOBODY, TEST_NOBODY);
	test_reply_error(test_conn_callf(&nobody, "{'op':'open','name':'shut','mode':'rw'}"),
	                 "EACCES", EACCES, NULL);
	page = test_conn_control(&nobody, test_conn_grant(&nobody, "open", "rw"), &fd);
	/* The attack: garbage over the whole page, the lock word rewritten without pause. */
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		int64_t end = test_now_ms() + 1500;
		uint64_t x = 0x9e3779b97f4a7c15ull;

		while (test_now_ms() < end) {
			for (size_t i = 0; i < CTLPAGE_SIZE / 8; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				((volatile uint64_t *)page)[i] = x;
			}
			for (int i = 0; i < 1000; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				atomic_store(&page->lock, x);
			}
		}
		_exit(0);
	}
	/* Meanwhile: the region nobody has no write grant on stays fast and correct; the other
	 * one answers in time, granted or with a clear error, and the daemon lives on. */
	for (int i = 0; i < 20; i++) {
		ck_assert_msg(sess_lock_unlock(&victim, "shut", 1000, err, sizeof(err)),
		              "shut: %s", err);
		if (!sess_lock_unlock(&victim, "open", 50, err, sizeof(err)))
			ck_assert_msg(strstr(err, "ETIMEDOUT") || strstr(err, "EAGAIN") ||
			              strstr(err, "EDEADLK"), "open: %s", err);
		usleep(20000);
	}
	test_child_wait(child, TEST_WAIT_MS);
	test_daemon_assert_alive(&dmn);
	munmap(page, CTLPAGE_SIZE);
	close(fd);
	test_conn_close(&nobody);
	/* Its connection gone, a fresh client of the region locks it again. */
	ck_assert_int_eq(test_sess_end(&victim), 0);
	test_sess_start(&fresh, &dmn, NULL);
	(void)test_sess_ok(&fresh, "open open rw");
	ck_assert_msg(sess_lock_unlock(&fresh, "open", TEST_WAIT_MS, err, sizeof(err)),
	              "after the attack: %s", err);
	ck_assert_int_eq(test_sess_end(&fresh), 0);
	test_daemon_delete(&dmn, "open");
	test_daemon_delete(&dmn, "shut");
}
END_TEST

/*
 * The attack: one uid opens connection after connection to take every slot of a region's
 * control page, so that everyone else locks through the daemon. It gets
 * max_control_slots_per_uid (16 by default) of them, then EAGAIN naming the key; another
 * user still gets a slot.
 */
START_TEST(test_fast_one_uid_cannot_take_every_slot_of_a_page)
{
	enum { MAX = 16 };
	struct test_conn c[MAX + 1], other;
	struct ctlpage *pages[MAX];
	int fds[MAX], fd, i;
	cJSON *reply;
	void *page;

	if (!test_is_root())
		return;
	test_daemon_create_perm(&dmn, "slots", 4096, 0666);
	for (i = 0; i < MAX; i++) {
		test_conn_open_hello_as(&c[i], &dmn, TEST_NOBODY, TEST_NOBODY);
		pages[i] = test_conn_control(&c[i], test_conn_grant(&c[i], "slots", "rw"), &fds[i]);
	}
	test_conn_open_hello_as(&c[MAX], &dmn, TEST_NOBODY, TEST_NOBODY);
	reply = test_conn_callf(&c[MAX], "{'op':'control','handle':%llu}",
	                        (unsigned long long)test_conn_grant(&c[MAX], "slots", "rw"));
	test_reply_error(reply, "EAGAIN", EAGAIN, "max_control_slots_per_uid");
	test_conn_open_hello_as(&other, &dmn, TEST_NOBODY - 1, TEST_NOBODY - 1);
	page = test_conn_control(&other, test_conn_grant(&other, "slots", "rw"), &fd);
	munmap(page, CTLPAGE_SIZE);
	close(fd);
	test_conn_close(&other);
	/* A slot given back is the uid's to take again. */
	munmap(pages[0], CTLPAGE_SIZE);
	close(fds[0]);
	test_conn_close(&c[0]);
	for (i = 0; i < 100; i++) {
		/* The daemon notices the end of c[0] in its own time. */
		reply = test_conn_callf(&c[MAX], "{'op':'control','handle':%llu}",
		                        (unsigned long long)test_conn_grant(&c[MAX], "slots", "rw"));
		if (test_json_bool(reply, "ok"))
			break;
		cJSON_Delete(reply);
		usleep(20000);
	}
	ck_assert_msg(i < 100, "the slot given back was not given again");
	cJSON_Delete(reply);
	close(test_conn_take_fd(&c[MAX]));
	for (i = 1; i <= MAX; i++) {
		if (i < MAX) {
			munmap(pages[i], CTLPAGE_SIZE);
			close(fds[i]);
		}
		test_conn_close(&c[i]);
	}
	test_daemon_delete(&dmn, "slots");
}
END_TEST

static Suite *fastlock_suite(void)
{
	Suite *s = suite_create("fastlock");
	TCase *tc = tcase_create("fastlock");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_fast_a_million_adds_mixed_with_protocol_locks_lose_nothing);
	tcase_add_test(tc, test_fast_uncontended_locks_make_no_round_trip);
	tcase_add_test(tc, test_fast_holder_killed_hands_the_lock_to_its_waiter);
	tcase_add_test(tc, test_fast_sigkill_at_random_points_never_leaves_a_stale_lock);
	tcase_add_test(tc, test_fast_protocol_client_sees_and_waits_for_a_fast_holder);
	tcase_add_test(tc, test_fast_shared_holders_exclude_a_protocol_writer_and_share_with_its_reader);
	tcase_add_test(tc, test_fast_deadlock_between_two_fast_holders_is_edeadlk);
	tcase_add_test(tc, test_fast_control_is_for_read_write_grants_and_its_page_is_sealed);
	tcase_add_test(tc, test_fast_hostile_uid_scribbling_a_page_hurts_only_that_region);
	tcase_add_test(tc, test_fast_one_uid_cannot_take_every_slot_of_a_page);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(fastlock_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
