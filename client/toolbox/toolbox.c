/* SPDX-License-Identifier: MIT */
/*
 * The toolbox's kit (toolbox.h): its failure sentences go through mmapd_set_last_message(),
 * the public call any library built on libmmapd uses to report through mmapd_last_message().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolbox.h"

int tbx_error(int err, const char *fmt, ...)
{
	char *msg;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	/* Without the sentence (out of memory) the errno's name stands in for it. */
	mmapd_set_last_message(err, "%s", msg ? msg : mmapd_strerror(err));
	free(msg);
	return err;
}

void tbx_message_save(struct tbx_saved *ret_saved)
{
	ret_saved->message = strdup(mmapd_last_message());
}

void tbx_message_restore(struct tbx_saved *saved, int err)
{
	if (err < 0)
		mmapd_set_last_message(err, "%s", saved->message ? saved->message :
		                                                 mmapd_strerror(err));
	free(saved->message);
	saved->message = NULL;
}

void tbx_deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

bool tbx_region_covers(const struct mmapd_region *region, uint64_t bytes)
{
	char none;

	return mmapd_region_read(region, bytes, &none, 0) == 0;
}
