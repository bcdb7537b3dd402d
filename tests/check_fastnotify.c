/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of change notification on the control page (docs/coordination.md, "Change
 * notification on the control page"): across real processes, changes reported on the page
 * reach protocol subscribers (JSON events) and changes reported through the protocol reach
 * readers of the page, with one sequence space, the writer's pid and no round trip per change;
 * every sequence number is either delivered or reported lost over hundreds of thousands of
 * changes from writers of both kinds with fast and slow readers; and a hostile uid scribbling
 * on a page's change log harms only that region.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* A session named client_name with name open read-write as region 0. */
static void sess_open(struct test_sess *s, const char *client_name, const char *name)
{
	test_sess_start(s, &dmn, client_name);
	(void)test_sess_ok(s, "open %s rw", name);
}

/* Asserts that the session's result line is the error ename. */
static void expect_err(const char *line, const char *ename)
{
	char want[64];

	snprintf(want, sizeof(want), "err %s ", ename);
	ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "expected %s, got: %s", ename, line);
}

/* The seq of region name as the session s sees it (stat). */
static uint64_t sess_seq(struct test_sess *s, const char *name)
{
	return test_line_u64(test_sess_ok(s, "stat %s", name), "seq");
}

START_TEST(test_fastnotify_page_writer_reaches_json_subscriber_without_round_trips)
{
	struct test_sess w, sub;
	uint64_t seq0, seq, before;
	char want[256], *ev;
	const char *r;

	test_daemon_create(&dmn, "fj", 4096, false);
	sess_open(&w, "writer", "fj");
	test_sess_start(&sub, &dmn, "sub");
	seq0 = test_line_u64(test_sess_ok(&sub, "subscribe fj"), "seq");
	seq = test_line_u64(test_sess_ok(&w, "changed fj 10 5"), "seq");
	ck_assert_uint_eq(seq, seq0 + 1);
	snprintf(want, sizeof(want), "changed fj seq=%llu first=%llu ranges=10+5 writer=writer/%ld",
	         (unsigned long long)seq, (unsigned long long)seq, (long)w.pid);
	ev = test_sess_find_event(&sub, "changed fj", TEST_WAIT_MS);
	ck_assert_msg(ev, "no changed event");
	ck_assert_str_eq(ev, want);
	free(ev);
	/* Many more: every one reaches the subscriber, and none is a request. */
	(void)test_sess_ok(&sub, "count fj");
	before = test_daemon_requests(&dmn, "changed");
	r = test_sess_ok(&w, "changeloop fj 2000");
	ck_assert_uint_eq(test_line_u64(r, "first"), seq + 1);
	ck_assert_uint_eq(test_line_u64(r, "last"), seq + 2000);
	ck_assert_uint_eq(test_daemon_requests(&dmn, "changed"), before);
	/*
	 * Every seq up to the last is accounted for, in order: in changed events, or in an
	 * overflow when this subscriber (or the daemon's relay) fell behind, which a slow machine
	 * or a sanitizer build can make happen; a change missing without an overflow is a failure.
	 */
	r = test_sess_ok(&sub, "count-wait fj %llu 20000", (unsigned long long)seq + 2000);
	ck_assert_uint_eq(test_line_u64(r, "last"), seq + 2000);
	ck_assert_msg(test_line_u64(r, "bad") == 0,
	              "events out of order, or missing without an overflow:%s", r);
	ck_assert_msg(test_line_u64(r, "changes") == 2000 || test_line_u64(r, "overflow") > 0,
	              "changes went missing without an overflow:%s", r);
	/* The protocol and the page count in one space. */
	ck_assert_uint_eq(sess_seq(&sub, "fj"), seq + 2000);
	ck_assert_int_eq(test_sess_end(&w), 0);
	ck_assert_int_eq(test_sess_end(&sub), 0);
	test_daemon_delete(&dmn, "fj");
}
END_TEST

