/* SPDX-License-Identifier: MIT */
/*
 * Where the benchmark's processes run. Left to the scheduler, a client and the process it
 * talks to land sometimes on one CPU and sometimes on two, and on a virtual machine a wake-up
 * across CPUs costs several times a wake-up on the same CPU; the mmapd side and its baseline
 * would then be measured under different placements. So the benchmark pins itself to one
 * CPU and its servers (mmapd, the baseline peers) to another ("split") or to the same one.
 */
#ifndef MMAPD_BENCH_CPU_H
#define MMAPD_BENCH_CPU_H

enum cpu_placement {
	CPU_SPLIT,  /* benchmark on one CPU, mmapd and the peers on another */
	CPU_SAME,   /* everything on one CPU */
	CPU_NONE,   /* no pinning: the scheduler decides */
};

struct cpu_plan {
	enum cpu_placement placement;
	int client;  /* CPU of the benchmark itself, -1 when not pinned */
	int server;  /* CPU of mmapd and the baseline peers, -1 when not pinned */
};

/*
 * Picks the CPUs for placement among those this process may run on (the first one, and for
 * CPU_SPLIT the second) and pins the calling process to plan->client. CPU_SPLIT on a single
 * CPU becomes CPU_SAME (ret_plan->placement says so). Returns 0 or -errno.
 */
int cpu_plan_apply(enum cpu_placement placement, struct cpu_plan *ret_plan);

/* Pins the calling process (in a child, before it execs or serves) to cpu; -1 does nothing. */
int cpu_pin(int cpu);

#endif
