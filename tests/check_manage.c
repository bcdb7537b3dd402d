/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of managing regions like files (docs/protocol.md, "rename" and "copy";
 * timestamps in the region object), against a real daemon from real client processes
 * (mmapd-testclient sessions): a rename under two holders who keep their mappings, locks
 * and subscription and hear "renamed"; a rename that refuses to clobber and one that
 * replaces (the replaced region's holder hears "deleted"); the daemon's own name checks;
 * copies (content, method, holes kept, no clobbering); mtime and ctime moving after a write
 * through a mapping; and the attacks of another user (uid 65534).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"

#define PAGE 4096u

/* Starts a daemon whose socket other uids reach (the test directories are 0700). */
static void manage_daemon_start(struct test_daemon *d, const char *config)
{
	char parent[TEST_PATH_MAX];

	test_daemon_init(d, config);
	snprintf(parent, sizeof(parent), "%s", d->dir);
	ck_assert_int_eq(chmod(d->dir, 0711), 0);
	ck_assert_int_eq(chmod(dirname(parent), 0711), 0);
	test_daemon_launch(d);
}

static cJSON *manage_stat(const struct test_daemon *d, const char *name, const cJSON **ret_region);

/* Asserts the session's result for cmd is exactly want. */
static void sess_expect(struct test_sess *s, const char *want, const char *cmd)
{
	const char *got = test_sess_cmd(s, "%s", cmd);

	ck_assert_msg(strcmp(got, want) == 0, "%s: got '%s', want '%s'", cmd, got, want);
}

/* Asserts the session's result for cmd starts with want. */
static void sess_expect_prefix(struct test_sess *s, const char *want, const char *cmd)
{
	const char *got = test_sess_cmd(s, "%s", cmd);

	ck_assert_msg(strncmp(got, want, strlen(want)) == 0, "%s: got '%s', want '%s...'", cmd, got,
	              want);
}

/* Asserts an event starting with want comes to s. */
static void sess_expect_event_prefix(struct test_sess *s, const char *want)
{
	char *ev = test_sess_find_event(s, want, TEST_WAIT_MS);

	ck_assert_msg(ev != NULL, "no event '%s...'", want);
	free(ev);
}

START_TEST(test_rename_under_two_holders_keeps_mappings_locks_and_subscriptions)
{
	struct test_daemon d;
	struct test_sess a, b, c;
	uint64_t lock;

	test_daemon_start(&d, NULL);
	test_sess_start(&a, &d, "a");
	test_sess_start(&b, &d, "b");
	test_sess_ok(&a, "open r rw create=%u", 2 * PAGE);
	test_sess_ok(&a, "write 0 0 hello");
	test_sess_ok(&b, "open r rw");
	test_sess_ok(&b, "subscribe r");
	lock = test_line_u64(test_sess_ok(&a, "lock r 0 8 exclusive"), "lock");

	test_sess_ok(&a, "rename r r2");
	/* The renamer hears it too, before its reply: its window is renamed already. */
	test_sess_expect_event(&a, "renamed r to=r2");
	sess_expect(&a, "ok name=r2", "name 0");
	test_sess_expect_event(&b, "renamed r to=r2");
	sess_expect(&b, "ok name=r2", "name 0");

	/* Both mappings still work, and are still the same pages. */
	test_sess_ok(&a, "write 0 0 world");
	sess_expect(&b, "ok world", "read 0 0 5");
	/* The lock taken under the old name is held under the new one and released by id. */
	sess_expect_prefix(&b, "err EAGAIN", "lock r2 0 8 exclusive nowait");
	test_sess_ok(&a, "unlock %llu", (unsigned long long)lock);
	test_sess_ok(&b, "lock r2 0 8 exclusive nowait");
	/* The subscription follows: a change reported under the new name reaches b. */
	test_sess_ok(&a, "changed r2 0 5");
	sess_expect_event_prefix(&b, "changed r2 ");

	/* A third process finds the data under the new name only. */
	test_sess_start(&c, &d, "c");
	test_sess_ok(&c, "open r2 ro");
	sess_expect(&c, "ok world", "read 0 0 5");
	sess_expect_prefix(&c, "err ENOENT", "open r ro");
	sess_expect_prefix(&c, "err ENOENT", "stat r");
	sess_expect_prefix(&c, "ok size=8192", "stat r2");
	ck_assert_int_eq(test_sess_end(&c), 0);
	ck_assert_int_eq(test_sess_end(&b), 0);
	ck_assert_int_eq(test_sess_end(&a), 0);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_rename_keeps_fast_locks_policy_owner_and_mode_across_a_restart)
{
	struct test_daemon d;
	struct test_sess a, b;
	char path[TEST_PATH_MAX + 64];
	const cJSON *region;
	cJSON *reply;
	uint64_t lock;
	char *text;

	test_daemon_start(&d, NULL);
	test_daemon_create_perm(&d, "m", PAGE, 0640);
	test_sess_start(&a, &d, "a");
	test_sess_start(&b, &d, "b");
	test_sess_ok(&a, "open m rw");
	test_sess_ok(&b, "open m rw");
	test_sess_ok(&a, "policy m every-writes:7");
	/* A whole-region lock goes through the control page: it is mapped under the old name. */
	lock = test_line_u64(test_sess_ok(&a, "lock m 0 0 exclusive"), "lock");
	test_sess_ok(&a, "rename m m2");
	sess_expect_event_prefix(&a, "renamed m to=m2");
	sess_expect_prefix(&b, "err EAGAIN", "lock m2 0 0 exclusive nowait");
	test_sess_ok(&a, "unlock %llu", (unsigned long long)lock);
	lock = test_line_u64(test_sess_ok(&b, "lock m2 0 0 exclusive nowait"), "lock");
	sess_expect_prefix(&a, "err EAGAIN", "lock m2 0 0 exclusive nowait");
	test_sess_ok(&b, "unlock %llu", (unsigned long long)lock);
	test_sess_ok(&a, "lock m2 0 0 exclusive nowait");
	sess_expect_prefix(&a, "ok size=4096 gen=1 poisoned=0 seq=0 policy=every-writes:7", "stat m2");
	ck_assert_int_eq(test_sess_end(&b), 0);
	ck_assert_int_eq(test_sess_end(&a), 0);

	/* The metadata moved with the file (on disk before the reply): after a crash and a
	 * restart m2 has m's owner, mode and policy. */
	snprintf(path, sizeof(path), "%s/.mmapd/meta/m.json", d.data);
	for (int i = 0; i < TEST_WAIT_MS / 10 && access(path, F_OK) == 0; i++)
		usleep(10000);
	ck_assert_int_eq(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/.mmapd/meta/m2.json", d.data);
	ck_assert_int_eq(access(path, F_OK), 0);
	test_daemon_kill(&d);
	test_daemon_restart(&d);
	reply = manage_stat(&d, "m2", &region);
	ck_assert_ptr_nonnull(reply);
	ck_assert_uint_eq(test_json_u64(region, "perm"), 0640);
	text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(region, "policy"));
	ck_assert_str_eq(text, "{\"kind\":\"every-writes\",\"value\":7}");
	cJSON_free(text);
	cJSON_Delete(reply);
	ck_assert_ptr_null(manage_stat(&d, "m", &region));
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_rename_refuses_to_clobber_unless_replace_and_the_replaced_holder_hears_deleted)
{
	struct test_daemon d;
	struct test_sess a, b;

	test_daemon_start(&d, NULL);
	test_sess_start(&a, &d, "a");
	test_sess_start(&b, &d, "b");
	test_sess_ok(&a, "open x rw create=%u", PAGE);
	test_sess_ok(&a, "write 0 0 XXX");
	test_sess_ok(&b, "open y rw create=%u", PAGE);
	test_sess_ok(&b, "write 0 0 YYY");

	sess_expect_prefix(&a, "err EEXIST", "rename x y");
	sess_expect(&b, "ok YYY", "read 0 0 3");
	test_sess_ok(&a, "rename x y replace");
	test_sess_expect_event(&b, "deleted y");
	test_sess_expect_event(&a, "renamed x to=y");
	/* b's mapping lives on (the old file), and y is now x's bytes. */
	sess_expect(&b, "ok YYY", "read 0 0 3");
	test_sess_ok(&b, "open y ro");
	sess_expect(&b, "ok XXX", "read 1 0 3");
	sess_expect_prefix(&a, "err ENOENT", "stat x");
	sess_expect_prefix(&a, "err ENOENT", "rename x z");
	sess_expect_prefix(&a, "err EINVAL", "rename y y");
	ck_assert_int_eq(test_sess_end(&b), 0);
	ck_assert_int_eq(test_sess_end(&a), 0);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_rename_checks_names_and_renames_anonymous_regions)
{
	struct test_daemon d;
	struct test_conn c;
	struct test_sess a;
	cJSON *reply;
	char *text;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "f", PAGE, false);
	test_conn_open(&c, &d);
	reply = test_conn_hello_version(&c, 1);
	text = cJSON_PrintUnformatted(reply);
	ck_assert_msg(strstr(text, "\"manage\"") != NULL, "no manage feature: %s", text);
	cJSON_free(text);
	cJSON_Delete(reply);
	test_reply_error(test_conn_callf(&c, "{'op':'rename','name':'f','to':'../x'}"),
	                 "EINVAL", EINVAL, "field 'to'");
	test_reply_error(test_conn_callf(&c, "{'op':'rename','name':'f','to':'a/b'}"),
	                 "EINVAL", EINVAL, "field 'to'");
	test_reply_error(test_conn_callf(&c, "{'op':'rename','name':'f'}"), "EINVAL", EINVAL,
	                 "'to'");
	test_reply_error(test_conn_callf(&c, "{'op':'rename','name':'f','to':'f'}"), "EINVAL",
	                 EINVAL, "the same");
	test_reply_error(test_conn_callf(&c, "{'op':'copy','name':'f','to':'.hidden'}"), "EINVAL",
	                 EINVAL, "field 'to'");
	test_conn_close(&c);

	/* An anonymous region is renamed in the daemon; it cannot take a file region's name. */
	test_sess_start(&a, &d, "a");
	test_sess_ok(&a, "open m rw create=%u anon", PAGE);
	test_sess_ok(&a, "write 0 0 anon");
	sess_expect_prefix(&a, "err EEXIST", "rename m f");
	sess_expect_prefix(&a, "err EEXIST", "rename m f replace");
	test_sess_ok(&a, "rename m m2");
	test_sess_expect_event(&a, "renamed m to=m2");
	test_sess_ok(&a, "open m2 ro");
	sess_expect(&a, "ok anon", "read 1 0 4");
	sess_expect_prefix(&a, "err ENOENT", "open m ro");
	ck_assert_int_eq(test_sess_end(&a), 0);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_copy_makes_an_equal_region_keeps_holes_and_refuses_to_clobber)
{
	struct test_daemon d;
	struct test_sess a;
	char path[TEST_PATH_MAX + 16];
	struct stat st;
	const char *got;

	test_daemon_start(&d, NULL);
	test_sess_start(&a, &d, "a");
	test_sess_ok(&a, "open src rw create=%u", 4 * PAGE);
	test_sess_ok(&a, "write 0 0 head");
	test_sess_ok(&a, "write 0 12000 tail");
	got = test_sess_ok(&a, "copy src dst");
	ck_assert_msg(strcmp(got, " method=reflink") == 0 || strcmp(got, " method=copy_file_range") == 0 ||
	              strcmp(got, " method=bytes") == 0, "copy: %s", got);
	test_sess_ok(&a, "open dst ro");
	sess_expect(&a, "ok head", "read 1 0 4");
	sess_expect(&a, "ok tail", "read 1 12000 4");
	sess_expect_prefix(&a, "ok size=16384", "stat dst");
	/* No clobbering without replace; with it, the copy is made again. */
	test_sess_ok(&a, "write 0 0 HEAD");
	sess_expect_prefix(&a, "err EEXIST", "copy src dst");
	test_sess_ok(&a, "copy src dst replace");
	test_sess_expect_event(&a, "deleted dst");
	test_sess_ok(&a, "open dst ro");
	sess_expect(&a, "ok HEAD", "read 2 0 4");
	sess_expect_prefix(&a, "err ENOENT", "copy nosuch other");
	/* An anonymous source makes a file region. */
	test_sess_ok(&a, "open anon rw create=%u anon", PAGE);
	test_sess_ok(&a, "write 3 10 memfd");
	sess_expect(&a, "ok method=bytes", "copy anon fromanon");
	snprintf(path, sizeof(path), "%s/fromanon", d.data);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, PAGE);

	/* A sparse 64 MiB source with one written page copies to a file just as sparse. */
	test_sess_ok(&a, "open big rw create=%u sparse", 64u << 20);
	test_sess_ok(&a, "write 4 33554432 mid");
	test_sess_ok(&a, "copy big big2");
	test_sess_ok(&a, "open big2 ro");
	sess_expect(&a, "ok mid", "read 5 33554432 3");
	snprintf(path, sizeof(path), "%s/big2", d.data);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 64 << 20);
	ck_assert_msg(st.st_blocks * 512 < (1 << 20), "the copy holds %lld bytes of blocks",
	              (long long)st.st_blocks * 512);
	ck_assert_int_eq(test_sess_end(&a), 0);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_stat_and_list_report_mtime_and_ctime_that_move_after_a_write)
{
	struct test_daemon d;
	struct test_sess a;
	struct mmapd_client *c;
	struct mmapd_region_list *list;
	uint64_t m1, c1, m2;
	const char *got;

	test_daemon_start(&d, NULL);
	test_sess_start(&a, &d, "a");
	test_sess_ok(&a, "open t rw create=%u", PAGE);
	got = test_sess_ok(&a, "times t");
	m1 = test_line_u64(got, "mtime");
	c1 = test_line_u64(got, "ctime");
	/* Some time in this century, in microseconds. */
	ck_assert_uint_gt(m1, 1500000000ull * 1000000);
	ck_assert_uint_ge(c1, m1);
	usleep(20000);
	test_sess_ok(&a, "write 0 0 x");
	test_sess_ok(&a, "flush t");
	m2 = test_line_u64(test_sess_ok(&a, "times t"), "mtime");
	ck_assert_msg(m2 > m1, "mtime %llu did not move past %llu", (unsigned long long)m2,
	              (unsigned long long)m1);
	/* Unheld, from the file itself, and in list. */
	test_sess_ok(&a, "close 0");
	ck_assert_uint_eq(test_line_u64(test_sess_ok(&a, "times t"), "mtime"), m2);
	c = test_client_connect(&d, "lister");
	ck_assert_int_eq(mmapd_list_regions(c, &list), 0);
	ck_assert_uint_eq(mmapd_region_list_count(list), 1);
	ck_assert_uint_eq(mmapd_region_list_at(list, 0)->mtime_us, m2);
	ck_assert_uint_ge(mmapd_region_list_at(list, 0)->ctime_us, m2);
	mmapd_region_list_free(list);
	mmapd_disconnect(c);
	ck_assert_int_eq(test_sess_end(&a), 0);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_another_user_may_not_rename_copy_truncate_or_clobber_what_it_may_not_touch)
{
	struct test_daemon d;
	struct test_conn n;

	if (!test_is_root())
		return;
	manage_daemon_start(&d, "{\"socket_mode\": \"0666\", "
	                    "\"max_regions_created_per_client\": 2}");
	test_daemon_create_perm(&d, "secret", PAGE, 0600);
	test_daemon_create_perm(&d, "public", PAGE, 0644);
	test_conn_open_hello_as(&n, &d, TEST_NOBODY, TEST_NOBODY);
	/* Neither read nor write: no rename, no copy (no reading it through a copy). */
	test_reply_error(test_conn_callf(&n, "{'op':'rename','name':'secret','to':'mine'}"),
	                 "EACCES", EACCES, NULL);
	test_reply_error(test_conn_callf(&n, "{'op':'copy','name':'secret','to':'mine'}"),
	                 "EACCES", EACCES, NULL);
	/* Read but not write: a copy yes (its own region), a rename no. */
	test_reply_error(test_conn_callf(&n, "{'op':'rename','name':'public','to':'mine'}"),
	                 "EACCES", EACCES, NULL);
	test_reply_ok(test_conn_callf(&n, "{'op':'copy','name':'public','to':'mine'}"));
	/* Its own region onto another user's: replacing is deleting, refused. */
	test_reply_error(test_conn_callf(&n, "{'op':'rename','name':'mine','to':'public',"
	                                 "'replace':true}"), "EACCES", EACCES, NULL);
	test_reply_error(test_conn_callf(&n, "{'op':'copy','name':'mine','to':'secret',"
	                                 "'replace':true}"), "EACCES", EACCES, NULL);
	/* Read but not write: no emptying it by an open, no truncation on close. */
	test_reply_error(test_conn_callf(&n, "{'op':'open','name':'public','mode':'rw',"
	                                 "'create':true,'size':1,'truncate':true}"),
	                 "EACCES", EACCES, NULL);
	test_reply_error(test_conn_callf(&n, "{'op':'truncate-on-close','name':'public','size':0}"),
	                 "EACCES", EACCES, NULL);
	/* Its own region it may rename. */
	test_reply_ok(test_conn_callf(&n, "{'op':'rename','name':'mine','to':'mine2'}"));
	/* Copies count as creations: the second is the last this connection may make. */
	test_reply_ok(test_conn_callf(&n, "{'op':'copy','name':'public','to':'c2'}"));
	test_reply_error(test_conn_callf(&n, "{'op':'copy','name':'public','to':'c3'}"),
	                 "EAGAIN", EAGAIN, "max_regions_created_per_client");
	test_conn_close(&n);
	test_daemon_assert_alive(&d);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_zero_length_region_grows_and_every_holder_follows)
{
	struct test_daemon d;
	struct test_sess a, b;
	const char *got;
	uint64_t ptr;

	test_daemon_start(&d, NULL);
	test_sess_start(&a, &d, "a");
	test_sess_start(&b, &d, "b");
	/* File and anonymous: created empty, opened with and without a reservation. */
	got = test_sess_ok(&a, "open z rw create=0 reserve=%u", 16 * PAGE);
	ck_assert_uint_eq(test_line_u64(got, "len"), 0);
	ck_assert_uint_eq(test_line_u64(got, "size"), 0);
	ptr = strtoull(strstr(got, "ptr=") + 4, NULL, 16);
	ck_assert_uint_ne(ptr, 0);
	got = test_sess_ok(&b, "open z ro");
	ck_assert_uint_eq(test_line_u64(got, "len"), 0);
	sess_expect_prefix(&b, "ok size=0 ", "stat z");
	test_sess_ok(&a, "open za rw create=0 anon");

	test_sess_ok(&a, "resize z %u", 2 * PAGE);
	sess_expect_event_prefix(&a, "resized z size=8192 old=0");
	sess_expect_event_prefix(&b, "resized z size=8192 old=0");
	/* The reserved window grew in place; the other one was mapped afresh. */
	got = test_sess_ok(&a, "ptr 0");
	ck_assert_uint_eq(strtoull(strstr(got, "ptr=") + 4, NULL, 16), ptr);
	ck_assert_uint_eq(test_line_u64(got, "len"), 2 * PAGE);
	test_sess_ok(&a, "write 0 5000 grown");
	sess_expect(&b, "ok grown", "read 0 5000 5");
	test_sess_ok(&a, "resize za %u", PAGE);
	sess_expect_event_prefix(&a, "resized za size=4096 old=0");
	test_sess_ok(&a, "write 1 0 anon");
	sess_expect(&a, "ok anon", "read 1 0 4");
	ck_assert_int_eq(test_sess_end(&b), 0);
	ck_assert_int_eq(test_sess_end(&a), 0);
	test_daemon_stop(&d);
}
END_TEST

