/* SPDX-License-Identifier: MIT */
/*
 * Tests of what libmmapd does with a mapped window (client/advise.c, mapping.c, atomic.c,
 * guard.c and the mapping flags of mmapd_region_open()), against a real mmapd and across real processes:
 * atomic counters shared by forked processes, atomic views refused when misaligned or out of
 * range, advice/prewarm/mlock on a window at an odd offset, copy-on-write privacy, the SIGBUS
 * guard (a truncated page becomes an error inside a guard and still kills outside one),
 * executable mappings refused, chunk and page iteration, flush_range batching, and the
 * asynchronous flush whose completion is an event.
 *
 * One mmapd is shared by the test case (unchecked fixture); each test opens its own
 * connection and regions and closes them, and the checked fixture proves no descriptor leaked.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"
#include "tuning.h" /* the private limits the guard and msync batch tests probe */

#define INCREMENTS 1000000
#define PROCESSES 4

static struct test_daemon dmn;
static size_t page;

static void suite_setup(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	test_daemon_start(&dmn, NULL);
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

/* Opens name with flags (CREATE adds size) in mode over window offset..+length; asserts it. */
static struct mmapd_region *region_new(struct mmapd_client *c, const char *name, unsigned flags,
                                       enum mmapd_mode mode, uint64_t size, uint64_t offset,
                                       uint64_t length)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.flags = flags, .mode = mode, .size = size, .offset = offset, .length = length);
	struct mmapd_region *region = NULL;
	int r = mmapd_region_open(c, name, &o, &region);

	ck_assert_msg(r == 0, "open %s: %s", name, mmapd_last_message());
	return region;
}

/* Opens name and expects err. */
static void region_open_fails(struct mmapd_client *c, const char *name, unsigned flags,
                              enum mmapd_mode mode, uint64_t size, int err)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.flags = flags, .mode = mode, .size = size);
	struct mmapd_region *region = NULL;
	int r = mmapd_region_open(c, name, &o, &region);

	ck_assert_msg(r == err, "open %s: %d (%s), expected %d", name, r, mmapd_last_message(),
	              err);
	ck_assert_ptr_null(region);
}

/* One process's share of the counter test: its own connection, mapping and increments. */
static int counter_child(void)
{
	struct mmapd_client *c = NULL;
	struct mmapd_region *region = NULL;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	_Atomic uint64_t *counter;

	if (mmapd_connect(dmn.sock, "counter", &c) < 0 ||
	    mmapd_region_open(c, "counter", &o, &region) < 0 ||
	    mmapd_region_atomic_u64(region, 8, &counter) < 0)
		return 1;
	for (int i = 0; i < INCREMENTS; i++)
		atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	mmapd_region_close(region);
	mmapd_disconnect(c);
	return 0;
}

