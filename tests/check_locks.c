/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of the lock manager (docs/coordination.md, "Locks"): exclusive locks
 * really exclude (eight processes add to one counter through their mappings), a holder killed
 * with SIGKILL hands its lock to the waiter, try-locks, timeouts, deadlock detection between
 * connections, shared locks, strict fairness, ownership of lock ids, the `locks` op and
 * `mmapctl locks --json`, the unlocked event, the per-client limit and deletion of a region
 * someone waits on; and 2000 waiters of one region granted in queue order as they are released.
 *
 * One mmapd serves the whole test case (config: max_locks_per_client 4, so the limit is
 * reachable; the 2000 waiters have their own daemon, allowing 600); every test uses its own
 * region names. Where the issue speaks of processes the tests run session processes
 * ($MMAPD_TESTCLIENT session, on libmmapd); where exact replies matter they speak the raw
 * protocol from the test process (whose pid is then the holder's).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct test_daemon dmn;

static void suite_setup(void)
{
	test_daemon_start(&dmn, "{\"max_locks_per_client\": 4}");
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

static uint64_t epoch_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* ---- raw protocol helpers ------------------------------------------------------------------ */

/* Sends a lock request (extra: more fields, e.g. ",'wait':false", or "") without waiting. */
static uint64_t lock_send(struct test_conn *c, const char *name, uint64_t off, uint64_t len,
                          const char *mode, const char *extra)
{
	return test_conn_sendf(c, "{'op':'lock','name':'%s','offset':%llu,'length':%llu,"
	                       "'mode':'%s'%s}", name, (unsigned long long)off,
	                       (unsigned long long)len, mode, extra);
}

/* Asserts a lock reply granted the lock; returns its id. Frees the reply. */
static uint64_t lock_granted(cJSON *reply)
{
	uint64_t id;

	test_assert_ok(reply);
	id = test_json_u64(reply, "lock");
	(void)test_json_u64(reply, "waited_ms");
	cJSON_Delete(reply);
	return id;
}

/* Locks now (the range must be free); returns the lock id. */
static uint64_t lock_now(struct test_conn *c, const char *name, uint64_t off, uint64_t len,
                         const char *mode)
{
	uint64_t id = lock_send(c, name, off, len, mode, ",'wait':false");

	return lock_granted(test_conn_reply(c, id, TEST_WAIT_MS));
}

/* Sends a lock request and asserts the error reply code/err. */
static void lock_refused(struct test_conn *c, const char *name, uint64_t off, uint64_t len,
                         const char *mode, const char *extra, const char *code, int err)
{
	uint64_t id = lock_send(c, name, off, len, mode, extra);
	cJSON *reply = test_conn_reply(c, id, TEST_WAIT_MS);

	test_assert_error(reply, code, err);
	cJSON_Delete(reply);
}

static void unlock_ok(struct test_conn *c, uint64_t lock)
{
	cJSON *reply = test_conn_callf(c, "{'op':'unlock','lock':%llu}", (unsigned long long)lock);

	test_assert_ok(reply);
	cJSON_Delete(reply);
}

/* The reply of the locks op for name (NULL: all regions) from a fresh connection. */
static cJSON *locks_reply(const char *name)
{
	struct test_conn c;
	cJSON *reply;

	test_conn_open_hello(&c, &dmn);
	if (name != NULL)
		reply = test_conn_callf(&c, "{'op':'locks','name':'%s'}", name);
	else
		reply = test_conn_callf(&c, "{'op':'locks'}");
	test_conn_close(&c);
	test_assert_ok(reply);
	ck_assert_msg(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(reply, "locks")),
	              "locks reply without a locks array: %s", test_describe(reply));
	return reply;
}

/*
 * The locks of name in a compact form, one entry per lock in reply order:
 * "held:exclusive:OFF+LEN:pid=PID" ... joined by spaces.
 */
static void locks_summary(const char *name, char *buf, size_t size)
{
	cJSON *reply = locks_reply(name);
	const cJSON *l;
	size_t len = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(reply, "locks")) {
		int n = snprintf(buf + len, size - len, "%s%s:%s:%llu+%llu:pid=%llu", len ? " " : "",
		                 test_json_str(l, "state"), test_json_str(l, "mode"),
		                 (unsigned long long)test_json_u64(l, "offset"),
		                 (unsigned long long)test_json_u64(l, "length"),
		                 (unsigned long long)test_json_u64(l, "pid"));

		ck_assert((size_t)n < size - len);
		len += (size_t)n;
	}
	cJSON_Delete(reply);
}

