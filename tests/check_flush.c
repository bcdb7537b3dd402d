/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of flushing, flush policies and persistence (docs/coordination.md, "Flush
 * and flush policies" and "Persistence"): what a flush acknowledged and the region's policy are
 * there after the daemon is killed and restarted; a failed fdatasync (the daemon's test hook
 * MMAPD_TEST_FAIL_FDATASYNC) poisons the region, every grant holder and subscriber hears
 * flush-failed, and flushes fail with EIO until clear-error; the manual, always, every-writes,
 * every-bytes and interval policies flush exactly where they should (seen as flushed events);
 * a corrupt metadata file is quarantined at start while the other regions keep working.
 *
 * Each test starts its own mmapd. Subscribers whose events are checked field by field are raw
 * connections of the test; grant holders and subscribers "in other processes" are session
 * processes ($MMAPD_TESTCLIENT session, on libmmapd).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* Sets the policy ("{'kind':...}") and checks the reply echoes it. */
static void set_policy(struct test_conn *c, const char *name, const char *kind, uint64_t value)
{
	cJSON *reply;
	const cJSON *p;

	if (value != 0)
		reply = test_conn_callf(c, "{'op':'set-policy','name':'%s','policy':{'kind':'%s',"
		                        "'value':%llu}}", name, kind, (unsigned long long)value);
	else
		reply = test_conn_callf(c, "{'op':'set-policy','name':'%s','policy':{'kind':'%s'}}",
		                        name, kind);
	test_assert_ok(reply);
	p = cJSON_GetObjectItemCaseSensitive(reply, "policy");
	ck_assert_msg(cJSON_IsObject(p) && strcmp(test_json_str(p, "kind"), kind) == 0,
	              "set-policy reply does not echo %s: %s", kind, test_describe(reply));
	if (value != 0)
		ck_assert_uint_eq(test_json_u64(p, "value"), value);
	cJSON_Delete(reply);
}

static void expect_event_seq(struct test_conn *c, const char *event, const char *name, uint64_t seq)
{
	cJSON *ev = test_conn_expect_event(c, event, TEST_WAIT_MS);

	ck_assert_msg(strcmp(test_json_str(ev, "region"), name) == 0 && test_json_u64(ev, "seq") == seq,
	              "expected %s of %s with seq %llu, got %s", event, name, (unsigned long long)seq,
	              test_describe(ev));
	cJSON_Delete(ev);
}

/* The policy object of name's stat: "kind" or "kind:value". */
static void stat_policy(const struct test_daemon *d, const char *name, char *buf, size_t size,
                        bool *ret_poisoned)
{
	const cJSON *region, *p, *v;
	cJSON *reply = test_daemon_stat(d, name, &region);

	p = cJSON_GetObjectItemCaseSensitive(region, "policy");
	ck_assert_msg(cJSON_IsObject(p), "stat without a policy object: %s", test_describe(reply));
	v = cJSON_GetObjectItemCaseSensitive(p, "value");
	if (v != NULL && test_json_u64(p, "value") != 0)
		snprintf(buf, size, "%s:%llu", test_json_str(p, "kind"),
		         (unsigned long long)test_json_u64(p, "value"));
	else
		snprintf(buf, size, "%s", test_json_str(p, "kind"));
	if (ret_poisoned != NULL)
		*ret_poisoned = test_json_bool(region, "poisoned");
	cJSON_Delete(reply);
}

static void meta_path(const struct test_daemon *d, const char *sub, const char *file, char *buf,
                      size_t size)
{
	snprintf(buf, size, "%s/.mmapd/%s%s%s", d->data, sub, file ? "/" : "", file ? file : "");
}

/* Waits until <data>/.mmapd/meta/<name>.json exists. */
static void wait_meta_file(const struct test_daemon *d, const char *name)
{
	char path[PATH_MAX], file[300];
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;

	snprintf(file, sizeof(file), "%s.json", name);
	meta_path(d, "meta", file, path, sizeof(path));
	while (access(path, F_OK) != 0) {
		ck_assert_msg(test_now_ms() < deadline, "no metadata file %s", path);
		usleep(5000);
	}
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = malloc(65536);
	size_t n;

	ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
	ck_assert(buf != NULL);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
	ck_assert(fputs(text, f) >= 0);
	ck_assert(fclose(f) == 0);
}

/* Stops mmapd with SIGTERM (exit status 0 asserted) but keeps the directory. */
static void daemon_term(struct test_daemon *d)
{
	int st;

	ck_assert_int_eq(kill(d->pid, SIGTERM), 0);
	st = test_wait_pid(d->pid, TEST_WAIT_MS);
	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	              "mmapd did not exit cleanly after SIGTERM (0x%x)", (unsigned)st);
	d->pid = 0;
}

