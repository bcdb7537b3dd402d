/* SPDX-License-Identifier: MIT */
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
 *
 * A reader waiting for data watches the writer, and a writer waiting for space the reader.
 * A closed side is seen in its state word at once. While the other side is registered open,
 * the waiter sleeps RING_SIDE_CHECK_MS at a time and, after a slice that ran out, tries that
 * side's daemon lock (ring.h): a wait that is woken in time asks the daemon nothing, and a
 * ring without registered sides sleeps until its deadline. A read or write that need not
 * wait makes no system call.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pidlive.h"
#include "ring.h"
#include "toolbox.h"

/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (tbx_deadline_after()'s clock). */
static int futex_wait(_Atomic uint32_t *word, uint32_t val, const struct timespec *deadline)
{
	if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, val, deadline, NULL,
	            FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return -errno;
}

/*
 * Whether the side whose state word is peer closed, or (with probe) died: its state says
 * open but nobody holds its lock (a try-lock that succeeds is released at once) and its
 * process is gone (a daemon restart drops the lock of a live one). Errors other than a
 * conflict cannot tell, and count as alive.
 */
static bool ring_side_gone(struct mmapd_ring *ring, _Atomic uint32_t *peer, bool probe)
{
	uint32_t state = atomic_load(peer);
	const char *name = mmapd_region_name(ring->region);
	uint64_t lock;

	if (state != RING_SIDE_OPEN || !probe)
		return state == RING_SIDE_CLOSED;
	if (mmapd_lock(ring->client, name,
	               (uint64_t)((uint8_t *)peer - (uint8_t *)ring->hdr), 1,
	               MMAPD_LOCK_SHARED | MMAPD_LOCK_NOWAIT, 0, &lock) < 0)
		return false;
	mmapd_unlock(ring->client, lock);
	return !pid_alive(atomic_load(peer == &ring->hdr->writer ? &ring->hdr->writer_pid :
	                                                        &ring->hdr->reader_pid));
}

/* The earlier of deadline and RING_SIDE_CHECK_MS from now, in *ts. */
static const struct timespec *ring_slice(struct timespec *ts, const struct timespec *deadline)
{
	tbx_deadline_after(ts, RING_SIDE_CHECK_MS);
	if (deadline && (deadline->tv_sec < ts->tv_sec ||
	                 (deadline->tv_sec == ts->tv_sec && deadline->tv_nsec < ts->tv_nsec)))
		return deadline;
	return ts;
}

int ring_wait(struct mmapd_ring *ring, _Atomic uint32_t *seq, _Atomic uint32_t *waiters,
              ring_ready_fn *ready, size_t min, _Atomic uint32_t *peer,
              const struct timespec *deadline)
{
	const struct timespec *until;
	struct timespec slice;
	bool probe = false;
	uint32_t s;
	int r;

	for (;;) {
		if (ready(ring, min))
			return 0;
		if (ring_side_gone(ring, peer, probe) && !ready(ring, min))
			return tbx_error(-EPIPE, "ring '%s' will not get %zu more %s bytes: its %s %s",
			                 mmapd_region_name(ring->region), min,
			                 peer == &ring->hdr->writer ? "readable" : "writable",
			                 peer == &ring->hdr->writer ? "writer" : "reader",
			                 atomic_load(peer) == RING_SIDE_CLOSED ? "closed it" : "died");
		until = atomic_load(peer) == RING_SIDE_OPEN ? ring_slice(&slice, deadline) : deadline;
		atomic_fetch_add(waiters, 1);
		atomic_thread_fence(memory_order_seq_cst);
		s = atomic_load(seq);
		r = ready(ring, min) ? 0 : futex_wait(seq, s, until);
		atomic_fetch_sub(waiters, 1);
		/* A slice that ran out with nothing ready: time to ask whether the side lives. */
		probe = r == -ETIMEDOUT && until != deadline;
		/* EAGAIN: the word changed before we slept; 0: woken (maybe spuriously). */
		if (r == 0 || r == -EAGAIN || (r == -ETIMEDOUT && (until != deadline ||
		                                                   ready(ring, min))))
			continue;
		return tbx_error(r, "%s ring '%s'", r == -ETIMEDOUT ? "timed out waiting on" :
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
