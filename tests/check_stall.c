/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests that no request stalls the loop (issue 9): one unprivileged uid queues the
 * most lock waiters it may (4096, the default max_lock_waiters_per_uid, over 4 connections of
 * 1024, max_locks_per_client) behind an exclusive lock another connection holds, then
 * disconnects them all, while a root connection in another process pings the daemon without
 * pause. The worst ping during each phase must stay far below what a search of the wait-for
 * graph by rescanning queues cost (0.8 s queuing and 2.4 s releasing 4,000 waiters when the
 * issue was found); afterwards the lock is free again and the counters are back at 0.
 *
 * Two shapes: one region with shared and exclusive waiters on overlapping ranges, and four
 * regions held by one holder with waiters spread over them. Each connection queues all its
 * waiters before the next one starts: a connection queuing again behind a later one's
 * conflicting waiter would close a wait-for cycle and get EDEADLK.
 *
 * A third case: 20,000 files placed in the data directory before the daemon starts, one uid
 * floods list and status from 8 connections while root pings; each request used to rescan
 * the directory.
 *
 * Other users are real, as in check_access.c: the suite runs as root and a forked child drops
 * to nobody (setgroups, setgid, setuid) just to connect() a socket the test created.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"


#define STALL_CONNS 4
#define STALL_PER_CONN 1024
#define STALL_WAITERS (STALL_CONNS * STALL_PER_CONN)
#define STALL_REGIONS 4

/*
 * The worst ping allowed while the waiters queue and while they are released. Measured on a
 * shared 2-CPU machine under load: 3-47 ms queuing, 0-11 ms releasing (a ping waits for the
 * batch of lock requests read before it, each one pass over the region); before the fix,
 * 1.6-2.5 s queuing the first shape, and the chain did not queue within the harness's 5 s.
 * 500 ms leaves a tenfold margin for a loaded machine and for ASan, and still fails anything
 * that searches the waiters again per connection visited.
 */
#define STALL_MAX_PING_MS 500

/* ---- the pinger: another process, pinging as root until told to stop ----------------------- */

struct pinger {
	pid_t pid;
	int stop;     /* write end: closing it stops the pinger */
	int result;   /* read end: the worst ping in ms and the count, as two int64_t */
};

/* Starts the pinger; it closes its copies of the connections in others first (so that
 * closing them in the test hangs them up). */
static void pinger_start(struct pinger *p, const struct test_daemon *d, struct test_conn *others,
                         int nothers)
{
	int stop[2], result[2];
	char ready;

	ck_assert_int_eq(pipe2(stop, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(result, O_CLOEXEC), 0);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		struct pollfd pfd = { .fd = stop[0], .events = POLLIN };
		int64_t out[2] = { 0, 0 };
		struct test_conn c;

		close(stop[1]);
		close(result[0]);
		for (int k = 0; k < nothers; k++)
			close(others[k].fd);
		test_conn_open_hello(&c, d);
		if (write(result[1], "r", 1) != 1)
			_exit(1);
		do {
			int64_t t0 = test_now_ms(), ms;

			test_reply_ok(test_conn_callf(&c, "{'op':'ping'}"));
			ms = test_now_ms() - t0;
			if (ms > out[0])
				out[0] = ms;
			out[1]++;
		} while (poll(&pfd, 1, 1) == 0);
		test_conn_close(&c);
		_exit(write(result[1], out, sizeof(out)) == (ssize_t)sizeof(out) ? 0 : 1);
	}
	close(stop[0]);
	close(result[1]);
	p->stop = stop[1];
	p->result = result[0];
	ck_assert_int_eq(read(p->result, &ready, 1), 1);
}

/* Stops the pinger; returns the worst ping it saw (asserting it pinged at all). */
static int64_t pinger_stop(struct pinger *p, const char *phase)
{
	int64_t out[2];

	close(p->stop);
	ck_assert_int_eq(read(p->result, out, sizeof(out)), (ssize_t)sizeof(out));
	close(p->result);
	test_child_wait(p->pid, TEST_WAIT_MS);
	ck_assert_int_gt(out[1], 0);
	fprintf(stderr, "check_stall: %s: worst ping %lld ms over %lld pings\n", phase,
	        (long long)out[0], (long long)out[1]);
	return out[0];
}

/* ---- the test ---------------------------------------------------------------------------- */

