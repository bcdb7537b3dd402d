/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of the resize coordinator (docs/coordination.md, "Resize"): growth reaches
 * every mapper, whose pointer stays put inside its reservation; a shrink asks every mapper
 * first, so nobody gets SIGBUS, and fails with ETIMEDOUT, changing nothing, when one does not
 * answer; a mapper that disconnects counts as having answered; resizes of one region queue;
 * ENOSPC is an error reply; anonymous regions grow but do not shrink; and a size the daemon did
 * not make (an ftruncate behind its back) is announced with "external": true.
 *
 * Each test starts its own mmapd, with the shrink_timeout_ms / size_check_ms it needs. Mappers
 * are session processes ($MMAPD_TESTCLIENT session, on libmmapd); where the exact events
 * matter, a raw connection of the test holds a grant too and reads them itself. Every session
 * must end with exit status 0 (test_sess_end also asserts: not SIGBUS, not SIGSEGV).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)

static off_t file_size(const struct test_daemon *d, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", d->data, name);
	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return st.st_size;
}

/*
 * Opens name on raw connection c and keeps the grant (the descriptor is closed: the grant is
 * what makes c a mapper in the daemon's eyes). Returns the region's generation.
 */
static uint64_t hold_grant(struct test_conn *c, const char *name)
{
	cJSON *reply = test_conn_callf(c, "{'op':'open','name':'%s','mode':'rw'}", name);
	const cJSON *region;
	uint64_t gen;

	test_assert_ok(reply);
	close(test_conn_take_fd(c));
	region = cJSON_GetObjectItemCaseSensitive(reply, "region");
	gen = test_json_u64(region, "generation");
	ck_assert_uint_ge(gen, 1);
	cJSON_Delete(reply);
	return gen;
}

/* The region's size and generation from stat. */
static void stat_size_gen(const struct test_daemon *d, const char *name, uint64_t *ret_size,
                          uint64_t *ret_gen)
{
	const cJSON *region;
	cJSON *reply = test_daemon_stat(d, name, &region);

	*ret_size = test_json_u64(region, "size");
	*ret_gen = test_json_u64(region, "generation");
	cJSON_Delete(reply);
}

/* Asserts ev is a resized event with exactly these fields. Frees it. */
static void check_resized(cJSON *ev, const char *name, uint64_t size, uint64_t old_size,
                          uint64_t gen, bool external)
{
	ck_assert_str_eq(test_json_str(ev, "event"), "resized");
	ck_assert_str_eq(test_json_str(ev, "region"), name);
	ck_assert_msg(test_json_u64(ev, "size") == size && test_json_u64(ev, "old_size") == old_size &&
	              test_json_u64(ev, "generation") == gen && test_json_bool(ev, "external") == external,
	              "expected resized size %llu old_size %llu generation %llu external %d, got %s",
	              (unsigned long long)size, (unsigned long long)old_size, (unsigned long long)gen,
	              external, test_describe(ev));
	cJSON_Delete(ev);
}

/* Asserts a resize reply is ok with the region's new size and generation. Frees it. */
static void check_resize_reply(cJSON *reply, uint64_t size, uint64_t gen)
{
	const cJSON *region;

	test_assert_ok(reply);
	region = cJSON_GetObjectItemCaseSensitive(reply, "region");
	ck_assert_msg(cJSON_IsObject(region), "resize reply without region: %s", test_describe(reply));
	ck_assert_uint_eq(test_json_u64(region, "size"), size);
	ck_assert_uint_eq(test_json_u64(region, "generation"), gen);
	cJSON_Delete(reply);
}

static uint64_t resize_send(struct test_conn *c, const char *name, uint64_t size)
{
	return test_conn_sendf(c, "{'op':'resize','name':'%s','size':%llu}", name,
	                       (unsigned long long)size);
}

/* ---- growth ---------------------------------------------------------------------------------- */

/*
 * Ends the n mapper sessions s (each exits 0), closes holder and r, asserts nothing of the
 * resize stays open in d (its open_fds back to fds0) and stops d.
 */
