/* SPDX-License-Identifier: MIT */
/*
 * Tests of libmmapd's persistent structures (client/pstruct.c, fstr.c, pvec.c, phash.c)
 * against a real mmapd, across real processes (forked children with their own connections):
 * a struct written by one process is read by another and after the daemon restarts; layouts
 * that do not match are refused, as are corrupt headers; a struct whose formatter was
 * killed while formatting is formatted again, but not while a formatter whose lock a daemon
 * restart dropped still lives; processes racing to format one struct end
 * with one format; fixed strings refuse what does not fit; a vector grows across
 * several resizes with its elements in place and is read back by another process; two
 * processes pushing under the lock end with exactly the sum; a hash map takes 10,000 entries
 * through several rebuilds and serves them to another process, with removals and
 * re-insertions through tombstones, and two processes putting under the lock lose nothing.
 * Struct writers write fields and strings another process reads and writes in turn, refuse
 * what does not fit, and refuse a journal another user could write (the forged-record attack,
 * as uid 65534); string maps keep their count and compact; an N-d array that does not fit is
 * refused before anything is written.
 *
 * One mmapd is shared by the test case (unchecked fixture), except for the tests that restart
 * their own; each test uses its own region names, and the checked fixture proves no descriptor
 * or child leaked.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"
#include "mmapd-persist.h"

static struct test_daemon dmn;

/* The struct the tests persist. */
struct config {
	_Atomic uint64_t counter;
	uint32_t port;
	MMAPD_FSTR(31) host;
};

#define CONFIG_LAYOUT MMAPD_LAYOUT(struct config, "test.config", 3)

/* A fixed string's value as a C string (through mmapd_fstr_copy(): which of its two buffers
 * holds it changes at each set), in a buffer reused by the next call. */
static const char *fstr_str(const struct mmapd_fstr *s, size_t capacity)
{
	static char buf[256];

	return mmapd_fstr_copy(s, capacity, buf, sizeof(buf)) < 0 ? "(unreadable)" : buf;
}
#define FSTR_STR(m) fstr_str(MMAPD_FSTR_ARGS(m))

static void suite_setup(void)
{
	test_daemon_start(&dmn, NULL);
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

static struct mmapd_region *region_on(struct mmapd_client *c, const char *name, uint64_t size)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.flags = size ? MMAPD_OPEN_CREATE : 0, .mode = MMAPD_MODE_RW, .size = size);
	struct mmapd_region *region = NULL;
	int r = mmapd_region_open(c, name, &o, &region);

	ck_assert_msg(r == 0, "open %s: %s", name, mmapd_last_message());
	return region;
}

static void *pstruct_ok(struct mmapd_region *region, uint64_t off,
                        const struct mmapd_layout *layout, unsigned flags)
{
	void *p = NULL;
	int r = mmapd_pstruct_open(region, off, layout, flags, &p);

	ck_assert_msg(r == 0, "pstruct_open: %d %s", r, mmapd_last_message());
	ck_assert_ptr_nonnull(p);
	return p;
}

static void pstruct_fails(struct mmapd_region *region, uint64_t off,
                          const struct mmapd_layout *layout, unsigned flags, int err,
                          const char *says)
{
	void *p = NULL;
	int r = mmapd_pstruct_open(region, off, layout, flags, &p);

	ck_assert_msg(r == err, "pstruct_open: %d (%s), expected %d", r, mmapd_last_message(),
	              err);
	ck_assert_ptr_null(p);
	if (says)
		ck_assert_msg(strstr(mmapd_last_message(), says), "message '%s' lacks '%s'",
		              mmapd_last_message(), says);
}

/* A forked child taking longer than this is stuck (it is killed and the test fails). */
#define CHILD_WAIT_MS 60000

/* Runs fn(0) .. fn(n - 1) in n forked processes at once; asserts each returned 0. */
static void children_run(int n, int (*fn)(uint64_t who))
{
	pid_t *pids = calloc((size_t)n, sizeof(*pids));

	ck_assert_ptr_nonnull(pids);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0)
			_exit(fn((uint64_t)i));
	}
	for (int i = 0; i < n; i++)
		test_child_wait(pids[i], CHILD_WAIT_MS);
	free(pids);
}

/* ---- persistent structs ---- */

/* In another process: reads what the test wrote, then changes it. */
static int config_child(const char *sock)
{
	struct mmapd_client *c = NULL;
	struct mmapd_region *region = NULL;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_layout layout = CONFIG_LAYOUT;
	struct config *cfg;
	void *p;
	int ok;

	if (mmapd_connect(sock, "config-child", &c) < 0 ||
	    mmapd_region_open(c, "config", &o, &region) < 0 ||
	    mmapd_pstruct_open(region, 128, &layout, 0, &p) < 0)
		return 1;
	cfg = p;
	ok = cfg->port == 8080 && atomic_load(&cfg->counter) == 1 &&
	     mmapd_fstr_cmp((struct mmapd_fstr *)&cfg->host, 31, "example.org", 11) == 0 &&
	     strcmp(FSTR_STR(cfg->host), "example.org") == 0;
	atomic_fetch_add(&cfg->counter, 1);
	cfg->port = 9090;
	ok = ok && mmapd_fstr_set_cstr(MMAPD_FSTR_ARGS(cfg->host), "mmapd.test") == 0;
	mmapd_region_close(region);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

START_TEST(test_persist_struct_written_by_one_process_is_read_by_another_and_after_a_restart)
{
	struct test_daemon d;
	struct mmapd_layout layout = CONFIG_LAYOUT;
	struct mmapd_client *c;
	struct mmapd_region *region;
	struct config *cfg;
	pid_t pid;

	test_daemon_start(&d, NULL);
	c = test_client_connect(&d, "check_persist");
	region = region_on(c, "config", 4096);
	cfg = pstruct_ok(region, 128, &layout, MMAPD_PSTRUCT_INIT);
	ck_assert_ptr_eq(cfg, (uint8_t *)mmapd_region_data(region) + 128 + MMAPD_PSTRUCT_HEADER);
	ck_assert_uint_eq(mmapd_pstruct_footprint(&layout), MMAPD_PSTRUCT_HEADER + sizeof(*cfg));
	ck_assert_uint_eq(cfg->port, 0);
	cfg->port = 8080;
	atomic_store(&cfg->counter, 1);
	ck_assert_int_eq(mmapd_fstr_set_cstr(MMAPD_FSTR_ARGS(cfg->host), "example.org"), 0);
	ck_assert_int_eq(mmapd_fstr_set_cstr(MMAPD_FSTR_ARGS(cfg->host),
	                                     "a-host-name-of-32-bytes-is-long!"), -ENAMETOOLONG);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(config_child(d.sock));
	test_child_wait(pid, CHILD_WAIT_MS);
	ck_assert_uint_eq(cfg->port, 9090);
	ck_assert_uint_eq(atomic_load(&cfg->counter), 2);
	ck_assert_str_eq(FSTR_STR(cfg->host), "mmapd.test");
	ck_assert_int_eq(mmapd_flush(c, "config", 0, 0), 0);
	mmapd_region_close(region);
	mmapd_disconnect(c);

	test_daemon_kill(&d);
	test_daemon_restart(&d);
	c = test_client_connect(&d, "check_persist");
	region = region_on(c, "config", 0);
	/* Formatting again must not happen: INIT only formats an empty header. */
	cfg = pstruct_ok(region, 128, &layout, MMAPD_PSTRUCT_INIT);
	ck_assert_uint_eq(cfg->port, 9090);
	ck_assert_uint_eq(atomic_load(&cfg->counter), 2);
	ck_assert_str_eq(FSTR_STR(cfg->host), "mmapd.test");
	mmapd_region_close(region);
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_persist_struct_of_another_layout_or_an_empty_header_is_refused)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_region *region = region_on(c, "layouts", 4096);
	struct mmapd_layout good = CONFIG_LAYOUT, other = good;
	void *p = NULL;

	pstruct_fails(region, 0, &good, 0, -ENODATA, "MMAPD_PSTRUCT_INIT");
	pstruct_ok(region, 0, &good, MMAPD_PSTRUCT_INIT);
	other.type_name = "test.other";
	pstruct_fails(region, 0, &other, MMAPD_PSTRUCT_INIT, -EPROTO, "holds a 'test.config'");
	other = good;
	other.version = 4;
	pstruct_fails(region, 0, &other, 0, -EPROTO, "version 3");
	other = good;
	other.size += 8;
	pstruct_fails(region, 0, &other, 0, -EPROTO, "size");
	other = good;
	other.align = 16;
	pstruct_fails(region, 0, &other, 0, -EPROTO, "alignment");
	/* Invalid requests. */
	other = good;
	other.align = 12;
	pstruct_fails(region, 0, &other, 0, -EINVAL, NULL);
	pstruct_fails(region, 4, &good, 0, -EINVAL, "aligned");
	pstruct_fails(region, 4096 - 64, &good, MMAPD_PSTRUCT_INIT, -ERANGE, NULL);
	ck_assert_int_eq(mmapd_pstruct_open(region, 0, &good, 0x80, &p), -EINVAL);
	/* Non-zero bytes behind an empty state are not formatted over. */
	memset((uint8_t *)mmapd_region_data(region) + 1024 + 8, 0xab, 4);
	pstruct_fails(region, 1024, &good, MMAPD_PSTRUCT_INIT, -EBADMSG, "not formatting");
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "layouts"), 0);
	mmapd_disconnect(c);
}
END_TEST

/*
 * In another process: does what a formatter does up to the middle of formatting (the
 * header lock, state 1, some of the body; with own, its process id where a formatter
 * records it, the header's second word), says so on fd and waits to be killed.
 */
static void formatter_stopped_child(const char *sock, uint64_t off, bool own, int fd)
{
	struct mmapd_client *c = NULL;
	struct mmapd_region *region = NULL;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	uint64_t lock;
	uint8_t *h;

	if (mmapd_connect(sock, "formatter-child", &c) < 0 ||
	    mmapd_region_open(c, "dead-formatter", &o, &region) < 0 ||
	    mmapd_lock(c, "dead-formatter", off, MMAPD_PSTRUCT_HEADER, MMAPD_LOCK_EXCLUSIVE, -1,
	               &lock) < 0)
		_exit(1);
	h = (uint8_t *)mmapd_region_data(region) + off;
	if (own)
		atomic_store((_Atomic uint32_t *)(h + 4), (uint32_t)getpid());
	atomic_store((_Atomic uint32_t *)h, 1);
	memset(h + 8, 0x5a, 16);
	((struct config *)(h + MMAPD_PSTRUCT_HEADER))->port = 1234;
	if (write(fd, "x", 1) != 1)
		_exit(2);
	for (;;)
		pause();
}

/* Starts formatter_stopped_child and returns its pid once it stopped mid-formatting. */
static pid_t formatter_stopped_start(const char *sock, uint64_t off, bool own)
{
	int fds[2];
	char byte;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		formatter_stopped_child(sock, off, own, fds[1]);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &byte, 1), 1);
	close(fds[0]);
	return pid;
}

