/* SPDX-License-Identifier: MIT */
/*
 * Unit suite of the seams that keep the daemon's layers one-way (issue 10, STYLE.md "Seams"):
 * the hooks server_init wires into struct server (state.h), the teardown listeners of a
 * connection (conn.h) and of a region (region.h), the dispatcher reached only through
 * handle_frame, the reply module below the domain (reply.h) and the one way a human reason
 * is carried (why.h). A real server runs in-process (tests/unit/inproc.h); the tests put
 * recording hooks around the ones the server wired and check that the lower layer calls
 * them, in order, without naming who is behind them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <check.h>

#include "conn.h"
#include "harness.h"
#include "inproc.h"
#include "region.h"
#include "reply.h"
#include "state.h"
#include "why.h"

#define SEAMS_LISTENERS_MAX 16

static struct inproc P;
static struct inproc_client A;
static bool A_connected;

static void setup(void)
{
	inproc_prime();
	test_fd_setup();
	inproc_setup(&P);
	inproc_connect_hello(&P, &A, "a");
	A_connected = true;
}

static void teardown(void)
{
	if (A_connected)
		inproc_disconnect(&A);
	inproc_stop(&P);
	test_fd_teardown();
}

/* The order in which the recording hooks ran: 'f' first, 'l' last listener, 'd' dispatch. */
static char calls[32];
static size_t ncalls;

static void record(char what)
{
	if (ncalls < sizeof(calls) - 1)
		calls[ncalls++] = what;
	calls[ncalls] = '\0';
}

static void record_first(struct conn *c)
{
	(void)c;
	record('f');
}

static void record_last(struct conn *c)
{
	(void)c;
	record('l');
}

static bool busy_always(const struct region *r)
{
	(void)r;
	return true;
}

static void (*wired_handle_frame)(struct conn *c, const char *payload, size_t len);

static void record_frame(struct conn *c, const char *payload, size_t len)
{
	record('d');
	wired_handle_frame(c, payload, len);
}

START_TEST(test_seams_server_wires_every_hook)
{
	ck_assert_ptr_nonnull(P.srv.handle_frame);
	ck_assert_ptr_nonnull(P.srv.rerun);
	ck_assert_ptr_nonnull(P.srv.request_trim);
	ck_assert_ptr_nonnull(P.srv.adopt_conn);
	ck_assert_ptr_nonnull(P.srv.check_finished);
	ck_assert_ptr_nonnull(P.srv.conn_listeners);
	ck_assert_ptr_nonnull(P.srv.conn_listeners[0]);
	ck_assert_ptr_nonnull(P.srv.region_listeners);
	ck_assert_ptr_nonnull(P.srv.region_listeners[0]);
}
END_TEST

START_TEST(test_seams_conn_listeners_run_in_list_order_on_close)
{
	static const struct conn_listener first = { .release = record_first };
	static const struct conn_listener last = { .release = record_last };
	const struct conn_listener *const *wired = P.srv.conn_listeners;
	const struct conn_listener *list[SEAMS_LISTENERS_MAX];
	size_t n = 0;

	list[n++] = &first;
	for (size_t i = 0; wired[i]; i++) {
		ck_assert_uint_lt(n, SEAMS_LISTENERS_MAX - 2);
		list[n++] = wired[i];
	}
	list[n++] = &last;
	list[n] = NULL;
	ncalls = 0;
	P.srv.conn_listeners = list;
	inproc_disconnect(&A);
	A_connected = false;
	P.srv.conn_listeners = wired;
	ck_assert_str_eq(calls, "fl");
}
END_TEST

START_TEST(test_seams_region_listener_busy_keeps_region_busy)
{
	static const struct region_listener busy = { .busy = busy_always };
	const struct region_listener *const *wired = P.srv.region_listeners;
	const struct region_listener *list[SEAMS_LISTENERS_MAX];
	struct region *r = inproc_create_region(&A, "r", 4096);
	size_t n = 0;

	ck_assert(!region_busy(r));
	for (size_t i = 0; wired[i]; i++) {
		ck_assert_uint_lt(n, SEAMS_LISTENERS_MAX - 2);
		list[n++] = wired[i];
	}
	list[n++] = &busy;
	list[n] = NULL;
	P.srv.region_listeners = list;
	ck_assert(region_busy(r));
	P.srv.region_listeners = wired;
	ck_assert(!region_busy(r));
}
END_TEST

START_TEST(test_seams_frames_reach_the_dispatcher_through_the_hook)
{
	ncalls = 0;
	wired_handle_frame = P.srv.handle_frame;
	P.srv.handle_frame = record_frame;
	test_reply_ok(inproc_callf(&A, "{'op': 'ping'}"));
	P.srv.handle_frame = wired_handle_frame;
	ck_assert_str_eq(calls, "d");
}
END_TEST

START_TEST(test_seams_reply_error_sends_and_counts)
{
	uint64_t before = P.srv.stats.errors[EBUSY];

	reply_error(A.conn, 7, EBUSY, "region '%s' is %d busy", "x", 1);
	test_reply_error(inproc_reply(&A, 7), "EBUSY", EBUSY, "region 'x' is 1 busy");
	ck_assert_uint_eq(P.srv.stats.errors[EBUSY], before + 1);
	reply_send(A.conn, 8, NULL);
	test_reply_error(inproc_reply(&A, 8), "ENOMEM", ENOMEM, "out of memory");
}
END_TEST

START_TEST(test_seams_why_set_cuts_to_fit_and_takes_null)
{
	char longer[2 * WHY_MAX];
	struct why why;

	why_set(NULL, "nothing is set: %d", 1);
	why_set(&why, "uid %lu may not connect", 1000ul);
	ck_assert_str_eq(why.text, "uid 1000 may not connect");
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	why_set(&why, "%s", longer);
	ck_assert_uint_eq(strlen(why.text), WHY_MAX - 1);
}
END_TEST

static Suite *seams_suite(void)
{
	Suite *s = suite_create("seams");
	TCase *tc = tcase_create("seams");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_seams_server_wires_every_hook);
	tcase_add_test(tc, test_seams_conn_listeners_run_in_list_order_on_close);
	tcase_add_test(tc, test_seams_region_listener_busy_keeps_region_busy);
	tcase_add_test(tc, test_seams_frames_reach_the_dispatcher_through_the_hook);
	tcase_add_test(tc, test_seams_reply_error_sends_and_counts);
	tcase_add_test(tc, test_seams_why_set_cuts_to_fit_and_takes_null);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(seams_suite()) == 0 ? 0 : 1;
}
