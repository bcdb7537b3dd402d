/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of watching for changes made outside mmapd (docs/coordination.md, "Changes
 * made outside mmapd"): a subscriber that asked with "external": true hears of a write(2), a
 * truncate and a store through a shared mapping made by a process that never talks to the
 * daemon, as changed events with "external": true and "ranges": null, numbered in the region's
 * seq like reported changes and published in its control page's change log; libmmapd hands
 * them over with external set and no ranges; without the option nothing is watched; an
 * unsubscribe or a closed connection ends the watch; each uid watches at most
 * max_watched_files_per_uid files; a user without read access watches nothing.
 *
 * The writers are forked children that open the region's file in the data directory by path
 * (as root, like any process with access to the file) and write it: they never connect. The
 * only timing asserted is "arrives within TEST_WAIT_MS".
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "changelog.h"
#include "ctlpage.h"
#include "harness.h"
#include "mmapd.h"

#define CFG_OPEN "\"socket_mode\": \"0666\""
#define EXT_SIZE 65536u

enum ext_writer { EXT_WRITE, EXT_TRUNCATE, EXT_STORE };

/*
 * A process that is no client of mmapd writes region name's file: write(2) of 4 bytes at 100,
 * ftruncate to size, or a store into the second page of a shared mapping. Waits for it.
 */
static void ext_write(const struct test_daemon *d, const char *name, enum ext_writer how,
                      uint64_t size)
{
	char path[TEST_PATH_MAX + 64];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", d->data, name);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(path, O_RDWR | O_CLOEXEC);
		char *map;

		if (fd < 0)
			_exit(10);
		switch (how) {
		case EXT_WRITE:
			_exit(pwrite(fd, "abcd", 4, 100) == 4 ? 0 : 11);
		case EXT_TRUNCATE:
			_exit(ftruncate(fd, (off_t)size) == 0 ? 0 : 12);
		case EXT_STORE:
			map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (map == MAP_FAILED)
				_exit(13);
			map[4096 + 7] ^= 0x5a;
			_exit(0);
		}
		_exit(14);
	}
	test_child_wait(pid, TEST_WAIT_MS);
}

/* Subscribes c to name with "external": true; returns the reply (caller frees). */
static cJSON *ext_subscribe(struct test_conn *c, const char *name)
{
	return test_conn_callf(c, "{'op':'subscribe','name':'%s','external':true}", name);
}

/*
 * Waits for the next changed event of c (resized events of the same change are skipped),
 * asserts it is external with null ranges and the file's size, and returns its seq.
 */
static uint64_t ext_expect(struct test_conn *c, const char *name, uint64_t size)
{
	cJSON *ev;
	uint64_t seq;

	for (;;) {
		ev = test_conn_event(c, TEST_WAIT_MS);
		ck_assert_msg(ev != NULL, "no external change of '%s' within %d ms", name,
		              TEST_WAIT_MS);
		if (strcmp(test_json_str(ev, "event"), "resized") != 0)
			break;
		ck_assert_msg(test_json_bool(ev, "external"), "resized not external: %s",
		              test_describe(ev));
		cJSON_Delete(ev);
	}
	ck_assert_msg(strcmp(test_json_str(ev, "event"), "changed") == 0 &&
	              strcmp(test_json_str(ev, "region"), name) == 0 &&
	              test_json_bool(ev, "external") &&
	              cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(ev, "ranges")) &&
	              !cJSON_HasObjectItem(ev, "writer") && test_json_u64(ev, "size") == size,
	              "expected an external change of '%s' (size %llu), got %s", name,
	              (unsigned long long)size, test_describe(ev));
	seq = test_json_u64(ev, "seq");
	ck_assert_uint_eq(test_json_u64(ev, "first_seq"), seq);
	cJSON_Delete(ev);
	return seq;
}

/*
 * The same change seen twice (a write caught by the poll between its mtime update and its
 * inotify event) is allowed: reads what else comes within 200 ms, asserting that it is the
 * external change again, and returns the last seq.
 */