static void end_mappers(struct test_daemon *d, struct test_sess *s, int n, struct test_conn *holder,
                        struct test_conn *r, uint64_t fds0)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(test_sess_end(&s[i]), 0);
	test_conn_close(holder);
	test_conn_close(r);
	ck_assert_uint_eq(test_daemon_wait_status(d, "open_fds", fds0), fds0);
	test_daemon_stop(d);
}

START_TEST(test_resize_growth_reaches_ten_reserved_mappers_whose_pointers_stay)
{
	enum { NPROC = 10 };
	struct test_daemon d;
	struct test_sess s[NPROC];
	struct test_conn holder, r;
	char ptr[NPROC][64], want[256];
	uint64_t gen0, size, gen, fds0;
	struct stat st;
	char path[PATH_MAX];

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "grow", 64 * KIB, false);
	fds0 = test_daemon_status_u64(&d, "open_fds");
	test_conn_open_hello(&holder, &d);
	gen0 = hold_grant(&holder, "grow");
	for (int i = 0; i < NPROC; i++) {
		const char *o;

		test_sess_start(&s[i], &d, NULL);
		o = test_sess_ok(&s[i], "open grow rw reserve=%llu", 1 * MIB);
		ck_assert_uint_eq(test_line_u64(o, "len"), 64 * KIB);
		ck_assert_uint_eq(test_line_u64(o, "gen"), gen0);
		ck_assert(sscanf(strstr(o, "ptr="), "ptr=%63s", ptr[i]) == 1);
		(void)test_sess_ok(&s[i], "write 0 %d before-%d", i * 64, i);
	}

	test_conn_open_hello(&r, &d);
	check_resize_reply(test_conn_callf(&r, "{'op':'resize','name':'grow','size':%llu}",
	                                   256 * KIB), 256 * KIB, gen0 + 1);
	check_resized(test_conn_expect_event(&holder, "resized", TEST_WAIT_MS), "grow", 256 * KIB,
	              64 * KIB, gen0 + 1, false);
	/* The resizer holds no grant: it hears nothing. */
	test_conn_expect_no_event(&r, 20);
	ck_assert_int_eq(file_size(&d, "grow"), (off_t)(256 * KIB));
	/* Grown with posix_fallocate: the blocks are there. */
	snprintf(path, sizeof(path), "%s/grow", d.data);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg((uint64_t)st.st_blocks * 512 >= 256 * KIB, "growth left the file sparse "
	              "(%lld blocks)", (long long)st.st_blocks);
	stat_size_gen(&d, "grow", &size, &gen);
	ck_assert_uint_eq(size, 256 * KIB);
	ck_assert_uint_eq(gen, gen0 + 1);

	for (int i = 0; i < NPROC; i++) {
		char p[64];
		const char *o;

		snprintf(want, sizeof(want), "resized grow size=%llu old=%llu gen=%llu external=0",
		         256 * KIB, 64 * KIB, (unsigned long long)(gen0 + 1));
		test_sess_expect_event(&s[i], want);
		o = test_sess_ok(&s[i], "ptr 0");
		ck_assert(sscanf(strstr(o, "ptr="), "ptr=%63s", p) == 1);
		ck_assert_msg(strcmp(p, ptr[i]) == 0, "process %d: the mapping moved from %s to %s "
		              "although its reservation covers the growth", i, ptr[i], p);
		ck_assert_uint_eq(test_line_u64(o, "len"), 256 * KIB);
		ck_assert_uint_eq(test_line_u64(o, "gen"), gen0 + 1);
		/* The new area is usable: written here, read by the next process below. */
		(void)test_sess_ok(&s[i], "write 0 %llu after-%d", 200 * KIB + (unsigned)i * 64, i);
	}
	for (int i = 0; i < NPROC; i++) {
		int j = (i + 1) % NPROC;

		snprintf(want, sizeof(want), " after-%d", j);
		ck_assert_str_eq(test_sess_ok(&s[i], "read 0 %llu %zu", 200 * KIB + (unsigned)j * 64,
		                              strlen(want) - 1), want);
		snprintf(want, sizeof(want), " before-%d", j);
		ck_assert_str_eq(test_sess_ok(&s[i], "read 0 %d %zu", j * 64, strlen(want) - 1), want);
		(void)test_sess_ok(&s[i], "touch 0");
	}
	end_mappers(&d, s, NPROC, &holder, &r, fds0);
}
END_TEST

