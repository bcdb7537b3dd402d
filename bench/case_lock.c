/*
 * Case (l): whole-region locks on the control page's fast path, against the physical limit: a
 * futex mutex in shared memory doing the same.
 *   - uncontended: 1000 exclusive lock+unlock pairs (mmapd_region_lock) of a region this
 *     process holds open read-write, against 1000 lock+unlock pairs of a futex mutex in a shared page;
 *   - hand-off: a peer process blocks in lock while this one holds it; the delay from the
 *     unlock to the peer's lock returning, against the same hand-off of the futex mutex.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "peer.h"
#include "region.h"

#define REGION "bench-fastlock"
#define PAIRS  1000

/* What the benchmark and its peer share (an anonymous shared page). */
struct handoff {
	_Atomic uint32_t futex;       /* the baseline's mutex: 0 free, 1 held, 2 held + waiters */
	_Atomic uint32_t round;       /* bumped by the benchmark: the peer locks once per round */
	_Atomic uint32_t side;        /* 0: mmapd, 1: the futex mutex */
	_Atomic uint32_t waiting;     /* the peer is about to lock */
	_Atomic uint64_t unlocked_ns; /* when the holder unlocked */
	_Atomic uint64_t delay_ns;    /* the peer's result for the round */
	_Atomic uint32_t done;        /* = round once delay_ns is in */
};

struct lock_ctx {
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct handoff *h;
	uint64_t held;                /* the benchmark's lock between hand-offs */
	uint64_t delay;
	uint32_t round;
	const char *socket;
};

