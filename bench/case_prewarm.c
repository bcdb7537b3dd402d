/* SPDX-License-Identifier: MIT */
/*
 * Case (h): the first touch of a fresh 256 MiB region, with and without faulting it in ahead.
 * Every side creates a fresh anonymous region through mmapd (so no page of it exists yet),
 * maps it read-write, reads one byte of every page, then closes and deletes it (untimed):
 *   plain     timed: mmapd_region_open() + the touch, which takes every page fault;
 *   populate  timed: mmapd_region_open() with MMAPD_OPEN_POPULATE (MAP_POPULATE) + the touch;
 *   prewarm   timed: mmapd_region_open() + mmapd_region_prewarm() of the window + the touch;
 *   warm      untimed: open + prewarm; timed: the touch alone.
 * So the populate and prewarm lines compare the whole cost of getting every page touched,
 * prefaulting included, against taking the faults in the touch loop, and the warm line shows
 * what a touch costs once prewarm has been paid for (against plain's open + touch, whose open
 * is a single request: well under 1% of it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cases.h"
#include "compare.h"
#include "region.h"

#define PREWARM_REGION (256u << 20)

enum prep { PREP_PLAIN, PREP_POPULATE, PREP_PREWARM, PREP_WARM };

struct touch_ctx {
	struct mmapd_client *client;
	enum prep prep;
	const char *name;         /* of its region */
	uint64_t measured;
	uint64_t sum;             /* of the bytes read, so the reads cannot be left out */
};

/* Reads one byte of every page. */
static uint64_t touch_pages(const struct mmapd_region *region)
{
	const volatile uint8_t *p = mmapd_region_data(region);
	size_t page = mmapd_region_page_size(region), len = mmapd_region_length(region);
	uint64_t sum = 0;

	for (size_t off = 0; off < len; off += page)
		sum += p[off];
	return sum;
}

static int run_touch(void *arg)
{
	struct touch_ctx *c = arg;
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL | MMAPD_OPEN_ANONYMOUS | (c->prep == PREP_POPULATE ? MMAPD_OPEN_POPULATE : 0),
		.mode = MMAPD_MODE_RW, .size = PREWARM_REGION);
	struct mmapd_region *region;
	uint64_t t0 = clock_ns(), t1;
	int r;

	r = bench_region_open(c->client, c->name, &opts, &region);
	if (r < 0)
		return r;
	if (c->prep == PREP_PREWARM || c->prep == PREP_WARM)
		r = mmapd_region_prewarm(region, 0, 0);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: prewarm: %s\n", mmapd_last_message());
	} else {
		if (c->prep == PREP_WARM)
			t0 = clock_ns();
		c->sum += touch_pages(region);
		t1 = clock_ns();
		c->measured = t1 - t0;
	}
	mmapd_region_close(region);
	if (mmapd_delete(c->client, c->name) < 0 && r == 0) {
		fprintf(stderr, "mmapd-bench: deleting %s: %s\n", c->name, mmapd_last_message());
		r = -EIO;
	}
	return r;
}

int case_prewarm(struct mmapd_client *client, const struct bench_opts *o)
{
	struct touch_ctx ctx[] = {
		{ .client = client, .prep = PREP_PLAIN, .name = "bench-touch-plain" },
		{ .client = client, .prep = PREP_POPULATE, .name = "bench-touch-populate" },
		{ .client = client, .prep = PREP_PREWARM, .name = "bench-touch-prewarm" },
		{ .client = client, .prep = PREP_WARM, .name = "bench-touch-warm" },
	};
	struct side sides[] = {
		{ .label = "plain", .run = run_touch, .ctx = &ctx[0], .measured = &ctx[0].measured },
		{ .label = "populate", .run = run_touch, .ctx = &ctx[1], .measured = &ctx[1].measured },
		{ .label = "prewarm", .run = run_touch, .ctx = &ctx[2], .measured = &ctx[2].measured },
		{ .label = "warm", .run = run_touch, .ctx = &ctx[3], .measured = &ctx[3].measured },
	};
	int r;

	r = compare_run(sides, 4, 1, o->big_reps);
	if (r == 0) {
		compare_print_latency("open+touch 256MiB", &sides[1], &sides[0]);
		compare_print_latency("open+prewarm+touch 256MiB", &sides[2], &sides[0]);
		compare_print_latency("touch 256MiB after prewarm", &sides[3], &sides[0]);
	}
	/* The bytes of a fresh region are zeros. */
	if (r == 0 && (ctx[0].sum | ctx[1].sum | ctx[2].sum | ctx[3].sum) != 0) {
		fprintf(stderr, "mmapd-bench: a fresh region did not read as zeros\n");
		r = -EIO;
	}
	compare_done(sides, 4);
	return r;
}