/* Polls the locks op until its summary of name equals want; asserts it does in time. */
static void wait_locks(const char *name, const char *want)
{
	char got[1024];
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;

	for (;;) {
		locks_summary(name, got, sizeof(got));
		if (strcmp(got, want) == 0)
			return;
		ck_assert_msg(test_now_ms() < deadline, "locks of %s: expected \"%s\", got \"%s\"",
		              name, want, got);
		usleep(5000);
	}
}

/* "held:exclusive:0+0:pid=<this process>" and the like, for raw connections. */
static const char *me(const char *state, const char *mode, uint64_t off, uint64_t len)
{
	static char buf[8][96];
	static int next;
	char *b = buf[next++ % 8];

	snprintf(b, 96, "%s:%s:%llu+%llu:pid=%d", state, mode, (unsigned long long)off,
	         (unsigned long long)len, (int)getpid());
	return b;
}

/* Reads the region file's first 8 bytes. */
static uint64_t file_u64(const char *name, off_t off)
{
	char path[PATH_MAX];
	uint64_t v;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dmn.data, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(pread(fd, &v, 8, off), 8);
	close(fd);
	return v;
}

/* ---- processes -------------------------------------------------------------------------------- */

START_TEST(test_locks_eight_processes_add_80000_to_a_shared_counter_under_exclusive_lock)
{
	enum { NPROC = 8, ADDS = 10000 };
	struct test_sess s[NPROC];
	char want[32];

	test_daemon_create(&dmn, "counter", 4096, false);
	for (int i = 0; i < NPROC; i++) {
		test_sess_start(&s[i], &dmn, NULL);
		(void)test_sess_ok(&s[i], "open counter rw");
	}
	/* All are connected and mapped before any starts adding. */
	for (int i = 0; i < NPROC; i++)
		test_sess_send(&s[i], "addloop counter 0 0 %d", ADDS);
	for (int i = 0; i < NPROC; i++) {
		const char *r = test_sess_result(&s[i], 60000);

		ck_assert_msg(strcmp(r, "ok") == 0, "adder %d (pid %d): %s", i, (int)s[i].pid, r);
	}
	/* Every increment is in the shared pages: seen by a process and in the file. */
	snprintf(want, sizeof(want), " value=%d", NPROC * ADDS);
	ck_assert_str_eq(test_sess_ok(&s[0], "u64 0 0"), want);
	ck_assert_uint_eq(file_u64("counter", 0), (uint64_t)NPROC * ADDS);
	for (int i = 0; i < NPROC; i++)
		ck_assert_int_eq(test_sess_end(&s[i]), 0);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "locks", 0), 0);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "lock_waiters"), 0);
	test_daemon_delete(&dmn, "counter");
}
END_TEST

START_TEST(test_locks_holder_killed_with_sigkill_grants_its_waiter)
{
	struct test_sess holder, waiter;
	char want[128];
	const char *r;

	test_daemon_create(&dmn, "victim", 4096, false);
	test_sess_start(&holder, &dmn, NULL);
	test_sess_start(&waiter, &dmn, NULL);
	r = test_sess_ok(&holder, "lock victim 0 0 exclusive");
	ck_assert_msg(strncmp(r, " lock=", 6) == 0, "holder: %s", r);
	test_sess_send(&waiter, "lock victim 0 0 exclusive");
	snprintf(want, sizeof(want), "held:exclusive:0+0:pid=%d waiting:exclusive:0+0:pid=%d",
	         (int)holder.pid, (int)waiter.pid);
	wait_locks("victim", want);

	ck_assert_int_eq(test_sess_kill(&holder, SIGKILL), 128 + SIGKILL);
	r = test_sess_result(&waiter, TEST_WAIT_MS);
	ck_assert_msg(strncmp(r, "ok lock=", 8) == 0, "the waiter got \"%s\"", r);
	snprintf(want, sizeof(want), "held:exclusive:0+0:pid=%d", (int)waiter.pid);
	wait_locks("victim", want);
	(void)test_sess_ok(&waiter, "unlock %llu", (unsigned long long)test_line_u64(r, "lock"));
	wait_locks("victim", "");
	ck_assert_int_eq(test_sess_end(&waiter), 0);
	test_daemon_delete(&dmn, "victim");
}
END_TEST

