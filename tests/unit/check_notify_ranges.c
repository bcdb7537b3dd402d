/* SPDX-License-Identifier: MIT */
/*
 * Unit suite of the notifier's backpressure (daemon/notify.h): while a subscriber's output
 * queue is over event_backlog_bytes, the changes announced to it are merged into a sorted
 * list of disjoint ranges (at most max_pending_ranges), sent as one changed event when the
 * queue drains; a list that would pass its bound becomes an overflow event. The range list
 * is private to notify.c, so it is driven through notify.h's entry points (notify_subscribe,
 * notify_changed, notify_flushed, notify_conn) on a real server run in-process
 * (tests/unit/inproc.h), and read back as the events the subscriber finally receives.
 *
 * A subscriber's queue is made to back up by filling its socket with filler frames
 * (conn_send) before the changes are announced, with event_backlog_bytes 0; reading the
 * client end then drains it, and the fillers are skipped.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <check.h>

#include "conn.h"
#include "harness.h"
#include "inproc.h"
#include "msg.h"
#include "notify.h"
#include "region.h"

#define MAX_RANGES 4

static struct inproc P;
static struct inproc_client W, S, W2;   /* writer, subscriber, second writer */
static struct region *R;

static void setup(void)
{
	inproc_prime();
	test_fd_setup();
	inproc_config(&P);
	P.cfg.limits.event_backlog_bytes = 0;
	P.cfg.limits.max_pending_ranges = MAX_RANGES;
	inproc_start(&P);
	inproc_connect_hello(&P, &W, "writer");
	inproc_connect_hello(&P, &S, "subscriber");
	inproc_connect_hello(&P, &W2, "other");
	R = inproc_create_region(&W, "r", 1 << 20);
	ck_assert_int_eq(notify_subscribe(S.conn, R), 0);
}

static void teardown(void)
{
	inproc_disconnect(&W);
	inproc_disconnect(&S);
	inproc_disconnect(&W2);
	ck_assert_uint_eq(P.srv.nsubscriptions, 0);
	inproc_stop(&P);
	test_fd_teardown();
}