/* ---- durability ------------------------------------------------------------------------------ */

START_TEST(test_flush_acknowledged_bytes_and_policy_survive_daemon_sigkill_and_restart)
{
	struct test_daemon d;
	struct test_sess s;
	struct test_conn c, sub;
	char path[PATH_MAX], buf[32], pol[64];
	bool poisoned;
	uint64_t s0;
	int fd;

	test_daemon_start(&d, NULL);
	test_sess_start(&s, &d, NULL);
	/* The policy given at creation, and one set later. */
	(void)test_sess_ok(&s, "open durable rw create=65536 policy=every-writes:3");
	(void)test_sess_ok(&s, "write 0 5000 acknowledged-bytes");
	(void)test_sess_ok(&s, "flush durable");
	(void)test_sess_ok(&s, "open later rw create=4096");
	(void)test_sess_ok(&s, "policy later interval:250");
	ck_assert_int_eq(test_sess_end(&s), 0);

	test_daemon_kill(&d);
	test_daemon_restart(&d);

	snprintf(path, sizeof(path), "%s/durable", d.data);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(pread(fd, buf, 18, 5000), 18);
	close(fd);
	ck_assert_int_eq(memcmp(buf, "acknowledged-bytes", 18), 0);
	stat_policy(&d, "durable", pol, sizeof(pol), &poisoned);
	ck_assert_str_eq(pol, "every-writes:3");
	ck_assert(!poisoned);
	stat_policy(&d, "later", pol, sizeof(pol), NULL);
	ck_assert_str_eq(pol, "interval:250");

	/* And the restarted daemon enforces it. */
	test_conn_open_hello(&sub, &d);
	test_conn_open_hello(&c, &d);
	s0 = test_conn_subscribe(&sub, "durable");
	for (uint64_t i = 1; i <= 3; i++) {
		ck_assert_uint_eq(test_conn_changed(&c, "durable", i * 100, 10), s0 + i);
		expect_event_seq(&sub, "changed", "durable", s0 + i);
	}
	expect_event_seq(&sub, "flushed", "durable", s0 + 3);
	test_sess_start(&s, &d, NULL);
	(void)test_sess_ok(&s, "open durable ro");
	ck_assert_str_eq(test_sess_ok(&s, "read 0 5000 18"), " acknowledged-bytes");
	ck_assert_int_eq(test_sess_end(&s), 0);
	test_conn_close(&sub);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_flush_failed_fdatasync_poisons_region_and_tells_every_client)
{
	struct test_daemon d;
	struct test_sess holder, subscriber, bystander;
	struct test_conn c, raw_sub;
	const cJSON *e;
	cJSON *ev;
	char pol[64];
	bool poisoned;

	test_daemon_init(&d, NULL);
	test_daemon_setenv(&d, "MMAPD_TEST_FAIL_FDATASYNC=sick");
	test_daemon_launch(&d);
	test_daemon_create(&d, "sick", 65536, false);
	test_daemon_create(&d, "well", 65536, false);
	test_sess_start(&holder, &d, NULL);
	(void)test_sess_ok(&holder, "open sick rw");
	test_sess_start(&subscriber, &d, NULL);
	(void)test_sess_ok(&subscriber, "subscribe sick");
	test_sess_start(&bystander, &d, NULL);
	(void)test_sess_ok(&bystander, "open well rw");
	(void)test_sess_ok(&bystander, "subscribe well");
	test_conn_open_hello(&raw_sub, &d);
	(void)test_conn_subscribe(&raw_sub, "sick");
	test_conn_open_hello(&c, &d);

	test_reply_error(test_conn_callf(&c, "{'op':'flush','name':'sick'}"), "EIO", EIO, NULL);
	test_sess_expect_event(&holder, "flush-failed sick error=EIO");
	test_sess_expect_event(&subscriber, "flush-failed sick error=EIO");
	ev = test_conn_expect_event(&raw_sub, "flush-failed", TEST_WAIT_MS);
	ck_assert_str_eq(test_json_str(ev, "region"), "sick");
	e = cJSON_GetObjectItemCaseSensitive(ev, "error");
	ck_assert_msg(cJSON_IsObject(e) && strcmp(test_json_str(e, "code"), "EIO") == 0 &&
	              test_json_u64(e, "errno") == EIO && test_json_str(e, "message")[0] != '\0',
	              "flush-failed without {code EIO, errno 5, message}: %s", test_describe(ev));
	cJSON_Delete(ev);
	test_sess_expect_no_event(&bystander, 20);
	stat_policy(&d, "sick", pol, sizeof(pol), &poisoned);
	ck_assert_msg(poisoned, "stat does not say the region is poisoned");
	stat_policy(&d, "well", pol, sizeof(pol), &poisoned);
	ck_assert(!poisoned);

	/* Later flushes fail too, from anyone; other regions are fine. */
	test_reply_error(test_conn_callf(&c, "{'op':'flush','name':'sick'}"), "EIO", EIO, NULL);
	{
		const char *r = test_sess_cmd(&holder, "flush sick");

		ck_assert_msg(strncmp(r, "err EIO ", 8) == 0, "the holder's flush answered \"%s\"", r);
	}
	test_reply_ok(test_conn_callf(&c, "{'op':'flush','name':'well'}"));
	/* Under a flushing policy, a change reported on a poisoned region fails as well. */
	set_policy(&c, "sick", "every-writes", 1);
	test_sess_expect_event(&holder, "policy sick every-writes:1");
	test_reply_error(test_conn_callf(&c,
	                                 "{'op':'changed','name':'sick','offset':0,'length':1}"),
	                 "EIO", EIO, NULL);

	/* clear-error lifts the poison; the hook still fails the next fdatasync, which is tried
	 * (not answered from the old failure) and heard again. */
	test_reply_ok(test_conn_callf(&c, "{'op':'clear-error','name':'sick'}"));
	stat_policy(&d, "sick", pol, sizeof(pol), &poisoned);
	ck_assert_msg(!poisoned, "clear-error left the region poisoned");
	set_policy(&c, "sick", "manual", 0);
	(void)test_conn_changed(&c, "sick", 0, 1);
	test_reply_error(test_conn_callf(&c, "{'op':'flush','name':'sick'}"), "EIO", EIO, NULL);
	{
		char *evs = test_sess_find_event(&holder, "flush-failed sick", TEST_WAIT_MS);

		ck_assert_msg(evs != NULL, "the holder did not hear the second flush failure");
		free(evs);
	}
	ck_assert_int_eq(test_sess_end(&holder), 0);
	ck_assert_int_eq(test_sess_end(&subscriber), 0);
	ck_assert_int_eq(test_sess_end(&bystander), 0);
	test_conn_close(&raw_sub);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/* ---- policies -------------------------------------------------------------------------------- */

START_TEST(test_flush_manual_policy_flushes_only_on_request)
{
	struct test_daemon d;
	struct test_conn c, sub;
	char pol[64];
	uint64_t s0;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "manual", 65536, false);
	stat_policy(&d, "manual", pol, sizeof(pol), NULL);
	ck_assert_str_eq(pol, "manual");
	test_conn_open_hello(&sub, &d);
	test_conn_open_hello(&c, &d);
	s0 = test_conn_subscribe(&sub, "manual");
	for (uint64_t i = 1; i <= 5; i++) {
		ck_assert_uint_eq(test_conn_changed(&c, "manual", 0, 4096), s0 + i);
		expect_event_seq(&sub, "changed", "manual", s0 + i);
	}
	test_conn_expect_no_event(&sub, 100);
	test_reply_ok(test_conn_callf(&c, "{'op':'flush','name':'manual'}"));
	expect_event_seq(&sub, "flushed", "manual", s0 + 5);
	test_conn_expect_no_event(&sub, 20);
	/* An anonymous region has nothing to make durable: ok at once, and no metadata file. */
	test_daemon_create(&d, "anon", 4096, true);
	test_reply_ok(test_conn_callf(&c, "{'op':'flush','name':'anon'}"));
	{
		char path[PATH_MAX];

		meta_path(&d, "meta", "anon.json", path, sizeof(path));
		ck_assert_msg(access(path, F_OK) != 0, "an anonymous region has a metadata file");
	}
	test_reply_error(test_conn_callf(&c, "{'op':'flush','name':'no-such'}"),
	                 "ENOENT", ENOENT, NULL);
	test_conn_close(&sub);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_flush_policy_always_flushes_every_change_before_its_reply)
{
	struct test_daemon d;
	struct test_conn c, sub;
	cJSON *reply;
	char pol[64];
	uint64_t s0;

	test_daemon_start(&d, NULL);
	test_conn_open_hello(&c, &d);
	reply = test_conn_callf(&c, "{'op':'open','name':'always','mode':'rw','create':true,"
	                        "'size':65536,'policy':{'kind':'always'}}");
	test_assert_ok(reply);
	close(test_conn_take_fd(&c));
	cJSON_Delete(reply);
	stat_policy(&d, "always", pol, sizeof(pol), NULL);
	ck_assert_str_eq(pol, "always");
	test_conn_open_hello(&sub, &d);
	s0 = test_conn_subscribe(&sub, "always");
	for (uint64_t i = 1; i <= 3; i++) {
		ck_assert_uint_eq(test_conn_changed(&c, "always", i, 1), s0 + i);
		expect_event_seq(&sub, "changed", "always", s0 + i);
		expect_event_seq(&sub, "flushed", "always", s0 + i);
	}
	test_conn_expect_no_event(&sub, 50);
	test_conn_close(&sub);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_flush_policy_every_writes_flushes_at_every_nth_change_and_is_announced)
{
	struct test_daemon d;
	struct test_conn c, sub;
	struct test_sess holder;
	cJSON *ev;
	const cJSON *p;
	uint64_t s0;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "nth", 65536, false);
	test_sess_start(&holder, &d, NULL);
	(void)test_sess_ok(&holder, "open nth ro");
	test_conn_open_hello(&sub, &d);
	test_conn_open_hello(&c, &d);
	s0 = test_conn_subscribe(&sub, "nth");
	set_policy(&c, "nth", "every-writes", 3);
	/* Grant holders and subscribers hear of the new policy. */
	test_sess_expect_event(&holder, "policy nth every-writes:3");
	ev = test_conn_expect_event(&sub, "policy", TEST_WAIT_MS);
	p = cJSON_GetObjectItemCaseSensitive(ev, "policy");
	ck_assert_msg(cJSON_IsObject(p) && strcmp(test_json_str(p, "kind"), "every-writes") == 0 &&
	              test_json_u64(p, "value") == 3, "policy event: %s", test_describe(ev));
	ck_assert_str_eq(test_json_str(ev, "region"), "nth");
	cJSON_Delete(ev);

	for (uint64_t round = 0; round < 2; round++) {
		for (uint64_t i = 1; i <= 3; i++) {
			uint64_t seq = s0 + round * 3 + i;

			ck_assert_uint_eq(test_conn_changed(&c, "nth", seq * 10, 10), seq);
			expect_event_seq(&sub, "changed", "nth", seq);
		}
		/* Exactly here, and only here. */
		expect_event_seq(&sub, "flushed", "nth", s0 + round * 3 + 3);
	}
	(void)test_conn_changed(&c, "nth", 0, 1);
	expect_event_seq(&sub, "changed", "nth", s0 + 7);
	test_conn_expect_no_event(&sub, 100);
	ck_assert_int_eq(test_sess_end(&holder), 0);
	test_conn_close(&sub);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/*
 * Starts d with a 64 KiB file region name, opens c and sub, subscribes sub to name, sets the
 * policy kind:value from c and takes sub's policy event. Returns the seq sub subscribed at.
 */