START_TEST(test_locks_waiter_killed_with_sigkill_leaves_the_queue_and_releases_its_locks)
{
	struct test_sess waiter;
	struct test_conn a;
	char want[256];
	uint64_t l;

	test_daemon_create(&dmn, "deadwait", 4096, false);
	test_conn_open_hello(&a, &dmn);
	l = lock_now(&a, "deadwait", 0, 100, "exclusive");
	test_sess_start(&waiter, &dmn, NULL);
	/* The waiter holds a lock of its own while it waits for another. */
	(void)test_sess_ok(&waiter, "lock deadwait 200 10 exclusive");
	test_sess_send(&waiter, "lock deadwait 0 10 shared");
	snprintf(want, sizeof(want), "%s held:exclusive:200+10:pid=%d waiting:shared:0+10:pid=%d",
	         me("held", "exclusive", 0, 100), (int)waiter.pid, (int)waiter.pid);
	wait_locks("deadwait", want);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "lock_waiters"), 1);
	ck_assert_int_eq(test_sess_kill(&waiter, SIGKILL), 128 + SIGKILL);
	/* Dead: its wait is dropped and its lock released at once. */
	wait_locks("deadwait", me("held", "exclusive", 0, 100));
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "lock_waiters"), 0);
	unlock_ok(&a, lock_now(&a, "deadwait", 200, 10, "exclusive"));
	unlock_ok(&a, l);
	wait_locks("deadwait", "");
	test_conn_close(&a);
	test_daemon_delete(&dmn, "deadwait");
}
END_TEST

/* ---- the lock op's variants ------------------------------------------------------------------- */

START_TEST(test_locks_try_lock_on_a_conflict_is_eagain_and_does_not_queue)
{
	struct test_conn a, b;
	uint64_t la, lb;

	test_daemon_create(&dmn, "trylock", 4096, false);
	test_conn_open_hello(&a, &dmn);
	test_conn_open_hello(&b, &dmn);
	la = lock_now(&a, "trylock", 0, 100, "exclusive");
	lock_refused(&b, "trylock", 50, 10, "exclusive", ",'wait':false", "EAGAIN", EAGAIN);
	lock_refused(&b, "trylock", 99, 1, "shared", ",'wait':false", "EAGAIN", EAGAIN);
	/* Length 0 reaches to the end of every size: it overlaps the held range. */
	lock_refused(&b, "trylock", 10, 0, "shared", ",'wait':false", "EAGAIN", EAGAIN);
	/* Ranges that only touch do not conflict. */
	lb = lock_now(&b, "trylock", 100, 100, "exclusive");
	{
		char want[256];

		snprintf(want, sizeof(want), "%s %s", me("held", "exclusive", 0, 100),
		         me("held", "exclusive", 100, 100));
		wait_locks("trylock", want);
	}
	unlock_ok(&a, la);
	unlock_ok(&b, lb);
	wait_locks("trylock", "");
	test_conn_expect_no_event(&b, 50);
	test_conn_close(&a);
	test_conn_close(&b);
	test_daemon_delete(&dmn, "trylock");
}
END_TEST

START_TEST(test_locks_wait_with_timeout_gives_etimedout_and_leaves_the_queue)
{
	struct test_conn a, b;
	uint64_t la, id;
	int64_t t0, took;
	cJSON *reply;

	test_daemon_create(&dmn, "timeout", 4096, false);
	test_conn_open_hello(&a, &dmn);
	test_conn_open_hello(&b, &dmn);
	la = lock_now(&a, "timeout", 0, 0, "exclusive");
	t0 = test_now_ms();
	id = lock_send(&b, "timeout", 0, 10, "shared", ",'timeout_ms':300");
	reply = test_conn_reply(&b, id, TEST_WAIT_MS);
	took = test_now_ms() - t0;
	test_assert_error(reply, "ETIMEDOUT", ETIMEDOUT);
	cJSON_Delete(reply);
	ck_assert_msg(took >= 280 && took < 3000, "ETIMEDOUT after %lld ms, expected about 300",
	              (long long)took);
	wait_locks("timeout", me("held", "exclusive", 0, 0));
	/* Once released, nothing is granted to the request that gave up. */
	unlock_ok(&a, la);
	wait_locks("timeout", "");
	test_conn_expect_no_event(&b, 50);
	test_conn_close(&a);
	test_conn_close(&b);
	test_daemon_delete(&dmn, "timeout");
}
END_TEST

