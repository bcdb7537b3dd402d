/* SPDX-License-Identifier: MIT */
/*
 * Deadlines of libmmapd, on CLOCK_MONOTONIC, the clock of every client's condition variable:
 * the bottom of the client's layers, used by the reader (call.c), the reconnection's backoff
 * (reconnect.c) and mmapd_client_dispatch() (event.c).
 */
#include <time.h>

#include "internal.h"

void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Milliseconds until ts, rounded up; 0 once it has passed. */
int deadline_left_ms(const struct timespec *ts)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(ts->tv_sec - now.tv_sec) * 1000 +
	     (ts->tv_nsec - now.tv_nsec + 999999L) / 1000000L;
	if (ms <= 0)
		return 0;
	return ms > 1000000000LL ? 1000000000 : (int)ms;
}
