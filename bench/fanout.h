/* SPDX-License-Identifier: MIT */
/*
 * The fan-out baseline of the notification case: what delivering one small message to n
 * processes costs without mmapd. A relay process, in mmapd's place, waits in poll() + read()
 * for the benchmark's 8-byte timestamp and writes those same 8 bytes to each of n reader
 * processes on a socketpair of its own, one after the other, as the daemon writes one event
 * to each subscriber. Each reader, like a subscriber, waits in poll() + read() and answers
 * the benchmark on its peer socket with the delay from the timestamp to its read returning.
 * So the path has the same two hops per delivery (writer -> relay -> reader) and the same
 * serial fan-out to n processes as mmapd's, without JSON, framing or an event loop.
 */
#ifndef MMAPD_BENCH_FANOUT_H
#define MMAPD_BENCH_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.h"

#define FANOUT_MAX 1000

struct fanout {
	struct peer relay;
	struct peer readers[FANOUT_MAX];
	size_t n;                     /* readers started */
	bool relay_started;
};

/* Starts n readers and the relay, all pinned to cpu unless it is -1. Returns 0 or -errno. */
int fanout_start(struct fanout *f, size_t n, int cpu);
/*
 * Sends timestamp stamp to the relay and stores each reader's delay in delays[0..n).
 * Returns 0 or -errno.
 */
int fanout_round(struct fanout *f, uint64_t stamp, uint64_t *delays);
/* Stops the relay and the readers. Returns 0, or -EIO if one of them failed. */
int fanout_stop(struct fanout *f);

#endif
