/* SPDX-License-Identifier: MIT */
/*
 * The start calls and asynchronous ranges of libmmapd (mmapd.h, "Start calls"), against a real
 * daemon and real processes: every start call ends in exactly one event with its token, through
 * mmapd_client_dispatch() and through the dispatch thread; a start call returns at once even
 * when the daemon is stopped (SIGSTOP) and its socket buffer fills; a lock start that must wait
 * for another process's lock ends when that one is released; the daemon's refusals (ENOENT,
 * EACCES for uid 65534) arrive as events; a connection that dies fails the pending starts with
 * an event each; mmapd_region_msync_async() starts the range's write-back and the daemon's
 * range flush makes the range durable without writing the rest (cachestat(2) tells which pages
 * are still dirty).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"

#define REGION "async"
#define MAX_SEEN 32768

/* The events seen by the handler, under mu (the dispatch thread fills it too). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct seen {
	enum mmapd_event_type type;
	uint64_t seq, lock, size, offset, length;
	int error;
	struct mmapd_region *opened;
} seen[MAX_SEEN];
static size_t nseen;

static bool is_done(enum mmapd_event_type t)
{
	return t == MMAPD_EVENT_OPEN_DONE || t == MMAPD_EVENT_LOCK_DONE ||
	       t == MMAPD_EVENT_RESIZE_DONE || t == MMAPD_EVENT_FLUSH_DONE ||
	       t == MMAPD_EVENT_DELETE_DONE;
}

static void on_event(struct mmapd_client *client, const struct mmapd_event *ev, void *data)
{
	(void)client;
	(void)data;
	if (!is_done(ev->type))
		return;
	pthread_mutex_lock(&mu);
	ck_assert_uint_lt(nseen, MAX_SEEN);
	seen[nseen++] = (struct seen){ .type = ev->type, .seq = ev->seq, .lock = ev->lock,
	                              .size = ev->size, .offset = ev->offset,
	                              .length = ev->length, .error = ev->error,
	                              .opened = ev->opened };
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&mu);
}

static void seen_reset(void)
{
	pthread_mutex_lock(&mu);
	nseen = 0;
	pthread_mutex_unlock(&mu);
}

/* The event with seq token, once; NULL when none. mu held. */
static struct seen *seen_find(uint64_t token)
{
	struct seen *found = NULL;

	for (size_t i = 0; i < nseen; i++) {
		if (seen[i].seq == token) {
			ck_assert_msg(!found, "token %llu reported twice", (unsigned long long)token);
			found = &seen[i];
		}
	}
	return found;
}

/*
 * Waits (dispatching when threaded is false) until the end of token came; returns a copy. A
 * test fails after TEST_WAIT_MS.
 */
static struct seen wait_done(struct mmapd_client *c, uint64_t token, bool threaded)
{
	struct timespec end;
	struct seen *s, copy;

	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += TEST_WAIT_MS / 1000;
	for (;;) {
		pthread_mutex_lock(&mu);
		s = seen_find(token);
		if (s) {
			copy = *s;
			pthread_mutex_unlock(&mu);
			return copy;
		}
		if (threaded) {
			ck_assert_msg(pthread_cond_timedwait(&cond, &mu, &end) == 0,
			              "no event for token %llu", (unsigned long long)token);
			pthread_mutex_unlock(&mu);
			continue;
		}
		pthread_mutex_unlock(&mu);
		ck_assert_msg(time(NULL) <= end.tv_sec, "no event for token %llu",
		              (unsigned long long)token);
		ck_assert_int_ge(mmapd_client_dispatch(c, 100), 0);
	}
}

