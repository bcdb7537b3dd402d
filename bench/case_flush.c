/* SPDX-License-Identifier: MIT */
/*
 * Case (s): a durable flush of one page of a file region while 32 MiB of it are dirty. Every
 * side first dirties all of the region through its mapping (one byte of every page, untimed),
 * then times one flush:
 *   range     mmapd_flush() of the first 4 KiB: the daemon's msync(MS_SYNC) of that range,
 *             which writes its dirty page only, then commits as fdatasync does;
 *   whole     mmapd_flush() of the whole region: the daemon's fdatasync, which writes all 32 MiB;
 *   msync     the physical baseline of range: msync(MS_SYNC) of the same 4 KiB on this
 *             process's own mapping, no daemon;
 *   fdatasync the physical baseline of whole: fdatasync() of the region's descriptor here.
 * So "range vs whole" is what a range saves when much of the file is dirty elsewhere, and the
 * two others are mmapd's cost over doing the same thing in the process.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "region.h"

#define FLUSH_REGION (32u << 20)
#define FLUSH_RANGE  4096u

enum flush_kind { FLUSH_RANGE_MMAPD, FLUSH_WHOLE_MMAPD, FLUSH_RANGE_DIRECT, FLUSH_WHOLE_DIRECT };

struct flush_ctx {
	struct mmapd_client *client;
	struct mmapd_region *region;
	enum flush_kind kind;
	uint8_t round;
	uint64_t measured;
};

static int run_flush(void *arg)
{
	struct flush_ctx *c = arg;
	volatile uint8_t *p = mmapd_region_data(c->region);
	uint64_t t0;
	int r = 0;

	c->round++;
	for (size_t off = 0; off < FLUSH_REGION; off += 4096)
		p[off] = c->round;
	t0 = clock_ns();
	switch (c->kind) {
	case FLUSH_RANGE_MMAPD:
		r = mmapd_region_flush(c->region, 0, FLUSH_RANGE);
		break;
	case FLUSH_WHOLE_MMAPD:
		r = mmapd_region_flush(c->region, 0, 0);
		break;
	case FLUSH_RANGE_DIRECT:
		r = msync((void *)p, FLUSH_RANGE, MS_SYNC) < 0 ? -errno : 0;
		break;
	case FLUSH_WHOLE_DIRECT:
		r = fdatasync(mmapd_region_fd(c->region)) < 0 ? -errno : 0;
		break;
	}
	c->measured = clock_ns() - t0;
	if (r < 0)
		fprintf(stderr, "mmapd-bench: flush: %s\n", strerror(-r));
	return r;
}

int case_flush(struct mmapd_client *client, const struct bench_opts *o)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL, .mode = MMAPD_MODE_RW,
		.size = FLUSH_REGION);
	struct mmapd_region *region;
	struct flush_ctx ctx[4];
	struct side sides[4];
	static const char *const labels[] = { "range", "whole", "msync", "fdatasync" };
	int r;

	r = bench_region_open(client, "bench-flush", &opts, &region);
	if (r < 0)
		return r;
	for (int i = 0; i < 4; i++) {
		ctx[i] = (struct flush_ctx){ .client = client, .region = region,
		                             .kind = (enum flush_kind)i };
		sides[i] = (struct side){ .label = labels[i], .run = run_flush, .ctx = &ctx[i],
		                          .measured = &ctx[i].measured };
	}
	r = compare_run(sides, 4, 1, o->big_reps * 3);
	if (r == 0) {
		compare_print_latency("flush 4KiB, 32MiB dirty", &sides[0], &sides[1]);
		compare_print_latency("flush 4KiB range", &sides[0], &sides[2]);
		compare_print_latency("flush 32MiB whole", &sides[1], &sides[3]);
	}
	compare_done(sides, 4);
	mmapd_region_close(region);
	if (mmapd_delete(client, "bench-flush") < 0 && r == 0) {
		fprintf(stderr, "mmapd-bench: deleting bench-flush: %s\n", mmapd_last_message());
		r = -EIO;
	}
	return r;
}
