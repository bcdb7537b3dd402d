/* SPDX-License-Identifier: MIT */
/*
 * Unit suite of the lock manager (daemon/lock.h), driven through its public entry points
 * only: lock_acquire() and lock_release() on connections of a real server run in-process
 * (tests/unit/inproc.h), each answer read from the client end of the connection. It covers
 * granting, the wait queue's fairness, the wait-for graph's deadlock refusal (cycles of two
 * and three connections, and chains or fan-ins that are no cycle), timeouts, and what a
 * connection that goes away releases. Nothing here depends on how the deadlock search is
 * implemented, only on its answers.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <check.h>

#include "conn.h"
#include "harness.h"
#include "inproc.h"
#include "lock.h"
#include "msg.h"
#include "region.h"

static struct inproc P;
static struct inproc_client A, B, C;
static struct region *R;

static void setup(void)
{
	inproc_prime();
	test_fd_setup();
	inproc_setup(&P);
	inproc_connect_hello(&P, &A, "a");
	inproc_connect_hello(&P, &B, "b");
	inproc_connect_hello(&P, &C, "c");
	R = inproc_create_region(&A, "r", 4096);
}

static void teardown(void)
{
	inproc_disconnect(&A);
	inproc_disconnect(&B);
	inproc_disconnect(&C);
	ck_assert_uint_eq(P.srv.nlocks, 0);
	ck_assert_uint_eq(P.srv.nlock_waiters, 0);
	inproc_stop(&P);
	test_fd_teardown();
}

/* Asks for a lock on R for cl (waiting unless nowait); returns the request id. */
static uint64_t lock_ask(struct inproc_client *cl, uint64_t off, uint64_t len, bool exclusive)
{
	struct lock_args a = { .offset = off, .length = len, .exclusive = exclusive, .wait = true };
	uint64_t id = cl->next_id++;

	lock_acquire(cl->conn, id, R, &a);
	return id;
}

/* Waits for the grant of request id and returns the lock id. */
static uint64_t lock_granted(struct inproc_client *cl, uint64_t id)
{
	cJSON *reply = inproc_reply(cl, id);
	uint64_t lock = test_json_u64(reply, "lock");

	test_assert_ok(reply);
	ck_assert_uint_gt(lock, 0);
	cJSON_Delete(reply);
	return lock;
}

/* A lock granted at once. */
static uint64_t lock_now(struct inproc_client *cl, uint64_t off, uint64_t len, bool exclusive)
{
	return lock_granted(cl, lock_ask(cl, off, len, exclusive));
}

/* Asserts that request id was refused with err (code the errno's name). */
static void lock_refused(struct inproc_client *cl, uint64_t id, const char *code, int err)
{
	cJSON *reply = inproc_reply(cl, id);

	test_assert_error(reply, code, err);
	cJSON_Delete(reply);
}

/* Releases lock of cl; asserts ok. */
static void unlock(struct inproc_client *cl, uint64_t lock)
{
	uint64_t id = cl->next_id++;

	lock_release(cl->conn, id, lock);
	test_reply_ok(inproc_reply(cl, id));
}

START_TEST(test_lock_granted_when_free)
{
	uint64_t id = lock_ask(&A, 0, 100, true);
	cJSON *reply = inproc_reply(&A, id);

	test_assert_ok(reply);
	ck_assert_uint_gt(test_json_u64(reply, "lock"), 0);
	ck_assert_uint_eq(test_json_u64(reply, "waited_ms"), 0);
	cJSON_Delete(reply);
	/* A range next to it, by another connection, is free too. */
	lock_now(&B, 100, 100, true);
	ck_assert_uint_eq(P.srv.nlocks, 2);
	ck_assert_uint_eq(P.srv.nlock_waiters, 0);
}
END_TEST

START_TEST(test_lock_ids_are_distinct)
{
	uint64_t a = lock_now(&A, 0, 10, false);
	uint64_t b = lock_now(&B, 0, 10, false);
	uint64_t c = lock_now(&A, 20, 10, false);

	ck_assert_uint_ne(a, b);
	ck_assert_uint_ne(a, c);
	ck_assert_uint_ne(b, c);
}
END_TEST

