/* SPDX-License-Identifier: MIT */
/*
 * Case (a): what it costs to get at an existing region. Each side opens the same 64 KiB file,
 * maps it read-only, reads one byte per page (so every page is faulted in, as a real reader
 * would), unmaps it and closes the descriptor:
 *   mmapd       mmapd_region_open(ro) + touch + mmapd_region_close: the open request (one
 *               round trip: the daemon finds the region in its table, idle or held, and
 *               reopens its descriptor for the grant), the descriptor passed back, the
 *               library's mmap, and the close request that releases the grant (sent, not
 *               waited for, and quiet: the daemon answers it only if it fails);
 *   direct      openat of the file in the data directory + mmap + touch + munmap + close;
 *   scm_rights  a 1-byte request to a peer process that opens the file and passes the
 *               descriptor back bare over SCM_RIGHTS, then the same mmap + touch + munmap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "fdpass.h"
#include "peer.h"
#include "region.h"

#define REGION "bench-small"

struct open_ctx {
	struct mmapd_client *client;
	int dirfd;           /* the data directory */
	int sock;            /* the fd-server peer */
	struct fd_queue q;   /* descriptors received from it */
	size_t page;
};

/* Where the touched bytes go, so that the reads cannot be optimised away. */
static volatile uint8_t touch_sink;

static void touch(const void *p, size_t len, size_t page)
{
	const volatile uint8_t *b = p;
	uint8_t sum = 0;
	size_t off;

	for (off = 0; off < len; off += page)
		sum += b[off];
	touch_sink = sum;
}

/* Maps fd (borrowed) read-only, touches every page and unmaps it. */
static int map_touch_unmap(int fd, size_t page)
{
	void *p = mmap(NULL, BENCH_SMALL_REGION, PROT_READ, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	touch(p, BENCH_SMALL_REGION, page);
	return munmap(p, BENCH_SMALL_REGION) < 0 ? -errno : 0;
}

static int run_mmapd(void *arg)
{
	struct open_ctx *c = arg;
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct mmapd_region *region;
	int r;

	r = mmapd_region_open(c->client, REGION, &opts, &region);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: mmapd_region_open: %s\n", mmapd_last_message());
		return r;
	}
	if (mmapd_region_length(region) != BENCH_SMALL_REGION) {
		fprintf(stderr, "mmapd-bench: mmapd mapped %zu bytes of a %u-byte region\n",
		        mmapd_region_length(region), BENCH_SMALL_REGION);
		mmapd_region_close(region);
		return -EIO;
	}
	touch(mmapd_region_data(region), BENCH_SMALL_REGION, c->page);
	mmapd_region_close(region);
	return 0;
}

static int run_direct(void *arg)
{
	struct open_ctx *c = arg;
	int fd, r;

	fd = openat(c->dirfd, REGION, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	r = map_touch_unmap(fd, c->page);
	close(fd);
	return r;
}

static int run_scm_rights(void *arg)
{
	struct open_ctx *c = arg;
	ssize_t n;
	char byte;
	int fd, r;

	n = send(c->sock, "r", 1, MSG_NOSIGNAL);
	if (n != 1)
		return n < 0 ? -errno : -EIO;
	n = fdpass_recv(c->sock, &byte, 1, &c->q, 0);
	if (n != 1)
		return n < 0 ? (int)n : -ECONNRESET;
	r = fd_queue_take(&c->q, 1, &fd);
	if (r < 0)
		return r;
	r = map_touch_unmap(fd, c->page);
	close(fd);
	return r;
}

/* Makes the region the sides open: created through mmapd, so it is a real region. */
static int create_region(struct mmapd_client *client)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL, .mode = MMAPD_MODE_RW,
		.size = BENCH_SMALL_REGION);
	struct mmapd_region *region;
	int r;

	r = bench_region_open(client, REGION, &opts, &region);
	if (r < 0)
		return r;
	mmapd_region_close(region);
	return 0;
}

int case_open_touch(struct mmapd_client *client, const char *data_dir,
                    const struct bench_opts *o)
{
	struct open_ctx c = { .client = client, .page = (size_t)sysconf(_SC_PAGESIZE) };
	struct side sides[] = {
		{ .label = "mmapd", .run = run_mmapd, .ctx = &c },
		{ .label = "direct", .run = run_direct, .ctx = &c },
		{ .label = "scm_rights", .run = run_scm_rights, .ctx = &c },
	};
	struct peer peer;
	int r, r2;

	r = create_region(client);
	if (r < 0)
		return r;
	c.dirfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c.dirfd < 0) {
		r = -errno;
		fprintf(stderr, "mmapd-bench: %s: %s\n", data_dir, strerror(-r));
		return r;
	}
	fd_queue_init(&c.q);
	r = peer_start_fd_server(&peer, c.dirfd, REGION, o->peer_cpu);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: starting the fd-server peer: %s\n", strerror(-r));
		goto out;
	}
	c.sock = peer.sock;
	r = compare_run(sides, 3, o->warmup, o->iters);
	if (r == 0) {
		compare_print_latency("open+map+touch+unmap 64KiB", &sides[0], &sides[1]);
		compare_print_latency("open+map+touch+unmap 64KiB", &sides[0], &sides[2]);
	}
	compare_done(sides, 3);
	r2 = peer_stop(&peer);
	if (r == 0)
		r = r2;
out:
	fd_queue_clear(&c.q);
	close(c.dirfd);
	return r;
}
