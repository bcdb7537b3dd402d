/* SPDX-License-Identifier: MIT */
/*
 * What libmmapd does with a window once it is mapped, without the daemon: madvise() advice,
 * prewarming, mlock/munlock, chunk and page iteration, and flush_range. It reads the mapping
 * that mapping.c keeps (the layer it shares with region.c and coord.c) and calls nothing above.
 *
 * Callers speak in window offsets at any byte; the kernel wants page-aligned addresses, so
 * every range is first checked against the window's accessible part (region_check_range(),
 * as mmapd_region_read() does) and then rounded out to the pages of the mapping that hold it
 * (span_of()). The window's pointer is map + delta, so rounding is done on addresses.
 *
 * flush_range uses msync(MS_SYNC) on our own shared mapping: it writes back the file's dirty
 * pages of that range whoever dirtied them and needs no round trip. Ranges shorter than a page
 * are batched per region (a span and a count, under the client's lock) and flushed with the
 * next large range, an explicit len 0, or once the batch reaches its limits.
 * msync_async is msync(MS_ASYNC) of the range plus sync_file_range(SYNC_FILE_RANGE_WRITE), which
 * starts the write-back that Linux's MS_ASYNC alone does not, and waits for nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>

#include "domain.h"

/* A page-aligned piece of the mapping. */
struct span {
	uint8_t *addr;
	size_t len;
};

/*
 * Resolves len 0 (to the end of the window), checks the range and rounds it out to pages.
 * Returns 0 with *ret_len and *ret_span set, -EINVAL or -ERANGE (message set).
 */
static int span_of(const struct mmapd_region *region, uint64_t off, uint64_t len,
                   uint64_t *ret_len, struct span *ret_span)
{
	size_t usable = atomic_load(&region->usable);
	uintptr_t lo, hi;
	uint8_t *data;
	int r;

	if (len == 0)
		len = off < usable ? usable - off : 0;
	if (len == 0 || len > SIZE_MAX)
		return error_set(-ERANGE, "empty range at %llu of the %zu accessible bytes of '%s'",
		                 (unsigned long long)off, usable, region->name);
	r = region_check_range(region, off, (size_t)len);
	if (r < 0)
		return r;
	data = atomic_load(&region->data);
	lo = ((uintptr_t)data + off) & ~(uintptr_t)(region->page - 1);
	hi = ((uintptr_t)data + off + len + region->page - 1) & ~(uintptr_t)(region->page - 1);
	*ret_len = len;
	ret_span->addr = (uint8_t *)lo;
	ret_span->len = hi - lo;
	return 0;
}

/* ---- advice ---- */

/* madvise() values by enum mmapd_advice; -1 where this build's headers lack them. */
static const struct {
	const char *name;
	int madv;
} advices[] = {
	[MMAPD_ADVICE_NORMAL] = { "normal", MADV_NORMAL },
	[MMAPD_ADVICE_RANDOM] = { "random", MADV_RANDOM },
	[MMAPD_ADVICE_SEQUENTIAL] = { "sequential", MADV_SEQUENTIAL },
	[MMAPD_ADVICE_WILLNEED] = { "willneed", MADV_WILLNEED },
	[MMAPD_ADVICE_DONTNEED] = { "dontneed", MADV_DONTNEED },
	[MMAPD_ADVICE_HUGEPAGE] = { "hugepage", MADV_HUGEPAGE },
	[MMAPD_ADVICE_NOHUGEPAGE] = { "nohugepage", MADV_NOHUGEPAGE },
	[MMAPD_ADVICE_DONTFORK] = { "dontfork", MADV_DONTFORK },
	[MMAPD_ADVICE_DOFORK] = { "dofork", MADV_DOFORK },
	[MMAPD_ADVICE_MERGEABLE] = { "mergeable", MADV_MERGEABLE },
	[MMAPD_ADVICE_UNMERGEABLE] = { "unmergeable", MADV_UNMERGEABLE },
	[MMAPD_ADVICE_DONTDUMP] = { "dontdump", MADV_DONTDUMP },
	[MMAPD_ADVICE_DODUMP] = { "dodump", MADV_DODUMP },
#ifdef MADV_COLD
	[MMAPD_ADVICE_COLD] = { "cold", MADV_COLD },
#else
	[MMAPD_ADVICE_COLD] = { "cold", -1 },
#endif
#ifdef MADV_PAGEOUT
	[MMAPD_ADVICE_PAGEOUT] = { "pageout", MADV_PAGEOUT },
#else
	[MMAPD_ADVICE_PAGEOUT] = { "pageout", -1 },
#endif
#ifdef MADV_POPULATE_READ
	[MMAPD_ADVICE_POPULATE_READ] = { "populate_read", MADV_POPULATE_READ },
	[MMAPD_ADVICE_POPULATE_WRITE] = { "populate_write", MADV_POPULATE_WRITE },
#else
	[MMAPD_ADVICE_POPULATE_READ] = { "populate_read", -1 },
	[MMAPD_ADVICE_POPULATE_WRITE] = { "populate_write", -1 },
#endif
};