START_TEST(test_fastnotify_protocol_writer_reaches_page_reader)
{
	struct test_sess rd;
	struct test_conn p;
	uint64_t seq0, seq;
	char want[128];
	const char *r;

	test_daemon_create(&dmn, "pf", 4096, false);
	sess_open(&rd, NULL, "pf");
	seq0 = sess_seq(&rd, "pf");
	expect_err(test_sess_cmd(&rd, "wait-changed 0 %llu 0", (unsigned long long)seq0),
	                      "ETIMEDOUT");
	test_conn_open_hello(&p, &dmn);
	seq = test_conn_changed(&p, "pf", 100, 7);
	ck_assert_uint_eq(seq, seq0 + 1);
	ck_assert_uint_eq(test_line_u64(test_sess_ok(&rd, "wait-changed 0 %llu 5000",
	                                             (unsigned long long)seq0), "seq"), seq);
	snprintf(want, sizeof(want), " seq=%llu off=100 len=7 pid=%ld", (unsigned long long)seq,
	         (long)getpid());
	ck_assert_str_eq(test_sess_ok(&rd, "read-change 0 %llu", (unsigned long long)seq), want);
	/* A sleeper is woken by a change that comes later. */
	test_sess_send(&rd, "wait-changed 0 %llu 10000", (unsigned long long)seq);
	usleep(200000);
	ck_assert_uint_eq(test_conn_changed(&p, "pf", 0, 1), seq + 1);
	r = test_sess_result(&rd, TEST_WAIT_MS);
	ck_assert_msg(strncmp(r, "ok seq=", 7) == 0, "wait-changed: %s", r);
	ck_assert_uint_eq(test_line_u64(r, "seq"), seq + 1);
	test_conn_close(&p);
	ck_assert_int_eq(test_sess_end(&rd), 0);
	test_daemon_delete(&dmn, "pf");
}
END_TEST

START_TEST(test_fastnotify_page_writer_reaches_page_reader_with_its_pid)
{
	enum { N = 100000 };
	struct test_sess w, rd, slow;
	uint64_t seq0;
	const char *r;

	test_daemon_create(&dmn, "ff", 4096, false);
	sess_open(&w, NULL, "ff");
	sess_open(&rd, NULL, "ff");
	sess_open(&slow, NULL, "ff");
	seq0 = sess_seq(&rd, "ff");
	(void)test_sess_ok(&w, "changed ff 0 1");     /* the writer's page, asked once */
	seq0++;
	test_sess_send(&rd, "readloop 0 %llu %llu 20000 pid=%ld", (unsigned long long)seq0,
	               (unsigned long long)seq0 + N, (long)w.pid);
	test_sess_send(&slow, "readloop 0 %llu %llu 20000 pid=%ld slow=20",
	               (unsigned long long)seq0, (unsigned long long)seq0 + N, (long)w.pid);
	test_sess_send(&w, "changeloop ff %d", N);
	r = test_sess_result(&w, 60000);
	ck_assert_msg(strncmp(r, "ok", 2) == 0, "writer: %s", r);
	ck_assert_uint_eq(test_line_u64(r, "last"), seq0 + N);
	for (int i = 0; i < 2; i++) {
		struct test_sess *s = i ? &slow : &rd;

		r = test_sess_result(s, 60000);
		ck_assert_msg(strncmp(r, "ok", 2) == 0, "reader %d: %s", i, r);
		ck_assert_uint_eq(test_line_u64(r, "delivered") + test_line_u64(r, "lost"), N);
		ck_assert_msg(test_line_u64(r, "bad") == 0, "a change read with a wrong seq or pid: %s", r);
		fprintf(stderr, "check_fastnotify: %s reader: %s\n", i ? "slow" : "fast", r);
	}
	/* The slow one was lapped: it learnt so, change by change. */
	ck_assert_uint_gt(test_line_u64(r, "lost"), 0);
	ck_assert_int_eq(test_sess_end(&w), 0);
	ck_assert_int_eq(test_sess_end(&rd), 0);
	ck_assert_int_eq(test_sess_end(&slow), 0);
	test_daemon_delete(&dmn, "ff");
}
END_TEST

