/* SPDX-License-Identifier: MIT */
/*
 * The floor of a request path: the least any server on a Unix stream socket can do per
 * request. A peer process (peer.h), pinned like mmapd, listens on a socket of its own and
 * serves every connection from one level-triggered epoll loop with one read() and one write()
 * per readiness event: no parsing, no framing, no allocation, a fixed reply for every whole
 * request read. What it costs per request (its CPU time from /proc) is what the kernel costs,
 * which mmapd's and redis's figures are set against in the same run.
 */
#ifndef MMAPD_BENCH_FLOOR_H
#define MMAPD_BENCH_FLOOR_H

#include <stddef.h>
#include <stdint.h>

#include "peer.h"

#define FLOOR_MSG_MAX 256

struct floor_args {
	char path[108];                  /* the socket to listen on (sun_path) */
	size_t req_len;                  /* bytes of one request */
	uint8_t reply[FLOOR_MSG_MAX];    /* what each request is answered with */
	size_t reply_len;
};

/*
 * Starts the server on a->path, pinned to cpu unless -1, and waits until it listens. It ends
 * when p's socket closes (peer_stop). Returns 0 or -errno.
 */
int floor_start(struct peer *p, const struct floor_args *a, int cpu);

#endif