/* Polls status (from fresh connections, every 10 ms) until key is want, for up to 300 s. */
static void stall_wait_status(const struct test_daemon *d, const char *key, uint64_t want)
{
	int64_t deadline = test_now_ms() + 300000;
	uint64_t v;

	while ((v = test_daemon_status_u64(d, key)) != want && test_now_ms() < deadline)
		usleep(10000);
	ck_assert_msg(v == want, "status %s is %llu, expected %llu", key, (unsigned long long)v,
	              (unsigned long long)want);
}

/* How the waiters lie. */
enum stall_shape {
	STALL_OVERLAP,   /* one region: every eighth exclusive, the rest shared, on 256-byte
	                  * ranges that overlap their neighbours' */
	STALL_REGIONS4,  /* the same spread over STALL_REGIONS regions */
	STALL_CHAIN,     /* one region: exclusive 2-byte ranges, each overlapping the one before,
	                  * so waiter n is blocked by waiter n - 1 only (the holder by the first) */
};

static int stall_nregions(enum stall_shape shape)
{
	return shape == STALL_REGIONS4 ? STALL_REGIONS : 1;
}

/* Sends waiter j of connection k. */
static void stall_send(struct test_conn *c, enum stall_shape shape, int k, int j)
{
	int n = k * STALL_PER_CONN + j;

	if (shape == STALL_CHAIN)
		(void)test_conn_sendf(c, "{'op':'lock','name':'stall0','offset':%d,'length':2,"
		                      "'mode':'exclusive'}", n + 1);
	else
		(void)test_conn_sendf(c, "{'op':'lock','name':'stall%d','offset':%d,'length':256,"
		                      "'mode':'%s'}", j % stall_nregions(shape), (j % 32) * 128,
		                      j % 8 == 0 ? "exclusive" : "shared");
}

static void stall_run(enum stall_shape shape)
{
	int nregions = stall_nregions(shape);
	struct test_daemon d;
	struct test_conn root, holder, nobody[STALL_CONNS];
	uint64_t held[STALL_REGIONS];
	struct pinger p;
	int64_t queue_ms, release_ms;
	int i, k;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{\"socket_mode\": \"0666\"}");
	test_conn_open_hello(&root, &d);
	test_conn_open_hello(&holder, &d);
	for (i = 0; i < nregions; i++) {
		cJSON *reply;

		test_reply_ok(test_conn_callf(&root, "{'op':'open','name':'stall%d','mode':'rw',"
		                              "'create':true,'size':4096,'perm':%d}", i, 0644));
		/* The chain's holder blocks its first waiter only. */
		reply = test_conn_callf(&holder, "{'op':'lock','name':'stall%d','mode':'exclusive',"
		                        "'length':%d,'wait':false}", i, shape == STALL_CHAIN ? 2 : 0);
		test_assert_ok(reply);
		held[i] = test_json_u64(reply, "lock");
		cJSON_Delete(reply);
	}
	for (k = 0; k < STALL_CONNS; k++)
		test_conn_open_hello_as(&nobody[k], &d, TEST_NOBODY, TEST_NOBODY);

	pinger_start(&p, &d, nobody, STALL_CONNS);
	for (k = 0; k < STALL_CONNS; k++) {
		for (i = 0; i < STALL_PER_CONN; i++)
			stall_send(&nobody[k], shape, k, i);
		/* Every waiter is in before the next connection starts; none was answered. */
		test_reply_ok(test_conn_callf(&nobody[k], "{'op':'ping'}"));
	}
	stall_wait_status(&d, "lock_waiters", STALL_WAITERS);
	queue_ms = pinger_stop(&p, "queuing");

	pinger_start(&p, &d, nobody, STALL_CONNS);
	for (k = 0; k < STALL_CONNS; k++)
		test_conn_close(&nobody[k]);
	stall_wait_status(&d, "lock_waiters", 0);
	release_ms = pinger_stop(&p, "releasing");

	ck_assert_msg(queue_ms < STALL_MAX_PING_MS, "a ping took %lld ms while %d waiters queued",
	              (long long)queue_ms, STALL_WAITERS);
	ck_assert_msg(release_ms < STALL_MAX_PING_MS, "a ping took %lld ms while %d waiters were "
	              "released", (long long)release_ms, STALL_WAITERS);

	/* Nothing is left behind: the holder's locks go, and the ranges can be taken at once. */
	for (i = 0; i < nregions; i++)
		test_reply_ok(test_conn_callf(&holder, "{'op':'unlock','lock':%llu}",
		                              (unsigned long long)held[i]));
	for (i = 0; i < nregions; i++)
		test_reply_ok(test_conn_callf(&root, "{'op':'lock','name':'stall%d','mode':"
		                              "'exclusive','wait':false}", i));
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "locks"), (uint64_t)nregions);
	test_conn_close(&root);
	stall_wait_status(&d, "locks", 0);
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "lock_waiters"), 0);
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "locks"), 0);
	test_conn_close(&holder);
	test_daemon_stop(&d);
}

