/* SPDX-License-Identifier: MIT */
/*
 * Tuning constants of libmmapd: limits the library chooses for itself, not part of the API.
 * They were public macros in mmapd.h once, which froze them into every caller; here they can
 * change in any release. internal.h includes this; tests that probe a limit include it too.
 */
#ifndef MMAPD_CLIENT_TUNING_H
#define MMAPD_CLIENT_TUNING_H

/* mmapd_region_msync() batches ranges shorter than a page until this many of them, or until
 * they span this many bytes, and then flushes the batch with one msync(). */
#define MMAPD_FLUSH_BATCH_MAX   64
#define MMAPD_FLUSH_BATCH_BYTES 65536

/* Guards (mmapd_guard_begin()) one thread may nest; the next one fails with -EBUSY. */
#define MMAPD_GUARD_DEPTH 8

/*
 * A whole-region lock that is busy on the control page is waited for there (spinning
 * MMAPD_FAST_SPIN times, then asleep on the page's futex) for at most MMAPD_FAST_WAIT_US;
 * then it is asked of the daemon, which queues it fairly and detects deadlocks.
 */
#define MMAPD_FAST_SPIN    200
#define MMAPD_FAST_WAIT_US 1000

/*
 * Releases (quiet closes, which the daemon answers only when they fail) this many at most may
 * wait unsettled among the calls in flight; then each release first reads what has come, and
 * asks for a reply while they still wait: the first such reply read settles them all, so that
 * closing thousands of regions in a row (no other call reads meanwhile) keeps a short list.
 */
#define MMAPD_QUIET_MAX 64

#endif
