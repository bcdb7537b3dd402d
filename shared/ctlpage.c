/* SPDX-License-Identifier: MIT */
/*
 * The control page's lock word (see ctlpage.h): the futex sleep and wake, and the daemon's
 * take-over and hand-back (the fast path's compare-and-swaps are inline in ctlpage.h).
 */
#include "ctlpage.h"

#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void ctlpage_format(struct ctlpage *p)
{
	p->version = CTLPAGE_VERSION;
	p->size = CTLPAGE_SIZE;
	p->nslots = CTLPAGE_SLOTS;
	atomic_store_explicit(&p->lock, 0, memory_order_relaxed);
	__atomic_store_n(&p->magic, CTLPAGE_MAGIC, __ATOMIC_RELEASE);
}

int ctlpage_check(const struct ctlpage *p)
{
	if (__atomic_load_n(&p->magic, __ATOMIC_ACQUIRE) != CTLPAGE_MAGIC ||
	    p->version != CTLPAGE_VERSION || p->size != CTLPAGE_SIZE ||
	    p->nslots != CTLPAGE_SLOTS)
		return -EPROTO;
	return 0;
}

int ctlpage_sleep(struct ctlpage *p, uint32_t wake_seen, const struct timespec *deadline)
{
	long r;

	/* seq_cst, as the releaser's update and its load of sleepers: either it sees us here, or
	 * we see its new wake value and do not sleep. */
	atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
	/* Absolute CLOCK_MONOTONIC deadline: FUTEX_WAIT_BITSET. Shared between processes. */
	r = syscall(SYS_futex, &p->wake, FUTEX_WAIT_BITSET, wake_seen, deadline, NULL,
	            FUTEX_BITSET_MATCH_ANY);
	atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
	if (r < 0 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	if (r < 0 && errno == EINTR)
		return -EINTR;
	return 0;
}

void ctlpage_wake_sleepers(struct ctlpage *p)
{
	atomic_fetch_add_explicit(&p->wake, 1, memory_order_release);
	syscall(SYS_futex, &p->wake, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

/* Sets and clears bits of the word with a bounded number of compare-and-swaps. */
static int ctl_update(struct ctlpage *p, uint64_t set, uint64_t clear, uint64_t *ret_old)
{
	uint64_t w = atomic_load_explicit(&p->lock, memory_order_relaxed);
	int races;

	for (races = 0; races < CTL_RACES; races++) {
		if (atomic_compare_exchange_weak_explicit(&p->lock, &w, (w | set) & ~clear,
		                                          memory_order_seq_cst,
		                                          memory_order_relaxed)) {
			if (ret_old)
				*ret_old = w;
			ctlpage_wake(p);
			return 0;
		}
	}
	return -EAGAIN;
}

void ctlpage_retire(struct ctlpage *p)
{
	atomic_store_explicit(&p->retired, 1, memory_order_seq_cst);
	ctlpage_wake(p);
}

int ctlpage_manage(struct ctlpage *p, uint64_t *ret_word)
{
	return ctl_update(p, CTL_DAEMON, 0, ret_word);
}

int ctlpage_unmanage(struct ctlpage *p)
{
	return ctl_update(p, 0, CTL_DAEMON, NULL);
}

int ctlpage_drop(struct ctlpage *p, unsigned slot, int exclusive)
{
	uint64_t w = atomic_load_explicit(&p->lock, memory_order_relaxed);
	int races;

	if (!exclusive)
		return ctl_update(p, 0, ctl_bits(slot, 0), NULL);
	/* Only while slot is the owner: another slot's lock stays. */
	for (races = 0; races < CTL_RACES; races++) {
		if (!(w & CTL_EXCL) || ((w & CTL_OWNER_MASK) >> CTL_OWNER_SHIFT) != slot)
			return 0;
		if (atomic_compare_exchange_weak_explicit(&p->lock, &w,
		                                          w & ~(CTL_EXCL | CTL_OWNER_MASK),
		                                          memory_order_seq_cst,
		                                          memory_order_relaxed)) {
			ctlpage_wake(p);
			return 0;
		}
	}
	return -EAGAIN;
}