START_TEST(test_mapping_four_processes_incrementing_one_counter_end_exact)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *region = region_new(c, "counter", MMAPD_OPEN_CREATE, MMAPD_MODE_RW,
	                                         4096, 0, 0);
	_Atomic uint64_t *counter;
	pid_t pids[PROCESSES];
	uint64_t total;

	ck_assert_int_eq(mmapd_region_atomic_u64(region, 8, &counter), 0);
	for (int i = 0; i < PROCESSES; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0)
			_exit(counter_child());
	}
	for (int i = 0; i < PROCESSES; i++)
		test_child_wait(pids[i], 30000);
	total = atomic_load(counter);
	ck_assert_uint_eq(total, (uint64_t)PROCESSES * INCREMENTS);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "counter"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_mapping_misaligned_atomic_view_is_refused)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *whole = region_new(c, "misaligned", MMAPD_OPEN_CREATE, MMAPD_MODE_RW,
	                                        4096, 0, 0);
	/* A window starting at region offset 4: alignment is the region's, not the window's. */
	struct mmapd_region *win = region_new(c, "misaligned", 0, MMAPD_MODE_RW, 0, 4, 64);
	_Atomic uint64_t *u64 = NULL;
	_Atomic uint32_t *u32 = NULL;

	ck_assert_int_eq(mmapd_region_atomic_u64(whole, 3, &u64), -EINVAL);
	ck_assert_int_eq(mmapd_region_atomic_u32(whole, 2, &u32), -EINVAL);
	ck_assert_int_eq(mmapd_region_atomic_u64(win, 0, &u64), -EINVAL);
	ck_assert_ptr_null(u64);
	ck_assert_int_eq(mmapd_region_atomic_u64(win, 4, &u64), 0);
	ck_assert_int_eq(mmapd_region_atomic_u32(win, 0, &u32), 0);
	atomic_store(u64, 0x1122334455667788u);
	ck_assert_uint_eq(*(uint64_t *)((char *)mmapd_region_data(whole) + 8), 0x1122334455667788u);
	mmapd_region_close(win);
	mmapd_region_close(whole);
	ck_assert_int_eq(mmapd_delete(c, "misaligned"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_mapping_atomic_view_out_of_range_is_refused)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *region = region_new(c, "range", MMAPD_OPEN_CREATE, MMAPD_MODE_RW,
	                                         4096, 0, 0);
	_Atomic uint64_t *u64 = NULL;
	_Atomic uint32_t *u32 = NULL;

	ck_assert_int_eq(mmapd_region_atomic_u64(region, 4096, &u64), -ERANGE);
	ck_assert_int_eq(mmapd_region_atomic_u32(region, 4096 - 4, &u32), 0);
	ck_assert_int_eq(mmapd_region_atomic_u64_slice(region, 4096 - 64, 8, &u64), 0);
	ck_assert_int_eq(mmapd_region_atomic_u64_slice(region, 4096 - 64, 9, &u64), -ERANGE);
	ck_assert_int_eq(mmapd_region_atomic_u32_slice(region, 0, SIZE_MAX / 2, &u32), -ERANGE);
	ck_assert_int_eq(mmapd_region_atomic_u32_slice(region, 0, 0, &u32), -EINVAL);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "range"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_mapping_odd_window_reads_right_bytes_and_takes_advice_prewarm_and_mlock)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *whole = region_new(c, "odd", MMAPD_OPEN_CREATE, MMAPD_MODE_RW,
	                                        3 * page, 0, 0);
	uint64_t off = page + 123, len = 5000;
	struct mmapd_region *win = region_new(c, "odd", MMAPD_OPEN_POPULATE, MMAPD_MODE_RO, 0,
	                                      off, len);
	unsigned char *all = mmapd_region_data(whole), *w = mmapd_region_data(win);
	int r;

	for (size_t i = 0; i < 3 * page; i++)
		all[i] = (unsigned char)(i * 7 + 1);
	for (size_t i = 0; i < len; i++)
		ck_assert_uint_eq(w[i], (unsigned char)((off + i) * 7 + 1));
	ck_assert_int_eq(mmapd_region_advise(win, 0, 0, MMAPD_ADVICE_SEQUENTIAL), 0);
	ck_assert_int_eq(mmapd_region_advise(win, 1, 10, MMAPD_ADVICE_WILLNEED), 0);
	ck_assert_int_eq(mmapd_region_advise(win, 0, 0, MMAPD_ADVICE_DONTDUMP), 0);
	ck_assert_int_eq(mmapd_region_advise(win, 0, 0, MMAPD_ADVICE_NORMAL), 0);
	ck_assert_int_eq(mmapd_region_advise(win, 0, 0, (enum mmapd_advice)99), -EINVAL);
	ck_assert_int_eq(mmapd_region_advise(win, len, 1, MMAPD_ADVICE_NORMAL), -ERANGE);
	ck_assert_int_eq(mmapd_region_prewarm(win, 0, 0), 0);
	ck_assert_int_eq(mmapd_region_prewarm(win, 4999, 1), 0);
	r = mmapd_region_mlock(win, 0, 0);
	ck_assert_msg(r == 0 || strstr(mmapd_last_message(), "RLIMIT_MEMLOCK"),
	              "mlock: %s", mmapd_last_message());
	if (r == 0)
		ck_assert_int_eq(mmapd_region_munlock(win, 0, 0), 0);
	/* DONTNEED drops our pages only: the bytes come back from the file. */
	ck_assert_int_eq(mmapd_region_advise(win, 0, 0, MMAPD_ADVICE_DONTNEED), 0);
	ck_assert_uint_eq(w[len - 1], (unsigned char)((off + len - 1) * 7 + 1));
	mmapd_region_close(win);
	mmapd_region_close(whole);
	ck_assert_int_eq(mmapd_delete(c, "odd"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_mapping_cow_writes_stay_private_from_another_process)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *rw = region_new(c, "cow", MMAPD_OPEN_CREATE, MMAPD_MODE_RW, 4096,
	                                     0, 0);
	struct mmapd_region *cow = region_new(c, "cow", 0, MMAPD_MODE_COW, 0, 0, 0);
	char buf[6] = "";
	pid_t pid;

	ck_assert_int_eq(mmapd_region_write(rw, 0, "shared", 6), 0);
	ck_assert_int_eq(mmapd_region_write(cow, 0, "privat", 6), 0);
	ck_assert_int_eq(mmapd_region_read(rw, 0, buf, 6), 0);
	ck_assert_int_eq(memcmp(buf, "shared", 6), 0);
	ck_assert_int_eq(mmapd_region_msync(cow, 0, 6), -EINVAL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mmapd_client *c2 = NULL;
		struct mmapd_region *ro = NULL;
		int ok = mmapd_connect(dmn.sock, "cow-reader", &c2) == 0 &&
		         mmapd_region_open(c2, "cow", NULL, &ro) == 0 &&
		         memcmp(mmapd_region_data(ro), "shared", 6) == 0;

		_exit(ok ? 0 : 1);
	}
	test_child_wait(pid, TEST_WAIT_MS);
	ck_assert_int_eq(memcmp(mmapd_region_data(cow), "privat", 6), 0);
	mmapd_region_close(cow);
	mmapd_region_close(rw);
	ck_assert_int_eq(mmapd_delete(c, "cow"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* Truncates the region's file to one page through our read-write grant's descriptor. */
static void truncate_behind(struct mmapd_region *region)
{
	ck_assert_int_eq(ftruncate(mmapd_region_fd(region), (off_t)page), 0);
}

START_TEST(test_mapping_guard_turns_truncated_page_into_error_and_process_survives)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *region = region_new(c, "guarded", MMAPD_OPEN_CREATE, MMAPD_MODE_RW,
	                                         2 * page, 0, 0);
	volatile unsigned char *p = mmapd_region_data(region);

	p[page + 10] = 42;
	ck_assert_int_eq(mmapd_guard_begin(region), 0);
	ck_assert_uint_eq(p[page + 10], 42);
	ck_assert_int_eq(mmapd_guard_end(region), 0);

	truncate_behind(region);
	ck_assert_int_eq(mmapd_guard_begin(region), 0);
	ck_assert_uint_eq(p[page + 10], 0);
	p[page + 11] = 1;
	ck_assert_int_eq(mmapd_guard_end(region), -EFAULT);
	ck_assert_ptr_nonnull(strstr(mmapd_last_message(), "vanished"));
	ck_assert_int_eq(mmapd_guard_end(region), -EINVAL);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "guarded"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_mapping_guards_nest_to_the_depth_and_end_innermost_first)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *a = region_new(c, "nest", MMAPD_OPEN_CREATE, MMAPD_MODE_RW, 4096, 0, 0);
	struct mmapd_region *b = region_new(c, "nest", 0, MMAPD_MODE_RO, 0, 0, 0);
	int i;

	ck_assert_int_eq(mmapd_guard_begin(a), 0);
	ck_assert_int_eq(mmapd_guard_begin(b), 0);
	ck_assert_int_eq(mmapd_guard_end(a), -EINVAL);
	ck_assert_int_eq(mmapd_guard_end(b), 0);
	for (i = 1; i < MMAPD_GUARD_DEPTH; i++)
		ck_assert_int_eq(mmapd_guard_begin(b), 0);
	ck_assert_int_eq(mmapd_guard_begin(b), -EBUSY);
	for (i = 1; i < MMAPD_GUARD_DEPTH; i++)
		ck_assert_int_eq(mmapd_guard_end(b), 0);
	ck_assert_int_eq(mmapd_guard_end(a), 0);
	ck_assert_int_eq(mmapd_guard_end(a), -EINVAL);
	mmapd_region_close(b);
	mmapd_region_close(a);
	ck_assert_int_eq(mmapd_delete(c, "nest"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* Runs in its own process (Check forks) and must die of SIGBUS. */
START_TEST(test_mapping_fault_outside_a_guard_still_raises_sigbus)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *region = region_new(c, "unguarded", MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL,
	                                         MMAPD_MODE_RW, 2 * page, 0, 0);
	volatile unsigned char *p = mmapd_region_data(region);

	/*
	 * Install the guard's handler first, so that what is tested is its chaining, over the
	 * default action (sanitizers install a SIGBUS handler of their own that would exit).
	 */
	signal(SIGBUS, SIG_DFL);
	ck_assert_int_eq(mmapd_guard_begin(region), 0);
	ck_assert_int_eq(mmapd_guard_end(region), 0);
	mmapd_delete(c, "unguarded");
	truncate_behind(region);
	(void)p[page + 10];
	ck_abort_msg("reading a truncated page did not raise SIGBUS");
}
END_TEST

START_TEST(test_mapping_exec_mapping_is_refused_without_consent)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");

	region_open_fails(c, "exec", MMAPD_OPEN_CREATE | MMAPD_OPEN_EXEC, MMAPD_MODE_RO, 4096,
	                  -EPERM);
	/* The test daemon keeps allow_exec false (tests/check_exec.c has the rest). */
	ck_assert_ptr_nonnull(strstr(mmapd_last_message(), "allow_exec"));
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_mapping_stack_and_hugetlb_flags_map_anonymous_and_file_regions)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *anon = region_new(c, "stack", MMAPD_OPEN_CREATE |
	                                       MMAPD_OPEN_ANONYMOUS | MMAPD_OPEN_STACK,
	                                       MMAPD_MODE_RW, 16 * page, 0, 0);
	struct mmapd_region *huge;
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_HUGETLB, .mode = MMAPD_MODE_RW);
	int r;

	ck_assert_int_eq(mmapd_region_prewarm(anon, 0, 0), 0);
	((volatile char *)mmapd_region_data(anon))[16 * page - 1] = 1;
	/* Transparent huge pages: refused only by a kernel built without them. */
	r = mmapd_region_open(c, "stack", &o, &huge);
	if (access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0)
		ck_assert_msg(r == 0, "HUGETLB on an anonymous region: %s", mmapd_last_message());
	if (r == 0) {
		ck_assert_uint_eq(((volatile char *)mmapd_region_data(huge))[16 * page - 1], 1);
		mmapd_region_close(huge);
	}
	/* File regions take both too (tests/check_hugefile.c has the rest). */
	mmapd_region_close(region_new(c, "stack-file", MMAPD_OPEN_CREATE | MMAPD_OPEN_STACK,
	                              MMAPD_MODE_RW, 4096, 0, 0));
	mmapd_region_close(region_new(c, "stack-file", MMAPD_OPEN_HUGETLB, MMAPD_MODE_RW, 0, 0, 0));
	mmapd_region_close(anon);
	ck_assert_int_eq(mmapd_delete(c, "stack"), 0);
	ck_assert_int_eq(mmapd_delete(c, "stack-file"), 0);
	mmapd_disconnect(c);
}
END_TEST