static uint64_t start_with_policy(struct test_daemon *d, struct test_conn *c, struct test_conn *sub,
                                  const char *name, const char *kind, uint64_t value)
{
	uint64_t s0;

	test_daemon_start(d, NULL);
	test_daemon_create(d, name, 65536, false);
	test_conn_open_hello(sub, d);
	test_conn_open_hello(c, d);
	s0 = test_conn_subscribe(sub, name);
	set_policy(c, name, kind, value);
	cJSON_Delete(test_conn_expect_event(sub, "policy", TEST_WAIT_MS));
	return s0;
}

START_TEST(test_flush_policy_every_bytes_flushes_once_the_changed_bytes_reach_n)
{
	struct test_daemon d;
	struct test_conn c, sub;
	static const uint64_t lens[] = { 40, 40, 40, 99, 1, 30 };
	static const bool flushes[] = { false, false, true, false, true, false };
	uint64_t s0;

	s0 = start_with_policy(&d, &c, &sub, "bytes", "every-bytes", 100);
	for (uint64_t i = 0; i < 6; i++) {
		ck_assert_uint_eq(test_conn_changed(&c, "bytes", 1000 * i, lens[i]), s0 + i + 1);
		expect_event_seq(&sub, "changed", "bytes", s0 + i + 1);
		if (flushes[i])
			expect_event_seq(&sub, "flushed", "bytes", s0 + i + 1);
	}
	test_conn_expect_no_event(&sub, 100);
	test_conn_close(&sub);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_flush_policy_interval_flushes_ms_after_the_first_unflushed_change)
{
	struct test_daemon d;
	struct test_conn c, sub;
	int64_t t0, took;
	uint64_t s0;

	s0 = start_with_policy(&d, &c, &sub, "timed", "interval", 300);

	for (int round = 0; round < 2; round++) {
		uint64_t base = s0 + (uint64_t)round * 2;

		t0 = test_now_ms();
		ck_assert_uint_eq(test_conn_changed(&c, "timed", 0, 10), base + 1);
		expect_event_seq(&sub, "changed", "timed", base + 1);
		usleep(100000);
		/* A second change does not move the deadline. */
		ck_assert_uint_eq(test_conn_changed(&c, "timed", 20, 10), base + 2);
		expect_event_seq(&sub, "changed", "timed", base + 2);
		expect_event_seq(&sub, "flushed", "timed", base + 2);
		took = test_now_ms() - t0;
		ck_assert_msg(took >= 290 && took < 1500, "flushed %lld ms after the first change, "
		              "expected about 300", (long long)took);
		/* Nothing unflushed: no more flushes. */
		test_conn_expect_no_event(&sub, 450);
	}
	test_conn_close(&sub);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/* ---- persistence ----------------------------------------------------------------------------- */

START_TEST(test_flush_corrupt_metadata_is_quarantined_at_start_and_other_regions_work)
{
	static const char *names[] = { "good", "broken", "wrongver", "impostor" };
	struct test_daemon d;
	struct test_conn c, sub;
	char path[PATH_MAX], path2[PATH_MAX], pol[64];
	char *text;
	cJSON *meta;
	DIR *dir;
	struct dirent *e;
	bool quarantined[4] = { false, false, false, false };
	size_t nq = 0;
	uint64_t s0;

	test_daemon_start(&d, NULL);
	test_conn_open_hello(&c, &d);
	for (size_t i = 0; i < 4; i++) {
		test_daemon_create(&d, names[i], 65536, false);
		set_policy(&c, names[i], "every-writes", 7);
		wait_meta_file(&d, names[i]);
	}
	test_conn_close(&c);
	daemon_term(&d);

	/* Not JSON; the wrong version; a file that names another region. */
	meta_path(&d, "meta", "broken.json", path, sizeof(path));
	write_file(path, "{\"version\": 1, \"name\": \"broken\", ");
	meta_path(&d, "meta", "good.json", path, sizeof(path));
	text = read_file(path);
	meta = cJSON_Parse(text);
	ck_assert_msg(cJSON_IsObject(meta), "good.json is not a JSON object: %s", text);
	meta_path(&d, "meta", "impostor.json", path2, sizeof(path2));
	write_file(path2, text);
	free(text);
	meta_path(&d, "meta", "wrongver.json", path, sizeof(path));
	text = read_file(path);
	cJSON_Delete(meta);
	meta = cJSON_Parse(text);
	free(text);
	ck_assert_msg(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(meta, "version")),
	              "metadata without a numeric \"version\": %s", test_describe(meta));
	cJSON_ReplaceItemInObjectCaseSensitive(meta, "version",
	                                       cJSON_CreateNumber(cJSON_GetObjectItemCaseSensitive(
	                                           meta, "version")->valuedouble + 1000));
	text = cJSON_PrintUnformatted(meta);
	write_file(path, text);
	free(text);
	cJSON_Delete(meta);

	test_daemon_restart(&d);
	test_daemon_assert_alive(&d);
	meta_path(&d, "quarantine", NULL, path, sizeof(path));
	dir = opendir(path);
	ck_assert_msg(dir != NULL, "opendir %s: %s", path, strerror(errno));
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		nq++;
		for (size_t i = 1; i < 4; i++)
			if (strstr(e->d_name, names[i]) != NULL)
				quarantined[i] = true;
	}
	closedir(dir);
	ck_assert_msg(quarantined[1] && quarantined[2] && quarantined[3] && nq == 3,
	              "expected broken, wrongver and impostor (only) in %s (found %zu files; "
	              "broken %d wrongver %d impostor %d)", path, nq, quarantined[1],
	              quarantined[2], quarantined[3]);
	for (size_t i = 1; i < 4; i++) {
		char file[64];

		snprintf(file, sizeof(file), "%s.json", names[i]);
		meta_path(&d, "meta", file, path, sizeof(path));
		ck_assert_msg(access(path, F_OK) != 0, "%s is still in the meta directory", file);
	}

	/* The good region kept its policy and works; the others are regions with defaults. */
	stat_policy(&d, "good", pol, sizeof(pol), NULL);
	ck_assert_str_eq(pol, "every-writes:7");
	for (size_t i = 1; i < 4; i++) {
		stat_policy(&d, names[i], pol, sizeof(pol), NULL);
		ck_assert_str_eq(pol, "manual");
	}
	test_conn_open_hello(&c, &d);
	test_conn_open_hello(&sub, &d);
	s0 = test_conn_subscribe(&sub, "good");
	for (uint64_t i = 1; i <= 7; i++) {
		ck_assert_uint_eq(test_conn_changed(&c, "good", i, 1), s0 + i);
		expect_event_seq(&sub, "changed", "good", s0 + i);
	}
	expect_event_seq(&sub, "flushed", "good", s0 + 7);
	for (size_t i = 1; i < 4; i++) {
		test_reply_ok(test_conn_callf(&c, "{'op':'flush','name':'%s'}", names[i]));
		set_policy(&c, names[i], "every-bytes", 4096);
		wait_meta_file(&d, names[i]);
	}
	test_conn_close(&c);
	test_conn_close(&sub);
	test_daemon_stop(&d);
}
END_TEST

static Suite *flush_suite(void)
{
	Suite *s = suite_create("flush");
	TCase *tc = tcase_create("flush");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_flush_acknowledged_bytes_and_policy_survive_daemon_sigkill_and_restart);
	tcase_add_test(tc, test_flush_failed_fdatasync_poisons_region_and_tells_every_client);
	tcase_add_test(tc, test_flush_manual_policy_flushes_only_on_request);
	tcase_add_test(tc, test_flush_policy_always_flushes_every_change_before_its_reply);
	tcase_add_test(tc, test_flush_policy_every_writes_flushes_at_every_nth_change_and_is_announced);
	tcase_add_test(tc, test_flush_policy_every_bytes_flushes_once_the_changed_bytes_reach_n);
	tcase_add_test(tc, test_flush_policy_interval_flushes_ms_after_the_first_unflushed_change);
	tcase_add_test(tc, test_flush_corrupt_metadata_is_quarantined_at_start_and_other_regions_work);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(flush_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