static uint64_t ext_settle(struct test_conn *c, const char *name, uint64_t size, uint64_t seq)
{
	cJSON *ev;

	while ((ev = test_conn_event(c, 200)) != NULL) {
		ck_assert_msg(strcmp(test_json_str(ev, "event"), "changed") == 0 &&
		              test_json_bool(ev, "external") && test_json_u64(ev, "size") == size &&
		              test_json_u64(ev, "seq") == seq + 1,
		              "unexpected event after an external change of '%s': %s", name,
		              test_describe(ev));
		seq++;
		cJSON_Delete(ev);
	}
	return seq;
}

/* What uid uses of the watched_files budget, from the stats reply (0: no entry). */
static uint64_t ext_watched_by(const struct test_daemon *d, uid_t uid)
{
	cJSON *reply = test_daemon_stats(d);
	const cJSON *u;
	char key[16];
	uint64_t v = 0;

	snprintf(key, sizeof(key), "%lu", (unsigned long)uid);
	u = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(reply, "users"), key);
	if (u)
		v = test_json_u64(u, "watched_files");
	cJSON_Delete(reply);
	return v;
}

/*
 * The three writers of the issue, each from a process that is no client: each one is an
 * external change with the next seq, which a reported change then continues.
 */
START_TEST(test_extwatch_write_truncate_and_store_of_a_non_client_each_produce_an_event)
{
	struct test_daemon d;
	struct test_conn sub, w;
	uint64_t seq0, seq;
	cJSON *reply;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "ext", EXT_SIZE, false);
	test_conn_open_hello(&sub, &d);
	test_conn_open_hello(&w, &d);
	reply = ext_subscribe(&sub, "ext");
	test_assert_ok(reply);
	seq0 = test_json_u64(reply, "seq");
	cJSON_Delete(reply);
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 1);
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files_inotify"), 1);

	ext_write(&d, "ext", EXT_WRITE, 0);
	ck_assert_uint_eq(ext_expect(&sub, "ext", EXT_SIZE), seq0 + 1);
	seq = ext_settle(&sub, "ext", EXT_SIZE, seq0 + 1);

	ext_write(&d, "ext", EXT_TRUNCATE, 2 * EXT_SIZE);
	ck_assert_uint_eq(ext_expect(&sub, "ext", 2 * EXT_SIZE), seq + 1);
	seq = ext_settle(&sub, "ext", 2 * EXT_SIZE, seq + 1);

	/* A store through a mapping raises no inotify event: the mtime poll finds it. */
	ext_write(&d, "ext", EXT_STORE, 0);
	ck_assert_uint_eq(ext_expect(&sub, "ext", 2 * EXT_SIZE), seq + 1);
	seq = ext_settle(&sub, "ext", 2 * EXT_SIZE, seq + 1);

	/* Reported and external changes share one seq. */
	ck_assert_uint_eq(test_conn_changed(&w, "ext", 0, 16), seq + 1);
	cJSON_Delete(test_conn_expect_event(&sub, "changed", TEST_WAIT_MS));

	test_conn_close(&w);
	test_conn_close(&sub);
	test_daemon_stop(&d);
}
END_TEST

/* Without "external" nothing is watched and no event comes of a non-client's write. */
START_TEST(test_extwatch_nothing_without_the_option)
{
	struct test_daemon d;
	struct test_conn plain, ext;
	cJSON *reply;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "quiet", EXT_SIZE, false);
	test_conn_open_hello(&plain, &d);
	test_conn_subscribe(&plain, "quiet");
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 0);
	ext_write(&d, "quiet", EXT_WRITE, 0);
	ext_write(&d, "quiet", EXT_STORE, 0);
	test_conn_expect_no_event(&plain, 500);

	/* A subscriber that asks hears of the next one; the plain one still does not. */
	test_conn_open_hello(&ext, &d);
	reply = ext_subscribe(&ext, "quiet");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ext_write(&d, "quiet", EXT_WRITE, 0);
	ext_expect(&ext, "quiet", EXT_SIZE);
	test_conn_expect_no_event(&plain, 300);

	test_conn_close(&ext);
	test_conn_close(&plain);
	test_daemon_stop(&d);
}
END_TEST