START_TEST(test_lock_shared_locks_coexist)
{
	lock_now(&A, 0, 100, false);
	lock_now(&B, 50, 100, false);
	lock_now(&C, 0, 0, false);   /* length 0: to the end */
	ck_assert_uint_eq(P.srv.nlocks, 3);
}
END_TEST

START_TEST(test_lock_conflict_waits_until_release)
{
	uint64_t held = lock_now(&A, 0, 100, true);
	uint64_t id = lock_ask(&B, 99, 10, false);

	/* Overlapping by one byte: B waits, and hears nothing yet. */
	inproc_expect_nothing(&B);
	ck_assert_uint_eq(P.srv.nlock_waiters, 1);
	unlock(&A, held);
	lock_granted(&B, id);
	ck_assert_uint_eq(P.srv.nlock_waiters, 0);
}
END_TEST

START_TEST(test_lock_whole_region_conflicts_with_any_range)
{
	uint64_t held = lock_now(&A, 1u << 30, 1, false);
	uint64_t id = lock_ask(&B, 0, 0, true);

	inproc_expect_nothing(&B);
	unlock(&A, held);
	lock_granted(&B, id);
}
END_TEST

START_TEST(test_lock_fifo_shared_waits_behind_exclusive_waiter)
{
	uint64_t a = lock_now(&A, 0, 100, false);
	uint64_t bid = lock_ask(&B, 0, 100, true);
	uint64_t cid, b;

	inproc_expect_nothing(&B);
	/* C's shared request is compatible with A's shared lock, but B waits ahead of it. */
	cid = lock_ask(&C, 0, 100, false);
	inproc_expect_nothing(&C);
	ck_assert_uint_eq(P.srv.nlock_waiters, 2);

	unlock(&A, a);
	b = lock_granted(&B, bid);
	inproc_expect_nothing(&C);
	unlock(&B, b);
	lock_granted(&C, cid);
}
END_TEST

START_TEST(test_lock_waiter_elsewhere_does_not_block)
{
	uint64_t a = lock_now(&A, 0, 100, false);
	uint64_t bid = lock_ask(&B, 0, 100, true);

	/* A waiter blocks only the ranges it conflicts with. */
	lock_now(&C, 200, 100, true);
	unlock(&A, a);
	lock_granted(&B, bid);
}
END_TEST

START_TEST(test_lock_nowait_conflict_is_eagain)
{
	struct lock_args a = { .offset = 0, .length = 10, .exclusive = false, .wait = false };
	uint64_t id = B.next_id++;

	lock_now(&A, 5, 10, true);
	lock_acquire(B.conn, id, R, &a);
	lock_refused(&B, id, "EAGAIN", EAGAIN);
	ck_assert_uint_eq(P.srv.nlock_waiters, 0);
}
END_TEST

START_TEST(test_lock_deadlock_two_cycle)
{
	uint64_t a = lock_now(&A, 0, 10, true);
	uint64_t b = lock_now(&B, 10, 10, true);
	uint64_t aid = lock_ask(&A, 10, 10, true);   /* A waits for B */
	uint64_t bid;

	inproc_expect_nothing(&A);
	bid = lock_ask(&B, 0, 10, true);              /* B would wait for A: a cycle */
	lock_refused(&B, bid, "EDEADLK", EDEADLK);
	ck_assert_uint_eq(P.srv.nlock_waiters, 1);
	/* The refusal left A's wait in place; it is granted once B lets go. */
	inproc_expect_nothing(&A);
	unlock(&B, b);
	lock_granted(&A, aid);
	unlock(&A, a);
}
END_TEST

START_TEST(test_lock_deadlock_three_cycle)
{
	uint64_t c = lock_now(&C, 20, 10, true);
	uint64_t aid, bid, cid;

	lock_now(&A, 0, 10, true);
	lock_now(&B, 10, 10, true);
	aid = lock_ask(&A, 10, 10, true);   /* A waits for B */
	bid = lock_ask(&B, 20, 10, true);   /* B waits for C */
	inproc_expect_nothing(&A);
	inproc_expect_nothing(&B);
	cid = lock_ask(&C, 0, 10, false);   /* C would wait for A: A -> B -> C -> A */
	lock_refused(&C, cid, "EDEADLK", EDEADLK);
	ck_assert_uint_eq(P.srv.nlock_waiters, 2);
	/* Breaking the chain at its end lets it unwind: C, then B, then A. */
	unlock(&C, c);
	lock_granted(&B, bid);
	inproc_expect_nothing(&A);
	inproc_disconnect(&B);
	lock_granted(&A, aid);
	inproc_connect_hello(&P, &B, "b");
}
END_TEST

