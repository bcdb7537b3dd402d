/* SPDX-License-Identifier: MIT */
/*
 * The mapping of a window of libmmapd, and how it follows its region. mmap() needs a
 * page-aligned offset, so the mapping starts at the window's offset rounded down to the page
 * size (delta bytes before it) and the pointer the caller sees is advanced to the exact byte
 * asked for. The mapping is tracked in pages: map_pages are mapped from the file, and the
 * first access_pages of them are accessible, the rest PROT_NONE. For a hugetlb region "page"
 * is the huge page size: hugetlbfs maps only whole huge pages at huge-page-aligned offsets and
 * addresses, so a reservation is aligned to it as well.
 *
 * Every open region is on its client's list, so whichever thread reads an event acts on it
 * (react.c, with the client's lock held) through the regions_*() reactions here, which bring
 * each window in line with the latest known size and any shrink in progress (region_apply()):
 *  - A window of length 0 follows the size. With a reservation (an address range held with a
 *    PROT_NONE anonymous mapping) growth maps the new pages in place with MAP_FIXED and the
 *    pointer never moves; without one (or beyond it) the mapping is mremap()ed and may move.
 *    A shrink puts the reservation back over the cut pages, or unmaps them (one page always
 *    stays, inaccessible if it lies wholly past the end).
 *  - While a shrink is announced, every page at and after the new size is PROT_NONE: a stray
 *    access faults on our mapping (SIGSEGV) instead of on a truncated file (SIGBUS), and the
 *    shrink is acknowledged only once that is done. A cancelled shrink restores access.
 *  - A fixed-length window keeps its mapping; pages a shrink cut off stay PROT_NONE, and its
 *    length and the bytes mmapd_region_read/write() may touch shrink with it.
 * Fields the accessors read without the lock (data, length, usable, size, generation) are
 * atomics; the application itself must not touch the window while it is being remapped.
 *
 * Below region.c (which makes the first mapping at open and unmaps at close), coord.c (a
 * resize's reply) and react.c; it names nothing of theirs.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "domain.h"



/* File offset of the mapping's first page. */
uint64_t region_start(const struct mmapd_region *region)
{
	return region->offset - region->delta;
}

/* Pages of the mapping that hold bytes before file offset end (not capped). */
uint64_t region_pages_before(const struct mmapd_region *region, uint64_t end)
{
	uint64_t start = region_start(region);

	return end <= start ? 0 : (end - start + region->page - 1) / region->page;
}

/* Bytes of the window that the first pages of the mapping cover. */
static uint64_t region_window_bytes(const struct mmapd_region *region, size_t pages)
{
	uint64_t bytes = (uint64_t)pages * region->page;

	return bytes > region->delta ? bytes - region->delta : 0;
}

/*
 * Transparent huge pages are advised on every mapping of a region the daemon gave them
 * ("thp"), and where the caller asked with MMAPD_OPEN_HUGETLB on a region of normal pages.
 */
bool region_wants_thp(const struct mmapd_region *region)
{
	return region->huge == MMAPD_HUGE_THP ||
	       (region->huge == MMAPD_HUGE_NONE && (region->open_flags & MMAPD_OPEN_HUGETLB));
}

/* Publishes map (the mapping may have moved). */
void region_set_map(struct mmapd_region *region, uint8_t *map)
{
	region->map = map;
	atomic_store(&region->data, map + region->delta);
}

/*
 * Grows the file mapping of a following window to pages. Inside the reservation the new
 * pages are mapped in place; otherwise the reservation is given up and the mapping moves
 * with mremap(). New pages are accessible when the whole mapping was. Returns whether the
 * mapping has grown.
 */
