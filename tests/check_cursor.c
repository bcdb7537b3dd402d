/* SPDX-License-Identifier: MIT */
/*
 * Tests of stdio streams over a window (client/cursor.c, mmapd_region_fopen()) against a real
 * mmapd: text written with fprintf in one process is read with fscanf and getline in another;
 * the stream's bounds hold for reads, writes and seeks; writing modes are refused on read-only
 * regions and writes fail once the region is read-only; a stream outlives the region's close
 * safely; a stream of length 0 follows its window's growth.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"

static struct test_daemon dmn;

static void suite_setup(void)
{
	test_daemon_start(&dmn, NULL);
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

/* Opens name in mode (creating it with size bytes when size > 0). */
static struct mmapd_region *region_in(struct mmapd_client *c, const char *name,
                                      enum mmapd_mode mode, uint64_t size)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.flags = size ? MMAPD_OPEN_CREATE : 0, .mode = mode, .size = size);
	struct mmapd_region *region = NULL;

	ck_assert_msg(mmapd_region_open(c, name, &o, &region) == 0, "open %s: %s", name,
	              mmapd_last_message());
	return region;
}

/* In a child with its own connection: fprintf()s a few lines at window offset 100. */
static void write_text_in_child(void)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mmapd_client *c = NULL;
		struct mmapd_region *region;
		FILE *f;

		if (mmapd_connect(dmn.sock, "cursor-writer", &c) < 0)
			_exit(1);
		region = region_in(c, "text", MMAPD_MODE_RW, 0);
		if (mmapd_region_fopen(region, 100, 0, "w", &f) < 0)
			_exit(2);
		fprintf(f, "count %d\n", 42);
		fprintf(f, "name %s\n", "mmapd");
		fputs("a line without a number\n", f);
		fwrite("\x01\x02\x03", 1, 3, f);
		if (fclose(f) != 0)
			_exit(3);
		mmapd_region_close(region);
		mmapd_disconnect(c);
		_exit(0);
	}
	test_child_wait(pid, 20000);
}