/* ---- shrinking ------------------------------------------------------------------------------- */

START_TEST(test_resize_shrink_with_cooperating_mappers_truncates_without_sigbus)
{
	enum { NPROC = 4 };
	struct test_daemon d;
	struct test_sess s[NPROC];
	struct test_conn holder, r;
	uint64_t gen0, rid, shrink, size, gen, fds0;
	cJSON *ev;
	char want[256];

	test_daemon_start(&d, "{\"shrink_timeout_ms\": 5000}");
	test_daemon_create(&d, "shrink", 256 * KIB, false);
	fds0 = test_daemon_status_u64(&d, "open_fds");
	test_conn_open_hello(&holder, &d);
	gen0 = hold_grant(&holder, "shrink");
	for (int i = 0; i < NPROC; i++) {
		test_sess_start(&s[i], &d, NULL);
		(void)test_sess_ok(&s[i], "open shrink rw");
		(void)test_sess_ok(&s[i], "write 0 %d keep-%d", 1000 + 16 * i, i);
		/* Touch every page of the mapping, once a millisecond, through the whole shrink. */
		(void)test_sess_ok(&s[i], "touch-loop on");
	}

	test_conn_open_hello(&r, &d);
	rid = resize_send(&r, "shrink", 64 * KIB);
	/* The raw holder is asked like everyone, and the shrink waits for its answer. */
	ev = test_conn_expect_event(&holder, "shrinking", TEST_WAIT_MS);
	ck_assert_str_eq(test_json_str(ev, "region"), "shrink");
	ck_assert_uint_eq(test_json_u64(ev, "size"), 64 * KIB);
	(void)test_json_u64(ev, "generation");
	shrink = test_json_u64(ev, "shrink");
	cJSON_Delete(ev);
	ck_assert_int_eq(file_size(&d, "shrink"), (off_t)(256 * KIB));
	test_reply_ok(test_conn_callf(&holder, "{'op':'shrink-ack','shrink':%llu}",
	                              (unsigned long long)shrink));

	check_resize_reply(test_conn_reply(&r, rid, TEST_WAIT_MS), 64 * KIB, gen0 + 1);
	ck_assert_int_eq(file_size(&d, "shrink"), (off_t)(64 * KIB));
	stat_size_gen(&d, "shrink", &size, &gen);
	ck_assert_uint_eq(size, 64 * KIB);
	ck_assert_uint_eq(gen, gen0 + 1);
	check_resized(test_conn_expect_event(&holder, "resized", TEST_WAIT_MS), "shrink", 64 * KIB,
	              256 * KIB, gen0 + 1, false);
	/* The shrink is over: acknowledging it again is harmless. */
	test_reply_error(test_conn_callf(&holder, "{'op':'shrink-ack','shrink':%llu}",
	                                 (unsigned long long)shrink),
	                 "ESRCH", ESRCH, NULL);

	for (int i = 0; i < NPROC; i++) {
		char *e = test_sess_find_event(&s[i], "shrinking shrink size=65536 gen=", TEST_WAIT_MS);

		ck_assert_msg(e != NULL, "process %d heard no shrinking event", i);
		free(e);
		snprintf(want, sizeof(want), "resized shrink size=%llu old=%llu gen=%llu external=0",
		         64 * KIB, 256 * KIB, (unsigned long long)(gen0 + 1));
		test_sess_expect_event(&s[i], want);
		ck_assert_msg(test_line_u64(test_sess_ok(&s[i], "touch-loop off"), "touches") > 0,
		              "process %d never touched its mapping", i);
		ck_assert_uint_eq(test_line_u64(test_sess_ok(&s[i], "ptr 0"), "len"), 64 * KIB);
		ck_assert_str_eq(test_sess_ok(&s[i], "touch 0"), " pages=16");
		snprintf(want, sizeof(want), " keep-%d", (i + 1) % NPROC);
		ck_assert_str_eq(test_sess_ok(&s[i], "read 0 %d 6", 1000 + 16 * ((i + 1) % NPROC)), want);
	}
	end_mappers(&d, s, NPROC, &holder, &r, fds0);
}
END_TEST

