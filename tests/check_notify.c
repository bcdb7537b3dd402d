/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of change notification (docs/coordination.md, "Change notification"):
 * changed events reach every subscriber but the writer's own connection, in order, with seq
 * growing by one per change, the ranges as reported and the writer's identity; a subscriber that
 * falls behind has its changes coalesced (adjacent and overlapping ranges merged, the writer
 * dropped when there were several), and one that never reads gets overflow while the daemon's
 * memory stays bounded and another subscriber still receives every event in order; an event's
 * frame, encoded once and shared by every subscriber's queue, outlives a deaf and a killed
 * subscriber intact and is freed once; deleting a region tells subscribers and grant holders.
 *
 * Each test starts its own mmapd. Subscribers are raw connections of the test (exact events)
 * and session processes ($MMAPD_TESTCLIENT session, on libmmapd). Heavy writers send their
 * changed requests pipelined from the test process.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

/*
 * Asserts ev is a changed event of name: seq, first_seq, exactly the ranges given as
 * {offset, length} pairs (nranges of them), and the writer (client NULL: no writer field).
 * Frees ev.
 */
static void check_changed(cJSON *ev, const char *name, uint64_t seq, uint64_t first_seq,
                          const uint64_t *ranges, size_t nranges, const char *client, pid_t pid)
{
	const cJSON *rs, *r, *w;
	size_t i = 0;

	ck_assert_msg(strcmp(test_json_str(ev, "event"), "changed") == 0 &&
	              strcmp(test_json_str(ev, "region"), name) == 0 &&
	              test_json_u64(ev, "seq") == seq && test_json_u64(ev, "first_seq") == first_seq,
	              "expected changed of %s with seq %llu first_seq %llu, got %s", name,
	              (unsigned long long)seq, (unsigned long long)first_seq, test_describe(ev));
	rs = cJSON_GetObjectItemCaseSensitive(ev, "ranges");
	ck_assert_msg(cJSON_IsArray(rs) && (size_t)cJSON_GetArraySize(rs) == nranges,
	              "expected %zu ranges in %s", nranges, test_describe(ev));
	cJSON_ArrayForEach(r, rs) {
		ck_assert_msg(cJSON_IsArray(r) && cJSON_GetArraySize(r) == 2 &&
		              cJSON_GetArrayItem(r, 0)->valuedouble == (double)ranges[2 * i] &&
		              cJSON_GetArrayItem(r, 1)->valuedouble == (double)ranges[2 * i + 1],
		              "range %zu of %s is not [%llu, %llu]", i, test_describe(ev),
		              (unsigned long long)ranges[2 * i], (unsigned long long)ranges[2 * i + 1]);
		i++;
	}
	w = cJSON_GetObjectItemCaseSensitive(ev, "writer");
	if (client == NULL) {
		ck_assert_msg(w == NULL, "a change coalesced from several writers names one: %s",
		              test_describe(ev));
	} else {
		ck_assert_msg(cJSON_IsObject(w) && strcmp(test_json_str(w, "client"), client) == 0 &&
		              test_json_u64(w, "pid") == (uint64_t)pid,
		              "expected writer {%s, %d} in %s", client, (int)pid, test_describe(ev));
	}
	cJSON_Delete(ev);
}

/*
 * Sends n changed requests for name from the connections ws[i % nw], change i at offset
 * off0 + i * stride modulo wrap (wrap 0: none) with length len, keeping up to 32 in flight per
 * connection; asserts every reply is ok and returns the highest seq.
 */
