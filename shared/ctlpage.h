/* SPDX-License-Identifier: MIT */
/*
 * The control page of a region: one page of shared memory (a sealed memfd the daemon makes and
 * passes to clients holding a read-write grant, docs/coordination.md "The control page") that
 * carries the fast path of whole-region locks. The daemon stays the authority: it assigns the
 * slots, steps in when a lock is contended for long, when a client speaks only the protocol,
 * or when a holder dies, and never waits for anything a client writes here.
 *
 * The lock word (64 bits):
 *   bit 63      CTL_DAEMON: the daemon manages the region's locks now; nobody takes or
 *               drops a lock here, every lock and unlock is a request (the holders found
 *               in the word when the daemon set the bit became locks it keeps)
 *   bit 62      CTL_EXCL: an exclusive lock is held, by the slot in bits 56-61
 *   bits 0-55   one bit per slot holding at least one shared lock
 * Taking a lock is one compare-and-swap of the word that requires CTL_DAEMON clear, so a lock
 * is taken either before the daemon takes over (and it sees it) or not at all; dropping one is
 * one atomic and. Sleepers wait on the futex word "wake", which every release that finds sleepers bumps.
 *
 * The pages after the first hold the region's change log (changelog.h), which carries the
 * fast path of change notification.
 *
 * Every function here is safe against a page scribbled on by a hostile holder: loops are
 * bounded, indexes checked, and nothing waits longer than its caller's deadline.
 */
#ifndef MMAPD_SHARED_CTLPAGE_H
#define MMAPD_SHARED_CTLPAGE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "changelog.h"

#define CTLPAGE_MAGIC   0x4c5443445041504dull /* "MPAPDCTL" read as little-endian bytes */
#define CTLPAGE_VERSION 2u
/* The lock part is the first page; the change log (changelog.h) the two after it. */
#define CTLPAGE_LOG_OFFSET 4096u
#define CTLPAGE_SIZE    (CTLPAGE_LOG_OFFSET + 8192u)
#define CTLPAGE_SLOTS   56u
#define CTLPAGE_LINE    64

#define CTL_DAEMON      (1ull << 63)
#define CTL_EXCL        (1ull << 62)
#define CTL_OWNER_SHIFT 56
#define CTL_OWNER_MASK  (63ull << CTL_OWNER_SHIFT)
#define CTL_READERS     ((1ull << CTLPAGE_SLOTS) - 1)

/*
 * Lock ids of the fast path: the client makes them, at or above CTL_FAST_ID_BASE (and below
 * 2^53, so that JSON carries them exactly); the daemon's own ids stay below the base.
 */
#define CTL_FAST_ID_BASE (1ull << 52)
#define CTL_FAST_ID_MAX  ((1ull << 53) - 1)

/* A client's slot: written by the daemon (pid) and by the slot's holder (the rest). */
struct ctlpage_slot {
	_Atomic uint32_t pid;         /* the holder's pid; 0: free (the daemon's) */
	uint32_t reserved;
	_Atomic uint64_t excl_id;     /* the id of the exclusive lock this slot holds */
	_Atomic uint64_t shared_id;   /* the id that stands for this slot's shared locks */
	uint64_t pad[5];
};

struct ctlpage {
	uint64_t magic;               /* the daemon's, written before the page is passed */
	uint32_t version;
	uint32_t size;                /* CTLPAGE_SIZE */
	uint32_t nslots;              /* CTLPAGE_SLOTS */

	alignas(CTLPAGE_LINE) _Atomic uint64_t lock;
	_Atomic uint32_t wake;        /* futex: bumped by releases that find sleepers */
	_Atomic uint32_t sleepers;    /* threads (any process) asleep on wake */
	_Atomic uint32_t retired;     /* the region was deleted: its name is another's now */

	alignas(CTLPAGE_LINE) struct ctlpage_slot slots[CTLPAGE_SLOTS];
};

_Static_assert(sizeof(struct ctlpage) <= CTLPAGE_LOG_OFFSET, "the lock part fits its page");
_Static_assert(sizeof(struct changelog) <= CTLPAGE_SIZE - CTLPAGE_LOG_OFFSET,
               "the change log fits its pages");

/* The change log of page p (mapped CTLPAGE_SIZE bytes long). */
static inline struct changelog *ctlpage_log(struct ctlpage *p)
{
	return (struct changelog *)((char *)p + CTLPAGE_LOG_OFFSET);
}