START_TEST(test_resize_shrink_with_a_mapper_that_never_acknowledges_times_out_and_changes_nothing)
{
	struct test_daemon d;
	struct test_sess coop, deaf;
	struct test_conn r;
	uint64_t size0, gen0, size, gen, fds0;
	int64_t t0, took;
	const cJSON *err;
	cJSON *reply;
	char pid[32];
	char *e;

	test_daemon_start(&d, "{\"shrink_timeout_ms\": 300}");
	test_daemon_create(&d, "stuck", 256 * KIB, false);
	stat_size_gen(&d, "stuck", &size0, &gen0);
	fds0 = test_daemon_status_u64(&d, "open_fds");
	test_sess_start(&coop, &d, NULL);
	(void)test_sess_ok(&coop, "open stuck rw");
	(void)test_sess_ok(&coop, "write 0 200000 tail");
	(void)test_sess_ok(&coop, "touch-loop on");
	test_sess_start(&deaf, &d, NULL);
	(void)test_sess_ok(&deaf, "open stuck rw");
	/* From here on the deaf process holds its grant and makes no library call. */
	(void)test_sess_ok(&deaf, "deaf");

	test_conn_open_hello(&r, &d);
	t0 = test_now_ms();
	reply = test_conn_callf(&r, "{'op':'resize','name':'stuck','size':%llu}", 64 * KIB);
	took = test_now_ms() - t0;
	test_assert_error(reply, "ETIMEDOUT", ETIMEDOUT);
	ck_assert_msg(took >= 280 && took < 3000, "the shrink failed after %lld ms, expected about "
	              "shrink_timeout_ms (300)", (long long)took);
	/* The message names the laggard. */
	err = cJSON_GetObjectItemCaseSensitive(reply, "error");
	snprintf(pid, sizeof(pid), "%d", (int)deaf.pid);
	ck_assert_msg(strstr(test_json_str(err, "message"), pid) != NULL,
	              "the ETIMEDOUT message does not name pid %s: %s", pid, test_describe(reply));
	cJSON_Delete(reply);

	/* Nothing changed. */
	ck_assert_int_eq(file_size(&d, "stuck"), (off_t)(256 * KIB));
	stat_size_gen(&d, "stuck", &size, &gen);
	ck_assert_uint_eq(size, size0);
	ck_assert_uint_eq(gen, gen0);

	/* The one who answered was told to take its tail back, and can. */
	e = test_sess_find_event(&coop, "shrinking stuck size=65536 ", TEST_WAIT_MS);
	ck_assert_msg(e != NULL, "the cooperating mapper heard no shrinking event");
	free(e);
	test_sess_expect_event(&coop, "shrink-cancelled stuck");
	ck_assert_msg(test_line_u64(test_sess_ok(&coop, "touch-loop off"), "touches") > 0,
	              "the cooperating mapper never touched its mapping");
	ck_assert_str_eq(test_sess_ok(&coop, "touch 0"), " pages=64");
	ck_assert_str_eq(test_sess_ok(&coop, "read 0 200000 4"), " tail");
	ck_assert_uint_eq(test_line_u64(test_sess_ok(&coop, "ptr 0"), "len"), 256 * KIB);

	/* The deaf one, reading at last, finds the shrink over and its whole mapping usable. */
	(void)test_sess_ok(&deaf, "hear");
	e = test_sess_find_event(&deaf, "shrink-cancelled stuck", TEST_WAIT_MS);
	ck_assert_msg(e != NULL, "the deaf mapper never heard shrink-cancelled");
	free(e);
	ck_assert_str_eq(test_sess_ok(&deaf, "read 0 200000 4"), " tail");
	ck_assert_str_eq(test_sess_ok(&deaf, "touch 0"), " pages=64");

	ck_assert_int_eq(test_sess_end(&coop), 0);
	ck_assert_int_eq(test_sess_end(&deaf), 0);
	test_conn_close(&r);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "open_fds", fds0), fds0);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_resize_mapper_that_disconnects_counts_as_acknowledged_and_resizes_queue)
{
	struct test_daemon d;
	struct test_sess deaf;
	struct test_conn r1, r2, holder;
	uint64_t id1, id2, size0, gen0;
	int64_t t_kill;
	cJSON *ev, *reply;

	test_daemon_start(&d, "{\"shrink_timeout_ms\": 10000}");
	test_daemon_create(&d, "gone", 256 * KIB, false);
	stat_size_gen(&d, "gone", &size0, &gen0);
	test_sess_start(&deaf, &d, NULL);
	(void)test_sess_ok(&deaf, "open gone rw");
	(void)test_sess_ok(&deaf, "deaf");

	test_conn_open_hello(&holder, &d);
	(void)hold_grant(&holder, "gone");
	test_conn_open_hello(&r1, &d);
	test_conn_open_hello(&r2, &d);
	id1 = resize_send(&r1, "gone", 64 * KIB);
	/* The shrink is under way once it asks; the raw holder answers, the deaf one does not. */
	ev = test_conn_expect_event(&holder, "shrinking", TEST_WAIT_MS);
	test_reply_ok(test_conn_callf(&holder, "{'op':'shrink-ack','shrink':%llu}",
	                              (unsigned long long)test_json_u64(ev, "shrink")));
	cJSON_Delete(ev);
	/* A second resize of the same region waits behind the first. */
	id2 = resize_send(&r2, "gone", 128 * KIB);
	ev = test_conn_event(&r1, 150);
	ck_assert_msg(ev == NULL, "unexpected frame on the resizer: %s", test_describe(ev));
	ev = test_conn_event(&r2, 10);
	ck_assert_msg(ev == NULL, "unexpected frame on the second resizer: %s", test_describe(ev));
	ck_assert_int_eq(file_size(&d, "gone"), (off_t)(256 * KIB));

	t_kill = test_now_ms();
	ck_assert_int_eq(test_sess_kill(&deaf, SIGKILL), 128 + SIGKILL);
	check_resize_reply(test_conn_reply(&r1, id1, TEST_WAIT_MS), 64 * KIB, gen0 + 1);
	ck_assert_msg(test_now_ms() - t_kill < 3000, "the shrink ended %lld ms after its only "
	              "laggard died", (long long)(test_now_ms() - t_kill));
	reply = test_conn_reply(&r2, id2, TEST_WAIT_MS);
	check_resize_reply(reply, 128 * KIB, gen0 + 2);
	ck_assert_int_eq(file_size(&d, "gone"), (off_t)(128 * KIB));
	check_resized(test_conn_expect_event(&holder, "resized", TEST_WAIT_MS), "gone", 64 * KIB,
	              256 * KIB, gen0 + 1, false);
	check_resized(test_conn_expect_event(&holder, "resized", TEST_WAIT_MS), "gone", 128 * KIB,
	              64 * KIB, gen0 + 2, false);
	test_conn_close(&holder);
	test_conn_close(&r1);
	test_conn_close(&r2);
	test_daemon_stop(&d);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------------- */

/*
 * Mounts a 2 MiB tmpfs on dir inside a mount namespace of this test process alone (the
 * daemon started afterwards inherits it; it vanishes with them). Returns true, or false with
 * the reason in why.
 */
static bool mount_small_tmpfs(const char *dir, char *why, size_t size)
{
	if (unshare(CLONE_NEWNS) < 0) {
		snprintf(why, size, "unshare(CLONE_NEWNS): %s", strerror(errno));
		return false;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		snprintf(why, size, "making / private: %s", strerror(errno));
		return false;
	}
	if (mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0700") < 0) {
		snprintf(why, size, "mount -t tmpfs -o size=2m: %s", strerror(errno));
		return false;
	}
	return true;
}

START_TEST(test_resize_growth_beyond_free_space_is_enospc_and_changes_nothing)
{
	struct test_daemon d;
	struct test_conn holder, r;
	char why[256];
	bool small;
	uint64_t gen0, size, gen;

	test_daemon_init(&d, NULL);
	small = mount_small_tmpfs(d.data, why, sizeof(why));
	test_daemon_launch(&d);
	test_conn_open_hello(&r, &d);
	if (small) {
		test_daemon_create(&d, "full", 1 * MIB, false);
		test_conn_open_hello(&holder, &d);
		gen0 = hold_grant(&holder, "full");
		test_reply_error(test_conn_callf(&r, "{'op':'resize','name':'full','size':%llu}",
		                                 8 * MIB),
		                 "ENOSPC", ENOSPC, NULL);
		ck_assert_int_eq(file_size(&d, "full"), (off_t)(1 * MIB));
		stat_size_gen(&d, "full", &size, &gen);
		ck_assert_uint_eq(size, 1 * MIB);
		ck_assert_uint_eq(gen, gen0);
		test_conn_expect_no_event(&holder, 50);
		/* What fits still grows. */
		check_resize_reply(test_conn_callf(&r, "{'op':'resize','name':'full','size':%llu}",
		                                   1 * MIB + 512 * KIB), 1 * MIB + 512 * KIB, gen0 + 1);
		check_resized(test_conn_expect_event(&holder, "resized", TEST_WAIT_MS), "full",
		              1 * MIB + 512 * KIB, 1 * MIB, gen0 + 1, false);
		test_conn_close(&holder);
	} else {
		printf("check_resize: skipping the ENOSPC assertion (no small file system): %s\n", why);
		fflush(stdout);
	}
	/* The other refusals need no special file system. */
	test_daemon_create(&d, "limits", 4096, false);
	test_reply_error(test_conn_callf(&r,
	                                 "{'op':'resize','name':'limits','size':1099511627777}"),
	                 "EFBIG", EFBIG, NULL);
	test_reply_error(test_conn_callf(&r, "{'op':'resize','name':'limits','size':0}"),
	                 "EINVAL", EINVAL, NULL);
	test_reply_error(test_conn_callf(&r, "{'op':'resize','name':'no-such','size':4096}"),
	                 "ENOENT", ENOENT, NULL);
	ck_assert_int_eq(file_size(&d, "limits"), 4096);
	test_conn_close(&r);

	if (small) {
		int st;

		/* Stop the daemon and unmount before the directory is removed. */
		ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
		st = test_wait_pid(d.pid, TEST_WAIT_MS);
		ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		              "mmapd did not exit cleanly after SIGTERM (0x%x)", (unsigned)st);
		d.pid = 0;
		ck_assert_int_eq(umount2(d.data, MNT_DETACH), 0);
	}
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_resize_anonymous_region_grows_in_place_but_does_not_shrink)
{
	struct test_daemon d;
	struct test_sess s;
	struct test_conn holder, r;
	uint64_t gen0;
	char p0[64], p1[64], want[128];

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "anon", 64 * KIB, true);
	test_conn_open_hello(&holder, &d);
	gen0 = hold_grant(&holder, "anon");
	test_sess_start(&s, &d, NULL);
	ck_assert(sscanf(strstr(test_sess_ok(&s, "open anon rw reserve=%llu", 1 * MIB), "ptr="),
	                 "ptr=%63s", p0) == 1);
	test_conn_open_hello(&r, &d);
	test_reply_error(test_conn_callf(&r, "{'op':'resize','name':'anon','size':%llu}", 32 * KIB),
	                 "EPERM", EPERM, NULL);
	test_conn_expect_no_event(&holder, 20);
	check_resize_reply(test_conn_callf(&r, "{'op':'resize','name':'anon','size':%llu}",
	                                   128 * KIB), 128 * KIB, gen0 + 1);
	check_resized(test_conn_expect_event(&holder, "resized", TEST_WAIT_MS), "anon", 128 * KIB,
	              64 * KIB, gen0 + 1, false);
	snprintf(want, sizeof(want), "resized anon size=131072 old=65536 gen=%llu external=0",
	         (unsigned long long)(gen0 + 1));
	test_sess_expect_event(&s, want);
	ck_assert(sscanf(strstr(test_sess_ok(&s, "ptr 0"), "ptr="), "ptr=%63s", p1) == 1);
	ck_assert_str_eq(p0, p1);
	(void)test_sess_ok(&s, "write 0 100000 grown");
	ck_assert_str_eq(test_sess_ok(&s, "touch 0"), " pages=32");
	ck_assert_int_eq(test_sess_end(&s), 0);
	test_conn_close(&holder);
	test_conn_close(&r);
	test_daemon_stop(&d);
}
END_TEST