/* Every start call, each ended by its event; threaded: on the dispatch thread. */
static void run_every_start(bool threaded)
{
	struct test_daemon d;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.flags = MMAPD_OPEN_CREATE,
	                                           .mode = MMAPD_MODE_RW, .size = 4096);
	struct mmapd_client *c;
	struct mmapd_region *region;
	uint64_t t_open, t_lock, t_resize, t_flush, t_delete;
	struct seen s;

	seen_reset();
	test_daemon_start(&d, NULL);
	c = test_client_connect(&d, "async");
	mmapd_client_set_event_handler(c, on_event, NULL);
	if (threaded)
		ck_assert_int_eq(mmapd_client_dispatch_thread_start(c), 0);

	ck_assert_int_eq(mmapd_region_open_start(c, REGION, &o, &t_open), 0);
	s = wait_done(c, t_open, threaded);
	ck_assert_int_eq(s.type, MMAPD_EVENT_OPEN_DONE);
	ck_assert_int_eq(s.error, 0);
	ck_assert_ptr_nonnull(s.opened);
	region = s.opened;
	ck_assert_uint_eq(mmapd_region_length(region), 4096);
	memcpy(mmapd_region_data(region), "started", 7);

	ck_assert_int_eq(mmapd_region_lock_start(region, 0, 100, MMAPD_LOCK_EXCLUSIVE, -1,
	                                         &t_lock), 0);
	s = wait_done(c, t_lock, threaded);
	ck_assert_int_eq(s.type, MMAPD_EVENT_LOCK_DONE);
	ck_assert_int_eq(s.error, 0);
	ck_assert_uint_ne(s.lock, 0);
	ck_assert_uint_eq(s.length, 100);
	ck_assert_int_eq(mmapd_unlock(c, s.lock), 0);

	ck_assert_int_eq(mmapd_region_resize_start(region, 3 * 4096, 0, &t_resize), 0);
	s = wait_done(c, t_resize, threaded);
	ck_assert_int_eq(s.type, MMAPD_EVENT_RESIZE_DONE);
	ck_assert_int_eq(s.error, 0);
	ck_assert_uint_eq(s.size, 3 * 4096);
	/* The mapping followed before the event was delivered. */
	ck_assert_uint_eq(mmapd_region_size(region), 3 * 4096);
	ck_assert_uint_eq(mmapd_region_length(region), 3 * 4096);

	ck_assert_int_eq(mmapd_region_flush_range_async(region, 4096, 4096, &t_flush), 0);
	s = wait_done(c, t_flush, threaded);
	ck_assert_int_eq(s.type, MMAPD_EVENT_FLUSH_DONE);
	ck_assert_int_eq(s.error, 0);
	ck_assert_uint_eq(s.offset, 4096);
	ck_assert_uint_eq(s.length, 4096);

	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete_start(c, REGION, &t_delete), 0);
	s = wait_done(c, t_delete, threaded);
	ck_assert_int_eq(s.type, MMAPD_EVENT_DELETE_DONE);
	ck_assert_int_eq(s.error, 0);
	ck_assert_int_eq(mmapd_region_open(c, REGION, NULL, &region), -ENOENT);
	/* The tokens are distinct. */
	ck_assert(t_open != t_lock && t_lock != t_resize && t_resize != t_flush &&
	          t_flush != t_delete);
	if (threaded)
		ck_assert_int_eq(mmapd_client_dispatch_thread_stop(c), 0);
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}

START_TEST(test_async_every_start_call_ends_in_its_event_through_dispatch)
{
	run_every_start(false);
}
END_TEST

START_TEST(test_async_every_start_call_ends_in_its_event_on_the_dispatch_thread)
{
	run_every_start(true);
}
END_TEST

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Wakes a stopped daemon after 5 s at the latest, so that a call that blocks shows as slow. */
static _Atomic bool wake_now;

static void *continue_later(void *arg)
{
	pid_t pid = *(pid_t *)arg;

	for (int i = 0; i < 500 && !wake_now; i++)
		usleep(10000);
	kill(pid, SIGCONT);
	return NULL;
}

/*
 * 20000 flush starts against a stopped daemon: far more than its socket buffer holds. Each
 * returns at once (the rest wait in the library); once the daemon runs again every one ends
 * in its event, in order of the tokens.
 */