START_TEST(test_locks_cycle_between_two_connections_is_edeadlk)
{
	struct test_conn a, b;
	uint64_t la, lb, wait_id, la2;
	int64_t t0;
	char want[512];

	test_daemon_create(&dmn, "deadlock", 4096, false);
	test_conn_open_hello(&a, &dmn);
	test_conn_open_hello(&b, &dmn);
	la = lock_now(&a, "deadlock", 0, 100, "exclusive");
	lb = lock_now(&b, "deadlock", 100, 100, "exclusive");
	/* a waits for b ... */
	wait_id = lock_send(&a, "deadlock", 100, 100, "exclusive", "");
	snprintf(want, sizeof(want), "%s %s %s", me("held", "exclusive", 0, 100),
	         me("held", "exclusive", 100, 100), me("waiting", "exclusive", 100, 100));
	wait_locks("deadlock", want);
	/* ... so b waiting for a would close the cycle: refused at once. */
	t0 = test_now_ms();
	lock_refused(&b, "deadlock", 0, 100, "exclusive", "", "EDEADLK", EDEADLK);
	ck_assert_msg(test_now_ms() - t0 < 1000, "EDEADLK took %lld ms", (long long)(test_now_ms() - t0));
	wait_locks("deadlock", want);
	/* b gives in: a gets what it waited for. */
	unlock_ok(&b, lb);
	la2 = lock_granted(test_conn_reply(&a, wait_id, TEST_WAIT_MS));
	ck_assert_uint_ne(la2, la);
	/* A connection waiting on its own lock is no deadlock: it times out instead. */
	lock_refused(&a, "deadlock", 50, 10, "exclusive", ",'timeout_ms':100", "ETIMEDOUT", ETIMEDOUT);
	unlock_ok(&a, la);
	unlock_ok(&a, la2);
	wait_locks("deadlock", "");
	test_reply_ok(test_conn_callf(&b, "{'op':'ping'}"));
	test_conn_close(&a);
	test_conn_close(&b);
	test_daemon_delete(&dmn, "deadlock");
}
END_TEST

START_TEST(test_locks_shared_locks_coexist_and_exclude_an_exclusive_one)
{
	struct test_conn a, b, c;
	uint64_t la, lb, lc;
	char want[512];

	test_daemon_create(&dmn, "shared", 4096, false);
	test_conn_open_hello(&a, &dmn);
	test_conn_open_hello(&b, &dmn);
	test_conn_open_hello(&c, &dmn);
	la = lock_now(&a, "shared", 0, 0, "shared");
	lb = lock_now(&b, "shared", 0, 0, "shared");
	lock_refused(&c, "shared", 4000, 1, "exclusive", ",'wait':false", "EAGAIN", EAGAIN);
	lc = lock_now(&c, "shared", 10, 20, "shared");
	ck_assert(la != lb && lb != lc && la != lc);
	snprintf(want, sizeof(want), "%s %s %s", me("held", "shared", 0, 0), me("held", "shared", 0, 0),
	         me("held", "shared", 10, 20));
	wait_locks("shared", want);
	unlock_ok(&a, la);
	unlock_ok(&b, lb);
	unlock_ok(&c, lc);
	wait_locks("shared", "");
	test_conn_close(&a);
	test_conn_close(&b);
	test_conn_close(&c);
	test_daemon_delete(&dmn, "shared");
}
END_TEST

START_TEST(test_locks_exclusive_waiter_is_not_starved_by_later_shared_requests)
{
	struct test_conn a, b, c;
	uint64_t la, lb, lc, b_id, c_id;
	char want[512];

	test_daemon_create(&dmn, "fair", 4096, false);
	test_conn_open_hello(&a, &dmn);
	test_conn_open_hello(&b, &dmn);
	test_conn_open_hello(&c, &dmn);
	la = lock_now(&a, "fair", 0, 0, "shared");
	b_id = lock_send(&b, "fair", 0, 0, "exclusive", "");
	snprintf(want, sizeof(want), "%s %s", me("held", "shared", 0, 0),
	         me("waiting", "exclusive", 0, 0));
	wait_locks("fair", want);
	/* Compatible with the held shared lock, but it must queue behind the exclusive waiter. */
	c_id = lock_send(&c, "fair", 0, 0, "shared", "");
	snprintf(want, sizeof(want), "%s %s %s", me("held", "shared", 0, 0),
	         me("waiting", "exclusive", 0, 0), me("waiting", "shared", 0, 0));
	wait_locks("fair", want);

	unlock_ok(&a, la);
	lb = lock_granted(test_conn_reply(&b, b_id, TEST_WAIT_MS));
	snprintf(want, sizeof(want), "%s %s", me("held", "exclusive", 0, 0),
	         me("waiting", "shared", 0, 0));
	wait_locks("fair", want);
	unlock_ok(&b, lb);
	lc = lock_granted(test_conn_reply(&c, c_id, TEST_WAIT_MS));
	wait_locks("fair", me("held", "shared", 0, 0));
	unlock_ok(&c, lc);
	test_conn_close(&a);
	test_conn_close(&b);
	test_conn_close(&c);
	test_daemon_delete(&dmn, "fair");
}
END_TEST