START_TEST(test_lock_chain_without_cycle_waits)
{
	uint64_t c = lock_now(&C, 20, 10, true);
	uint64_t aid, bid;

	lock_now(&A, 0, 10, true);
	lock_now(&B, 10, 10, true);
	aid = lock_ask(&A, 10, 10, true);   /* A waits for B */
	bid = lock_ask(&B, 20, 10, true);   /* B waits for C: a chain, no cycle */
	inproc_expect_nothing(&B);
	/* C, at the end of the chain, still takes free ranges. */
	lock_now(&C, 100, 10, true);
	inproc_expect_nothing(&A);
	ck_assert_uint_eq(P.srv.nlock_waiters, 2);
	unlock(&C, c);
	lock_granted(&B, bid);
	inproc_disconnect(&B);
	lock_granted(&A, aid);
	inproc_connect_hello(&P, &B, "b");
}
END_TEST

START_TEST(test_lock_diamond_is_no_cycle)
{
	uint64_t c = lock_now(&C, 20, 10, true);
	uint64_t aid, bid;

	lock_now(&B, 10, 10, true);
	bid = lock_ask(&B, 20, 10, true);   /* B waits for C */
	inproc_expect_nothing(&B);
	/* A waits for B (held and waiting) and for C: two paths to C, still no cycle. */
	aid = lock_ask(&A, 10, 20, true);
	inproc_expect_nothing(&A);
	ck_assert_uint_eq(P.srv.nlock_waiters, 2);
	/* B's request came first: C's release goes to B. */
	unlock(&C, c);
	lock_granted(&B, bid);
	inproc_expect_nothing(&A);
	inproc_disconnect(&B);
	lock_granted(&A, aid);
	inproc_connect_hello(&P, &B, "b");
}
END_TEST

START_TEST(test_lock_fan_in_is_no_cycle)
{
	uint64_t c = lock_now(&C, 0, 100, true);
	uint64_t aid = lock_ask(&A, 0, 10, false);
	uint64_t bid, a;

	/* B waits for C and behind A's queued request: both lead to C, no cycle. */
	bid = lock_ask(&B, 0, 100, true);
	inproc_expect_nothing(&A);
	inproc_expect_nothing(&B);
	ck_assert_uint_eq(P.srv.nlock_waiters, 2);
	unlock(&C, c);
	a = lock_granted(&A, aid);
	inproc_expect_nothing(&B);
	unlock(&A, a);
	lock_granted(&B, bid);
}
END_TEST

START_TEST(test_lock_deadlock_through_queued_waiter)
{
	uint64_t a = lock_now(&A, 0, 10, false);
	uint64_t c = lock_now(&C, 10, 10, true);
	uint64_t bid, cid;

	bid = lock_ask(&B, 0, 20, true);    /* B waits for A and C */
	inproc_expect_nothing(&B);
	/* C's shared request fits A's shared lock, but it would queue behind B's exclusive
	 * request, and B waits for C: a cycle through a waiter, not a holder. */
	cid = lock_ask(&C, 0, 10, false);
	lock_refused(&C, cid, "EDEADLK", EDEADLK);
	unlock(&C, c);
	inproc_expect_nothing(&B);
	unlock(&A, a);
	lock_granted(&B, bid);
}
END_TEST

START_TEST(test_lock_close_releases_and_wakes_waiter)
{
	uint64_t bid;

	lock_now(&A, 0, 100, true);
	lock_now(&A, 200, 100, false);
	bid = lock_ask(&B, 50, 10, false);
	inproc_expect_nothing(&B);
	ck_assert_uint_eq(P.srv.nlocks, 2);
	ck_assert_uint_eq(P.srv.nlock_waiters, 1);
	inproc_disconnect(&A);
	lock_granted(&B, bid);
	ck_assert_uint_eq(P.srv.nlocks, 1);
	ck_assert_uint_eq(P.srv.nlock_waiters, 0);
	inproc_connect_hello(&P, &A, "a");
}
END_TEST