/*
 * The region object of name from a fresh connection (the caller frees the reply), or NULL
 * when stat says ENOENT.
 */
static cJSON *manage_stat(const struct test_daemon *d, const char *name, const cJSON **ret_region)
{
	struct test_conn c;
	cJSON *reply;

	test_conn_open_hello(&c, d);
	reply = test_conn_callf(&c, "{'op':'stat','name':'%s'}", name);
	test_conn_close(&c);
	if (!test_json_bool(reply, "ok")) {
		test_reply_error(reply, "ENOENT", ENOENT, NULL);
		return NULL;
	}
	*ret_region = cJSON_GetObjectItemCaseSensitive(reply, "region");
	return reply;
}

/* Polls stat until name's size is size (UINT64_MAX: until it is gone); asserts it happened. */
static void manage_wait_size(const struct test_daemon *d, const char *name, uint64_t size)
{
	for (int i = 0; i < TEST_WAIT_MS / 10; i++) {
		const cJSON *region;
		cJSON *reply = manage_stat(d, name, &region);
		uint64_t got = reply ? test_json_u64(region, "size") : UINT64_MAX;

		cJSON_Delete(reply);
		if (got == size)
			return;
		usleep(10000);
	}
	ck_abort_msg("region '%s' never got size %llu", name, (unsigned long long)size);
}