/* SIGKILLs the child formatter_stopped_start() started and reaps it. */
static void formatter_stopped_kill(pid_t pid)
{
	int status;

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
}

START_TEST(test_persist_struct_whose_formatter_died_is_formatted_again)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_region *region = region_on(c, "dead-formatter", 4096);
	struct mmapd_layout layout = CONFIG_LAYOUT;
	struct config *cfg;
	pid_t pid;

	pid = formatter_stopped_start(dmn.sock, 256, false);
	formatter_stopped_kill(pid);
	/* Its lock died with it: the state it left says the formatter died. */
	pstruct_fails(region, 256, &layout, 0, -ENODATA, "died");
	cfg = pstruct_ok(region, 256, &layout, MMAPD_PSTRUCT_INIT);
	ck_assert_uint_eq(cfg->port, 0);
	ck_assert_uint_eq(atomic_load(&cfg->counter), 0);
	cfg->port = 80;
	/* Formatted once: later opens find it ready, body and all. */
	cfg = pstruct_ok(region, 256, &layout, 0);
	ck_assert_uint_eq(cfg->port, 80);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "dead-formatter"), 0);
	mmapd_disconnect(c);
}
END_TEST

/*
 * A daemon killed and started again drops every lock, the live formatter's too: its state
 * and its process id still say it formats, so nobody formats under its feet until it dies.
 */
START_TEST(test_persist_struct_formatter_alive_across_a_daemon_restart_is_not_formatted_over)
{
	struct test_daemon d;
	struct mmapd_layout layout = CONFIG_LAYOUT;
	struct mmapd_client *c;
	struct mmapd_region *region;
	struct config *cfg;
	uint8_t *h;
	pid_t pid;

	test_daemon_start(&d, NULL);
	c = test_client_connect(&d, "check_persist");
	region = region_on(c, "dead-formatter", 4096);
	h = (uint8_t *)mmapd_region_data(region) + 256;
	pid = formatter_stopped_start(d.sock, 256, true);
	test_daemon_kill(&d);
	test_daemon_restart(&d);
	/* The lock is free now, but its holder lives: wait, then -EAGAIN, body untouched. */
	pstruct_fails(region, 256, &layout, MMAPD_PSTRUCT_INIT, -EAGAIN, "being formatted");
	pstruct_fails(region, 256, &layout, 0, -EAGAIN, "being formatted");
	ck_assert_uint_eq(atomic_load((_Atomic uint32_t *)h), 1);
	ck_assert_uint_eq(((struct config *)(h + MMAPD_PSTRUCT_HEADER))->port, 1234);
	formatter_stopped_kill(pid);
	/* Its process is gone: the next open formats. */
	pstruct_fails(region, 256, &layout, 0, -ENODATA, "died");
	cfg = pstruct_ok(region, 256, &layout, MMAPD_PSTRUCT_INIT);
	ck_assert_uint_eq(cfg->port, 0);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "dead-formatter"), 0);
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_persist_struct_with_a_corrupt_header_is_refused)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_region *region = region_on(c, "corrupt", 4096);
	struct mmapd_layout good = CONFIG_LAYOUT;
	uint8_t *h = mmapd_region_data(region);

	pstruct_ok(region, 0, &good, MMAPD_PSTRUCT_INIT);
	h[40] ^= 1;   /* a byte of the stored type name: the checksum no longer matches */
	pstruct_fails(region, 0, &good, MMAPD_PSTRUCT_INIT, -EBADMSG, "corrupt");
	h[40] ^= 1;
	pstruct_ok(region, 0, &good, 0);
	h[0] = 7;     /* the state word */
	pstruct_fails(region, 0, &good, 0, -EBADMSG, "state 7");
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "corrupt"), 0);
	mmapd_disconnect(c);
}
END_TEST

#define RACERS 6
#define RACE_ADDS 1000

/*
 * Big enough that formatting it (zeroing) takes a while: a wide window for a second format,
 * which would zero the counter (last) after the first formatter counted.
 */
struct big {
	uint8_t bulk[16u << 20];
	_Atomic uint64_t counter;
};

#define BIG_LAYOUT MMAPD_LAYOUT(struct big, "test.big", 1)

/* In another process: waits for the start signal, opens with INIT, counts up. */
static int race_child(int start_fd)
{
	struct mmapd_client *c = NULL;
	struct mmapd_region *region = NULL;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_layout layout = BIG_LAYOUT;
	struct big *big;
	void *p;
	char b;

	if (mmapd_connect(dmn.sock, "racer", &c) < 0 ||
	    mmapd_region_open(c, "race", &o, &region) < 0 || read(start_fd, &b, 1) != 0 ||
	    mmapd_pstruct_open(region, 0, &layout, MMAPD_PSTRUCT_INIT, &p) < 0)
		return 1;
	big = p;
	for (int i = 0; i < RACE_ADDS; i++)
		atomic_fetch_add(&big->counter, 1);
	mmapd_region_close(region);
	mmapd_disconnect(c);
	return 0;
}

/*
 * Another process rewriting a ready header (here its body offset, flipped between the right
 * value and one 2 GiB away) gets opens refused as corrupt, never a pointer outside the
 * mapping: the body is placed where the checked layout says, not where the header says
 * after the check.
 */
START_TEST(test_persist_struct_body_stays_put_while_another_process_rewrites_the_header)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_region *region = region_on(c, "toctou", 4096);
	struct mmapd_layout good = CONFIG_LAYOUT;
	uint8_t *h = mmapd_region_data(region);
	void *p = pstruct_ok(region, 0, &good, MMAPD_PSTRUCT_INIT), *q;
	/* The header's body_off: after state, magic, format, checksum, name_hash, version,
	 * size and align. */
	_Atomic uint32_t *body_off = (_Atomic uint32_t *)(void *)(h + 36);
	uint32_t right = atomic_load(body_off);
	pid_t pid;
	int r, status;

	ck_assert_ptr_eq(p, h + right);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (;;) {
			atomic_store_explicit(body_off, 0x7ffff000u, memory_order_relaxed);
			atomic_store_explicit(body_off, right, memory_order_relaxed);
		}
	}
	for (int i = 0; i < 1000000; i++) {
		q = NULL;
		r = mmapd_pstruct_open(region, 0, &good, 0, &q);
		ck_assert_msg(r == 0 || r == -EBADMSG, "open %d: %d %s", i, r, mmapd_last_message());
		ck_assert_msg(r < 0 || q == p, "open %d placed the body at offset %td", i,
		              (uint8_t *)q - h);
	}
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	atomic_store(body_off, right);
	pstruct_ok(region, 0, &good, 0);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "toctou"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_persist_processes_racing_to_format_one_struct_end_with_one_format)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_region *region = region_on(c, "race", sizeof(struct big) + 4096);
	struct mmapd_layout layout = BIG_LAYOUT;
	struct big *big;
	uint64_t count;
	pid_t pids[RACERS];
	int start[2];

	ck_assert_int_eq(pipe(start), 0);
	for (int i = 0; i < RACERS; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			close(start[1]);
			_exit(race_child(start[0]));
		}
	}
	close(start[0]);
	/* Every child is blocked reading the pipe: closing it starts them together. */
	close(start[1]);
	for (int i = 0; i < RACERS; i++)
		test_child_wait(pids[i], CHILD_WAIT_MS);
	/* A second format would have zeroed counts made after the first. */
	big = pstruct_ok(region, 0, &layout, 0);
	count = atomic_load(&big->counter);
	ck_assert_uint_eq(count, RACERS * RACE_ADDS);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "race"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* ---- fixed strings ---- */

START_TEST(test_persist_fixed_string_refuses_overflow_and_cuts_only_when_asked)
{
	MMAPD_FSTR(8) buf = { 0 };
	struct mmapd_fstr *s = (struct mmapd_fstr *)&buf;
	char out[16];

	ck_assert_int_eq(mmapd_fstr_len(s, 8), 0);
	ck_assert_str_eq(fstr_str(s, 8), "");
	ck_assert_int_eq(mmapd_fstr_set_cstr(s, 8, "12345678"), 0);
	ck_assert_int_eq(mmapd_fstr_len(s, 8), 8);
	ck_assert_int_eq(mmapd_fstr_set_cstr(s, 8, "123456789"), -ENAMETOOLONG);
	ck_assert_str_eq(fstr_str(s, 8), "12345678");
	/* "abcdefg" + U+00E9 (2 bytes): the 9th byte would cut the sequence in two. */
	ck_assert_int_eq(mmapd_fstr_set_trunc(s, 8, "abcdefg\xc3\xa9", 9), 1);
	ck_assert_str_eq(fstr_str(s, 8), "abcdefg");
	ck_assert_int_eq(mmapd_fstr_set_trunc(s, 8, "abc", 3), 0);
	ck_assert_int_eq(mmapd_fstr_copy(s, 8, out, sizeof(out)), 3);
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(mmapd_fstr_copy(s, 8, out, 3), -ERANGE);
	ck_assert_int_eq(mmapd_fstr_cmp(s, 8, "abc", 3), 0);
	ck_assert_int_lt(mmapd_fstr_cmp(s, 8, "abd", 3), 0);
	ck_assert_int_lt(mmapd_fstr_cmp(s, 8, "abcd", 4), 0);
	ck_assert_int_gt(mmapd_fstr_cmp(s, 8, "ab", 2), 0);
	ck_assert_int_eq(mmapd_fstr_set(s, 8, "a\0b", 3), 0);
	ck_assert_int_eq(mmapd_fstr_len(s, 8), 3);
	buf.word = (buf.word & ~0x7fffffffull) | 9;    /* the length bits above the capacity */
	ck_assert_int_eq(mmapd_fstr_len(s, 8), -EBADMSG);
	ck_assert_int_eq(mmapd_fstr_set(NULL, 8, "a", 1), -EINVAL);
	ck_assert_int_eq(mmapd_fstr_set(s, 8, NULL, 1), -EINVAL);
	/* The commit word must be aligned: a string at a misaligned address is refused. */
	ck_assert_int_eq(mmapd_fstr_set((struct mmapd_fstr *)((char *)s + 4), 4, "a", 1), -EINVAL);
	ck_assert_int_eq(mmapd_fstr_len((struct mmapd_fstr *)((char *)s + 4), 4), -EINVAL);
	ck_assert_int_eq(mmapd_fstr_set(s, 0x80000000u, "a", 1), -EINVAL);   /* above 2^31 - 1 */
}
END_TEST