struct pieces {
	const unsigned char *base;
	uint64_t next;      /* the offset the next piece must start at */
	size_t count;
	size_t first_len;
	bool within_pages;  /* every piece lay in one page */
	size_t stop_at;     /* stop (return 7) at this piece; 0: never */
};

static int piece_seen(void *data, uint64_t off, size_t len, void *userdata)
{
	struct pieces *pc = userdata;
	uintptr_t a = (uintptr_t)data;

	ck_assert_uint_eq(off, pc->next);
	ck_assert_ptr_eq(data, pc->base + off);
	if (pc->count++ == 0)
		pc->first_len = len;
	pc->within_pages &= a / page == (a + len - 1) / page;
	pc->next = off + len;
	return pc->count == pc->stop_at ? 7 : 0;
}

START_TEST(test_mapping_region_client_is_the_client_it_was_opened_on_until_closed)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_client *other = test_client_connect(&dmn, "check_mapping_other");
	struct mmapd_region *region = region_new(c, "owned", MMAPD_OPEN_CREATE, MMAPD_MODE_RW,
	                                         4096, 0, 0);
	struct mmapd_region *seen = region_new(other, "owned", 0, MMAPD_MODE_RO, 0, 0, 0);
	uint64_t lock;

	ck_assert_ptr_eq(mmapd_region_client(region), c);
	ck_assert_ptr_eq(mmapd_region_client(seen), other);
	ck_assert_ptr_null(mmapd_region_client(NULL));
	/* What it is for: a call by name on the region's own connection. */
	ck_assert_int_eq(mmapd_lock(mmapd_region_client(region), mmapd_region_name(region), 0, 8,
	                            MMAPD_LOCK_EXCLUSIVE, 0, &lock), 0);
	ck_assert_int_eq(mmapd_unlock(mmapd_region_client(region), lock), 0);
	/* The region keeps its client: still the same one after mmapd_disconnect(). */
	mmapd_disconnect(other);
	ck_assert_ptr_eq(mmapd_region_client(seen), other);
	ck_assert_int_eq(mmapd_lock(mmapd_region_client(seen), "owned", 0, 8, MMAPD_LOCK_SHARED, 0,
	                            &lock), -ENOTCONN);
	mmapd_region_close(seen);
	mmapd_region_close(region);
	ck_assert_int_eq(mmapd_delete(c, "owned"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_mapping_chunk_and_page_iteration_cover_exactly_the_window)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	uint64_t len = 3 * page + 50;
	struct mmapd_region *win = region_new(c, "iter", MMAPD_OPEN_CREATE, MMAPD_MODE_RO,
	                                      5 * page, 100, len);
	struct pieces pc = { .base = mmapd_region_data(win), .within_pages = true };

	ck_assert_int_eq(mmapd_region_foreach_page(win, 0, 0, piece_seen, &pc), 0);
	ck_assert_uint_eq(pc.next, len);
	ck_assert_uint_eq(pc.first_len, page - 100);
	ck_assert_uint_eq(pc.count, 4);
	ck_assert(pc.within_pages);

	pc = (struct pieces){ .base = mmapd_region_data(win), .next = 10 };
	ck_assert_int_eq(mmapd_region_foreach_chunk(win, 10, 2500, 1000, piece_seen, &pc), 0);
	ck_assert_uint_eq(pc.next, 2510);
	ck_assert_uint_eq(pc.count, 3);

	pc = (struct pieces){ .base = mmapd_region_data(win), .stop_at = 2 };
	ck_assert_int_eq(mmapd_region_foreach_chunk(win, 0, 0, 1, piece_seen, &pc), 7);
	ck_assert_uint_eq(pc.count, 2);
	ck_assert_int_eq(mmapd_region_foreach_chunk(win, 0, len + 1, 1, piece_seen, &pc), -ERANGE);
	ck_assert_int_eq(mmapd_region_foreach_chunk(win, 0, 0, 0, piece_seen, &pc), -EINVAL);
	ck_assert_uint_eq(mmapd_region_page_size(win), page);
	mmapd_region_close(win);
	ck_assert_int_eq(mmapd_delete(c, "iter"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_mapping_flush_range_batches_small_flushes_until_a_page_or_the_limit)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *rw = region_new(c, "flush", MMAPD_OPEN_CREATE, MMAPD_MODE_RW,
	                                     4 * page, 0, 0);
	int i;

	ck_assert_int_eq(mmapd_region_msync(rw, 10, 5), 1);
	ck_assert_int_eq(mmapd_region_msync(rw, 3 * page, 5), 1);
	ck_assert_int_eq(mmapd_region_msync(rw, 0, 0), 0);
	ck_assert_int_eq(mmapd_region_msync(rw, 0, 0), 0);
	ck_assert_int_eq(mmapd_region_msync(rw, 1, page), 0);
	ck_assert_int_eq(mmapd_region_msync(rw, 4 * page, 1), -ERANGE);
	for (i = 1; i < MMAPD_FLUSH_BATCH_MAX; i++)
		ck_assert_int_eq(mmapd_region_msync(rw, (uint64_t)i, 1), 1);
	ck_assert_int_eq(mmapd_region_msync(rw, 0, 1), 0);
	ck_assert_int_eq(mmapd_region_msync(rw, 20, 1), 1);
	ck_assert_int_eq(mmapd_region_msync(rw, 2 * page, page), 0);
	ck_assert_int_eq(mmapd_region_msync(rw, 0, 0), 0);
	mmapd_region_close(rw);
	ck_assert_int_eq(mmapd_delete(c, "flush"), 0);
	mmapd_disconnect(c);
}
END_TEST

struct flush_wait {
	uint64_t token;
	int error;
	bool done;
};

static void flush_event(struct mmapd_client *client, const struct mmapd_event *ev, void *userdata)
{
	struct flush_wait *fw = userdata;

	(void)client;
	if (ev->type == MMAPD_EVENT_FLUSH_DONE && ev->seq == fw->token) {
		fw->done = true;
		fw->error = ev->error;
	}
}

/* Starts an asynchronous flush of name and dispatches until its completion; returns its error. */
static int flush_async_wait(struct mmapd_client *c, const char *name)
{
	struct flush_wait fw = { 0 };
	int64_t until = test_now_ms() + TEST_WAIT_MS;

	mmapd_client_set_event_handler(c, flush_event, &fw);
	ck_assert_int_eq(mmapd_flush_async(c, name, &fw.token), 0);
	ck_assert_uint_ne(fw.token, 0);
	while (!fw.done && test_now_ms() < until)
		ck_assert_int_ge(mmapd_client_dispatch(c, 100), 0);
	ck_assert_msg(fw.done, "no FLUSH_DONE event for %s", name);
	mmapd_client_set_event_handler(c, NULL, NULL);
	return fw.error;
}

START_TEST(test_mapping_async_flush_completion_arrives_as_an_event)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_region *rw = region_new(c, "async", MMAPD_OPEN_CREATE, MMAPD_MODE_RW,
	                                     page, 0, 0);

	ck_assert_int_eq(mmapd_region_write(rw, 0, "durable", 7), 0);
	ck_assert_int_eq(flush_async_wait(c, "async"), 0);
	ck_assert_int_eq(flush_async_wait(c, "no-such-region"), -ENOENT);
	ck_assert_int_eq(mmapd_flush_async(c, "../bad", NULL), -EINVAL);
	mmapd_region_close(rw);
	ck_assert_int_eq(mmapd_delete(c, "async"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* Every call about one region refuses a NULL name itself (it once crashed some of them). */
START_TEST(test_mapping_region_calls_refuse_a_null_name)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_mapping");
	struct mmapd_policy manual = { .kind = MMAPD_POLICY_MANUAL };
	uint64_t out = 0;

	ck_assert_int_eq(mmapd_subscribe(c, NULL, &out), -EINVAL);
	ck_assert_int_eq(mmapd_unsubscribe(c, NULL), -EINVAL);
	ck_assert_int_eq(mmapd_flush_async(c, NULL, &out), -EINVAL);
	ck_assert_int_eq(mmapd_flush(c, NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(mmapd_report_changed(c, NULL, 0, 1, &out), -EINVAL);
	ck_assert_int_eq(mmapd_lock(c, NULL, 0, 1, MMAPD_LOCK_NOWAIT, 0, &out), -EINVAL);
	ck_assert_int_eq(mmapd_resize(c, NULL, page, 0), -EINVAL);
	ck_assert_int_eq(mmapd_set_policy(c, NULL, &manual), -EINVAL);
	ck_assert_int_eq(mmapd_clear_error(c, NULL), -EINVAL);
	ck_assert_int_eq(mmapd_chown(c, NULL, -1, 0), -EINVAL);
	ck_assert_int_eq(mmapd_chmod(c, NULL, 0600), -EINVAL);
	ck_assert_int_eq(mmapd_ping(c), 0);
	mmapd_disconnect(c);
}
END_TEST

static Suite *mapping_suite(void)
{
	Suite *s = suite_create("mapping");
	TCase *tc = tcase_create("mapping");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_mapping_four_processes_incrementing_one_counter_end_exact);
	tcase_add_test(tc, test_mapping_region_calls_refuse_a_null_name);
	tcase_add_test(tc, test_mapping_misaligned_atomic_view_is_refused);
	tcase_add_test(tc, test_mapping_atomic_view_out_of_range_is_refused);
	tcase_add_test(tc, test_mapping_odd_window_reads_right_bytes_and_takes_advice_prewarm_and_mlock);
	tcase_add_test(tc, test_mapping_cow_writes_stay_private_from_another_process);
	tcase_add_test(tc, test_mapping_guard_turns_truncated_page_into_error_and_process_survives);
	tcase_add_test(tc, test_mapping_guards_nest_to_the_depth_and_end_innermost_first);
	tcase_add_test_raise_signal(tc, test_mapping_fault_outside_a_guard_still_raises_sigbus,
	                            SIGBUS);
	tcase_add_test(tc, test_mapping_exec_mapping_is_refused_without_consent);
	tcase_add_test(tc, test_mapping_stack_and_hugetlb_flags_map_anonymous_and_file_regions);
	tcase_add_test(tc, test_mapping_region_client_is_the_client_it_was_opened_on_until_closed);
	tcase_add_test(tc, test_mapping_chunk_and_page_iteration_cover_exactly_the_window);
	tcase_add_test(tc, test_mapping_flush_range_batches_small_flushes_until_a_page_or_the_limit);
	tcase_add_test(tc, test_mapping_async_flush_completion_arrives_as_an_event);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(mapping_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
