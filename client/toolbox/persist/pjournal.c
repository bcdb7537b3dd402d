/* SPDX-License-Identifier: MIT */
/*
 * The redo record that makes every operation of a persistent vector or hash map atomic with
 * respect to the death of the process doing it (pvec.c, phash.c; the record's shape is in
 * persist.h).
 *
 * An operation whose effect is one aligned store (a push, a pop, a clear: the length is the
 * commit word) needs nothing more. Any other is described, before it touches anything a
 * reader can see, as a record: the new bytes it brings are first written to the structure's
 * staging area (or, for a rebuild or a sort, to scratch space past the live data), then the
 * record's fields, then its op word, with a release store: that store is the commit point.
 * Before it, a crash leaves the structure as it was (the staging and scratch bytes are not
 * part of it); after it, the operation will be finished. The writer then plays the record
 * and empties the op word. A process that finds the op word set and its writer dead (the
 * recorded pid gone: the daemon lock it held died with it too) takes the lock and plays the
 * record again, from the start: a copy reads bytes nobody writes while the record is live,
 * stores store absolute values, and the shift resumes at its cursor, stored after each
 * block, moving blocks in the order that leaves the next source intact. The next opener of
 * a structure thus sees it as after the operation whose writer died past the commit point,
 * and as before it otherwise.
 *
 * Durable (MMAPD_PERSIST_DURABLE): the same holds across a power loss with this order, each
 * step an msync(MS_SYNC) of whole pages finished before the next starts:
 *   1. the staged bytes and the record (op still 0) reach the disk;
 *   2. the op word is set and reaches the disk (the commit point on disk);
 *   3. the record is played and everything it wrote reaches the disk;
 *   4. the op word is emptied and reaches the disk; only then does the call return.
 * A power loss before 2 is completed leaves op 0 on disk (before); after it, the record and
 * its staged bytes are on disk and the next opener plays it (after). Step 4 comes before
 * the next operation overwrites the staging area, so a live op word on disk always goes with
 * its own record. Length-only operations write the element, sync it, store the length and
 * sync the header (pvec.c). A shift is not for durable records: its cursor, stored after each
 * block in memory, may reach the disk before the blocks it counts (the kernel writes dirty
 * pages back in any order), so durable vectors stage a whole new tail and copy it instead
 * (pvec_tail_durable()); every other step replays from its start whatever pages a power
 * loss kept. tests/check_crash.c checks this order by simulating a power cut at each msync.
 *
 * A record may also copy into another region (pregion.target: pwrite.c's struct journal,
 * whose copy lands in the owner region of the structs), with the same order, the
 * destination's pages synced in step 3.
 *
 * The record is read from shared memory, so a process that can write the region can make it
 * say anything: every offset is checked against the reservation and the region's size
 * before it is used, and every loop is bounded by values so checked.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "persist.h"
#include "pidlive.h"
#include "toolbox.h"

#define PJ_LOCK_MS 10000   /* how long settling waits for the lock */

void pjournal_begin(struct pjournal *rec)
{
	memset(rec, 0, sizeof(*rec));
}

void pjournal_shift(struct pjournal *rec, uint64_t first, uint64_t count, uint64_t unit,
                    int64_t delta)
{
	rec->shift_first = first;
	rec->shift_count = count;
	rec->shift_unit = unit;
	rec->shift_delta = delta;
}

void pjournal_copy(struct pjournal *rec, uint64_t src, uint64_t dst, uint64_t len)
{
	rec->copy_src = src;
	rec->copy_dst = dst;
	rec->copy_len = len;
}

void pjournal_store(struct pjournal *rec, uint64_t off, uint64_t val, uint32_t width)
{
	for (int i = 0; i < PJ_STORES; i++)
		if (rec->store[i].width == 0) {
			rec->store[i] = (struct pj_store){ off, val, width, 0 };
			return;
		}
}

int pregion_sync_other(const struct pregion *p, struct mmapd_region *region, uint64_t off,
                       uint64_t len)
{
	uint64_t page, end = off + len, size;
	int r;

	if (!p->durable || len == 0)
		return 0;
	page = mmapd_region_page_size(region);
	size = mmapd_region_length(region);
	off -= off % page;
	end = (end + page - 1) / page * page;
	/* The last page of a window whose length is not a page multiple is synced as far as it
	 * goes. */
	if (end > size)
		end = size;
	if (off >= end)
		return 0;
	r = mmapd_region_msync(region, off, end - off);
	/* A range shorter than a page (a short window) is only batched: flush the batch. */
	if (r == 1)
		r = mmapd_region_msync(region, 0, 0);
	return r < 0 ? r : 0;
}