static long futex(_Atomic uint32_t *word, int op, uint32_t val)
{
	return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

/* Drepper's futex mutex ("Futexes are tricky", mutex 2), process-shared. */
static void fmutex_lock(_Atomic uint32_t *m)
{
	uint32_t c = 0;

	if (atomic_compare_exchange_strong(m, &c, 1))
		return;
	if (c != 2)
		c = atomic_exchange(m, 2);
	while (c != 0) {
		futex(m, FUTEX_WAIT, 2);
		c = atomic_exchange(m, 2);
	}
}

static void fmutex_unlock(_Atomic uint32_t *m)
{
	if (atomic_fetch_sub(m, 1) != 1) {
		atomic_store(m, 0);
		futex(m, FUTEX_WAKE, 1);
	}
}

static int run_fast(void *arg)
{
	struct lock_ctx *c = arg;

	for (int i = 0; i < PAIRS; i++) {
		uint64_t lock;
		int r = mmapd_region_lock(c->region, 0, 0, MMAPD_LOCK_EXCLUSIVE, -1, &lock);

		if (r == 0)
			r = mmapd_unlock(c->client, lock);
		if (r < 0) {
			fprintf(stderr, "mmapd-bench: mmapd_lock/unlock: %s\n", mmapd_last_message());
			return r;
		}
	}
	return 0;
}

static int run_futex(void *arg)
{
	struct lock_ctx *c = arg;

	for (int i = 0; i < PAIRS; i++) {
		fmutex_lock(&c->h->futex);
		fmutex_unlock(&c->h->futex);
	}
	return 0;
}

/* Spins (yielding) until *word == want; -ETIMEDOUT after 5 s. */
static int await(_Atomic uint32_t *word, uint32_t want)
{
	uint64_t end = clock_ns() + 5000000000ull;

	while (atomic_load(word) != want) {
		if (clock_ns() > end)
			return -ETIMEDOUT;
		sched_yield();
	}
	return 0;
}

/*
 * One hand-off on side (the benchmark holds the lock): lets the peer block, then unlocks and
 * waits for the peer's delay, then takes the lock back (the peer has let go).
 */
static int handoff(struct lock_ctx *c, uint32_t side)
{
	struct timespec nap = { 0, 50000 };
	uint32_t round = ++c->round;
	int r;

	atomic_store(&c->h->side, side);
	atomic_store(&c->h->waiting, 0);
	atomic_store(&c->h->round, round);
	r = await(&c->h->waiting, round);
	if (r < 0)
		return r;
	/* Long enough for the peer to be asleep in its lock, short of the fast wait's 1 ms. */
	nanosleep(&nap, NULL);
	atomic_store(&c->h->unlocked_ns, clock_ns());
	if (side == 0) {
		r = mmapd_unlock(c->client, c->held);
		if (r < 0)
			return r;
	} else {
		fmutex_unlock(&c->h->futex);
	}
	r = await(&c->h->done, round);
	if (r < 0)
		return r;
	c->delay = atomic_load(&c->h->delay_ns);
	if (side == 0)
		return mmapd_lock(c->client, REGION, 0, 0, MMAPD_LOCK_EXCLUSIVE, -1, &c->held);
	fmutex_lock(&c->h->futex);
	return 0;
}

static int run_handoff_mmapd(void *arg)
{
	return handoff(arg, 0);
}

static int run_handoff_futex(void *arg)
{
	return handoff(arg, 1);
}

/* The peer: one blocking lock per round on the side asked, the delay reported. */
static void serve(int sock, const void *arg)
{
	const struct lock_ctx *c = arg;
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_client *client;
	struct mmapd_region *region;
	uint32_t round = 0;
	char ready = 'r';

	if (mmapd_connect(c->socket, "bench-lock-peer", &client) < 0 ||
	    mmapd_region_open(client, REGION, &opts, &region) < 0) {
		fprintf(stderr, "mmapd-bench: lock peer: %s\n", mmapd_last_message());
		_exit(1);
	}
	if (send(sock, &ready, 1, MSG_NOSIGNAL) != 1)
		_exit(1);
	for (;;) {
		uint64_t lock = 0, got;

		while (atomic_load(&c->h->round) == round) {
			if (recv(sock, &ready, 1, MSG_DONTWAIT) == 0)
				return;  /* the benchmark closed our socket: done */
			sched_yield();
		}
		round = atomic_load(&c->h->round);
		atomic_store(&c->h->waiting, round);
		if (atomic_load(&c->h->side) == 0) {
			if (mmapd_lock(client, REGION, 0, 0, MMAPD_LOCK_EXCLUSIVE, -1, &lock) < 0) {
				fprintf(stderr, "mmapd-bench: lock peer: %s\n", mmapd_last_message());
				_exit(1);
			}
		} else {
			fmutex_lock(&c->h->futex);
		}
		got = clock_ns();
		atomic_store(&c->h->delay_ns, got - atomic_load(&c->h->unlocked_ns));
		if (atomic_load(&c->h->side) == 0)
			(void)mmapd_unlock(client, lock);
		else
			fmutex_unlock(&c->h->futex);
		atomic_store(&c->h->done, round);
	}
}

int case_lock(struct mmapd_client *client, const struct bench_opts *o)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE, .mode = MMAPD_MODE_RW, .size = 4096);
	struct lock_ctx c = { .client = client, .socket = o->socket };
	struct side fast[] = {
		{ .label = "mmapd", .run = run_fast, .ctx = &c },
		{ .label = "futex", .run = run_futex, .ctx = &c },
	};
	struct side hand[] = {
		{ .label = "mmapd", .run = run_handoff_mmapd, .ctx = &c, .measured = &c.delay },
		{ .label = "futex", .run = run_handoff_futex, .ctx = &c, .measured = &c.delay },
	};
	struct mmapd_region *region;
	struct peer peer;
	char ready;
	int r, r2;

	c.h = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c.h == MAP_FAILED)
		return -errno;
	r = bench_region_open(client, REGION, &opts, &region);
	if (r < 0)
		goto out_unmap;
	c.region = region;
	r = compare_run(fast, 2, o->warmup, o->iters);
	if (r == 0)
		compare_print_latency("lock+unlock x1000, uncontended", &fast[0], &fast[1]);
	compare_done(fast, 2);
	if (r < 0)
		goto out_close;

	r = peer_start(&peer, o->peer_cpu, serve, &c);
	if (r < 0)
		goto out_close;
	if (recv(peer.sock, &ready, 1, MSG_WAITALL) != 1) {
		r = -EIO;
		goto out_peer;
	}
	r = mmapd_lock(client, REGION, 0, 0, MMAPD_LOCK_EXCLUSIVE, -1, &c.held);
	if (r < 0)
		goto out_peer;
	fmutex_lock(&c.h->futex);
	r = compare_run(hand, 2, o->warmup / 4 + 1, o->iters / 4 + 1);
	if (r == 0)
		compare_print_latency("lock hand-off to a blocked process", &hand[0], &hand[1]);
	compare_done(hand, 2);
	fmutex_unlock(&c.h->futex);
	(void)mmapd_unlock(client, c.held);
out_peer:
	r2 = peer_stop(&peer);
	if (r == 0)
		r = r2;
out_close:
	mmapd_region_close(region);
out_unmap:
	munmap(c.h, 4096);
	return r;
}