START_TEST(test_async_start_calls_return_at_once_while_the_daemon_is_stopped)
{
	enum { N = 20000 };
	static uint64_t tokens[N];
	struct test_daemon d;
	struct mmapd_client *c;
	pthread_t waker;
	uint64_t worst = 0, t0, lock_token;
	struct seen s;

	seen_reset();
	test_daemon_start(&d, NULL);
	test_daemon_create(&d, REGION, 4096, true);
	c = test_client_connect(&d, "stopped");
	mmapd_client_set_event_handler(c, on_event, NULL);
	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	wake_now = false;
	ck_assert_int_eq(pthread_create(&waker, NULL, continue_later, &d.pid), 0);
	for (size_t i = 0; i < N; i++) {
		t0 = now_us();
		ck_assert_int_eq(mmapd_flush_async(c, REGION, &tokens[i]), 0);
		if (now_us() - t0 > worst)
			worst = now_us() - t0;
	}
	t0 = now_us();
	ck_assert_int_eq(mmapd_lock_start(c, REGION, 0, 0, MMAPD_LOCK_EXCLUSIVE, -1,
	                                  &lock_token), 0);
	if (now_us() - t0 > worst)
		worst = now_us() - t0;
	ck_assert_msg(worst < 2500000, "a start call blocked for %llu us on a stopped daemon",
	              (unsigned long long)worst);
	wake_now = true;
	kill(d.pid, SIGCONT);
	pthread_join(waker, NULL);
	/* A blocking call writes the queued requests before its own. */
	ck_assert_int_eq(mmapd_ping(c), 0);
	for (size_t i = 0; i < N; i++) {
		s = wait_done(c, tokens[i], false);
		ck_assert_int_eq(s.type, MMAPD_EVENT_FLUSH_DONE);
		ck_assert_int_eq(s.error, 0);
	}
	s = wait_done(c, lock_token, false);
	ck_assert_int_eq(s.error, 0);
	pthread_mutex_lock(&mu);
	ck_assert_uint_eq(nseen, N + 1);
	pthread_mutex_unlock(&mu);
	/* Nothing waits any more: the descriptor does not stay readable (a loop would spin). */
	ck_assert_int_ge(mmapd_client_dispatch(c, 0), 0);
	{
		struct pollfd pfd = { .fd = mmapd_client_fd(c), .events = POLLIN };

		ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	}
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}
END_TEST

