/* SPDX-License-Identifier: MIT */
/*
 * Moving bytes through a ring: the byte stream (write/read), the zero-copy calls
 * (reserve/commit, peek/consume), waiting, and the buffered calls (read_exact, read_until,
 * put/flush).
 *
 * One writer and one reader, each in any process, without locks. The writer copies bytes in,
 * then stores write_pos with release; the reader loads write_pos with acquire, so the bytes
 * below it are visible, copies them out, then stores read_pos with release; the writer loads
 * read_pos with acquire before reusing that space. The double mapping (ring.c) makes every
 * copy one memcpy and every peek one pointer, also across the end of the data.
 *
 * Overwrite mode (MMAPD_RING_OVERWRITE) never waits for space: the writer first raises
 * write_end over the bytes it is about to write (a release fence orders that before the
 * bytes), writes, then publishes write_pos. The reader works as a seqlock reader: it copies,
 * then (after an acquire fence) loads write_end; if the writer claimed bytes within capacity
 * of what was copied, the copy may be torn and is thrown away. Either way, a reader that fell
 * behind gets -EOVERFLOW once, its position moved to the oldest byte still intact and the bytes
 * skipped counted in mmapd_ring_lost(); the next call reads on from there.
 *
 * The buffered reader needs no buffer of its own: the readable bytes are contiguous in the
 * double mapping, so read_until() searches them in place. The buffered writer (put/flush)
 * writes into the free space after write_pos and publishes everything with one store.
 */
#include <errno.h>
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "ring.h"
#include "toolbox.h"

#define OVERWRITE(ring) (((ring)->flags & MMAPD_RING_OVERWRITE) != 0)

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* A deadline timeout_ms from now in *ts, or NULL when timeout_ms < 0 (no limit). */
static const struct timespec *ring_deadline(struct timespec *ts, int timeout_ms)
{
	if (timeout_ms < 0)
		return NULL;
	tbx_deadline_after(ts, timeout_ms);
	return ts;
}

static uint64_t ring_write_pos(const struct mmapd_ring *ring)
{
	return atomic_load_explicit(&ring->hdr->write_pos, memory_order_acquire);
}

static uint64_t ring_read_pos(const struct mmapd_ring *ring)
{
	return atomic_load_explicit(&ring->hdr->read_pos, memory_order_acquire);
}

/*
 * Where the byte at position pos is mapped. A 64-bit division costs more than the rest of a
 * small write, so a power-of-two capacity (the common case) takes a mask instead.
 */
static uint8_t *ring_at(const struct mmapd_ring *ring, uint64_t pos)
{
	return ring->data + (ring->mask ? pos & ring->mask : pos % ring->cap);
}

/* Bytes between r and w, clamped to 0 .. cap (a damaged header cannot make copies overrun). */
static size_t ring_used(uint64_t w, uint64_t r, size_t cap)
{
	return w < r ? 0 : w - r > cap ? cap : (size_t)(w - r);
}

MMAPD_EXPORT size_t mmapd_ring_readable(const struct mmapd_ring *ring)
{
	if (!ring)
		return 0;
	return ring_used(ring_write_pos(ring), ring_read_pos(ring), ring->cap);
}

MMAPD_EXPORT size_t mmapd_ring_writable(const struct mmapd_ring *ring)
{
	if (!ring)
		return 0;
	if (OVERWRITE(ring))
		return ring->cap;
	return ring->cap - ring_used((ring->pending ? ring->batch_pos : ring_write_pos(ring)) +
	                             ring->pending, ring_read_pos(ring), ring->cap);
}

static bool ring_ready_read(const struct mmapd_ring *ring, size_t min)
{
	return mmapd_ring_readable(ring) >= min;
}

static bool ring_ready_write(const struct mmapd_ring *ring, size_t min)
{
	return mmapd_ring_writable(ring) >= min;
}

/* Waits for min bytes of data (or an overrun to report). */
static int ring_wait_data(struct mmapd_ring *ring, size_t min, const struct timespec *deadline)
{
	return ring_wait(ring, &ring->hdr->data_seq, &ring->hdr->read_waiters, ring_ready_read,
	                 min, &ring->hdr->writer, deadline);
}