/* Unsubscribing, and a connection closing, end the watch (and its budget). */
START_TEST(test_extwatch_unsubscribe_and_close_stop_watching)
{
	struct test_daemon d;
	struct test_conn a, b;
	uid_t me = geteuid();
	cJSON *reply;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "w1", EXT_SIZE, false);
	test_daemon_create(&d, "w2", EXT_SIZE, false);
	test_conn_open_hello(&a, &d);
	test_conn_open_hello(&b, &d);
	reply = ext_subscribe(&a, "w1");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	reply = ext_subscribe(&b, "w1");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	reply = ext_subscribe(&b, "w2");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	/* Two subscriptions to w1 share one watch of its file. */
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 2);
	ck_assert_uint_eq(ext_watched_by(&d, me), 3);

	test_reply_ok(test_conn_callf(&a, "{'op':'unsubscribe','name':'w1'}"));
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 2);
	ext_write(&d, "w1", EXT_WRITE, 0);
	ext_expect(&b, "w1", EXT_SIZE);
	test_conn_expect_no_event(&a, 300);

	test_reply_ok(test_conn_callf(&b, "{'op':'unsubscribe','name':'w1'}"));
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 1);
	ck_assert_uint_eq(ext_watched_by(&d, me), 1);
	test_conn_close(&b);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "subscriptions", 0), 0);
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 0);
	ck_assert_uint_eq(ext_watched_by(&d, me), 0);

	test_conn_close(&a);
	test_daemon_stop(&d);
}
END_TEST

/*
 * The attacks as nobody: it cannot watch a file it may not read, and however many connections
 * it opens it makes the daemon watch at most max_watched_files_per_uid files.
 */
START_TEST(test_extwatch_hostile_user_is_bounded)
{
	struct test_daemon d;
	struct test_conn c[3];
	char name[16];
	cJSON *reply;
	int i;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, "{" CFG_OPEN ", \"max_watched_files_per_uid\": 2}");
	test_daemon_create_perm(&d, "secret", EXT_SIZE, 0600);
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "pub%d", i);
		test_daemon_create_perm(&d, name, EXT_SIZE, 0644);
		test_conn_open_hello_as(&c[i], &d, TEST_NOBODY, TEST_NOBODY);
	}
	reply = ext_subscribe(&c[0], "secret");
	test_assert_error(reply, "EACCES", EACCES);
	cJSON_Delete(reply);
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 0);

	/* One per connection: the budget is the uid's, not the connection's. */
	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "pub%d", i);
		reply = ext_subscribe(&c[i], name);
		test_assert_ok(reply);
		cJSON_Delete(reply);
	}
	reply = ext_subscribe(&c[2], "pub2");
	test_reply_error(reply, "EAGAIN", EAGAIN, "max_watched_files_per_uid");
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 2);
	ck_assert_uint_eq(ext_watched_by(&d, TEST_NOBODY), 2);
	/* A plain subscription costs no watch and is not refused. */
	test_conn_subscribe(&c[2], "pub2");
	test_reply_ok(test_conn_callf(&c[2], "{'op':'unsubscribe','name':'pub2'}"));

	/* Closing a connection gives its watch back. */
	test_conn_close(&c[0]);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "subscriptions", 1), 1);
	reply = ext_subscribe(&c[2], "pub2");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ck_assert_uint_eq(ext_watched_by(&d, TEST_NOBODY), 2);

	test_conn_close(&c[1]);
	test_conn_close(&c[2]);
	test_daemon_stop(&d);
}
END_TEST

/*
 * An external change is in the control page's change log like any other: a reader of the page
 * finds it as the whole region, pid 0, flagged CHANGELOG_EXTERNAL, under the event's seq.
 */
