/* SPDX-License-Identifier: MIT */
/*
 * Case (c): the data path. Once mapped, a region granted by mmapd is an ordinary shared
 * mapping of an ordinary file, so writing into it should run exactly as fast as writing into
 * a file the process mapped itself: the ratio should be 1.0 (zero-copy; the daemon is not on
 * this path at all). Each side copies 64 MiB from the same private buffer into its mapping:
 *   mmapd   a 64 MiB region created and mapped read-write through mmapd;
 *   direct  a 64 MiB file in the same data directory, posix_fallocate'd as mmapd does it,
 *           mapped MAP_SHARED read-write by the benchmark itself.
 * Two untimed copies per side first fault every page in, so the timed ones measure bandwidth,
 * not page faults.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "region.h"

#define REGION "bench-bw"
#define DIRECT "bench-bw-direct"
#define WARMUP_COPIES 2

struct copy_ctx {
	void *dst;
	const void *src;
};

static int run_copy(void *arg)
{
	struct copy_ctx *c = arg;

	memcpy(c->dst, c->src, BENCH_BW_REGION);
	return 0;
}

/*
 * Creates the baseline file in the data directory and maps it; returns the mapping or
 * MAP_FAILED (said on stderr).
 */
static void *map_direct(const char *data_dir)
{
	void *p = MAP_FAILED;
	int dirfd, fd, r;

	dirfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, "mmapd-bench: %s: %s\n", data_dir, strerror(errno));
		return MAP_FAILED;
	}
	fd = openat(dirfd, DIRECT, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	close(dirfd);
	if (fd < 0) {
		fprintf(stderr, "mmapd-bench: creating %s: %s\n", DIRECT, strerror(errno));
		return MAP_FAILED;
	}
	r = posix_fallocate(fd, 0, BENCH_BW_REGION);
	if (r != 0)
		fprintf(stderr, "mmapd-bench: posix_fallocate %s: %s\n", DIRECT, strerror(r));
	else
		p = mmap(NULL, BENCH_BW_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r == 0 && p == MAP_FAILED)
		fprintf(stderr, "mmapd-bench: mmap %s: %s\n", DIRECT, strerror(errno));
	close(fd);
	return p;
}

int case_memcpy(struct mmapd_client *client, const char *data_dir, const struct bench_opts *o)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL, .mode = MMAPD_MODE_RW,
		.size = BENCH_BW_REGION);
	struct copy_ctx via_mmapd, direct;
	struct side sides[] = {
		{ .label = "mmapd", .run = run_copy, .ctx = &via_mmapd },
		{ .label = "direct", .run = run_copy, .ctx = &direct },
	};
	struct mmapd_region *region;
	void *src;
	int r;

	src = malloc(BENCH_BW_REGION);
	if (!src)
		return -ENOMEM;
	memset(src, 0xa5, BENCH_BW_REGION);
	via_mmapd.src = direct.src = src;

	r = bench_region_open(client, REGION, &opts, &region);
	if (r < 0)
		goto out_src;
	if (mmapd_region_length(region) != BENCH_BW_REGION) {
		fprintf(stderr, "mmapd-bench: mmapd mapped %zu bytes of a %u-byte region\n",
		        mmapd_region_length(region), BENCH_BW_REGION);
		r = -EIO;
		goto out_region;
	}
	via_mmapd.dst = mmapd_region_data(region);
	direct.dst = map_direct(data_dir);
	if (direct.dst == MAP_FAILED) {
		r = -EIO;
		goto out_region;
	}

	r = compare_run(sides, 2, WARMUP_COPIES, o->bw_reps);
	if (r == 0)
		compare_print_bandwidth("memcpy 64MiB into rw map", BENCH_BW_REGION,
		                        &sides[0], &sides[1]);
	compare_done(sides, 2);
	munmap(direct.dst, BENCH_BW_REGION);
out_region:
	mmapd_region_close(region);
out_src:
	free(src);
	return r;
}