START_TEST(test_fastnotify_mixed_writers_lose_nothing_for_any_reader)
{
	enum { FAST = 100000, SLOW = 2000 };
	struct test_sess w[2], rd, sub, deaf;
	struct test_conn p;
	uint64_t seq0, last;
	const char *r;

	test_daemon_create(&dmn, "mx", 4096, false);
	for (int i = 0; i < 2; i++) {
		sess_open(&w[i], NULL, "mx");
		(void)test_sess_ok(&w[i], "changed mx 0 1");
	}
	sess_open(&rd, NULL, "mx");
	test_sess_start(&sub, &dmn, "sub");
	(void)test_sess_ok(&sub, "subscribe mx");
	test_sess_start(&deaf, &dmn, "deaf");
	(void)test_sess_ok(&deaf, "subscribe mx");
	(void)test_sess_ok(&deaf, "deaf");
	seq0 = test_line_u64(test_sess_ok(&sub, "count mx"), "seq");
	last = seq0 + 2 * FAST + SLOW;
	test_sess_send(&rd, "readloop 0 %llu %llu 30000", (unsigned long long)seq0,
	               (unsigned long long)last);
	for (int i = 0; i < 2; i++)
		test_sess_send(&w[i], "changeloop mx %d", FAST);
	test_conn_open_hello(&p, &dmn);
	for (int i = 0; i < SLOW; i++)
		(void)test_conn_changed(&p, "mx", 64 + (uint64_t)i % 64, 2);
	for (int i = 0; i < 2; i++) {
		r = test_sess_result(&w[i], 120000);
		ck_assert_msg(strncmp(r, "ok", 2) == 0, "writer %d: %s", i, r);
	}
	r = test_sess_result(&rd, 120000);
	ck_assert_msg(strncmp(r, "ok", 2) == 0, "page reader: %s", r);
	fprintf(stderr, "check_fastnotify: page reader: %s\n", r);
	ck_assert_uint_eq(test_line_u64(r, "delivered") + test_line_u64(r, "lost"), last - seq0);
	ck_assert_msg(test_line_u64(r, "bad") == 0, "a change read with a wrong seq or pid: %s", r);
	/* The protocol subscriber: every seq in order, in events or overflows, up to the last. */
	r = test_sess_ok(&sub, "count-wait mx %llu 60000", (unsigned long long)last);
	fprintf(stderr, "check_fastnotify: protocol subscriber:%s\n", r);
	ck_assert_uint_eq(test_line_u64(r, "last"), last);
	ck_assert_msg(test_line_u64(r, "bad") == 0,
	              "events out of order, or missing without an overflow:%s", r);
	/* The deaf one hears, when it listens again, that it missed changes. */
	(void)test_sess_ok(&deaf, "hear");
	(void)test_sess_ok(&deaf, "count mx");
	ck_assert_uint_eq(sess_seq(&sub, "mx"), last);
	test_daemon_assert_alive(&dmn);
	test_conn_close(&p);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(test_sess_end(&w[i]), 0);
	ck_assert_int_eq(test_sess_end(&rd), 0);
	ck_assert_int_eq(test_sess_end(&sub), 0);
	ck_assert_int_eq(test_sess_end(&deaf), 0);
	test_daemon_delete(&dmn, "mx");
}
END_TEST