START_TEST(test_temporary_region_goes_with_its_last_holder_also_when_killed)
{
	struct test_daemon d;
	struct test_sess a, b, e;
	struct test_conn sub;
	char path[TEST_PATH_MAX + 16];
	const cJSON *region;
	cJSON *reply, *ev;

	test_daemon_start(&d, NULL);
	test_sess_start(&a, &d, "a");
	test_sess_start(&b, &d, "b");
	test_sess_ok(&a, "open t rw create=%u temporary", PAGE);
	test_sess_ok(&b, "open t ro");
	reply = manage_stat(&d, "t", &region);
	ck_assert_ptr_nonnull(reply);
	ck_assert(test_json_bool(region, "temporary"));
	cJSON_Delete(reply);
	test_conn_open_hello(&sub, &d);
	test_conn_subscribe(&sub, "t");
	/* The creator closes: b still holds it. */
	test_sess_ok(&a, "close 0");
	test_sess_ok(&a, "ping");
	manage_wait_size(&d, "t", PAGE);
	/* The last holder dies without closing: it goes all the same, file and all. */
	test_sess_kill(&b, SIGKILL);
	manage_wait_size(&d, "t", UINT64_MAX);
	snprintf(path, sizeof(path), "%s/t", d.data);
	ck_assert_int_eq(access(path, F_OK), -1);
	ev = test_conn_expect_event(&sub, "deleted", TEST_WAIT_MS);
	cJSON_Delete(ev);
	test_conn_close(&sub);

	/* Anonymous: its creator exits, and it goes. */
	test_sess_start(&e, &d, "e");
	test_sess_ok(&e, "open ta rw create=%u anon temporary", PAGE);
	ck_assert_int_eq(test_sess_end(&e), 0);
	manage_wait_size(&d, "ta", UINT64_MAX);

	/* Only the creating request makes a region temporary. */
	test_daemon_create(&d, "keep", PAGE, false);
	test_sess_ok(&a, "open keep rw create=%u temporary", PAGE);
	test_sess_ok(&a, "close 1");
	test_sess_ok(&a, "ping");
	manage_wait_size(&d, "keep", PAGE);
	ck_assert_int_eq(test_sess_end(&a), 0);

	/* A daemon that stops lets go of the grants it holds, but that deletes nothing. */
	test_conn_open_hello(&sub, &d);
	reply = test_conn_callf(&sub, "{'op':'open','name':'kept','mode':'rw','create':true,"
	                        "'size':4096,'temporary':true}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	close(test_conn_take_fd(&sub));
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	ck_assert_int_eq(test_wait_pid(d.pid, TEST_WAIT_MS), 0);
	d.pid = 0;
	snprintf(path, sizeof(path), "%s/kept", d.data);
	ck_assert_int_eq(access(path, F_OK), 0);
	test_conn_close(&sub);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_open_truncate_empties_an_existing_region_nobody_holds)
{
	struct test_daemon d;
	struct test_sess a, b;

	test_daemon_start(&d, NULL);
	test_sess_start(&a, &d, "a");
	test_sess_start(&b, &d, "b");
	test_sess_ok(&a, "open f rw create=%u", 2 * PAGE);
	test_sess_ok(&a, "write 0 100 data");
	test_sess_ok(&a, "close 0");
	/* Held by someone else: refused, nothing changes. */
	test_sess_ok(&b, "open f ro");
	sess_expect_prefix(&a, "err EBUSY", "open f rw create=4096 truncate");
	sess_expect(&b, "ok data", "read 0 100 4");
	test_sess_ok(&b, "close 0");
	test_sess_ok(&b, "ping");
	/* Unheld: emptied and sized, as O_TRUNC then a resize. */
	sess_expect_prefix(&a, "ok r=1 ", "open f rw create=4096 truncate");
	sess_expect(&a, "ok \\x00\\x00\\x00\\x00", "read 1 100 4");
	sess_expect_prefix(&a, "ok size=4096 ", "stat f");
	/* Missing: created as usual. */
	sess_expect_prefix(&a, "ok r=2 ", "open g rw create=4096 truncate");
	sess_expect_prefix(&a, "err EINVAL", "open f ro create=4096 truncate");
	sess_expect_prefix(&a, "err EINVAL", "open f rw create=4096 truncate excl");
	test_sess_ok(&a, "open an rw create=4096 anon");
	sess_expect_prefix(&a, "err EINVAL", "open an rw create=4096 truncate");
	ck_assert_int_eq(test_sess_end(&b), 0);
	ck_assert_int_eq(test_sess_end(&a), 0);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_truncate_on_close_trims_the_file_when_the_last_grant_goes)
{
	struct test_daemon d;
	struct test_sess a, b;
	struct test_conn sub;
	char path[TEST_PATH_MAX + 16];
	struct stat st;
	cJSON *ev;

	test_daemon_start(&d, NULL);
	test_sess_start(&a, &d, "a");
	test_sess_start(&b, &d, "b");
	test_sess_ok(&a, "open log rw create=%u", 256 * PAGE);
	test_sess_ok(&a, "write 0 0 hello");
	test_sess_ok(&b, "open log ro");
	test_conn_open_hello(&sub, &d);
	test_conn_subscribe(&sub, "log");
	test_sess_ok(&a, "truncate-on-close 0 5");
	test_sess_ok(&a, "close 0");
	test_sess_ok(&a, "ping");
	manage_wait_size(&d, "log", 256 * PAGE);
	/* The last grant goes with its process. */
	test_sess_kill(&b, SIGKILL);
	manage_wait_size(&d, "log", 5);
	snprintf(path, sizeof(path), "%s/log", d.data);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 5);
	ev = test_conn_expect_event(&sub, "resized", TEST_WAIT_MS);
	ck_assert_uint_eq(test_json_u64(ev, "size"), 5);
	ck_assert_uint_eq(test_json_u64(ev, "old_size"), 256 * PAGE);
	cJSON_Delete(ev);
	test_conn_close(&sub);
	test_sess_ok(&a, "open log ro");
	sess_expect(&a, "ok hello", "read 1 0 5");
	test_sess_ok(&a, "open an rw create=4096 anon");
	sess_expect_prefix(&a, "err EINVAL", "truncate-on-close 2 1");
	ck_assert_int_eq(test_sess_end(&a), 0);
	test_daemon_stop(&d);
}
END_TEST

