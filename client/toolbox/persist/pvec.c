/* SPDX-License-Identifier: MIT */
/*
 * Persistent vectors: elements of a fixed size in a region of their own, readable and
 * writable by every process that opens it by name.
 *
 * The region holds a persistent struct "mmapd.pvec" (pstruct.c) at offset 0 with the
 * element size, the segment size, the capacity, the length and the journal (pjournal.c);
 * at PERSIST_DATA_OFF a staging area of one element (rounded up to a page), then the
 * elements, contiguous, element i at pvec_bytes(i).
 *
 * Segmented growth: capacity grows by whole segments (at least PVEC_SEGMENT_BYTES each),
 * doubling, and each growth appends segments to the end of the region (one resize through
 * the daemon) inside the address reservation of pregion.c. Unlike a vector that reallocates,
 * nothing is copied and no element ever moves, in this process or any other; unlike
 * memmap3's separate segment allocations, the segments are adjacent, so element i is one
 * multiplication away.
 *
 * Crash safety: push, extend, pop, truncate and clear change the length only (push and
 * extend write their elements past the length first), so the length's release store is their commit point. Set,
 * insert, remove, swap-remove and sort go through the journal: the new element is staged,
 * the record committed, then played (a sort stages the whole sorted vector in scratch space
 * past the capacity, and so do a durable vector's insert and remove with the new tail: see
 * pvec_tail_durable()). A reader without the lock sees a length whose elements are complete,
 * but an element being set, or moved by insert/remove/sort, may be read torn.
 * Writers must hold the lock (mmapd_pvec_lock()) when there are several.
 *
 * Format 2 (this file) added the journal and the staging area; a format 1 vector is
 * refused with -EPROTO by pstruct.c's layout check.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"
#include "toolbox.h"

#define PVEC_SEGMENT_BYTES (64u * 1024u)
#define PVEC_ELEM_MAX (1u << 31)

struct pvec_header {
	uint64_t elem_size;
	uint64_t segment;              /* elements per segment */
	_Atomic uint64_t capacity;
	_Atomic uint64_t len;
	struct pjournal journal;
};

struct mmapd_pvec {
	struct pregion pr;
	struct pvec_header *h;
	size_t elem_size;
	uint64_t data_off;             /* where element 0 starts */
};

static const struct mmapd_layout pvec_layout = {
	sizeof(struct mmapd_layout), "mmapd.pvec", 2, sizeof(struct pvec_header),
	_Alignof(struct pvec_header)
};

static uint64_t pvec_segment(size_t elem_size)
{
	return (PVEC_SEGMENT_BYTES + elem_size - 1) / elem_size;
}

static int pvec_init(void *body, void *ctx)
{
	struct pvec_header *h = body;
	const struct mmapd_pvec *vec = ctx;

	h->elem_size = vec->elem_size;
	h->segment = pvec_segment(vec->elem_size);
	return 0;
}

/* Bytes of the region that count elements take. */
static uint64_t pvec_bytes(const struct mmapd_pvec *vec, uint64_t count)
{
	return vec->data_off + count * vec->elem_size;
}

/* The largest count pvec_bytes() may be asked about. */
static uint64_t pvec_count_max(const struct mmapd_pvec *vec)
{
	return (MMAPD_PERSIST_RESERVE - vec->data_off) / vec->elem_size;
}

/* Offset of the length word, the target of the journal's length stores. */
static uint64_t pvec_len_off(const struct mmapd_pvec *vec)
{
	return (uint64_t)((const uint8_t *)&vec->h->len - pregion_data(&vec->pr));
}

static uint8_t *pvec_elem(const struct mmapd_pvec *vec, uint64_t i)
{
	return pregion_data(&vec->pr) + pvec_bytes(vec, i);
}