/* Another process holds the lock: the start's event comes once it lets go, not before. */
START_TEST(test_async_lock_start_ends_when_another_process_unlocks)
{
	struct test_daemon d;
	struct test_sess holder;
	struct mmapd_client *c;
	const char *res;
	uint64_t token, held;
	struct seen s;

	seen_reset();
	test_daemon_start(&d, NULL);
	test_daemon_create(&d, REGION, 4096, false);
	test_sess_start(&holder, &d, "holder");
	res = test_sess_ok(&holder, "lock %s 0 10 exclusive", REGION);
	ck_assert_int_eq(sscanf(res, " lock=%llu", (unsigned long long *)&held), 1);
	c = test_client_connect(&d, "waiter");
	mmapd_client_set_event_handler(c, on_event, NULL);
	ck_assert_int_eq(mmapd_lock_start(c, REGION, 5, 10, MMAPD_LOCK_EXCLUSIVE, -1, &token), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_ge(mmapd_client_dispatch(c, 60), 0);
	pthread_mutex_lock(&mu);
	ck_assert_ptr_null(seen_find(token));
	pthread_mutex_unlock(&mu);
	test_sess_ok(&holder, "unlock %llu", (unsigned long long)held);
	s = wait_done(c, token, false);
	ck_assert_int_eq(s.type, MMAPD_EVENT_LOCK_DONE);
	ck_assert_int_eq(s.error, 0);
	ck_assert_uint_ne(s.lock, 0);
	ck_assert_int_eq(mmapd_unlock(c, s.lock), 0);
	mmapd_disconnect(c);
	test_sess_cmd(&holder, "quit");
	test_proc_wait(&holder.p);
	test_daemon_stop(&d);
}
END_TEST

/*
 * A whole-region lock start on a control page this client already has is taken there: its
 * event is queued before the call returns, no lock request reaches the daemon, and another
 * process finds the region locked. When the page is busy, the start asks the daemon.
 */
START_TEST(test_async_whole_region_lock_start_is_taken_on_the_control_page)
{
	struct test_daemon d;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct test_sess other;
	struct mmapd_client *c;
	struct mmapd_region *region;
	uint64_t lock, token, token2, requests;
	struct seen s;

	seen_reset();
	test_daemon_start(&d, NULL);
	test_daemon_create(&d, REGION, 4096, false);
	c = test_client_connect(&d, "fast");
	mmapd_client_set_event_handler(c, on_event, NULL);
	ck_assert_int_eq(mmapd_region_open(c, REGION, &o, &region), 0);
	/* The blocking call finds the page. */
	ck_assert_int_eq(mmapd_region_lock(region, 0, 0, MMAPD_LOCK_EXCLUSIVE, -1, &lock), 0);
	ck_assert_int_eq(mmapd_region_unlock(region, lock), 0);
	requests = test_daemon_requests(&d, "lock");

	ck_assert_int_eq(mmapd_region_lock_start(region, 0, 0, MMAPD_LOCK_EXCLUSIVE, -1, &token), 0);
	ck_assert_int_eq(mmapd_client_dispatch(c, 0), 1);
	pthread_mutex_lock(&mu);
	ck_assert_ptr_nonnull(seen_find(token));
	s = *seen_find(token);
	pthread_mutex_unlock(&mu);
	ck_assert_int_eq(s.type, MMAPD_EVENT_LOCK_DONE);
	ck_assert_int_eq(s.error, 0);
	ck_assert_uint_eq(test_daemon_requests(&d, "lock"), requests);
	test_sess_start(&other, &d, "other");
	ck_assert_msg(strncmp(test_sess_cmd(&other, "lock %s 0 0 exclusive nowait", REGION),
	                      "err EAGAIN", 10) == 0, "the other process got the lock");

	/* Busy on the page (this client's own exclusive lock): the daemon is asked. */
	ck_assert_int_eq(mmapd_lock_start(c, REGION, 0, 0, MMAPD_LOCK_EXCLUSIVE | MMAPD_LOCK_NOWAIT,
	                                  -1, &token2), 0);
	s = wait_done(c, token2, false);
	ck_assert_int_eq(s.error, -EAGAIN);
	ck_assert_uint_gt(test_daemon_requests(&d, "lock"), requests);
	pthread_mutex_lock(&mu);
	lock = seen_find(token)->lock;
	pthread_mutex_unlock(&mu);
	ck_assert_int_eq(mmapd_region_unlock(region, lock), 0);
	test_sess_ok(&other, "lock %s 0 0 exclusive nowait", REGION);
	test_sess_cmd(&other, "quit");
	test_proc_wait(&other.p);
	mmapd_region_close(region);
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}
END_TEST

/* In a child as uid 65534: the refusals of a region it may not touch come as events. */
static int nobody_starts(const struct test_daemon *d)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_client *c;
	uint64_t t_open, t_delete, t_flush;
	struct seen s;

	if (setgroups(0, NULL) < 0 || setgid(TEST_NOBODY) < 0 || setuid(TEST_NOBODY) < 0)
		return 10;
	if (mmapd_connect(d->sock, "nobody", &c) < 0) {
		fprintf(stderr, "as uid 65534: %s\n", mmapd_last_message());
		return 11;
	}
	mmapd_client_set_event_handler(c, on_event, NULL);
	if (mmapd_region_open_start(c, "private", &o, &t_open) < 0 ||
	    mmapd_delete_start(c, "private", &t_delete) < 0 ||
	    mmapd_flush_range_async(c, "private", 0, 4096, &t_flush) < 0)
		return 12;
	s = wait_done(c, t_open, false);
	if (s.type != MMAPD_EVENT_OPEN_DONE || s.error != -EACCES || s.opened)
		return 13;
	s = wait_done(c, t_delete, false);
	if (s.type != MMAPD_EVENT_DELETE_DONE || s.error != -EACCES)
		return 14;
	/* A range flush needs read access, as the whole-file one. */
	s = wait_done(c, t_flush, false);
	if (s.type != MMAPD_EVENT_FLUSH_DONE || s.error != -EACCES)
		return 15;
	mmapd_disconnect(c);
	return 0;
}

