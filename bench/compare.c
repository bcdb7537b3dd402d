/* SPDX-License-Identifier: MIT */
/*
 * Side-by-side measurement and the result lines (see compare.h). Every line has the same
 * shape, mmapd first, then its baseline, then mmapd/baseline, so a reader compares at a glance:
 *   <name>  mmapd p50 X p99 Y | <baseline> p50 X p99 Y | ratio p50 R p99 R
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "compare.h"

#define NAME_WIDTH  26
#define LABEL_WIDTH 10
#define VALUE_WIDTH 8

volatile sig_atomic_t compare_stop;

static int side_call(struct side *s, int timed)
{
	uint64_t t0 = clock_ns();
	int r = s->run(s->ctx);
	uint64_t t1 = clock_ns();

	if (r < 0) {
		fprintf(stderr, "mmapd-bench: %s: %s\n", s->label, strerror(-r));
		return r;
	}
	if (timed)
		samples_add(&s->samples, s->measured ? *s->measured : t1 - t0);
	return 0;
}

int compare_run(struct side *sides, size_t nsides, size_t warmup, size_t iters)
{
	size_t round, i;
	int r;

	for (i = 0; i < nsides; i++) {
		r = samples_init(&sides[i].samples, iters);
		if (r < 0)
			return r;
	}
	for (round = 0; round < warmup + iters; round++) {
		if (compare_stop)
			return -EINTR;
		for (i = 0; i < nsides; i++) {
			size_t k = round % 2 ? nsides - 1 - i : i;

			r = side_call(&sides[k], round >= warmup);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

void compare_done(struct side *sides, size_t nsides)
{
	size_t i;

	for (i = 0; i < nsides; i++)
		samples_done(&sides[i].samples);
}

static void print_line(const char *name, const char *label_a, const char *a50, const char *a99,
                       const char *label_b, const char *b50, const char *b99,
                       double r50, double r99)
{
	printf("%-*s %s p50 %*s p99 %*s | %-*s p50 %*s p99 %*s | ratio p50 %5.2f p99 %5.2f\n",
	       NAME_WIDTH, name, label_a, VALUE_WIDTH, a50, VALUE_WIDTH, a99,
	       LABEL_WIDTH, label_b, VALUE_WIDTH, b50, VALUE_WIDTH, b99, r50, r99);
	fflush(stdout);
}

void compare_print_latency(const char *name, struct side *a, struct side *b)
{
	uint64_t a50 = samples_percentile(&a->samples, 0.50);
	uint64_t a99 = samples_percentile(&a->samples, 0.99);
	uint64_t b50 = samples_percentile(&b->samples, 0.50);
	uint64_t b99 = samples_percentile(&b->samples, 0.99);
	char sa50[32], sa99[32], sb50[32], sb99[32];

	format_duration(sa50, sizeof(sa50), a50);
	format_duration(sa99, sizeof(sa99), a99);
	format_duration(sb50, sizeof(sb50), b50);
	format_duration(sb99, sizeof(sb99), b99);
	print_line(name, a->label, sa50, sa99, b->label, sb50, sb99,
	           (double)a50 / (double)b50, (double)a99 / (double)b99);
}

/* Bytes per nanosecond is GB/s. */
static double rate_gbs(uint64_t bytes, uint64_t ns)
{
	return (double)bytes / (double)ns;
}

void compare_print_bandwidth(const char *name, uint64_t bytes, struct side *a, struct side *b)
{
	double a50 = rate_gbs(bytes, samples_percentile(&a->samples, 0.50));
	double a99 = rate_gbs(bytes, samples_percentile(&a->samples, 0.99));
	double b50 = rate_gbs(bytes, samples_percentile(&b->samples, 0.50));
	double b99 = rate_gbs(bytes, samples_percentile(&b->samples, 0.99));
	char sa50[32], sa99[32], sb50[32], sb99[32];

	snprintf(sa50, sizeof(sa50), "%.2fGB/s", a50);
	snprintf(sa99, sizeof(sa99), "%.2fGB/s", a99);
	snprintf(sb50, sizeof(sb50), "%.2fGB/s", b50);
	snprintf(sb99, sizeof(sb99), "%.2fGB/s", b99);
	print_line(name, a->label, sa50, sa99, b->label, sb50, sb99, a50 / b50, a99 / b99);
}

/* A rate with a k/M suffix, like the durations: "812/s", "98.4k/s", "1.23M/s". */
static void format_rate(char *buf, size_t size, double per_s)
{
	if (per_s < 1e3)
		snprintf(buf, size, "%.0f/s", per_s);
	else if (per_s < 1e6)
		snprintf(buf, size, "%.1fk/s", per_s / 1e3);
	else
		snprintf(buf, size, "%.2fM/s", per_s / 1e6);
}

void compare_print_throughput(const char *name, double a, const char *label_b, double b,
                              const char *b_skipped)
{
	char sa[32], sb[32];

	format_rate(sa, sizeof(sa), a);
	if (b_skipped) {
		printf("%-*s mmapd %*s | %s skipped: %s\n", NAME_WIDTH, name, VALUE_WIDTH, sa,
		       label_b, b_skipped);
	} else {
		format_rate(sb, sizeof(sb), b);
		printf("%-*s mmapd %*s | %-*s %*s | ratio %5.2f\n", NAME_WIDTH, name, VALUE_WIDTH, sa,
		       LABEL_WIDTH, label_b, VALUE_WIDTH, sb, a / b);
	}
	fflush(stdout);
}
