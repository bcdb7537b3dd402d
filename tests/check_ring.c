/* SPDX-License-Identifier: MIT */
/*
 * Tests of the rings (client/ring*.c) against a real mmapd and across real processes: the
 * double mapping is boundary-free (a span that wraps is contiguous at the pointer and lands at
 * both ends of the region's data), 64 MiB of a known pseudo-random sequence streamed through a
 * 64 KiB ring from a producer process to a consumer process with blocking waits (the futex
 * wake-ups), the overwrite mode (a slow reader gets -EOVERFLOW once and then consistent data;
 * a concurrent reader never sees a torn byte), corrupt headers refused, invalid arguments,
 * read_until across the wrap point and the put/flush batch, puts of every size and alignment
 * in streamed batches (non-temporal stores), one wake-up per sleep (not one per publish while
 * a woken reader has yet to run); the end of the stream (a writer
 * that closed, or was SIGKILLed while a reader waited: the reader gets the rest, then
 * -EPIPE; a writer blocked on a full ring whose reader was SIGKILLed gets -EPIPE; a reader
 * blocked while the daemon is SIGKILLed and started again gets its live writer's later
 * bytes, no -EPIPE, and a second writer still gets -EBUSY) and one MMAPD_RING_WRITER, or MMAPD_RING_READER, at a time (-EBUSY).
 *
 * One mmapd is shared by the test case (unchecked fixture), except for the restart test,
 * which starts its own; each test opens its own
 * connections and rings, forks its own processes (each with its own connection) and deletes
 * what it created; the checked fixture proves no descriptor or child leaked.
 */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"
#include "mmapd-ring.h"
#include "ring.h"

#define STREAM_BYTES (64u << 20)
#define STREAM_CAP   (64u << 10)
/* Long enough never to expire on a loaded machine; a lost wake-up still fails, not hangs. */
#define WAIT_MS 20000
/* A forked child taking longer than this is stuck (it is killed and the test fails). */
#define CHILD_WAIT_MS 120000

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

static struct mmapd_ring *ring_new(struct mmapd_client *c, const char *name, size_t cap,
                                   unsigned flags)
{
	struct mmapd_ring *ring = NULL;
	int r = mmapd_ring_create(c, name, cap, flags, &ring);

	ck_assert_msg(r == 0, "create ring %s: %s", name, mmapd_last_message());
	return ring;
}

static struct mmapd_ring *ring_get_as(struct mmapd_client *c, const char *name,
                                       unsigned flags)
{
	struct mmapd_ring *ring = NULL;
	int r = mmapd_ring_open(c, name, flags, &ring);

	ck_assert_msg(r == 0, "open ring %s: %s", name, mmapd_last_message());
	return ring;
}

static struct mmapd_ring *ring_get(struct mmapd_client *c, const char *name)
{
	return ring_get_as(c, name, 0);
}

/* The byte at stream position p of the known sequence: splitmix64 of p / 8, byte p % 8. */
static uint8_t seq_byte(uint64_t p)
{
	uint64_t z = (p >> 3) + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (uint8_t)(z >> ((p & 7) * 8));
}

static void seq_fill(uint8_t *buf, uint64_t p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = seq_byte(p + i);
}

/* Index of the first byte of buf that is not the sequence from p, or len. */
static size_t seq_check(const uint8_t *buf, uint64_t p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != seq_byte(p + i))
			return i;
	return len;
}

/* A small xorshift for chunk sizes and call choices. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Child processes report a failure on stderr and exit non-zero. */
#define CHILD_CHECK(cond, ...)                                                               \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "child %d: ", (int)getpid());                        \
			fprintf(stderr, __VA_ARGS__);                                        \
			fprintf(stderr, " (%s)\n", mmapd_last_message());                   \
			_exit(1);                                                            \
		}                                                                            \
	} while (0)

/* A child's own connection and handle on ring name. */
static struct mmapd_ring *child_ring(const char *name, struct mmapd_client **ret_c)
{
	struct mmapd_ring *ring = NULL;

	CHILD_CHECK(mmapd_connect(dmn.sock, "ring-child", ret_c) == 0, "connect");
	CHILD_CHECK(mmapd_ring_open(*ret_c, name, 0, &ring) == 0, "open %s", name);
	return ring;
}

static void child_done(struct mmapd_client *c, struct mmapd_ring *ring)
{
	mmapd_ring_close(ring);
	mmapd_disconnect(c);
	_exit(0);
}

START_TEST(test_ring_wrapping_span_is_contiguous_and_lands_at_both_ends_of_the_data)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	size_t cap = 4 * page, head = 100, span = 300;
	struct mmapd_ring *w = ring_new(c, "wrap", cap, 0);
	struct mmapd_ring *rd = ring_get(c, "wrap");
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct mmapd_region *raw = NULL;
	uint8_t *fill = malloc(cap), *out = malloc(cap);
	const uint8_t *data;
	const void *peek;
	size_t len;
	void *p;

	/* Move both positions to head bytes before the end of the data. */
	seq_fill(fill, 0, cap - head);
	ck_assert_int_eq(mmapd_ring_write(w, fill, cap - head), (ptrdiff_t)(cap - head));
	ck_assert_int_eq(mmapd_ring_read(rd, out, cap), (ptrdiff_t)(cap - head));
	ck_assert_uint_eq(seq_check(out, 0, cap - head), cap - head);

	/* One reservation across the end: contiguous at the pointer. */
	ck_assert_int_eq(mmapd_ring_write_reserve(w, span, &p), 0);
	seq_fill(p, 1000000, span);
	ck_assert_int_eq(mmapd_ring_write_commit(w, span), 0);

	/* The other handle (its own mapping) sees it contiguous too. */
	ck_assert_int_eq(mmapd_ring_read_peek(rd, &peek, &len), 0);
	ck_assert_uint_eq(len, span);
	ck_assert_uint_eq(seq_check(peek, 1000000, span), span);

	/* In the region itself, the span's end wrapped to the start of the data. */
	ck_assert_int_eq(mmapd_region_open(c, "wrap", &o, &raw), 0);
	data = (const uint8_t *)mmapd_region_data(raw) + page;
	ck_assert_uint_eq(seq_check(data + cap - head, 1000000, head), head);
	ck_assert_uint_eq(seq_check(data, 1000000 + head, span - head), span - head);
	mmapd_region_close(raw);

	ck_assert_int_eq(mmapd_ring_read(rd, out, cap), (ptrdiff_t)span);
	ck_assert_uint_eq(seq_check(out, 1000000, span), span);
	ck_assert_uint_eq(mmapd_ring_readable(rd), 0);
	ck_assert_uint_eq(mmapd_ring_writable(w), cap);
	mmapd_ring_close(rd);
	mmapd_ring_close(w);
	ck_assert_int_eq(mmapd_delete(c, "wrap"), 0);
	free(fill);
	free(out);
	mmapd_disconnect(c);
}
END_TEST