START_TEST(test_async_refusals_arrive_as_events)
{
	struct test_daemon d;
	struct mmapd_client *c;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	uint64_t token;
	struct seen s;
	pid_t pid;
	int status;

	seen_reset();
	test_daemon_start_shared(&d, "{\"socket_mode\": \"0666\"}");
	c = test_client_connect(&d, "refused");
	mmapd_client_set_event_handler(c, on_event, NULL);
	ck_assert_int_eq(mmapd_region_open_start(c, "missing", &o, &token), 0);
	s = wait_done(c, token, false);
	ck_assert_int_eq(s.type, MMAPD_EVENT_OPEN_DONE);
	ck_assert_int_eq(s.error, -ENOENT);
	ck_assert_ptr_null(s.opened);
	ck_assert_int_eq(mmapd_resize_start(c, "missing", 8192, 0, &token), 0);
	ck_assert_int_eq(wait_done(c, token, false).error, -ENOENT);
	/* Checked before anything is sent: no event. */
	ck_assert_int_eq(mmapd_resize_start(c, "missing", 0, 0, &token), -EINVAL);
	ck_assert_int_eq(mmapd_lock_start(c, "../x", 0, 0, 0, -1, &token), -EINVAL);
	/* A range outside the region. */
	test_daemon_create(&d, "small", 4096, false);
	ck_assert_int_eq(mmapd_flush_range_async(c, "small", 4096, 1, &token), 0);
	s = wait_done(c, token, false);
	ck_assert_int_eq(s.error, -ERANGE);
	mmapd_disconnect(c);

	if (!test_is_root()) {
		test_daemon_stop(&d);
		return;
	}
	test_daemon_create_perm(&d, "private", 4096, 0600);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(nobody_starts(&d));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "the child as uid 65534 failed with status %d", status);
	test_daemon_stop(&d);
}
END_TEST

/* Dispatches until the event of token came; returns it. */
static struct seen dispatch_until(struct mmapd_client *c, uint64_t token)
{
	struct seen *found, copy;

	for (int i = 0; i < TEST_WAIT_MS / 100; i++) {
		pthread_mutex_lock(&mu);
		found = seen_find(token);
		if (found)
			copy = *found;
		pthread_mutex_unlock(&mu);
		if (found)
			return copy;
		mmapd_client_dispatch(c, 100);
	}
	ck_abort_msg("no event for token %llu", (unsigned long long)token);
}

/*
 * The daemon dies with starts pending: each ends in one event with the connection's error,
 * with reconnection off and on (then the next start goes out on the new connection). A start
 * on a client whose connection is down is refused at once. mmapd_disconnect() with an open's
 * event undelivered closes its region (the fixture counts descriptors).
 */