static uint64_t write_many(struct test_conn **ws, size_t nw, const char *name, size_t n,
                           uint64_t off0, uint64_t stride, uint64_t wrap, uint64_t len)
{
	enum { WINDOW = 32 };
	size_t sent = 0, done = 0;
	uint64_t last = 0, conn_last[8] = { 0 };
	uint64_t *ids = calloc(n, sizeof(*ids));

	ck_assert(ids != NULL && nw <= 8);
	while (done < n) {
		while (sent < n && sent - done < WINDOW * nw) {
			uint64_t off = off0 + (uint64_t)sent * stride;

			if (wrap != 0)
				off = off0 + ((uint64_t)sent * stride) % wrap;
			ids[sent] = test_conn_sendf(ws[sent % nw], "{'op':'changed','name':'%s',"
			                            "'offset':%llu,'length':%llu}", name,
			                            (unsigned long long)off, (unsigned long long)len);
			sent++;
		}
		{
			cJSON *reply = test_conn_reply(ws[done % nw], ids[done], TEST_WAIT_MS);
			uint64_t seq;

			test_assert_ok(reply);
			/* Replies on one connection come in order; across connections they may not. */
			seq = test_json_u64(reply, "seq");
			ck_assert_msg(seq > conn_last[done % nw], "seq went from %llu to %llu",
			              (unsigned long long)conn_last[done % nw], (unsigned long long)seq);
			conn_last[done % nw] = seq;
			if (seq > last)
				last = seq;
			cJSON_Delete(reply);
		}
		done++;
	}
	free(ids);
	return last;
}

START_TEST(test_notify_events_keep_order_seq_ranges_and_writer_and_skip_the_writers_connection)
{
	struct test_daemon d;
	struct test_conn s1, s2, w, late;
	struct test_sess proc, lib;
	uint64_t seq0, s, r1[] = { 10, 20 }, r2[] = { 4000, 1 }, r3[] = { 100, 50 };
	struct test_conn *subs[] = { &s1, &s2 };
	char want[256];

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "news", 64 * 1024, false);
	test_conn_open_hello(&s1, &d);
	test_conn_open_hello(&s2, &d);
	test_conn_open_hello(&w, &d);
	seq0 = test_conn_subscribe(&s1, "news");
	ck_assert_uint_eq(test_conn_subscribe(&s2, "news"), seq0);
	ck_assert_uint_eq(test_conn_subscribe(&w, "news"), seq0);
	test_sess_start(&lib, &d, "lib-subscriber");
	ck_assert_uint_eq(test_line_u64(test_sess_ok(&lib, "subscribe news"), "seq"), seq0);
	test_sess_start(&proc, &d, "proc-writer");

	ck_assert_uint_eq(test_conn_changed(&w, "news", 10, 20), seq0 + 1);
	ck_assert_uint_eq(test_conn_changed(&w, "news", 4000, 1), seq0 + 2);
	s = test_line_u64(test_sess_ok(&proc, "changed news 100 50"), "seq");
	ck_assert_uint_eq(s, seq0 + 3);

	for (size_t i = 0; i < 2; i++) {
		struct test_conn *c = subs[i];

		check_changed(test_conn_expect_event(c, "changed", TEST_WAIT_MS), "news", seq0 + 1,
		              seq0 + 1, r1, 1, "harness", getpid());
		check_changed(test_conn_expect_event(c, "changed", TEST_WAIT_MS), "news", seq0 + 2,
		              seq0 + 2, r2, 1, "harness", getpid());
		check_changed(test_conn_expect_event(c, "changed", TEST_WAIT_MS), "news", seq0 + 3,
		              seq0 + 3, r3, 1, "proc-writer", proc.pid);
		test_conn_expect_no_event(c, 20);
	}
	/* The writer's own connection hears only the other writer's change. */
	check_changed(test_conn_expect_event(&w, "changed", TEST_WAIT_MS), "news", seq0 + 3, seq0 + 3,
	              r3, 1, "proc-writer", proc.pid);
	test_conn_expect_no_event(&w, 20);
	/* The library reports the same facts. */
	snprintf(want, sizeof(want), "changed news seq=%llu first=%llu ranges=10+20 writer=harness/%d",
	         (unsigned long long)(seq0 + 1), (unsigned long long)(seq0 + 1), (int)getpid());
	test_sess_expect_event(&lib, want);
	snprintf(want, sizeof(want), "changed news seq=%llu first=%llu ranges=4000+1 writer=harness/%d",
	         (unsigned long long)(seq0 + 2), (unsigned long long)(seq0 + 2), (int)getpid());
	test_sess_expect_event(&lib, want);
	snprintf(want, sizeof(want), "changed news seq=%llu first=%llu ranges=100+50 writer=proc-writer/%d",
	         (unsigned long long)(seq0 + 3), (unsigned long long)(seq0 + 3), (int)proc.pid);
	test_sess_expect_event(&lib, want);
	/* Not subscribed: the process writer hears nothing. */
	test_sess_expect_no_event(&proc, 20);

	/* The region and a new subscriber know the last seq. */
	{
		const cJSON *region;
		cJSON *st = test_daemon_stat(&d, "news", &region);

		ck_assert_uint_eq(test_json_u64(region, "seq"), seq0 + 3);
		cJSON_Delete(st);
	}
	test_conn_open_hello(&late, &d);
	ck_assert_uint_eq(test_conn_subscribe(&late, "news"), seq0 + 3);
	test_reply_error(test_conn_callf(&late, "{'op':'subscribe','name':'news'}"),
	                 "EALREADY", EALREADY, NULL);
	test_reply_ok(test_conn_callf(&late, "{'op':'unsubscribe','name':'news'}"));
	test_reply_error(test_conn_callf(&late, "{'op':'unsubscribe','name':'news'}"),
	                 "ENOENT", ENOENT, NULL);
	/* Unsubscribed: nothing more. Ranges must lie inside the region. */
	test_reply_error(test_conn_callf(&w,
	                                 "{'op':'changed','name':'news','offset':65530,'length':10}"),
	                 "ERANGE", ERANGE, NULL);
	test_reply_error(test_conn_callf(&w,
	                                 "{'op':'changed','name':'news','offset':0,'length':0}"),
	                 "EINVAL", EINVAL, NULL);
	ck_assert_uint_eq(test_conn_changed(&w, "news", 65535, 1), seq0 + 4);
	test_conn_expect_no_event(&late, 20);
	{
		uint64_t r4[] = { 65535, 1 };

		check_changed(test_conn_expect_event(&s1, "changed", TEST_WAIT_MS), "news", seq0 + 4,
		              seq0 + 4, r4, 1, "harness", getpid());
	}
	ck_assert_int_eq(test_sess_end(&lib), 0);
	ck_assert_int_eq(test_sess_end(&proc), 0);
	test_conn_close(&s1);
	test_conn_close(&s2);
	test_conn_close(&w);
	test_conn_close(&late);
	test_daemon_stop(&d);
}
END_TEST