/* What a fast try found. */
enum ctl_try {
	CTL_TAKEN,      /* the lock is held (or released) */
	CTL_BUSY,       /* another holder conflicts */
	CTL_MANAGED,    /* CTL_DAEMON is set: ask the daemon */
};

/* Formats a zeroed page (the daemon, before it passes it). */
void ctlpage_format(struct ctlpage *p);
/* True when p looks like a control page of this version (a client, after mapping it). */
int ctlpage_check(const struct ctlpage *p);

/* Lost compare-and-swaps tolerated before giving up on a page that keeps changing. */
#define CTL_RACES 4096

/* Wakes every sleeper (ctlpage_wake() found some). */
void ctlpage_wake_sleepers(struct ctlpage *p);

/* Wakes every sleeper, if any. */
static inline void ctlpage_wake(struct ctlpage *p)
{
	/* After a seq_cst update of the word (every caller's): pairs with the sleeper's
	 * increment, so that no sleeper is missed and no fence is paid when nobody sleeps. */
	if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) != 0)
		ctlpage_wake_sleepers(p);
}

static inline uint64_t ctl_bits(unsigned slot, int exclusive)
{
	return exclusive ? CTL_EXCL | (uint64_t)slot << CTL_OWNER_SHIFT : 1ull << slot;
}

/*
 * Takes the exclusive or a shared lock for slot: one compare-and-swap. CTL_MANAGED also
 * when the region was retired (the daemon resolves the name again). Inline, as
 * ctlpage_unlock(): the fast path is a few dozen instructions, and calls are a part of them.
 */
static inline enum ctl_try ctlpage_try_lock(struct ctlpage *p, unsigned slot, int exclusive)
{
	uint64_t w = atomic_load_explicit(&p->lock, memory_order_relaxed);
	int races = 0;

	if (atomic_load_explicit(&p->retired, memory_order_relaxed))
		return CTL_MANAGED;
	for (;;) {
		if (w & CTL_DAEMON)
			return CTL_MANAGED;
		if (exclusive ? w != 0 : (w & CTL_EXCL) != 0)
			return CTL_BUSY;
		if (atomic_compare_exchange_weak_explicit(&p->lock, &w, w | ctl_bits(slot, exclusive),
		                                          memory_order_acquire,
		                                          memory_order_relaxed))
			return CTL_TAKEN;
		if (++races > CTL_RACES)
			return CTL_BUSY;
	}
}

/*
 * Drops slot's exclusive lock or its shared bit (one atomic and, wait-free) and wakes
 * sleepers. CTL_MANAGED when the daemon manages the locks: it keeps the lock as its own
 * until told, so the caller must also release it through the daemon.
 */
static inline enum ctl_try ctlpage_unlock(struct ctlpage *p, unsigned slot, int exclusive)
{
	/*
	 * Wait-free whatever a scribbler does to the word. When the daemon manages the locks our
	 * bits are its to drop too (it does, when our unlock request reaches it): clearing them
	 * first changes nothing it relies on.
	 */
	uint64_t old = atomic_fetch_and_explicit(&p->lock,
	                                         exclusive ? ~(CTL_EXCL | CTL_OWNER_MASK)
	                                                   : ~ctl_bits(slot, 0),
	                                         memory_order_seq_cst);

	ctlpage_wake(p);
	return old & CTL_DAEMON ? CTL_MANAGED : CTL_TAKEN;
}

/*
 * Sleeps until the word may have changed since wake_seen was read from p->wake (or the absolute
 * CLOCK_MONOTONIC deadline, NULL: none). Returns 0, -ETIMEDOUT or -EINTR.
 */
int ctlpage_sleep(struct ctlpage *p, uint32_t wake_seen, const struct timespec *deadline);

/*
 * The daemon's side. ctlpage_manage sets CTL_DAEMON and returns the word as it was (its holders
 * are now the daemon's to keep); ctlpage_unmanage clears it, leaving the holder bits; ctlpage_drop
 * clears slot's bits (exclusive or shared) whatever the mode. Each gives up after a bounded number
 * of lost races against a page that keeps changing: -EAGAIN, else 0.
 */
int ctlpage_manage(struct ctlpage *p, uint64_t *ret_word);
/* The region was deleted: every later try is CTL_MANAGED; sleepers wake. */
void ctlpage_retire(struct ctlpage *p);
int ctlpage_unmanage(struct ctlpage *p);
int ctlpage_drop(struct ctlpage *p, unsigned slot, int exclusive);

#endif
