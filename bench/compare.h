/* SPDX-License-Identifier: MIT */
/*
 * Side-by-side measurement: a comparison runs an mmapd operation and its baselines in the
 * same rounds, each round calling every side once, in forward order on even rounds and in
 * reverse on odd ones. On a small shared machine, noise (another tenant, a frequency change,
 * writeback) then lands on all sides alike instead of on whichever ran during it, and no side
 * always runs right after another. Each call is timed on its own.
 */
#ifndef MMAPD_BENCH_COMPARE_H
#define MMAPD_BENCH_COMPARE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct side {
	const char *label;       /* shown in the result line: "mmapd", "direct", ... */
	int (*run)(void *ctx);   /* one operation; returns 0 or -errno (and says why on stderr) */
	void *ctx;
	/*
	 * NULL: compare_run() records how long each run() took. Otherwise run() measures its own
	 * latency (a delay seen by another process, such as a notification's delivery) and stores
	 * it here, and that is what is recorded.
	 */
	const uint64_t *measured;
	struct samples samples;  /* filled by compare_run(), freed by compare_done() */
};

/*
 * Set by a signal handler to stop the benchmark: compare_run() then returns -EINTR at the
 * next round, so the caller still stops mmapd and removes its files.
 */
extern volatile sig_atomic_t compare_stop;

/*
 * Runs warmup untimed rounds, then iters timed rounds, over the nsides sides. Returns 0, or
 * the first failure of a side (-errno, after naming the side on stderr), -EINTR when
 * compare_stop was set, or -ENOMEM.
 */
int compare_run(struct side *sides, size_t nsides, size_t warmup, size_t iters);
/* Frees what compare_run() recorded. */
void compare_done(struct side *sides, size_t nsides);

/* Prints one latency line: p50 and p99 of a and of b, and the ratios a/b. */
void compare_print_latency(const char *name, struct side *a, struct side *b);
/*
 * Prints one bandwidth line for sides that each move bytes per call, in GB/s (10^9 bytes/s).
 * "p50" is the median call's rate and "p99" the rate of the 99th-percentile (slow) call, so
 * both read as "at least this fast for 50% / 99% of the calls".
 */
void compare_print_bandwidth(const char *name, uint64_t bytes, struct side *a, struct side *b);

/*
 * Prints one throughput line, in requests per second: mmapd's rate a, then label_b's rate b
 * and the ratio a/b; or, when b_skipped is not NULL, label_b and why it was skipped instead.
 */
void compare_print_throughput(const char *name, double a, const char *label_b, double b,
                              const char *b_skipped);

#endif