START_TEST(test_stall_4096_waiters_of_one_uid_on_one_region_stall_no_ping)
{
	stall_run(STALL_OVERLAP);
}
END_TEST

START_TEST(test_stall_4096_waiters_of_one_uid_over_four_regions_stall_no_ping)
{
	stall_run(STALL_REGIONS4);
}
END_TEST

START_TEST(test_stall_4096_waiters_of_one_uid_in_a_chain_of_ranges_stall_no_ping)
{
	stall_run(STALL_CHAIN);
}
END_TEST

/* ---- list and status over a large data directory -------------------------------------- */

#define LIST_FILES 20000
#define LIST_CONNS 8
#define LIST_PER_CONN 16    /* requests each connection pipelines per round */
#define LIST_ROUNDS 8
#define LIST_PAGE 10

/*
 * The worst ping allowed while one uid floods list and status over 20,000 files. Small pages
 * (10 entries) keep the cost of the entries themselves (an fstatat and a JSON object each)
 * out of the way: what is measured is what a request costs beyond its own page. Before the
 * index each request rescanned the directory (8-13 ms at 20,000 files), and a round of 128
 * pipelined requests, read in one loop turn, stalled a ping for 0.9-1.8 s on a shared 2-CPU
 * machine; with the index the worst ping was 25-44 ms. 400 ms leaves a wide margin for a
 * loaded machine and ASan, and still fails any per-request scan.
 */
#define LIST_MAX_PING_MS 400

/* Creates count files of 4096 bytes named <prefix><n> in dir, as an administrator would. */
static void list_place_files(const char *dir, const char *prefix, int from, int count)
{
	char path[TEST_PATH_MAX + 32];

	for (int n = from; n < from + count; n++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s%05d", dir, prefix, n);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		ck_assert_msg(fd >= 0, "cannot create %s: %s", path, strerror(errno));
		ck_assert_int_eq(ftruncate(fd, 4096), 0);
		close(fd);
	}
}

START_TEST(test_stall_list_and_status_flood_over_20000_files_stall_no_ping)
{
	struct test_daemon d;
	struct test_conn nobody[LIST_CONNS];
	uint64_t ids[LIST_CONNS][LIST_PER_CONN];
	struct pinger p;
	int64_t worst;

	if (!test_is_root())
		return;
	test_daemon_init(&d, "{\"socket_mode\": \"0666\"}");
	test_daemon_open_dirs(&d);
	list_place_files(d.data, "f", 0, LIST_FILES);
	test_daemon_launch(&d);
	ck_assert_uint_eq(test_daemon_status_u64(&d, "regions"), LIST_FILES);
	for (int k = 0; k < LIST_CONNS; k++)
		test_conn_open_hello_as(&nobody[k], &d, TEST_NOBODY, TEST_NOBODY);

	pinger_start(&p, &d, nobody, LIST_CONNS);
	for (int round = 0; round < LIST_ROUNDS; round++) {
		/* Every connection's requests are in before any reply is read. */
		for (int k = 0; k < LIST_CONNS; k++)
			for (int j = 0; j < LIST_PER_CONN; j++)
				ids[k][j] = j % 4 == 3
					? test_conn_sendf(&nobody[k], "{'op':'status'}")
					: test_conn_sendf(&nobody[k], "{'op':'list','after':'f%05d',"
					                  "'limit':%d}", (k * 997 + j * 1231) % LIST_FILES,
					                  LIST_PAGE);
		for (int k = 0; k < LIST_CONNS; k++)
			for (int j = 0; j < LIST_PER_CONN; j++)
				test_reply_ok(test_conn_reply(&nobody[k], ids[k][j], 60000));
	}
	worst = pinger_stop(&p, "list and status over 20000 files");
	for (int k = 0; k < LIST_CONNS; k++)
		test_conn_close(&nobody[k]);
	ck_assert_msg(worst < LIST_MAX_PING_MS, "a ping took %lld ms while %d connections sent "
	              "list and status over %d files", (long long)worst, LIST_CONNS, LIST_FILES);
	test_daemon_stop(&d);
}
END_TEST