/* Producer: STREAM_BYTES of the sequence in random chunks by write, reserve/commit and put. */
static void stream_producer(void)
{
	struct mmapd_client *c;
	struct mmapd_ring *ring = child_ring("stream", &c);
	uint8_t *buf = malloc(STREAM_CAP);
	uint32_t s = 12345;
	uint64_t pos = 0;

	while (pos < STREAM_BYTES) {
		size_t len = 1 + rnd(&s) % 8192, done = 0;
		ptrdiff_t n;
		void *p;

		if (len > STREAM_BYTES - pos)
			len = STREAM_BYTES - pos;
		seq_fill(buf, pos, len);
		switch (rnd(&s) % 3) {
		case 0:
			while (done < len) {
				n = mmapd_ring_write(ring, buf + done, len - done);
				CHILD_CHECK(n >= 0, "write");
				done += (size_t)n;
				if (done < len)
					CHILD_CHECK(mmapd_ring_wait_writable(ring, 1, WAIT_MS) == 0,
					            "wait_writable");
			}
			break;
		case 1:
			CHILD_CHECK(mmapd_ring_wait_writable(ring, len, WAIT_MS) == 0, "wait %zu", len);
			CHILD_CHECK(mmapd_ring_write_reserve(ring, len, &p) == 0, "reserve");
			memcpy(p, buf, len);
			CHILD_CHECK(mmapd_ring_write_commit(ring, len) == 0, "commit");
			break;
		default:
			CHILD_CHECK(mmapd_ring_put(ring, buf, len, WAIT_MS) == 0, "put");
			if (rnd(&s) % 4 == 0)
				CHILD_CHECK(mmapd_ring_flush(ring) == 0, "flush");
		}
		pos += len;
	}
	free(buf);
	child_done(c, ring);
}

/* Consumer: verifies every byte, reading by read, peek/consume and read_exact. */
static void stream_consumer(void)
{
	struct mmapd_client *c;
	struct mmapd_ring *ring = child_ring("stream", &c);
	uint8_t *buf = malloc(STREAM_CAP);
	uint32_t s = 777;
	uint64_t pos = 0;

	while (pos < STREAM_BYTES) {
		size_t len = 1 + rnd(&s) % 8192;
		const void *p;
		ptrdiff_t n;

		if (len > STREAM_BYTES - pos)
			len = STREAM_BYTES - pos;
		switch (rnd(&s) % 3) {
		case 0:
			CHILD_CHECK(mmapd_ring_wait_readable(ring, 1, WAIT_MS) == 0, "wait_readable");
			n = mmapd_ring_read(ring, buf, len);
			CHILD_CHECK(n > 0, "read %zd", n);
			len = (size_t)n;
			break;
		case 1:
			CHILD_CHECK(mmapd_ring_wait_readable(ring, 1, WAIT_MS) == 0, "wait_readable");
			CHILD_CHECK(mmapd_ring_read_peek(ring, &p, &len) == 0 && len > 0, "peek");
			if (len > STREAM_BYTES - pos)
				len = STREAM_BYTES - pos;
			memcpy(buf, p, len);
			CHILD_CHECK(mmapd_ring_read_consume(ring, len) == 0, "consume");
			break;
		default:
			CHILD_CHECK(mmapd_ring_read_exact(ring, buf, len, WAIT_MS) == 0, "read_exact");
		}
		CHILD_CHECK(seq_check(buf, pos, len) == len, "byte %llu is wrong",
		            (unsigned long long)(pos + seq_check(buf, pos, len)));
		pos += len;
	}
	CHILD_CHECK(mmapd_ring_readable(ring) == 0, "bytes beyond the stream");
	free(buf);
	child_done(c, ring);
}

START_TEST(test_ring_64_mib_stream_from_producer_to_consumer_process_arrives_exact)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_ring *ring = ring_new(c, "stream", STREAM_CAP, MMAPD_RING_ANONYMOUS);
	struct ring_header *hdr = mmapd_region_data(mmapd_ring_region(ring));
	pid_t consumer, producer;

	/* The consumer starts first and sleeps on the empty ring. */
	consumer = fork();
	ck_assert_int_ge(consumer, 0);
	if (consumer == 0)
		stream_consumer();
	producer = fork();
	ck_assert_int_ge(producer, 0);
	if (producer == 0)
		stream_producer();
	test_child_wait(producer, CHILD_WAIT_MS);
	test_child_wait(consumer, CHILD_WAIT_MS);
	ck_assert_uint_eq(mmapd_ring_readable(ring), 0);
	/* Every process that slept took itself off the waiter counts. */
	ck_assert_uint_eq(atomic_load(&hdr->read_waiters), 0);
	ck_assert_uint_eq(atomic_load(&hdr->write_waiters), 0);
	mmapd_ring_close(ring);
	ck_assert_int_eq(mmapd_delete(c, "stream"), 0);
	mmapd_disconnect(c);
}
END_TEST

/*
 * The wake-up stress: SLEEPY_MSGS messages of 1 to 64 bytes of the sequence through a one-page
 * ring, each side stopping now and then for a random while around the spin budget (up to
 * twice RING_SPIN_MAX_NS), so that the other side now finds what it waits for while it spins
 * and now goes to sleep, in every order of announcing and publishing. After one message in
 * four the writer waits until the reader has taken everything (the ring is all writable):
 * a ping-pong in which each wake-up is the only one coming, so a lost one leaves both sides
 * asleep. The handles are opened without MMAPD_RING_WRITER/READER, so a sleeper is not woken
 * by the side checks every RING_SIDE_CHECK_MS: a lost wake-up makes a wait run out
 * (SLEEPY_WAIT_MS) and fails the test.
 * Each side counts its voluntary context switches beyond its own pauses: sleeps on the futex.
 */
#define SLEEPY_MSGS    2000000u
#define SLEEPY_WAIT_MS WAIT_MS
#define SLEEPY_SLEEPS  1000  /* at least this many futex sleeps on each side */

/* Busy for a random while up to twice the spin budget, one call in 64; or a real sleep. */
static unsigned sleepy_pause(uint32_t *s)
{
	uint32_t x = rnd(s);
	struct timespec t0, t;

	if (x % 64 != 0)
		return 0;
	if (x % 1024 == 0) {
		nanosleep(&(struct timespec){ .tv_nsec = 200000 }, NULL);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t.tv_nsec -
	       (uint64_t)t0.tv_nsec < (x >> 8) % (2 * RING_SPIN_MAX_NS));
	return 0;
}

/* Voluntary context switches of this process so far. */
static long sleepy_switches(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_nvcsw;
}