MMAPD_EXPORT int mmapd_ring_wait_readable(struct mmapd_ring *ring, size_t min, int timeout_ms)
{
	struct timespec ts;

	if (!ring || min > ring->cap)
		return tbx_error(-EINVAL, "ring is NULL or min is above its capacity");
	return ring_wait_data(ring, min ? min : 1, ring_deadline(&ts, timeout_ms));
}

MMAPD_EXPORT int mmapd_ring_wait_writable(struct mmapd_ring *ring, size_t min, int timeout_ms)
{
	struct timespec ts;

	if (!ring || min > ring->cap)
		return tbx_error(-EINVAL, "ring is NULL or min is above its capacity");
	return ring_wait(ring, &ring->hdr->space_seq, &ring->hdr->write_waiters, ring_ready_write,
	                 min ? min : 1, &ring->hdr->reader, ring_deadline(&ts, timeout_ms));
}

/* ---- the writer ---- */

/*
 * Free bytes after position w (not in overwrite mode). The reader's position is loaded again
 * only when the one seen last leaves fewer than need, which keeps the reader's cache line out
 * of the writer's way.
 */
static size_t ring_space(struct mmapd_ring *ring, uint64_t w, size_t need)
{
	if (ring->cap - ring_used(w, ring->read_seen, ring->cap) < need)
		ring->read_seen = ring_read_pos(ring);
	return ring->cap - ring_used(w, ring->read_seen, ring->cap);
}

/* Overwrite mode: claims the bytes below position end before any of them is written. */
static void ring_claim(struct mmapd_ring *ring, uint64_t end)
{
	if (end <= atomic_load_explicit(&ring->hdr->write_end, memory_order_relaxed))
		return;
	atomic_store_explicit(&ring->hdr->write_end, end, memory_order_relaxed);
	/* The claim becomes visible before any byte written after it. */
	atomic_thread_fence(memory_order_release);
}

/*
 * Streaming put() batches. A store to a line not in the writer's cache first reads the line
 * (a read for ownership): the old bytes, from the L3, the reader's cache or memory. A put() of
 * a few dozen bytes copies too little for that read to overlap anything, so a writer of small
 * messages waits on one such read per line, and on a loaded machine, where the ring's lines
 * have left the L3, on memory. Non-temporal stores write whole lines without reading them
 * (combined in the CPU's write-combining buffers, then sent to memory), and the reader finds
 * the bytes in memory a batch later. So once a handle flushes batches of RING_STREAM_BATCH bytes
 * or more it streams: puts of fewer than RING_STREAM_PUT_MAX bytes are copied with
 * non-temporal stores, and the flush fences them (sfence) before it publishes, since a release
 * store does not order them. A smaller batch goes back to ordinary stores. Measured on the
 * 2-vCPU KVM machine of ring.h (64-byte messages, 4 MiB ring, 2026-12-08, medians of 30-40
 * rounds, the two ways alternating, the machine shared): batches of 64 puts 33-101 M
 * messages/s streaming against 9-94 M without (18-31 M on most runs: the spread is the other
 * tenants), of 8 puts 17.5-32 against 14-22; put+flush of each message 5.5 against 15.9 (a
 * fence and a miss in memory per message: hence the batch floor); 4 KiB puts 2.5-3.9 against
 * 3.4-10.7 (memcpy's own large copy is better: hence the put ceiling); with both sides on
 * one CPU, batches of 64 puts 37-45 M (best rounds 46-51) against 32-77 M (best 55-96), so a
 * machine with one CPU never streams (the two sides of a bigger one can share a CPU too: the
 * scheduler's choice, which put() cannot see). Full-line (AVX-512) non-temporal stores
 * measured the same as these 16-byte SSE2 ones, and prefetching for writing (prefetchw 256 B
 * to 8 KiB ahead) or collecting a batch in a buffer of the handle and copying it in at once
 * did not help. Overwrite rings never stream: their claim on write_end must be visible before
 * any byte, which a release fence does not ensure for non-temporal stores.
 */
#define RING_STREAM_BATCH   512u
#define RING_STREAM_PUT_MAX 1024u

/*
 * Copies len bytes to dst, the 16-byte-aligned middle with non-temporal stores (and no call
 * for an empty head or tail: a small put is usually whole lines).
 */