START_TEST(test_fastnotify_hostile_uid_scribbling_the_log_hurts_only_that_region)
{
	enum { N = 20000 };
	struct test_sess w, rd, sub;
	struct test_conn nobody;
	struct changelog *log;
	struct ctlpage *page;
	uint64_t seq0;
	const char *r;
	char *ev;
	pid_t child;
	int fd;

	if (!test_is_root())
		return;
	/* nobody may write "open" (0666), not "shut" (0644). */
	test_daemon_create_perm(&dmn, "open", 4096, 0666);
	test_daemon_create_perm(&dmn, "shut", 4096, 0644);
	test_sess_start(&w, &dmn, NULL);
	(void)test_sess_ok(&w, "open open rw");
	(void)test_sess_ok(&w, "open shut rw");
	test_sess_start(&rd, &dmn, NULL);
	(void)test_sess_ok(&rd, "open open rw");
	(void)test_sess_ok(&rd, "open shut rw");
	test_sess_start(&sub, &dmn, "sub");
	(void)test_sess_ok(&sub, "subscribe open");
	(void)test_sess_ok(&sub, "subscribe shut");
	(void)test_sess_ok(&w, "changed open 0 1");
	(void)test_sess_ok(&w, "changed shut 0 1");
	/*
	 * The count below starts at shut's seq as stat reports it, the head of the log: that
	 * change's event must have reached sub first. Relayed after a ring, it may still be on
	 * its way (or read but not yet dispatched) when the stat reply comes.
	 */
	ev = test_sess_find_event(&sub, "changed shut", TEST_WAIT_MS);
	ck_assert_msg(ev, "no changed event for shut");
	free(ev);

	test_conn_open_hello_as(&nobody, &dmn, TEST_NOBODY, TEST_NOBODY);
	page = test_conn_control(&nobody, test_conn_grant(&nobody, "open", "rw"), &fd);
	log = ctlpage_log(page);
	/* The attack: garbage over the log, the head and the route rewritten, the doorbell
	 * rung, without pause. */
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		int64_t end = test_now_ms() + 2000;
		uint64_t x = 0x9e3779b97f4a7c15ull;

		while (test_now_ms() < end) {
			for (size_t i = 0; i < sizeof(*log) / 8; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				((volatile uint64_t *)log)[i] = x;
			}
			for (int i = 0; i < 100; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				atomic_store(&log->head, i % 2 ? x : x % 1000);
				atomic_store(&log->route, (uint32_t)x % 4);
				changelog_publish(log, x % 8192, x % 3, (uint32_t)x, (unsigned)x % 70,
				                  (unsigned)x);
			}
		}
		_exit(0);
	}
	/* Meanwhile the other region keeps every change for every reader. */
	seq0 = sess_seq(&rd, "shut");
	(void)test_sess_ok(&sub, "count shut");
	test_sess_send(&rd, "readloop 1 %llu %llu 20000 pid=%ld", (unsigned long long)seq0,
	               (unsigned long long)seq0 + N, (long)w.pid);
	r = test_sess_ok(&w, "changeloop shut %d", N);
	ck_assert_uint_eq(test_line_u64(r, "last"), seq0 + N);
	r = test_sess_result(&rd, 60000);
	ck_assert_msg(strncmp(r, "ok", 2) == 0, "shut reader: %s", r);
	ck_assert_uint_eq(test_line_u64(r, "delivered") + test_line_u64(r, "lost"), N);
	ck_assert_msg(test_line_u64(r, "bad") == 0, "a change read with a wrong seq or pid: %s", r);
	r = test_sess_ok(&sub, "count-wait shut %llu 20000", (unsigned long long)seq0 + N);
	ck_assert_uint_eq(test_line_u64(r, "last"), seq0 + N);
	ck_assert_msg(test_line_u64(r, "bad") == 0,
	              "events out of order, or missing without an overflow:%s", r);
	/* The scribbled region answers: reports succeed (or fail cleanly), waits end. */
	for (int i = 0; i < 50; i++) {
		r = test_sess_cmd(&w, "changed open 0 1");
		ck_assert_msg(strncmp(r, "ok", 2) == 0 || strstr(r, "ERANGE"), "open: %s", r);
		r = test_sess_cmd(&rd, "wait-changed 0 0 10");
		ck_assert_msg(strncmp(r, "ok", 2) == 0 || strstr(r, "ETIMEDOUT"), "wait: %s", r);
	}
	test_child_wait(child, TEST_WAIT_MS);
	test_daemon_assert_alive(&dmn);
	(void)test_sess_ok(&sub, "ping");
	munmap(page, CTLPAGE_SIZE);
	close(fd);
	test_conn_close(&nobody);
	ck_assert_int_eq(test_sess_end(&w), 0);
	ck_assert_int_eq(test_sess_end(&rd), 0);
	ck_assert_int_eq(test_sess_end(&sub), 0);
	test_daemon_delete(&dmn, "open");
	test_daemon_delete(&dmn, "shut");
}
END_TEST