/* Runs mmapctl with args (NULL-terminated) against d; returns its exit status, output in out. */
static int manage_ctl(const struct test_daemon *d, char *out, size_t size, ...)
{
	char *argv[8] = { (char *)test_env_path("MMAPCTL_BIN") };
	va_list ap;
	int n = 1;

	va_start(ap, size);
	while (n < 7 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	return test_run_merged(d, out, size, argv);
}

START_TEST(test_mmapctl_renames_copies_and_shows_times)
{
	struct test_daemon d;
	char out[4096];

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "a", PAGE, false);
	test_daemon_create(&d, "b", PAGE, false);
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "rename", "a", "b", NULL), 1);
	ck_assert_msg(strstr(out, "exists") != NULL, "%s", out);
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "rename", "a", "b", "--replace", NULL), 0);
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "copy", "b", "c", NULL), 0);
	ck_assert_msg(strstr(out, "copied 'b' to 'c' (") != NULL, "%s", out);
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "--json", "copy", "b", "e", NULL), 0);
	ck_assert_msg(strstr(out, "\"method\":") != NULL, "%s", out);
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "stat", "c", NULL), 0);
	ck_assert_msg(strstr(out, "modified") != NULL && strstr(out, " UTC") != NULL, "%s", out);
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "--json", "list", NULL), 0);
	ck_assert_msg(strstr(out, "\"mtime_us\":") != NULL, "%s", out);
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "stat", "a", NULL), 1);
	/* An empty region, grown later. */
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "create", "empty", "0", NULL), 0);
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "resize", "empty", "0", NULL), 2);
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "resize", "empty", "4K", NULL), 0);
	ck_assert_int_eq(manage_ctl(&d, out, sizeof(out), "delete", "--replace", "c", NULL), 2);
	test_daemon_stop(&d);
}
END_TEST

