/* SPDX-License-Identifier: MIT */
/*
 * The daemon's memory over clients that come and go, against a real mmapd: idle clients cost
 * it little each (docs/architecture.md: a connection holds no input buffer while idle), and
 * once they have gone its resident memory is back near where it started (it trims malloc's
 * free lists after connections end), however many there were.
 *
 * Resident memory is VmRSS of /proc/PID/status. Under AddressSanitizer (make check SAN=1)
 * freed memory waits in its quarantine and every allocation carries red zones, so the numbers
 * are printed but not judged.
 */
#include <check.h>
#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#define MEM_CLIENTS      4000
#define MEM_FDS_SPARE    256
#define MEM_PER_CLIENT   6144    /* bytes of resident memory an idle client may cost */
#define MEM_KEPT_KIB     2048    /* what the daemon may keep after they all left */
#define MEM_CONFIG       "{\"max_clients\": 4200, \"max_clients_per_uid\": 4200, " \
                         "\"max_fds_per_uid\": 9000}"

/* Descriptors the daemon has open. */
static int daemon_fds(const struct test_daemon *d)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
	dir = opendir(path);
	ck_assert_msg(dir != NULL, "opendir %s: %s", path, strerror(errno));
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/* Waits until the daemon holds at most fds descriptors: every client it had is gone. */
static void wait_daemon_fds(const struct test_daemon *d, int fds)
{
	struct timespec pause = { .tv_nsec = 10000000 };
	int waited, n = 0;

	for (waited = 0; waited < 10 * TEST_WAIT_MS; waited += 10) {
		n = daemon_fds(d);
		if (n <= fds)
			return;
		nanosleep(&pause, NULL);
	}
	ck_abort_msg("the daemon still holds %d descriptors, %d before the clients came", n, fds);
}

/* As many clients as this process may open, up to MEM_CLIENTS. */
static size_t memory_clients(void)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < MEM_CLIENTS + MEM_FDS_SPARE)
		return rl.rlim_cur > 2 * MEM_FDS_SPARE ? rl.rlim_cur - MEM_FDS_SPARE : MEM_FDS_SPARE;
	return MEM_CLIENTS;
}

START_TEST(test_memory_returns_after_idle_clients_leave)
{
	struct test_daemon d;
	struct test_conn one, *conns;
	size_t n = memory_clients(), i;
	uint64_t rss0, rss1, rss2;
	int fds0;

	conns = calloc(n, sizeof(*conns));
	ck_assert_ptr_nonnull(conns);
	test_daemon_start(&d, MEM_CONFIG);
	/* One client comes and goes first: what serving costs once belongs to the baseline. */
	test_conn_open_hello(&one, &d);
	test_reply_ok(test_conn_callf(&one, "{'op':'ping'}"));
	test_conn_close(&one);
	fds0 = daemon_fds(&d);
	wait_daemon_fds(&d, fds0);
	rss0 = test_daemon_rss_kib(&d);

	for (i = 0; i < n; i++)
		test_conn_open_hello(&conns[i], &d);
	test_reply_ok(test_conn_callf(&conns[n - 1], "{'op':'ping'}"));
	rss1 = test_daemon_rss_kib(&d);
	for (i = 0; i < n; i++)
		test_conn_close(&conns[i]);
	wait_daemon_fds(&d, fds0);
	/* The last ones' memory is freed when their handles' close callbacks ran. */
	test_conn_open_hello(&one, &d);
	test_reply_ok(test_conn_callf(&one, "{'op':'ping'}"));
	test_conn_close(&one);
	wait_daemon_fds(&d, fds0);
	rss2 = test_daemon_rss_kib(&d);

	printf("check_memory: daemon VmRSS %llu KiB, %llu KiB with %zu idle clients (%.2f KiB "
	       "each), %llu KiB after they left\n", (unsigned long long)rss0,
	       (unsigned long long)rss1, n, (double)(rss1 - rss0) / (double)n,
	       (unsigned long long)rss2);
	fflush(stdout);
#ifndef TEST_ASAN
	ck_assert_msg((rss1 - rss0) * 1024 <= MEM_PER_CLIENT * n, "%zu idle clients cost the "
	              "daemon %.2f KiB each (at most %d bytes)", n,
	              (double)(rss1 - rss0) / (double)n, MEM_PER_CLIENT);
	ck_assert_msg(rss2 <= rss0 + MEM_KEPT_KIB, "the daemon went from %llu KiB to %llu KiB "
	              "over %zu idle clients that all left (it may keep %d KiB)",
	              (unsigned long long)rss0, (unsigned long long)rss2, n, MEM_KEPT_KIB);
#endif
	test_daemon_stop(&d);
	free(conns);
}
END_TEST

static Suite *memory_suite(void)
{
	Suite *s = suite_create("memory");
	TCase *tc = tcase_create("memory");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_memory_returns_after_idle_clients_leave);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(memory_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