/* Checks what the header says of itself. Returns 0 or -EBADMSG/-EPROTO (message set). */
static int pvec_check(const struct mmapd_pvec *vec)
{
	const struct pvec_header *h = vec->h;
	const char *name = mmapd_region_name(vec->pr.region);
	uint64_t cap = atomic_load(&h->capacity), len = atomic_load(&h->len), seg = h->segment;

	if (h->elem_size != vec->elem_size)
		return tbx_error(-EPROTO, "'%s' is a vector of %llu-byte elements, not %zu", name,
		                 (unsigned long long)h->elem_size, vec->elem_size);
	if (seg != pvec_segment(vec->elem_size) || cap > pvec_count_max(vec) || len > cap ||
	    cap % seg != 0)
		return tbx_error(-EBADMSG, "the vector header of '%s' is corrupt (segment %llu, "
		                 "capacity %llu, length %llu)", name, (unsigned long long)seg,
		                 (unsigned long long)cap, (unsigned long long)len);
	return 0;
}

static int pvec_opened(void *body, void *ctx)
{
	struct mmapd_pvec *vec = ctx;
	int r;

	vec->h = body;
	r = pvec_check(vec);
	return r < 0 ? r : pjournal_settle(&vec->pr, &vec->h->journal, "vector");
}

/*
 * A value just read from the header was out of range: -EBADMSG (message set), even when
 * another process put the header right again before pvec_check() read it.
 */
static int pvec_corrupt(const struct mmapd_pvec *vec)
{
	int r = pvec_check(vec);

	return r < 0 ? r : tbx_error(-EBADMSG, "the vector header of '%s' changed while it was "
	                             "read (a writer does not hold the lock)",
	                             mmapd_region_name(vec->pr.region));
}

MMAPD_EXPORT int mmapd_pvec_open(struct mmapd_client *client, const char *name,
                                 size_t elem_size, unsigned flags, struct mmapd_pvec **ret_vec)
{
	struct mmapd_pvec *vec;
	int r;

	if (!client || !ret_vec)
		return tbx_error(-EINVAL, "client or ret_vec is NULL");
	if (elem_size == 0 || elem_size > PVEC_ELEM_MAX)
		return tbx_error(-EINVAL, "element size %zu is not between 1 and %u", elem_size,
		                 PVEC_ELEM_MAX);
	vec = calloc(1, sizeof(*vec));
	if (!vec)
		return tbx_error(-ENOMEM, "out of memory");
	vec->elem_size = elem_size;
	vec->data_off = PERSIST_DATA_OFF + (elem_size + PERSIST_DATA_OFF - 1) / PERSIST_DATA_OFF *
	                                   PERSIST_DATA_OFF;
	r = pregion_open(&vec->pr, client, name, flags,
	                 pvec_bytes(vec, pvec_segment(elem_size)), &pvec_layout, pvec_init,
	                 pvec_opened, vec);
	if (r < 0) {
		free(vec);
		return r;
	}
	*ret_vec = vec;
	return 0;
}

MMAPD_EXPORT void mmapd_pvec_close(struct mmapd_pvec *vec)
{
	if (!vec)
		return;
	pregion_close(&vec->pr);
	free(vec);
}

MMAPD_EXPORT int mmapd_pvec_lock(struct mmapd_pvec *vec, int timeout_ms)
{
	return vec ? pregion_lock(&vec->pr, timeout_ms) : tbx_error(-EINVAL, "vec is NULL");
}

MMAPD_EXPORT int mmapd_pvec_unlock(struct mmapd_pvec *vec)
{
	return vec ? pregion_unlock(&vec->pr) : tbx_error(-EINVAL, "vec is NULL");
}

MMAPD_EXPORT uint64_t mmapd_pvec_len(const struct mmapd_pvec *vec)
{
	return vec ? atomic_load_explicit(&vec->h->len, memory_order_acquire) : 0;
}

MMAPD_EXPORT uint64_t mmapd_pvec_capacity(const struct mmapd_pvec *vec)
{
	return vec ? atomic_load_explicit(&vec->h->capacity, memory_order_acquire) : 0;
}