static bool region_grow(struct mmapd_region *region, size_t pages)
{
	size_t page = region->page, old = region->map_pages;
	int prot = region->access_pages == old ? region->prot : PROT_NONE;
	void *p;

	if (pages <= region->reserve_pages) {
		p = mmap(region->map + old * page, (pages - old) * page, prot,
		         region->map_flags | MAP_FIXED, region->fd,
		         (off_t)(region_start(region) + (uint64_t)old * page));
		if (p == MAP_FAILED)
			return false;
	} else if (old == 0) {
		/* A reservation whose file pages were all cut off: map afresh, then let it go. */
		p = mmap(NULL, pages * page, prot, region->map_flags, region->fd,
		         (off_t)region_start(region));
		if (p == MAP_FAILED)
			return false;
		munmap(region->map, region->reserve_pages * page);
		region->reserve_pages = 0;
		region_set_map(region, p);
	} else {
		/* mremap() takes one mapping: the reserved tail must go first. */
		if (region->reserve_pages > old)
			munmap(region->map + old * page, (region->reserve_pages - old) * page);
		region->reserve_pages = 0;
		p = mremap(region->map, old * page, pages * page, MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			return false;
		region_set_map(region, p);
	}
	if (region->access_pages == old)
		region->access_pages = pages;
	region->map_pages = pages;
	/* Pages mapped in place are a new mapping, without the old one's advice. */
	if (region_wants_thp(region))
		madvise(region->map + old * page, (pages - old) * page, MADV_HUGEPAGE);
	return true;
}

/*
 * Shrinks the file mapping of a following window to pages: the cut pages go back to the
 * reservation, or are unmapped (keeping one page, so the pointer stays valid).
 */
static void region_cut(struct mmapd_region *region, size_t pages)
{
	size_t page = region->page, old = region->map_pages;

	if (region->reserve_pages > 0) {
		if (mmap(region->map + pages * page, (old - pages) * page, PROT_NONE,
		         RESERVE_NONE | MAP_FIXED, -1, 0) == MAP_FAILED)
			return;
	} else {
		if (pages == 0)
			pages = 1;
		if (pages >= old || munmap(region->map + pages * page, (old - pages) * page) < 0)
			return;
	}
	region->map_pages = pages;
	if (region->access_pages > pages)
		region->access_pages = pages;
}

/*
 * Brings the mapping in line with the region's size and any announced shrink (see the top of
 * this file). Returns false when pages past a shrink could not be made inaccessible.
 * Lock held.
 */
bool region_apply(struct mmapd_region *region)
{
	uint64_t size = atomic_load(&region->size), limit = size, length, usable;
	uint64_t avail = size > region->offset ? size - region->offset : 0;
	size_t acc;
	bool ok = true;

	if (!region->map)
		return true;
	if (region->shrinking && region->shrink_size < limit)
		limit = region->shrink_size;

	if (region->want_length == 0) {
		uint64_t pages = avail ? region_pages_before(region, size) : 0;

		/* A window that would not fit the address space keeps what it has. */
		if (pages > region->map_pages && pages <= SIZE_MAX / region->page)
			region_grow(region, (size_t)pages);
		else if (pages < region->map_pages)
			region_cut(region, (size_t)pages);
		length = min_u64(avail, region_window_bytes(region, region->map_pages));
	} else {
		length = min_u64(region->want_length, avail);
	}

	acc = (size_t)min_u64(region_pages_before(region, limit), region->map_pages);
	if (acc != region->access_pages) {
		size_t lo = acc < region->access_pages ? acc : region->access_pages;
		size_t hi = acc < region->access_pages ? region->access_pages : acc;
		int prot = acc < region->access_pages ? PROT_NONE : region->prot;

		if (mprotect(region->map + lo * region->page, (hi - lo) * region->page, prot) == 0)
			region->access_pages = acc;
		else
			ok = acc > region->access_pages;
	}

	usable = limit > region->offset ? min_u64(length, limit - region->offset) : 0;
	usable = min_u64(usable, region_window_bytes(region, region->access_pages));
	atomic_store(&region->length, (size_t)length);
	atomic_store(&region->usable, (size_t)usable);
	return ok;
}

static bool region_is(const struct mmapd_region *region, const char *name)
{
	return !region->gone && strcmp(region->name, name) == 0;
}

/* Takes a size the daemon reported, unless an event of a later generation came first. */
void region_resized(struct mmapd_region *region, uint64_t size, uint64_t generation)
{
	if (generation < atomic_load(&region->generation))
		return;
	atomic_store(&region->size, size);
	atomic_store(&region->generation, generation);
	if (region->shrinking && size <= region->shrink_size)
		region->shrinking = false;
	region_apply(region);
}

void regions_resized(struct mmapd_client *client, const char *name, uint64_t size,
                     uint64_t generation)
{
	for (struct mmapd_region *region = client->regions; region; region = region->next)
		if (region_is(region, name))
			region_resized(region, size, generation);
}

bool regions_shrinking(struct mmapd_client *client, const char *name, uint64_t size,
                       uint64_t shrink)
{
	bool ok = true;

	for (struct mmapd_region *region = client->regions; region; region = region->next) {
		if (!region_is(region, name))
			continue;
		region->shrinking = true;
		region->shrink = shrink;
		region->shrink_size = size;
		ok = region_apply(region) && ok;
	}
	return ok;
}

void regions_shrink_cancelled(struct mmapd_client *client, const char *name, uint64_t shrink)
{
	for (struct mmapd_region *region = client->regions; region; region = region->next) {
		if (region_is(region, name) && region->shrinking && region->shrink == shrink) {
			region->shrinking = false;
			region_apply(region);
		}
	}
}

void regions_deleted(struct mmapd_client *client, const char *name)
{
	for (struct mmapd_region *region = client->regions; region; region = region->next) {
		if (!region_is(region, name))
			continue;
		/* The file lives on for our mapping: nothing will truncate it now. */
		region->gone = true;
		region->shrinking = false;
		region_apply(region);
	}
}

bool regions_have(const struct mmapd_client *client, const char *name)
{
	for (const struct mmapd_region *region = client->regions; region; region = region->next)
		if (strcmp(region->name, name) == 0)
			return true;
	return false;
}

int region_check_range(const struct mmapd_region *region, uint64_t off, size_t len)
{
	size_t usable = atomic_load(&region->usable);

	if (off > usable || len > usable - off)
		return error_set(-ERANGE, "%llu+%zu lies outside the %zu accessible bytes of the "
		                 "window of '%s'", (unsigned long long)off, len, usable, region->name);
	return 0;
}