static void sleepy_writer(void)
{
	struct mmapd_client *c;
	struct mmapd_ring *ring = child_ring("sleepy", &c);
	long switches = sleepy_switches(), naps = 0;
	uint8_t buf[64];
	uint32_t s = 4242;
	uint64_t pos = 0;

	for (unsigned m = 0; m < SLEEPY_MSGS; m++) {
		size_t len = 1 + rnd(&s) % 64, done = 0;
		ptrdiff_t n;

		seq_fill(buf, pos, len);
		while (done < len) {
			n = mmapd_ring_write(ring, buf + done, len - done);
			CHILD_CHECK(n >= 0, "write");
			done += (size_t)n;
			if (done < len)
				CHILD_CHECK(mmapd_ring_wait_writable(ring, len - done,
				                                     SLEEPY_WAIT_MS) == 0,
				            "wait_writable at byte %llu: a lost wake-up?",
				            (unsigned long long)(pos + done));
		}
		pos += len;
		naps += sleepy_pause(&s);
		if (rnd(&s) % 4 == 0)
			CHILD_CHECK(mmapd_ring_wait_writable(ring, page, SLEEPY_WAIT_MS) == 0,
			            "waiting for the reader to drain at byte %llu: a lost wake-up?",
			            (unsigned long long)pos);
	}
	switches = sleepy_switches() - switches - naps;
	CHILD_CHECK(switches >= SLEEPY_SLEEPS, "the writer slept only %ld times", switches);
	child_done(c, ring);
}

static void sleepy_reader(uint64_t total)
{
	struct mmapd_client *c;
	struct mmapd_ring *ring = child_ring("sleepy", &c);
	long switches = sleepy_switches(), naps = 0;
	uint8_t buf[256];
	uint32_t s = 99;
	uint64_t pos = 0;

	while (pos < total) {
		ptrdiff_t n;

		if (rnd(&s) % 2) {
			n = mmapd_ring_read_some(ring, buf, sizeof(buf), 1, SLEEPY_WAIT_MS);
		} else {
			n = mmapd_ring_read(ring, buf, 1 + rnd(&s) % sizeof(buf));
			if (n == 0)
				n = mmapd_ring_wait_readable(ring, 1, SLEEPY_WAIT_MS);
		}
		CHILD_CHECK(n >= 0, "read at byte %llu: a lost wake-up?", (unsigned long long)pos);
		CHILD_CHECK(seq_check(buf, pos, (size_t)n) == (size_t)n, "byte %llu is wrong",
		            (unsigned long long)(pos + seq_check(buf, pos, (size_t)n)));
		pos += (uint64_t)n;
		naps += sleepy_pause(&s);
	}
	CHILD_CHECK(mmapd_ring_readable(ring) == 0, "bytes beyond the stream");
	switches = sleepy_switches() - switches - naps;
	CHILD_CHECK(switches >= SLEEPY_SLEEPS, "the reader slept only %ld times", switches);
	child_done(c, ring);
}