MMAPD_EXPORT size_t mmapd_pvec_elem_size(const struct mmapd_pvec *vec)
{
	return vec ? vec->elem_size : 0;
}

MMAPD_EXPORT struct mmapd_region *mmapd_pvec_region(const struct mmapd_pvec *vec)
{
	return vec ? vec->pr.region : NULL;
}

/* Finishes an operation whose writer died; with writer, refuses to run beside a live one. */
static int pvec_settle(struct mmapd_pvec *vec, bool writer)
{
	struct pjournal *j = &vec->h->journal;

	/* The common case, no record live, is this one load. */
	if (atomic_load_explicit(&j->op, memory_order_acquire) == 0)
		return 0;
	return writer ? pjournal_settle_writer(&vec->pr, j, "vector")
	              : pjournal_settle(&vec->pr, j, "vector");
}

/* The length, checked against what the reservation can hold. */
static int pvec_len_checked(struct mmapd_pvec *vec, uint64_t *ret_len)
{
	uint64_t len = atomic_load_explicit(&vec->h->len, memory_order_acquire);

	if (len > pvec_count_max(vec))
		return pvec_corrupt(vec);
	*ret_len = len;
	return 0;
}

/*
 * Makes elements [i, end) (end at most the length) reachable here, after settling the
 * journal. Returns 0, -ERANGE, -EINVAL, -EBADMSG, -EBUSY (writer beside a live writer).
 */
static int pvec_reach(struct mmapd_pvec *vec, uint64_t i, uint64_t end, bool writer,
                      uint64_t *ret_len)
{
	uint64_t len;
	int r;

	if (!vec)
		return tbx_error(-EINVAL, "vec is NULL");
	if ((r = pvec_settle(vec, writer)) < 0 || (r = pvec_len_checked(vec, &len)) < 0)
		return r;
	if (i >= end || end > len)
		return tbx_error(-ERANGE, "index %llu is not below the length %llu of vector '%s'",
		                 (unsigned long long)(i < end ? end - 1 : i), (unsigned long long)len,
		                 mmapd_region_name(vec->pr.region));
	if (ret_len)
		*ret_len = len;
	return pregion_need(&vec->pr, pvec_bytes(vec, end), "vector");
}

MMAPD_EXPORT int mmapd_pvec_reserve(struct mmapd_pvec *vec, uint64_t count)
{
	uint64_t cap, want, seg;
	int r;

	if (!vec)
		return tbx_error(-EINVAL, "vec is NULL");
	cap = atomic_load_explicit(&vec->h->capacity, memory_order_acquire);
	/* The segment is read to be checked only: a hostile 0 would divide below. */
	seg = pvec_segment(vec->elem_size);
	if (cap > pvec_count_max(vec) || vec->h->segment != seg)
		return pvec_corrupt(vec);
	if (count <= cap)
		return pregion_need(&vec->pr, pvec_bytes(vec, cap), "vector");
	want = cap > count / 2 ? cap * 2 : count;
	if (want > pvec_count_max(vec) - seg) {
		if (count > pvec_count_max(vec) - seg)
			return tbx_error(-EFBIG, "vector '%s' cannot hold %llu elements of %zu bytes in "
			                 "the %llu bytes reserved for it", mmapd_region_name(vec->pr.region),
			                 (unsigned long long)count, vec->elem_size,
			                 (unsigned long long)MMAPD_PERSIST_RESERVE);
		want = count;
	}
	want = (want + seg - 1) / seg * seg;
	r = pregion_grow(&vec->pr, pvec_bytes(vec, want), "vector");
	if (r < 0)
		return r;
	/* Capacity is a hint to this and other writers: more room than it says is harmless. */
	atomic_store_explicit(&vec->h->capacity, want, memory_order_release);
	return 0;
}

/* Publishes a new length: the commit point of push, pop, truncate and clear. */
static int pvec_len_store(struct mmapd_pvec *vec, uint64_t len)
{
	atomic_store_explicit(&vec->h->len, len, memory_order_release);
	return pregion_sync(&vec->pr, pvec_len_off(vec), sizeof(vec->h->len));
}