/*
 * Reads every event the lagging subscriber c has, up to a ping reply. Checks that they are
 * changed events covering seq first..last without gap or overlap, that all but the last are
 * single changes, and returns the last one (caller frees), asserting it is coalesced. The
 * single changes were made at offsets stride * i (i < n): delivered[i] is set for each.
 */
static cJSON *drain_to_coalesced(struct test_conn *c, uint64_t first, uint64_t last,
                                 uint64_t stride, size_t n, bool *delivered)
{
	cJSON *ev, *prev = NULL;
	uint64_t next = first;

	memset(delivered, 0, n * sizeof(*delivered));
	test_reply_ok(test_conn_callf(c, "{'op':'ping'}"));
	while ((ev = test_conn_event(c, 0)) != NULL) {
		ck_assert_msg(strcmp(test_json_str(ev, "event"), "changed") == 0,
		              "expected only changed events, got %s", test_describe(ev));
		ck_assert_msg(test_json_u64(ev, "first_seq") == next, "expected first_seq %llu in %s",
		              (unsigned long long)next, test_describe(ev));
		ck_assert_uint_ge(test_json_u64(ev, "seq"), next);
		next = test_json_u64(ev, "seq") + 1;
		if (prev != NULL) {
			const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(prev, "ranges"), 0);
			uint64_t i;

			ck_assert_msg(test_json_u64(prev, "seq") == test_json_u64(prev, "first_seq"),
			              "a coalesced event before the end: %s", test_describe(prev));
			ck_assert_msg(cJSON_IsArray(r) && cJSON_IsNumber(cJSON_GetArrayItem(r, 0)),
			              "a changed event without ranges: %s", test_describe(prev));
			i = (uint64_t)cJSON_GetArrayItem(r, 0)->valuedouble / stride;
			ck_assert(i < n && !delivered[i]);
			delivered[i] = true;
			cJSON_Delete(prev);
		}
		prev = ev;
	}
	ck_assert_msg(prev != NULL, "the lagging subscriber got no event at all");
	ck_assert_msg(next == last + 1, "the events end at seq %llu, the changes at %llu",
	              (unsigned long long)(next - 1), (unsigned long long)last);
	ck_assert_msg(test_json_u64(prev, "first_seq") < test_json_u64(prev, "seq"),
	              "the lagging subscriber's changes were not coalesced (last event %s)",
	              test_describe(prev));
	return prev;
}