/* A grow-only resize below the region's size changes nothing and asks no mapper to let go. */
START_TEST(test_resize_grow_only_never_shrinks_and_still_grows)
{
	struct test_daemon d;
	struct test_conn holder, r;
	uint64_t gen0, size, gen;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "vec", 64 * KIB, false);
	test_conn_open_hello(&holder, &d);
	gen0 = hold_grant(&holder, "vec");
	test_conn_open_hello(&r, &d);
	check_resize_reply(test_conn_callf(&r, "{'op':'resize','name':'vec','size':%llu,"
	                                   "'grow_only':true}", 32 * KIB), 64 * KIB, gen0);
	test_conn_expect_no_event(&holder, 20);
	stat_size_gen(&d, "vec", &size, &gen);
	ck_assert_uint_eq(size, 64 * KIB);
	ck_assert_uint_eq(gen, gen0);
	check_resize_reply(test_conn_callf(&r, "{'op':'resize','name':'vec','size':%llu,"
	                                   "'grow_only':true}", 128 * KIB), 128 * KIB, gen0 + 1);
	check_resized(test_conn_expect_event(&holder, "resized", TEST_WAIT_MS), "vec", 128 * KIB,
	              64 * KIB, gen0 + 1, false);
	test_reply_error(test_conn_callf(&r,
	                                 "{'op':'resize','name':'vec','size':%llu,'grow_only':1}",
	                                 256 * KIB),
	                 "EINVAL", EINVAL, NULL);
	test_conn_close(&holder);
	test_conn_close(&r);
	test_daemon_stop(&d);
}
END_TEST

