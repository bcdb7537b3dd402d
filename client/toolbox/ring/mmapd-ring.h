/* SPDX-License-Identifier: MIT */
/*
 * libmmapd's rings: a byte stream between processes in a region, without locks or system
 * calls on the fast path. Part of libmmapd (same library, same symbol version), but a toolbox
 * built only on the public API of mmapd.h, which it includes: anything it does, any client
 * could do (client/toolbox/ring/). Conventions (return values, ownership,
 * mmapd_last_message()) are those of mmapd.h.
 */
#ifndef MMAPD_RING_H
#define MMAPD_RING_H

#include <stddef.h>
#include <stdint.h>

#include "mmapd.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ---- Rings ----
 * A byte ring in a region: one header page (positions, flags, wake-up words) and then
 * `capacity` bytes of data, mapped twice side by side so that any span of up to capacity bytes
 * starting anywhere in the ring is contiguous in memory (no wrap-around to handle). One writer
 * and one reader, in the same or different processes, move bytes without locks or system
 * calls (acquire/release on 64-bit positions in the shared header); a side that waits sleeps
 * on a futex in the header, and the other side wakes it only when someone sleeps. Several
 * writers (or readers) must take turns under a lock of their own (e.g. mmapd_lock() on the
 * ring's region), flushing any put() batch before letting go. The ring's region must not be
 * resized while mapped. A struct mmapd_ring is used by one thread at a time.
 * docs/client-api.md, "Rings", gives the memory model.
 */
struct mmapd_ring;

#define MMAPD_RING_OVERWRITE 0x1u /* create: writes never wait; the oldest bytes are overwritten */
#define MMAPD_RING_ANONYMOUS 0x2u /* create: a memfd region (MMAPD_OPEN_ANONYMOUS), no file */
/*
 * create, open: this handle is the ring's one writer, or one reader (both: allowed). It holds
 * an exclusive mmapd_lock() on a byte of the header while open and records its process id
 * there (-EBUSY for a second writer, or reader, handle, even on one connection, and while a
 * side whose lock a daemon restart dropped lives), so the other side learns when it closes or
 * dies: see mmapd_ring_wait_readable().
 */
#define MMAPD_RING_WRITER    0x4u
#define MMAPD_RING_READER    0x8u
#define MMAPD_RING_CAPACITY_MAX (1ull << 40)

/*
 * Creates region name (exclusively: -EEXIST if it exists) of one page plus capacity bytes,
 * formats a ring in it and opens it. capacity (1 .. MMAPD_RING_CAPACITY_MAX) is rounded up to
 * a multiple of the page size (4000 makes a ring of 4096 bytes with 4 KiB pages; see
 * mmapd_ring_capacity()). flags: MMAPD_RING_*. Returns 0 with *ret_ring set (free with
 * mmapd_ring_close()), -EINVAL (NULL argument, unknown flag, bad capacity), -ENOMEM (also no
 * address space for 2 * capacity), or mmapd_region_open()'s errors (-EEXIST, -EFBIG, -ENOSPC,
 * ...). On failure after the region was created it is deleted again.
 */
MMAPD_EXPORT int mmapd_ring_create(struct mmapd_client *client, const char *name,
                                   size_t capacity, unsigned flags,
                                   struct mmapd_ring **ret_ring);
/*
 * Opens the ring in region name (read-write) and validates its header. flags: 0,
 * MMAPD_RING_WRITER and/or MMAPD_RING_READER. Returns 0 with *ret_ring set, -EBUSY
 * (MMAPD_RING_WRITER, or READER, and another handle is that side; also from
 * mmapd_ring_create()), -EAGAIN (not formatted yet: its creator is still at it, or died, in
 * which case delete the region), -EBADMSG (not a ring, or a corrupt header: region
 * size, capacity or positions that do not fit), -EPROTO (a layout version or flag this
 * libmmapd does not know), -EINVAL, or mmapd_region_open()'s errors (-ENOENT, -EACCES, ...).
 */
MMAPD_EXPORT int mmapd_ring_open(struct mmapd_client *client, const char *name, unsigned flags,
                                 struct mmapd_ring **ret_ring);
/*
 * Publishes a pending mmapd_ring_put() batch, unmaps the ring and closes its region. Closing
 * the MMAPD_RING_WRITER handle marks the end of the stream (readers drain, then get -EPIPE)
 * until another writer opens the ring; closing the MMAPD_RING_READER handle makes a waiting
 * writer get -EPIPE. Accepts NULL.
 */
MMAPD_EXPORT void mmapd_ring_close(struct mmapd_ring *ring);

MMAPD_EXPORT size_t mmapd_ring_capacity(const struct mmapd_ring *ring);
/* MMAPD_RING_OVERWRITE or 0, as created. */
MMAPD_EXPORT unsigned mmapd_ring_flags(const struct mmapd_ring *ring);
/* The region holding the header (borrowed), e.g. for its name or mmapd_lock(). */
MMAPD_EXPORT struct mmapd_region *mmapd_ring_region(const struct mmapd_ring *ring);
/* Overwrite mode: bytes this handle's reads skipped because the writer overwrote them. */
MMAPD_EXPORT uint64_t mmapd_ring_lost(const struct mmapd_ring *ring);
/*
 * Bytes published and not consumed (at most the capacity; in overwrite mode the next read may
 * find some were overwritten), and bytes free for writing after this handle's pending put()
 * batch (the capacity in overwrite mode).
 */
MMAPD_EXPORT size_t mmapd_ring_readable(const struct mmapd_ring *ring);
MMAPD_EXPORT size_t mmapd_ring_writable(const struct mmapd_ring *ring);

/*
 * Copies up to len bytes in and publishes them. Returns the count written, 0 when the ring
 * is full (never waits), or -EINVAL. In overwrite mode every byte is written (only the last
 * capacity bytes of a longer write can survive). Publishes a pending put() batch first.
 */
MMAPD_EXPORT ptrdiff_t mmapd_ring_write(struct mmapd_ring *ring, const void *buf, size_t len);
/*
 * Copies up to len readable bytes out and consumes them. Returns the count read, 0 when the
 * ring is empty (never waits), -EINVAL, or in overwrite mode -EOVERFLOW once when the writer
 * overwrote bytes not read yet: nothing is read, the read position moves to the oldest intact
 * byte and mmapd_ring_lost() grows by the bytes skipped. Never returns torn bytes.
 */
MMAPD_EXPORT ptrdiff_t mmapd_ring_read(struct mmapd_ring *ring, void *buf, size_t len);

/*
 * Zero-copy writing: *ret_ptr points at len contiguous free bytes (1 .. capacity); fill some
 * and publish them with mmapd_ring_write_commit(). Returns 0, -EAGAIN (fewer than len bytes
 * free: nothing reserved), -EINVAL. Any other write call ends the reservation.
 */
MMAPD_EXPORT int mmapd_ring_write_reserve(struct mmapd_ring *ring, size_t len, void **ret_ptr);
/* Publishes the first len bytes of the reservation. Returns 0, -EINVAL (len above it). */
MMAPD_EXPORT int mmapd_ring_write_commit(struct mmapd_ring *ring, size_t len);
/*
 * Zero-copy reading: *ret_ptr points at the *ret_len readable bytes (0 when empty), contiguous.
 * Returns 0, -EINVAL, or -EOVERFLOW as mmapd_ring_read() (overwrite mode).
 */
MMAPD_EXPORT int mmapd_ring_read_peek(struct mmapd_ring *ring, const void **ret_ptr,
                                      size_t *ret_len);
/*
 * Consumes the first len peeked bytes. Returns 0, -EINVAL (more than readable), or in
 * overwrite mode -EOVERFLOW when the writer may have overwritten them while they were looked
 * at (so trust what was peeked only once this returned 0; nothing is consumed, the position
 * moves on as for mmapd_ring_read()).
 */
MMAPD_EXPORT int mmapd_ring_read_consume(struct mmapd_ring *ring, size_t len);

/*
 * Waits until at least min bytes (0 counts as 1) are readable, or writable, for up to
 * timeout_ms (0: do not wait, < 0: forever). Returns 0, -ETIMEDOUT, -EINTR (a signal),
 * -EINVAL (min above the capacity), -EPIPE (readable: fewer than min bytes are there and
 * the MMAPD_RING_WRITER handle closed, or died; what is there can still be read. Writable:
 * the MMAPD_RING_READER handle closed or died). A blocked wait checks the other side with a
 * try-lock every 100 ms; a free lock means death only when the side's recorded process is gone
 * too (kill(pid, 0) says ESRCH, or a zombie), so a daemon restart that drops the locks of live
 * processes does not end the stream (same pid namespace assumed: docs/client-api.md). A ring
 * in overwrite mode is always writable.
 */
MMAPD_EXPORT int mmapd_ring_wait_readable(struct mmapd_ring *ring, size_t min, int timeout_ms);
MMAPD_EXPORT int mmapd_ring_wait_writable(struct mmapd_ring *ring, size_t min, int timeout_ms);

/*
 * Buffered reading (the ring is its own buffer). mmapd_ring_read_exact() reads exactly len
 * bytes (at most the capacity), waiting up to timeout_ms for all of them: all or nothing.
 * Returns 0, -EPIPE/-ETIMEDOUT/-EINTR (nothing read), -EINVAL, -EOVERFLOW (overwrite mode).
 */
MMAPD_EXPORT int mmapd_ring_read_exact(struct mmapd_ring *ring, void *buf, size_t len,
                                       int timeout_ms);
/*
 * Batch reading: waits up to timeout_ms until at least unit bytes (0 counts as 1) are
 * readable, then copies out and consumes every whole unit that is readable and fits in len, in
 * one call: for a stream of records of unit bytes, all the records there are. Returns the
 * count read (a non-zero multiple of unit), -EPIPE/-ETIMEDOUT/-EINTR (nothing read: as
 * mmapd_ring_wait_readable()), -EINVAL (NULL argument, len below unit, unit above the
 * capacity), -EOVERFLOW (overwrite mode, as mmapd_ring_read(); the oldest intact byte need not
 * start a unit).
 */
MMAPD_EXPORT ptrdiff_t mmapd_ring_read_some(struct mmapd_ring *ring, void *buf, size_t len,
                                            size_t unit, int timeout_ms);
/*
 * Reads up to and including the next byte delim, waiting up to timeout_ms (for the whole
 * call) for it, like fgets(): returns the count copied to buf, which ends with delim unless
 * size bytes (or the whole capacity, when the ring is full without delim) came first. Not
 * NUL-terminated. Returns -EPIPE/-ETIMEDOUT/-EINTR (nothing read), -EINVAL (size 0),
 * -EOVERFLOW.
 */
MMAPD_EXPORT ptrdiff_t mmapd_ring_read_until(struct mmapd_ring *ring, int delim, void *buf,
                                             size_t size, int timeout_ms);
/*
 * Buffered writing: mmapd_ring_put() copies len bytes (at most the capacity) into the free
 * space after the pending batch without publishing them; mmapd_ring_flush() publishes the
 * batch with one store (and at most one wake-up). When the batch and len do not fit, put
 * publishes the batch and waits up to timeout_ms for room. Returns 0, -ETIMEDOUT/-EINTR/
 * -EPIPE (buf not taken; the batch was published), -EINVAL. mmapd_ring_close() flushes too.
 */
MMAPD_EXPORT int mmapd_ring_put(struct mmapd_ring *ring, const void *buf, size_t len,
                                int timeout_ms);
MMAPD_EXPORT int mmapd_ring_flush(struct mmapd_ring *ring);

#ifdef __cplusplus
}
#endif

#endif