static void ring_copy_nt(uint8_t *dst, const uint8_t *src, size_t len)
{
#if defined(__x86_64__)
	size_t head = (size_t)(-(uintptr_t)dst & 15);

	if (head < len) {
		if (head > 0)
			memcpy(dst, src, head);
		for (dst += head, src += head, len -= head; len >= 16; dst += 16, src += 16, len -= 16)
			_mm_stream_si128((__m128i *)(void *)dst,
			                 _mm_loadu_si128((const __m128i *)(const void *)src));
		if (len == 0)
			return;
	}
#endif
	memcpy(dst, src, len);
}

/* Copies a put()'s bytes into the ring: streaming (above) or not. */
static void ring_put_copy(struct mmapd_ring *ring, uint8_t *dst, const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (ring->stream && len < RING_STREAM_PUT_MAX) {
		ring_copy_nt(dst, buf, len);
		ring->unfenced = true;
		return;
	}
#endif
	memcpy(dst, buf, len);
}

/* Publishes the bytes below position w and wakes sleeping readers. */
static void ring_publish(struct mmapd_ring *ring, uint64_t w)
{
#if defined(__x86_64__)
	if (ring->unfenced) {
		_mm_sfence();
		ring->unfenced = false;
	}
#endif
	atomic_store_explicit(&ring->hdr->write_pos, w, memory_order_release);
	ring_wake(ring, &ring->hdr->data_seq, &ring->hdr->read_waiters);
}

void ring_flush_pending(struct mmapd_ring *ring)
{
	if (ring->pending == 0)
		return;
	ring_publish(ring, ring->batch_pos + ring->pending);
	ring->stream = ring->streamable && ring->pending >= RING_STREAM_BATCH;
	ring->pending = 0;
}

/* Ends a reservation and publishes a batch before a write at write_pos; returns write_pos. */
static uint64_t ring_write_start(struct mmapd_ring *ring)
{
	ring->reserved = 0;
	ring_flush_pending(ring);
	return ring_write_pos(ring);
}

MMAPD_EXPORT ptrdiff_t mmapd_ring_write(struct mmapd_ring *ring, const void *buf, size_t len)
{
	size_t done = 0, n;
	uint64_t w;

	if (!ring || (!buf && len > 0))
		return tbx_error(-EINVAL, "ring or buf is NULL");
	len = min_size(len, PTRDIFF_MAX);
	w = ring_write_start(ring);
	while (done < len) {
		n = min_size(len - done, ring->cap);
		if (OVERWRITE(ring))
			ring_claim(ring, w + n);
		else
			n = min_size(n, ring_space(ring, w, n));
		if (n == 0)
			break;
		memcpy(ring_at(ring, w), (const uint8_t *)buf + done, n);
		w += n;
		done += n;
		ring_publish(ring, w);
	}
	return (ptrdiff_t)done;
}

MMAPD_EXPORT int mmapd_ring_write_reserve(struct mmapd_ring *ring, size_t len, void **ret_ptr)
{
	uint64_t w;

	if (ret_ptr)
		*ret_ptr = NULL;
	if (!ring || !ret_ptr || len == 0 || len > ring->cap)
		return tbx_error(-EINVAL, "ring or ret_ptr is NULL, or len is 0 or above the "
		                 "capacity");
	w = ring_write_start(ring);
	if (OVERWRITE(ring))
		ring_claim(ring, w + len);
	else if (ring_space(ring, w, len) < len)
		return tbx_error(-EAGAIN, "ring '%s' has fewer than %zu bytes free",
		                 mmapd_region_name(ring->region), len);
	ring->reserved = len;
	*ret_ptr = ring_at(ring, w);
	return 0;
}

MMAPD_EXPORT int mmapd_ring_write_commit(struct mmapd_ring *ring, size_t len)
{
	if (!ring || len > ring->reserved)
		return tbx_error(-EINVAL, "ring is NULL or len is above what was reserved");
	ring->reserved = 0;
	if (len > 0)
		ring_publish(ring, ring_write_pos(ring) + len);
	return 0;
}