START_TEST(test_persist_fixed_string_takes_only_utf8_unless_raw_and_cuts_between_code_points)
{
	MMAPD_FSTR(8) buf = { 0 };
	struct mmapd_fstr *s = (struct mmapd_fstr *)&buf;
	/* A stray continuation byte, an overlong "/", a surrogate, a code point above U+10FFFF,
	 * a sequence cut short. */
	static const char *bad[] = { "a\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	                             "ab\xe2\x82" };

	ck_assert_int_eq(mmapd_fstr_set_cstr(s, 8, "ok"), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(mmapd_fstr_set_cstr(s, 8, bad[i]), -EILSEQ);
		ck_assert_int_eq(mmapd_fstr_set_trunc(s, 8, bad[i], strlen(bad[i])), -EILSEQ);
		ck_assert_str_eq(fstr_str(s, 8), "ok");
	}
	ck_assert_int_eq(mmapd_fstr_set_raw(s, 8, "\xff\xfe", 2), 0);
	ck_assert_int_eq(mmapd_fstr_len(s, 8), 2);
	/* Euro signs (3 bytes each): 8 bytes hold two, and the cut falls before the third. */
	ck_assert_int_eq(mmapd_fstr_set_cstr(s, 8, "\xe2\x82\xac\xe2\x82\xac"), 0);
	ck_assert_int_eq(mmapd_fstr_set_trunc(s, 8, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9), 1);
	ck_assert_int_eq(mmapd_fstr_len(s, 8), 6);
	/* A 4-byte sequence cut anywhere inside leaves what precedes it. */
	ck_assert_int_eq(mmapd_fstr_set_trunc(s, 8, "abcdef\xf0\x9f\x98\x80", 10), 1);
	ck_assert_str_eq(fstr_str(s, 8), "abcdef");
}
END_TEST

/*
 * A string is 8 + 2 * (capacity + 1) bytes (rounded up to 8): the commit word and two buffers; a set writes the
 * idle buffer, so the string it replaces stays whole beside it until the word is stored.
 */
START_TEST(test_persist_fixed_string_has_two_buffers_and_a_set_leaves_the_old_one_whole)
{
	MMAPD_FSTR(8) buf = { 0 };
	struct mmapd_fstr *s = (struct mmapd_fstr *)&buf;

	ck_assert_uint_eq(sizeof(buf.bytes), 2 * 9);
	ck_assert_uint_eq(sizeof(buf), 32);     /* 8 + 18, rounded up to the word's alignment */
	ck_assert_int_eq(mmapd_fstr_set_cstr(s, 8, "first"), 0);
	ck_assert_int_eq(mmapd_fstr_set_cstr(s, 8, "second"), 0);
	ck_assert_str_eq(fstr_str(s, 8), "second");
	/* One buffer holds the string, the other the one before it. */
	ck_assert(strcmp(buf.bytes[0], "first") == 0 || strcmp(buf.bytes[1], "first") == 0);
	ck_assert(strcmp(buf.bytes[0], "second") == 0 || strcmp(buf.bytes[1], "second") == 0);
	ck_assert_int_eq(mmapd_fstr_set_cstr(s, 8, "123456789"), -ENAMETOOLONG);
	ck_assert_str_eq(fstr_str(s, 8), "second");
}
END_TEST

/*
 * A process setting a string to one of two long values over and over, another reading it
 * (copy) as fast as it can: every read is one of the two, never a mix or a length of one with
 * the bytes of the other.
 */
#define RACE_CAP 4000u
#define RACE_MS 1500
struct race_page {
	MMAPD_FSTR(RACE_CAP) s;
	_Atomic int stop;
	_Atomic uint64_t sets;
};

START_TEST(test_persist_fixed_string_read_while_another_process_sets_it_is_never_torn)
{
	static char a[RACE_CAP], b[RACE_CAP / 2], out[RACE_CAP + 1];
	struct race_page *pg = mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE,
	                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t reads = 0, seen_a = 0, seen_b = 0, torn = 0;
	int64_t end;
	pid_t pid;

	ck_assert_ptr_ne(pg, MAP_FAILED);
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	ck_assert_int_eq(mmapd_fstr_set(MMAPD_FSTR_ARGS(pg->s), a, sizeof(a)), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (uint64_t i = 0; !atomic_load(&pg->stop); i++) {
			if (mmapd_fstr_set(MMAPD_FSTR_ARGS(pg->s), i & 1 ? b : a,
			                   i & 1 ? sizeof(b) : sizeof(a)) != 0)
				_exit(2);
			atomic_fetch_add(&pg->sets, 1);
		}
		_exit(0);
	}
	end = test_now_ms() + RACE_MS;
	while (test_now_ms() < end || seen_a == 0 || seen_b == 0) {
		for (int i = 0; i < 1000; i++, reads++) {
			int64_t n = mmapd_fstr_copy(MMAPD_FSTR_ARGS(pg->s), out, sizeof(out));

			if (n == sizeof(a) && memcmp(out, a, sizeof(a)) == 0)
				seen_a++;
			else if (n == sizeof(b) && memcmp(out, b, sizeof(b)) == 0)
				seen_b++;
			else
				torn++;
		}
		if (test_now_ms() > end + 30000)
			break;
	}
	atomic_store(&pg->stop, 1);
	test_child_wait(pid, CHILD_WAIT_MS);
	fprintf(stderr, "fixed string race: %llu reads (%llu of the long string, %llu of the "
	        "short, %llu torn) during %llu sets\n", (unsigned long long)reads,
	        (unsigned long long)seen_a, (unsigned long long)seen_b, (unsigned long long)torn,
	        (unsigned long long)atomic_load(&pg->sets));
	ck_assert_msg(seen_a > 0 && seen_b > 0, "the reader never saw the writer's sets");
	ck_assert_msg(torn == 0, "%llu of %llu reads were torn", (unsigned long long)torn,
	              (unsigned long long)reads);
	munmap(pg, sizeof(*pg));
}
END_TEST

/* ---- vectors ---- */

#define VEC_N 100000u

static struct mmapd_pvec *pvec_ok(struct mmapd_client *c, const char *name, size_t elem,
                                  unsigned flags)
{
	struct mmapd_pvec *vec = NULL;
	int r = mmapd_pvec_open(c, name, elem, flags, &vec);

	ck_assert_msg(r == 0, "pvec_open %s: %d %s", name, r, mmapd_last_message());
	return vec;
}

/* In another process: pushes elements 1 .. VEC_N-1 (value 3i), checking element 0 stays. */
static int vec_pusher(void)
{
	struct mmapd_client *c = NULL;
	struct mmapd_pvec *vec = NULL;
	void *first, *again;
	int ok = 1;

	if (mmapd_connect(dmn.sock, "pusher", &c) < 0 ||
	    mmapd_pvec_open(c, "vec", sizeof(uint64_t), 0, &vec) < 0 ||
	    mmapd_pvec_at(vec, 0, &first) < 0)
		return 1;
	for (uint64_t i = 1; i < VEC_N && ok; i++) {
		uint64_t v = 3 * i;

		ok = mmapd_pvec_push(vec, &v) == 0;
	}
	ok = ok && mmapd_pvec_at(vec, 0, &again) == 0 && again == first;
	mmapd_pvec_close(vec);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

START_TEST(test_persist_vector_grows_in_place_and_another_process_reads_it_back)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_pvec *vec = pvec_ok(c, "vec", sizeof(uint64_t), MMAPD_PERSIST_CREATE);
	struct mmapd_region *region = mmapd_pvec_region(vec);
	uint64_t v = 0, gen0 = mmapd_region_generation(region);
	void *first, *again;
	pid_t pid;

	ck_assert_uint_eq(mmapd_pvec_elem_size(vec), sizeof(uint64_t));
	ck_assert_int_eq(mmapd_pvec_push(vec, &v), 0);
	ck_assert_int_eq(mmapd_pvec_at(vec, 0, &first), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(vec_pusher());
	test_child_wait(pid, CHILD_WAIT_MS);

	/* Our mapping catches up with the child's growth on first need. */
	ck_assert_uint_eq(mmapd_pvec_len(vec), VEC_N);
	ck_assert_int_eq(mmapd_pvec_get(vec, VEC_N - 1, &v), 0);
	ck_assert_uint_eq(v, 3ull * (VEC_N - 1));
	for (uint64_t i = 0; i < VEC_N; i++) {
		ck_assert_int_eq(mmapd_pvec_get(vec, i, &v), 0);
		ck_assert_uint_eq(v, 3 * i);
	}
	ck_assert_int_eq(mmapd_pvec_at(vec, 0, &again), 0);
	ck_assert_ptr_eq(again, first);
	/* 800 KB in 64 KiB segments, doubling: several resizes. */
	ck_assert_uint_ge(mmapd_region_generation(region) - gen0, 3);
	ck_assert_uint_ge(mmapd_pvec_capacity(vec), VEC_N);
	ck_assert_uint_eq(mmapd_pvec_capacity(vec) % (65536 / sizeof(uint64_t)), 0);
	ck_assert_int_eq(mmapd_flush(c, "vec", 0, 0), 0);
	mmapd_pvec_close(vec);
	ck_assert_int_eq(mmapd_delete(c, "vec"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_persist_vector_bounds_sizes_and_lock_errors)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_pvec *vec = pvec_ok(c, "bounds", 12, MMAPD_PERSIST_CREATE);
	struct mmapd_pvec *other = NULL;
	char e[12] = "elem-0", out[12];
	void *p = NULL;

	ck_assert_int_eq(mmapd_pvec_pop(vec, out), -ERANGE);
	ck_assert_int_eq(mmapd_pvec_get(vec, 0, out), -ERANGE);
	ck_assert_int_eq(mmapd_pvec_set(vec, 0, e), -ERANGE);
	ck_assert_int_eq(mmapd_pvec_push(vec, e), 0);
	e[5] = '1';
	ck_assert_int_eq(mmapd_pvec_push(vec, e), 0);
	ck_assert_int_eq(mmapd_pvec_get(vec, 2, out), -ERANGE);
	ck_assert_int_eq(mmapd_pvec_at(vec, 2, &p), -ERANGE);
	ck_assert_ptr_null(p);
	e[5] = '9';
	ck_assert_int_eq(mmapd_pvec_set(vec, 0, e), 0);
	ck_assert_int_eq(mmapd_pvec_get(vec, 0, out), 0);
	ck_assert_str_eq(out, "elem-9");
	ck_assert_int_eq(mmapd_pvec_pop(vec, out), 0);
	ck_assert_str_eq(out, "elem-1");
	ck_assert_uint_eq(mmapd_pvec_len(vec), 1);
	ck_assert_int_eq(mmapd_pvec_clear(vec), 0);
	ck_assert_uint_eq(mmapd_pvec_len(vec), 0);
	ck_assert_int_eq(mmapd_pvec_reserve(vec, 20000), 0);
	ck_assert_uint_ge(mmapd_pvec_capacity(vec), 20000);
	ck_assert_int_eq(mmapd_pvec_reserve(vec, 1ull << 40), -EFBIG);

	/* Another element size, another kind of structure, bad arguments. */
	ck_assert_int_eq(mmapd_pvec_open(c, "bounds", 8, 0, &other), -EPROTO);
	ck_assert_ptr_null(other);
	ck_assert_int_eq(mmapd_pvec_open(c, "bounds", 0, 0, &other), -EINVAL);
	ck_assert_int_eq(mmapd_pvec_open(c, "bounds", 12, 0x40, &other), -EINVAL);
	ck_assert_int_eq(mmapd_pvec_open(c, "no-such-vec", 12, 0, &other), -ENOENT);

	ck_assert_int_eq(mmapd_pvec_unlock(vec), -ENOLCK);
	ck_assert_int_eq(mmapd_pvec_lock(vec, 1000), 0);
	ck_assert_int_eq(mmapd_pvec_lock(vec, 1000), -EALREADY);
	ck_assert_int_eq(mmapd_pvec_unlock(vec), 0);
	ck_assert_int_eq(mmapd_pvec_lock(vec, 1000), 0);
	/* Closing releases a held lock. */
	mmapd_pvec_close(vec);
	vec = pvec_ok(c, "bounds", 12, 0);
	ck_assert_int_eq(mmapd_pvec_lock(vec, 0), 0);
	ck_assert_int_eq(mmapd_pvec_unlock(vec), 0);
	mmapd_pvec_close(vec);
	ck_assert_int_eq(mmapd_delete(c, "bounds"), 0);
	mmapd_disconnect(c);
}
END_TEST

#define LOCKED_PUSHERS 3
#define LOCKED_PUSHES 3000
#define LOCKED_BATCH 10

/* In another process: pushes (who << 32 | i) in batches, each under the lock. */
static int locked_pusher(uint64_t who)
{
	struct mmapd_client *c = NULL;
	struct mmapd_pvec *vec = NULL;
	int ok;

	if (mmapd_connect(dmn.sock, "locked-pusher", &c) < 0 ||
	    mmapd_pvec_open(c, "shared-vec", sizeof(uint64_t), MMAPD_PERSIST_CREATE, &vec) < 0)
		return 1;
	ok = 1;
	for (uint64_t i = 0; i < LOCKED_PUSHES && ok; i += LOCKED_BATCH) {
		ok = mmapd_pvec_lock(vec, -1) == 0;
		for (uint64_t k = i; k < i + LOCKED_BATCH && ok; k++) {
			uint64_t v = who << 32 | k;

			ok = mmapd_pvec_push(vec, &v) == 0;
		}
		ok = mmapd_pvec_unlock(vec) == 0 && ok;
	}
	mmapd_pvec_close(vec);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

START_TEST(test_persist_processes_pushing_under_the_lock_end_with_every_element)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_pvec *vec;
	uint64_t next[LOCKED_PUSHERS] = { 0 }, v;

	children_run(LOCKED_PUSHERS, locked_pusher);
	vec = pvec_ok(c, "shared-vec", sizeof(uint64_t), 0);
	ck_assert_uint_eq(mmapd_pvec_len(vec), (uint64_t)LOCKED_PUSHERS * LOCKED_PUSHES);
	/* Each pusher's elements are all there, in its order. */
	for (uint64_t i = 0; i < mmapd_pvec_len(vec); i++) {
		ck_assert_int_eq(mmapd_pvec_get(vec, i, &v), 0);
		ck_assert_uint_lt(v >> 32, LOCKED_PUSHERS);
		ck_assert_uint_eq(v & 0xffffffffu, next[v >> 32]);
		next[v >> 32]++;
	}
	mmapd_pvec_close(vec);
	ck_assert_int_eq(mmapd_delete(c, "shared-vec"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* ---- hash maps ---- */

#define MAP_N 10000u

struct pair {
	uint64_t a, b;
};

static struct mmapd_phash *phash_ok(struct mmapd_client *c, const char *name, unsigned flags)
{
	struct mmapd_phash *map = NULL;
	int r = mmapd_phash_open(c, name, sizeof(uint64_t), sizeof(struct pair), flags, &map);

	ck_assert_msg(r == 0, "phash_open %s: %d %s", name, r, mmapd_last_message());
	return map;
}

/* In another process: finds every key, then removes the even ones. */
static int map_child(void)
{
	struct mmapd_client *c = NULL;
	struct mmapd_phash *map = NULL;
	struct pair v;
	int ok = 1;

	if (mmapd_connect(dmn.sock, "map-child", &c) < 0 ||
	    mmapd_phash_open(c, "map", sizeof(uint64_t), sizeof(v), 0, &map) < 0 ||
	    mmapd_phash_lock(map, -1) < 0)
		return 1;
	for (uint64_t k = 0; k < MAP_N && ok; k++)
		ok = mmapd_phash_get(map, &k, &v) == 0 && v.a == k * 7 && v.b == ~k;
	for (uint64_t k = 0; k < MAP_N && ok; k += 2)
		ok = mmapd_phash_remove(map, &k) == 0;
	ok = ok && mmapd_phash_count(map) == MAP_N / 2;
	ok = mmapd_phash_unlock(map) == 0 && ok;
	mmapd_phash_close(map);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

static int count_entries(const void *key, void *val, void *userdata)
{
	uint64_t k;
	struct pair v;

	memcpy(&k, key, sizeof(k));
	memcpy(&v, val, sizeof(v));
	if (v.b != ~k)
		return -1;
	(*(uint64_t *)userdata)++;
	return 0;
}

static int stop_at_first(const void *key, void *val, void *userdata)
{
	(void)key;
	(void)val;
	(void)userdata;
	return 42;
}

START_TEST(test_persist_hash_map_takes_ten_thousand_entries_and_serves_another_process)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_phash *map = phash_ok(c, "map", MMAPD_PERSIST_CREATE);
	struct mmapd_region *region = mmapd_phash_region(map);
	uint64_t gen0 = mmapd_region_generation(region), seen = 0;
	struct pair v;
	pid_t pid;

	ck_assert_uint_eq(mmapd_phash_count(map), 0);
	for (uint64_t k = 0; k < MAP_N; k++) {
		v = (struct pair){ k * 7, ~k };
		ck_assert_int_eq(mmapd_phash_put(map, &k, &v), 0);
	}
	ck_assert_uint_eq(mmapd_phash_count(map), MAP_N);
	ck_assert_uint_ge(mmapd_region_generation(region) - gen0, 3);
	v = (struct pair){ 0, ~0ull };
	{
		uint64_t k = 0;

		ck_assert_int_eq(mmapd_phash_put(map, &k, &v), 1);
		v.a = 0;
		ck_assert_int_eq(mmapd_phash_put(map, &k, &v), 1);
	}
	ck_assert_uint_eq(mmapd_phash_count(map), MAP_N);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(map_child());
	test_child_wait(pid, CHILD_WAIT_MS);

	ck_assert_uint_eq(mmapd_phash_count(map), MAP_N / 2);
	for (uint64_t k = 0; k < MAP_N; k++) {
		int r = mmapd_phash_get(map, &k, &v);

		if (k % 2 == 0) {
			ck_assert_int_eq(r, -ENOENT);
		} else {
			ck_assert_int_eq(r, 0);
			ck_assert_uint_eq(v.a, k * 7);
		}
	}
	/* Re-insert half of the removed keys, through their tombstones. */
	for (uint64_t k = 0; k < MAP_N; k += 4) {
		v = (struct pair){ k * 7, ~k };
		ck_assert_int_eq(mmapd_phash_put(map, &k, &v), 0);
	}
	ck_assert_uint_eq(mmapd_phash_count(map), MAP_N / 2 + MAP_N / 4);
	ck_assert_int_eq(mmapd_phash_foreach(map, count_entries, &seen), 0);
	ck_assert_uint_eq(seen, MAP_N / 2 + MAP_N / 4);
	ck_assert_int_eq(mmapd_phash_foreach(map, stop_at_first, NULL), 42);
	{
		uint64_t k = 2;

		ck_assert_int_eq(mmapd_phash_remove(map, &k), -ENOENT);
		k = 4;
		ck_assert_int_eq(mmapd_phash_remove(map, &k), 0);
		ck_assert_int_eq(mmapd_phash_get(map, &k, NULL), -ENOENT);
	}
	mmapd_phash_close(map);
	ck_assert_int_eq(mmapd_delete(c, "map"), 0);
	mmapd_disconnect(c);
}
END_TEST

#define MAP_WRITERS 2
#define MAP_WRITES 3000

/* In another process: puts keys who*MAP_WRITES + i, each under the lock. */
static int map_writer(uint64_t who)
{
	struct mmapd_client *c = NULL;
	struct mmapd_phash *map = NULL;
	int ok = 1;

	if (mmapd_connect(dmn.sock, "map-writer", &c) < 0 ||
	    mmapd_phash_open(c, "shared-map", sizeof(uint64_t), sizeof(struct pair),
	                     MMAPD_PERSIST_CREATE, &map) < 0)
		return 1;
	for (uint64_t i = 0; i < MAP_WRITES && ok; i++) {
		uint64_t k = who * MAP_WRITES + i;
		struct pair v = { k * 7, ~k };

		ok = mmapd_phash_lock(map, -1) == 0 && mmapd_phash_put(map, &k, &v) == 0;
		ok = mmapd_phash_unlock(map) == 0 && ok;
	}
	mmapd_phash_close(map);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

START_TEST(test_persist_processes_putting_under_the_lock_end_with_every_entry)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_phash *map;
	uint64_t seen = 0;
	struct pair v;

	children_run(MAP_WRITERS, map_writer);
	map = phash_ok(c, "shared-map", 0);
	ck_assert_uint_eq(mmapd_phash_count(map), MAP_WRITERS * MAP_WRITES);
	for (uint64_t k = 0; k < MAP_WRITERS * MAP_WRITES; k++) {
		ck_assert_int_eq(mmapd_phash_get(map, &k, &v), 0);
		ck_assert_uint_eq(v.a, k * 7);
	}
	ck_assert_int_eq(mmapd_phash_foreach(map, count_entries, &seen), 0);
	ck_assert_uint_eq(seen, MAP_WRITERS * MAP_WRITES);
	mmapd_phash_close(map);
	ck_assert_int_eq(mmapd_delete(c, "shared-map"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_persist_structures_with_corrupt_headers_or_of_another_kind_are_refused)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_pvec *vec = pvec_ok(c, "kinds-vec", 8, MMAPD_PERSIST_CREATE);
	struct mmapd_phash *map = phash_ok(c, "kinds-map", MMAPD_PERSIST_CREATE);
	struct mmapd_pvec *vec2 = NULL;
	struct mmapd_phash *map2 = NULL;
	uint8_t *vh = mmapd_region_data(mmapd_pvec_region(vec));
	uint8_t *mh = mmapd_region_data(mmapd_phash_region(map));
	uint64_t k = 1, len;
	struct pair v = { 1, 2 };

	ck_assert_int_eq(mmapd_pvec_open(c, "kinds-map", 8, 0, &vec2), -EPROTO);
	ck_assert_int_eq(mmapd_phash_open(c, "kinds-vec", 8, sizeof(v), 0, &map2), -EPROTO);
	ck_assert_int_eq(mmapd_phash_open(c, "kinds-map", 8, 8, 0, &map2), -EPROTO);
	ck_assert_ptr_null(vec2);
	ck_assert_ptr_null(map2);

	/* A length beyond the capacity (the vector header's fourth word). */
	memcpy(&len, vh + MMAPD_PSTRUCT_HEADER + 24, 8);
	len = 1ull << 50;
	memcpy(vh + MMAPD_PSTRUCT_HEADER + 24, &len, 8);
	ck_assert_int_eq(mmapd_pvec_open(c, "kinds-vec", 8, 0, &vec2), -EBADMSG);
	ck_assert_int_eq(mmapd_pvec_push(vec, &k), -EBADMSG);
	/* A journal op word that is neither empty nor live (the hash header's eleventh 32-bit
	 * word: sizes, pad, three counters, then the journal). */
	ck_assert_int_eq(mmapd_phash_put(map, &k, &v), 0);
	mh[MMAPD_PSTRUCT_HEADER + 40] = 1;
	ck_assert_int_eq(mmapd_phash_open(c, "kinds-map", 8, sizeof(v), 0, &map2), -EBADMSG);
	ck_assert_int_eq(mmapd_phash_get(map, &k, &v), -EBADMSG);
	ck_assert_msg(strstr(mmapd_last_message(), "journal"), "%s", mmapd_last_message());
	/* The magic of the struct header. */
	vh[4] ^= 0xff;
	ck_assert_int_eq(mmapd_pvec_open(c, "kinds-vec", 8, 0, &vec2), -EBADMSG);
	mmapd_pvec_close(vec);
	mmapd_phash_close(map);
	ck_assert_int_eq(mmapd_delete(c, "kinds-vec"), 0);
	ck_assert_int_eq(mmapd_delete(c, "kinds-map"), 0);
	mmapd_disconnect(c);
}
END_TEST

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x, y;

	memcpy(&x, a, 8);
	memcpy(&y, b, 8);
	return x < y ? -1 : x > y;
}

static int collect(uint64_t i, void *elem, void *userdata)
{
	uint64_t *out = userdata, v;

	memcpy(&v, elem, 8);
	out[out[0]++ + 1] = i * 1000 + v;
	return 0;
}

/* In another process: inserts, removes and sorts the vector "edit-vec" of 0..9. */
static int vec_editor(void)
{
	struct mmapd_client *c = NULL;
	struct mmapd_pvec *vec = NULL;
	uint64_t v = 100, got = 0;
	int ok;

	if (mmapd_connect(dmn.sock, "editor", &c) < 0 ||
	    mmapd_pvec_open(c, "edit-vec", sizeof(uint64_t), 0, &vec) < 0)
		return 1;
	ok = mmapd_pvec_insert(vec, 0, &v) == 0 &&           /* 100 0 1 .. 9 */
	     mmapd_pvec_insert(vec, 11, &v) == 0 &&          /* 100 0 .. 9 100 */
	     mmapd_pvec_remove(vec, 1, &got) == 0 && got == 0 &&   /* 100 1 .. 9 100 */
	     mmapd_pvec_swap_remove(vec, 0, &got) == 0 && got == 100 && /* 100 1 .. 9 */
	     mmapd_pvec_sort(vec, u64_cmp) == 0 &&           /* 1 .. 9 100 */
	     mmapd_pvec_truncate(vec, 9) == 0;               /* 1 .. 9 */
	mmapd_pvec_close(vec);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

START_TEST(test_persist_vector_edits_in_one_process_are_seen_in_another)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_pvec *vec = pvec_ok(c, "edit-vec", sizeof(uint64_t), MMAPD_PERSIST_CREATE);
	uint64_t v, out[16] = { 0 }, at;
	pid_t pid;

	for (v = 0; v < 10; v++)
		ck_assert_int_eq(mmapd_pvec_push(vec, &v), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(vec_editor());
	test_child_wait(pid, CHILD_WAIT_MS);
	ck_assert_uint_eq(mmapd_pvec_len(vec), 9);
	for (uint64_t i = 0; i < 9; i++) {
		ck_assert_int_eq(mmapd_pvec_get(vec, i, &v), 0);
		ck_assert_uint_eq(v, i + 1);
	}
	v = 5;
	ck_assert_int_eq(mmapd_pvec_bsearch(vec, &v, u64_cmp, &at), 0);
	ck_assert_uint_eq(at, 4);
	v = 50;
	ck_assert_int_eq(mmapd_pvec_bsearch(vec, &v, u64_cmp, &at), -ENOENT);
	ck_assert_uint_eq(at, 9);
	/* A range forward, then backward. */
	ck_assert_int_eq(mmapd_pvec_foreach(vec, 2, 5, 0, collect, out), 0);
	ck_assert_uint_eq(out[0], 3);
	ck_assert_uint_eq(out[1], 2003);
	ck_assert_uint_eq(out[3], 4005);
	out[0] = 0;
	ck_assert_int_eq(mmapd_pvec_foreach(vec, 0, UINT64_MAX, MMAPD_PVEC_REVERSE, collect, out), 0);
	ck_assert_uint_eq(out[0], 9);
	ck_assert_uint_eq(out[1], 8009);
	ck_assert_uint_eq(out[9], 1);
	ck_assert_int_eq(mmapd_pvec_insert(vec, 10, &v), -ERANGE);
	ck_assert_int_eq(mmapd_pvec_remove(vec, 9, NULL), -ERANGE);
	ck_assert_int_eq(mmapd_pvec_truncate(vec, 10), -ERANGE);
	ck_assert_int_eq(mmapd_pvec_foreach(vec, 0, 1, 0x8, collect, out), -EINVAL);
	mmapd_pvec_close(vec);
	ck_assert_int_eq(mmapd_delete(c, "edit-vec"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_persist_hash_map_iterates_by_cursor_removing_as_it_goes_and_reserves)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_phash *map = phash_ok(c, "iter-map", MMAPD_PERSIST_CREATE);
	struct pair v;
	uint64_t k, cursor = 0, seen = 0, cap;
	int r;

	ck_assert_uint_eq(mmapd_phash_capacity(map), 0);
	ck_assert_int_eq(mmapd_phash_reserve(map, 1000), 0);
	cap = mmapd_phash_capacity(map);
	ck_assert_uint_ge(cap, 1000);
	for (k = 0; k < 1000; k++) {
		v = (struct pair){ k * 7, ~k };
		ck_assert_int_eq(mmapd_phash_put(map, &k, &v), 0);
	}
	/* No rebuild happened: the capacity is what reserve made. */
	ck_assert_uint_eq(mmapd_phash_capacity(map), cap);
	while ((r = mmapd_phash_next(map, &cursor, &k, &v)) == 1) {
		ck_assert_uint_eq(v.b, ~k);
		seen++;
		if (k % 2 == 0)
			ck_assert_int_eq(mmapd_phash_remove(map, &k), 0);
	}
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(seen, 1000);
	ck_assert_uint_eq(mmapd_phash_count(map), 500);
	ck_assert_int_eq(mmapd_phash_reserve(map, 1ull << 62), -EFBIG);
	mmapd_phash_close(map);
	ck_assert_int_eq(mmapd_delete(c, "iter-map"), 0);
	mmapd_disconnect(c);
}
END_TEST

/*
 * What a hostile process that can write the region can do: scribble anything over the
 * header, the journal and the slots. Readers get errors or wrong values, never a crash or
 * an endless loop (the test's timeout would catch one).
 */
START_TEST(test_persist_structures_scribbled_with_garbage_give_errors_not_crashes)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_pvec *vec = pvec_ok(c, "scribble-vec", 8, MMAPD_PERSIST_CREATE);
	struct mmapd_phash *map = phash_ok(c, "scribble-map", MMAPD_PERSIST_CREATE);
	uint8_t *vh = mmapd_region_data(mmapd_pvec_region(vec));
	uint8_t *mh = mmapd_region_data(mmapd_phash_region(map));
	uint64_t seed = 42;

	for (uint64_t k = 0; k < 200; k++) {
		struct pair v = { k, ~k };

		ck_assert_int_eq(mmapd_phash_put(map, &k, &v), 0);
		ck_assert_int_eq(mmapd_pvec_push(vec, &k), 0);
	}
	for (int round = 0; round < 2000; round++) {
		struct mmapd_pvec *v2 = NULL;
		struct mmapd_phash *m2 = NULL;
		uint64_t k = (uint64_t)round % 256, cursor = 0, x;
		struct pair p;

		/* A few random bytes of the header page (body and journal) and the first slots,
		 * past the 64-byte struct header, whose checksum other tests cover. */
		for (int n = 0; n < 4; n++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			vh[64 + (seed >> 33) % 256] = (uint8_t)(seed >> 20);
			mh[64 + (seed >> 40) % 256] = (uint8_t)(seed >> 24);
			mh[4096 + 4096 + (seed >> 30) % 8192] = (uint8_t)(seed >> 12);
		}
		/* Now and then a live journal record of garbage, "written" by a dead process: the
		 * op word (LNRJ), a pid that cannot exist, then random fields. The journal follows
		 * the vector's four header words and the map's sizes and three counters. */
		if (round % 20 == 0) {
			uint32_t live = 0x4a524e4cu, pid = 0x7ffffff0u;

			for (int side = 0; side < 2; side++) {
				uint8_t *j = side ? mh + 64 + 40 : vh + 64 + 32;

				memcpy(j, &live, 4);
				memcpy(j + 4, &pid, 4);
				for (int n = 8; n < 144; n++) {
					seed = seed * 6364136223846793005ull + 1442695040888963407ull;
					j[n] = (uint8_t)(seed >> (n % 3 ? 56 : 33));
				}
			}
		}
		(void)mmapd_pvec_get(vec, k, &x);
		(void)mmapd_pvec_push(vec, &k);
		(void)mmapd_pvec_set(vec, 0, &k);
		(void)mmapd_pvec_insert(vec, 1, &k);
		(void)mmapd_phash_get(map, &k, &p);
		(void)mmapd_phash_put(map, &k, &p);
		(void)mmapd_phash_remove(map, &k);
		while (mmapd_phash_next(map, &cursor, NULL, NULL) == 1)
			;
		if (mmapd_pvec_open(c, "scribble-vec", 8, 0, &v2) == 0)
			mmapd_pvec_close(v2);
		if (mmapd_phash_open(c, "scribble-map", 8, sizeof(p), 0, &m2) == 0)
			mmapd_phash_close(m2);
	}
	mmapd_pvec_close(vec);
	mmapd_phash_close(map);
	ck_assert_int_eq(mmapd_delete(c, "scribble-vec"), 0);
	ck_assert_int_eq(mmapd_delete(c, "scribble-map"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* ---- N-dimensional arrays ---- */

/* In another process: opens the array by what its header says and reads it through views. */
static int nd_child(void)
{
	struct mmapd_client *c = NULL;
	struct mmapd_region *region = NULL;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_ndview v, s, row;
	uint64_t idx[3] = { 3, 1, 5 }, big[3] = { 4, 5, 6 };
	double *p;
	int ok;

	if (mmapd_connect(dmn.sock, "nd-child", &c) < 0 ||
	    mmapd_region_open(c, "nd", &o, &region) < 0 ||
	    mmapd_ndarray_open(region, 64, 0, 0, NULL, 0, &v) < 0)
		return 1;
	ok = v.dtype == MMAPD_DT_F64 && v.ndim == 3 && v.shape[0] == 4 && v.shape[1] == 5 &&
	     v.shape[2] == 6 && v.strides[0] == 240 && v.strides[1] == 48 && v.strides[2] == 8;
	ok = ok && mmapd_ndview_at(&v, idx, (void **)&p) == 0 && *p == 315;
	/* Rows 1 and 2 of the second dimension; then the plane i = 2 of that. */
	ok = ok && mmapd_ndview_slice(&v, 1, 1, 3, &s) == 0 && s.shape[1] == 2 &&
	     mmapd_ndview_index(&s, 0, 2, &row) == 0 && row.ndim == 2 && row.shape[0] == 2 &&
	     row.shape[1] == 6;
	idx[0] = 1;
	idx[1] = 4;
	ok = ok && mmapd_ndview_at(&row, idx, (void **)&p) == 0 && *p == 224;
	idx[0] = 2;
	ok = ok && mmapd_ndview_at(&row, idx, (void **)&p) == -ERANGE;
	ok = ok && mmapd_ndview_at(&v, big, (void **)&p) == -ERANGE;
	ok = ok && mmapd_ndview_slice(&v, 3, 0, 1, &s) == -ERANGE &&
	     mmapd_ndview_slice(&v, 0, 2, 2, &s) == -ERANGE;
	mmapd_region_close(region);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

START_TEST(test_persist_ndarray_written_by_one_process_is_viewed_by_another)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_region *region = region_on(c, "nd", 65536);
	uint64_t shape[3] = { 4, 5, 6 }, other[3] = { 4, 6, 5 }, idx[3], one = 5;
	struct mmapd_ndview v, v2;
	char npy[256];
	uint8_t *body;
	double *p;
	int64_t n;
	pid_t pid;

	ck_assert_uint_eq(mmapd_ndarray_footprint(MMAPD_DT_F64, 3, shape), 64 + 128 + 960);
	ck_assert_uint_eq(mmapd_ndarray_footprint(MMAPD_DT_F64, 0, shape), 0);
	ck_assert_int_eq(mmapd_ndarray_open(region, 64, MMAPD_DT_F64, 3, shape, 0, &v), -ENODATA);
	ck_assert_int_eq(mmapd_ndarray_open(region, 64, MMAPD_DT_F64, 3, shape,
	                                    MMAPD_PSTRUCT_INIT, &v), 0);
	ck_assert_uint_eq((uintptr_t)v.data % 64, 0);
	for (idx[0] = 0; idx[0] < 4; idx[0]++)
		for (idx[1] = 0; idx[1] < 5; idx[1]++)
			for (idx[2] = 0; idx[2] < 6; idx[2]++) {
				ck_assert_int_eq(mmapd_ndview_at(&v, idx, (void **)&p), 0);
				*p = (double)(idx[0] * 100 + idx[1] * 10 + idx[2]);
			}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(nd_child());
	test_child_wait(pid, CHILD_WAIT_MS);
	ck_assert_int_eq(mmapd_ndarray_open(region, 64, MMAPD_DT_F64, 3, other, 0, &v2), -EPROTO);
	ck_assert_int_eq(mmapd_ndarray_open(region, 64, MMAPD_DT_F32, 3, shape, 0, &v2), -EPROTO);
	/* The .npy header: magic, version 1.0, a length that pads the whole to 64 bytes. */
	n = mmapd_ndview_npy_header(&v, npy, sizeof(npy));
	ck_assert_int_eq(n % 64, 0);
	ck_assert_int_eq(memcmp(npy, "\x93NUMPY\x01\x00", 8), 0);
	ck_assert_int_eq((uint8_t)npy[8] | (uint8_t)npy[9] << 8, n - 10);
	ck_assert_int_eq(npy[n - 1], '\n');
	ck_assert_ptr_nonnull(strstr(npy + 10, "{'descr': '<f8', 'fortran_order': False, "
	                                       "'shape': (4, 5, 6), }"));
	ck_assert_int_eq(mmapd_ndview_npy_header(&v, npy, 10), -ERANGE);
	/* Another process rewriting the shape after open changes nothing for this view, and
	 * the next opener is refused rather than sent outside the region. */
	body = (uint8_t *)mmapd_region_data(region) + 64 + 64;
	memcpy(body + 8, &(uint64_t){ 1ull << 40 }, 8);
	idx[0] = 3;
	idx[1] = 4;
	idx[2] = 5;
	ck_assert_int_eq(mmapd_ndview_at(&v, idx, (void **)&p), 0);
	ck_assert(*p == 345);
	ck_assert_int_eq(mmapd_ndarray_open(region, 64, 0, 0, NULL, 0, &v2), -ERANGE);
	/* A one-dimensional array elsewhere in the region: "(5,)". */
	ck_assert_int_eq(mmapd_ndarray_open(region, 4096, MMAPD_DT_I16, 1, &one,
	                                    MMAPD_PSTRUCT_INIT, &v2), 0);
	ck_assert_int_gt(mmapd_ndview_npy_header(&v2, npy, sizeof(npy)), 0);
	ck_assert_ptr_nonnull(strstr(npy + 10, "'descr': '<i2', 'fortran_order': False, "
	                                       "'shape': (5,)"));
	ck_assert_int_eq(mmapd_ndview_index(&v2, 0, 1, &v), -EINVAL);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "nd"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* ---- struct writers ---- */

/* In another process: reads what the parent wrote through its writer, writes through its own. */
static int pwriter_child(void)
{
	struct mmapd_client *c = NULL;
	struct mmapd_region *region = NULL;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_layout l = CONFIG_LAYOUT;
	struct mmapd_pwriter *w = NULL;
	struct config *cfg;
	uint32_t port = 8443;
	void *p;
	int ok;

	if (mmapd_connect(dmn.sock, "pwriter-child", &c) < 0 ||
	    mmapd_region_open(c, "pw", &o, &region) < 0 ||
	    mmapd_pwriter_open(c, region, 0, &w) < 0 ||
	    mmapd_pstruct_open(region, 0, &l, 0, &p) < 0)
		return 1;
	cfg = p;
	ok = strcmp(FSTR_STR(cfg->host), "example.org") == 0 && cfg->port == 443;
	ok = ok && mmapd_pwriter_lock(w, 5000) == 0 &&
	     mmapd_pwriter_fstr_set(w, MMAPD_FSTR_ARGS(cfg->host), "child.example", 13) == 0 &&
	     mmapd_pwriter_write(w, &cfg->port, &port, sizeof(port)) == 0 &&
	     mmapd_pwriter_unlock(w) == 0;
	mmapd_pwriter_close(w);
	mmapd_region_close(region);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

START_TEST(test_persist_struct_writer_writes_fields_and_strings_seen_by_another_process)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_region *region = region_on(c, "pw", 65536), *ro;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct mmapd_layout l = CONFIG_LAYOUT;
	struct mmapd_pwriter *w = NULL, *w2 = NULL;
	static uint8_t big[20000], zero[64];
	struct config *cfg;
	uint32_t port = 443;
	void *p;
	pid_t pid;

	ck_assert_int_eq(mmapd_pstruct_open(region, 0, &l, MMAPD_PSTRUCT_INIT, &p), 0);
	cfg = p;
	/* No journal yet, and none made without MMAPD_PERSIST_CREATE. */
	ck_assert_int_eq(mmapd_pwriter_open(c, region, 0, &w), -ENOENT);
	ck_assert_int_eq(mmapd_pwriter_open(c, region, MMAPD_PERSIST_CREATE, &w), 0);
	ck_assert_str_eq(mmapd_region_name(mmapd_pwriter_region(w)), "pw.journal");
	ck_assert_int_eq(mmapd_pwriter_fstr_set(w, MMAPD_FSTR_ARGS(cfg->host), "example.org", 11), 0);
	ck_assert_int_eq(mmapd_pwriter_write(w, &cfg->port, &port, sizeof(port)), 0);
	ck_assert_str_eq(FSTR_STR(cfg->host), "example.org");
	ck_assert_int_eq(mmapd_fstr_len(MMAPD_FSTR_ARGS(cfg->host)), 11);
	/* Refused, nothing written: too long, not UTF-8, outside the window, NULL. */
	ck_assert_int_eq(mmapd_pwriter_fstr_set(w, MMAPD_FSTR_ARGS(cfg->host),
	                                        "0123456789012345678901234567890123", 34),
	                 -ENAMETOOLONG);
	ck_assert_int_eq(mmapd_pwriter_fstr_set(w, MMAPD_FSTR_ARGS(cfg->host), "\xc3\x28", 2),
	                 -EILSEQ);
	ck_assert_str_eq(FSTR_STR(cfg->host), "example.org");
	ck_assert_int_eq(mmapd_pwriter_write(w, (uint8_t *)mmapd_region_data(region) + 65530,
	                                     zero, 8), -ERANGE);
	ck_assert_int_eq(mmapd_pwriter_write(w, zero, zero, 8), -ERANGE);
	ck_assert_int_eq(mmapd_pwriter_write(w, NULL, zero, 8), -EINVAL);
	/* A write larger than the staging area grows it. */
	memset(big, 0x5a, sizeof(big));
	ck_assert_int_eq(mmapd_pwriter_write(w, (uint8_t *)mmapd_region_data(region) + 4096, big,
	                                     sizeof(big)), 0);
	ck_assert_int_eq(memcmp((uint8_t *)mmapd_region_data(region) + 4096, big, sizeof(big)), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(pwriter_child());
	test_child_wait(pid, CHILD_WAIT_MS);
	ck_assert_str_eq(FSTR_STR(cfg->host), "child.example");
	ck_assert_uint_eq(cfg->port, 8443);
	/* A read-only mapping cannot be written through. */
	ck_assert_int_eq(mmapd_region_open(c, "pw", &o, &ro), 0);
	ck_assert_int_eq(mmapd_pwriter_open(c, ro, MMAPD_PERSIST_CREATE, &w2), -EACCES);
	mmapd_region_close(ro);
	mmapd_pwriter_close(w);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "pw.journal"), 0);
	ck_assert_int_eq(mmapd_delete(c, "pw"), 0);
	mmapd_disconnect(c);
}
END_TEST

/*
 * The attack: a user who may only read a region creates its journal first, writable by all,
 * and writes into it a committed record of a "dead" writer that copies its bytes over the
 * region. The owner's writer refuses the journal and the region keeps its bytes.
 */
START_TEST(test_persist_struct_writer_refuses_a_journal_others_may_write_as_nobody)
{
	struct test_daemon d;
	struct test_conn nobody;
	struct mmapd_client *c;
	struct mmapd_region *region;
	struct mmapd_pwriter *w = NULL;
	static const uint8_t zero[4096];
	uint8_t *map;
	cJSON *reply;
	int fd;

	test_daemon_start_shared(&d, "{\"socket_mode\": \"0666\"}");
	test_daemon_create_perm(&d, "acct", 65536, 0644);
	test_conn_open_hello_as(&nobody, &d, TEST_NOBODY, TEST_NOBODY);
	reply = test_conn_callf(&nobody, "{'op':'open','name':'acct.journal','mode':'rw',"
	                        "'create':true,'size':16384,'perm':438}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	fd = test_conn_take_fd(&nobody);
	map = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	c = test_client_connect(&d, "check_persist");
	region = region_on(c, "acct", 0);
	/* The first open formats the journal's header, then refuses it. */
	ck_assert_int_eq(mmapd_pwriter_open(c, region, MMAPD_PERSIST_CREATE, &w), -EPERM);
	ck_assert_ptr_nonnull(strstr(mmapd_last_message(), "lets others write it"));
	/* nobody now forges a committed record of a dead writer: stage 0xee bytes, copy them
	 * over the region's first 4096 bytes (body at 64: op, pid, shift x5, copy src/dst/len). */
	memset(map + 4096, 0xee, 4096);
	memcpy(map + 64 + 4, &(uint32_t){ 0x7ffffffe }, 4);
	memcpy(map + 64 + 48, &(uint64_t){ 4096 }, 8);
	memcpy(map + 64 + 56, &(uint64_t){ 0 }, 8);
	memcpy(map + 64 + 64, &(uint64_t){ 4096 }, 8);
	atomic_store((_Atomic uint32_t *)(map + 64), 0x4a524e4cu);
	ck_assert_int_eq(mmapd_pwriter_open(c, region, MMAPD_PERSIST_CREATE, &w), -EPERM);
	ck_assert_int_eq(memcmp(mmapd_region_data(region), zero, sizeof(zero)), 0);
	munmap(map, 16384);
	close(fd);
	test_conn_close(&nobody);
	mmapd_region_close(region);
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}
END_TEST

/* Key i of the compaction test and its value after round r. */
static size_t compact_kv(unsigned i, unsigned r, char *key, char *val, size_t *ret_vlen)
{
	*ret_vlen = (size_t)snprintf(val, 64, "value %u of round %u, %*s", i, r, (int)(i % 20), "");
	return (size_t)snprintf(key, 32, "key-%u", i);
}

/* In another process: after the compaction, every key the parent left has its last value. */
static int compact_child(void)
{
	struct mmapd_client *c = NULL;
	struct mmapd_pstrmap *m = NULL;
	char key[32], val[64];
	const void *v;
	size_t klen, vlen, len;
	int ok = 1;

	if (mmapd_connect(dmn.sock, "compact-child", &c) < 0 ||
	    mmapd_pstrmap_open(c, "compact", 0, &m) < 0)
		return 1;
	ok = mmapd_pstrmap_count(m) == 150;
	for (unsigned i = 0; i < 200 && ok; i++) {
		klen = compact_kv(i, i % 2 ? 1 : 0, key, val, &vlen);
		if (i % 4 == 3)
			ok = mmapd_pstrmap_get(m, key, klen, &v, &len) == -ENOENT;
		else
			ok = mmapd_pstrmap_get(m, key, klen, &v, &len) == 0 && len == vlen &&
			     memcmp(v, val, vlen) == 0;
	}
	mmapd_pstrmap_close(m);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

START_TEST(test_persist_string_map_counts_and_compacts_its_arena)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_pstrmap *m = NULL;
	char key[32], val[64];
	uint64_t before, live = 0;
	size_t klen, vlen;
	pid_t pid;

	ck_assert_int_eq(mmapd_pstrmap_open(c, "compact", MMAPD_PERSIST_CREATE, &m), 0);
	ck_assert_uint_eq(mmapd_pstrmap_count(m), 0);
	/* 200 keys; the odd ones replaced; every fourth removed: 150 left. */
	for (unsigned i = 0; i < 200; i++) {
		klen = compact_kv(i, 0, key, val, &vlen);
		ck_assert_int_eq(mmapd_pstrmap_put(m, key, klen, val, vlen), 0);
		live += vlen + klen;
	}
	ck_assert_uint_eq(mmapd_pstrmap_count(m), 200);
	for (unsigned i = 1; i < 200; i += 2) {
		klen = compact_kv(i, 1, key, val, &vlen);
		ck_assert_int_eq(mmapd_pstrmap_put(m, key, klen, val, vlen), 1);
	}
	ck_assert_uint_eq(mmapd_pstrmap_count(m), 200);
	for (unsigned i = 3; i < 200; i += 4) {
		klen = compact_kv(i, 0, key, val, &vlen);
		ck_assert_int_eq(mmapd_pstrmap_remove(m, key, klen), 0);
	}
	ck_assert_uint_eq(mmapd_pstrmap_count(m), 150);
	before = mmapd_pvec_len(mmapd_pstrmap_arena(m));
	ck_assert_int_eq(mmapd_pstrmap_compact(m), 0);
	ck_assert_uint_lt(mmapd_pvec_len(mmapd_pstrmap_arena(m)), before);
	ck_assert_uint_lt(mmapd_pvec_len(mmapd_pstrmap_arena(m)), live);
	ck_assert_uint_eq(mmapd_pstrmap_count(m), 150);
	/* The tombstones went with it, and a second compaction has nothing to do. */
	ck_assert_uint_eq(mmapd_phash_count(mmapd_pstrmap_index(m)), 150);
	before = mmapd_pvec_len(mmapd_pstrmap_arena(m));
	ck_assert_int_eq(mmapd_pstrmap_compact(m), 0);
	ck_assert_uint_eq(mmapd_pvec_len(mmapd_pstrmap_arena(m)), before);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(compact_child());
	test_child_wait(pid, CHILD_WAIT_MS);
	/* Puts after a compaction append after the packed bytes. */
	klen = compact_kv(3, 2, key, val, &vlen);
	ck_assert_int_eq(mmapd_pstrmap_put(m, key, klen, val, vlen), 0);
	ck_assert_uint_eq(mmapd_pstrmap_count(m), 151);
	ck_assert_int_eq(mmapd_pstrmap_compact(NULL), -EINVAL);
	/* A map made before the count was kept (its words zero: the 64 bytes below the index's
	 * staging area at 4096) is counted at open. */
	memset((uint8_t *)mmapd_region_data(mmapd_phash_region(mmapd_pstrmap_index(m))) + 4096 - 64,
	       0, 24);
	mmapd_pstrmap_close(m);
	ck_assert_int_eq(mmapd_pstrmap_open(c, "compact", 0, &m), 0);
	ck_assert_uint_eq(mmapd_pstrmap_count(m), 151);
	mmapd_pstrmap_close(m);
	ck_assert_int_eq(mmapd_delete(c, "compact"), 0);
	ck_assert_int_eq(mmapd_delete(c, "compact.arena"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* An array too large for the window is refused before its header is formatted. */
START_TEST(test_persist_ndarray_too_large_for_the_window_leaves_the_region_untouched)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_region *region = region_on(c, "nd-big", 65536);
	uint64_t shape[2] = { 1000, 1000 }, fits[2] = { 10, 10 };
	static const uint8_t zero[4096];
	struct mmapd_ndview v;

	ck_assert_int_eq(mmapd_ndarray_open(region, 64, MMAPD_DT_F64, 2, shape,
	                                    MMAPD_PSTRUCT_INIT, &v), -ERANGE);
	ck_assert_int_eq(memcmp((uint8_t *)mmapd_region_data(region), zero, sizeof(zero)), 0);
	ck_assert_int_eq(mmapd_ndarray_open(region, 64, 0, 0, NULL, 0, &v), -ENODATA);
	/* The offset is free for an array that fits. */
	ck_assert_int_eq(mmapd_ndarray_open(region, 64, MMAPD_DT_F64, 2, fits,
	                                    MMAPD_PSTRUCT_INIT, &v), 0);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "nd-big"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* ---- string maps ---- */

/* In another process: reads every key, replaces the odd ones with longer values. */
static int strmap_child(void)
{
	struct mmapd_client *c = NULL;
	struct mmapd_pstrmap *m = NULL;
	char key[64], want[200];
	const void *v;
	size_t len;
	int ok = 1;

	if (mmapd_connect(dmn.sock, "strmap-child", &c) < 0 ||
	    mmapd_pstrmap_open(c, "smap", 0, &m) < 0 || mmapd_pstrmap_lock(m, -1) < 0)
		return 1;
	for (int i = 0; i < 2000 && ok; i++) {
		snprintf(key, sizeof(key), "key-%d%s", i, i % 7 ? "" : "-with-a-longer-tail");
		snprintf(want, sizeof(want), "v%d", i * 3);
		ok = mmapd_pstrmap_get(m, key, strlen(key), &v, &len) == 0 && len == strlen(want) &&
		     memcmp(v, want, len) == 0;
		if (ok && i % 2) {
			snprintf(want, sizeof(want), "a much longer value for key %d, %0*d", i, i % 90, 0);
			ok = mmapd_pstrmap_put(m, key, strlen(key), want, strlen(want)) == 1;
		}
	}
	ok = mmapd_pstrmap_unlock(m) == 0 && ok;
	mmapd_pstrmap_close(m);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

START_TEST(test_persist_string_map_takes_keys_and_values_of_any_length_across_processes)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_pstrmap *m = NULL;
	char key[64], want[200];
	const void *v, *k;
	size_t len, klen;
	uint64_t cursor = 0, seen = 0;
	int r;
	pid_t pid;

	ck_assert_int_eq(mmapd_pstrmap_open(c, "smap", MMAPD_PERSIST_CREATE, &m), 0);
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "key-%d%s", i, i % 7 ? "" : "-with-a-longer-tail");
		snprintf(want, sizeof(want), "v%d", i * 3);
		ck_assert_int_eq(mmapd_pstrmap_put(m, key, strlen(key), want, strlen(want)), 0);
	}
	/* The empty key and an empty value are keys and values like the others. */
	ck_assert_int_eq(mmapd_pstrmap_put(m, "", 0, "", 0), 0);
	ck_assert_int_eq(mmapd_pstrmap_get(m, "", 0, &v, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(mmapd_pstrmap_remove(m, "", 0), 0);
	ck_assert_int_eq(mmapd_pstrmap_get(m, "", 0, &v, &len), -ENOENT);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(strmap_child());
	test_child_wait(pid, CHILD_WAIT_MS);
	ck_assert_int_eq(mmapd_pstrmap_get(m, "key-5", 5, &v, &len), 0);
	snprintf(want, sizeof(want), "a much longer value for key %d, %0*d", 5, 5, 0);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_int_eq(memcmp(v, want, len), 0);
	/* Iteration, removing every key that starts "key-1" as it goes. */
	while ((r = mmapd_pstrmap_next(m, &cursor, &k, &klen, &v, &len)) == 1) {
		seen++;
		if (klen > 5 && memcmp(k, "key-1", 5) == 0)
			ck_assert_int_eq(mmapd_pstrmap_remove(m, k, klen), 0);
	}
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(seen, 2000);
	ck_assert_int_eq(mmapd_pstrmap_get(m, "key-1", 5, &v, &len), 0);   /* "key-1" alone is 5 bytes: kept */
	ck_assert_int_eq(mmapd_pstrmap_get(m, "key-10", 6, &v, &len), -ENOENT);
	ck_assert_int_eq(mmapd_pstrmap_get(m, "key-2", 5, &v, &len), 0);
	ck_assert_int_eq(mmapd_pstrmap_remove(m, "nope", 4), -ENOENT);
	mmapd_pstrmap_close(m);
	ck_assert_int_eq(mmapd_delete(c, "smap"), 0);
	ck_assert_int_eq(mmapd_delete(c, "smap.arena"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* ---- containers as fields ---- */

struct journal_rec {
	_Atomic uint64_t version;
	struct mmapd_pfield entries;   /* a vector of uint64_t */
	struct mmapd_pfield index;     /* a hash map uint64_t -> uint64_t */
};

#define JOURNAL_LAYOUT MMAPD_LAYOUT(struct journal_rec, "test.journal", 1)

/* In another process: opens the struct and its two fields, reads and adds. */
static int field_child(void)
{
	struct mmapd_client *c = NULL;
	struct mmapd_region *region = NULL;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_layout layout = JOURNAL_LAYOUT;
	struct journal_rec *j;
	struct mmapd_pvec *vec = NULL;
	struct mmapd_phash *map = NULL;
	uint64_t k = 7, v = 0, x;
	void *p;
	int ok;

	if (mmapd_connect(dmn.sock, "field-child", &c) < 0 ||
	    mmapd_region_open(c, "owner", &o, &region) < 0 ||
	    mmapd_pstruct_open(region, 0, &layout, 0, &p) < 0)
		return 1;
	j = p;
	ok = mmapd_pvec_open_field(c, region, &j->entries, 8, 0, &vec) == 0 &&
	     mmapd_phash_open_field(c, region, &j->index, 8, 8, 0, &map) == 0;
	ok = ok && mmapd_pvec_len(vec) == 20000 && mmapd_pvec_get(vec, 19999, &x) == 0 &&
	     x == 19999 && mmapd_phash_get(map, &k, &v) == 0 && v == 49;
	x = 20000;
	ok = ok && mmapd_pvec_push(vec, &x) == 0;
	atomic_fetch_add(&j->version, 1);
	/* The same field asked for as another shape is refused. */
	mmapd_pvec_close(vec);
	ok = ok && mmapd_pvec_open_field(c, region, &j->entries, 16, 0, &vec) == -EPROTO &&
	     mmapd_pvec_open_field(c, region, &j->index, 8, 0, &vec) == -EPROTO;
	mmapd_phash_close(map);
	mmapd_region_close(region);
	mmapd_disconnect(c);
	return ok ? 0 : 2;
}

START_TEST(test_persist_struct_with_growing_container_fields_is_shared_by_processes)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_region *region = region_on(c, "owner", 4096);
	struct mmapd_layout layout = JOURNAL_LAYOUT;
	struct journal_rec *j = pstruct_ok(region, 0, &layout, MMAPD_PSTRUCT_INIT);
	struct mmapd_pvec *vec = NULL;
	struct mmapd_phash *map = NULL;
	char name[300];
	uint64_t k = 7, v = 49;
	pid_t pid;

	ck_assert_int_eq(mmapd_pvec_open_field(c, region, &j->entries, 8, 0, &vec), -ENOENT);
	ck_assert_int_eq(mmapd_pvec_open_field(c, region, &j->entries, 8, MMAPD_PERSIST_CREATE,
	                                       &vec), 0);
	ck_assert_int_eq(mmapd_phash_open_field(c, region, &j->index, 8, 8, MMAPD_PERSIST_CREATE,
	                                        &map), 0);
	/* Growth of the vector through several segments leaves the struct where it is. */
	for (uint64_t i = 0; i < 20000; i++)
		ck_assert_int_eq(mmapd_pvec_push(vec, &i), 0);
	ck_assert_int_eq(mmapd_phash_put(map, &k, &v), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(field_child());
	test_child_wait(pid, CHILD_WAIT_MS);
	ck_assert_uint_eq(mmapd_pvec_len(vec), 20001);
	ck_assert_uint_eq(atomic_load(&j->version), 1);
	ck_assert_int_eq(mmapd_pfield_name(region, &j->entries, name, sizeof(name)),
	                 (int)strlen("owner.f72"));
	ck_assert_str_eq(name, "owner.f72");
	ck_assert_int_eq(mmapd_pfield_name(region, (struct mmapd_pfield *)((uint8_t *)j + 4), name,
	                                   sizeof(name)), -EINVAL);
	ck_assert_int_eq(mmapd_pfield_name(region, (struct mmapd_pfield *)((uint8_t *)j + 8192),
	                                   name, sizeof(name)), -ERANGE);
	mmapd_pvec_close(vec);
	mmapd_phash_close(map);
	ck_assert_int_eq(mmapd_delete(c, "owner.f72"), 0);
	ck_assert_int_ge(mmapd_pfield_name(region, &j->index, name, sizeof(name)), 0);
	ck_assert_int_eq(mmapd_delete(c, name), 0);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "owner"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* A segment size of 0 written by another process is an error, not a division by zero. */
START_TEST(test_persist_vector_with_a_zero_segment_written_after_open_is_refused)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_pvec *vec = pvec_ok(c, "zero-seg", 8, MMAPD_PERSIST_CREATE);
	uint8_t *vh = mmapd_region_data(mmapd_pvec_region(vec));
	uint64_t k = 7, seg = 0;

	/* The vector header's second word; the first push must grow the capacity from 0. */
	memcpy(vh + MMAPD_PSTRUCT_HEADER + 8, &seg, 8);
	ck_assert_int_eq(mmapd_pvec_push(vec, &k), -EBADMSG);
	ck_assert_int_eq(mmapd_pvec_reserve(vec, 100), -EBADMSG);
	ck_assert_msg(strstr(mmapd_last_message(), "corrupt"), "%s", mmapd_last_message());
	mmapd_pvec_close(vec);
	ck_assert_int_eq(mmapd_delete(c, "zero-seg"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_persist_anonymous_vector_is_shared_by_name_until_deleted)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_persist");
	struct mmapd_pvec *a = pvec_ok(c, "anon-vec", 4,
	                               MMAPD_PERSIST_CREATE | MMAPD_PERSIST_ANONYMOUS);
	struct mmapd_pvec *b;
	uint32_t x = 0xfeed, y = 0;

	ck_assert_int_eq(mmapd_pvec_push(a, &x), 0);
	b = pvec_ok(c, "anon-vec", 4, 0);
	ck_assert_int_eq(mmapd_pvec_get(b, 0, &y), 0);
	ck_assert_uint_eq(y, 0xfeed);
	mmapd_pvec_close(b);
	mmapd_pvec_close(a);
	ck_assert_int_eq(mmapd_pvec_open(c, "anon-vec", 4, MMAPD_PERSIST_ANONYMOUS, &b), -EINVAL);
	ck_assert_int_eq(mmapd_delete(c, "anon-vec"), 0);
	mmapd_disconnect(c);
}
END_TEST

static Suite *persist_suite(void)
{
	Suite *s = suite_create("persist");
	TCase *tc = tcase_create("persist");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_persist_struct_written_by_one_process_is_read_by_another_and_after_a_restart);
	tcase_add_test(tc, test_persist_struct_of_another_layout_or_an_empty_header_is_refused);
	tcase_add_test(tc, test_persist_struct_whose_formatter_died_is_formatted_again);
	tcase_add_test(tc, test_persist_struct_formatter_alive_across_a_daemon_restart_is_not_formatted_over);
	tcase_add_test(tc, test_persist_struct_with_a_corrupt_header_is_refused);
	tcase_add_test(tc, test_persist_struct_body_stays_put_while_another_process_rewrites_the_header);
	tcase_add_test(tc, test_persist_processes_racing_to_format_one_struct_end_with_one_format);
	tcase_add_test(tc, test_persist_fixed_string_refuses_overflow_and_cuts_only_when_asked);
	tcase_add_test(tc, test_persist_fixed_string_takes_only_utf8_unless_raw_and_cuts_between_code_points);
	tcase_add_test(tc, test_persist_fixed_string_has_two_buffers_and_a_set_leaves_the_old_one_whole);
	tcase_add_test(tc, test_persist_fixed_string_read_while_another_process_sets_it_is_never_torn);
	tcase_add_test(tc, test_persist_vector_edits_in_one_process_are_seen_in_another);
	tcase_add_test(tc, test_persist_hash_map_iterates_by_cursor_removing_as_it_goes_and_reserves);
	tcase_add_test(tc, test_persist_structures_scribbled_with_garbage_give_errors_not_crashes);
	tcase_add_test(tc, test_persist_ndarray_written_by_one_process_is_viewed_by_another);
	tcase_add_test(tc, test_persist_ndarray_too_large_for_the_window_leaves_the_region_untouched);
	tcase_add_test(tc, test_persist_string_map_counts_and_compacts_its_arena);
	tcase_add_test(tc, test_persist_struct_writer_writes_fields_and_strings_seen_by_another_process);
	tcase_add_test(tc, test_persist_struct_writer_refuses_a_journal_others_may_write_as_nobody);
	tcase_add_test(tc, test_persist_struct_with_growing_container_fields_is_shared_by_processes);
	tcase_add_test(tc, test_persist_string_map_takes_keys_and_values_of_any_length_across_processes);
	tcase_add_test(tc, test_persist_vector_grows_in_place_and_another_process_reads_it_back);
	tcase_add_test(tc, test_persist_vector_bounds_sizes_and_lock_errors);
	tcase_add_test(tc, test_persist_processes_pushing_under_the_lock_end_with_every_element);
	tcase_add_test(tc, test_persist_hash_map_takes_ten_thousand_entries_and_serves_another_process);
	tcase_add_test(tc, test_persist_processes_putting_under_the_lock_end_with_every_entry);
	tcase_add_test(tc, test_persist_structures_with_corrupt_headers_or_of_another_kind_are_refused);
	tcase_add_test(tc, test_persist_vector_with_a_zero_segment_written_after_open_is_refused);
	tcase_add_test(tc, test_persist_anonymous_vector_is_shared_by_name_until_deleted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(persist_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