START_TEST(test_locks_unlock_of_a_foreign_or_released_lock_is_ebadf)
{
	struct test_conn a, b;
	uint64_t la;

	test_daemon_create(&dmn, "foreign", 4096, false);
	test_conn_open_hello(&a, &dmn);
	test_conn_open_hello(&b, &dmn);
	la = lock_now(&a, "foreign", 0, 0, "exclusive");
	test_reply_error(test_conn_callf(&b, "{'op':'unlock','lock':%llu}", (unsigned long long)la),
	                 "EBADF", EBADF, NULL);
	/* The lock is still a's. */
	wait_locks("foreign", me("held", "exclusive", 0, 0));
	lock_refused(&b, "foreign", 0, 1, "shared", ",'wait':false", "EAGAIN", EAGAIN);
	unlock_ok(&a, la);
	test_reply_error(test_conn_callf(&a, "{'op':'unlock','lock':%llu}", (unsigned long long)la),
	                 "EBADF", EBADF, NULL);
	test_reply_error(test_conn_callf(&a, "{'op':'unlock','lock':987654321}"),
	                 "EBADF", EBADF, NULL);
	test_conn_close(&a);
	test_conn_close(&b);
	test_daemon_delete(&dmn, "foreign");
}
END_TEST

/* Finds the entries of region name in a JSON array of lock objects; asserts there are two. */
static void check_holder_and_waiter(const cJSON *arr, const char *name, pid_t holder,
                                    pid_t waiter, uint64_t holder_lock, uint64_t t0, uint64_t t1)
{
	const cJSON *l, *found[2] = { NULL, NULL };
	size_t n = 0;

	ck_assert_msg(cJSON_IsArray(arr), "not an array of locks: %s", test_describe(arr));
	cJSON_ArrayForEach(l, arr) {
		if (strcmp(test_json_str(l, "region"), name) != 0)
			continue;
		ck_assert_msg(n < 2, "more than two locks of %s: %s", name, test_describe(arr));
		found[n++] = l;
	}
	ck_assert_msg(n == 2, "expected a holder and a waiter of %s in %s", name, test_describe(arr));
	/* Holders first, then waiters. */
	ck_assert_str_eq(test_json_str(found[0], "state"), "held");
	ck_assert_str_eq(test_json_str(found[1], "state"), "waiting");
	ck_assert_uint_eq(test_json_u64(found[0], "pid"), (uint64_t)holder);
	ck_assert_uint_eq(test_json_u64(found[1], "pid"), (uint64_t)waiter);
	ck_assert_str_eq(test_json_str(found[0], "client"), "lock-holder");
	ck_assert_str_eq(test_json_str(found[1], "client"), "lock-waiter");
	ck_assert_uint_eq(test_json_u64(found[0], "lock"), holder_lock);
	ck_assert_uint_ne(test_json_u64(found[1], "lock"), holder_lock);
	for (int i = 0; i < 2; i++) {
		uint64_t since = test_json_u64(found[i], "since_ms");

		ck_assert_str_eq(test_json_str(found[i], "mode"), "exclusive");
		ck_assert_uint_eq(test_json_u64(found[i], "offset"), i == 0 ? 10 : 15);
		ck_assert_uint_eq(test_json_u64(found[i], "length"), i == 0 ? 20 : 1);
		ck_assert_uint_eq(test_json_u64(found[i], "uid"), (uint64_t)getuid());
		ck_assert_msg(since + 1000 >= t0 && since <= t1 + 1000,
		              "since_ms %llu is not between %llu and %llu (epoch ms)",
		              (unsigned long long)since, (unsigned long long)t0, (unsigned long long)t1);
	}
}

