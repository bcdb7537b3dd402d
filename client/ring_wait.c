/*
 * Blocking on a ring across processes: futex words in the shared header.
 *
 * The futexes are shared (no FUTEX_PRIVATE_FLAG): the kernel keys them by the page of the
 * region's file or memfd, so processes that map the ring at different addresses meet on the
 * same word. A side that must sleep counts itself in a waiter count, and the other side
 * makes a wake-up system call only when that count is not zero: the fast path of a write or
 * a read is a store, a fence and a load.
 *
 * No wake-up is lost. The waiter increments its count and then (after a full fence) checks
 * the positions; the other side stores a position and then (after a full fence) loads the
 * count. Whichever fence comes first, either the waiter sees the new position or the other
 * side sees the waiter. The waiter reads the sequence word before its last check and sleeps
 * only if it is unchanged, and the waker bumps it before waking, so a wake-up that comes
 * between the check and the sleep makes the sleep return at once.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "ring.h"

/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (deadline_after()'s clock). */
static int futex_wait(_Atomic uint32_t *word, uint32_t val, const struct timespec *deadline)
{
	if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, val, deadline, NULL,
	            FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return -errno;
}

int ring_wait(struct mmapd_ring *ring, _Atomic uint32_t *seq, _Atomic uint32_t *waiters,
              ring_ready_fn *ready, size_t min, const struct timespec *deadline)
{
	uint32_t s;
	int r;

	for (;;) {
		if (ready(ring, min))
			return 0;
		atomic_fetch_add(waiters, 1);
		atomic_thread_fence(memory_order_seq_cst);
		s = atomic_load(seq);
		r = ready(ring, min) ? 0 : futex_wait(seq, s, deadline);
		atomic_fetch_sub(waiters, 1);
		/* EAGAIN: the word changed before we slept; 0: woken (maybe spuriously). */
		if (r == 0 || r == -EAGAIN || (r == -ETIMEDOUT && ready(ring, min)))
			continue;
		return error_set(r, "%s ring '%s'", r == -ETIMEDOUT ? "timed out waiting on" :
		                 r == -EINTR ? "interrupted waiting on" : "cannot wait on",
		                 mmapd_region_name(ring->region));
	}
}

void ring_wake(_Atomic uint32_t *seq, _Atomic uint32_t *waiters)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(waiters, memory_order_relaxed) == 0)
		return;
	atomic_fetch_add(seq, 1);
	syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