START_TEST(test_async_pending_starts_fail_when_the_connection_dies)
{
	struct test_daemon d;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.flags = MMAPD_OPEN_CREATE,
	                                           .mode = MMAPD_MODE_RW, .size = 4096);
	struct mmapd_client *c, *holder;
	uint64_t tokens[4], lock;
	struct seen s;

	seen_reset();
	test_daemon_start(&d, NULL);
	test_daemon_create(&d, REGION, 4096, false);
	c = test_client_connect(&d, "dies");
	mmapd_client_set_event_handler(c, on_event, NULL);
	mmapd_client_set_reconnect(c, 0);
	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	ck_assert_int_eq(mmapd_region_open_start(c, "new", &o, &tokens[0]), 0);
	ck_assert_int_eq(mmapd_lock_start(c, REGION, 0, 0, 0, -1, &tokens[1]), 0);
	ck_assert_int_eq(mmapd_resize_start(c, REGION, 8192, 0, &tokens[2]), 0);
	ck_assert_int_eq(mmapd_delete_start(c, REGION, &tokens[3]), 0);
	test_daemon_kill(&d);
	for (int i = 0; i < 4; i++) {
		s = dispatch_until(c, tokens[i]);
		ck_assert_msg(s.error == -ECONNRESET || s.error == -ESHUTDOWN,
		              "start %d ended with %d", i, s.error);
		ck_assert_ptr_null(s.opened);
	}
	ck_assert_int_lt(mmapd_delete_start(c, REGION, &tokens[0]), 0);
	pthread_mutex_lock(&mu);
	ck_assert_uint_eq(nseen, 4);
	pthread_mutex_unlock(&mu);
	mmapd_disconnect(c);

	/* Reconnection on: a lock start waiting in the daemon when it dies. */
	seen_reset();
	test_daemon_restart(&d);
	holder = test_client_connect(&d, "holder");
	ck_assert_int_eq(mmapd_lock(holder, REGION, 0, 10, MMAPD_LOCK_EXCLUSIVE, -1, &lock), 0);
	c = test_client_connect(&d, "waits");
	mmapd_client_set_event_handler(c, on_event, NULL);
	ck_assert_int_eq(mmapd_lock_start(c, REGION, 5, 10, MMAPD_LOCK_EXCLUSIVE, -1, &tokens[0]),
	                 0);
	test_daemon_wait_status(&d, "lock_waiters", 1);
	test_daemon_kill(&d);
	test_daemon_restart(&d);
	s = dispatch_until(c, tokens[0]);
	ck_assert_msg(s.error == -ECONNRESET || s.error == -ESHUTDOWN, "the lock start ended with %d",
	              s.error);
	/* Dispatching reconnected; the next start goes out (the old holder's lock died too). */
	for (int i = 0; i < 50 && mmapd_lock_start(c, REGION, 5, 10, MMAPD_LOCK_EXCLUSIVE, -1,
	                                          &tokens[1]) < 0; i++)
		mmapd_client_dispatch(c, 100);
	s = dispatch_until(c, tokens[1]);
	ck_assert_int_eq(s.error, 0);
	pthread_mutex_lock(&mu);
	ck_assert_uint_eq(nseen, 2);
	pthread_mutex_unlock(&mu);
	mmapd_disconnect(c);
	mmapd_disconnect(holder);

	/* An open that succeeded but was never dispatched: disconnecting closes its region. */
	c = test_client_connect(&d, "undelivered");
	mmapd_client_set_event_handler(c, on_event, NULL);
	ck_assert_int_eq(mmapd_region_open_start(c, "new", &o, &tokens[0]), 0);
	/*
	 * Once the daemon counts the grant its reply is sent: a blocking call then reads it on the
	 * way, and OPEN_DONE waits in the queue with the region's descriptor.
	 */
	test_daemon_wait_status(&d, "grants", 1);
	ck_assert_int_eq(mmapd_ping(c), 0);
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}
END_TEST

/*
 * A range flush whose write-back fails poisons the region as a failed fdatasync does: its
 * event carries -EIO, the region is poisoned (saved, shown by stat) and every later flush fails
 * until clear-error (fault hook MMAPD_TEST_FAIL_FDATASYNC).
 */
