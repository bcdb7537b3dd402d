/* SPDX-License-Identifier: MIT */
/*
 * Timing for mmapd-bench: a monotonic nanosecond clock, a fixed-capacity array of samples,
 * nearest-rank percentiles over it, and the formatting of durations that every
 * result line uses.
 */
#ifndef MMAPD_BENCH_STATS_H
#define MMAPD_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

struct samples {
	uint64_t *ns;
	size_t count;
	size_t cap;
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t clock_ns(void);

/* Makes room for cap samples. Returns 0 or -ENOMEM. */
int samples_init(struct samples *s, size_t cap);
/* Frees the array. Accepts a zeroed struct. */
void samples_done(struct samples *s);
/* Records one duration; the caller never adds more than cap. */
void samples_add(struct samples *s, uint64_t ns);
/*
 * The nearest-rank q-quantile (0 < q <= 1) of the recorded durations: the smallest sample
 * that at least q of all samples do not exceed. Sorts the samples in place; needs count > 0.
 */
uint64_t samples_percentile(struct samples *s, double q);

/* Writes a duration with its unit ("812ns", "9.84us", "41.2us", "3.10ms") into buf. */
void format_duration(char *buf, size_t size, uint64_t ns);

#endif