/* ---- size changes the daemon did not make -------------------------------------------------- */

START_TEST(test_resize_external_ftruncate_is_announced_to_grant_holders)
{
	struct test_daemon d;
	struct test_sess s;
	struct test_conn holder;
	uint64_t gen0, size, gen;
	char path[PATH_MAX], want[256];
	int fd;

	test_daemon_start(&d, "{\"size_check_ms\": 50}");
	test_daemon_create(&d, "ext", 64 * KIB, false);
	test_conn_open_hello(&holder, &d);
	gen0 = hold_grant(&holder, "ext");
	test_sess_start(&s, &d, NULL);
	(void)test_sess_ok(&s, "open ext rw reserve=%llu", 1 * MIB);

	/* Someone with a read-write descriptor grows the file behind the daemon's back. */
	snprintf(path, sizeof(path), "%s/ext", d.data);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(ftruncate(fd, 128 * KIB), 0);
	close(fd);

	check_resized(test_conn_expect_event(&holder, "resized", 3000), "ext", 128 * KIB, 64 * KIB,
	              gen0 + 1, true);
	snprintf(want, sizeof(want), "resized ext size=%llu old=%llu gen=%llu external=1",
	         128 * KIB, 64 * KIB, (unsigned long long)(gen0 + 1));
	test_sess_expect_event(&s, want);
	stat_size_gen(&d, "ext", &size, &gen);
	ck_assert_uint_eq(size, 128 * KIB);
	ck_assert_uint_eq(gen, gen0 + 1);
	/* Announced once, not at every check. */
	test_conn_expect_no_event(&holder, 200);
	ck_assert_uint_eq(test_line_u64(test_sess_ok(&s, "ptr 0"), "len"), 128 * KIB);
	ck_assert_str_eq(test_sess_ok(&s, "touch 0"), " pages=32");
	ck_assert_int_eq(test_sess_end(&s), 0);
	test_conn_close(&holder);
	test_daemon_stop(&d);
}
END_TEST

