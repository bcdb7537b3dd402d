/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's other processes, seen from outside: starting a program (a private
 * redis-server, an mmapd with a configuration of its own) pinned to a CPU, waiting until it
 * listens on its Unix socket, stopping it, and reading what it spends from /proc: CPU time
 * (utime + stime of /proc/PID/stat), resident memory (VmRSS of /proc/PID/status) and open
 * descriptors (/proc/PID/fd).
 */
#ifndef MMAPD_BENCH_PROC_H
#define MMAPD_BENCH_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Whether prog is an executable file in one of $PATH's directories. */
int proc_in_path(const char *prog);

/*
 * Forks and execs argv (searched in $PATH), in a process group of its own, pinned to cpu
 * unless -1, with stdout to out_fd (/dev/null if -1) and stderr to /dev/null. Returns the
 * pid or -errno.
 */
pid_t proc_spawn(char *const argv[], int cpu, int out_fd);

/* Waits up to timeout_ms until something accepts on Unix socket path: 0, -ECHILD, -ETIMEDOUT. */
int proc_wait_listening(const char *path, pid_t pid, int timeout_ms);

/* Stops pid with SIGTERM and reaps it. */
void proc_stop(pid_t pid);

/* CPU time pid has used, user and system, all its threads: 0 with *ret_ns, or -errno. */
int proc_cpu_ns(pid_t pid, uint64_t *ret_ns);
/* Resident memory of pid (VmRSS): 0 with *ret_kib, or -errno. */
int proc_rss_kib(pid_t pid, uint64_t *ret_kib);
/* How many descriptors pid has open, or -errno. */
int proc_fd_count(pid_t pid);

#endif
