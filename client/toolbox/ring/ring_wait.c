/* SPDX-License-Identifier: MIT */
/*
 * Blocking on a ring across processes: a bounded spin, then futex words in the shared header.
 *
 * A wait first spins (polls the positions with a pause between loads) for up to the
 * handle's spin budget, because a sleep and its wake-up cost two system calls and a context
 * switch on each side (several microseconds), while a streaming peer usually publishes again
 * within far less. The budget starts at RING_SPIN_MAX_NS, doubles (up to that) after each spin
 * that found what it waited for and halves (down to RING_SPIN_MIN_NS) after each that did not,
 * so a peer that goes quiet soon costs almost no spinning, and it never runs past the
 * caller's deadline (a timeout of 0 does not spin). ring.h says how the bounds were chosen.
 *
 * Then it sleeps. The futexes are shared (no FUTEX_PRIVATE_FLAG): the kernel keys them by the
 * page of the region's file or memfd, so processes that map the ring at different addresses
 * meet on the same word. A side that must sleep counts itself in a waiter count, and the
 * other side makes a wake-up system call only when that count is not zero.
 *
 * No wake-up is lost. The waiter increments its count and then checks the positions; the
 * other side stores a position and then loads the count. Either the waiter sees the new
 * position or the other side sees the waiter, provided a full barrier separates each side's
 * store from its load. On a layout version 1 ring each side executes that barrier itself (a
 * seq_cst fence per publish). On version 2 rings the barrier is asymmetric: the publishing
 * side, registered with membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED), only keeps the
 * compiler from reordering its store and load, and the side about to sleep calls
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which runs a full barrier on every CPU that
 * runs a registered process: so the cost of the barrier moves from every message to every
 * sleep (about 0.6 us, next to the futex calls of the sleep itself). A publisher whose
 * registration failed fences as on version 1; a waiter whose membarrier() fails sleeps in
 * slices of RING_BLIND_SLICE_MS and looks again, so a missed wake-up costs at most that. The
 * waiter bumps the sequence word before the barrier and its last check and sleeps only if the
 * word still holds the value it made, and the waker bumps it before waking, so a wake-up that
 * comes between the check and the sleep makes the sleep return at once.
 *
 * One wake-up per sleep. A woken waiter takes its count back only once it runs again, tens of
 * microseconds later on a busy machine, and a publisher that woke it would meanwhile make a
 * futex call at every publish. So on layout version 3 rings a publisher remembers the value
 * its wake-up gave the word and skips the call while the word still holds it: every process
 * asleep then went to sleep before that wake-up, which woke it (a waiter sleeps only on a
 * value it made itself, after that wake-up). The bumps are a second Dekker pair, word and
 * position, under the same barrier: either the publisher sees the waiter's bump, or the waiter
 * sees the position. Version 2 waiters (an older libmmapd) sleep without a bump, so on version
 * 1 and 2 rings a publisher wakes whenever the count is not zero.
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
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
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

/* The earlier of deadline and ms from now, in *ts. */
static const struct timespec *ring_slice(struct timespec *ts, const struct timespec *deadline,
                                         int ms)
{
	tbx_deadline_after(ts, ms);
	if (deadline && (deadline->tv_sec < ts->tv_sec ||
	                 (deadline->tv_sec == ts->tv_sec && deadline->tv_nsec < ts->tv_nsec)))
		return deadline;
	return ts;
}

static uint64_t ring_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/*
 * Polls ready(ring, min) for up to the handle's spin budget (never past deadline) and adapts
 * the budget to what it found. Returns whether it became ready.
 */