static Suite *manage_suite(void)
{
	Suite *s = suite_create("manage");
	TCase *tc = tcase_create("manage");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_add_test(tc, test_rename_under_two_holders_keeps_mappings_locks_and_subscriptions);
	tcase_add_test(tc, test_rename_keeps_fast_locks_policy_owner_and_mode_across_a_restart);
	tcase_add_test(tc, test_rename_refuses_to_clobber_unless_replace_and_the_replaced_holder_hears_deleted);
	tcase_add_test(tc, test_rename_checks_names_and_renames_anonymous_regions);
	tcase_add_test(tc, test_copy_makes_an_equal_region_keeps_holes_and_refuses_to_clobber);
	tcase_add_test(tc, test_stat_and_list_report_mtime_and_ctime_that_move_after_a_write);
	tcase_add_test(tc, test_another_user_may_not_rename_copy_truncate_or_clobber_what_it_may_not_touch);
	tcase_add_test(tc, test_mmapctl_renames_copies_and_shows_times);
	tcase_add_test(tc, test_zero_length_region_grows_and_every_holder_follows);
	tcase_add_test(tc, test_temporary_region_goes_with_its_last_holder_also_when_killed);
	tcase_add_test(tc, test_open_truncate_empties_an_existing_region_nobody_holds);
	tcase_add_test(tc, test_truncate_on_close_trims_the_file_when_the_last_grant_goes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(manage_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
