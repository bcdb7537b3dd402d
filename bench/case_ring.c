/* SPDX-License-Identifier: MIT */
/*
 * Case (r): messages through a ring (client/toolbox/ring/) from the benchmark to a reader
 * process, against the kernel's byte streams and against memcpy. Each side of a round sends
 * RING_MSGS messages of one size to a peer process (on the peers' CPU) that reads them, checks
 * each one's sequence number and answers with one byte on its socketpair after the last:
 *   ring      mmapd_ring_write() of each 64-byte message; the reader mmapd_ring_read()s
 *             64 bytes at a time and waits with mmapd_ring_wait_readable() when it is empty;
 *   batched   mmapd_ring_put() of each message and mmapd_ring_flush() every RING_BATCH; the
 *             reader takes every whole message readable with mmapd_ring_read_some();
 *   pipe      write() and read() of each 64-byte message on a pipe;
 *   socketpair  the same on a socketpair(AF_UNIX, SOCK_STREAM);
 *   ring4k    as ring, with 4 KiB messages;
 *   memcpy    the benchmark alone copying the same 4 KiB messages into a 256 KiB buffer
 *             (in its L2: the fastest copy; one copy, where the ring does two, one on each
 *             CPU);
 *   bare shm  the physical limit of the ring's design: a bare single-producer ring of the
 *             same size in shared memory, the positions in two cache lines, both sides
 *             spinning (the reader starts spinning when the round starts, at a byte on its
 *             socketpair, so it burns no CPU between its rounds), and nothing else: no
 *             library call, no argument check, no wake-up bookkeeping. 64-byte and 4 KiB
 *             messages. Its 64-byte line is the ceiling of the plain ring line, and its 4 KiB
 *             line, the rate at which this machine moves bytes from one CPU's cache to the
 *             other's, the ceiling of the 4 KiB line and (divided by 64) of the batched one:
 *             the memcpy line is the goal's baseline, not something two CPUs can reach.
 * The ring is a memfd region of RING_CAP bytes, opened by the reader process on its own
 * connection. A round is timed from the first write to the reader's answer; the lines give
 * messages (or bytes) per second of the median round.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "mmapd-ring.h"
#include "peer.h"

#define RING_NAME  "bench-ring"
/*
 * Larger than a CPU's L2 (1 MiB on the machine measured): the writer then reuses lines that
 * have left the reader's L2 for the shared L3, instead of taking each back from the reader's
 * L2. 256 KiB rings measured 5x pipe plain, 12x batched and 0.03x memcpy in a run back to
 * back with 4 MiB rings at 15x, 40x and 0.48x (docs/client-api.md, "Choosing a capacity").
 * The batched side's puts have streamed since (non-temporal stores, which read no line), so it
 * depends on the capacity far less.
 */
#define RING_CAP   (4u << 20)
/* The memcpy side's destination: in the L2, the fastest a CPU copies here. */
#define MEMCPY_BUF (256u << 10)
#define RING_MSGS  (1u << 18)   /* messages per round of the 64-byte sides */
#define RING_BIG   4096u
#define RING_BYTES (64u << 20)  /* bytes per round of the 4 KiB sides */
#define RING_BATCH 64u          /* messages per flush of the batched writer */
#define READ_BATCH (64u << 10)  /* the batched reader's buffer: at most this much a call */
#define RING_WAIT_MS 20000      /* a reader or writer stuck this long fails the case */

enum way {
	WAY_RING, WAY_BATCHED, WAY_PIPE, WAY_SOCKET, WAY_SHM, WAY_RING4K, WAY_MEMCPY, WAY_SHM4K,
	WAY_COUNT,
};

/* The bare ring of the shm sides, in a shared anonymous mapping made before the fork. */
struct shm_ring {
	alignas(64) _Atomic uint64_t wpos;
	alignas(64) _Atomic uint64_t rpos;
	alignas(64) uint8_t data[RING_CAP];
};

struct ring_ctx {
	enum way way;
	const struct bench_opts *o;
	struct peer peer;          /* the reader; its socketpair carries the answers (and data) */
	struct mmapd_client *client;
	struct mmapd_ring *ring;   /* the writer's handle (ring sides) */
	int fd;                    /* where the messages go (pipe, socket sides) */
	int rfd;                   /* the pipe's read end, the reader's */
	size_t msg, count;         /* message size, messages per round */
	uint64_t seq;              /* number of the next message */
	uint8_t *buf;              /* a message, or the memcpy side's destination */
	struct shm_ring *shm;      /* the shm sides' ring */
};

static bool way_is_ring(enum way w)
{
	return w == WAY_RING || w == WAY_BATCHED || w == WAY_RING4K;
}