START_TEST(test_ring_millions_of_messages_between_sleepy_processes_lose_no_wake_up)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_ring *ring = ring_new(c, "sleepy", page, MMAPD_RING_ANONYMOUS);
	struct ring_header *hdr = mmapd_region_data(mmapd_ring_region(ring));
	uint32_t s = 4242;
	uint64_t total = 0;
	pid_t reader, writer;

	/* The writer's message sizes, drawn the same way, make the stream's length. */
	for (unsigned m = 0; m < SLEEPY_MSGS; m++) {
		total += 1 + rnd(&s) % 64;
		(void)rnd(&s);  /* sleepy_pause()'s draw */
		(void)rnd(&s);  /* the drain's */
	}
	reader = fork();
	ck_assert_int_ge(reader, 0);
	if (reader == 0)
		sleepy_reader(total);
	writer = fork();
	ck_assert_int_ge(writer, 0);
	if (writer == 0)
		sleepy_writer();
	test_child_wait(writer, CHILD_WAIT_MS);
	test_child_wait(reader, CHILD_WAIT_MS);
	ck_assert_uint_eq(atomic_load(&hdr->write_pos), total);
	ck_assert_uint_eq(atomic_load(&hdr->read_waiters), 0);
	ck_assert_uint_eq(atomic_load(&hdr->write_waiters), 0);
	mmapd_ring_close(ring);
	ck_assert_int_eq(mmapd_delete(c, "sleepy"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* Writes total bytes of the sequence into ring name in chunks of chunk bytes. */
static void overwrite_writer(const char *name, uint64_t total, size_t chunk)
{
	struct mmapd_client *c;
	struct mmapd_ring *ring = child_ring(name, &c);
	uint8_t *buf = malloc(chunk);

	for (uint64_t pos = 0; pos < total; pos += chunk) {
		seq_fill(buf, pos, chunk);
		CHILD_CHECK(mmapd_ring_write(ring, buf, chunk) == (ptrdiff_t)chunk, "write");
	}
	free(buf);
	child_done(c, ring);
}

START_TEST(test_ring_overwrite_slow_reader_gets_eoverflow_once_then_the_newest_bytes)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	size_t cap = 2 * page;
	struct mmapd_ring *ring = ring_new(c, "infinite", cap, MMAPD_RING_OVERWRITE);
	uint8_t *out = malloc(cap);
	pid_t pid;

	ck_assert_uint_eq(mmapd_ring_flags(ring), MMAPD_RING_OVERWRITE);
	ck_assert_uint_eq(mmapd_ring_writable(ring), cap);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		overwrite_writer("infinite", 10 * cap + 100, 10 * cap + 100);
	test_child_wait(pid, CHILD_WAIT_MS);

	ck_assert_int_eq(mmapd_ring_read(ring, out, cap), -EOVERFLOW);
	ck_assert_uint_eq(mmapd_ring_lost(ring), 9 * cap + 100);
	ck_assert_int_eq(mmapd_ring_read(ring, out, cap), (ptrdiff_t)cap);
	ck_assert_uint_eq(seq_check(out, 9 * cap + 100, cap), cap);
	ck_assert_int_eq(mmapd_ring_read(ring, out, cap), 0);
	ck_assert_uint_eq(mmapd_ring_lost(ring), 9 * cap + 100);

	/* The zero-copy side: a peek the writer overwrites is refused at consume. */
	seq_fill(out, 0, cap);
	ck_assert_int_eq(mmapd_ring_write(ring, out, 100), 100);
	{
		const void *p;
		size_t len;

		ck_assert_int_eq(mmapd_ring_read_peek(ring, &p, &len), 0);
		ck_assert_uint_eq(len, 100);
		ck_assert_int_eq(mmapd_ring_write(ring, out, cap), (ptrdiff_t)cap);
		ck_assert_int_eq(mmapd_ring_read_consume(ring, len), -EOVERFLOW);
		ck_assert_uint_eq(mmapd_ring_lost(ring), 9 * cap + 100 + 100);
		ck_assert_int_eq(mmapd_ring_read_peek(ring, &p, &len), 0);
		ck_assert_uint_eq(len, cap);
		ck_assert_uint_eq(seq_check(p, 0, cap), cap);
		ck_assert_int_eq(mmapd_ring_read_consume(ring, len), 0);
	}
	free(out);
	mmapd_ring_close(ring);
	ck_assert_int_eq(mmapd_delete(c, "infinite"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_ring_overwrite_concurrent_reader_never_gets_a_torn_byte)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	size_t cap = page;
	uint64_t total = 32u << 20, consumed = 0;
	struct mmapd_ring *ring = ring_new(c, "torn", cap, MMAPD_RING_OVERWRITE);
	uint8_t *out = malloc(cap);
	bool writer_done = false;
	uint32_t s = 99;
	int st = 0;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		overwrite_writer("torn", total, 1024);
	/*
	 * Read while the writer laps the ring. The stream position of what a read returns is
	 * what was consumed plus what was skipped: every byte must be the sequence's there.
	 */
	while (!writer_done || mmapd_ring_readable(ring) > 0) {
		ptrdiff_t n = mmapd_ring_read(ring, out, 1 + rnd(&s) % cap);
		uint64_t at = consumed + mmapd_ring_lost(ring);

		if (n == -EOVERFLOW)
			continue;
		ck_assert_int_ge(n, 0);
		if (n == 0) {
			writer_done = waitpid(pid, &st, WNOHANG) == pid;
			continue;
		}
		ck_assert_msg(seq_check(out, at, (size_t)n) == (size_t)n,
		              "torn byte at stream position %llu",
		              (unsigned long long)(at + seq_check(out, at, (size_t)n)));
		consumed += (uint64_t)n;
	}
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer: 0x%x", (unsigned)st);
	/* Everything was either read or skipped, and the last capacity bytes were read. */
	ck_assert_uint_eq(consumed + mmapd_ring_lost(ring), total);
	ck_assert_uint_ge(consumed, cap);
	free(out);
	mmapd_ring_close(ring);
	ck_assert_int_eq(mmapd_delete(c, "torn"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* Writes one word of the header page of ring name through a plain mapping of the region. */
static void header_poke(struct mmapd_client *c, const char *name, size_t off, uint64_t value)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW, .length = page);
	struct mmapd_region *raw = NULL;

	ck_assert_int_eq(mmapd_region_open(c, name, &o, &raw), 0);
	ck_assert_int_eq(mmapd_region_write(raw, off, &value, off == offsetof(struct ring_header,
	                                    version) ? 4 : 8), 0);
	mmapd_region_close(raw);
}

static void ring_open_fails(struct mmapd_client *c, const char *name, int err)
{
	struct mmapd_ring *ring = (struct mmapd_ring *)1;
	int r = mmapd_ring_open(c, name, 0, &ring);

	ck_assert_msg(r == err, "open %s: %d (%s), expected %d", name, r, mmapd_last_message(),
	              err);
	ck_assert_ptr_null(ring);
}

START_TEST(test_ring_corrupt_or_foreign_header_is_refused)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_ring *ring = ring_new(c, "corrupt", 2 * page, 0);
	const struct ring_header *h = mmapd_region_data(mmapd_ring_region(ring));
	uint32_t h_version = h->version;
	uint64_t h_capacity = h->capacity;
	size_t magic = offsetof(struct ring_header, magic);
	size_t version = offsetof(struct ring_header, version);
	size_t capacity = offsetof(struct ring_header, capacity);
	size_t write_pos = offsetof(struct ring_header, write_pos);

	mmapd_ring_close(ring);
	header_poke(c, "corrupt", magic, 0x1234);
	ring_open_fails(c, "corrupt", -EBADMSG);
	header_poke(c, "corrupt", magic, 0);
	ring_open_fails(c, "corrupt", -EAGAIN);
	header_poke(c, "corrupt", magic, RING_MAGIC);
	ck_assert_uint_eq(h_version, RING_VERSION);
	header_poke(c, "corrupt", version, RING_VERSION + 1);
	ring_open_fails(c, "corrupt", -EPROTO);
	header_poke(c, "corrupt", version, 0);
	ring_open_fails(c, "corrupt", -EPROTO);
	/* A version 1 ring (libmmapd before the asymmetric barrier) opens, and fences; a version
	 * 2 ring (before one wake-up per sleep) opens too. */
	header_poke(c, "corrupt", version, 1);
	ring = ring_get(c, "corrupt");
	ck_assert(!ring->fenceless);
	mmapd_ring_close(ring);
	header_poke(c, "corrupt", version, 2);
	ring = ring_get(c, "corrupt");
	ck_assert_uint_eq(ring->version, 2);
	mmapd_ring_close(ring);
	header_poke(c, "corrupt", version, h_version);
	header_poke(c, "corrupt", capacity, 4 * page);
	ring_open_fails(c, "corrupt", -EBADMSG);
	header_poke(c, "corrupt", capacity, page + 1);
	ring_open_fails(c, "corrupt", -EBADMSG);
	header_poke(c, "corrupt", capacity, h_capacity);
	header_poke(c, "corrupt", write_pos, 2 * page + 1);
	ring_open_fails(c, "corrupt", -EBADMSG);
	header_poke(c, "corrupt", write_pos, 2 * page);
	ring = ring_get(c, "corrupt");
	ck_assert_uint_eq(mmapd_ring_readable(ring), 2 * page);
	mmapd_ring_close(ring);
	ck_assert_int_eq(mmapd_delete(c, "corrupt"), 0);

	/* Regions that never were rings: too small, and all zeros. */
	test_daemon_create(&dmn, "tiny", 100, false);
	ring_open_fails(c, "tiny", -EBADMSG);
	test_daemon_create(&dmn, "zeros", 3 * page, true);
	ring_open_fails(c, "zeros", -EAGAIN);
	ring_open_fails(c, "absent", -ENOENT);
	ck_assert_int_eq(mmapd_delete(c, "tiny"), 0);
	ck_assert_int_eq(mmapd_delete(c, "zeros"), 0);
	mmapd_disconnect(c);
}
END_TEST

/*
 * Another process rewriting the capacity of a ring's header while it is opened (flipped
 * between the right value and one that does not fit the region) gets the opens refused as
 * corrupt, never a ring of the capacity it was not checked with.
 */
START_TEST(test_ring_capacity_rewritten_during_open_is_checked_as_used)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_ring *ring = ring_new(c, "flip", 2 * page, 0), *other;
	struct ring_header *h = mmapd_region_data(mmapd_ring_region(ring));
	_Atomic uint64_t *capacity = (_Atomic uint64_t *)(void *)&h->capacity;
	pid_t pid;
	int r, status;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (;;) {
			atomic_store_explicit(capacity, 64 * (uint64_t)page, memory_order_relaxed);
			atomic_store_explicit(capacity, 2 * (uint64_t)page, memory_order_relaxed);
		}
	}
	for (int i = 0; i < 5000; i++) {
		other = NULL;
		r = mmapd_ring_open(c, "flip", 0, &other);
		ck_assert_msg(r == 0 || r == -EBADMSG, "open %d: %d %s", i, r, mmapd_last_message());
		if (r < 0)
			continue;
		ck_assert_uint_eq(mmapd_ring_capacity(other), 2 * page);
		mmapd_ring_close(other);
	}
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	atomic_store(capacity, 2 * (uint64_t)page);
	mmapd_ring_close(ring);
	ck_assert_int_eq(mmapd_delete(c, "flip"), 0);
	mmapd_disconnect(c);
}
END_TEST

