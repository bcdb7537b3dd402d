/* SPDX-License-Identifier: MIT */
/*
 * The change log of a control page (see changelog.h): reserving, publishing and reading
 * entries, and the futex sleep of readers.
 */
#include "changelog.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Lost compare-and-swaps on one entry tolerated before the change is left out of the ring
 * (its readers see an overflow): another writer lapped us, or a scribbler keeps the entry busy. */
#define CHANGELOG_RACES 64

_Static_assert(sizeof(struct changelog_entry) == 32, "entries are half a cache line");

void changelog_init(struct changelog *log, uint64_t seq, enum changelog_route route)
{
	atomic_store_explicit(&log->route, route, memory_order_relaxed);
	atomic_store_explicit(&log->relayed, seq, memory_order_relaxed);
	atomic_store_explicit(&log->head, seq, memory_order_release);
}

uint64_t changelog_head(struct changelog *log)
{
	uint64_t h = atomic_load_explicit(&log->head, memory_order_seq_cst);

	return h > CHANGELOG_SEQ_MAX ? CHANGELOG_SEQ_MAX : h;
}

/* Marks e busy for seq: only over an older entry, a bounded number of times. */
static int changelog_claim(struct changelog_entry *e, uint64_t seq)
{
	uint64_t old = atomic_load_explicit(&e->seq, memory_order_relaxed);
	int races;

	for (races = 0; races < CHANGELOG_RACES; races++) {
		if (old != CHANGELOG_BUSY && old >= seq)
			return -ESTALE;        /* a later change has the entry already */
		if (old != CHANGELOG_BUSY &&
		    atomic_compare_exchange_weak_explicit(&e->seq, &old, CHANGELOG_BUSY,
		                                          memory_order_relaxed,
		                                          memory_order_relaxed))
			return 0;
		if (old == CHANGELOG_BUSY)
			old = atomic_load_explicit(&e->seq, memory_order_relaxed);
	}
	return -EBUSY;
}

static void changelog_wake(struct changelog *log)
{
	/* After the seq_cst reservation: pairs with the sleeper's increment (changelog_wait). */
	if (atomic_load_explicit(&log->sleepers, memory_order_seq_cst) == 0)
		return;
	atomic_fetch_add_explicit(&log->wake, 1, memory_order_release);
	syscall(SYS_futex, &log->wake, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

uint64_t changelog_publish(struct changelog *log, uint64_t offset, uint64_t length, uint32_t pid,
                           unsigned slot, unsigned flags)
{
	uint64_t seq = atomic_fetch_add_explicit(&log->head, 1, memory_order_seq_cst) + 1;
	struct changelog_entry *e;

	if (seq == 0 || seq > CHANGELOG_SEQ_MAX)
		return 0;
	e = &log->entries[seq % CHANGELOG_ENTRIES];
	if (changelog_claim(e, seq) == 0) {
		atomic_thread_fence(memory_order_release);
		atomic_store_explicit(&e->offset, offset, memory_order_relaxed);
		atomic_store_explicit(&e->length, length, memory_order_relaxed);
		atomic_store_explicit(&e->pid, pid, memory_order_relaxed);
		atomic_store_explicit(&e->slot, (uint16_t)slot, memory_order_relaxed);
		atomic_store_explicit(&e->flags, (uint16_t)flags, memory_order_relaxed);
		atomic_store_explicit(&e->seq, seq, memory_order_release);
	}
	changelog_wake(log);
	return seq;
}

int changelog_read(struct changelog *log, uint64_t seq, struct changelog_change *ret)
{
	struct changelog_entry *e = &log->entries[seq % CHANGELOG_ENTRIES];
	uint64_t s = atomic_load_explicit(&e->seq, memory_order_acquire);

	if (s == CHANGELOG_BUSY || s < seq)
		return changelog_head(log) >= seq + CHANGELOG_ENTRIES ? -ESTALE : -EAGAIN;
	if (s > seq)
		return -ESTALE;
	ret->seq = seq;
	ret->offset = atomic_load_explicit(&e->offset, memory_order_relaxed);
	ret->length = atomic_load_explicit(&e->length, memory_order_relaxed);
	ret->pid = atomic_load_explicit(&e->pid, memory_order_relaxed);
	ret->slot = atomic_load_explicit(&e->slot, memory_order_relaxed);
	ret->flags = atomic_load_explicit(&e->flags, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&e->seq, memory_order_relaxed) == seq ? 0 : -ESTALE;
}

void changelog_close(struct changelog *log)
{
	atomic_store_explicit(&log->route, CHANGELOG_ROUTE_GONE, memory_order_seq_cst);
	atomic_fetch_add_explicit(&log->wake, 1, memory_order_release);
	syscall(SYS_futex, &log->wake, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

int64_t changelog_wait(struct changelog *log, uint64_t after_seq, const struct timespec *deadline)
{
	for (;;) {
		uint32_t seen;
		uint64_t h;
		long r;

		/* seq_cst, as the writer's reservation and its load of sleepers: either it sees us
		 * here, or we see its head below and do not sleep. */
		atomic_fetch_add_explicit(&log->sleepers, 1, memory_order_seq_cst);
		seen = atomic_load_explicit(&log->wake, memory_order_seq_cst);
		h = changelog_head(log);
		if (atomic_load_explicit(&log->route, memory_order_relaxed) == CHANGELOG_ROUTE_GONE) {
			atomic_fetch_sub_explicit(&log->sleepers, 1, memory_order_relaxed);
			return -ESHUTDOWN;
		}
		if (h > after_seq) {
			atomic_fetch_sub_explicit(&log->sleepers, 1, memory_order_relaxed);
			return (int64_t)h;
		}
		r = syscall(SYS_futex, &log->wake, FUTEX_WAIT_BITSET, seen, deadline, NULL,
		            FUTEX_BITSET_MATCH_ANY);
		atomic_fetch_sub_explicit(&log->sleepers, 1, memory_order_relaxed);
		if (r < 0 && errno == ETIMEDOUT)
			return -ETIMEDOUT;
		if (r < 0 && errno == EINTR)
			return -EINTR;
	}
}

bool changelog_must_ring(struct changelog *log)
{
	return atomic_load_explicit(&log->route, memory_order_seq_cst) != CHANGELOG_ROUTE_NONE ||
	       atomic_load_explicit(&log->listeners, memory_order_seq_cst) != 0;
}

/* Tries of changelog_ring against a counter someone keeps at its maximum. */
#define CHANGELOG_RING_TRIES 4

int changelog_ring(int bell)
{
	uint64_t one = 1, drained;
	int tries;

	for (tries = 0; tries < CHANGELOG_RING_TRIES; tries++) {
		if (write(bell, &one, sizeof(one)) == sizeof(one))
			return 0;
		if (errno != EAGAIN)
			return -errno;
		(void)!read(bell, &drained, sizeof(drained));
	}
	return -EAGAIN;
}
