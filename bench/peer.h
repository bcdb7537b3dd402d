/* SPDX-License-Identifier: MIT */
/*
 * The baselines' far end: a forked child process on one end of a socketpair, doing the least
 * a server could do for each request. It is a process, not a thread, because mmapd is one:
 * both sides of a comparison then pay for the same cross-process wake-ups.
 */
#ifndef MMAPD_BENCH_PEER_H
#define MMAPD_BENCH_PEER_H

#include <stddef.h>
#include <sys/types.h>

struct peer {
	pid_t pid;
	int sock;  /* our end of the socketpair */
};

/*
 * Forks a peer, pinned to cpu unless that is -1 (then it runs where the benchmark does), that
 * runs serve(its end of the socketpair, arg) and exits with status 0 when serve returns (serve
 * may _exit(1) on failure). arg is only read in the child. Returns 0 or -errno.
 */
int peer_start(struct peer *p, int cpu, void (*serve)(int sock, const void *arg), const void *arg);

/*
 * Starts a peer, pinned to cpu unless that is -1, that echoes every msg_len-byte message
 * back. Returns 0 or -errno.
 */
int peer_start_echo(struct peer *p, size_t msg_len, int cpu);

/*
 * Starts a peer, pinned to cpu unless that is -1, that for every byte it receives opens name
 * beneath dirfd read-only and sends the new descriptor back with SCM_RIGHTS on a 1-byte
 * message, then closes its copy. dirfd is borrowed. Returns 0 or -errno.
 */
int peer_start_fd_server(struct peer *p, int dirfd, const char *name, int cpu);

/*
 * Starts a peer, pinned to cpu unless that is -1, that waits in poll() and read() for 8-byte
 * messages, each a clock_ns() timestamp taken by the sender, and answers each with the 8-byte
 * delay from that timestamp to its read returning: a raw one-way Unix-socket hop.
 */
int peer_start_hop(struct peer *p, int cpu);

/*
 * Closes our end, which ends the peer, and reaps it. Returns 0 if it exited cleanly, -EIO
 * (said on stderr) if it failed.
 */
int peer_stop(struct peer *p);

#endif
