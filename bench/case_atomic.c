/* SPDX-License-Identifier: MIT */
/*
 * Case (g): cross-process atomics. A 64-bit counter in a region mapped through mmapd is an
 * ordinary word of shared memory, so atomic_fetch_add on it from several processes should cost
 * what the same loop costs on a private counter shared by threads of one process: the cache
 * line bounces between the CPUs either way, and the daemon is not on the path.
 *   mmapd    ATOMIC_WORKERS processes, each with its own mmapd connection and read-write
 *            mapping of one region, doing ATOMIC_INCS fetch_adds on the counter
 *            (mmapd_region_atomic_u64);
 *   threads  ATOMIC_WORKERS threads of the benchmark doing the same on a private counter.
 * Workers alternate between the benchmark's CPU and the peers' CPU (both sides alike). A round
 * is timed from releasing the workers, which wait at a start line until then (processes
 * connect and map before it), to the last one finishing its loop (each stores the time; exits
 * and joins are not counted); the counter must then hold exactly ATOMIC_WORKERS * ATOMIC_INCS.
 * The line gives increments per second of the median round.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "cpu.h"
#include "region.h"

#define REGION "bench-atomic"
#define ATOMIC_WORKERS 4
#define ATOMIC_INCS 4000000u

/* Offsets of the words in the region, a cache line apart (the end times share one). */
#define OFF_COUNTER 0
#define OFF_READY   64
#define OFF_GO      128
#define OFF_ENDS    192

/* The words a round uses: in the region (processes) or in the benchmark (threads). */
struct words {
	_Atomic uint64_t *counter, *ready, *go;
	_Atomic uint64_t *ends;   /* ATOMIC_WORKERS: when each worker finished counting */
};

struct atomic_ctx {
	const struct bench_opts *o;
	int cpus[2];              /* where workers i % 2 run */
	struct words w;           /* the benchmark's view of them */
	uint64_t measured;        /* of the last round */
};

/* Worker i's loop: ready, wait for go, count, note the time. */
static void worker_count(const struct words *w, int i)
{
	atomic_fetch_add(w->ready, 1);
	while (!atomic_load(w->go))
		sched_yield();
	for (unsigned k = 0; k < ATOMIC_INCS; k++)
		atomic_fetch_add_explicit(w->counter, 1, memory_order_relaxed);
	atomic_store(&w->ends[i], clock_ns());
}

/* Waits until n workers are at the start line, then releases them. Returns the start time. */
static uint64_t release_workers(const struct words *w, uint64_t n)
{
	uint64_t t0;

	while (atomic_load(w->ready) < n)
		sched_yield();
	t0 = clock_ns();
	atomic_store(w->go, 1);
	return t0;
}

static void words_reset(const struct words *w)
{
	atomic_store(w->counter, 0);
	atomic_store(w->ready, 0);
	atomic_store(w->go, 0);
	for (int i = 0; i < ATOMIC_WORKERS; i++)
		atomic_store(&w->ends[i], 0);
}

/* From t0 to the last worker's end (the workers are done). */
static uint64_t words_elapsed(const struct words *w, uint64_t t0)
{
	uint64_t last = t0;

	for (int i = 0; i < ATOMIC_WORKERS; i++)
		if (atomic_load(&w->ends[i]) > last)
			last = atomic_load(&w->ends[i]);
	return last - t0;
}

/* Checks the count of a round. Returns 0 or -EIO (said on stderr). */
static int check_count(const struct words *w, const char *side)
{
	uint64_t got = atomic_load(w->counter);

	if (got == (uint64_t)ATOMIC_WORKERS * ATOMIC_INCS)
		return 0;
	fprintf(stderr, "mmapd-bench: %s counted %llu increments instead of %llu\n", side,
	        (unsigned long long)got, (unsigned long long)ATOMIC_WORKERS * ATOMIC_INCS);
	return -EIO;
}

/* A worker process: its own connection and mapping, then the loop. Exits 0 or 1. */
static void process_worker(const struct atomic_ctx *c, int i)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct words w;

	if (cpu_pin(c->cpus[i % 2]) < 0 || mmapd_connect(c->o->socket, "bench-atomic", &client) < 0)
		_exit(1);
	if (mmapd_region_open(client, REGION, &opts, &region) < 0 ||
	    mmapd_region_atomic_u64(region, OFF_COUNTER, &w.counter) < 0 ||
	    mmapd_region_atomic_u64(region, OFF_READY, &w.ready) < 0 ||
	    mmapd_region_atomic_u64(region, OFF_GO, &w.go) < 0 ||
	    mmapd_region_atomic_u64_slice(region, OFF_ENDS, ATOMIC_WORKERS, &w.ends) < 0) {
		fprintf(stderr, "mmapd-bench: atomic worker: %s\n", mmapd_last_message());
		_exit(1);
	}
	worker_count(&w, i);
	mmapd_region_close(region);
	mmapd_disconnect(client);
	_exit(0);
}

