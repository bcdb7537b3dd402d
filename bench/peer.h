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
 * Closes our end, which ends the peer, and reaps it. Returns 0 if it exited cleanly, -EIO
 * (said on stderr) if it failed.
 */
int peer_stop(struct peer *p);

#endif