START_TEST(test_async_failed_range_flush_poisons_the_region)
{
	struct test_daemon d;
	struct mmapd_client *c;
	struct mmapd_region_info *info;
	uint64_t token;
	struct seen s;

	seen_reset();
	test_daemon_init(&d, NULL);
	test_daemon_setenv(&d, "MMAPD_TEST_FAIL_FDATASYNC=sick");
	test_daemon_launch(&d);
	test_daemon_create(&d, "sick", 8192, false);
	test_daemon_create(&d, "well", 8192, false);
	c = test_client_connect(&d, "poisoned");
	mmapd_client_set_event_handler(c, on_event, NULL);
	ck_assert_int_eq(mmapd_flush_range_async(c, "sick", 4096, 4096, &token), 0);
	s = wait_done(c, token, false);
	ck_assert_int_eq(s.error, -EIO);
	ck_assert_int_eq(mmapd_stat(c, "sick", &info), 0);
	ck_assert(info->poisoned);
	mmapd_region_info_free(info);
	ck_assert_int_eq(mmapd_flush(c, "sick", 0, 0), -EIO);
	ck_assert_int_eq(mmapd_flush(c, "sick", 0, 100), -EIO);
	ck_assert_int_eq(mmapd_flush(c, "well", 0, 100), 0);
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}
END_TEST

/* cachestat(2): the page-cache state of a file range (Linux 6.5). */
struct cstat_range {
	uint64_t off, len;
};
struct cstat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif

/* Dirty pages of fd in off..off+len; -1 when the kernel has no cachestat. */
static long dirty_pages(int fd, uint64_t off, uint64_t len)
{
	struct cstat_range r = { off, len };
	struct cstat cs;

	if (syscall(SYS_cachestat, fd, &r, &cs, 0) < 0)
		return -1;
	return (long)cs.nr_dirty;
}

/* Waits up to 5 s for the range to be clean. Returns its dirty pages then. */
static long dirty_after(int fd, uint64_t off, uint64_t len)
{
	long n = dirty_pages(fd, off, len);

	for (int i = 0; i < 500 && n > 0; i++) {
		usleep(10000);
		n = dirty_pages(fd, off, len);
	}
	return n;
}

/*
 * mmapd_region_msync_async() returns without waiting and the range's write-back starts (with
 * MS_ASYNC alone, Linux leaves the pages dirty for ~30 s); the pages outside stay dirty.
 * Then a durable range flush through the daemon: its event comes, the range is clean, the rest
 * still dirty (a whole-file fdatasync would have written it all). The kernel's own write-back
 * may clean the rest meanwhile (the host's dirty memory past its background ratio): then the
 * round proves nothing and is tried again, up to 3 times.
 */
static bool range_round(struct mmapd_client *c, struct mmapd_region *region, int fd)
{
	enum { MB = 1 << 20 };
	uint64_t token;
	struct seen s;

	memset(mmapd_region_data(region), 7, 4 * MB);
	ck_assert_int_gt(dirty_pages(fd, 0, MB), 0);
	ck_assert_int_eq(mmapd_region_msync_async(region, 100, MB - 100), 0);
	ck_assert_int_eq(dirty_after(fd, 0, MB), 0);
	if (dirty_pages(fd, MB, 3 * MB) == 0)
		return false;

	ck_assert_int_eq(mmapd_region_flush_range_async(region, MB, MB, &token), 0);
	s = wait_done(c, token, false);
	ck_assert_int_eq(s.type, MMAPD_EVENT_FLUSH_DONE);
	ck_assert_int_eq(s.error, 0);
	ck_assert_int_eq(dirty_pages(fd, MB, MB), 0);
	if (dirty_pages(fd, 2 * MB, 2 * MB) == 0)
		return false;
	/* The blocking form takes the same range. */
	ck_assert_int_eq(mmapd_region_flush(region, 2 * MB, MB), 0);
	ck_assert_int_eq(dirty_pages(fd, 2 * MB, MB), 0);
	return dirty_pages(fd, 3 * MB, MB) > 0;
}