START_TEST(test_extwatch_change_is_in_the_change_log)
{
	struct test_daemon d;
	struct test_conn sub, holder;
	struct changelog_change ch;
	struct ctlpage *page;
	uint64_t handle, seq;
	cJSON *reply;
	int fd;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "logged", EXT_SIZE, false);
	test_conn_open_hello(&holder, &d);
	handle = test_conn_grant(&holder, "logged", "rw");
	page = test_conn_control(&holder, handle, &fd);
	test_conn_open_hello(&sub, &d);
	reply = ext_subscribe(&sub, "logged");
	test_assert_ok(reply);
	cJSON_Delete(reply);

	ext_write(&d, "logged", EXT_WRITE, 0);
	seq = ext_expect(&sub, "logged", EXT_SIZE);
	ck_assert_int_eq(changelog_read(ctlpage_log(page), seq, &ch), 0);
	ck_assert_uint_eq(ch.offset, 0);
	ck_assert_uint_eq(ch.length, EXT_SIZE);
	ck_assert_uint_eq(ch.pid, 0);
	ck_assert_uint_eq(ch.flags & CHANGELOG_EXTERNAL, CHANGELOG_EXTERNAL);
	ck_assert_uint_eq(changelog_head(ctlpage_log(page)), seq);

	munmap(page, CTLPAGE_SIZE);
	close(fd);
	test_conn_close(&sub);
	test_conn_close(&holder);
	test_daemon_stop(&d);
}
END_TEST

/* An anonymous region: a holder writing its memfd with write(2) without reporting is seen by
 * the poll (a memfd raises no inotify events). */
START_TEST(test_extwatch_anonymous_region_is_polled)
{
	struct test_daemon d;
	struct test_conn sub, holder;
	cJSON *reply;
	int fd;

	test_daemon_start(&d, NULL);
	test_conn_open_hello(&holder, &d);
	reply = test_conn_callf(&holder, "{'op':'open','name':'anon','mode':'rw','create':true,"
	                        "'anonymous':true,'size':%u}", EXT_SIZE);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	fd = test_conn_take_fd(&holder);
	test_conn_open_hello(&sub, &d);
	reply = ext_subscribe(&sub, "anon");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 1);
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files_inotify"), 0);

	usleep(20000);
	ck_assert_int_eq(pwrite(fd, "x", 1, 10), 1);
	ext_expect(&sub, "anon", EXT_SIZE);

	close(fd);
	test_conn_close(&sub);
	test_conn_close(&holder);
	test_daemon_stop(&d);
}
END_TEST

struct ext_seen {
	int reconnected;
	int events;
	bool external;
	const void *ranges;
	size_t nranges;
	uint64_t size;
};

static void ext_on_event(struct mmapd_client *client, const struct mmapd_event *ev, void *arg)
{
	struct ext_seen *seen = arg;

	(void)client;
	if (ev->type == MMAPD_EVENT_RECONNECTED)
		seen->reconnected++;
	if (ev->type != MMAPD_EVENT_CHANGED)
		return;
	seen->events++;
	seen->external = ev->external;
	seen->ranges = ev->ranges;
	seen->nranges = ev->nranges;
	seen->size = ev->size;
}

/* libmmapd: MMAPD_SUBSCRIBE_EXTERNAL asks, the event says external with no ranges. */
START_TEST(test_extwatch_client_library_flag_and_event)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct ext_seen seen = { 0 };
	uint64_t seq;
	int i;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "lib", EXT_SIZE, false);
	client = test_client_connect(&d, "ext-lib");
	ck_assert_int_eq(mmapd_subscribe_flags(client, "lib", 0x80u, &seq), -EINVAL);
	ck_assert_int_eq(mmapd_subscribe_flags(client, "lib", MMAPD_SUBSCRIBE_EXTERNAL, &seq), 0);
	mmapd_client_set_event_handler(client, ext_on_event, &seen);
	ext_write(&d, "lib", EXT_WRITE, 0);
	for (i = 0; i < 50 && seen.events == 0; i++)
		ck_assert_int_ge(mmapd_client_dispatch(client, 100), 0);
	ck_assert_int_eq(seen.events, 1);
	ck_assert(seen.external);
	ck_assert_ptr_null(seen.ranges);
	ck_assert_uint_eq(seen.nranges, 0);
	ck_assert_uint_eq(seen.size, EXT_SIZE);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
}
END_TEST