MMAPD_EXPORT int mmapd_ring_put(struct mmapd_ring *ring, const void *buf, size_t len,
                                int timeout_ms)
{
	uint64_t w;
	int r;

	if (!ring || (!buf && len > 0) || len > ring->cap)
		return tbx_error(-EINVAL, "ring or buf is NULL, or len is above the capacity");
	ring->reserved = 0;
	if (len == 0)
		return 0;
	/* A batch never spans more than the capacity. */
	if (ring->pending + len > ring->cap)
		ring_flush_pending(ring);
	/* Loaded once a batch: nobody else publishes while this handle has a batch pending. */
	if (ring->pending == 0)
		ring->batch_pos = ring_write_pos(ring);
	w = ring->batch_pos;
	if (!OVERWRITE(ring) && ring_space(ring, w, ring->pending + len) < ring->pending + len) {
		ring_flush_pending(ring);
		r = mmapd_ring_wait_writable(ring, len, timeout_ms);
		if (r < 0)
			return r;
		w = ring->batch_pos = ring_write_pos(ring);
	}
	w += ring->pending;
	if (OVERWRITE(ring))
		ring_claim(ring, w + len);
	ring_put_copy(ring, ring_at(ring, w), buf, len);
	ring->pending += len;
	return 0;
}

MMAPD_EXPORT int mmapd_ring_flush(struct mmapd_ring *ring)
{
	if (!ring)
		return tbx_error(-EINVAL, "ring is NULL");
	ring_flush_pending(ring);
	return 0;
}

/* ---- the reader ---- */

/* The reader fell behind: what lies below e - cap is gone. Skips to the oldest intact byte. */
static int ring_overrun(struct mmapd_ring *ring, uint64_t r, uint64_t e)
{
	uint64_t oldest = e - ring->cap;

	ring->lost += oldest - r;
	atomic_store_explicit(&ring->hdr->read_pos, oldest, memory_order_release);
	return tbx_error(-EOVERFLOW, "the reader of ring '%s' fell behind: %llu bytes were "
	                 "overwritten (%llu in all)", mmapd_region_name(ring->region),
	                 (unsigned long long)(oldest - r), (unsigned long long)ring->lost);
}

/*
 * Bytes readable at the read position (stored in *ret_r), or -EOVERFLOW. The writer's
 * position is loaded again only when the one seen last leaves fewer than need bytes, which
 * keeps the writer's cache line out of the reader's way (as ring_space() does the reader's).
 */
static ptrdiff_t ring_avail(struct mmapd_ring *ring, size_t need, uint64_t *ret_r)
{
	uint64_t r = ring_read_pos(ring), e;

	*ret_r = r;
	if (OVERWRITE(ring) || ring_used(ring->write_seen, r, ring->cap) < need)
		ring->write_seen = ring_write_pos(ring);
	if (OVERWRITE(ring)) {
		e = atomic_load_explicit(&ring->hdr->write_end, memory_order_relaxed);
		if (e > r + ring->cap)
			return ring_overrun(ring, r, e);
	}
	return (ptrdiff_t)ring_used(ring->write_seen, r, ring->cap);
}

/*
 * Overwrite mode: whether the bytes from position r on, copied or looked at since
 * ring_avail(), were intact all along (the seqlock check). Returns 0 or -EOVERFLOW.
 */
static int ring_intact(struct mmapd_ring *ring, uint64_t r)
{
	uint64_t e;

	if (!OVERWRITE(ring))
		return 0;
	atomic_thread_fence(memory_order_acquire);
	e = atomic_load_explicit(&ring->hdr->write_end, memory_order_relaxed);
	return e > r + ring->cap ? ring_overrun(ring, r, e) : 0;
}

/* Consumes n bytes at position r and wakes a sleeping writer. */
static void ring_consume(struct mmapd_ring *ring, uint64_t r, size_t n)
{
	atomic_store_explicit(&ring->hdr->read_pos, r + n, memory_order_release);
	ring_wake(ring, &ring->hdr->space_seq, &ring->hdr->write_waiters);
}

MMAPD_EXPORT ptrdiff_t mmapd_ring_read(struct mmapd_ring *ring, void *buf, size_t len)
{
	ptrdiff_t n;
	uint64_t r;
	int err;

	if (!ring || (!buf && len > 0))
		return tbx_error(-EINVAL, "ring or buf is NULL");
	n = ring_avail(ring, len, &r);
	if (n <= 0)
		return n;
	n = (ptrdiff_t)min_size((size_t)n, len);
	memcpy(buf, ring_at(ring, r), (size_t)n);
	err = ring_intact(ring, r);
	if (err < 0)
		return err;
	ring_consume(ring, r, (size_t)n);
	return n;
}

