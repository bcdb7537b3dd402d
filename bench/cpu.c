/* SPDX-License-Identifier: MIT */
/*
 * Pinning of the benchmark and its servers (see cpu.h). Affinity is set with
 * sched_setaffinity on the calling process: children inherit it, and mmapd's threads (libuv's
 * pool included) inherit it from the process that execs mmapd.
 */
#include <errno.h>
#include <sched.h>

#include "cpu.h"

int cpu_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

int cpu_plan_apply(enum cpu_placement placement, struct cpu_plan *ret_plan)
{
	cpu_set_t allowed;
	int cpu, first = -1, second = -1;

	ret_plan->placement = placement;
	ret_plan->client = ret_plan->server = -1;
	if (placement == CPU_NONE)
		return 0;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return -errno;
	for (cpu = 0; cpu < CPU_SETSIZE && second < 0; cpu++) {
		if (!CPU_ISSET(cpu, &allowed))
			continue;
		if (first < 0)
			first = cpu;
		else
			second = cpu;
	}
	if (second < 0)
		ret_plan->placement = CPU_SAME;
	ret_plan->client = first;
	ret_plan->server = ret_plan->placement == CPU_SPLIT ? second : first;
	return cpu_pin(first);
}