/* Queues filler frames on the subscriber until its socket is full and some wait in its queue. */
static void backlog(void)
{
	char pad[2048];
	cJSON *filler = msg_event("filler");
	int small = 4096, i;

	ck_assert_ptr_nonnull(filler);
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	ck_assert_ptr_nonnull(cJSON_AddStringToObject(filler, "pad", pad));
	setsockopt(S.conn->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(S.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	for (i = 0; i < 10000 && S.conn->out_bytes == 0; i++)
		ck_assert_int_eq(conn_send(S.conn, filler, NULL, 0), 0);
	cJSON_Delete(filler);
	ck_assert_uint_gt(S.conn->out_bytes, 0);
}

/* The subscriber's next event that is not a filler. */
static cJSON *next_event(void)
{
	for (;;) {
		cJSON *ev = inproc_event(&S);

		if (strcmp(test_json_str(ev, "event"), "filler") != 0)
			return ev;
		cJSON_Delete(ev);
	}
}

/* Asserts ev is a changed event of R from first to last seq with the n ranges {off, len}. */
static void assert_changed(const cJSON *ev, uint64_t first, uint64_t last,
                           const uint64_t (*ranges)[2], size_t n)
{
	const cJSON *array, *item;
	size_t i = 0;

	ck_assert_str_eq(test_json_str(ev, "event"), "changed");
	ck_assert_str_eq(test_json_str(ev, "region"), "r");
	ck_assert_uint_eq(test_json_u64(ev, "seq"), last);
	ck_assert_uint_eq(test_json_u64(ev, "first_seq"), first);
	array = cJSON_GetObjectItemCaseSensitive(ev, "ranges");
	ck_assert_msg(cJSON_IsArray(array), "no ranges in %s", test_describe(ev));
	ck_assert_msg((size_t)cJSON_GetArraySize(array) == n, "%zu ranges expected in %s", n,
	              test_describe(ev));
	cJSON_ArrayForEach(item, array) {
		ck_assert_int_eq(cJSON_GetArraySize(item), 2);
		ck_assert_msg(cJSON_GetArrayItem(item, 0)->valuedouble == (double)ranges[i][0] &&
		              cJSON_GetArrayItem(item, 1)->valuedouble == (double)ranges[i][1],
		              "range %zu of %s is not [%llu, %llu]", i, test_describe(ev),
		              (unsigned long long)ranges[i][0], (unsigned long long)ranges[i][1]);
		i++;
	}
}

/* Asserts ev is {"event": name, "region": "r", "seq": seq}. */
static void assert_seq_event(const cJSON *ev, const char *name, uint64_t seq)
{
	ck_assert_str_eq(test_json_str(ev, "event"), name);
	ck_assert_str_eq(test_json_str(ev, "region"), "r");
	ck_assert_uint_eq(test_json_u64(ev, "seq"), seq);
}

START_TEST(test_notify_change_goes_out_at_once_without_backlog)
{
	const uint64_t want[][2] = { { 10, 5 } };
	const cJSON *writer;
	cJSON *ev;

	notify_changed(R, W.conn, 1, 10, 5);
	ck_assert(!notify_conn_holding(S.conn));
	ev = next_event();
	assert_changed(ev, 1, 1, want, 1);
	writer = cJSON_GetObjectItemCaseSensitive(ev, "writer");
	ck_assert_ptr_nonnull(writer);
	ck_assert_str_eq(test_json_str(writer, "client"), "writer");
	ck_assert_uint_eq(test_json_u64(writer, "pid"), (uint64_t)getpid());
	cJSON_Delete(ev);
	/* The writer is not told of its own change. */
	inproc_expect_nothing(&W);
}
END_TEST

START_TEST(test_notify_held_changes_merge_overlapping_and_adjacent)
{
	const uint64_t want[][2] = { { 0, 20 } };
	cJSON *ev;

	backlog();
	notify_changed(R, W.conn, 1, 0, 10);
	notify_changed(R, W.conn, 2, 5, 10);    /* overlaps: [0, 15) */
	notify_changed(R, W.conn, 3, 15, 5);    /* touches: [0, 20) */
	notify_changed(R, W.conn, 4, 2, 3);     /* inside */
	ck_assert(notify_conn_holding(S.conn));
	ev = next_event();
	assert_changed(ev, 1, 4, want, 1);
	ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(ev, "writer"));
	cJSON_Delete(ev);
	ck_assert(!notify_conn_holding(S.conn));
	inproc_expect_nothing(&S);
}
END_TEST

START_TEST(test_notify_held_ranges_stay_sorted_and_disjoint)
{
	const uint64_t want[][2] = { { 100, 10 }, { 200, 10 }, { 300, 10 } };
	cJSON *ev;

	backlog();
	notify_changed(R, W.conn, 7, 300, 10);
	notify_changed(R, W.conn, 8, 100, 10);
	notify_changed(R, W.conn, 9, 200, 10);
	ev = next_event();
	assert_changed(ev, 7, 9, want, 3);
	cJSON_Delete(ev);
}
END_TEST

START_TEST(test_notify_held_range_bridges_several)
{
	const uint64_t want[][2] = { { 0, 10 }, { 50, 160 }, { 400, 10 } };
	cJSON *ev;

	backlog();
	notify_changed(R, W.conn, 1, 0, 10);
	notify_changed(R, W.conn, 2, 100, 10);
	notify_changed(R, W.conn, 3, 200, 10);
	notify_changed(R, W.conn, 4, 400, 10);
	/* One change covering the gap between 100 and 200 and more: the three merge into one. */
	notify_changed(R, W.conn, 5, 50, 150);
	ev = next_event();
	assert_changed(ev, 1, 5, want, 3);
	cJSON_Delete(ev);
}
END_TEST

START_TEST(test_notify_held_ranges_overflow_past_bound)
{
	const uint64_t want[][2] = { { 0, 1 } };
	cJSON *ev;
	uint64_t i;

	backlog();
	/* MAX_RANGES disjoint ranges fit; one more overflows at once (behind the fillers). */
	for (i = 0; i < MAX_RANGES; i++)
		notify_changed(R, W.conn, i + 1, i * 100, 10);
	notify_changed(R, W.conn, MAX_RANGES + 1, 1000, 10);
	/* While overflowed, further changes are dropped, and counted for one more overflow. */
	notify_changed(R, W.conn, MAX_RANGES + 2, 0, 10);
	notify_changed(R, W.conn, MAX_RANGES + 3, 2000, 10);

	ev = next_event();
	assert_seq_event(ev, "overflow", MAX_RANGES + 1);
	cJSON_Delete(ev);
	ev = next_event();
	assert_seq_event(ev, "overflow", MAX_RANGES + 3);
	cJSON_Delete(ev);
	inproc_expect_nothing(&S);
	ck_assert(!notify_conn_holding(S.conn));

	/* Drained: changes go out one by one again. */
	notify_changed(R, W.conn, MAX_RANGES + 4, 0, 1);
	ev = next_event();
	assert_changed(ev, MAX_RANGES + 4, MAX_RANGES + 4, want, 1);
	cJSON_Delete(ev);
}
END_TEST

START_TEST(test_notify_merging_keeps_list_within_bound)
{
	const uint64_t want[][2] = { { 0, 10 }, { 100, 10 }, { 200, 10 }, { 300, 20 } };
	cJSON *ev;
	uint64_t i;

	backlog();
	for (i = 0; i < MAX_RANGES; i++)
		notify_changed(R, W.conn, i + 1, i * 100, 10);
	/* A full list still takes changes that merge into what it holds. */
	notify_changed(R, W.conn, 10, 305, 15);
	notify_changed(R, W.conn, 11, 0, 5);
	ev = next_event();
	assert_changed(ev, 1, 11, want, MAX_RANGES);
	cJSON_Delete(ev);
}
END_TEST

START_TEST(test_notify_held_changes_of_two_writers_name_none)
{
	const uint64_t want[][2] = { { 0, 20 } };
	cJSON *ev;

	backlog();
	notify_changed(R, W.conn, 1, 0, 10);
	notify_changed(R, W2.conn, 2, 10, 10);
	ev = next_event();
	assert_changed(ev, 1, 2, want, 1);
	ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(ev, "writer"));
	cJSON_Delete(ev);
}
END_TEST