static void ring_create_fails(struct mmapd_client *c, const char *name, size_t cap,
                              unsigned flags, int err)
{
	struct mmapd_ring *ring = (struct mmapd_ring *)1;
	int r = mmapd_ring_create(c, name, cap, flags, &ring);

	ck_assert_msg(r == err, "create %s (%zu, 0x%x): %d (%s), expected %d", name, cap, flags,
	              r, mmapd_last_message(), err);
	ck_assert_ptr_null(ring);
}

START_TEST(test_ring_invalid_arguments_are_refused_and_create_nothing)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_region_info *info = NULL;
	struct mmapd_ring *ring;
	uint8_t buf[16] = { 0 };
	const void *cp;
	size_t len;
	void *p;

	ring_create_fails(c, "bad", 0, 0, -EINVAL);
	ring_create_fails(c, "bad", (size_t)MMAPD_RING_CAPACITY_MAX + 1, 0, -EINVAL);
	ring_create_fails(c, "bad", page, 0x100, -EINVAL);
	ring_create_fails(c, "../bad", page, 0, -EINVAL);
	ck_assert_int_eq(mmapd_stat(c, "bad", &info), -ENOENT);
	ck_assert_int_eq(mmapd_ring_create(NULL, "bad", page, 0, &ring), -EINVAL);
	ck_assert_int_eq(mmapd_ring_open(c, "bad", 1, &ring), -EINVAL);

	ring = ring_new(c, "args", page, 0);
	ring_create_fails(c, "args", page, 0, -EEXIST);
	ck_assert_int_eq(mmapd_ring_write_reserve(ring, 0, &p), -EINVAL);
	ck_assert_int_eq(mmapd_ring_write_reserve(ring, page + 1, &p), -EINVAL);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(mmapd_ring_write_commit(ring, 1), -EINVAL);
	ck_assert_int_eq(mmapd_ring_read_consume(ring, 1), -EINVAL);
	ck_assert_int_eq(mmapd_ring_wait_readable(ring, page + 1, 0), -EINVAL);
	ck_assert_int_eq(mmapd_ring_wait_writable(ring, page + 1, 0), -EINVAL);
	ck_assert_int_eq(mmapd_ring_read_exact(ring, buf, page + 1, 0), -EINVAL);
	ck_assert_int_eq(mmapd_ring_read_until(ring, '\n', buf, 0, 0), -EINVAL);
	ck_assert_int_eq(mmapd_ring_put(ring, buf, page + 1, 0), -EINVAL);
	ck_assert_int_eq(mmapd_ring_read(NULL, buf, 1), -EINVAL);
	ck_assert_int_eq(mmapd_ring_write(ring, NULL, 1), -EINVAL);

	/* Empty: reads give 0 and waits time out; full: writes give 0, reserve -EAGAIN. */
	ck_assert_int_eq(mmapd_ring_read(ring, buf, sizeof(buf)), 0);
	ck_assert_int_eq(mmapd_ring_read_peek(ring, &cp, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(mmapd_ring_wait_readable(ring, 1, 0), -ETIMEDOUT);
	ck_assert_int_eq(mmapd_ring_wait_readable(ring, 1, 20), -ETIMEDOUT);
	ck_assert_int_eq(mmapd_ring_read_exact(ring, buf, 1, 0), -ETIMEDOUT);
	ck_assert_int_eq(mmapd_ring_write_reserve(ring, page, &p), 0);
	ck_assert_int_eq(mmapd_ring_write_commit(ring, page - 1), 0);
	ck_assert_int_eq(mmapd_ring_write(ring, buf, sizeof(buf)), 1);
	ck_assert_int_eq(mmapd_ring_write(ring, buf, sizeof(buf)), 0);
	ck_assert_int_eq(mmapd_ring_write_reserve(ring, 1, &p), -EAGAIN);
	ck_assert_int_eq(mmapd_ring_wait_writable(ring, 1, 0), -ETIMEDOUT);
	ck_assert_int_eq(mmapd_ring_put(ring, buf, 1, 0), -ETIMEDOUT);
	ck_assert_int_eq(mmapd_ring_wait_readable(ring, page, 0), 0);
	mmapd_ring_close(ring);
	ck_assert_int_eq(mmapd_delete(c, "args"), 0);
	mmapd_disconnect(c);
	mmapd_region_info_free(info);
}
END_TEST

/* A capacity that is not a multiple of the page size is rounded up to one, and works. */
START_TEST(test_ring_capacity_rounds_up_to_whole_pages)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	const size_t asked[] = { 1, page / 2, 4000, page + 1, 3 * page - 1 };
	const size_t got[] = { page, page, page, 2 * page, 3 * page };
	struct mmapd_region_info *info = NULL;
	uint8_t *fill = malloc(3 * page), *out = malloc(3 * page);

	for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++) {
		struct mmapd_ring *ring = ring_new(c, "round", asked[i], 0);

		ck_assert_uint_eq(mmapd_ring_capacity(ring), got[i]);
		ck_assert_int_eq(mmapd_stat(c, "round", &info), 0);
		ck_assert_uint_eq(info->size, page + got[i]);
		mmapd_region_info_free(info);
		/* The whole rounded capacity holds bytes, across the wrap point too. */
		seq_fill(fill, 0, got[i]);
		ck_assert_int_eq(mmapd_ring_write(ring, fill, got[i] / 2), (ptrdiff_t)(got[i] / 2));
		ck_assert_int_eq(mmapd_ring_read(ring, out, got[i]), (ptrdiff_t)(got[i] / 2));
		ck_assert_int_eq(mmapd_ring_write(ring, fill, 3 * page), (ptrdiff_t)got[i]);
		ck_assert_int_eq(mmapd_ring_read(ring, out, 3 * page), (ptrdiff_t)got[i]);
		ck_assert_uint_eq(seq_check(out, 0, got[i]), got[i]);
		mmapd_ring_close(ring);
		ck_assert_int_eq(mmapd_delete(c, "round"), 0);
	}
	free(fill);
	free(out);
	mmapd_disconnect(c);
}
END_TEST

#define LINES 2000

