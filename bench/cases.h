/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's cases. Each measures one mmapd path next to its baselines in the same run
 * (compare.h) and prints one result line per comparison; each returns 0, or -errno after
 * saying on stderr what failed.
 */
#ifndef MMAPD_BENCH_CASES_H
#define MMAPD_BENCH_CASES_H

#include <stddef.h>
#include <sys/types.h>

#include "mmapd.h"

struct bench_opts {
	size_t iters;     /* timed rounds of each latency case */
	size_t warmup;    /* untimed rounds before them */
	size_t bw_reps;   /* timed copies of the bandwidth cases (2 more warm them up) */
	size_t big_reps;  /* timed rounds of the atomics and first-touch cases (1 more warms up) */
	int peer_cpu;     /* where the baseline peers run (-1: anywhere), as mmapd does */
	size_t tput_ms;   /* length of the throughput window */
	size_t redis_requests;  /* redis-benchmark -n */
	const char *socket;     /* mmapd's socket, for the cases' own client processes */
	const char *dir;        /* the benchmark's temporary directory */
	pid_t daemon_pid;       /* the mmapd measured, for its CPU time */
};

/* Size of the region of case_open_touch(), and of the bandwidth case's copies. */
#define BENCH_SMALL_REGION (64u << 10)
#define BENCH_BW_REGION    (64u << 20)
/* Message size of the raw socket ping-pong. */
#define BENCH_PING_BYTES   64u

/*
 * (a) open + map + touch one byte per page + unmap + close of an existing 64 KiB region:
 * through mmapd, directly from the data directory, and with the descriptor passed bare over
 * SCM_RIGHTS by a peer process. Two lines: mmapd against each baseline.
 */
int case_open_touch(struct mmapd_client *client, const char *data_dir,
                    const struct bench_opts *o);

/*
 * (b) one no-op request (mmapd_ping) against a raw 64-byte ping-pong with a peer process, and
 * in the same rounds (d) an uncontended exclusive lock + unlock (two requests) against two
 * such ping-pongs.
 */
int case_ping(struct mmapd_client *client, const struct bench_opts *o);

/*
 * (l) whole-region locks on the control page: 1000 uncontended lock+unlock pairs against a
 * futex mutex in shared memory, and the hand-off to a process blocked in lock against the
 * same hand-off of the futex mutex.
 */
int case_lock(struct mmapd_client *client, const struct bench_opts *o);

/*
 * (c) memcpy of 64 MiB into a region mapped read-write through mmapd, against the same copy
 * into a direct shared mapping of a file of the same size in the same directory.
 */
int case_memcpy(struct mmapd_client *client, const char *data_dir, const struct bench_opts *o);

/*
 * (e) change notification: a timestamp written into a shared region + mmapd_report_changed(), until
 * delivery to 1, 10 and 100 subscriber processes, against a raw one-way socket hop.
 */
int case_notify(struct mmapd_client *client, const struct bench_opts *o);
/*
 * Timed rounds of case_notify() for n subscribers: iters up to 5 subscribers, then fewer so
 * that every count takes about as long (5 * iters deliveries: 1000 rounds of 100 by default),
 * at least 20.
 */
size_t notify_rounds(size_t n, size_t iters);

/* (f) mmapd_ping() throughput of 50 client processes against redis-benchmark's PING. */
int case_throughput(const struct bench_opts *o);

/*
 * (g) atomic increments per second of one 64-bit counter in a region, by 4 processes each
 * mapping it through mmapd, against 4 threads of one process on a private counter.
 */
int case_atomic(struct mmapd_client *client, const struct bench_opts *o);

/*
 * (h) reading one byte per page of a fresh 256 MiB anonymous region: opened plain, with
 * MMAPD_OPEN_POPULATE, and after mmapd_region_prewarm() (its cost included, and not).
 */
int case_prewarm(struct mmapd_client *client, const struct bench_opts *o);

/*
 * (s) a durable flush of 4 KiB while 32 MiB of the region are dirty: mmapd's range flush
 * against its whole-file flush, and each against the same flush done in the process (msync of
 * the range, fdatasync).
 */
int case_flush(struct mmapd_client *client, const struct bench_opts *o);

/*
 * (i) copying a 64 MiB mapping out through mmapd_region_read(), mmapd_region_foreach_page()
 * and mmapd_region_foreach_chunk(), against plain memcpy over the same mapping.
 */
int case_iterate(struct mmapd_client *client, const struct bench_opts *o);

/*
 * (j) the ping of one client while another process queues 4096 lock waiters (4 connections of
 * 1024) behind an exclusive lock, and while those connections close, against the ping with no
 * waiters; and how long queuing and releasing took.
 */
int case_stall(struct mmapd_client *client, const struct bench_opts *o);

/*
 * (k) a list page of 100 entries and a status with 20,000 files in the data directory, next
 * to a ping; and the ping of one client while another process floods list (pages of 10) and
 * status from 4 connections (32 requests pipelined on each), against the ping with no flood.
 */
int case_list(struct mmapd_client *client, const char *data_dir, const struct bench_opts *o);
/*
 * (p) persistent vector and hash map operations per second, crash-safe, not journalled
 * (set through at()), and durable, against a private in-memory array or table.
 */
int case_persist(struct mmapd_client *client, const struct bench_opts *o);

/*
 * (r) 64-byte messages through a ring to a reader process (plain write/read, and put/flush
 * batches read with mmapd_ring_read_some()) against a pipe, a socketpair and a bare
 * shared-memory ring, and 4 KiB messages against memcpy and the bare ring.
 */
int case_ring(struct mmapd_client *client, const struct bench_opts *o);

/*
 * (x) changes made outside mmapd: the delay until an external subscriber hears of a write(2),
 * a truncate and a store through a mapping by a process that is no client, against this
 * process's own inotify wake-up (the store: against the poll interval); and the daemon's CPU
 * per watched file and second with 100 and 1000 idle watches, against the fstat floor.
 */
int case_extwatch(struct mmapd_client *client, const struct bench_opts *o);

/*
 * (m) the daemon's resident memory per idle client at 5,000 and 10,000 clients, and what it
 * keeps after they leave, against redis-server with the same clients.
 */
int case_memory(const struct bench_opts *o);

#endif
