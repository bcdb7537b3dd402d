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

#endif