/* Line i of the read_until test: "<i> " then i % 97 letters, then a newline. */
static size_t line_make(char *buf, unsigned i)
{
	size_t n = (size_t)sprintf(buf, "%u ", i);

	for (unsigned k = 0; k < i % 97; k++)
		buf[n++] = (char)('a' + (i + k) % 26);
	buf[n++] = '\n';
	return n;
}

static void lines_writer(void)
{
	struct mmapd_client *c;
	struct mmapd_ring *ring = child_ring("lines", &c);
	char line[128];

	for (unsigned i = 0; i < LINES; i++) {
		CHILD_CHECK(mmapd_ring_put(ring, line, line_make(line, i), WAIT_MS) == 0, "put");
		if (i % 7 == 0)
			CHILD_CHECK(mmapd_ring_flush(ring) == 0, "flush");
	}
	child_done(c, ring);
}

START_TEST(test_ring_read_until_returns_whole_lines_across_the_wrap_point)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_ring *ring = ring_new(c, "lines", page, 0);
	char want[128], got[128];
	ptrdiff_t n;
	size_t len;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		lines_writer();
	/* Some lines straddle the end of the data: 2000 lines of ~50 bytes lap a page often. */
	for (unsigned i = 0; i < LINES; i++) {
		len = line_make(want, i);
		n = mmapd_ring_read_until(ring, '\n', got, sizeof(got), WAIT_MS);
		ck_assert_msg(n == (ptrdiff_t)len && memcmp(got, want, len) == 0,
		              "line %u: %zd bytes (%s)", i, n, n < 0 ? mmapd_last_message() : "");
	}
	test_child_wait(pid, CHILD_WAIT_MS);

	/* A line longer than buf comes in pieces, like fgets(). */
	ck_assert_int_eq(mmapd_ring_write(ring, "abcdef\nxy", 9), 9);
	ck_assert_int_eq(mmapd_ring_read_until(ring, '\n', got, 4, 0), 4);
	ck_assert_int_eq(memcmp(got, "abcd", 4), 0);
	ck_assert_int_eq(mmapd_ring_read_until(ring, '\n', got, 4, 0), 3);
	ck_assert_int_eq(memcmp(got, "ef\n", 3), 0);
	/* No delimiter yet: nothing is consumed when the wait times out. */
	ck_assert_int_eq(mmapd_ring_read_until(ring, '\n', got, sizeof(got), 0), -ETIMEDOUT);
	ck_assert_uint_eq(mmapd_ring_readable(ring), 2);
	ck_assert_int_eq(mmapd_ring_read(ring, got, sizeof(got)), 2);
	mmapd_ring_close(ring);
	ck_assert_int_eq(mmapd_delete(c, "lines"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_ring_put_batch_is_invisible_until_flushed_or_closed)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_ring *w = ring_new(c, "batch", page, 0);
	struct mmapd_ring *rd = ring_get(c, "batch");
	char got[16];

	ck_assert_int_eq(mmapd_ring_put(w, "hello ", 6, 0), 0);
	ck_assert_int_eq(mmapd_ring_put(w, "world", 5, 0), 0);
	ck_assert_uint_eq(mmapd_ring_readable(rd), 0);
	ck_assert_int_eq(mmapd_ring_flush(w), 0);
	ck_assert_uint_eq(mmapd_ring_readable(rd), 11);
	ck_assert_int_eq(mmapd_ring_read_exact(rd, got, 11, 0), 0);
	ck_assert_int_eq(memcmp(got, "hello world", 11), 0);
	/* A write publishes the batch before its own bytes. */
	ck_assert_int_eq(mmapd_ring_put(w, "ab", 2, 0), 0);
	ck_assert_int_eq(mmapd_ring_write(w, "cd", 2), 2);
	ck_assert_int_eq(mmapd_ring_read_exact(rd, got, 4, 0), 0);
	ck_assert_int_eq(memcmp(got, "abcd", 4), 0);
	/* Closing publishes what is pending. */
	ck_assert_int_eq(mmapd_ring_put(w, "end", 3, 0), 0);
	mmapd_ring_close(w);
	ck_assert_int_eq(mmapd_ring_read_exact(rd, got, 3, 0), 0);
	ck_assert_int_eq(memcmp(got, "end", 3), 0);
	mmapd_ring_close(rd);
	ck_assert_int_eq(mmapd_delete(c, "batch"), 0);
	mmapd_disconnect(c);
}
END_TEST

/*
 * Batches of 512 bytes or more make put() stream (non-temporal stores on x86-64 with more than
 * one CPU online, ring_io.c): puts of every size from 1 to 1023 bytes, at every alignment,
 * across the wrap point, must arrive exact, also after a batch too small to stream and in a
 * batch the ring's end splits.
 */
START_TEST(test_ring_streamed_puts_of_every_size_and_alignment_arrive_exact)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_ring *w = ring_new(c, "streamed", page, 0);
	struct mmapd_ring *rd = ring_get(c, "streamed");
	uint8_t *buf = malloc(page);
	uint64_t put = 0, got = 0;
	size_t batch = 0;

	ck_assert_ptr_nonnull(buf);
	for (unsigned i = 0; got < 8 * 1024 * 1024; i++) {
		size_t len = 1 + (i * 37u) % 1023u;

		seq_fill(buf, put, len);
		ck_assert_int_eq(mmapd_ring_put(w, buf, len, 0), 0);
		put += len;
		batch += len;
		/* Every 50th batch stays under 512 bytes: the next one does not stream. */
		if (batch < (i % 50 == 0 ? 1 : 1500))
			continue;
		ck_assert_int_eq(mmapd_ring_flush(w), 0);
		batch = 0;
		for (ptrdiff_t n; got < put; got += (uint64_t)n) {
			n = mmapd_ring_read(rd, buf, page);
			ck_assert_int_gt(n, 0);
			ck_assert_uint_eq(seq_check(buf, got, (size_t)n), (size_t)n);
		}
	}
	free(buf);
	mmapd_ring_close(rd);
	mmapd_ring_close(w);
	ck_assert_int_eq(mmapd_delete(c, "streamed"), 0);
	mmapd_disconnect(c);
}
END_TEST

/*
 * One wake-up per sleep: while a reader sleeps, stopped so that it cannot take its count back
 * once woken, 100 publishes bump the futex word once on a version 3 ring; on a version 2 ring
 * (whose sleepers may be an older libmmapd's, which do not bump it) every publish wakes.
 */
