/* SPDX-License-Identifier: MIT */
/*
 * Persistent vectors: elements of a fixed size in a region of their own, readable and
 * writable by every process that opens it by name.
 *
 * The region holds a persistent struct "mmapd.pvec" (pstruct.c) at offset 0 with the
 * element size, the segment size, the capacity and the length; the elements start at
 * PERSIST_DATA_OFF, contiguous, element i at PERSIST_DATA_OFF + i * elem_size.
 *
 * Segmented growth: capacity grows by whole segments (at least PVEC_SEGMENT_BYTES each),
 * doubling, and each growth appends segments to the end of the region (one resize through
 * the daemon) inside the address reservation of pregion.c. Unlike a vector that reallocates,
 * nothing is copied and no element ever moves, in this process or any other; unlike
 * memmap3's separate segment allocations, the segments are adjacent, so element i is one
 * multiplication away.
 *
 * The length is stored with release order after the element it covers is written, and read
 * with acquire order, so a reader without the lock never sees a length whose last element is
 * not there yet. Writers must hold the lock (mmapd_pvec_lock()) when there are several.
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
};

struct mmapd_pvec {
	struct pregion pr;
	struct pvec_header *h;
	size_t elem_size;
};

static const struct mmapd_layout pvec_layout = {
	sizeof(struct mmapd_layout), "mmapd.pvec", 1, sizeof(struct pvec_header),
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
	return PERSIST_DATA_OFF + count * vec->elem_size;
}

/* The largest count pvec_bytes() may be asked about. */
static uint64_t pvec_count_max(const struct mmapd_pvec *vec)
{
	return (MMAPD_PERSIST_RESERVE - PERSIST_DATA_OFF) / vec->elem_size;
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

	vec->h = body;
	return pvec_check(vec);
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

/*
 * Makes element i (below the length) reachable here. Returns 0, -ERANGE (i >= len), -EINVAL,
 * -EBADMSG.
 */
static int pvec_reach(struct mmapd_pvec *vec, uint64_t i)
{
	uint64_t len;

	if (!vec)
		return tbx_error(-EINVAL, "vec is NULL");
	len = atomic_load_explicit(&vec->h->len, memory_order_acquire);
	if (i >= len)
		return tbx_error(-ERANGE, "index %llu is not below the length %llu of vector '%s'",
		                 (unsigned long long)i, (unsigned long long)len,
		                 mmapd_region_name(vec->pr.region));
	if (len > pvec_count_max(vec))
		return pvec_corrupt(vec);
	return pregion_need(&vec->pr, pvec_bytes(vec, i + 1), "vector");
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
	atomic_store_explicit(&vec->h->capacity, want, memory_order_release);
	return 0;
}

MMAPD_EXPORT int mmapd_pvec_push(struct mmapd_pvec *vec, const void *elem)
{
	uint64_t len;
	int r;

	if (!vec || !elem)
		return tbx_error(-EINVAL, "vec or elem is NULL");
	len = atomic_load_explicit(&vec->h->len, memory_order_acquire);
	if (len > atomic_load(&vec->h->capacity))
		return pvec_corrupt(vec);
	r = mmapd_pvec_reserve(vec, len + 1);
	if (r < 0)
		return r;
	memcpy(pvec_elem(vec, len), elem, vec->elem_size);
	atomic_store_explicit(&vec->h->len, len + 1, memory_order_release);
	return 0;
}

MMAPD_EXPORT int mmapd_pvec_pop(struct mmapd_pvec *vec, void *ret_elem)
{
	uint64_t len = mmapd_pvec_len(vec);
	int r;

	if (!vec)
		return tbx_error(-EINVAL, "vec is NULL");
	if (len == 0)
		return tbx_error(-ERANGE, "vector '%s' is empty", mmapd_region_name(vec->pr.region));
	r = pvec_reach(vec, len - 1);
	if (r < 0)
		return r;
	if (ret_elem)
		memcpy(ret_elem, pvec_elem(vec, len - 1), vec->elem_size);
	atomic_store_explicit(&vec->h->len, len - 1, memory_order_release);
	return 0;
}

MMAPD_EXPORT int mmapd_pvec_at(struct mmapd_pvec *vec, uint64_t i, void **ret_ptr)
{
	int r;

	if (!ret_ptr)
		return tbx_error(-EINVAL, "ret_ptr is NULL");
	r = pvec_reach(vec, i);
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
	void *p;
	int r;

	if (!elem)
		return tbx_error(-EINVAL, "elem is NULL");
	r = mmapd_pvec_at(vec, i, &p);
	if (r == 0)
		memcpy(p, elem, vec->elem_size);
	return r;
}

MMAPD_EXPORT int mmapd_pvec_clear(struct mmapd_pvec *vec)
{
	if (!vec)
		return tbx_error(-EINVAL, "vec is NULL");
	atomic_store_explicit(&vec->h->len, 0, memory_order_release);
	return 0;
}