START_TEST(test_fastnotify_an_entry_never_published_is_reported_lost_and_passed)
{
	struct test_sess w, sub;
	struct test_conn c;
	struct ctlpage *page;
	uint64_t seq0;
	char want[128], *ev;
	int fd;

	test_daemon_create(&dmn, "stuck", 4096, false);
	sess_open(&w, "writer", "stuck");
	test_sess_start(&sub, &dmn, "sub");
	seq0 = test_line_u64(test_sess_ok(&sub, "subscribe stuck"), "seq");
	test_conn_open_hello(&c, &dmn);
	page = test_conn_control(&c, test_conn_grant(&c, "stuck", "rw"), &fd);
	/* A writer that reserved seq0 + 1 and died before publishing it. */
	atomic_fetch_add(&ctlpage_log(page)->head, 1);
	ck_assert_uint_eq(test_line_u64(test_sess_ok(&w, "changed stuck 8 8"), "seq"), seq0 + 2);
	/* Nothing rings again: the daemon still gets past it, with an overflow for it. */
	snprintf(want, sizeof(want), "overflow stuck seq=%llu", (unsigned long long)seq0 + 1);
	ev = test_sess_find_event(&sub, "overflow stuck", TEST_WAIT_MS);
	ck_assert_msg(ev, "no overflow for the entry never published");
	ck_assert_str_eq(ev, want);
	free(ev);
	snprintf(want, sizeof(want), "changed stuck seq=%llu first=%llu ranges=8+8 writer=writer/%ld",
	         (unsigned long long)seq0 + 2, (unsigned long long)seq0 + 2, (long)w.pid);
	ev = test_sess_find_event(&sub, "changed stuck", TEST_WAIT_MS);
	ck_assert_msg(ev, "the change after the entry never published did not arrive");
	ck_assert_str_eq(ev, want);
	free(ev);
	munmap(page, CTLPAGE_SIZE);
	close(fd);
	test_conn_close(&c);
	ck_assert_int_eq(test_sess_end(&w), 0);
	ck_assert_int_eq(test_sess_end(&sub), 0);
	test_daemon_delete(&dmn, "stuck");
}
END_TEST

START_TEST(test_fastnotify_always_policy_and_read_only_regions_use_the_protocol)
{
	struct test_sess w, ro;
	uint64_t before;

	test_daemon_create(&dmn, "al", 4096, false);
	sess_open(&w, NULL, "al");
	(void)test_sess_ok(&w, "policy al always");
	before = test_daemon_requests(&dmn, "changed");
	(void)test_sess_ok(&w, "changeloop al 5");
	ck_assert_uint_eq(test_daemon_requests(&dmn, "changed"), before + 5);
	(void)test_sess_ok(&w, "policy al manual");
	before = test_daemon_requests(&dmn, "changed");
	(void)test_sess_ok(&w, "changeloop al 5");
	ck_assert_uint_eq(test_daemon_requests(&dmn, "changed"), before);
	test_sess_start(&ro, &dmn, NULL);
	(void)test_sess_ok(&ro, "open al ro");
	expect_err(test_sess_cmd(&ro, "wait-changed 0 0 0"), "EOPNOTSUPP");
	ck_assert_int_eq(test_sess_end(&w), 0);
	ck_assert_int_eq(test_sess_end(&ro), 0);
	test_daemon_delete(&dmn, "al");
}
END_TEST

/*
 * More changed requests than the relay's pending table holds wait behind an entry reserved and
 * never published: none of them goes ahead of another; the entry is reported lost at once
 * (an overflow before them), and the subscriber gets every seq in order.
 */