/*
 * The ranges a coalesced event must carry: the union of [stride * i, stride * i + len) over
 * the changes i < n not delivered one by one, adjacent and overlapping ones merged, as
 * {offset, length} pairs in ranges (room for n pairs). Returns their number.
 */
static size_t union_of_undelivered(const bool *delivered, size_t n, uint64_t stride, uint64_t len,
                                   uint64_t *ranges)
{
	size_t nr = 0;
	uint64_t off = 0, end = 0;
	bool open = false;

	for (size_t i = 0; i < n; i++) {
		uint64_t o = stride * i, e = o + len;

		if (delivered[i])
			continue;
		if (open && o <= end) {
			if (e > end)
				end = e;
			continue;
		}
		if (open) {
			ranges[2 * nr] = off;
			ranges[2 * nr + 1] = end - off;
			nr++;
		}
		off = o;
		end = e;
		open = true;
	}
	if (open) {
		ranges[2 * nr] = off;
		ranges[2 * nr + 1] = end - off;
		nr++;
	}
	return nr;
}

START_TEST(test_notify_lagging_subscriber_gets_adjacent_and_overlapping_changes_coalesced)
{
	enum { N = 5000 };
	struct test_daemon d;
	struct test_conn lag, w1, w2;
	struct test_conn *one[] = { &w1 }, *two[] = { &w1, &w2 };
	static bool delivered[N];
	static uint64_t want[2 * N];
	uint64_t seq0, last, rng[2];
	size_t nr;
	cJSON *ev;

	test_daemon_start(&d, "{\"event_backlog_bytes\": 4096}");
	test_daemon_create(&d, "busy", 64 * 1024, false);
	test_conn_open_hello(&lag, &d);
	test_conn_open_hello(&w1, &d);
	test_conn_open_hello(&w2, &d);
	seq0 = test_conn_subscribe(&lag, "busy");

	/* One writer, adjacent ranges: 8 bytes at 8 * i. */
	last = write_many(one, 1, "busy", N, 0, 8, 0, 8);
	ck_assert_uint_eq(last, seq0 + N);
	ev = drain_to_coalesced(&lag, seq0 + 1, last, 8, N, delivered);
	nr = union_of_undelivered(delivered, N, 8, 8, want);
	ck_assert_uint_eq(nr, 1);
	check_changed(ev, "busy", last, (uint64_t)cJSON_GetObjectItemCaseSensitive(ev, "first_seq")->valuedouble,
	              want, nr, "harness", getpid());

	/* Two writers, overlapping ranges: 8 bytes at 4 * i. The two connections' changes
	 * interleave in any order, so the ranges to expect follow from what came singly. */
	seq0 = last;
	last = write_many(two, 2, "busy", N, 0, 4, 0, 8);
	ck_assert_uint_eq(last, seq0 + N);
	ev = drain_to_coalesced(&lag, seq0 + 1, last, 4, N, delivered);
	nr = union_of_undelivered(delivered, N, 4, 8, want);
	check_changed(ev, "busy", last, (uint64_t)cJSON_GetObjectItemCaseSensitive(ev, "first_seq")->valuedouble,
	              want, nr, NULL, 0);

	/* Caught up: the next change comes alone again. */
	ck_assert_uint_eq(test_conn_changed(&w2, "busy", 60000, 3), last + 1);
	rng[0] = 60000;
	rng[1] = 3;
	check_changed(test_conn_expect_event(&lag, "changed", TEST_WAIT_MS), "busy", last + 1,
	              last + 1, rng, 1, "harness", getpid());
	test_conn_close(&lag);
	test_conn_close(&w1);
	test_conn_close(&w2);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_notify_subscriber_that_never_reads_stays_bounded_and_gets_overflow_while_another_gets_every_event)
{
	enum { WARM = 3000, N = 50000 };
	struct test_daemon d;
	struct test_conn deaf, w;
	struct test_conn *one[] = { &w };
	struct test_sess reader;
	uint64_t seq0, last, rss0, rss1, prev_seq, changes = 0, overflows = 0, events = 0;
	const char *r;
	char want[256];
	cJSON *ev;

	/* A large max_queue_bytes: a daemon that queued everything would not be rescued by
	 * cutting the deaf subscriber off. */
	test_daemon_init(&d, "{\"max_queue_bytes\": 67108864}");
#ifdef TEST_ASAN
	/* Without its quarantine, ASan's allocator reuses memory as malloc does, so the
	 * resident size means the same as in a plain build. */
	{
		const char *o = getenv("ASAN_OPTIONS");
		char env[TEST_PATH_MAX];

		snprintf(env, sizeof(env), "ASAN_OPTIONS=%s%squarantine_size_mb=0", o ? o : "",
		         o && o[0] ? ":" : "");
		test_daemon_setenv(&d, env);
	}
#endif
	test_daemon_launch(&d);
	test_daemon_create(&d, "flood", 64 * 1024, false);
	test_conn_open_hello(&w, &d);
	test_sess_start(&reader, &d, "reader");
	seq0 = test_line_u64(test_sess_ok(&reader, "subscribe flood"), "seq");
	(void)test_sess_ok(&reader, "count flood");

	/* Warm the daemon up with the reader alone, then measure. */
	last = write_many(one, 1, "flood", WARM, 0, 16, 60000, 8);
	r = test_sess_ok(&reader, "count-wait flood %llu 30000", (unsigned long long)last);
	snprintf(want, sizeof(want), " events=%d changes=%d coalesced=0 overflow=0 bad=0 last=%llu",
	         WARM, WARM, (unsigned long long)last);
	ck_assert_str_eq(r, want);
	rss0 = test_daemon_rss_kib(&d);

	test_conn_open_hello(&deaf, &d);
	ck_assert_uint_eq(test_conn_subscribe(&deaf, "flood"), last);
	seq0 = last;
	/* Scattered ranges: they cannot merge, so the deaf one's list overflows. The writer
	 * never runs more than 1000 changes (some 120 KiB of events, less than a socket buffer)
	 * ahead of the reader, which therefore never lags enough to be coalesced itself. */
	for (int chunk = 0; chunk < N / 1000; chunk++) {
		last = write_many(one, 1, "flood", 1000, 0, 16, 60000, 8);
		r = test_sess_ok(&reader, "count-wait flood %llu 30000", (unsigned long long)last);
		ck_assert_msg(test_line_u64(r, "last") == last && test_line_u64(r, "coalesced") == 0,
		              "the reading subscriber after change %llu: %s", (unsigned long long)last, r);
	}
	ck_assert_uint_eq(last, seq0 + N);
	r = test_sess_ok(&reader, "count-wait flood %llu 30000", (unsigned long long)last);
	snprintf(want, sizeof(want), " events=%d changes=%d coalesced=0 overflow=0 bad=0 last=%llu",
	         WARM + N, WARM + N, (unsigned long long)last);
	ck_assert_msg(strcmp(r, want) == 0, "the reading subscriber did not get every change one by "
	              "one in order: expected \"%s\", got \"%s\"", want, r);
	rss1 = test_daemon_rss_kib(&d);
	printf("check_notify: daemon VmRSS %llu KiB before %d changes with a deaf subscriber, "
	       "%llu KiB after\n", (unsigned long long)rss0, N, (unsigned long long)rss1);
	fflush(stdout);
	ck_assert_msg(rss1 < rss0 + 4096, "the daemon grew from %llu KiB to %llu KiB while a "
	              "subscriber did not read", (unsigned long long)rss0, (unsigned long long)rss1);

	/*
	 * The deaf one reads at last: changes in order, then an overflow, nothing lost silently.
	 * Changes were dropped after that overflow was queued too, so docs/coordination.md
	 * promises a second overflow, carrying the last dropped seq, when its queue drains; and
	 * no changed event after the first overflow.
	 */
	test_reply_ok(test_conn_callf(&deaf, "{'op':'ping'}"));
	prev_seq = seq0;
	while ((ev = test_conn_event(&deaf, 0)) != NULL) {
		const char *name = test_json_str(ev, "event");
		uint64_t seq = test_json_u64(ev, "seq");

		events++;
		ck_assert_msg(overflows == 0 || strcmp(name, "overflow") == 0,
		              "a %s event after the overflow (seq %llu): %s",
		              name, (unsigned long long)prev_seq, test_describe(ev));
		ck_assert_msg(overflows < 2, "an event after the second overflow: %s", test_describe(ev));
		if (strcmp(name, "changed") == 0) {
			ck_assert_msg(test_json_u64(ev, "first_seq") == prev_seq + 1 && seq > prev_seq,
			              "out of order after seq %llu: %s", (unsigned long long)prev_seq,
			              test_describe(ev));
			changes += seq - test_json_u64(ev, "first_seq") + 1;
		} else {
			ck_assert_msg(strcmp(name, "overflow") == 0, "unexpected %s", test_describe(ev));
			ck_assert_msg(seq > prev_seq && seq <= last, "overflow seq %llu is not after %llu",
			              (unsigned long long)seq, (unsigned long long)prev_seq);
			overflows++;
		}
		prev_seq = seq;
		cJSON_Delete(ev);
	}
	printf("check_notify: the deaf subscriber read %llu events (%llu changes) then %llu overflows\n",
	       (unsigned long long)events, (unsigned long long)changes, (unsigned long long)overflows);
	fflush(stdout);
	ck_assert_msg(overflows == 2, "expected an overflow and, at drain, a second one; got %llu",
	              (unsigned long long)overflows);
	ck_assert_msg(prev_seq == last, "the last overflow carries seq %llu, not the last dropped "
	              "change %llu", (unsigned long long)prev_seq, (unsigned long long)last);
	ck_assert_msg(changes < N, "the deaf subscriber was sent all %d changes", N);

	/* Drained: it hears the next change like everyone. */
	{
		uint64_t rng[] = { 8, 8 };

		ck_assert_uint_eq(test_conn_changed(&w, "flood", 8, 8), last + 1);
		check_changed(test_conn_expect_event(&deaf, "changed", TEST_WAIT_MS), "flood", last + 1,
		              last + 1, rng, 1, "harness", getpid());
	}
	r = test_sess_ok(&reader, "count-wait flood %llu 5000", (unsigned long long)(last + 1));
	ck_assert_uint_eq(test_line_u64(r, "bad"), 0);
	ck_assert_uint_eq(test_line_u64(r, "last"), last + 1);
	ck_assert_int_eq(test_sess_end(&reader), 0);
	test_conn_close(&deaf);
	test_conn_close(&w);
	test_daemon_stop(&d);
}
END_TEST

