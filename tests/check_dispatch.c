/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of the background dispatch thread (mmapd_client_dispatch_thread_start/stop):
 * events written by another process reach the handler on that thread, not the caller's;
 * start/stop cycles leave no thread or descriptor behind; a handler may call libmmapd
 * (mmapd_stat) but not stop its own thread (-EDEADLK); stop waits for a running handler;
 * mixing the thread with mmapd_client_dispatch() is refused (-EBUSY) both ways; mmapd_disconnect(),
 * from the main thread or from a handler, ends the thread; the thread reconnects after a
 * daemon restart and delivers RECONNECTED; with reconnection off it ends when the daemon dies
 * and stop reports why; stop abandons a reconnection that would never end.
 *
 * Each test starts its own mmapd. Events are made by a session process (changed) or by the
 * test's own client (mmapd_flush_async(), whose completion is an event to itself).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fdcount.h"
#include "harness.h"
#include "mmapd.h"

#define REGION "r"

/* What the handler saw and what it is to do, shared with the test's main thread. */
struct seen {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t main;
	int nchanged, nflushed, nreconnected;
	bool off_main;            /* every handler call ran on another thread than main */
	int64_t writer_pid;       /* of the last changed event */

	/* Asked of the handler on FLUSH_DONE. */
	bool call_library;        /* mmapd_stat, mmapd_client_dispatch_thread_stop, mmapd_client_dispatch */
	bool linger;              /* sleep, so that stop finds it running */
	bool disconnect;          /* mmapd_disconnect() the client */
	int stat_r, stop_r, dispatch_r;
	uint64_t stat_size;
	bool entered, returned;
};

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->main = pthread_self();
	s->off_main = true;
}

static void seen_done(struct seen *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}

static void on_event(struct mmapd_client *client, const struct mmapd_event *ev, void *userdata)
{
	struct seen *s = userdata;
	struct mmapd_region_info *info = NULL;

	pthread_mutex_lock(&s->mu);
	if (pthread_equal(pthread_self(), s->main))
		s->off_main = false;
	s->entered = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);

	if (ev->type == MMAPD_EVENT_FLUSH_DONE && s->call_library) {
		s->stat_r = mmapd_stat(client, REGION, &info);
		s->stat_size = info ? info->size : 0;
		mmapd_region_info_free(info);
		s->stop_r = mmapd_client_dispatch_thread_stop(client);
		s->dispatch_r = mmapd_client_dispatch(client, 0);
	}
	if (ev->type == MMAPD_EVENT_FLUSH_DONE && s->linger)
		usleep(300 * 1000);
	if (ev->type == MMAPD_EVENT_FLUSH_DONE && s->disconnect)
		mmapd_disconnect(client);

	pthread_mutex_lock(&s->mu);
	if (ev->type == MMAPD_EVENT_CHANGED) {
		s->nchanged++;
		s->writer_pid = ev->writer_pid;
	} else if (ev->type == MMAPD_EVENT_FLUSH_DONE) {
		s->nflushed++;
	} else if (ev->type == MMAPD_EVENT_RECONNECTED) {
		s->nreconnected++;
	}
	s->returned = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Waits (TEST_WAIT_MS) until *counter reaches want; asserts it did. */
static void seen_wait(struct seen *s, const int *counter, int want, const char *what)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += TEST_WAIT_MS / 1000;
	pthread_mutex_lock(&s->mu);
	while (*counter < want &&
	       pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT)
		;
	ck_assert_msg(*counter >= want, "%s: %d of %d seen", what, *counter, want);
	pthread_mutex_unlock(&s->mu);
}

/* Threads of this process (entries of /proc/self/task). */
static int thread_count(void)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	ck_assert(dir != NULL);
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/*
 * Waits (TEST_WAIT_MS) until the process has want threads; asserts it does. Needed even after
 * a join: the kernel wakes the joiner before it takes the ended thread out of /proc.
 */
static void wait_threads(int want)
{
	int64_t until = test_now_ms() + TEST_WAIT_MS;

	while (thread_count() != want && test_now_ms() < until)
		usleep(1000);
	ck_assert_int_eq(thread_count(), want);
}

/*
 * Connects to d and opens (creating) REGION read-write, 4096 bytes; the client's events go to
 * on_event with s.
 */
static void connect_open(const struct test_daemon *d, struct seen *s,
                         struct mmapd_client **ret_client, struct mmapd_region **ret_region)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE, .mode = MMAPD_MODE_RW, .size = 4096);

	*ret_client = test_client_connect(d, "check-dispatch");
	ck_assert_int_eq(mmapd_region_open(*ret_client, REGION, &opts, ret_region), 0);
	mmapd_client_set_event_handler(*ret_client, on_event, s);
}