START_TEST(test_fastnotify_requests_behind_an_unpublished_entry_keep_their_order)
{
	enum { N = 24 };
	struct test_conn c, p, sub;
	struct ctlpage *page;
	uint64_t seq0, ids[N], last, got = 0;
	int fd, i;

	test_daemon_create(&dmn, "order", 4096, false);
	test_conn_open_hello(&sub, &dmn);
	seq0 = test_conn_subscribe(&sub, "order");
	test_conn_open_hello(&c, &dmn);
	page = test_conn_control(&c, test_conn_grant(&c, "order", "rw"), &fd);
	/* A writer that reserved seq0 + 1 and is not publishing it. */
	atomic_fetch_add(&ctlpage_log(page)->head, 1);
	test_conn_open_hello(&p, &dmn);
	for (i = 0; i < N; i++)
		ids[i] = test_conn_sendf(&p, "{'op':'changed','name':'order','offset':%d,'length':1}",
		                         i);
	for (i = 0; i < N; i++) {
		cJSON *reply = test_conn_reply(&p, ids[i], TEST_WAIT_MS);

		test_assert_ok(reply);
		ck_assert_uint_eq(test_json_u64(reply, "seq"), seq0 + 2 + (uint64_t)i);
		cJSON_Delete(reply);
	}
	last = seq0;
	while (last < seq0 + 1 + N) {
		cJSON *ev = test_conn_event(&sub, TEST_WAIT_MS);
		const char *name;
		uint64_t seq;

		ck_assert_msg(ev, "events stopped after seq %llu", (unsigned long long)last);
		name = test_json_str(ev, "event");
		seq = test_json_u64(ev, "seq");
		ck_assert_msg(seq > last, "%s %llu came after %llu", name, (unsigned long long)seq,
		              (unsigned long long)last);
		if (strcmp(name, "overflow") == 0) {
			ck_assert_uint_eq(seq, seq0 + 1);
		} else {
			ck_assert_str_eq(name, "changed");
			ck_assert_uint_eq(test_json_u64(ev, "first_seq"), seq);
			got++;
		}
		last = seq;
		cJSON_Delete(ev);
	}
	ck_assert_uint_eq(got, N);
	munmap(page, CTLPAGE_SIZE);
	close(fd);
	test_conn_close(&c);
	test_conn_close(&p);
	test_conn_close(&sub);
	test_daemon_delete(&dmn, "order");
}
END_TEST

/* ev with the writer's client name taken out ("writer=NAME/PID" -> "writer=/PID"). */
static char *event_without_writer_name(char *ev)
{
	char *w = strstr(ev, " writer="), *slash = w ? strchr(w, '/') : NULL;

	if (slash)
		memmove(w + 8, slash, strlen(slash) + 1);
	return ev;
}

/*
 * A page subscriber (mmapd_subscribe_page(), woken through mmapd_client_fd() in the session's
 * poll loop) and a protocol subscriber see the same events for the same changes, from a
 * writer on the page and a writer using the protocol: seqs, ranges, writers' pids; neither
 * sees its own connection's changes. The page subscriber's events carry no client name: they
 * did not come from the daemon.
 */