static int run_processes(void *arg)
{
	struct atomic_ctx *c = arg;
	pid_t pids[ATOMIC_WORKERS];
	int i, n = 0, r = 0, status;
	uint64_t t0 = 0;

	words_reset(&c->w);
	fflush(NULL);
	for (i = 0; i < ATOMIC_WORKERS; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			process_worker(c, i);
		if (pids[i] < 0) {
			r = -errno;
			/* Those started wait for go: let them run and reap them. */
			atomic_store(c->w.go, 1);
			break;
		}
		n++;
	}
	if (r == 0)
		t0 = release_workers(&c->w, ATOMIC_WORKERS);
	for (i = 0; i < n; i++) {
		if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			r = r < 0 ? r : -EIO;
	}
	c->measured = words_elapsed(&c->w, t0);
	if (r < 0)
		fprintf(stderr, "mmapd-bench: an atomic worker process failed\n");
	return r < 0 ? r : check_count(&c->w, "processes");
}

struct thread_arg {
	const struct words *w;
	int i;
	int cpu;
};

static void *thread_worker(void *arg)
{
	const struct thread_arg *t = arg;

	cpu_pin(t->cpu);
	worker_count(t->w, t->i);
	return NULL;
}

static int run_threads(void *arg)
{
	struct atomic_ctx *c = arg;
	static alignas(64) _Atomic uint64_t private[4 * 8];
	struct words w = { &private[0], &private[8], &private[16], &private[24] };
	struct thread_arg args[ATOMIC_WORKERS];
	pthread_t threads[ATOMIC_WORKERS];
	int i, n = 0, r = 0;
	uint64_t t0 = 0;

	words_reset(&w);
	for (i = 0; i < ATOMIC_WORKERS; i++) {
		args[i] = (struct thread_arg){ .w = &w, .i = i, .cpu = c->cpus[i % 2] };
		r = -pthread_create(&threads[i], NULL, thread_worker, &args[i]);
		if (r < 0) {
			atomic_store(w.go, 1);
			break;
		}
		n++;
	}
	if (r == 0)
		t0 = release_workers(&w, ATOMIC_WORKERS);
	for (i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	c->measured = words_elapsed(&w, t0);
	return r < 0 ? r : check_count(&w, "threads");
}

/* Increments per second of the median round. */
static double median_rate(struct side *s)
{
	return (double)ATOMIC_WORKERS * ATOMIC_INCS * 1e9 /
	       (double)samples_percentile(&s->samples, 0.50);
}

int case_atomic(struct mmapd_client *client, const struct bench_opts *o)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL | MMAPD_OPEN_ANONYMOUS,
		.mode = MMAPD_MODE_RW, .size = 4096);
	struct atomic_ctx procs = { .o = o }, threads = { .o = o };
	struct side sides[] = {
		{ .label = "mmapd", .run = run_processes, .ctx = &procs, .measured = &procs.measured },
		{ .label = "threads", .run = run_threads, .ctx = &threads,
		  .measured = &threads.measured },
	};
	struct mmapd_region *region;
	char name[64];
	int r;

	r = bench_region_open(client, REGION, &opts, &region);
	if (r < 0)
		return r;
	if (mmapd_region_atomic_u64(region, OFF_COUNTER, &procs.w.counter) < 0 ||
	    mmapd_region_atomic_u64(region, OFF_READY, &procs.w.ready) < 0 ||
	    mmapd_region_atomic_u64(region, OFF_GO, &procs.w.go) < 0 ||
	    mmapd_region_atomic_u64_slice(region, OFF_ENDS, ATOMIC_WORKERS, &procs.w.ends) < 0) {
		fprintf(stderr, "mmapd-bench: atomic view: %s\n", mmapd_last_message());
		r = -EIO;
		goto out;
	}
	/* Half the workers where the benchmark runs, half where the peers do. */
	procs.cpus[0] = threads.cpus[0] = o->peer_cpu < 0 ? -1 : sched_getcpu();
	procs.cpus[1] = threads.cpus[1] = o->peer_cpu;

	r = compare_run(sides, 2, 1, o->big_reps);
	if (r == 0) {
		snprintf(name, sizeof(name), "atomic inc, %d workers", ATOMIC_WORKERS);
		compare_print_throughput(name, median_rate(&sides[0]), "threads",
		                         median_rate(&sides[1]), NULL);
	}
	compare_done(sides, 2);
out:
	mmapd_region_close(region);
	mmapd_delete(client, REGION);
	return r;
}