/* Stages elem for a journalled operation; returns the staging area's offset. */
static uint64_t pvec_stage(struct mmapd_pvec *vec, const void *elem)
{
	memcpy(pregion_data(&vec->pr) + PERSIST_DATA_OFF, elem, vec->elem_size);
	return PERSIST_DATA_OFF;
}

MMAPD_EXPORT int mmapd_pvec_push(struct mmapd_pvec *vec, const void *elem)
{
	uint64_t len;
	int r;

	if (!vec || !elem)
		return tbx_error(-EINVAL, "vec or elem is NULL");
	if ((r = pvec_settle(vec, true)) < 0 || (r = pvec_len_checked(vec, &len)) < 0 ||
	    (r = mmapd_pvec_reserve(vec, len + 1)) < 0)
		return r;
	memcpy(pvec_elem(vec, len), elem, vec->elem_size);
	if ((r = pregion_sync(&vec->pr, pvec_bytes(vec, len), vec->elem_size)) < 0)
		return r;
	return pvec_len_store(vec, len + 1);
}

MMAPD_EXPORT int mmapd_pvec_extend(struct mmapd_pvec *vec, const void *elems, uint64_t count)
{
	uint64_t len;
	int r;

	if (!vec || (!elems && count))
		return tbx_error(-EINVAL, "vec or elems is NULL");
	if ((r = pvec_settle(vec, true)) < 0 || (r = pvec_len_checked(vec, &len)) < 0)
		return r;
	if (count > pvec_count_max(vec) - len)
		return tbx_error(-EFBIG, "vector '%s' cannot hold %llu more elements",
		                 mmapd_region_name(vec->pr.region), (unsigned long long)count);
	if (count == 0)
		return 0;
	if ((r = mmapd_pvec_reserve(vec, len + count)) < 0)
		return r;
	memcpy(pvec_elem(vec, len), elems, (size_t)(count * vec->elem_size));
	if ((r = pregion_sync(&vec->pr, pvec_bytes(vec, len), count * vec->elem_size)) < 0)
		return r;
	return pvec_len_store(vec, len + count);
}

MMAPD_EXPORT int mmapd_pvec_pop(struct mmapd_pvec *vec, void *ret_elem)
{
	uint64_t len;
	int r;

	if (!vec)
		return tbx_error(-EINVAL, "vec is NULL");
	if ((r = pvec_settle(vec, true)) < 0 || (r = pvec_len_checked(vec, &len)) < 0)
		return r;
	if (len == 0)
		return tbx_error(-ERANGE, "vector '%s' is empty", mmapd_region_name(vec->pr.region));
	if ((r = pvec_reach(vec, len - 1, len, true, NULL)) < 0)
		return r;
	if (ret_elem)
		memcpy(ret_elem, pvec_elem(vec, len - 1), vec->elem_size);
	return pvec_len_store(vec, len - 1);
}

MMAPD_EXPORT int mmapd_pvec_at(struct mmapd_pvec *vec, uint64_t i, void **ret_ptr)
{
	int r;

	if (!ret_ptr)
		return tbx_error(-EINVAL, "ret_ptr is NULL");
	r = pvec_reach(vec, i, i + 1, false, NULL);
	if (r == 0)
		*ret_ptr = pvec_elem(vec, i);
	return r;
}

MMAPD_EXPORT int mmapd_pvec_get(struct mmapd_pvec *vec, uint64_t i, void *ret_elem)
{
	void *p;
	int r;

	if (!ret_elem)
		return tbx_error(-EINVAL, "ret_elem is NULL");
	r = mmapd_pvec_at(vec, i, &p);
	if (r == 0)
		memcpy(ret_elem, p, vec->elem_size);
	return r;
}

