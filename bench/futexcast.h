/* SPDX-License-Identifier: MIT */
/*
 * The floor of the notification case's page lines: the wake-up of the same threads in the same
 * processes as the page subscribers, without libmmapd or mmapd. Each thread does what
 * mmapd_region_wait_changed() does: it polls a sequence word in a shared anonymous page
 * (FUTEXCAST_POLLS looks, sched_yield() between them, as the library's spin), then counts itself
 * a sleeper and sleeps in FUTEX_WAIT on a wake word. The benchmark, in the writer's place,
 * stores a timestamp, bumps the sequence word and, when someone sleeps, the wake word and makes
 * one FUTEX_WAKE of all, as publishing in a change log does. Each thread answers on its
 * process's socket with the delay from the timestamp to its seeing the new sequence, as a page
 * subscriber does. So what separates mmapd's page line from this one is libmmapd's part, and
 * what separates this one from the relay is what one futex broadcast saves over n socket hops:
 * the rest is the scheduler running n threads on one CPU.
 */
#ifndef MMAPD_BENCH_FUTEXCAST_H
#define MMAPD_BENCH_FUTEXCAST_H

#include <stddef.h>
#include <stdint.h>

#include "peer.h"

#define FUTEXCAST_PROCS_MAX 64
#define FUTEXCAST_THREADS_MAX 1000

struct futexcast_shm;

struct futexcast {
	struct peer procs[FUTEXCAST_PROCS_MAX];
	size_t nprocs;                /* started */
	size_t per_proc;              /* threads in each */
	struct futexcast_shm *shm;
};

/*
 * Starts nprocs processes of per_proc threads each (at most FUTEXCAST_THREADS_MAX in all),
 * pinned to cpu unless it is -1, and waits until every thread waits. Returns 0 or -errno.
 */
int futexcast_start(struct futexcast *f, size_t nprocs, size_t per_proc, int cpu);
/*
 * Wakes every thread with timestamp stamp and stores their delays in delays[0..nprocs *
 * per_proc). Returns 0 or -errno.
 */
int futexcast_round(struct futexcast *f, uint64_t stamp, uint64_t *delays);
/* Stops the processes. Returns 0, or -EIO if one of them failed. */
int futexcast_stop(struct futexcast *f);

#endif
