/* SPDX-License-Identifier: MIT */
/*
 * Private kit of libmmapd's toolbox (ring/: the rings; persist/: the persistent structures):
 * what both parts need that mmapd.h offers only in a longer form. The toolbox is compiled with
 * nothing but the public headers and this folder on its include path, so, like any other
 * client of the library, it cannot reach the core's plumbing (client/internal.h, proto/,
 * shared/). Nothing here is exported.
 *   toolbox.c  failure sentences, deadlines, window ranges;
 *   pidlive.c  whether a process recorded in shared memory still runs (pidlive.h).
 */
#ifndef MMAPD_TOOLBOX_H
#define MMAPD_TOOLBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "mmapd.h"

/*
 * Records err and a formatted sentence for mmapd_last_message() of the calling thread
 * (mmapd_set_last_message()) and returns err, so callers can write
 * `return tbx_error(-EINVAL, "...", ...)`.
 */
int tbx_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling thread's last failure sentence, kept across clean-up that may fail in turn. */
struct tbx_saved {
	char *message;   /* NULL when out of memory: the restore then leaves the errno's name */
};

/*
 * Copies the calling thread's last failure sentence. tbx_message_restore() records it again
 * as err's (when err < 0; nothing is recorded otherwise) and frees the copy.
 */
void tbx_message_save(struct tbx_saved *ret_saved);
void tbx_message_restore(struct tbx_saved *saved, int err);

/* Sets *ts to ms milliseconds from now on CLOCK_MONOTONIC (the futex deadlines' clock). */
void tbx_deadline_after(struct timespec *ts, int ms);

/*
 * Whether the first bytes bytes of region's window may be touched: within the window and
 * not cut off by a shrink (mmapd_region_read()'s range check, asked about no bytes at
 * offset bytes; the failure sentence it records is left to the caller to replace).
 */
bool tbx_region_covers(const struct mmapd_region *region, uint64_t bytes);

#endif