MMAPD_EXPORT int mmapd_pvec_set(struct mmapd_pvec *vec, uint64_t i, const void *elem)
{
	struct pjournal rec;
	uint64_t stage;
	int r;

	if (!elem)
		return tbx_error(-EINVAL, "elem is NULL");
	if ((r = pvec_reach(vec, i, i + 1, true, NULL)) < 0)
		return r;
	stage = pvec_stage(vec, elem);
	pjournal_begin(&rec);
	pjournal_copy(&rec, stage, pvec_bytes(vec, i), vec->elem_size);
	return pjournal_commit(&vec->pr, &vec->h->journal, &rec, stage, vec->elem_size);
}

/*
 * The durable form of insert and remove. A shift's cursor is stored after each block it
 * moves, which a process that dies relies on; but after a power loss the cursor's page may
 * have reached the disk before the pages of the blocks it counts (the kernel writes dirty
 * pages back in any order), and a replay resuming there would skip blocks never moved on
 * disk. So a durable vector writes the whole new tail from element i (elem, when not NULL,
 * then the elements from i on; or the elements after i) to scratch space past the capacity,
 * and the record copies it into place, which replays from its start. Returns as
 * pjournal_commit(), or the errors of growing.
 */
static int pvec_tail_durable(struct mmapd_pvec *vec, uint64_t i, uint64_t len, const void *elem)
{
	uint64_t cap = atomic_load_explicit(&vec->h->capacity, memory_order_acquire);
	uint64_t new_len = elem ? len + 1 : len - 1, scratch, bytes, es = vec->elem_size;
	struct pjournal rec;
	uint8_t *t;
	int r;

	if (cap < new_len || cap < len || cap > pvec_count_max(vec) ||
	    (new_len - i) > pvec_count_max(vec) - cap)
		return pvec_corrupt(vec);
	scratch = pvec_bytes(vec, cap);
	bytes = (new_len - i) * es;
	if ((r = pregion_need(&vec->pr, pvec_bytes(vec, len), "vector")) < 0 ||
	    (r = pregion_grow(&vec->pr, scratch + bytes, "vector")) < 0)
		return r;
	t = pregion_data(&vec->pr) + scratch;
	if (elem) {
		memcpy(t, elem, (size_t)es);
		memcpy(t + es, pvec_elem(vec, i), (size_t)((len - i) * es));
	} else {
		memcpy(t, pvec_elem(vec, i + 1), (size_t)bytes);
	}
	pjournal_begin(&rec);
	pjournal_copy(&rec, scratch, pvec_bytes(vec, i), bytes);
	pjournal_store(&rec, pvec_len_off(vec), new_len, 8);
	return pjournal_commit(&vec->pr, &vec->h->journal, &rec, scratch, bytes);
}

MMAPD_EXPORT int mmapd_pvec_insert(struct mmapd_pvec *vec, uint64_t i, const void *elem)
{
	struct pjournal rec;
	uint64_t len, stage;
	int r;

	if (!vec || !elem)
		return tbx_error(-EINVAL, "vec or elem is NULL");
	if ((r = pvec_settle(vec, true)) < 0 || (r = pvec_len_checked(vec, &len)) < 0)
		return r;
	if (i > len)
		return tbx_error(-ERANGE, "index %llu is past the length %llu of vector '%s'",
		                 (unsigned long long)i, (unsigned long long)len,
		                 mmapd_region_name(vec->pr.region));
	if ((r = mmapd_pvec_reserve(vec, len + 1)) < 0)
		return r;
	if (vec->pr.durable)
		return pvec_tail_durable(vec, i, len, elem);
	stage = pvec_stage(vec, elem);
	pjournal_begin(&rec);
	pjournal_shift(&rec, pvec_bytes(vec, i), len - i, vec->elem_size, (int64_t)vec->elem_size);
	pjournal_copy(&rec, stage, pvec_bytes(vec, i), vec->elem_size);
	pjournal_store(&rec, pvec_len_off(vec), len + 1, 8);
	return pjournal_commit(&vec->pr, &vec->h->journal, &rec, stage, vec->elem_size);
}

