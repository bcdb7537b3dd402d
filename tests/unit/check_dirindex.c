/* SPDX-License-Identifier: MIT */
/*
 * Unit suite of the index of the data directory (daemon/dirindex.h), on a real server run
 * in-process (tests/unit/inproc.h): after random creations, renames and unlinks made by hand
 * in the data directory, the index walked with dirindex_next is exactly the sorted set of
 * valid region names of regular files there, merged with the anonymous names, and
 * dirindex_files counts the files; after more changes than inotify queues, a rescan on the
 * thread pool makes it right again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <check.h>

#include "dirindex.h"
#include "harness.h"
#include "inproc.h"

#define POOL 300

static struct inproc P;

static void setup(void)
{
	inproc_prime();
	test_fd_setup();
	inproc_setup(&P);
}

static void teardown(void)
{
	if (P.started)
		inproc_stop(&P);
	test_fd_teardown();
}

/* Name n of the pool: every tenth hidden (never indexed), the rest valid region names. */
static void pool_name(char *buf, size_t size, int n)
{
	snprintf(buf, size, n % 10 == 9 ? ".hidden-%03d" : "r-%03d", n);
}

static void pool_path(char *buf, size_t size, int n)
{
	char name[32];

	pool_name(name, sizeof(name), n);
	snprintf(buf, size, "%s/%s", P.data, name);
}

static void place(int n)
{
	char path[TEST_PATH_MAX + 64];
	int fd;

	pool_path(path, sizeof(path), n);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	close(fd);
}

/* Walks the index and compares it with the files present (and the anonymous names). */
static void check_index(const bool *present, const bool *anon)
{
	const char *name = NULL;
	size_t files = 0;
	int n;

	for (n = 0; n < POOL; n++)
		if (present[n] && n % 10 != 9)
			files++;
	dirindex_sync(&P.srv);
	ck_assert_uint_eq(dirindex_files(&P.srv), files);
	/* Pool names sort by number: "r-000" < "r-001" < ...; hidden names never appear. */
	for (n = 0; n < POOL; n++) {
		char want[32];

		if (n % 10 == 9 || (!present[n] && !anon[n]))
			continue;
		pool_name(want, sizeof(want), n);
		name = dirindex_next(&P.srv, name);
		ck_assert_msg(name != NULL, "the index ends before %s", want);
		ck_assert_str_eq(name, want);
	}
	ck_assert_ptr_null(dirindex_next(&P.srv, name));
}

START_TEST(test_dirindex_follows_random_changes_made_by_hand)
{
	bool present[POOL] = { false }, anon[POOL] = { false };
	char from[TEST_PATH_MAX + 64], to[TEST_PATH_MAX + 64], name[32];
	unsigned seed = 12345;

	check_index(present, anon);
	for (int round = 0; round < 40; round++) {
		for (int step = 0; step < 50; step++) {
			int n = (int)(rand_r(&seed) % POOL), m = (int)(rand_r(&seed) % POOL);

			switch (rand_r(&seed) % 4) {
			case 0:
			case 1:
				if (!present[n]) {
					place(n);
					present[n] = true;
				}
				break;
			case 2:
				if (present[n]) {
					pool_path(from, sizeof(from), n);
					ck_assert_int_eq(unlink(from), 0);
					present[n] = false;
				}
				break;
			default:
				/* A rename, over an existing name or not (hidden ones included). */
				if (present[n] && n != m) {
					pool_path(from, sizeof(from), n);
					pool_path(to, sizeof(to), m);
					ck_assert_int_eq(rename(from, to), 0);
					present[n] = false;
					present[m] = true;
				}
				break;
			}
			/* Anonymous names come and go too, some equal to files' names. */
			if (n % 10 != 9 && rand_r(&seed) % 8 == 0) {
				pool_name(name, sizeof(name), n);
				if (anon[n])
					dirindex_anon_remove(&P.srv, name);
				else
					ck_assert_int_eq(dirindex_anon_add(&P.srv, name), 0);
				anon[n] = !anon[n];
			}
		}
		check_index(present, anon);
	}
	for (int n = 0; n < POOL; n++) {
		if (anon[n]) {
			pool_name(name, sizeof(name), n);
			dirindex_anon_remove(&P.srv, name);
		}
	}
}
END_TEST

START_TEST(test_dirindex_rescans_after_the_event_queue_overflows)
{
	char path[TEST_PATH_MAX + 64];
	long queued = 16384;
	FILE *f;
	int n;

	f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
	if (f) {
		if (fscanf(f, "%ld", &queued) != 1)
			queued = 16384;
		fclose(f);
	}
	if (queued > 100000)
		return;
	n = (int)queued + 500;
	/* The loop does not run meanwhile: nothing reads the events, and the queue overflows. */
	for (int i = 0; i < n; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/o-%06d", P.data, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	dirindex_sync(&P.srv);
	inproc_run(&P);
	dirindex_sync(&P.srv);
	ck_assert_uint_eq(dirindex_files(&P.srv), (uint64_t)n);
	ck_assert_str_eq(dirindex_next(&P.srv, NULL), "o-000000");
	{
		char last[32], before[32];

		snprintf(before, sizeof(before), "o-%06d", n - 2);
		snprintf(last, sizeof(last), "o-%06d", n - 1);
		ck_assert_str_eq(dirindex_next(&P.srv, before), last);
		ck_assert_ptr_null(dirindex_next(&P.srv, last));
	}
}
END_TEST

static Suite *dirindex_suite(void)
{
	Suite *s = suite_create("dirindex");
	TCase *tc = tcase_create("dirindex");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_dirindex_follows_random_changes_made_by_hand);
	tcase_add_test(tc, test_dirindex_rescans_after_the_event_queue_overflows);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(dirindex_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