/* The queued_bytes of the connection whose hello named it client (asserted there is one). */
static uint64_t queued_bytes_of(struct test_conn *c, const char *client)
{
	cJSON *reply = test_conn_callf(c, "{'op':'clients'}");
	const cJSON *entry;
	uint64_t bytes = 0;
	int found = 0;

	test_assert_ok(reply);
	cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(reply, "clients")) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "name");

		if (cJSON_IsString(name) && strcmp(name->valuestring, client) == 0) {
			bytes = test_json_u64(entry, "queued_bytes");
			found++;
		}
	}
	ck_assert_msg(found == 1, "%d connections named %s", found, client);
	cJSON_Delete(reply);
	return bytes;
}

/*
 * A changed event is encoded once and its frame shared by the output queues of every
 * subscriber it goes to. A subscriber that does not read keeps frames queued (the first one
 * maybe partly written) that the others sent and dropped long ago, and one killed while
 * frames wait in its queue drops its share when its connection closes. The reader still gets
 * every change one by one, the deaf one gets its events intact and in order once it reads,
 * and the daemon exits cleanly: under ASan, no frame freed twice, read after free, or leaked.
 */
START_TEST(test_notify_shared_event_frames_outlive_deaf_and_killed_subscribers)
{
	enum { CHUNK = 500, N = 8000 };
	struct test_daemon d;
	struct test_conn deaf, w;
	struct test_conn *one[] = { &w };
	struct test_sess reader, killed;
	uint64_t seq0, last = 0, prev, queued_at_kill = 0;
	const char *r;
	char want[256];
	cJSON *ev;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "shared", 64 * 1024, false);
	test_conn_open_hello(&w, &d);
	test_conn_open_hello(&deaf, &d);
	test_sess_start(&reader, &d, "reader");
	test_sess_start(&killed, &d, "killed");
	seq0 = test_conn_subscribe(&deaf, "shared");
	ck_assert_uint_eq(test_line_u64(test_sess_ok(&reader, "subscribe shared"), "seq"), seq0);
	(void)test_sess_ok(&reader, "count shared");
	(void)test_sess_ok(&killed, "subscribe shared");
	/* Stopped, it reads nothing more: its socket fills, then its queue in the daemon. */
	ck_assert_int_eq(kill(killed.pid, SIGSTOP), 0);

	for (int chunk = 0; chunk < N / CHUNK; chunk++) {
		last = write_many(one, 1, "shared", CHUNK, 0, 16, 60000, 8);
		if (chunk == N / CHUNK / 2) {
			queued_at_kill = queued_bytes_of(&w, "killed");
			ck_assert_int_eq(test_sess_kill(&killed, SIGKILL), 128 + SIGKILL);
		}
		r = test_sess_ok(&reader, "count-wait shared %llu 30000", (unsigned long long)last);
		ck_assert_msg(test_line_u64(r, "last") == last && test_line_u64(r, "coalesced") == 0,
		              "the reading subscriber after change %llu: %s", (unsigned long long)last, r);
	}
	ck_assert_uint_eq(last, seq0 + N);
	ck_assert_msg(queued_at_kill > 0, "the stopped subscriber had nothing queued when killed: "
	              "the test did not kill a connection holding shared frames");
	r = test_sess_ok(&reader, "count-wait shared %llu 30000", (unsigned long long)last);
	snprintf(want, sizeof(want), " events=%d changes=%d coalesced=0 overflow=0 bad=0 last=%llu",
	         N, N, (unsigned long long)last);
	ck_assert_msg(strcmp(r, want) == 0, "expected \"%s\", got \"%s\"", want, r);

	/* The deaf one reads at last: whole events, in order, up to the last change. */
	prev = seq0;
	while (prev < last) {
		const char *name;
		uint64_t seq;

		ev = test_conn_event(&deaf, TEST_WAIT_MS);
		ck_assert_msg(ev != NULL, "the deaf subscriber got no event after seq %llu of %llu",
		              (unsigned long long)prev, (unsigned long long)last);
		name = test_json_str(ev, "event");
		seq = test_json_u64(ev, "seq");
		ck_assert_msg(seq > prev && strcmp(test_json_str(ev, "region"), "shared") == 0,
		              "out of order after seq %llu: %s", (unsigned long long)prev,
		              test_describe(ev));
		if (strcmp(name, "changed") == 0)
			ck_assert_msg(test_json_u64(ev, "first_seq") == prev + 1,
			              "a gap after seq %llu: %s", (unsigned long long)prev, test_describe(ev));
		else
			ck_assert_msg(strcmp(name, "overflow") == 0, "unexpected %s", test_describe(ev));
		prev = seq;
		cJSON_Delete(ev);
	}
	ck_assert_int_eq(test_sess_end(&reader), 0);
	test_conn_close(&deaf);
	test_conn_close(&w);
	test_daemon_stop(&d);
}
END_TEST