/*
 * The start of removing element i (remove, swap_remove): checks it, copies it out to ret_elem
 * (may be NULL) and, when it is the last, removes it by the length store alone. Returns 1 when
 * that finished the removal, 0 when the caller journals the rest (*ret_len the length), or a
 * negative errno.
 */
static int pvec_take(struct mmapd_pvec *vec, uint64_t i, void *ret_elem, uint64_t *ret_len)
{
	int r;

	if ((r = pvec_reach(vec, i, i + 1, true, ret_len)) < 0 ||
	    (r = pregion_need(&vec->pr, pvec_bytes(vec, *ret_len), "vector")) < 0)
		return r;
	if (ret_elem)
		memcpy(ret_elem, pvec_elem(vec, i), vec->elem_size);
	if (i != *ret_len - 1)
		return 0;
	r = pvec_len_store(vec, *ret_len - 1);
	return r < 0 ? r : 1;
}

MMAPD_EXPORT int mmapd_pvec_remove(struct mmapd_pvec *vec, uint64_t i, void *ret_elem)
{
	struct pjournal rec;
	uint64_t len;
	int r = pvec_take(vec, i, ret_elem, &len);

	if (r != 0)
		return r < 0 ? r : 0;
	if (vec->pr.durable)
		return pvec_tail_durable(vec, i, len, NULL);
	pjournal_begin(&rec);
	pjournal_shift(&rec, pvec_bytes(vec, i + 1), len - i - 1, vec->elem_size,
	               -(int64_t)vec->elem_size);
	pjournal_store(&rec, pvec_len_off(vec), len - 1, 8);
	return pjournal_commit(&vec->pr, &vec->h->journal, &rec, 0, 0);
}

MMAPD_EXPORT int mmapd_pvec_swap_remove(struct mmapd_pvec *vec, uint64_t i, void *ret_elem)
{
	struct pjournal rec;
	uint64_t len;
	int r = pvec_take(vec, i, ret_elem, &len);

	if (r != 0)
		return r < 0 ? r : 0;
	/* The last element is past the new length: nothing writes it while the record lives. */
	pjournal_begin(&rec);
	pjournal_copy(&rec, pvec_bytes(vec, len - 1), pvec_bytes(vec, i), vec->elem_size);
	pjournal_store(&rec, pvec_len_off(vec), len - 1, 8);
	return pjournal_commit(&vec->pr, &vec->h->journal, &rec, 0, 0);
}

int pvec_copy_unjournalled(struct mmapd_pvec *vec, uint64_t dst, uint64_t src, uint64_t count)
{
	uint64_t len;
	int r;

	if (count == 0)
		return 0;
	if ((r = pvec_len_checked(vec, &len)) < 0)
		return r;
	if (src > len || count > len - src || dst > len || count > len - dst ||
	    (src < dst + count && dst < src + count))
		return tbx_error(-ERANGE, "cannot copy %llu elements from %llu to %llu in vector '%s' "
		                 "of length %llu", (unsigned long long)count, (unsigned long long)src,
		                 (unsigned long long)dst, mmapd_region_name(vec->pr.region),
		                 (unsigned long long)len);
	if ((r = pregion_need(&vec->pr, pvec_bytes(vec, len), "vector")) < 0)
		return r;
	memcpy(pvec_elem(vec, dst), pvec_elem(vec, src), (size_t)(count * vec->elem_size));
	return pregion_sync(&vec->pr, pvec_bytes(vec, dst), count * vec->elem_size);
}

MMAPD_EXPORT int mmapd_pvec_truncate(struct mmapd_pvec *vec, uint64_t len)
{
	uint64_t have;
	int r;

	if (!vec)
		return tbx_error(-EINVAL, "vec is NULL");
	if ((r = pvec_settle(vec, true)) < 0 || (r = pvec_len_checked(vec, &have)) < 0)
		return r;
	if (len > have)
		return tbx_error(-ERANGE, "cannot truncate vector '%s' of length %llu to %llu",
		                 mmapd_region_name(vec->pr.region), (unsigned long long)have,
		                 (unsigned long long)len);
	return pvec_len_store(vec, len);
}