START_TEST(test_async_range_msync_and_range_flush_touch_only_their_range)
{
	struct test_daemon d;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.flags = MMAPD_OPEN_CREATE,
	                                           .mode = MMAPD_MODE_RW, .size = 4 << 20);
	struct mmapd_client *c;
	struct mmapd_region *region;
	bool shown = false;
	int fd;

	seen_reset();
	test_daemon_start(&d, NULL);
	c = test_client_connect(&d, "ranges");
	mmapd_client_set_event_handler(c, on_event, NULL);
	ck_assert_int_eq(mmapd_region_open(c, REGION, &o, &region), 0);
	fd = mmapd_region_fd(region);
	if (dirty_pages(fd, 0, 0) < 0) {
		fprintf(stderr, "skipped: no cachestat(2) on this kernel\n");
	} else {
		for (int i = 0; i < 3 && !shown; i++)
			shown = range_round(c, region, fd);
		ck_assert_msg(shown, "dirty pages outside the range were written 3 times in a row");
	}
	ck_assert_int_eq(mmapd_region_msync_async(region, 4 << 20, 1), -ERANGE);
	mmapd_region_close(region);
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}
END_TEST

/*
 * examples/uv_start (libuv) never blocks on mmapd: with the daemon stopped before its first
 * step, its loop keeps running its timer (ticks are printed) and no step ends; once the daemon
 * runs again every step ends and the program succeeds.
 */
START_TEST(test_async_uv_example_keeps_its_loop_running_while_the_daemon_is_stopped)
{
	const char *dir = getenv("MMAPD_EXAMPLES_DIR");
	char path[TEST_PATH_MAX], line[256];
	char *argv[] = { path, (char *)"uv-example", (char *)"1000", NULL };
	struct test_daemon d;
	struct test_proc p;
	unsigned ticks = 0;
	bool started = false, done = false;

	ck_assert_msg(dir != NULL, "MMAPD_EXAMPLES_DIR is not set (run the suite with make check)");
	snprintf(path, sizeof(path), "%s/uv_start", dir);
	ck_assert_msg(access(path, X_OK) == 0, "%s is not built", path);
	test_daemon_start(&d, NULL);
	test_proc_spawn(&p, &d, argv);
	test_proc_expect_line(&p, "connected");
	/* Its first step starts 1 s from now: the daemon is stopped well before. */
	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	for (uint64_t end = now_us() + 2500000; now_us() < end;) {
		if (test_proc_readline(&p, line, sizeof(line), 100) != 1)
			continue;
		if (strcmp(line, "started open") == 0)
			started = true;
		else if (strncmp(line, "tick ", 5) == 0)
			ticks++;
		else
			ck_abort_msg("uv_start printed \"%s\" while mmapd was stopped", line);
	}
	ck_assert_msg(started, "uv_start did not start its open");
	ck_assert_msg(ticks >= 5, "uv_start's loop ticked %u times in 1.5 s: it was blocked",
	              ticks);
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	while (test_proc_readline(&p, line, sizeof(line), TEST_WAIT_MS) == 1)
		if (strcmp(line, "done") == 0)
			done = true;
	ck_assert_msg(done, "uv_start did not finish");
	ck_assert_int_eq(test_proc_wait(&p), 0);
	test_daemon_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("async");
	TCase *tc = tcase_create("async");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_async_every_start_call_ends_in_its_event_through_dispatch);
	tcase_add_test(tc, test_async_every_start_call_ends_in_its_event_on_the_dispatch_thread);
	tcase_add_test(tc, test_async_start_calls_return_at_once_while_the_daemon_is_stopped);
	tcase_add_test(tc, test_async_lock_start_ends_when_another_process_unlocks);
	tcase_add_test(tc, test_async_whole_region_lock_start_is_taken_on_the_control_page);
	tcase_add_test(tc, test_async_refusals_arrive_as_events);
	tcase_add_test(tc, test_async_pending_starts_fail_when_the_connection_dies);
	tcase_add_test(tc, test_async_range_msync_and_range_flush_touch_only_their_range);
	tcase_add_test(tc, test_async_failed_range_flush_poisons_the_region);
	tcase_add_test(tc, test_async_uv_example_keeps_its_loop_running_while_the_daemon_is_stopped);
	suite_add_tcase(s, tc);
	return test_run_suite(s) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