/* A subscriber that holds no grant (mmapctl watch) hears of size changes too, once. */
START_TEST(test_notify_resize_reaches_subscribers_without_a_grant)
{
	struct test_daemon d;
	struct test_conn sub, holder, other;
	cJSON *ev, *reply;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "grows", 4096, false);
	test_conn_open_hello(&sub, &d);
	test_conn_open_hello(&holder, &d);
	test_conn_open_hello(&other, &d);
	(void)test_conn_subscribe(&sub, "grows");
	reply = test_conn_callf(&holder, "{'op':'open','name':'grows','mode':'ro'}");
	test_assert_ok(reply);
	close(test_conn_take_fd(&holder));
	cJSON_Delete(reply);
	(void)test_conn_subscribe(&holder, "grows");

	test_reply_ok(test_conn_callf(&other, "{'op':'resize','name':'grows','size':8192}"));
	ev = test_conn_expect_event(&sub, "resized", TEST_WAIT_MS);
	ck_assert_uint_eq(test_json_u64(ev, "size"), 8192);
	ck_assert_uint_eq(test_json_u64(ev, "old_size"), 4096);
	cJSON_Delete(ev);
	/* The holder that also subscribes hears it once. */
	ev = test_conn_expect_event(&holder, "resized", TEST_WAIT_MS);
	ck_assert_uint_eq(test_json_u64(ev, "size"), 8192);
	cJSON_Delete(ev);
	test_conn_expect_no_event(&holder, 20);
	test_conn_expect_no_event(&sub, 20);
	test_conn_expect_no_event(&other, 20);
	test_conn_close(&sub);
	test_conn_close(&holder);
	test_conn_close(&other);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_notify_delete_tells_subscribers_and_grant_holders)
{
	struct test_daemon d;
	struct test_conn sub, holder, other;
	struct test_sess s;
	cJSON *ev, *reply;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "gone", 4096, false);
	test_conn_open_hello(&sub, &d);
	test_conn_open_hello(&holder, &d);
	test_conn_open_hello(&other, &d);
	(void)test_conn_subscribe(&sub, "gone");
	reply = test_conn_callf(&holder, "{'op':'open','name':'gone','mode':'ro'}");
	test_assert_ok(reply);
	close(test_conn_take_fd(&holder));
	cJSON_Delete(reply);
	test_sess_start(&s, &d, NULL);
	(void)test_sess_ok(&s, "open gone rw");
	(void)test_sess_ok(&s, "subscribe gone");

	test_daemon_delete(&d, "gone");
	ev = test_conn_expect_event(&sub, "deleted", TEST_WAIT_MS);
	ck_assert_str_eq(test_json_str(ev, "region"), "gone");
	cJSON_Delete(ev);
	ev = test_conn_expect_event(&holder, "deleted", TEST_WAIT_MS);
	ck_assert_str_eq(test_json_str(ev, "region"), "gone");
	cJSON_Delete(ev);
	/* Each connection hears it once, even when it both holds and subscribes. */
	test_sess_expect_event(&s, "deleted gone");
	test_sess_expect_no_event(&s, 20);
	test_conn_expect_no_event(&sub, 20);
	test_conn_expect_no_event(&other, 20);
	ck_assert_int_eq(test_sess_end(&s), 0);
	test_conn_close(&sub);
	test_conn_close(&holder);
	test_conn_close(&other);
	ck_assert_uint_eq(test_daemon_wait_status(&d, "subscriptions", 0), 0);
	test_daemon_stop(&d);
}
END_TEST

static Suite *notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_notify_events_keep_order_seq_ranges_and_writer_and_skip_the_writers_connection);
	tcase_add_test(tc, test_notify_lagging_subscriber_gets_adjacent_and_overlapping_changes_coalesced);
	tcase_add_test(tc, test_notify_subscriber_that_never_reads_stays_bounded_and_gets_overflow_while_another_gets_every_event);
	tcase_add_test(tc, test_notify_shared_event_frames_outlive_deaf_and_killed_subscribers);
	tcase_add_test(tc, test_notify_delete_tells_subscribers_and_grant_holders);
	tcase_add_test(tc, test_notify_resize_reaches_subscribers_without_a_grant);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(notify_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