MMAPD_EXPORT int mmapd_pvec_clear(struct mmapd_pvec *vec)
{
	return mmapd_pvec_truncate(vec, 0);
}

MMAPD_EXPORT int mmapd_pvec_sort(struct mmapd_pvec *vec, mmapd_pvec_cmp_fn *cmp)
{
	struct pjournal rec;
	uint64_t len, cap, scratch, bytes;
	uint8_t *s;
	int r;

	if (!vec || !cmp)
		return tbx_error(-EINVAL, "vec or cmp is NULL");
	if ((r = pvec_settle(vec, true)) < 0 || (r = pvec_len_checked(vec, &len)) < 0)
		return r;
	if (len < 2)
		return 0;
	cap = atomic_load_explicit(&vec->h->capacity, memory_order_acquire);
	if (cap < len || cap > pvec_count_max(vec))
		return pvec_corrupt(vec);
	/* Sorted in scratch space past the capacity, then copied over in one record. */
	scratch = pvec_bytes(vec, cap);
	bytes = len * vec->elem_size;
	if ((r = pregion_need(&vec->pr, pvec_bytes(vec, len), "vector")) < 0 ||
	    (r = pregion_grow(&vec->pr, scratch + bytes, "vector")) < 0)
		return r;
	s = pregion_data(&vec->pr) + scratch;
	memcpy(s, pvec_elem(vec, 0), (size_t)bytes);
	qsort(s, (size_t)len, vec->elem_size, cmp);
	pjournal_begin(&rec);
	pjournal_copy(&rec, scratch, pvec_bytes(vec, 0), bytes);
	return pjournal_commit(&vec->pr, &vec->h->journal, &rec, scratch, bytes);
}

MMAPD_EXPORT int mmapd_pvec_bsearch(struct mmapd_pvec *vec, const void *key,
                                    mmapd_pvec_cmp_fn *cmp, uint64_t *ret_index)
{
	uint64_t lo = 0, hi, len;
	int r;

	if (!vec || !key || !cmp || !ret_index)
		return tbx_error(-EINVAL, "vec, key, cmp or ret_index is NULL");
	if ((r = pvec_settle(vec, false)) < 0 || (r = pvec_len_checked(vec, &len)) < 0 ||
	    (r = pregion_need(&vec->pr, pvec_bytes(vec, len), "vector")) < 0)
		return r;
	hi = len;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		int c = cmp(key, pvec_elem(vec, mid));

		if (c == 0) {
			*ret_index = mid;
			return 0;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*ret_index = lo;
	return tbx_error(-ENOENT, "no such element in vector '%s'", mmapd_region_name(vec->pr.region));
}

MMAPD_EXPORT int mmapd_pvec_foreach(struct mmapd_pvec *vec, uint64_t from, uint64_t to,
                                    unsigned flags, mmapd_pvec_fn *fn, void *userdata)
{
	uint64_t len;
	int r;

	if (!vec || !fn)
		return tbx_error(-EINVAL, "vec or fn is NULL");
	if (flags & ~MMAPD_PVEC_REVERSE)
		return tbx_error(-EINVAL, "unknown flags 0x%x", flags & ~MMAPD_PVEC_REVERSE);
	if ((r = pvec_settle(vec, false)) < 0 || (r = pvec_len_checked(vec, &len)) < 0)
		return r;
	if (to > len)
		to = len;
	if (from >= to)
		return 0;
	if ((r = pregion_need(&vec->pr, pvec_bytes(vec, to), "vector")) < 0)
		return r;
	for (uint64_t n = 0; n < to - from; n++) {
		uint64_t i = flags & MMAPD_PVEC_REVERSE ? to - 1 - n : from + n;

		if ((r = fn(i, pvec_elem(vec, i), userdata)) != 0)
			return r;
	}
	return 0;
}