/* Starts a daemon on d, initialises s and connect_open()s. */
static void start_open(struct test_daemon *d, struct seen *s, struct mmapd_client **ret_client,
                       struct mmapd_region **ret_region)
{
	seen_init(s);
	test_daemon_start(d, NULL);
	connect_open(d, s, ret_client, ret_region);
}

/* Closes region (asserting it closes cleanly) and client, stops d and frees s. */
static void close_stop(struct test_daemon *d, struct seen *s, struct mmapd_client *client,
                       struct mmapd_region *region)
{
	mmapd_region_close(region);
	mmapd_disconnect(client);
	test_daemon_stop(d);
	seen_done(s);
}

/* Asks for an asynchronous flush of REGION: its FLUSH_DONE is an event to this client. */
static void flush_async(struct mmapd_client *client)
{
	ck_assert_int_eq(mmapd_flush_async(client, REGION, NULL), 0);
}

START_TEST(test_dispatch_thread_delivers_another_process_changes_on_its_own_thread)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct test_sess w;
	struct seen s;
	int before = thread_count();

	start_open(&d, &s, &client, &region);
	ck_assert_int_eq(mmapd_subscribe(client, REGION, NULL), 0);
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), 0);
	ck_assert_int_eq(thread_count(), before + 1);

	test_sess_start(&w, &d, "writer");
	test_sess_ok(&w, "open " REGION " rw");
	test_sess_ok(&w, "changed " REGION " 0 8");
	test_sess_ok(&w, "changed " REGION " 8 8");
	/* The test's thread makes no libmmapd call while the changes come. */
	seen_wait(&s, &s.nchanged, 2, "changed events through the dispatch thread");
	ck_assert_msg(s.off_main, "a handler ran on the test's main thread");
	ck_assert_int_eq(s.writer_pid, w.pid);

	ck_assert_int_eq(mmapd_client_dispatch_thread_stop(client), 0);
	wait_threads(before);
	ck_assert_int_eq(test_sess_end(&w), 0);
	close_stop(&d, &s, client, region);
}
END_TEST

START_TEST(test_dispatch_thread_and_manual_dispatch_refuse_each_other)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct seen s;

	start_open(&d, &s, &client, &region);
	ck_assert_int_eq(mmapd_client_dispatch_thread_stop(client), -ESRCH);
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), 0);
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), -EBUSY);
	ck_assert_int_eq(mmapd_client_dispatch(client, 0), -EBUSY);
	ck_assert_int_eq(mmapd_client_dispatch_thread_stop(client), 0);
	ck_assert_int_eq(mmapd_client_dispatch_thread_stop(client), -ESRCH);
	/* Stopped, the client is dispatched by hand again. */
	flush_async(client);
	while (s.nflushed == 0)
		ck_assert_int_ge(mmapd_client_dispatch(client, TEST_WAIT_MS), 1);
	ck_assert_msg(!s.off_main, "mmapd_client_dispatch() ran the handler on another thread");
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(NULL), -EINVAL);
	ck_assert_int_eq(mmapd_client_dispatch_thread_stop(NULL), -EINVAL);

	close_stop(&d, &s, client, region);
}
END_TEST

START_TEST(test_dispatch_thread_start_stop_cycles_leave_no_thread_or_descriptor)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct seen s;
	int threads, fds;

	start_open(&d, &s, &client, &region);
	threads = thread_count();
	fds = fd_count();
	for (int i = 1; i <= 20; i++) {
		ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), 0);
		flush_async(client);
		seen_wait(&s, &s.nflushed, i, "flush completions");
		ck_assert_int_eq(mmapd_client_dispatch_thread_stop(client), 0);
		wait_threads(threads);
		ck_assert_int_eq(fd_count(), fds);
	}
	ck_assert(s.off_main);
	close_stop(&d, &s, client, region);
}
END_TEST

START_TEST(test_dispatch_thread_handler_may_call_the_library_but_not_stop_its_thread)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct seen s;

	start_open(&d, &s, &client, &region);
	s.call_library = true;
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), 0);
	flush_async(client);
	seen_wait(&s, &s.nflushed, 1, "the flush completion");
	ck_assert_int_eq(s.stat_r, 0);
	ck_assert_int_eq(s.stat_size, 4096);
	ck_assert_int_eq(s.stop_r, -EDEADLK);
	ck_assert_int_eq(s.dispatch_r, -EBUSY);
	/* The thread still runs after the refusals. */
	s.call_library = false;
	flush_async(client);
	seen_wait(&s, &s.nflushed, 2, "the second flush completion");
	ck_assert_int_eq(mmapd_client_dispatch_thread_stop(client), 0);

	close_stop(&d, &s, client, region);
}
END_TEST