#define ADVICES (sizeof(advices) / sizeof(advices[0]))

MMAPD_EXPORT int mmapd_region_advise(struct mmapd_region *region, uint64_t off, uint64_t len,
                                     enum mmapd_advice advice)
{
	struct span sp;
	int r;

	if (!region)
		return error_set(-EINVAL, "region is NULL");
	if ((unsigned)advice >= ADVICES)
		return error_set(-EINVAL, "unknown advice %d", (int)advice);
	if (advices[advice].madv < 0)
		return error_set(-EOPNOTSUPP, "libmmapd was built without MADV_%s",
		                 advices[advice].name);
	r = span_of(region, off, len, &len, &sp);
	if (r < 0)
		return r;
	if (madvise(sp.addr, sp.len, advices[advice].madv) < 0) {
		r = -errno;
		return error_set(r, "madvise(%s) on '%s' refused: %s%s", advices[advice].name,
		                 region->name, mmapd_strerror(r),
		                 r == -EINVAL ? " (unknown to this kernel or not applicable to this "
		                                "mapping)" : "");
	}
	return 0;
}

/* ---- prewarm ---- */

/* Reads one byte of each page, so that each is faulted in. */
static void span_touch(const struct span *sp, size_t page)
{
	for (size_t i = 0; i < sp->len; i += page)
		(void)*(volatile const uint8_t *)(sp->addr + i);
}

