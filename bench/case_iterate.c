/* SPDX-License-Identifier: MIT */
/*
 * Case (i): reading a mapping through libmmapd's checked accessors against plain memcpy over
 * the same mapping. Every side copies the whole 64 MiB window of one anonymous region (faulted
 * in beforehand) into the same 64 KiB buffer, piece by piece:
 *   read    mmapd_region_read() of each 64 KiB piece (bounds-checked against the window);
 *   pages   mmapd_region_foreach_page() over the window, a callback memcpy per page;
 *   chunks  mmapd_region_foreach_chunk() with 64 KiB chunks, a callback memcpy per chunk;
 *   memcpy  memcpy of each 64 KiB piece straight from mmapd_region_data().
 * The source is larger than any cache and the destination stays in it, so each side is bound
 * by reading the mapping; the ratios show what the per-call checks and callbacks add.
 *
 * The case also counts the page faults of its rounds (getrusage): the source and the buffer
 * are faulted in by memsets before them, so the count stays at the few of the rounds' own
 * bookkeeping (0 to 3 seen, of the 16,384 pages copied each time) and a ratio away from 1 is
 * not a fault taken by one side. What does move the ratios is the machine: with --quick each side copies
 * only 5 times, and on a shared 2-vCPU machine one copy slowed by another tenant moves a
 * median of 5 (measured under load: 0.91 to 1.17 for foreach_page over five such runs, 0.97 to
 * 1.03 with 20 or more copies; a 4 KiB memcpy per page and a 64 KiB memcpy per piece move a
 * 64 MiB source at the same speed, 10.3-10.4 GB/s against 9.9-10.5 GB/s, in a bare loop).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cases.h"
#include "compare.h"
#include "region.h"

#define REGION "bench-iterate"
#define PIECE (64u << 10)

enum way { WAY_READ, WAY_PAGES, WAY_CHUNKS, WAY_MEMCPY };

struct iter_ctx {
	struct mmapd_region *region;
	enum way way;
	uint8_t *buf;             /* PIECE bytes */
};

/* Copies a piece the iterator hands over to the buffer, where it would sit in a piece. */
static int copy_piece(void *data, uint64_t off, size_t len, void *userdata)
{
	struct iter_ctx *c = userdata;

	memcpy(c->buf + off % PIECE, data, len);
	return 0;
}

static int run_iterate(void *arg)
{
	struct iter_ctx *c = arg;
	const uint8_t *data = mmapd_region_data(c->region);
	size_t off;
	int r = 0;

	switch (c->way) {
	case WAY_READ:
		for (off = 0; off < BENCH_BW_REGION && r == 0; off += PIECE)
			r = mmapd_region_read(c->region, off, c->buf, PIECE);
		break;
	case WAY_PAGES:
		r = mmapd_region_foreach_page(c->region, 0, 0, copy_piece, c);
		break;
	case WAY_CHUNKS:
		r = mmapd_region_foreach_chunk(c->region, 0, 0, PIECE, copy_piece, c);
		break;
	case WAY_MEMCPY:
		for (off = 0; off < BENCH_BW_REGION; off += PIECE) {
			memcpy(c->buf, data + off, PIECE);
			/* Each copy counts, as each of the other sides' calls does. */
			__asm__ volatile("" : : "r"(c->buf) : "memory");
		}
		break;
	}
	if (r < 0)
		fprintf(stderr, "mmapd-bench: iterating: %s\n", mmapd_last_message());
	return r;
}

int case_iterate(struct mmapd_client *client, const struct bench_opts *o)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL | MMAPD_OPEN_ANONYMOUS,
		.mode = MMAPD_MODE_RW, .size = BENCH_BW_REGION);
	struct iter_ctx ctx[4];
	struct side sides[] = {
		{ .label = "read", .run = run_iterate, .ctx = &ctx[0] },
		{ .label = "pages", .run = run_iterate, .ctx = &ctx[1] },
		{ .label = "chunks", .run = run_iterate, .ctx = &ctx[2] },
		{ .label = "memcpy", .run = run_iterate, .ctx = &ctx[3] },
	};
	struct mmapd_region *region;
	struct rusage before, after;
	uint8_t *buf;
	int r;

	buf = malloc(PIECE);
	if (!buf)
		return -ENOMEM;
	r = bench_region_open(client, REGION, &opts, &region);
	if (r < 0)
		goto out_buf;
	memset(mmapd_region_data(region), 0x5a, BENCH_BW_REGION);
	memset(buf, 0, PIECE);
	for (int i = 0; i < 4; i++)
		ctx[i] = (struct iter_ctx){ .region = region, .way = (enum way)i, .buf = buf };

	getrusage(RUSAGE_SELF, &before);
	r = compare_run(sides, 4, 2, o->bw_reps);
	getrusage(RUSAGE_SELF, &after);
	if (r == 0) {
		printf("# iterate: %ld page faults during the copies (source and buffer were "
		       "faulted in before)\n", after.ru_minflt - before.ru_minflt + after.ru_majflt -
		       before.ru_majflt);
		compare_print_bandwidth("region_read 64KiB pieces", BENCH_BW_REGION, &sides[0],
		                        &sides[3]);
		compare_print_bandwidth("foreach_page 64MiB", BENCH_BW_REGION, &sides[1], &sides[3]);
		compare_print_bandwidth("foreach_chunk 64KiB", BENCH_BW_REGION, &sides[2], &sides[3]);
	}
	compare_done(sides, 4);
	mmapd_region_close(region);
	mmapd_delete(client, REGION);
out_buf:
	free(buf);
	return r;
}