START_TEST(test_notify_flushed_is_held_after_changes)
{
	const uint64_t want[][2] = { { 0, 10 } };
	cJSON *ev;

	backlog();
	notify_changed(R, W.conn, 1, 0, 10);
	notify_flushed(R, 1);
	notify_changed(R, W.conn, 2, 0, 10);
	notify_flushed(R, 2);
	/* One changed event covering both, then the latest flushed seq only. */
	ev = next_event();
	assert_changed(ev, 1, 2, want, 1);
	cJSON_Delete(ev);
	ev = next_event();
	assert_seq_event(ev, "flushed", 2);
	cJSON_Delete(ev);
	inproc_expect_nothing(&S);
}
END_TEST

START_TEST(test_notify_other_event_sends_held_changes_first)
{
	const uint64_t want[][2] = { { 40, 2 } };
	cJSON *other = notify_event_new(R, "custom");
	cJSON *ev;

	ck_assert_ptr_nonnull(other);
	backlog();
	notify_changed(R, W.conn, 5, 40, 2);
	/* Another event of the region must not overtake what the subscription holds. */
	notify_conn(S.conn, R, other);
	cJSON_Delete(other);
	ck_assert(!notify_conn_holding(S.conn));
	ev = next_event();
	assert_changed(ev, 5, 5, want, 1);
	cJSON_Delete(ev);
	ev = next_event();
	ck_assert_str_eq(test_json_str(ev, "event"), "custom");
	cJSON_Delete(ev);
}
END_TEST

START_TEST(test_notify_unsubscribe_drops_held_changes)
{
	backlog();
	notify_changed(R, W.conn, 1, 0, 10);
	ck_assert(notify_conn_holding(S.conn));
	ck_assert_int_eq(notify_unsubscribe(S.conn, R), 0);
	ck_assert(!notify_conn_holding(S.conn));
	ck_assert_int_eq(notify_unsubscribe(S.conn, R), -ENOENT);
	/* Only fillers arrive. */
	while (S.conn->out_bytes > 0 || S.nkept > 0) {
		cJSON *ev = inproc_recv(&S, TEST_WAIT_MS);

		ck_assert_ptr_nonnull(ev);
		ck_assert_str_eq(test_json_str(ev, "event"), "filler");
		cJSON_Delete(ev);
	}
	for (;;) {
		cJSON *ev = inproc_recv(&S, 50);

		if (!ev)
			break;
		ck_assert_str_eq(test_json_str(ev, "event"), "filler");
		cJSON_Delete(ev);
	}
	ck_assert_uint_eq(P.srv.nsubscriptions, 0);
}
END_TEST

START_TEST(test_notify_subscribe_twice_is_ealready)
{
	ck_assert_int_eq(notify_subscribe(S.conn, R), -EALREADY);
	ck_assert_uint_eq(P.srv.nsubscriptions, 1);
}
END_TEST

static Suite *notify_ranges_suite(void)
{
	Suite *s = suite_create("notify_ranges");
	TCase *tc = tcase_create("notify_ranges");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_notify_change_goes_out_at_once_without_backlog);
	tcase_add_test(tc, test_notify_held_changes_merge_overlapping_and_adjacent);
	tcase_add_test(tc, test_notify_held_ranges_stay_sorted_and_disjoint);
	tcase_add_test(tc, test_notify_held_range_bridges_several);
	tcase_add_test(tc, test_notify_held_ranges_overflow_past_bound);
	tcase_add_test(tc, test_notify_merging_keeps_list_within_bound);
	tcase_add_test(tc, test_notify_held_changes_of_two_writers_name_none);
	tcase_add_test(tc, test_notify_flushed_is_held_after_changes);
	tcase_add_test(tc, test_notify_other_event_sends_held_changes_first);
	tcase_add_test(tc, test_notify_unsubscribe_drops_held_changes);
	tcase_add_test(tc, test_notify_subscribe_twice_is_ealready);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(notify_ranges_suite()) == 0 ? 0 : 1;
}