START_TEST(test_fastnotify_page_subscriber_sees_what_a_json_subscriber_sees)
{
	enum { ROUNDS = 10 };
	struct test_sess w, js, ps;
	struct test_conn p;
	char *jev[3 * ROUNDS], *pev[2 * ROUNDS];
	size_t nj = 0, np = 0, i, k;
	char want[160];
	uint64_t seq0;
	const char *r;

	test_daemon_create(&dmn, "ag", 4096, false);
	sess_open(&w, "writer", "ag");
	test_sess_start(&js, &dmn, "json");
	test_sess_start(&ps, &dmn, "paged");
	seq0 = test_line_u64(test_sess_ok(&js, "subscribe ag"), "seq");
	ck_assert_uint_eq(test_line_u64(test_sess_ok(&ps, "subscribe-page ag"), "seq"), seq0);
	test_conn_open_hello(&p, &dmn);
	for (i = 0; i < ROUNDS; i++) {
		(void)test_sess_ok(&w, "changed ag %zu 5", 10 + i);
		(void)test_conn_changed(&p, "ag", 100 + i, 7);
		/* The page subscriber's own change, through the protocol: not for it. */
		if (i % 3 == 0)
			(void)test_sess_ok(&ps, "changed ag %zu 1", 200 + i);
	}
	while (nj < 2 * ROUNDS + (ROUNDS + 2) / 3) {
		jev[nj] = test_sess_find_event(&js, "changed ag", TEST_WAIT_MS);
		ck_assert_msg(jev[nj], "json subscriber: %zu events only", nj);
		nj++;
	}
	while (np < 2 * ROUNDS) {
		pev[np] = test_sess_find_event(&ps, "changed ag", TEST_WAIT_MS);
		ck_assert_msg(pev[np], "page subscriber: %zu events only", np);
		ck_assert_msg(strstr(pev[np], " writer=?/"), "not from the page: %s", pev[np]);
		np++;
	}
	test_sess_expect_no_event(&ps, 200);
	for (i = 0, k = 0; i < nj; i++) {
		char own[64];

		snprintf(own, sizeof(own), " writer=paged/%ld", (long)ps.pid);
		if (strstr(jev[i], own)) {
			free(jev[i]);
			continue;
		}
		ck_assert_uint_lt(k, np);
		ck_assert_str_eq(event_without_writer_name(pev[k]), event_without_writer_name(jev[i]));
		free(jev[i]);
		free(pev[k++]);
	}
	ck_assert_uint_eq(k, np);

	/* More than 64 found at once are coalesced: one event, ranges merged, one writer. */
	seq0 = sess_seq(&ps, "ag");
	(void)test_sess_ok(&ps, "deaf");
	ck_assert_uint_eq(test_line_u64(test_sess_ok(&w, "changeloop ag 100"), "last"), seq0 + 100);
	(void)test_sess_ok(&ps, "hear");
	pev[0] = test_sess_find_event(&ps, "changed ag", TEST_WAIT_MS);
	ck_assert_msg(pev[0], "no coalesced event");
	snprintf(want, sizeof(want), "changed ag seq=%llu first=%llu ranges=0+64 writer=?/%ld",
	         (unsigned long long)seq0 + 100, (unsigned long long)seq0 + 1, (long)w.pid);
	ck_assert_str_eq(pev[0], want);
	free(pev[0]);
	test_sess_expect_no_event(&ps, 200);

	/* Many at once: every seq is a change or an overflow, coalesced when they pile up. */
	seq0 = sess_seq(&ps, "ag");
	(void)test_sess_ok(&ps, "count ag");
	r = test_sess_ok(&w, "changeloop ag 2000");
	ck_assert_uint_eq(test_line_u64(r, "last"), seq0 + 2000);
	r = test_sess_ok(&ps, "count-wait ag %llu 20000", (unsigned long long)seq0 + 2000);
	ck_assert_uint_eq(test_line_u64(r, "last"), seq0 + 2000);
	ck_assert_msg(test_line_u64(r, "bad") == 0,
	              "events out of order, or missing without an overflow:%s", r);
	ck_assert_msg(test_line_u64(r, "changes") == 2000 || test_line_u64(r, "overflow") > 0,
	              "changes went missing without an overflow:%s", r);
	test_conn_close(&p);
	ck_assert_int_eq(test_sess_end(&w), 0);
	ck_assert_int_eq(test_sess_end(&js), 0);
	ck_assert_int_eq(test_sess_end(&ps), 0);
	test_daemon_delete(&dmn, "ag");
}
END_TEST

/*
 * A page subscription needs only read access, and gives nothing more: uid 65534, which may
 * read region "ro" but not write it, gets a page it cannot map writable, and what it can do
 * with the doorbell (drive its counter to the maximum, ring it without pause) neither stops
 * another page subscriber from getting every change nor hurts the daemon.
 */
