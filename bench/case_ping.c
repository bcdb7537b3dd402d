/*
 * Case (b): the price of one request. mmapd_ping() is a full protocol round trip with nothing
 * to do: the library encodes a JSON request and frames it, the daemon's event loop wakes,
 * parses, dispatches and encodes a reply, and the library parses that. The baseline is the
 * floor under any such exchange: 64 bytes to a peer process and the same 64 bytes back.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cases.h"
#include "compare.h"
#include "peer.h"

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

int case_ping(struct mmapd_client *client, const struct bench_opts *o)
{
	struct ping_ctx c = { .client = client };
	struct side sides[] = {
		{ .label = "mmapd", .run = run_mmapd, .ctx = &c },
		{ .label = "socket64B", .run = run_socket, .ctx = &c },
	};
	struct peer peer;
	int r, r2;

	memset(c.buf, 'p', sizeof(c.buf));
	r = peer_start_echo(&peer, sizeof(c.buf), o->peer_cpu);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: starting the echo peer: %s\n", strerror(-r));
		return r;
	}
	c.sock = peer.sock;
	r = compare_run(sides, 2, o->warmup, o->iters);
	if (r == 0)
		compare_print_latency("no-op request round trip", &sides[0], &sides[1]);
	compare_done(sides, 2);
	r2 = peer_stop(&peer);
	return r < 0 ? r : r2;
}