/*
 * A page subscription reads external changes from the change log (another connection asked
 * for them): libmmapd delivers each once, as the daemon's event says it (external, no ranges,
 * the size), and the daemon sends none to the page subscriber.
 */
START_TEST(test_extwatch_page_subscriber_sees_external_changes_once)
{
	struct test_daemon d;
	struct test_conn sub;
	struct mmapd_client *client;
	struct ext_seen seen = { 0 };
	uint64_t seq;
	cJSON *reply;
	int i;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "paged", EXT_SIZE, false);
	client = test_client_connect(&d, "ext-page");
	ck_assert_int_eq(mmapd_subscribe_page(client, "paged", &seq), 0);
	mmapd_client_set_event_handler(client, ext_on_event, &seen);
	test_conn_open_hello(&sub, &d);
	reply = ext_subscribe(&sub, "paged");
	test_assert_ok(reply);
	cJSON_Delete(reply);

	ext_write(&d, "paged", EXT_WRITE, 0);
	ext_settle(&sub, "paged", EXT_SIZE, ext_expect(&sub, "paged", EXT_SIZE));
	for (i = 0; i < 50 && seen.events == 0; i++)
		ck_assert_int_ge(mmapd_client_dispatch(client, 100), 0);
	ck_assert_int_ge(seen.events, 1);
	ck_assert(seen.external);
	ck_assert_ptr_null(seen.ranges);
	ck_assert_uint_eq(seen.nranges, 0);
	ck_assert_uint_eq(seen.size, EXT_SIZE);
	/* Nothing more: no JSON copy of it from the daemon (a second inotify/poll report of the
	 * same write, seen by sub above, may come through the log too). */
	for (i = 0; i < 5; i++)
		ck_assert_int_ge(mmapd_client_dispatch(client, 50), 0);
	ck_assert_int_le(seen.events, 2);

	test_conn_close(&sub);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
}
END_TEST

/*
 * A user that truncates a watched file in a loop cannot fill the daemon's log: the warning of a
 * size change behind the daemon's back comes at most once per region per 10 s (fails without
 * the bound: one line per change). The daemon's stderr goes to a file for the test.
 */
START_TEST(test_extwatch_size_changes_in_a_loop_do_not_flood_the_log)
{
	struct test_daemon d;
	struct test_conn sub;
	char path[TEST_PATH_MAX + 16], line[1024];
	int saved, logfd, i, warned = 0;
	cJSON *reply, *ev;
	FILE *log;

	test_mkdtemp(path, sizeof(path) - 8);
	strcat(path, "/log");
	logfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(logfd, 0);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(logfd, 2), 2);
	test_daemon_start(&d, NULL);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	close(logfd);

	test_daemon_create(&d, "loop", EXT_SIZE, false);
	test_conn_open_hello(&sub, &d);
	reply = ext_subscribe(&sub, "loop");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	for (i = 0; i < 20; i++) {
		ext_write(&d, "loop", EXT_TRUNCATE, i % 2 ? EXT_SIZE : 2 * EXT_SIZE);
		/* Each change noticed: its resized event came. */
		for (;;) {
			ev = test_conn_event(&sub, TEST_WAIT_MS);
			ck_assert_msg(ev != NULL, "no event for truncate %d", i);
			if (strcmp(test_json_str(ev, "event"), "resized") == 0) {
				cJSON_Delete(ev);
				break;
			}
			cJSON_Delete(ev);
		}
	}
	test_conn_close(&sub);
	test_daemon_stop(&d);

	log = fopen(path, "r");
	ck_assert_ptr_nonnull(log);
	while (fgets(line, sizeof(line), log))
		warned += strstr(line, "behind the daemon's back (a client truncated it)") != NULL;
	fclose(log);
	ck_assert_msg(warned >= 1 && warned <= 2, "%d warnings for 20 size changes", warned);
}
END_TEST