START_TEST(test_lock_close_drops_waits)
{
	uint64_t a = lock_now(&A, 0, 10, true);
	uint64_t cid;

	lock_ask(&B, 0, 10, true);
	cid = lock_ask(&C, 0, 10, false);
	ck_assert_uint_eq(P.srv.nlock_waiters, 2);
	inproc_disconnect(&B);
	ck_assert_uint_eq(P.srv.nlock_waiters, 1);
	/* C waited behind B's exclusive request; with it gone only A's lock is in the way. */
	inproc_expect_nothing(&C);
	unlock(&A, a);
	lock_granted(&C, cid);
	inproc_connect_hello(&P, &B, "b");
}
END_TEST

START_TEST(test_lock_release_unknown_is_ebadf)
{
	uint64_t a = lock_now(&A, 0, 10, true);
	uint64_t id;

	/* Not B's lock. */
	id = B.next_id++;
	lock_release(B.conn, id, a);
	lock_refused(&B, id, "EBADF", EBADF);
	/* No such lock at all. */
	id = A.next_id++;
	lock_release(A.conn, id, a + 1000);
	lock_refused(&A, id, "EBADF", EBADF);
	/* Released twice. */
	unlock(&A, a);
	id = A.next_id++;
	lock_release(A.conn, id, a);
	lock_refused(&A, id, "EBADF", EBADF);
}
END_TEST

START_TEST(test_lock_timeout)
{
	struct lock_args zero = { .offset = 0, .length = 10, .exclusive = true, .wait = true,
	                          .has_timeout = true, .timeout_ms = 0 };
	struct lock_args soon = zero;
	uint64_t id;
	int64_t t0;

	lock_now(&A, 0, 10, true);
	id = B.next_id++;
	lock_acquire(B.conn, id, R, &zero);
	lock_refused(&B, id, "ETIMEDOUT", ETIMEDOUT);

	soon.timeout_ms = 50;
	id = B.next_id++;
	t0 = test_now_ms();
	lock_acquire(B.conn, id, R, &soon);
	lock_refused(&B, id, "ETIMEDOUT", ETIMEDOUT);
	ck_assert_int_ge(test_now_ms() - t0, 45);
	ck_assert_uint_eq(P.srv.nlock_waiters, 0);
}
END_TEST

static Suite *lock_suite(void)
{
	Suite *s = suite_create("lock");
	TCase *tc = tcase_create("lock");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_lock_granted_when_free);
	tcase_add_test(tc, test_lock_ids_are_distinct);
	tcase_add_test(tc, test_lock_shared_locks_coexist);
	tcase_add_test(tc, test_lock_conflict_waits_until_release);
	tcase_add_test(tc, test_lock_whole_region_conflicts_with_any_range);
	tcase_add_test(tc, test_lock_fifo_shared_waits_behind_exclusive_waiter);
	tcase_add_test(tc, test_lock_waiter_elsewhere_does_not_block);
	tcase_add_test(tc, test_lock_nowait_conflict_is_eagain);
	tcase_add_test(tc, test_lock_deadlock_two_cycle);
	tcase_add_test(tc, test_lock_deadlock_three_cycle);
	tcase_add_test(tc, test_lock_chain_without_cycle_waits);
	tcase_add_test(tc, test_lock_diamond_is_no_cycle);
	tcase_add_test(tc, test_lock_fan_in_is_no_cycle);
	tcase_add_test(tc, test_lock_deadlock_through_queued_waiter);
	tcase_add_test(tc, test_lock_close_releases_and_wakes_waiter);
	tcase_add_test(tc, test_lock_close_drops_waits);
	tcase_add_test(tc, test_lock_release_unknown_is_ebadf);
	tcase_add_test(tc, test_lock_timeout);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(lock_suite()) == 0 ? 0 : 1;
}