MMAPD_EXPORT int mmapd_ring_read_peek(struct mmapd_ring *ring, const void **ret_ptr,
                                      size_t *ret_len)
{
	ptrdiff_t n;
	uint64_t r;

	if (!ring || !ret_ptr || !ret_len)
		return tbx_error(-EINVAL, "ring, ret_ptr or ret_len is NULL");
	n = ring_avail(ring, SIZE_MAX, &r);
	*ret_ptr = ring_at(ring, r);
	*ret_len = n > 0 ? (size_t)n : 0;
	return n < 0 ? (int)n : 0;
}

MMAPD_EXPORT int mmapd_ring_read_consume(struct mmapd_ring *ring, size_t len)
{
	uint64_t r;
	int err;

	if (!ring)
		return tbx_error(-EINVAL, "ring is NULL");
	r = ring_read_pos(ring);
	if (len > ring_used(ring->write_seen, r, ring->cap))
		ring->write_seen = ring_write_pos(ring);
	if (len > ring_used(ring->write_seen, r, ring->cap))
		return tbx_error(-EINVAL, "cannot consume %zu bytes: fewer are readable", len);
	err = ring_intact(ring, r);
	if (err < 0)
		return err;
	ring_consume(ring, r, len);
	return 0;
}

MMAPD_EXPORT int mmapd_ring_read_exact(struct mmapd_ring *ring, void *buf, size_t len,
                                       int timeout_ms)
{
	ptrdiff_t n;
	int r;

	if (!ring || (!buf && len > 0) || len > ring->cap)
		return tbx_error(-EINVAL, "ring or buf is NULL, or len is above the capacity");
	if (len == 0)
		return 0;
	r = mmapd_ring_wait_readable(ring, len, timeout_ms);
	if (r < 0)
		return r;
	/* With one reader, the len bytes found readable stay so until it reads them. */
	n = mmapd_ring_read(ring, buf, len);
	return n < 0 ? (int)n : 0;
}

MMAPD_EXPORT ptrdiff_t mmapd_ring_read_some(struct mmapd_ring *ring, void *buf, size_t len,
                                            size_t unit, int timeout_ms)
{
	struct timespec ts;
	ptrdiff_t n;
	uint64_t r;
	int err;

	if (unit == 0)
		unit = 1;
	if (!ring || !buf || len < unit || unit > ring->cap)
		return tbx_error(-EINVAL, "ring or buf is NULL, len is below unit or unit is above "
		                 "the capacity");
	n = ring_avail(ring, len, &r);
	if (n >= 0 && (size_t)n < unit) {
		err = ring_wait_data(ring, unit, ring_deadline(&ts, timeout_ms));
		if (err < 0)
			return err;
		n = ring_avail(ring, len, &r);
	}
	if (n < 0)
		return n;
	n = (ptrdiff_t)min_size(min_size((size_t)n, len), PTRDIFF_MAX);
	n -= n % (ptrdiff_t)unit;
	memcpy(buf, ring_at(ring, r), (size_t)n);
	err = ring_intact(ring, r);
	if (err < 0)
		return err;
	ring_consume(ring, r, (size_t)n);
	return n;
}

MMAPD_EXPORT ptrdiff_t mmapd_ring_read_until(struct mmapd_ring *ring, int delim, void *buf,
                                             size_t size, int timeout_ms)
{
	const struct timespec *deadline;
	struct timespec ts;
	const uint8_t *p, *hit;
	size_t limit, take;
	ptrdiff_t n;
	uint64_t r;
	int err;

	if (!ring || !buf || size == 0)
		return tbx_error(-EINVAL, "ring or buf is NULL, or size is 0");
	deadline = ring_deadline(&ts, timeout_ms);
	/* A full ring without the delimiter gives what it has, or the writer would wait forever. */
	limit = min_size(min_size(size, ring->cap), PTRDIFF_MAX);
	for (;;) {
		n = ring_avail(ring, SIZE_MAX, &r);
		if (n < 0)
			return n;
		p = ring_at(ring, r);
		hit = memchr(p, (unsigned char)delim, min_size((size_t)n, limit));
		take = hit ? (size_t)(hit - p) + 1 : (size_t)n >= limit ? limit : 0;
		if (take > 0) {
			memcpy(buf, p, take);
			err = ring_intact(ring, r);
			if (err < 0)
				return err;
			ring_consume(ring, r, take);
			return (ptrdiff_t)take;
		}
		err = ring_wait_data(ring, (size_t)n + 1, deadline);
		if (err < 0)
			return err;
	}
}