int pregion_sync(struct pregion *p, uint64_t off, uint64_t len)
{
	return pregion_sync_other(p, p->region, off, len);
}

static int pj_corrupt(const struct pregion *p, const char *what, const char *says)
{
	return tbx_error(-EBADMSG, "the %s in '%s' has a corrupt journal (%s)", what,
	                 mmapd_region_name(p->region), says);
}

/* Whether [off, off + len) lies inside the reservation, without overflow. */
static bool pj_inside(uint64_t off, uint64_t len)
{
	return off <= MMAPD_PERSIST_RESERVE && len <= MMAPD_PERSIST_RESERVE - off;
}

static uint64_t pj_offset_of(const struct pregion *p, const void *ptr)
{
	return (uint64_t)((const uint8_t *)ptr - pregion_data(p));
}

/* The shift of a live record, resumed at its cursor. Fields are read once, then checked. */
static int pj_play_shift(struct pregion *p, struct pjournal *j, const char *what)
{
	uint64_t first = j->shift_first, count = j->shift_count, unit = j->shift_unit;
	uint64_t done = atomic_load_explicit(&j->cursor, memory_order_acquire), span;
	int64_t delta = j->shift_delta;
	uint8_t *base = pregion_data(p);
	int r;

	if (count == 0)
		return 0;
	if (unit == 0 || unit > MMAPD_PERSIST_RESERVE || count > MMAPD_PERSIST_RESERVE / unit ||
	    (delta != (int64_t)unit && delta != -(int64_t)unit) || done > count ||
	    (delta < 0 && first < unit))
		return pj_corrupt(p, what, "shift");
	span = count * unit + unit;
	if (delta < 0 ? !pj_inside(first - unit, span) : !pj_inside(first, span))
		return pj_corrupt(p, what, "shift out of bounds");
	r = pregion_need(p, (delta < 0 ? first - unit : first) + span, what);
	if (r < 0)
		return r;
	for (uint64_t c = done; c < count; c++) {
		/* Up: the top block first; down: the bottom one first. */
		uint64_t b = delta > 0 ? count - 1 - c : c;
		uint8_t *src = base + first + b * unit;

		memcpy(src + delta, src, (size_t)unit);
		atomic_store_explicit(&j->cursor, c + 1, memory_order_release);
	}
	return pregion_sync(p, delta < 0 ? first - unit : first, span);
}

/* The copy of a live record into the target region: copy_dst is a region offset there. */
static int pj_play_copy_out(struct pregion *p, struct pjournal *j, const char *what)
{
	uint64_t src = j->copy_src, dst = j->copy_dst, len = j->copy_len;
	uint64_t start = mmapd_region_offset(p->target);
	int r;

	if (!pj_inside(src, len) || dst < start || dst - start > UINT64_MAX - len ||
	    !tbx_region_covers(p->target, dst - start + len))
		return pj_corrupt(p, what, "copy outside the target's window");
	if ((r = pregion_need(p, src + len, what)) < 0)
		return r;
	dst -= start;
	memcpy((uint8_t *)mmapd_region_data(p->target) + dst, pregion_data(p) + src, (size_t)len);
	return pregion_sync_other(p, p->target, dst, len);
}