START_TEST(test_locks_op_and_mmapctl_show_holder_and_waiter_with_pid)
{
	struct test_sess holder, waiter;
	uint64_t t0 = epoch_ms(), t1, hl;
	char want[256], out[16384];
	cJSON *reply, *ctl;
	const cJSON *arr;
	int st;

	test_daemon_create(&dmn, "shown", 4096, false);
	test_sess_start(&holder, &dmn, "lock-holder");
	test_sess_start(&waiter, &dmn, "lock-waiter");
	hl = test_line_u64(test_sess_ok(&holder, "lock shown 10 20 exclusive"), "lock");
	test_sess_send(&waiter, "lock shown 15 1 exclusive");
	snprintf(want, sizeof(want), "held:exclusive:10+20:pid=%d waiting:exclusive:15+1:pid=%d",
	         (int)holder.pid, (int)waiter.pid);
	wait_locks("shown", want);
	t1 = epoch_ms();

	reply = locks_reply("shown");
	check_holder_and_waiter(cJSON_GetObjectItemCaseSensitive(reply, "locks"), "shown",
	                        holder.pid, waiter.pid, hl, t0, t1);
	cJSON_Delete(reply);
	/* Without a name: every region's locks, these among them. */
	reply = locks_reply(NULL);
	check_holder_and_waiter(cJSON_GetObjectItemCaseSensitive(reply, "locks"), "shown",
	                        holder.pid, waiter.pid, hl, t0, t1);
	cJSON_Delete(reply);
	/* status counts them. */
	reply = test_daemon_status(&dmn);
	ck_assert_uint_ge(test_json_u64(reply, "locks"), 1);
	ck_assert_uint_ge(test_json_u64(reply, "lock_waiters"), 1);
	cJSON_Delete(reply);

	/* mmapctl shows the same (the JSON mirrors the locks op's objects). */
	st = test_run_ctl(&dmn, out, sizeof(out), "--json", "locks", (char *)NULL);
	ck_assert_msg(st == 0, "mmapctl --json locks: exit status %d, output \"%s\"", st, out);
	ctl = cJSON_Parse(out);
	ck_assert_msg(ctl != NULL, "mmapctl --json locks printed no JSON: \"%s\"", out);
	arr = cJSON_IsArray(ctl) ? ctl : cJSON_GetObjectItemCaseSensitive(ctl, "locks");
	check_holder_and_waiter(arr, "shown", holder.pid, waiter.pid, hl, t0, t1);
	cJSON_Delete(ctl);
	/* And the table form names both pids. */
	st = test_run_ctl(&dmn, out, sizeof(out), "locks", (char *)NULL);
	ck_assert_msg(st == 0, "mmapctl locks: exit status %d", st);
	snprintf(want, sizeof(want), "%d", (int)holder.pid);
	ck_assert_msg(strstr(out, want) != NULL, "mmapctl locks does not show pid %s: %s", want, out);
	snprintf(want, sizeof(want), "%d", (int)waiter.pid);
	ck_assert_msg(strstr(out, want) != NULL, "mmapctl locks does not show pid %s: %s", want, out);

	ck_assert_int_eq(test_sess_end(&holder), 0);
	ck_assert_msg(strncmp(test_sess_result(&waiter, TEST_WAIT_MS), "ok lock=", 8) == 0,
	              "the waiter was not granted when the holder left: %s", waiter.result);
	ck_assert_int_eq(test_sess_end(&waiter), 0);
	wait_locks("shown", "");
	test_daemon_delete(&dmn, "shown");
}
END_TEST

START_TEST(test_locks_release_someone_waits_for_sends_unlocked_to_subscribers)
{
	struct test_sess sub;
	struct test_conn a, b;
	uint64_t la, lfree, b_id, lb;

	test_daemon_create(&dmn, "announce", 4096, false);
	test_sess_start(&sub, &dmn, NULL);
	(void)test_sess_ok(&sub, "subscribe announce");
	test_conn_open_hello(&a, &dmn);
	test_conn_open_hello(&b, &dmn);
	/* Nobody waits for this one: no event. */
	lfree = lock_now(&a, "announce", 500, 10, "exclusive");
	unlock_ok(&a, lfree);
	test_sess_expect_no_event(&sub, 100);

	la = lock_now(&a, "announce", 0, 100, "exclusive");
	b_id = lock_send(&b, "announce", 50, 10, "shared", "");
	{
		char want[256];

		snprintf(want, sizeof(want), "%s %s", me("held", "exclusive", 0, 100),
		         me("waiting", "shared", 50, 10));
		wait_locks("announce", want);
	}
	unlock_ok(&a, la);
	test_sess_expect_event(&sub, "unlocked announce off=0 len=100");
	lb = lock_granted(test_conn_reply(&b, b_id, TEST_WAIT_MS));
	unlock_ok(&b, lb);
	test_sess_expect_no_event(&sub, 50);
	ck_assert_int_eq(test_sess_end(&sub), 0);
	test_conn_close(&a);
	test_conn_close(&b);
	test_daemon_delete(&dmn, "announce");
}
END_TEST

START_TEST(test_locks_beyond_max_locks_per_client_is_eagain)
{
	struct test_conn a, b;
	uint64_t held[3], lb, wait_id;

	test_daemon_create(&dmn, "many", 4096, false);
	test_conn_open_hello(&a, &dmn);
	test_conn_open_hello(&b, &dmn);
	lb = lock_now(&b, "many", 1000, 10, "exclusive");
	for (int i = 0; i < 3; i++)
		held[i] = lock_now(&a, "many", (uint64_t)i * 10, 10, "shared");
	/* The fourth is a wait: it counts too. */
	wait_id = lock_send(&a, "many", 1000, 10, "shared", "");
	{
		char want[512];

		snprintf(want, sizeof(want), "%s %s %s %s %s", me("held", "exclusive", 1000, 10),
		         me("held", "shared", 0, 10), me("held", "shared", 10, 10),
		         me("held", "shared", 20, 10), me("waiting", "shared", 1000, 10));
		wait_locks("many", want);
	}
	/* A fifth, free range: refused only because of the limit of 4. */
	lock_refused(&a, "many", 2000, 10, "shared", "", "EAGAIN", EAGAIN);
	/* Another connection is not affected. */
	unlock_ok(&b, lb);
	lb = lock_granted(test_conn_reply(&a, wait_id, TEST_WAIT_MS));
	for (int i = 0; i < 3; i++)
		unlock_ok(&a, held[i]);
	unlock_ok(&a, lb);
	test_reply_ok(test_conn_callf(&a, "{'op':'ping'}"));
	wait_locks("many", "");
	test_conn_close(&a);
	test_conn_close(&b);
	test_daemon_delete(&dmn, "many");
}
END_TEST