MMAPD_EXPORT int mmapd_region_prewarm(struct mmapd_region *region, uint64_t off, uint64_t len)
{
	struct span sp;
	int r;

	if (!region)
		return error_set(-EINVAL, "region is NULL");
	r = span_of(region, off, len, &len, &sp);
	if (r < 0)
		return r;
#ifdef MADV_POPULATE_READ
	/*
	 * Populating for writing would copy every page of a copy-on-write mapping and dirty every
	 * page of a file (all written back at the next flush): only anonymous shared memory is.
	 */
	if (madvise(sp.addr, sp.len, region->mode == MMAPD_MODE_RW && region->anonymous
	                             ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0)
		return 0;
	r = -errno;
	/* EINVAL: a kernel before 5.14; touching does the same, slower. */
	if (r != -EINVAL)
		return error_set(r, "cannot prewarm '%s': %s", region->name, mmapd_strerror(r));
#endif
	span_touch(&sp, region->page);
	return 0;
}

/* ---- mlock ---- */

/* mlock() or munlock() of a range. */
static int region_memlock(struct mmapd_region *region, uint64_t off, uint64_t len, bool lock)
{
	struct span sp;
	int r;

	if (!region)
		return error_set(-EINVAL, "region is NULL");
	r = span_of(region, off, len, &len, &sp);
	if (r < 0)
		return r;
	if ((lock ? mlock(sp.addr, sp.len) : munlock(sp.addr, sp.len)) == 0)
		return 0;
	r = -errno;
	if (r == -EPERM || r == -ENOMEM || r == -EAGAIN)
		return error_set(r, "cannot %s %zu bytes of '%s': %s (locked memory is limited by "
		                 "RLIMIT_MEMLOCK, see ulimit -l, unless the process has "
		                 "CAP_IPC_LOCK)", lock ? "mlock" : "munlock", sp.len, region->name,
		                 mmapd_strerror(r));
	return error_set(r, "cannot %s '%s': %s", lock ? "mlock" : "munlock", region->name,
	                 mmapd_strerror(r));
}

MMAPD_EXPORT int mmapd_region_mlock(struct mmapd_region *region, uint64_t off, uint64_t len)
{
	return region_memlock(region, off, len, true);
}

MMAPD_EXPORT int mmapd_region_munlock(struct mmapd_region *region, uint64_t off, uint64_t len)
{
	return region_memlock(region, off, len, false);
}

/* ---- iteration ---- */

MMAPD_EXPORT size_t mmapd_region_page_size(const struct mmapd_region *region)
{
	return region ? region->page : 0;
}

/*
 * Calls fn over off..off+len in pieces of chunk bytes; with by_page, pieces end at the
 * mapping's page boundaries instead (chunk is then the page size).
 */
static int region_iterate(struct mmapd_region *region, uint64_t off, uint64_t len, size_t chunk,
                          bool by_page, mmapd_chunk_fn *fn, void *userdata)
{
	struct span sp;
	uint8_t *data;
	uint64_t end;
	int r;

	if (!region || !fn || chunk == 0)
		return error_set(-EINVAL, "region or fn is NULL, or chunk_size is 0");
	r = span_of(region, off, len, &len, &sp);
	if (r < 0)
		return r;
	data = atomic_load(&region->data);
	for (end = off + len; off < end; off += (uint64_t)chunk) {
		/* The window's offset 0 sits delta bytes into the first page. */
		if (by_page)
			chunk = region->page - (size_t)((region->delta + off) % region->page);
		if (chunk > end - off)
			chunk = (size_t)(end - off);
		r = fn(data + off, off, chunk, userdata);
		if (r != 0)
			return r;
	}
	return 0;
}

MMAPD_EXPORT int mmapd_region_foreach_chunk(struct mmapd_region *region, uint64_t off,
                                            uint64_t len, size_t chunk_size,
                                            mmapd_chunk_fn *fn, void *userdata)
{
	return region_iterate(region, off, len, chunk_size, false, fn, userdata);
}

MMAPD_EXPORT int mmapd_region_foreach_page(struct mmapd_region *region, uint64_t off,
                                           uint64_t len, mmapd_chunk_fn *fn, void *userdata)
{
	return region_iterate(region, off, len, region ? region->page : 0, true, fn, userdata);
}

/* ---- flush_range ---- */

/*
 * Adds off..off+len to the batch unless it is a page or more. Returns true when the caller
 * must flush now, with the range widened to the batch and the batch emptied. Lock held.
 */
static bool batch_take(struct mmapd_region *region, uint64_t *off, uint64_t *len, bool explicit)
{
	uint64_t lo = *off, hi = *off + *len;

	if (region->batch_hi > 0) {
		/* An explicit flush (len 0) flushes the batch alone. */
		lo = explicit || region->batch_lo < lo ? region->batch_lo : lo;
		hi = explicit || region->batch_hi > hi ? region->batch_hi : hi;
	}
	if (!explicit && *len < region->page && region->batch_count + 1 < MMAPD_FLUSH_BATCH_MAX &&
	    hi - lo < MMAPD_FLUSH_BATCH_BYTES) {
		region->batch_lo = lo;
		region->batch_hi = hi;
		region->batch_count++;
		return false;
	}
	region->batch_lo = region->batch_hi = 0;
	region->batch_count = 0;
	*off = lo;
	*len = hi - lo;
	return true;
}

/* msync(flags) of span sp of region. Returns 0 or -errno (message set). */
static int span_msync(struct mmapd_region *region, const struct span *sp, int flags)
{
	int r;

	if (msync(sp->addr, sp->len, flags) == 0)
		return 0;
	r = -errno;
	return error_set(r, "msync of %zu bytes of '%s' failed: %s", sp->len, region->name,
	                 mmapd_strerror(r));
}

MMAPD_EXPORT int mmapd_region_msync(struct mmapd_region *region, uint64_t off, uint64_t len)
{
	struct span sp;
	bool now;
	int r;

	if (!region)
		return error_set(-EINVAL, "region is NULL");
	if (region->mode == MMAPD_MODE_COW)
		return error_set(-EINVAL, "'%s' is mapped copy-on-write: its changes are private and "
		                 "cannot be flushed", region->name);
	if (len > 0) {
		/* Check now, so that a bad range is refused rather than batched. */
		r = span_of(region, off, len, &len, &sp);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&region->client->lock);
	now = batch_take(region, &off, &len, len == 0);
	pthread_mutex_unlock(&region->client->lock);
	if (!now)
		return 1;
	if (len == 0)
		return 0;
	r = span_of(region, off, len, &len, &sp);
	if (r < 0)
		return r;
	return span_msync(region, &sp, MS_SYNC);
}

MMAPD_EXPORT int mmapd_region_msync_async(struct mmapd_region *region, uint64_t off,
                                          uint64_t len)
{
	struct span sp;
	int r = 0;

	if (!region)
		return error_set(-EINVAL, "region is NULL");
	if (region->mode == MMAPD_MODE_COW)
		return error_set(-EINVAL, "'%s' is mapped copy-on-write: its changes are private and "
		                 "cannot be flushed", region->name);
	r = span_of(region, off, len, &len, &sp);
	if (r < 0)
		return r;
	r = span_msync(region, &sp, MS_ASYNC);
	if (r < 0)
		return r;
	/*
	 * Linux's MS_ASYNC only checks the range (dirty pages are tracked anyway, and written
	 * back some 30 s later): start the write-back of the range's dirty pages now, without
	 * waiting for it. Under the lock, so that a reconnection cannot swap the descriptor.
	 */
	pthread_mutex_lock(&region->client->lock);
	if (!region->anonymous && region->fd >= 0 &&
	    sync_file_range(region->fd, (off64_t)(region->offset + off), (off64_t)len,
	                    SYNC_FILE_RANGE_WRITE) < 0)
		r = -errno;
	pthread_mutex_unlock(&region->client->lock);
	if (r < 0)
		return error_set(r, "starting the write-back of %llu bytes of '%s' failed: %s",
		                 (unsigned long long)len, region->name, mmapd_strerror(r));
	return 0;
}