/*
 * One connection pipelines a burst of requests in one send: thousands fit a socket buffer.
 * The daemon runs one turn of them (64 requests or 1 ms) before every other connection's, so
 * a ping waits for about one page of list, not for the whole burst. Measured on a 2-CPU
 * machine: without turns the burst of 512 pages of 100 entries held a ping 650 ms; with them
 * the worst ping was 3 ms over about 1,160. The bound leaves room for ASan and a loaded
 * machine and still fails a loop that runs the burst in one go.
 */
#define PIPE_FILES 2000
#define PIPE_REQUESTS 512
#define PIPE_PAGE 100
#define PIPE_MAX_PING_MS 150
#define PIPE_RUN_MS 1500    /* the burst takes 0.6-0.7 s on the machine it was measured on */

START_TEST(test_stall_pipelined_burst_of_one_connection_stalls_no_ping)
{
	struct test_daemon d;
	struct test_conn nobody;
	struct pinger p;
	char *burst, frame[96];
	size_t len = 0;
	int64_t worst;

	if (!test_is_root())
		return;
	test_daemon_init(&d, "{\"socket_mode\": \"0666\", \"max_queue_bytes\": 268435456, "
	                 "\"max_queue_bytes_per_uid\": 268435456}");
	test_daemon_open_dirs(&d);
	list_place_files(d.data, "f", 0, PIPE_FILES);
	test_daemon_launch(&d);
	test_conn_open_hello_as(&nobody, &d, TEST_NOBODY, TEST_NOBODY);
	burst = malloc(PIPE_REQUESTS * sizeof(frame));
	ck_assert_ptr_nonnull(burst);
	for (int j = 0; j < PIPE_REQUESTS; j++) {
		int n = snprintf(frame + 4, sizeof(frame) - 4, "{\"id\":%d,\"op\":\"list\","
		                 "\"after\":\"f%05d\",\"limit\":%d}", 100 + j,
		                 (j * 37) % (PIPE_FILES - PIPE_PAGE), PIPE_PAGE);

		frame[0] = frame[1] = 0;
		frame[2] = (char)(n >> 8);
		frame[3] = (char)(n & 0xff);
		memcpy(burst + len, frame, (size_t)n + 4);
		len += (size_t)n + 4;
	}

	pinger_start(&p, &d, &nobody, 1);
	ck_assert_int_eq(test_conn_send_raw(&nobody, burst, len), 0);
	/* The replies wait in the daemon's queue meanwhile: reading and parsing them here would
	 * take the CPUs the daemon and the pinger are measured on. */
	usleep(PIPE_RUN_MS * 1000);
	worst = pinger_stop(&p, "one connection's pipelined burst");
	for (int j = 0; j < PIPE_REQUESTS; j++)
		test_reply_ok(test_conn_reply(&nobody, 100 + (uint64_t)j, 60000));
	free(burst);
	test_conn_close(&nobody);
	ck_assert_msg(worst < PIPE_MAX_PING_MS, "a ping took %lld ms while one connection's burst "
	              "of %d list pages ran", (long long)worst, PIPE_REQUESTS);
	test_daemon_stop(&d);
}
END_TEST

static Suite *stall_suite(void)
{
	Suite *s = suite_create("stall");
	TCase *tc = tcase_create("stall");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, test_stall_4096_waiters_of_one_uid_on_one_region_stall_no_ping);
	tcase_add_test(tc, test_stall_4096_waiters_of_one_uid_over_four_regions_stall_no_ping);
	tcase_add_test(tc, test_stall_4096_waiters_of_one_uid_in_a_chain_of_ranges_stall_no_ping);
	suite_add_tcase(s, tc);
	tc = tcase_create("list");
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, test_stall_list_and_status_flood_over_20000_files_stall_no_ping);
	tcase_add_test(tc, test_stall_pipelined_burst_of_one_connection_stalls_no_ping);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(stall_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