START_TEST(test_cursor_text_written_by_one_process_is_read_by_another)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_cursor");
	struct mmapd_region *region = region_in(c, "text", MMAPD_MODE_RW, 4096);
	struct mmapd_region *ro;
	char word[16], *line = NULL, bytes[3];
	size_t cap = 0;
	int count = 0;
	FILE *f;

	write_text_in_child();
	/* A read-only region of the same file, read through a stream of its own. */
	ro = region_in(c, "text", MMAPD_MODE_RO, 0);
	ck_assert_int_eq(mmapd_region_fopen(ro, 100, 0, "r", &f), 0);
	ck_assert_int_eq(fscanf(f, "count %d\n", &count), 1);
	ck_assert_int_eq(count, 42);
	ck_assert_int_eq(fscanf(f, "name %15s\n", word), 1);
	ck_assert_str_eq(word, "mmapd");
	ck_assert_int_eq(getline(&line, &cap, f), 24);
	ck_assert_str_eq(line, "a line without a number\n");
	ck_assert_uint_eq(fread(bytes, 1, 3, f), 3);
	ck_assert_mem_eq(bytes, "\x01\x02\x03", 3);
	/* Back to the start: ftell and fseek speak stream offsets (window offset 100 is 0). */
	ck_assert_int_eq(ftell(f), (long)strlen("count 42\nname mmapd\n") + 24 + 3);
	ck_assert_int_eq(fseek(f, 6, SEEK_SET), 0);
	ck_assert_int_eq(fscanf(f, "%d", &count), 1);
	ck_assert_int_eq(count, 42);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_mem_eq((const char *)mmapd_region_data(region) + 100, "count 42\n", 9);
	free(line);
	mmapd_region_close(ro);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "text"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_cursor_never_reads_writes_or_seeks_past_its_bounds)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_cursor");
	struct mmapd_region *region = region_in(c, "bounds", MMAPD_MODE_RW, 4096);
	const unsigned char *d = mmapd_region_data(region);
	char buf[32];
	FILE *f;

	ck_assert_int_eq(mmapd_region_fopen(region, 100, 10, "r+", &f), 0);
	setvbuf(f, NULL, _IONBF, 0);
	/* Twenty bytes into ten: what fits is written, then ENOSPC; byte 110 stays. */
	errno = 0;
	ck_assert_uint_eq(fwrite("abcdefghijklmnopqrst", 1, 20, f), 10);
	ck_assert(ferror(f));
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_mem_eq(d + 100, "abcdefghij", 10);
	ck_assert_uint_eq(d[110], 0);
	clearerr(f);
	ck_assert_int_eq(fputc('x', f), EOF);
	ck_assert_int_eq(errno, ENOSPC);
	clearerr(f);
	/* Seeks: 0..10 only, from every origin. */
	ck_assert_int_eq(fseek(f, 11, SEEK_SET), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(fseek(f, -1, SEEK_SET), -1);
	ck_assert_int_eq(fseek(f, 1, SEEK_END), -1);
	ck_assert_int_eq(fseek(f, -11, SEEK_END), -1);
	ck_assert_int_eq(fseek(f, 10, SEEK_SET), 0);
	ck_assert_int_eq(fseek(f, 1, SEEK_CUR), -1);
	ck_assert_int_eq(fseek(f, -10, SEEK_CUR), 0);
	ck_assert_int_eq(ftell(f), 0);
	ck_assert_int_eq(fseek(f, -3, SEEK_END), 0);
	/* Reads stop at the end: three bytes, then end of file. */
	ck_assert_uint_eq(fread(buf, 1, sizeof(buf), f), 3);
	ck_assert_mem_eq(buf, "hij", 3);
	ck_assert(feof(f));
	ck_assert_int_eq(fclose(f), 0);

	/* Streams outside the window, or whose end overflows, are refused. */
	ck_assert_int_eq(mmapd_region_fopen(region, 4090, 7, "r", &f), -ERANGE);
	ck_assert_int_eq(mmapd_region_fopen(region, 4097, 0, "r", &f), -ERANGE);
	ck_assert_int_eq(mmapd_region_fopen(region, UINT64_MAX - 1, 4, "r", &f), -ERANGE);
	ck_assert_int_eq(mmapd_region_fopen(region, 8, UINT64_MAX - 4, "r", &f), -ERANGE);
	/* An empty stream at the end: end of file at once; nothing written. */
	ck_assert_int_eq(mmapd_region_fopen(region, 4096, 0, "r+", &f), 0);
	ck_assert_int_eq(fgetc(f), EOF);
	ck_assert(feof(f));
	ck_assert_int_eq(fputc('x', f), 'x');
	ck_assert_int_eq(fclose(f), EOF);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "bounds"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_cursor_modes_follow_the_region_mode)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_cursor");
	struct mmapd_region *rw = region_in(c, "modes", MMAPD_MODE_RW, 4096);
	struct mmapd_region *ro = region_in(c, "modes", MMAPD_MODE_RO, 0);
	static const char *const writing[] = { "w", "w+", "r+", "wb", "r+b", "rb+" };
	static const char *const bad[] = { "a", "a+", "rw", "x", "", "r++", "re" };
	FILE *f;

	for (size_t i = 0; i < sizeof(writing) / sizeof(writing[0]); i++)
		ck_assert_int_eq(mmapd_region_fopen(ro, 0, 0, writing[i], &f), -EACCES);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(mmapd_region_fopen(rw, 0, 0, bad[i], &f), -EINVAL);
	ck_assert_int_eq(mmapd_region_fopen(rw, 0, 0, NULL, &f), -EINVAL);
	ck_assert_int_eq(mmapd_region_fopen(rw, 0, 0, "r", NULL), -EINVAL);
	ck_assert_int_eq(mmapd_region_fopen(NULL, 0, 0, "r", &f), -EINVAL);

	/* A read stream refuses writes itself (stdio: EBADF). */
	ck_assert_int_eq(mmapd_region_fopen(ro, 0, 0, "rb", &f), 0);
	ck_assert_int_eq(fputc('x', f), EOF);
	ck_assert_int_eq(fclose(f), 0);

	/* A region made read-only under an open writing stream: its writes fail with EACCES. */
	ck_assert_int_eq(mmapd_region_fopen(rw, 0, 0, "w", &f), 0);
	ck_assert_int_ge(fputs("before", f), 0);
	ck_assert_int_eq(fflush(f), 0);
	ck_assert_int_eq(mmapd_region_set_mode(rw, MMAPD_MODE_RO), 0);
	ck_assert_int_ge(fputs("after", f), 0);
	ck_assert_int_eq(fflush(f), EOF);
	ck_assert_int_eq(errno, EACCES);
	/* The failed flush dropped stdio's buffer: nothing left for fclose() to write. */
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_mem_eq(mmapd_region_data(ro), "before\0", 7);
	mmapd_region_close(ro);
	mmapd_region_close(rw);
	ck_assert_int_eq(mmapd_delete(c, "modes"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_cursor_fails_cleanly_once_its_region_is_closed)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_cursor");
	struct mmapd_region *region = region_in(c, "closed", MMAPD_MODE_RW, 4096);
	FILE *r, *w;

	memcpy(mmapd_region_data(region), "hello", 5);
	ck_assert_int_eq(mmapd_region_fopen(region, 0, 0, "r", &r), 0);
	ck_assert_int_eq(mmapd_region_fopen(region, 0, 0, "w", &w), 0);
	/* Unbuffered: every fgetc() reads the window (a buffer would still hold its bytes). */
	setvbuf(r, NULL, _IONBF, 0);
	ck_assert_int_eq(fgetc(r), 'h');
	ck_assert_int_eq(fputc('j', w), 'j');
	mmapd_region_close(region);
	/* The struct lives on for the streams; the mapping does not. */
	ck_assert_int_eq(fseek(r, 0, SEEK_SET), -1);
	ck_assert_int_eq(errno, EBADF);
	errno = 0;
	ck_assert_int_eq(fgetc(r), EOF);
	ck_assert(ferror(r));
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(fclose(r), 0);
	/* The buffered 'j' has nowhere to go. */
	errno = 0;
	ck_assert_int_eq(fclose(w), EOF);
	ck_assert_int_eq(errno, EBADF);
	/* The streams held the client too: it is freed only now. */
	ck_assert_int_eq(mmapd_delete(c, "closed"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_cursor_of_length_zero_follows_the_window)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_cursor");
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE, .mode = MMAPD_MODE_RW, .size = 4096, .reserve = 65536);
	struct mmapd_region *region;
	FILE *f;

	ck_assert_int_eq(mmapd_region_open(c, "grow", &o, &region), 0);
	ck_assert_int_eq(mmapd_region_fopen(region, 96, 0, "r+", &f), 0);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	ck_assert_int_eq(ftell(f), 4000);
	ck_assert_int_eq(fseek(f, 4001, SEEK_SET), -1);
	ck_assert_int_eq(mmapd_resize(c, "grow", 8192, 0), 0);
	ck_assert_uint_eq(mmapd_region_length(region), 8192);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	ck_assert_int_eq(ftell(f), 8096);
	ck_assert_int_eq(fseek(f, -2, SEEK_END), 0);
	ck_assert_int_ge(fputs("ok", f), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_mem_eq((const char *)mmapd_region_data(region) + 8190, "ok", 2);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "grow"), 0);
	mmapd_disconnect(c);
}
END_TEST

static Suite *cursor_suite(void)
{
	Suite *s = suite_create("cursor");
	TCase *tc = tcase_create("cursor");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cursor_text_written_by_one_process_is_read_by_another);
	tcase_add_test(tc, test_cursor_never_reads_writes_or_seeks_past_its_bounds);
	tcase_add_test(tc, test_cursor_modes_follow_the_region_mode);
	tcase_add_test(tc, test_cursor_fails_cleanly_once_its_region_is_closed);
	tcase_add_test(tc, test_cursor_of_length_zero_follows_the_window);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(cursor_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