static int pj_play(struct pregion *p, struct pjournal *j, const char *what)
{
	uint64_t src = j->copy_src, dst = j->copy_dst, len = j->copy_len;
	uint8_t *base = pregion_data(p);
	int r = pj_play_shift(p, j, what);

	if (r < 0)
		return r;
	if (len && p->target) {
		r = pj_play_copy_out(p, j, what);
		if (r < 0)
			return r;
	} else if (len) {
		if (!pj_inside(src, len) || !pj_inside(dst, len) ||
		    (src < dst + len && dst < src + len))
			return pj_corrupt(p, what, "copy");
		r = pregion_need(p, (src > dst ? src : dst) + len, what);
		if (r < 0)
			return r;
		memcpy(base + dst, base + src, (size_t)len);
		if ((r = pregion_sync(p, dst, len)) < 0)
			return r;
	}
	for (int i = 0; i < PJ_STORES; i++) {
		struct pj_store s = j->store[i];

		if (s.width == 0)
			continue;
		if ((s.width != 4 && s.width != 8) || s.off % s.width || !pj_inside(s.off, s.width))
			return pj_corrupt(p, what, "store");
		if ((r = pregion_need(p, s.off + s.width, what)) < 0)
			return r;
		if (s.width == 4)
			atomic_store_explicit((_Atomic uint32_t *)(base + s.off), (uint32_t)s.val,
			                      memory_order_release);
		else
			atomic_store_explicit((_Atomic uint64_t *)(base + s.off), s.val,
			                      memory_order_release);
		if ((r = pregion_sync(p, s.off, s.width)) < 0)
			return r;
	}
	atomic_store_explicit(&j->op, 0, memory_order_release);
	return pregion_sync(p, pj_offset_of(p, j), sizeof(*j));
}

int pjournal_commit(struct pregion *p, struct pjournal *j, const struct pjournal *rec,
                    uint64_t stage_off, uint64_t stage_len)
{
	int r;

	j->pid = p->pid;
	j->shift_first = rec->shift_first;
	j->shift_count = rec->shift_count;
	j->shift_unit = rec->shift_unit;
	j->shift_delta = rec->shift_delta;
	atomic_store_explicit(&j->cursor, 0, memory_order_relaxed);
	j->copy_src = rec->copy_src;
	j->copy_dst = rec->copy_dst;
	j->copy_len = rec->copy_len;
	memcpy(j->store, rec->store, sizeof(j->store));
	if ((r = pregion_sync(p, stage_off, stage_len)) < 0 ||
	    (r = pregion_sync(p, pj_offset_of(p, j), sizeof(*j))) < 0)
		return r;
	/* The commit point: everything above is visible before this is. */
	atomic_store_explicit(&j->op, PJ_LIVE, memory_order_release);
	if ((r = pregion_sync(p, pj_offset_of(p, j), sizeof(*j))) < 0)
		return r;
	return pj_play(p, j, "structure");
}

/*
 * Whether the journal holds an operation to finish here: 1 yes, 0 no (empty, or its writer
 * lives: *ret_busy then), -EBADMSG.
 */
static int pj_orphaned(struct pregion *p, struct pjournal *j, const char *what, bool *ret_busy)
{
	uint32_t op = atomic_load_explicit(&j->op, memory_order_acquire), pid;

	*ret_busy = false;
	if (op == 0)
		return 0;
	if (op != PJ_LIVE)
		return pj_corrupt(p, what, "op word");
	pid = j->pid;
	/* Our own pid: an earlier play here stopped on an error; play it again. */
	if (pid != p->pid && pid_alive(pid)) {
		*ret_busy = true;
		return 0;
	}
	return 1;
}

static int pj_settle(struct pregion *p, struct pjournal *j, const char *what, bool writer)
{
	struct tbx_saved saved;
	bool busy, locked_here = false;
	int r = pj_orphaned(p, j, what, &busy);

	if (r == 0 && busy && writer)
		return tbx_error(-EBUSY, "process %u is in the middle of an operation on the %s in "
		                 "'%s' (writers must hold its lock)", j->pid, what,
		                 mmapd_region_name(p->region));
	if (r <= 0)
		return r;
	if (!p->locked) {
		r = pregion_lock(p, PJ_LOCK_MS);
		if (r < 0)
			return r;
		locked_here = true;
		/* Someone else may have finished it while this waited for the lock. */
		r = pj_orphaned(p, j, what, &busy);
	}
	if (r > 0)
		r = pj_play(p, j, what);
	if (locked_here) {
		tbx_message_save(&saved);
		pregion_unlock(p);
		tbx_message_restore(&saved, r);
	}
	return r < 0 ? r : 0;
}

int pjournal_settle(struct pregion *p, struct pjournal *j, const char *what)
{
	return pj_settle(p, j, what, false);
}

int pjournal_settle_writer(struct pregion *p, struct pjournal *j, const char *what)
{
	return pj_settle(p, j, what, true);
}