static bool ring_spin(struct mmapd_ring *ring, ring_ready_fn *ready, size_t min,
                      const struct timespec *deadline)
{
	uint64_t start = ring_now_ns(), limit = ring->spin_ns, end;

	if (limit == 0)
		return false;
	if (deadline) {
		end = (uint64_t)deadline->tv_sec * 1000000000u + (uint64_t)deadline->tv_nsec;
		if (end <= start)
			return false;
		if (end - start < limit)
			limit = end - start;
	}
	for (unsigned i = 1;; i++) {
		cpu_relax();
		if (ready(ring, min)) {
			ring->spin_ns = ring->spin_ns >= RING_SPIN_MAX_NS / 2 ? RING_SPIN_MAX_NS :
			                                                        2 * ring->spin_ns;
			return true;
		}
		/* A clock read costs some 20 ns: look at it every 32 polls. */
		if (i % 32 == 0 && ring_now_ns() - start >= limit)
			break;
	}
	ring->spin_ns = ring->spin_ns / 2 <= RING_SPIN_MIN_NS ? RING_SPIN_MIN_NS :
	                                                       ring->spin_ns / 2;
	return false;
}

void ring_barrier_register(struct mmapd_ring *ring)
{
	ring->fenceless = ring->version >= 2 &&
	                  syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0) == 0;
}

/*
 * After a waiter counted itself: the barrier that lets a publisher that saw no waiter skip
 * its own (see the top). Returns false when the waiter cannot be sure to be seen.
 */
static bool ring_barrier(const struct mmapd_ring *ring)
{
	atomic_thread_fence(memory_order_seq_cst);
	return ring->version < 2 ||
	       syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0) == 0;
}

int ring_wait(struct mmapd_ring *ring, _Atomic uint32_t *seq, _Atomic uint32_t *waiters,
              ring_ready_fn *ready, size_t min, _Atomic uint32_t *peer,
              const struct timespec *deadline)
{
	const struct timespec *until;
	struct timespec slice;
	bool probe = false, spun = false, seen;
	unsigned blind = 0;
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
		if (!spun) {
			spun = true;
			if (ring_spin(ring, ready, min, deadline))
				continue;
		}
		atomic_fetch_add(waiters, 1);
		s = atomic_fetch_add(seq, 1) + 1;
		seen = ring_barrier(ring);
		/* A peer that closed before it looked at waiters did not wake us: its store is
		 * visible after the barrier, and sleeping now would last until the deadline. */
		if (atomic_load(peer) == RING_SIDE_CLOSED) {
			atomic_fetch_sub(waiters, 1);
			continue;
		}
		until = !seen ? ring_slice(&slice, deadline, RING_BLIND_SLICE_MS) :
		        atomic_load(peer) == RING_SIDE_OPEN ?
		        ring_slice(&slice, deadline, RING_SIDE_CHECK_MS) : deadline;
		r = ready(ring, min) ? 0 : futex_wait(seq, s, until);
		atomic_fetch_sub(waiters, 1);
		/* A slice that ran out with nothing ready: time to ask whether the side lives. */
		probe = r == -ETIMEDOUT && until != deadline &&
		        (seen || ++blind % (RING_SIDE_CHECK_MS / RING_BLIND_SLICE_MS) == 0);
		/* EAGAIN: the word changed before we slept; 0: woken (maybe spuriously). */
		if (r == 0 || r == -EAGAIN || (r == -ETIMEDOUT && (until != deadline ||
		                                                   ready(ring, min))))
			continue;
		return tbx_error(r, "%s ring '%s'", r == -ETIMEDOUT ? "timed out waiting on" :
		                 r == -EINTR ? "interrupted waiting on" : "cannot wait on",
		                 mmapd_region_name(ring->region));
	}
}

void ring_wake(struct mmapd_ring *ring, _Atomic uint32_t *seq, _Atomic uint32_t *waiters)
{
	uint64_t *woke = &ring->woke[seq == &ring->hdr->space_seq];

	if (ring->fenceless)
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(waiters, memory_order_relaxed) == 0)
		return;
	if (ring->version >= 3 && atomic_load_explicit(seq, memory_order_relaxed) == *woke)
		return;
	*woke = atomic_fetch_add(seq, 1) + 1;
	syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
