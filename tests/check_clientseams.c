/* SPDX-License-Identifier: MIT */
/*
 * Tests of the seams that keep libmmapd's layers one-way (issue 10, STYLE.md "Seams"): the
 * call multiplexer (client/call.c) reaches the reactions to events (react.c) and the
 * reconnection (reconnect.c), both above it, only through the hooks that mmapd_connect()
 * (connect.c) sets in struct client_hooks. A real mmapd runs; the tests put recording hooks
 * around the ones connect.c wired and check that the reader calls them, and that what the
 * layer behind them does still happens (the window follows a resize; the call goes through).
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "top.h"

#define REGION "seams"
#define SEAMS_EVENTS_MAX 8

static const struct client_hooks *wired;
static char events[SEAMS_EVENTS_MAX][32];
static size_t nevents;
static unsigned reconnects;

static void record_event(struct mmapd_client *client, const cJSON *msg, const char *name)
{
	if (nevents < SEAMS_EVENTS_MAX)
		snprintf(events[nevents++], sizeof(events[0]), "%s", name);
	wired->event(client, msg, name);
}

static int record_reconnect(struct mmapd_client *client)
{
	reconnects++;
	return wired->reconnect(client);
}

static const struct client_hooks recording = {
	.event = record_event,
	.reconnect = record_reconnect,
};

/* Puts the recording hooks around the ones mmapd_connect() wired into client. */
static void hooks_record(struct mmapd_client *client)
{
	pthread_mutex_lock(&client->lock);
	wired = client->hooks;
	client->hooks = &recording;
	pthread_mutex_unlock(&client->lock);
	nevents = 0;
	reconnects = 0;
}

static bool seen(const char *name)
{
	for (size_t i = 0; i < nevents; i++)
		if (strcmp(events[i], name) == 0)
			return true;
	return false;
}

START_TEST(test_connect_wires_the_reactions_and_the_reconnection_into_the_call_layer)
{
	struct test_daemon d;
	struct mmapd_client *client;

	test_daemon_start(&d, NULL);
	client = test_client_connect(&d, "seams");
	ck_assert_ptr_nonnull(client->hooks);
	ck_assert(client->hooks->event == event_handle);
	ck_assert(client->hooks->reconnect == client_reconnect);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_the_reader_gives_events_to_the_hook_and_the_window_follows_the_resize)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE, .mode = MMAPD_MODE_RW, .size = 4096);
	struct test_daemon d;
	struct mmapd_client *a, *b;
	struct mmapd_region *region;
	int64_t until;

	test_daemon_start(&d, NULL);
	a = test_client_connect(&d, "seams-a");
	b = test_client_connect(&d, "seams-b");
	ck_assert_int_eq(mmapd_region_open(a, REGION, &opts, &region), 0);
	hooks_record(a);

	ck_assert_int_eq(mmapd_resize(b, REGION, 8192, 0), 0);
	until = test_now_ms() + TEST_WAIT_MS;
	while (mmapd_region_size(region) != 8192 && test_now_ms() < until)
		ck_assert_int_ge(mmapd_client_dispatch(a, 100), 0);
	ck_assert(seen("resized"));
	ck_assert_uint_eq(mmapd_region_size(region), 8192);
	ck_assert_uint_eq(reconnects, 0);

	mmapd_region_close(region);
	mmapd_disconnect(a);
	mmapd_disconnect(b);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_a_call_on_a_broken_connection_reconnects_through_the_hook)
{
	struct test_daemon d;
	struct mmapd_client *client;

	test_daemon_start(&d, NULL);
	client = test_client_connect(&d, "seams");
	hooks_record(client);

	test_daemon_kill(&d);
	test_daemon_restart(&d);
	ck_assert_int_eq(mmapd_ping(client), 0);
	ck_assert_uint_eq(reconnects, 1);

	mmapd_disconnect(client);
	test_daemon_stop(&d);
}
END_TEST

static Suite *clientseams_suite(void)
{
	Suite *s = suite_create("clientseams");
	TCase *tc = tcase_create("clientseams");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_connect_wires_the_reactions_and_the_reconnection_into_the_call_layer);
	tcase_add_test(tc, test_the_reader_gives_events_to_the_hook_and_the_window_follows_the_resize);
	tcase_add_test(tc, test_a_call_on_a_broken_connection_reconnects_through_the_hook);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(clientseams_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