START_TEST(test_locks_waiter_gets_ecanceled_when_the_region_is_deleted)
{
	struct test_conn a, b;
	uint64_t la, b_id;
	cJSON *reply;

	test_daemon_create(&dmn, "doomed", 4096, false);
	test_conn_open_hello(&a, &dmn);
	test_conn_open_hello(&b, &dmn);
	la = lock_now(&a, "doomed", 0, 0, "exclusive");
	b_id = lock_send(&b, "doomed", 0, 0, "exclusive", "");
	{
		char want[256];

		snprintf(want, sizeof(want), "%s %s", me("held", "exclusive", 0, 0),
		         me("waiting", "exclusive", 0, 0));
		wait_locks("doomed", want);
	}
	test_daemon_delete(&dmn, "doomed");
	reply = test_conn_reply(&b, b_id, TEST_WAIT_MS);
	test_assert_error(reply, "ECANCELED", ECANCELED);
	cJSON_Delete(reply);
	/* The held lock stays a's until released. */
	unlock_ok(&a, la);
	/* A lock on a region that does not exist. */
	lock_refused(&a, "doomed", 0, 0, "exclusive", "", "ENOENT", ENOENT);
	lock_refused(&a, "no-such-region", 0, 0, "shared", ",'wait':false", "ENOENT", ENOENT);
	test_conn_close(&a);
	test_conn_close(&b);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "locks", 0), 0);
}
END_TEST

START_TEST(test_locks_bad_fields_are_einval)
{
	struct test_conn a;

	test_daemon_create(&dmn, "badlock", 4096, false);
	test_conn_open_hello(&a, &dmn);
	/* mode is required */
	test_reply_error(test_conn_callf(&a, "{'op':'lock','name':'badlock'}"),
	                 "EINVAL", EINVAL, NULL);
	test_reply_error(test_conn_callf(&a, "{'op':'lock','name':'badlock','mode':'both'}"),
	                 "EINVAL", EINVAL, NULL);
	test_reply_error(test_conn_callf(&a,
	                                 "{'op':'lock','name':'badlock','mode':'shared','wait':1}"),
	                 "EINVAL", EINVAL, NULL);
	test_reply_error(test_conn_callf(&a, "{'op':'unlock'}"), "EINVAL", EINVAL, NULL);
	test_conn_close(&a);
	test_daemon_delete(&dmn, "badlock");
}
END_TEST

/* ---- many waiters ------------------------------------------------------------------------------ */

#define CROWD_CONNS 8
#define CROWD_WAITERS 2000
#define CROWD_BATCH (CROWD_WAITERS / CROWD_CONNS)

static void crowd_setup(void)
{
	test_daemon_start(&dmn, "{\"max_locks_per_client\": 600}");
}

/*
 * Waiter i's connection: one batch each, in order (a connection queued again behind a later
 * one would close a wait-for cycle: EDEADLK).
 */
static int crowd_conn(int i)
{
	return i / CROWD_BATCH;
}

/* Waiter i: every tenth exclusive, every tenth (ending in 9) on its own byte far away. */
static bool crowd_far(int i)
{
	return i % 10 == 9;
}

static void crowd_ping_all(struct test_conn *conns)
{
	for (int k = 0; k < CROWD_CONNS; k++) {
		cJSON *reply = test_conn_callf(&conns[k], "{'op':'ping'}");

		/* Any lock granted too early would have arrived in the ping's place. */
		test_assert_ok(reply);
		cJSON_Delete(reply);
	}
}

/* Receives the grants of waiters from..to-1 (skipping far ones) in queue order. */
static void crowd_expect(struct test_conn *conns, const uint64_t *req, uint64_t *lock, int from,
                         int to)
{
	for (int i = from; i < to; i++)
		if (!crowd_far(i))
			lock[i] = lock_granted(test_conn_reply(&conns[crowd_conn(i)], req[i], TEST_WAIT_MS));
	crowd_ping_all(conns);
}

