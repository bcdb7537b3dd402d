/* SPDX-License-Identifier: MIT */
/*
 * Where a window's mapping goes so that it can hold huge pages, and how many it got.
 *
 * The kernel maps a transparent huge page with one page-table entry (a PMD) only where the
 * mapping's address and its file offset agree modulo the PMD size (2 MiB on x86-64) and the
 * whole huge page lies inside one mapping. mmap() picks addresses aligned to normal pages, so
 * region.c asks hugemap_align() where the mapping of a window that wants transparent huge
 * pages (region_wants_thp(): a file region or an anonymous one opened with
 * MMAPD_OPEN_HUGETLB, or a region the daemon gave "thp") must start, and places it in an
 * address reservation of that alignment. A hugetlb region's mapping is aligned to its huge
 * page size, as before.
 *
 * Whether the kernel then uses huge pages is its business: for files it takes a file system
 * with large folios (ext4, xfs and tmpfs with huge= on recent kernels) or
 * CONFIG_READ_ONLY_THP_FOR_FS, and pages not already in the page cache in small folios.
 * mmapd_region_huge_bytes() reports what it did, from /proc/self/smaps: the only place that
 * tells which parts of a mapping are mapped by huge pages.
 *
 * In the domain layer (see internal.h), with mapping.c and region.c; it reads the mapping and
 * calls only mapping.c's region_start() and region_wants_thp().
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domain.h"

#define PMD_SIZE_FILE "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"

/* The kernel's transparent huge page size, or 0 without them (read once). */
static size_t hugemap_pmd_size(void)
{
	static atomic_size_t cached = 1;  /* 1: not read yet */
	size_t pmd = atomic_load(&cached);
	unsigned long long v = 0;
	FILE *f;

	if (pmd != 1)
		return pmd;
	f = fopen(PMD_SIZE_FILE, "re");
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	/* A size that is no power of two above the page would break the alignment arithmetic. */
	pmd = v > (unsigned long long)sysconf(_SC_PAGESIZE) && v <= SIZE_MAX / 2 &&
	      (v & (v - 1)) == 0 ? (size_t)v : 0;
	atomic_store(&cached, pmd);
	return pmd;
}

size_t hugemap_align(const struct mmapd_region *region, uint64_t bytes, size_t *ret_phase)
{
	size_t pmd;

	*ret_phase = 0;
	if (region->page > (size_t)sysconf(_SC_PAGESIZE))
		return region->page;
	if (!region_wants_thp(region))
		return region->page;
	/* A mapping smaller than one huge page can never hold one: any address will do. */
	pmd = hugemap_pmd_size();
	if (pmd == 0 || bytes < pmd)
		return region->page;
	*ret_phase = (size_t)(region_start(region) % pmd);
	return pmd;
}

/* The smaps fields that count memory mapped by huge pages (each in kB). */
static const char *const huge_fields[] = {
	"AnonHugePages:", "ShmemPmdMapped:", "FilePmdMapped:", "Shared_Hugetlb:",
	"Private_Hugetlb:",
};

/* Adds the kB of line to *kib when it is one of huge_fields. */
static void hugemap_count(const char *line, uint64_t *kib)
{
	unsigned long long v;

	for (size_t i = 0; i < sizeof(huge_fields) / sizeof(huge_fields[0]); i++) {
		size_t n = strlen(huge_fields[i]);

		if (strncmp(line, huge_fields[i], n) == 0 && sscanf(line + n, "%llu", &v) == 1) {
			*kib += v;
			return;
		}
	}
}

MMAPD_EXPORT int mmapd_region_huge_bytes(struct mmapd_region *region, uint64_t *ret_bytes)
{
	unsigned long lo, hi, vlo, vhi;
	uint64_t kib = 0;
	size_t cap = 0;
	char *line = NULL;
	bool in = false;
	FILE *f;
	int r;

	if (!region || !ret_bytes)
		return error_set(-EINVAL, "region or ret_bytes is NULL");
	pthread_mutex_lock(&region->client->lock);
	lo = (unsigned long)(uintptr_t)region->map;
	hi = lo + (unsigned long)(region->map_pages * region->page);
	pthread_mutex_unlock(&region->client->lock);
	f = fopen("/proc/self/smaps", "re");
	if (!f) {
		r = -errno;
		return error_set(r, "cannot read /proc/self/smaps: %s", mmapd_strerror(r));
	}
	/* An entry starts with its address range (lower-case hex); its fields follow. */
	while (getline(&line, &cap, f) > 0) {
		if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f'))
			in = sscanf(line, "%lx-%lx", &vlo, &vhi) == 2 && vlo < hi && vhi > lo;
		else if (in)
			hugemap_count(line, &kib);
	}
	free(line);
	fclose(f);
	*ret_bytes = kib * 1024;
	return 0;
}