START_TEST(test_ring_a_sleeping_reader_is_woken_once_not_at_every_publish)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");

	for (uint32_t version = 2; version <= RING_VERSION; version++) {
		struct mmapd_ring *w = ring_new(c, "wakes", page, 0);
		const struct ring_header *h;
		uint32_t before, bumps;
		int status, spins = 0;
		pid_t pid;

		mmapd_ring_close(w);
		header_poke(c, "wakes", offsetof(struct ring_header, version), version);
		w = ring_get(c, "wakes");
		h = mmapd_region_data(mmapd_ring_region(w));
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct mmapd_client *cc;
			struct mmapd_ring *rd = child_ring("wakes", &cc);

			CHILD_CHECK(mmapd_ring_wait_readable(rd, 1, WAIT_MS) == 0, "wait_readable");
			child_done(cc, rd);
		}
		while (atomic_load(&h->read_waiters) == 0 && spins++ < WAIT_MS)
			usleep(1000);
		ck_assert_int_eq(kill(pid, SIGSTOP), 0);
		ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
		ck_assert(WIFSTOPPED(status));
		before = atomic_load(&h->data_seq);
		for (int i = 0; i < 100; i++)
			ck_assert_int_eq(mmapd_ring_write(w, "x", 1), 1);
		bumps = atomic_load(&h->data_seq) - before;
		ck_assert_int_eq(kill(pid, SIGCONT), 0);
		test_child_wait(pid, CHILD_WAIT_MS);
		ck_assert_uint_eq(bumps, version >= 3 ? 1 : 100);
		mmapd_ring_close(w);
		ck_assert_int_eq(mmapd_delete(c, "wakes"), 0);
	}
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_ring_reader_drains_a_closed_writer_then_gets_epipe_and_one_writer_at_a_time)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_ring *w = ring_new(c, "eos", page, MMAPD_RING_WRITER);
	struct mmapd_ring *rd = ring_get(c, "eos"), *w2 = NULL;
	char got[16];

	/* One writer at a time, even on one connection. */
	ck_assert_int_eq(mmapd_ring_open(c, "eos", MMAPD_RING_WRITER, &w2), -EBUSY);
	ck_assert_ptr_null(w2);
	ck_assert_int_eq(mmapd_ring_write(w, "last words", 10), 10);
	mmapd_ring_close(w);
	/* The bytes written before the close still come, then the end of the stream. */
	ck_assert_int_eq(mmapd_ring_read_exact(rd, got, 10, -1), 0);
	ck_assert_int_eq(memcmp(got, "last words", 10), 0);
	ck_assert_int_eq(mmapd_ring_wait_readable(rd, 1, -1), -EPIPE);
	ck_assert_msg(strstr(mmapd_last_message(), "closed"), "%s", mmapd_last_message());
	ck_assert_int_eq(mmapd_ring_read_exact(rd, got, 1, -1), -EPIPE);
	/* A new writer reopens the stream. */
	ck_assert_int_eq(mmapd_ring_open(c, "eos", MMAPD_RING_WRITER, &w2), 0);
	ck_assert_int_eq(mmapd_ring_write(w2, "more", 4), 4);
	ck_assert_int_eq(mmapd_ring_read_exact(rd, got, 4, -1), 0);
	mmapd_ring_close(w2);
	mmapd_ring_close(rd);
	ck_assert_int_eq(mmapd_delete(c, "eos"), 0);
	mmapd_disconnect(c);
}
END_TEST

/*
 * A process that opens ring name as side (MMAPD_RING_WRITER: and writes 100 bytes of the
 * sequence), says so on fd and waits to be killed.
 */
static void doomed_side(const char *name, unsigned side, int fd)
{
	struct mmapd_client *c = NULL;
	struct mmapd_ring *ring = NULL;
	uint8_t buf[100];

	seq_fill(buf, 0, sizeof(buf));
	CHILD_CHECK(mmapd_connect(dmn.sock, "doomed-side", &c) == 0, "connect");
	CHILD_CHECK(mmapd_ring_open(c, name, side, &ring) == 0, "open");
	if (side == MMAPD_RING_WRITER)
		CHILD_CHECK(mmapd_ring_write(ring, buf, sizeof(buf)) == sizeof(buf), "write");
	CHILD_CHECK(write(fd, "x", 1) == 1, "say");
	for (;;)
		pause();
}

/*
 * Starts doomed_side(name, side) and, once it is ready, a process that SIGKILLs it a moment
 * later (most likely while the test waits on it; either order must work). Returns the
 * doomed pid; *ret_killer is the killer's.
 */
static pid_t doomed_start(const char *name, unsigned side, pid_t *ret_killer)
{
	struct timespec moment = { .tv_nsec = 100000000 };
	int fds[2];
	pid_t pid;
	char byte;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		doomed_side(name, side, fds[1]);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &byte, 1), 1);
	close(fds[0]);
	*ret_killer = fork();
	ck_assert_int_ge(*ret_killer, 0);
	if (*ret_killer == 0) {
		nanosleep(&moment, NULL);
		_exit(kill(pid, SIGKILL) == 0 ? 0 : 1);
	}
	return pid;
}

static void doomed_reap(pid_t pid, pid_t killer)
{
	int status;

	test_child_wait(killer, CHILD_WAIT_MS);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
}

START_TEST(test_ring_reader_blocked_on_a_killed_writer_gets_the_rest_then_epipe)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_ring *rd = ring_new(c, "dead-writer", page, MMAPD_RING_READER);
	uint8_t got[100];
	pid_t writer, killer;

	writer = doomed_start("dead-writer", MMAPD_RING_WRITER, &killer);
	/* 101 bytes never come: the wait ends (no timeout) when the writer is found dead. */
	ck_assert_int_eq(mmapd_ring_wait_readable(rd, 101, -1), -EPIPE);
	ck_assert_msg(strstr(mmapd_last_message(), "writer died"), "%s", mmapd_last_message());
	ck_assert_int_eq(mmapd_ring_read_exact(rd, got, sizeof(got), -1), 0);
	ck_assert_uint_eq(seq_check(got, 0, sizeof(got)), sizeof(got));
	ck_assert_int_eq(mmapd_ring_wait_readable(rd, 1, -1), -EPIPE);
	doomed_reap(writer, killer);
	mmapd_ring_close(rd);
	ck_assert_int_eq(mmapd_delete(c, "dead-writer"), 0);
	mmapd_disconnect(c);
}
END_TEST

