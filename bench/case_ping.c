/* SPDX-License-Identifier: MIT */
/*
 * Case (b): the price of one request. mmapd_ping() is a full protocol round trip with nothing
 * to do: the library encodes a JSON request and frames it, the daemon's event loop wakes,
 * parses, dispatches and encodes a reply, and the library parses that. The baseline is the
 * floor under any such exchange: 64 bytes to a peer process and the same 64 bytes back.
 * Case (d) rides along in the same rounds: an uncontended exclusive mmapd_lock() on a whole
 * region and its mmapd_unlock(), two requests, against two such ping-pongs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cases.h"
#include "compare.h"
#include "peer.h"
#include "region.h"

#define LOCK_REGION "bench-lock"

struct ping_ctx {
	struct mmapd_client *client;
	int sock;
	uint8_t buf[BENCH_PING_BYTES];
};

static int run_mmapd(void *arg)
{
	struct ping_ctx *c = arg;
	int r = mmapd_ping(c->client);

	if (r < 0)
		fprintf(stderr, "mmapd-bench: mmapd_ping: %s\n", mmapd_last_message());
	return r;
}

static int run_lock(void *arg)
{
	struct ping_ctx *c = arg;
	uint64_t lock;
	int r = mmapd_lock(c->client, LOCK_REGION, 0, 0, MMAPD_LOCK_EXCLUSIVE, -1, &lock);

	if (r == 0)
		r = mmapd_unlock(c->client, lock);
	if (r < 0)
		fprintf(stderr, "mmapd-bench: mmapd_lock/unlock: %s\n", mmapd_last_message());
	return r;
}

static int run_socket(void *arg)
{
	struct ping_ctx *c = arg;
	ssize_t n;

	n = send(c->sock, c->buf, sizeof(c->buf), MSG_NOSIGNAL);
	if (n != (ssize_t)sizeof(c->buf))
		return n < 0 ? -errno : -EIO;
	n = recv(c->sock, c->buf, sizeof(c->buf), MSG_WAITALL);
	if (n != (ssize_t)sizeof(c->buf))
		return n < 0 ? -errno : -ECONNRESET;
	return 0;
}

static int run_socket_twice(void *arg)
{
	int r = run_socket(arg);

	return r < 0 ? r : run_socket(arg);
}

/* The region the lock side locks: created once, 4 KiB, its mapping closed again at once. */
static int create_lock_region(struct mmapd_client *client)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL, .mode = MMAPD_MODE_RW, .size = 4096);
	struct mmapd_region *region;
	int r = bench_region_open(client, LOCK_REGION, &opts, &region);

	if (r < 0)
		return r;
	mmapd_region_close(region);
	return 0;
}

int case_ping(struct mmapd_client *client, const struct bench_opts *o)
{
	struct ping_ctx c = { .client = client };
	struct side sides[] = {
		{ .label = "mmapd", .run = run_mmapd, .ctx = &c },
		{ .label = "socket64B", .run = run_socket, .ctx = &c },
		{ .label = "mmapd", .run = run_lock, .ctx = &c },
		{ .label = "2xsock64B", .run = run_socket_twice, .ctx = &c },
	};
	size_t nsides = sizeof(sides) / sizeof(sides[0]);
	struct peer peer;
	int r, r2;

	memset(c.buf, 'p', sizeof(c.buf));
	r = create_lock_region(client);
	if (r < 0)
		return r;
	r = peer_start_echo(&peer, sizeof(c.buf), o->peer_cpu);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: starting the echo peer: %s\n", strerror(-r));
		return r;
	}
	c.sock = peer.sock;
	r = compare_run(sides, nsides, o->warmup, o->iters);
	if (r == 0) {
		compare_print_latency("no-op request round trip", &sides[0], &sides[1]);
		compare_print_latency("lock+unlock (2 requests)", &sides[2], &sides[3]);
	}
	compare_done(sides, nsides);
	r2 = peer_stop(&peer);
	return r < 0 ? r : r2;
}