/* A reconnection subscribes again with the flag: the watch is back after a daemon restart. */
START_TEST(test_extwatch_client_reconnection_keeps_the_flag)
{
	struct test_daemon d;
	struct mmapd_client *client;
	struct ext_seen seen = { 0 };
	int i;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "again", EXT_SIZE, false);
	test_daemon_create(&d, "plain", EXT_SIZE, false);
	client = test_client_connect(&d, "ext-reconnect");
	ck_assert_int_eq(mmapd_subscribe_flags(client, "again", MMAPD_SUBSCRIBE_EXTERNAL, NULL), 0);
	ck_assert_int_eq(mmapd_subscribe(client, "plain", NULL), 0);
	mmapd_client_set_event_handler(client, ext_on_event, &seen);

	test_daemon_kill(&d);
	test_daemon_restart(&d);
	for (i = 0; i < 100 && seen.reconnected == 0; i++)
		(void)mmapd_client_dispatch(client, 100);
	ck_assert_int_eq(seen.reconnected, 1);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "subscriptions", 2), 2);
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 1);

	ext_write(&d, "plain", EXT_WRITE, 0);
	ext_write(&d, "again", EXT_WRITE, 0);
	for (i = 0; i < 50 && seen.events == 0; i++)
		ck_assert_int_ge(mmapd_client_dispatch(client, 100), 0);
	ck_assert_int_eq(seen.events, 1);
	ck_assert(seen.external);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
}
END_TEST

/* mmapctl watch --external prints the external change of a non-client's write. */
START_TEST(test_extwatch_mmapctl_watch_external)
{
	char *argv[] = { (char *)test_env_path("MMAPCTL_BIN"), (char *)"watch", (char *)"seen",
	                 (char *)"--external", NULL };
	struct test_daemon d;
	struct test_proc p;
	char line[512];

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "seen", EXT_SIZE, false);
	test_proc_spawn(&p, &d, argv);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "subscriptions", 1), 1);
	ck_assert_uint_eq(test_daemon_stats_u64(&d, "watched_files"), 1);
	ext_write(&d, "seen", EXT_WRITE, 0);
	ck_assert_int_gt(test_proc_readline(&p, line, sizeof(line), TEST_WAIT_MS), 0);
	ck_assert_msg(strstr(line, " changed seen seq=1 first_seq=1 ranges=unknown external "
	                     "size=65536"), "mmapctl watch printed: %s", line);
	test_proc_kill(&p, SIGTERM);
	ck_assert_int_eq(test_proc_wait(&p), 0);
	test_daemon_stop(&d);
}
END_TEST

static Suite *extwatch_suite(void)
{
	Suite *s = suite_create("extwatch");
	TCase *tc = tcase_create("extwatch");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_extwatch_write_truncate_and_store_of_a_non_client_each_produce_an_event);
	tcase_add_test(tc, test_extwatch_nothing_without_the_option);
	tcase_add_test(tc, test_extwatch_unsubscribe_and_close_stop_watching);
	tcase_add_test(tc, test_extwatch_hostile_user_is_bounded);
	tcase_add_test(tc, test_extwatch_change_is_in_the_change_log);
	tcase_add_test(tc, test_extwatch_anonymous_region_is_polled);
	tcase_add_test(tc, test_extwatch_client_library_flag_and_event);
	tcase_add_test(tc, test_extwatch_page_subscriber_sees_external_changes_once);
	tcase_add_test(tc, test_extwatch_size_changes_in_a_loop_do_not_flood_the_log);
	tcase_add_test(tc, test_extwatch_client_reconnection_keeps_the_flag);
	tcase_add_test(tc, test_extwatch_mmapctl_watch_external);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(extwatch_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