START_TEST(test_ring_writer_blocked_on_a_killed_reader_gets_epipe)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_ring");
	struct mmapd_ring *w = ring_new(c, "dead-reader", page, MMAPD_RING_WRITER);
	struct mmapd_ring *rd2, *rd3 = NULL;
	uint8_t *buf = calloc(1, page);
	pid_t reader, killer;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(mmapd_ring_write(w, buf, page), (ptrdiff_t)page);
	reader = doomed_start("dead-reader", MMAPD_RING_READER, &killer);
	/* The ring stays full: the wait ends (no timeout) when the reader is found dead. */
	ck_assert_int_eq(mmapd_ring_wait_writable(w, 1, -1), -EPIPE);
	ck_assert_msg(strstr(mmapd_last_message(), "reader died"), "%s", mmapd_last_message());
	ck_assert_int_eq(mmapd_ring_put(w, buf, 1, -1), -EPIPE);
	doomed_reap(reader, killer);
	/* A new reader takes over, once at a time. */
	rd2 = ring_get_as(c, "dead-reader", MMAPD_RING_READER);
	ck_assert_int_eq(mmapd_ring_open(c, "dead-reader", MMAPD_RING_READER, &rd3), -EBUSY);
	ck_assert_ptr_null(rd3);
	ck_assert_int_eq(mmapd_ring_read(rd2, buf, page), (ptrdiff_t)page);
	ck_assert_int_eq(mmapd_ring_wait_writable(w, 1, -1), 0);
	free(buf);
	mmapd_ring_close(rd2);
	mmapd_ring_close(w);
	ck_assert_int_eq(mmapd_delete(c, "dead-reader"), 0);
	mmapd_disconnect(c);
}
END_TEST

/*
 * The writer of restart_test(), in its own process: writes bytes 0..99 of the sequence, says
 * so on out, waits for a byte on in (the daemon restarted meanwhile), writes bytes 100..199
 * and closes.
 */
static int restart_writer(const char *sock, int in, int out)
{
	struct mmapd_client *c = NULL;
	struct mmapd_ring *w = NULL;
	uint8_t buf[200];
	char byte;

	seq_fill(buf, 0, sizeof(buf));
	if (mmapd_connect(sock, "restart-writer", &c) < 0 ||
	    mmapd_ring_open(c, "restart", MMAPD_RING_WRITER, &w) < 0 ||
	    mmapd_ring_write(w, buf, 100) != 100 || write(out, "x", 1) != 1 ||
	    read(in, &byte, 1) != 1 || mmapd_ring_write(w, buf + 100, 100) != 100)
		return 1;
	mmapd_ring_close(w);
	mmapd_disconnect(c);
	return 0;
}

/* The reader of restart_test(), in its own process: reads all 200 bytes (0: they came). */
static int restart_reader(const char *sock, int out)
{
	struct mmapd_client *c = NULL;
	struct mmapd_ring *rd = NULL;
	uint8_t got[200];
	int r;

	if (mmapd_connect(sock, "restart-reader", &c) < 0 ||
	    mmapd_ring_open(c, "restart", MMAPD_RING_READER, &rd) < 0 || write(out, "x", 1) != 1)
		return 1;
	r = mmapd_ring_read_exact(rd, got, sizeof(got), WAIT_MS);
	if (r < 0) {
		fprintf(stderr, "restart reader: %s\n", mmapd_last_message());
		return 2;
	}
	return seq_check(got, 0, sizeof(got)) == sizeof(got) ? 0 : 3;
}

/*
 * A daemon killed and started again drops every lock, the sides' too, while both processes
 * live on: a reader blocked across the restart must not take its live writer for dead, nor
 * may a second writer open.
 */
START_TEST(test_ring_reader_blocked_across_a_daemon_restart_gets_the_live_writers_data)
{
	struct timespec settle = { .tv_sec = 1 };
	struct test_daemon d;
	struct mmapd_client *c;
	struct mmapd_ring *w2 = NULL;
	int go[2], ready[2];
	pid_t writer, reader;
	char byte;

	test_daemon_start(&d, NULL);
	c = test_client_connect(&d, "check_ring");
	mmapd_ring_close(ring_new(c, "restart", page, 0));
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(ready), 0);
	reader = fork();
	ck_assert_int_ge(reader, 0);
	if (reader == 0)
		_exit(restart_reader(d.sock, ready[1]));
	ck_assert_int_eq(read(ready[0], &byte, 1), 1);
	writer = fork();
	ck_assert_int_ge(writer, 0);
	if (writer == 0)
		_exit(restart_writer(d.sock, go[0], ready[1]));
	close(go[0]);
	close(ready[1]);
	ck_assert_int_eq(read(ready[0], &byte, 1), 1);
	close(ready[0]);
	/* The reader has 100 of its 200 bytes and waits. */
	test_daemon_kill(&d);
	test_daemon_restart(&d);
	/* The writer's lock is gone, but it lives: still the one writer. */
	ck_assert_int_eq(mmapd_ring_open(c, "restart", MMAPD_RING_WRITER, &w2), -EBUSY);
	ck_assert_msg(strstr(mmapd_last_message(), "process"), "%s", mmapd_last_message());
	ck_assert_ptr_null(w2);
	/* Leave the reader several side checks (every RING_SIDE_CHECK_MS) before more comes. */
	nanosleep(&settle, NULL);
	ck_assert_int_eq(write(go[1], "x", 1), 1);
	close(go[1]);
	test_child_wait(writer, CHILD_WAIT_MS);
	test_child_wait(reader, CHILD_WAIT_MS);
	ck_assert_int_eq(mmapd_delete(c, "restart"), 0);
	mmapd_disconnect(c);
	test_daemon_stop(&d);
}
END_TEST

static Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("ring");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_ring_wrapping_span_is_contiguous_and_lands_at_both_ends_of_the_data);
	tcase_add_test(tc, test_ring_64_mib_stream_from_producer_to_consumer_process_arrives_exact);
	tcase_add_test(tc, test_ring_millions_of_messages_between_sleepy_processes_lose_no_wake_up);
	tcase_add_test(tc, test_ring_overwrite_slow_reader_gets_eoverflow_once_then_the_newest_bytes);
	tcase_add_test(tc, test_ring_overwrite_concurrent_reader_never_gets_a_torn_byte);
	tcase_add_test(tc, test_ring_corrupt_or_foreign_header_is_refused);
	tcase_add_test(tc, test_ring_capacity_rewritten_during_open_is_checked_as_used);
	tcase_add_test(tc, test_ring_invalid_arguments_are_refused_and_create_nothing);
	tcase_add_test(tc, test_ring_capacity_rounds_up_to_whole_pages);
	tcase_add_test(tc, test_ring_read_until_returns_whole_lines_across_the_wrap_point);
	tcase_add_test(tc, test_ring_put_batch_is_invisible_until_flushed_or_closed);
	tcase_add_test(tc, test_ring_streamed_puts_of_every_size_and_alignment_arrive_exact);
	tcase_add_test(tc, test_ring_a_sleeping_reader_is_woken_once_not_at_every_publish);
	tcase_add_test(tc, test_ring_reader_drains_a_closed_writer_then_gets_epipe_and_one_writer_at_a_time);
	tcase_add_test(tc, test_ring_reader_blocked_on_a_killed_writer_gets_the_rest_then_epipe);
	tcase_add_test(tc, test_ring_writer_blocked_on_a_killed_reader_gets_epipe);
	tcase_add_test(tc, test_ring_reader_blocked_across_a_daemon_restart_gets_the_live_writers_data);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(ring_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