START_TEST(test_locks_two_thousand_waiters_are_granted_in_queue_order_and_none_is_left)
{
	struct test_conn holder, conns[CROWD_CONNS];
	static uint64_t req[CROWD_WAITERS], lock[CROWD_WAITERS];
	uint64_t whole;
	int i, k;

	test_daemon_create(&dmn, "crowd", 4096, false);
	test_conn_open_hello(&holder, &dmn);
	for (k = 0; k < CROWD_CONNS; k++)
		test_conn_open_hello(&conns[k], &dmn);
	whole = lock_now(&holder, "crowd", 0, 0, "exclusive");
	/* Queued in index order: a connection's batch is in before the next one sends. */
	for (i = 0; i < CROWD_WAITERS; i += CROWD_BATCH) {
		struct test_conn *c = &conns[crowd_conn(i)];

		for (int j = i; j < i + CROWD_BATCH; j++)
			req[j] = crowd_far(j) ? lock_send(c, "crowd", 1000000 + (uint64_t)j, 1, "exclusive", "")
			         : lock_send(c, "crowd", 0, 4096, j % 10 == 0 ? "exclusive" : "shared", "");
		test_reply_ok(test_conn_callf(c, "{'op':'ping'}"));
	}
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "lock_waiters"), CROWD_WAITERS);

	/* The whole-region lock goes: every far waiter passes the queue, and the head goes. */
	unlock_ok(&holder, whole);
	for (i = 0; i < CROWD_WAITERS; i++)
		if (i == 0 || crowd_far(i))
			lock[i] = lock_granted(test_conn_reply(&conns[crowd_conn(i)], req[i], TEST_WAIT_MS));
	crowd_ping_all(conns);
	/* Then, exclusive by exclusive: its release grants the shared run behind it at once,
	 * and the next exclusive goes only when the last of that run is released. */
	for (i = 0; i < CROWD_WAITERS; i += 10) {
		unlock_ok(&conns[crowd_conn(i)], lock[i]);
		crowd_expect(conns, req, lock, i + 1, i + 10);
		for (int j = i + 1; j < i + 10; j++) {
			if (crowd_far(j))
				continue;
			unlock_ok(&conns[crowd_conn(j)], lock[j]);
			if (j < i + 8)
				crowd_ping_all(conns);
		}
		if (i + 10 < CROWD_WAITERS)
			crowd_expect(conns, req, lock, i + 10, i + 11);
	}
	for (i = 9; i < CROWD_WAITERS; i += 10)
		unlock_ok(&conns[crowd_conn(i)], lock[i]);
	wait_locks("crowd", "");
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "lock_waiters"), 0);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "locks"), 0);
	test_conn_close(&holder);
	for (k = 0; k < CROWD_CONNS; k++)
		test_conn_close(&conns[k]);
	test_daemon_delete(&dmn, "crowd");
}
END_TEST

static Suite *locks_suite(void)
{
	Suite *s = suite_create("locks");
	TCase *tc = tcase_create("locks");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_locks_eight_processes_add_80000_to_a_shared_counter_under_exclusive_lock);
	tcase_add_test(tc, test_locks_holder_killed_with_sigkill_grants_its_waiter);
	tcase_add_test(tc, test_locks_waiter_killed_with_sigkill_leaves_the_queue_and_releases_its_locks);
	tcase_add_test(tc, test_locks_try_lock_on_a_conflict_is_eagain_and_does_not_queue);
	tcase_add_test(tc, test_locks_wait_with_timeout_gives_etimedout_and_leaves_the_queue);
	tcase_add_test(tc, test_locks_cycle_between_two_connections_is_edeadlk);
	tcase_add_test(tc, test_locks_shared_locks_coexist_and_exclude_an_exclusive_one);
	tcase_add_test(tc, test_locks_exclusive_waiter_is_not_starved_by_later_shared_requests);
	tcase_add_test(tc, test_locks_unlock_of_a_foreign_or_released_lock_is_ebadf);
	tcase_add_test(tc, test_locks_op_and_mmapctl_show_holder_and_waiter_with_pid);
	tcase_add_test(tc, test_locks_release_someone_waits_for_sends_unlocked_to_subscribers);
	tcase_add_test(tc, test_locks_beyond_max_locks_per_client_is_eagain);
	tcase_add_test(tc, test_locks_waiter_gets_ecanceled_when_the_region_is_deleted);
	tcase_add_test(tc, test_locks_bad_fields_are_einval);
	suite_add_tcase(s, tc);

	tc = tcase_create("crowd");
	tcase_add_unchecked_fixture(tc, crowd_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_locks_two_thousand_waiters_are_granted_in_queue_order_and_none_is_left);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(locks_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