/*
 * A client that acknowledged a shrink and then opens the region again is not asked again, so
 * the open must hand it a window that stops where the shrink will cut: otherwise its new
 * mapping reaches the tail and the truncation kills it with SIGBUS (found by make soak).
 */
START_TEST(test_resize_open_during_a_shrink_reports_the_size_the_shrink_heads_for)
{
	struct test_daemon d;
	struct test_conn a, b, c;
	cJSON *reply, *ev;
	const cJSON *region;
	uint64_t rid, shrink;

	test_daemon_start(&d, "{\"shrink_timeout_ms\": 10000}");
	test_daemon_create(&d, "cut", 64 * KIB, false);
	test_conn_open_hello(&a, &d);
	test_conn_open_hello(&b, &d);
	test_conn_open_hello(&c, &d);
	reply = test_conn_callf(&a, "{'op':'open','name':'cut','mode':'rw'}");
	test_assert_ok(reply);
	close(test_conn_take_fd(&a));
	cJSON_Delete(reply);
	reply = test_conn_callf(&b, "{'op':'open','name':'cut','mode':'ro'}");
	test_assert_ok(reply);
	close(test_conn_take_fd(&b));
	cJSON_Delete(reply);

	/* b holds the shrink in its asking phase by not answering yet. */
	rid = test_conn_sendf(&c, "{'op':'resize','name':'cut','size':%llu}", 16 * KIB);
	ev = test_conn_expect_event(&a, "shrinking", TEST_WAIT_MS);
	shrink = test_json_u64(ev, "shrink");
	cJSON_Delete(ev);
	test_reply_ok(test_conn_callf(&a, "{'op':'shrink-ack','shrink':%llu}",
	                              (unsigned long long)shrink));

	reply = test_conn_callf(&a, "{'op':'open','name':'cut','mode':'rw'}");
	test_assert_ok(reply);
	close(test_conn_take_fd(&a));
	region = cJSON_GetObjectItemCaseSensitive(reply, "region");
	ck_assert_uint_eq(test_json_u64(region, "size"), 16 * KIB);
	cJSON_Delete(reply);

	ev = test_conn_expect_event(&b, "shrinking", TEST_WAIT_MS);
	cJSON_Delete(ev);
	test_reply_ok(test_conn_callf(&b, "{'op':'shrink-ack','shrink':%llu}",
	                              (unsigned long long)shrink));
	reply = test_conn_reply(&c, rid, TEST_WAIT_MS);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	test_conn_close(&a);
	test_conn_close(&b);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

static Suite *resize_suite(void)
{
	Suite *s = suite_create("resize");
	TCase *tc = tcase_create("resize");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_resize_growth_reaches_ten_reserved_mappers_whose_pointers_stay);
	tcase_add_test(tc, test_resize_open_during_a_shrink_reports_the_size_the_shrink_heads_for);
	tcase_add_test(tc, test_resize_shrink_with_cooperating_mappers_truncates_without_sigbus);
	tcase_add_test(tc, test_resize_shrink_with_a_mapper_that_never_acknowledges_times_out_and_changes_nothing);
	tcase_add_test(tc, test_resize_mapper_that_disconnects_counts_as_acknowledged_and_resizes_queue);
	tcase_add_test(tc, test_resize_growth_beyond_free_space_is_enospc_and_changes_nothing);
	tcase_add_test(tc, test_resize_anonymous_region_grows_in_place_but_does_not_shrink);
	tcase_add_test(tc, test_resize_grow_only_never_shrinks_and_still_grows);
	tcase_add_test(tc, test_resize_external_ftruncate_is_announced_to_grant_holders);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(resize_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
