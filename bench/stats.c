/* SPDX-License-Identifier: MIT */
/*
 * Timing for mmapd-bench (see stats.h). Samples are raw nanosecond durations, one per timed
 * operation; percentiles are taken by sorting, which is cheap next to the runs that produced
 * them and keeps the tail exact rather than bucketed.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "stats.h"

uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int samples_init(struct samples *s, size_t cap)
{
	s->ns = calloc(cap, sizeof(*s->ns));
	s->count = 0;
	s->cap = cap;
	return s->ns ? 0 : -ENOMEM;
}

void samples_done(struct samples *s)
{
	free(s->ns);
	s->ns = NULL;
	s->count = s->cap = 0;
}

void samples_add(struct samples *s, uint64_t ns)
{
	assert(s->count < s->cap);
	s->ns[s->count++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

uint64_t samples_percentile(struct samples *s, double q)
{
	size_t rank;

	assert(s->count > 0 && q > 0 && q <= 1);
	qsort(s->ns, s->count, sizeof(*s->ns), cmp_u64);
	rank = (size_t)ceil(q * (double)s->count);
	return s->ns[rank - 1];
}

void format_duration(char *buf, size_t size, uint64_t ns)
{
	double us = (double)ns / 1e3;

	if (ns < 1000)
		snprintf(buf, size, "%uns", (unsigned)ns);
	else if (us < 10)
		snprintf(buf, size, "%.2fus", us);
	else if (us < 1000)
		snprintf(buf, size, "%.1fus", us);
	else
		snprintf(buf, size, "%.2fms", us / 1e3);
}