START_TEST(test_fastnotify_hostile_page_subscriber_cannot_write_the_log_or_silence_the_bell)
{
	enum { N = 3000 };
	struct test_sess w, ps;
	struct test_conn nobody;
	uint64_t seq0, full = 0xfffffffffffffffeull;
	const char *r;
	cJSON *reply;
	pid_t child;
	int page_fd, bell;
	char *ev;

	if (!test_is_root())
		return;
	test_daemon_create_perm(&dmn, "ro", 4096, 0644);
	sess_open(&w, "writer", "ro");
	test_sess_start(&ps, &dmn, "paged");
	(void)test_sess_ok(&ps, "subscribe-page ro");
	test_conn_open_hello_as(&nobody, &dmn, TEST_NOBODY, TEST_NOBODY);
	reply = test_conn_callf(&nobody, "{'op':'subscribe','name':'ro','page':true}");
	test_assert_ok(reply);
	ck_assert_uint_eq(test_json_u64(reply, "fds"), 2);
	cJSON_Delete(reply);
	page_fd = test_conn_take_fd(&nobody);
	bell = test_conn_take_fd(&nobody);
	ck_assert(mmap(NULL, CTLPAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd, 0) ==
	          MAP_FAILED);
	ck_assert_int_eq(errno, EACCES);
	/* The counter at its maximum: the writer's ring still wakes the subscriber's poll loop. */
	ck_assert_int_eq(write(bell, &full, sizeof(full)), sizeof(full));
	seq0 = test_line_u64(test_sess_ok(&w, "changed ro 0 1"), "seq");
	ev = test_sess_find_event(&ps, "changed ro", 2000);
	ck_assert_msg(ev, "a ring on a full counter was lost");
	ck_assert_uint_eq(test_line_u64(ev, "seq"), seq0);
	free(ev);
	/* The attack: the counter kept at its maximum, and rung, without pause. */
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		int64_t end = test_now_ms() + 1500;
		uint64_t one = 1;

		while (test_now_ms() < end) {
			(void)!write(bell, &full, sizeof(full));
			(void)!write(bell, &one, sizeof(one));
		}
		_exit(0);
	}
	seq0 = sess_seq(&ps, "ro");
	(void)test_sess_ok(&ps, "count ro");
	r = test_sess_ok(&w, "changeloop ro %d", N);
	ck_assert_uint_eq(test_line_u64(r, "last"), seq0 + N);
	r = test_sess_ok(&ps, "count-wait ro %llu 20000", (unsigned long long)seq0 + N);
	ck_assert_uint_eq(test_line_u64(r, "last"), seq0 + N);
	ck_assert_msg(test_line_u64(r, "bad") == 0,
	              "events out of order, or missing without an overflow:%s", r);
	test_child_wait(child, TEST_WAIT_MS);
	test_daemon_assert_alive(&dmn);
	close(page_fd);
	close(bell);
	test_conn_close(&nobody);
	ck_assert_int_eq(test_sess_end(&w), 0);
	ck_assert_int_eq(test_sess_end(&ps), 0);
	test_daemon_delete(&dmn, "ro");
}
END_TEST

static Suite *fastnotify_suite(void)
{
	Suite *s = suite_create("fastnotify");
	TCase *tc = tcase_create("fastnotify");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_fastnotify_page_writer_reaches_json_subscriber_without_round_trips);
	tcase_add_test(tc, test_fastnotify_protocol_writer_reaches_page_reader);
	tcase_add_test(tc, test_fastnotify_page_writer_reaches_page_reader_with_its_pid);
	tcase_add_test(tc, test_fastnotify_mixed_writers_lose_nothing_for_any_reader);
	tcase_add_test(tc, test_fastnotify_hostile_uid_scribbling_the_log_hurts_only_that_region);
	tcase_add_test(tc, test_fastnotify_an_entry_never_published_is_reported_lost_and_passed);
	tcase_add_test(tc, test_fastnotify_always_policy_and_read_only_regions_use_the_protocol);
	tcase_add_test(tc, test_fastnotify_page_subscriber_sees_what_a_json_subscriber_sees);
	tcase_add_test(tc, test_fastnotify_requests_behind_an_unpublished_entry_keep_their_order);
	tcase_add_test(tc, test_fastnotify_hostile_page_subscriber_cannot_write_the_log_or_silence_the_bell);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(fastnotify_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