static bool way_is_shm(enum way w)
{
	return w == WAY_SHM || w == WAY_SHM4K;
}

static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Checks that message m carries number seq. */
static bool msg_ok(const uint8_t *m, uint64_t seq)
{
	uint64_t got;

	memcpy(&got, m, sizeof(got));
	return got == seq;
}

/* Reads exactly len bytes from fd. Returns 0, or -1 at the end of the stream or an error. */
static int read_full(int fd, uint8_t *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = read(fd, buf + done, len - done);

		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* Reads one message of the ring side (at most msg bytes a call, whole messages in all). */
static int ring_read_msg(struct mmapd_ring *ring, uint8_t *m, size_t msg)
{
	for (size_t done = 0; done < msg;) {
		ptrdiff_t n = mmapd_ring_read(ring, m + done, msg - done);

		if (n < 0)
			return -1;
		if (n == 0 && mmapd_ring_wait_readable(ring, 1, RING_WAIT_MS) < 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* The shm sides' reader: at each byte on sock, count messages read spinning, then the answer. */
static void shm_serve(int sock, const struct ring_ctx *c, uint8_t *buf)
{
	struct shm_ring *q = c->shm;
	uint64_t r = 0, w = 0, seq = 0;
	uint8_t go;

	while (read_full(sock, &go, 1) == 0) {
		for (size_t i = 0; i < c->count; i++, seq++) {
			while (w - r < c->msg) {
				w = atomic_load_explicit(&q->wpos, memory_order_acquire);
				if (w - r < c->msg)
					spin_pause();
			}
			memcpy(buf, q->data + r % RING_CAP, c->msg);
			if (!msg_ok(buf, seq))
				_exit(1);
			r += c->msg;
			atomic_store_explicit(&q->rpos, r, memory_order_release);
		}
		if (write(sock, &go, 1) != 1)
			break;
	}
	_exit(0);
}

/* The reader process: reads and checks messages until the stream ends, answering each round. */
static void reader_serve(int sock, const void *arg)
{
	const struct ring_ctx *c = arg;
	size_t bufsize = c->way == WAY_BATCHED ? READ_BATCH : c->msg;
	uint8_t *buf = malloc(bufsize), ack = 1;
	struct mmapd_client *client = NULL;
	struct mmapd_ring *ring = NULL;
	uint64_t seq = 0;
	int fd = c->way == WAY_SOCKET ? sock : c->rfd;

	/* The pipe's write end must close with the benchmark's, or the stream never ends. */
	if (c->fd >= 0)
		close(c->fd);
	if (!buf)
		_exit(1);
	if (way_is_ring(c->way) &&
	    (mmapd_connect(c->o->socket, "bench-ring", &client) < 0 ||
	     mmapd_ring_open(client, RING_NAME, MMAPD_RING_READER, &ring) < 0)) {
		fprintf(stderr, "mmapd-bench: ring reader: %s\n", mmapd_last_message());
		_exit(1);
	}
	/* Says it is ready: the first round must not time the reader's start. */
	if (write(sock, &ack, 1) != 1)
		_exit(1);
	if (way_is_shm(c->way))
		shm_serve(sock, c, buf);
	for (;;) {
		size_t got = 1;

		if (c->way == WAY_BATCHED) {
			ptrdiff_t n = mmapd_ring_read_some(ring, buf, bufsize, c->msg, RING_WAIT_MS);

			if (n <= 0)
				break;
			got = (size_t)n / c->msg;
			for (size_t i = 0; i < got; i++)
				if (!msg_ok(buf + i * c->msg, seq + i))
					goto bad;
		} else {
			if (ring ? ring_read_msg(ring, buf, c->msg) < 0 : read_full(fd, buf, c->msg) < 0)
				break;
			if (!msg_ok(buf, seq))
				goto bad;
		}
		/* A round ends on a multiple of count: answer when this batch crossed one. */
		if ((seq + got) / c->count != seq / c->count && write(sock, &ack, 1) != 1)
			break;
		seq += got;
	}
	mmapd_ring_close(ring);
	mmapd_disconnect(client);
	free(buf);
	_exit(0);
bad:
	fprintf(stderr, "mmapd-bench: ring reader: message %llu is wrong\n",
	        (unsigned long long)seq);
	_exit(1);
}

/* Writes one message of the ring side, waiting for room. Returns 0 or -errno. */
static int ring_write_msg(struct mmapd_ring *ring, const uint8_t *m, size_t msg)
{
	for (size_t done = 0; done < msg;) {
		ptrdiff_t n = mmapd_ring_write(ring, m + done, msg - done);

		if (n < 0)
			return (int)n;
		if (n == 0) {
			int r = mmapd_ring_wait_writable(ring, msg - done, RING_WAIT_MS);

			if (r < 0)
				return r;
		}
		done += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* One round of an shm side: the start byte, count messages, the answer. */
static int run_shm(struct ring_ctx *c)
{
	struct shm_ring *q = c->shm;
	uint64_t w = atomic_load_explicit(&q->wpos, memory_order_relaxed);
	uint64_t rseen = atomic_load_explicit(&q->rpos, memory_order_acquire);
	uint8_t go = 1;

	if (write(c->peer.sock, &go, 1) != 1)
		return -EPIPE;
	for (size_t i = 0; i < c->count; i++, c->seq++) {
		while (RING_CAP - (w - rseen) < c->msg) {
			rseen = atomic_load_explicit(&q->rpos, memory_order_acquire);
			if (RING_CAP - (w - rseen) < c->msg)
				spin_pause();
		}
		memcpy(c->buf, &c->seq, sizeof(c->seq));
		memcpy(q->data + w % RING_CAP, c->buf, c->msg);
		w += c->msg;
		atomic_store_explicit(&q->wpos, w, memory_order_release);
	}
	return read_full(c->peer.sock, &go, 1) < 0 ? -EPIPE : 0;
}

/* One round: count messages to the reader, then its answer. */
static int run_ring(void *arg)
{
	struct ring_ctx *c = arg;
	uint8_t ack;
	int r = 0;

	if (way_is_shm(c->way))
		return run_shm(c);
	for (size_t i = 0; i < c->count && r == 0; i++, c->seq++) {
		if (c->way == WAY_MEMCPY) {
			memcpy(c->buf + (c->seq * c->msg) % MEMCPY_BUF, &c->seq, c->msg);
			__asm__ volatile("" : : "r"(c->buf) : "memory");
			continue;
		}
		memcpy(c->buf, &c->seq, sizeof(c->seq));
		switch (c->way) {
		case WAY_BATCHED:
			r = mmapd_ring_put(c->ring, c->buf, c->msg, RING_WAIT_MS);
			if (r == 0 && (i + 1) % RING_BATCH == 0)
				r = mmapd_ring_flush(c->ring);
			break;
		case WAY_RING:
		case WAY_RING4K:
			r = ring_write_msg(c->ring, c->buf, c->msg);
			break;
		default:
			r = write_full(c->fd, c->buf, c->msg);
		}
	}
	if (r == 0 && c->way == WAY_BATCHED)
		r = mmapd_ring_flush(c->ring);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: ring writer: %s\n", mmapd_last_message());
		return r;
	}
	if (c->way != WAY_MEMCPY && read_full(c->peer.sock, &ack, 1) < 0)
		return -EPIPE;
	return 0;
}

/* Starts side c: its ring or pipe, and its reader. */
static int side_start(struct ring_ctx *c, struct mmapd_client *client)
{
	int fds[2] = { -1, -1 }, r;
	uint8_t ack;

	c->fd = c->rfd = -1;
	c->buf = calloc(1, c->way == WAY_MEMCPY ? MEMCPY_BUF + c->msg : c->msg);
	if (!c->buf)
		return -ENOMEM;
	if (c->way == WAY_MEMCPY)
		return 0;
	if (way_is_shm(c->way)) {
		c->shm = mmap(NULL, sizeof(*c->shm), PROT_READ | PROT_WRITE,
		              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (c->shm == MAP_FAILED) {
			c->shm = NULL;
			return -errno;
		}
	} else if (way_is_ring(c->way)) {
		c->client = client;
		r = mmapd_ring_create(client, RING_NAME, RING_CAP,
		                      MMAPD_RING_ANONYMOUS | MMAPD_RING_WRITER, &c->ring);
		if (r < 0) {
			fprintf(stderr, "mmapd-bench: ring: %s\n", mmapd_last_message());
			return r;
		}
	} else if (c->way == WAY_PIPE && pipe2(fds, O_CLOEXEC) < 0) {
		return -errno;
	}
	c->rfd = fds[0];
	c->fd = fds[1];
	r = peer_start(&c->peer, c->o->peer_cpu, reader_serve, c);
	if (fds[0] >= 0)
		close(fds[0]);
	if (r < 0)
		return r;
	if (c->way == WAY_SOCKET)
		c->fd = c->peer.sock;
	if (read_full(c->peer.sock, &ack, 1) < 0)
		return -EPIPE;
	return 0;
}

static void side_stop(struct ring_ctx *c)
{
	if (c->way != WAY_SOCKET && c->fd >= 0)
		close(c->fd);
	/* Closing the writer ends the reader's stream: it drains and exits. */
	mmapd_ring_close(c->ring);
	c->ring = NULL;
	if (c->peer.pid > 0)
		peer_stop(&c->peer);
	if (c->client)
		mmapd_delete(c->client, RING_NAME);
	if (c->shm)
		munmap(c->shm, sizeof(*c->shm));
	free(c->buf);
}

/* The rate of side s per second: per message (bytes 0) or per byte. */
static double side_rate(struct side *s, size_t units)
{
	return (double)units * 1e9 / (double)samples_percentile(&s->samples, 0.50);
}

/*
 * Runs the sides ways[0..n) (one ring at a time exists, so rings run in separate groups).
 * Each reader inherits the descriptors of the sides started before it (fork without exec), so
 * the sides stop in reverse: a socket's reader sees its stream end only once those that hold
 * a copy of the benchmark's end are gone.
 */
static int run_group(struct mmapd_client *client, const struct bench_opts *o,
                     struct ring_ctx *ctx, struct side *sides, const enum way *ways, size_t n,
                     size_t rounds)
{
	int r = 0;
	size_t i, started = 0;

	for (i = 0; i < n && r == 0; i++, started++) {
		struct ring_ctx *c = &ctx[ways[i]];

		*c = (struct ring_ctx){ .way = ways[i], .o = o, .fd = -1,
		                        .msg = ways[i] >= WAY_RING4K ? RING_BIG : 64,
		                        .count = ways[i] >= WAY_RING4K ? RING_BYTES / RING_BIG :
		                                                          RING_MSGS, .peer.pid = -1 };
		r = side_start(c, client);
	}
	if (r == 0)
		r = compare_run(sides, n, 1, rounds);
	while (started > 0)
		side_stop(&ctx[ways[--started]]);
	return r;
}

/* Prints a throughput line of messages per second: side a against side b. */
static void print_rate(const char *name, struct side *a, struct side *b)
{
	compare_print_throughput(name, side_rate(a, RING_MSGS), b->label, side_rate(b, RING_MSGS),
	                         NULL);
}

int case_ring(struct mmapd_client *client, const struct bench_opts *o)
{
	static const char *const labels[WAY_COUNT] = {
		[WAY_RING] = "ring", [WAY_BATCHED] = "batched", [WAY_PIPE] = "pipe",
		[WAY_SOCKET] = "socketpair", [WAY_SHM] = "bare shm", [WAY_RING4K] = "ring4k",
		[WAY_MEMCPY] = "memcpy", [WAY_SHM4K] = "bare shm",
	};
	/* In each group the pipe starts last (see run_group()). */
	static const enum way plain[] = { WAY_RING, WAY_SHM, WAY_SOCKET, WAY_PIPE };
	static const enum way batched[] = { WAY_BATCHED, WAY_SHM, WAY_PIPE };
	static const enum way big[] = { WAY_RING4K, WAY_MEMCPY, WAY_SHM4K };
	struct ring_ctx ctx[WAY_COUNT];
	struct side s1[4], s2[3], s3[3];
	size_t rounds = o->big_reps * 2;
	int r;

	for (int i = 0; i < 4; i++)
		s1[i] = (struct side){ .label = labels[plain[i]], .run = run_ring,
		                       .ctx = &ctx[plain[i]] };
	for (int i = 0; i < 3; i++) {
		s2[i] = (struct side){ .label = labels[batched[i]], .run = run_ring,
		                       .ctx = &ctx[batched[i]] };
		s3[i] = (struct side){ .label = labels[big[i]], .run = run_ring, .ctx = &ctx[big[i]] };
	}
	r = run_group(client, o, ctx, s1, plain, 4, rounds);
	if (r == 0) {
		print_rate("ring 64B write/read", &s1[0], &s1[3]);
		print_rate("ring 64B write/read", &s1[0], &s1[2]);
		print_rate("ring 64B write/read", &s1[0], &s1[1]);
	}
	compare_done(s1, 4);
	if (r == 0)
		r = run_group(client, o, ctx, s2, batched, 3, rounds);
	if (r == 0) {
		print_rate("ring 64B put/flush+read_some", &s2[0], &s2[2]);
		print_rate("ring 64B put/flush+read_some", &s2[0], &s2[1]);
	}
	compare_done(s2, 3);
	if (r == 0)
		r = run_group(client, o, ctx, s3, big, 3, rounds);
	if (r == 0) {
		compare_print_bandwidth("ring 4KiB messages", RING_BYTES, &s3[0], &s3[1]);
		compare_print_bandwidth("ring 4KiB messages", RING_BYTES, &s3[0], &s3[2]);
	}
	compare_done(s3, 3);
	return r;
}