START_TEST(test_dispatch_thread_stop_waits_for_the_running_handler)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct seen s;
	bool returned;

	start_open(&d, &s, &client, &region);
	s.linger = true;
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), 0);
	flush_async(client);
	pthread_mutex_lock(&s.mu);
	while (!s.entered)
		pthread_cond_wait(&s.cv, &s.mu);
	pthread_mutex_unlock(&s.mu);
	ck_assert_int_eq(mmapd_client_dispatch_thread_stop(client), 0);
	pthread_mutex_lock(&s.mu);
	returned = s.returned;
	pthread_mutex_unlock(&s.mu);
	ck_assert_msg(returned, "stop returned while the handler was still running");

	close_stop(&d, &s, client, region);
}
END_TEST

START_TEST(test_dispatch_thread_ends_with_disconnect_from_main_or_from_its_handler)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct seen s;
	int threads = thread_count();

	seen_init(&s);
	test_daemon_start(&d, NULL);

	/* From the main thread, while the thread waits. */
	connect_open(&d, &s, &client, &region);
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), 0);
	flush_async(client);
	seen_wait(&s, &s.nflushed, 1, "the flush completion");
	mmapd_disconnect(client);
	wait_threads(threads);
	mmapd_region_close(region);

	/* From a handler on the thread: it ends once the handler returns. */
	s.disconnect = true;
	connect_open(&d, &s, &client, &region);
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), 0);
	flush_async(client);
	seen_wait(&s, &s.nflushed, 2, "the flush completion");
	wait_threads(threads);
	mmapd_region_close(region);
	ck_assert_int_eq(test_daemon_wait_status(&d, "clients", 1), 1);

	test_daemon_stop(&d);
	seen_done(&s);
}
END_TEST

START_TEST(test_dispatch_thread_reconnects_after_a_daemon_restart)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct test_sess w;
	struct seen s;

	start_open(&d, &s, &client, &region);
	ck_assert_int_eq(mmapd_subscribe(client, REGION, NULL), 0);
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), 0);

	test_daemon_kill(&d);
	test_daemon_restart(&d);
	seen_wait(&s, &s.nreconnected, 1, "RECONNECTED through the dispatch thread");
	/* The subscription was renewed by the thread's reconnection. */
	test_sess_start(&w, &d, "writer");
	test_sess_ok(&w, "open " REGION " rw");
	test_sess_ok(&w, "changed " REGION " 0 8");
	seen_wait(&s, &s.nchanged, 1, "a change after the restart");
	ck_assert(s.off_main);
	ck_assert_int_eq(test_sess_end(&w), 0);

	ck_assert_int_eq(mmapd_client_dispatch_thread_stop(client), 0);
	close_stop(&d, &s, client, region);
}
END_TEST

START_TEST(test_dispatch_thread_without_reconnection_ends_when_the_daemon_dies)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct seen s;
	int threads = thread_count();

	start_open(&d, &s, &client, &region);
	mmapd_client_set_reconnect(client, 0);
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), 0);
	test_daemon_kill(&d);
	/* The thread ends by itself; stop joins it and says why. */
	wait_threads(threads);
	ck_assert_int_eq(mmapd_client_dispatch_thread_stop(client), -ECONNRESET);
	ck_assert_int_eq(mmapd_client_dispatch(client, 0), -ECONNRESET);

	close_stop(&d, &s, client, region);
}
END_TEST

START_TEST(test_dispatch_thread_stop_abandons_a_reconnection_without_time_limit)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct seen s;

	start_open(&d, &s, &client, &region);
	mmapd_client_set_reconnect(client, -1);
	ck_assert_int_eq(mmapd_client_dispatch_thread_start(client), 0);
	test_daemon_kill(&d);
	/* The thread reconnects for ever in the background; stop must not wait for that. */
	usleep(50 * 1000);
	ck_assert_int_eq(mmapd_client_dispatch_thread_stop(client), 0);

	close_stop(&d, &s, client, region);
}
END_TEST

static Suite *dispatch_suite(void)
{
	Suite *s = suite_create("dispatch");
	TCase *tc = tcase_create("dispatch");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_dispatch_thread_delivers_another_process_changes_on_its_own_thread);
	tcase_add_test(tc, test_dispatch_thread_and_manual_dispatch_refuse_each_other);
	tcase_add_test(tc, test_dispatch_thread_start_stop_cycles_leave_no_thread_or_descriptor);
	tcase_add_test(tc, test_dispatch_thread_handler_may_call_the_library_but_not_stop_its_thread);
	tcase_add_test(tc, test_dispatch_thread_stop_waits_for_the_running_handler);
	tcase_add_test(tc, test_dispatch_thread_ends_with_disconnect_from_main_or_from_its_handler);
	tcase_add_test(tc, test_dispatch_thread_reconnects_after_a_daemon_restart);
	tcase_add_test(tc, test_dispatch_thread_without_reconnection_ends_when_the_daemon_dies);
	tcase_add_test(tc, test_dispatch_thread_stop_abandons_a_reconnection_without_time_limit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(dispatch_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
