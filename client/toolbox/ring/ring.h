/* SPDX-License-Identifier: MIT */
/*
 * Private layout and plumbing of the rings (ring.c: layout, create/open/close and the double
 * mapping; ring_io.c: the byte stream, zero-copy and buffered calls; ring_wait.c: futex
 * wake-ups). Nothing here is exported.
 *
 * A ring is a region of one header page followed by capacity bytes of data. Byte positions
 * are 64-bit counts of bytes ever written (write_pos) and consumed (read_pos); the byte at
 * position p lives at data offset p % capacity. They never wrap in practice (2^64 bytes).
 * The data is mapped twice side by side, so the capacity bytes starting at any offset are
 * contiguous in memory: every copy below is one memcpy, every peek one pointer.
 */
#ifndef MMAPD_CLIENT_RING_H
#define MMAPD_CLIENT_RING_H

#include <stdalign.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mmapd-ring.h"

#define RING_MAGIC   0x474e495244504d4dull /* "MMPDRING" read as little-endian bytes */
/*
 * Layout version 2 is version 1's layout with the asymmetric barrier of ring_wait.c: its
 * publishers may skip the fence before they look for sleepers, which a version 1 waiter
 * (without membarrier()) could miss, so libmmapd before version 2 refuses version 2 rings.
 * Version 3 is version 2's with one wake-up per sleep (ring_wait.c): its publishers skip the
 * wake-up when no waiter went to sleep since their last one, which they can tell only because
 * this libmmapd's waiters bump the futex word as they go to sleep; an older waiter does not,
 * so libmmapd before version 3 refuses version 3 rings. This one creates version 3 and opens
 * all three (fencing on version 1, waking at every publish while anyone waits on 1 and 2).
 */
#define RING_VERSION 3u
#define RING_LINE    64                    /* a cache line: the two sides never share one */

/*
 * The header page, shared by every process. Fields the writer stores, fields the reader
 * stores and the wake-up words each have their own cache line.
 */
struct ring_header {
	_Atomic uint64_t magic;        /* stored last, with release, when the ring is formatted */
	uint32_t version;
	uint32_t flags;                /* MMAPD_RING_OVERWRITE */
	uint64_t capacity;

	/* The writer's line. */
	alignas(RING_LINE) _Atomic uint64_t write_pos; /* bytes published (release) */
	/*
	 * Overwrite mode only: bytes claimed, write_pos <= write_end <= write_pos + capacity.
	 * The writer raises it before it writes bytes below it, so the bytes at positions
	 * below write_end - capacity may be being overwritten.
	 */
	_Atomic uint64_t write_end;

	/* The reader's line. */
	alignas(RING_LINE) _Atomic uint64_t read_pos;  /* bytes consumed (release) */

	/*
	 * Wake-ups: futex words and the number of processes sleeping on them. A word is bumped
	 * by a waiter going to sleep on it and by a wake-up of its sleepers.
	 */
	alignas(RING_LINE) _Atomic uint32_t data_seq;  /* readers sleep here */
	_Atomic uint32_t read_waiters;
	_Atomic uint32_t space_seq;                    /* writers sleep here */
	_Atomic uint32_t write_waiters;

	/*
	 * The MMAPD_RING_WRITER and MMAPD_RING_READER handles' states (RING_SIDE_*). Such a
	 * handle holds an exclusive daemon lock on its word's first byte (its offset in the
	 * region) while it is open, and its process id is in the *_pid word (stored before the
	 * state). The lock dies with the handle's connection, but also with a daemon that
	 * restarts without handing its state over, while the process lives on: so state OPEN
	 * with the byte unlocked means that side died only when its process is gone too
	 * (pid_alive(); pid 0, from an older libmmapd, counts as gone).
	 */
	alignas(RING_LINE) _Atomic uint32_t writer;
	_Atomic uint32_t reader;
	_Atomic uint32_t writer_pid;
	_Atomic uint32_t reader_pid;
};

enum { RING_SIDE_NONE = 0, RING_SIDE_OPEN = 1, RING_SIDE_CLOSED = 2 };
/* Not a 32-bit futex word's value: what struct mmapd_ring's woke[] start at. */
#define RING_WOKE_NONE UINT64_MAX
/* How often a blocked wait checks whether the other side is still there. */
#define RING_SIDE_CHECK_MS 100
/* How long a waiter whose membarrier() failed sleeps before it looks again (ring_wait.c). */
#define RING_BLIND_SLICE_MS 1

/*
 * The spin budget of a wait before it sleeps (ring_wait.c). The ceiling is what one sleep and
 * its wake-up cost between two processes on the 2-vCPU KVM machine it was chosen on (a futex
 * ping-pong hands off in 20-34 us there): spinning up to what sleeping at once would have cost
 * wastes at most that much (the ski-rental bound, within twice the best choice made knowing
 * when the peer comes). Measured as bench --case ring, 64-byte write/read against a pipe in the
 * same runs (3 runs each, loaded machine): no spin 0.9-1.9x, 5 us 2.4-6.1x, 20 us 5.4-6.9x,
 * 50 us 5.7-7.3x; 20 us keeps what 50 us gains for less CPU burnt per idle wait. Measured
 * again after put() batches began to stream and wake-ups to come once per sleep (2026-12-08,
 * 3 runs each, load average 40-460): write/read 5 us 16-24x, 20 us 14-27x, 50 us 20-33x;
 * put/flush batches 5 us 33-66x, 20 us 38-51x, 50 us 24-72x: no bound clearly better, so 20
 * us stays. The floor
 * keeps a spin short enough to be cheap and long enough to notice a peer publishing again.
 * Both can be set at build time (-DRING_SPIN_MAX_NS=...) to measure others.
 */
#ifndef RING_SPIN_MAX_NS
#define RING_SPIN_MAX_NS 20000u
#endif
#ifndef RING_SPIN_MIN_NS
#define RING_SPIN_MIN_NS 1000u
#endif

struct mmapd_ring {
	struct mmapd_client *client;   /* borrowed: the one the ring was opened on */
	struct mmapd_region *region;   /* a window on the header page only */
	struct ring_header *hdr;
	uint8_t *data;                 /* capacity bytes mapped twice: 2 * capacity of addresses */
	size_t cap;
	uint64_t mask;                 /* cap - 1 when cap is a power of two, else 0 */
	unsigned flags;                /* MMAPD_RING_* of the header */
	uint32_t version;              /* of the header: 1 or 2 */
	bool fenceless;                /* publish without a fence (version 2, registered) */
	uint64_t spin_ns;              /* the spin budget of the next wait */
	uint64_t woke[2];              /* data_seq, space_seq as this handle's last wake-up left
	                                  them (RING_WOKE_NONE: it made none) */

	/* The sides this handle is (MMAPD_RING_WRITER, MMAPD_RING_READER): their daemon locks. */
	unsigned sides;
	uint64_t side_lock[2];         /* [0] writer, [1] reader */

	/* The writer's side, private to this handle. */
	uint64_t read_seen;            /* read_pos as last loaded (it only grows) */
	size_t reserved;               /* by mmapd_ring_write_reserve(), not committed yet */
	size_t pending;                /* put after write_pos and not published yet */
	uint64_t batch_pos;            /* write_pos when the pending batch began (pending > 0) */
	bool streamable;               /* not overwrite mode, and more than one CPU */
	bool stream;                   /* put() copies with non-temporal stores (ring_io.c) */
	bool unfenced;                 /* non-temporal stores made and not fenced yet */

	/* The reader's side. */
	uint64_t write_seen;           /* write_pos as last loaded (it only grows) */
	uint64_t lost;                 /* bytes skipped because the writer overwrote them */
};

/* What a waiter waits for: at least min bytes readable (or writable). */
typedef bool ring_ready_fn(const struct mmapd_ring *ring, size_t min);

/*
 * Sleeps on the futex word seq (counting itself in waiters) until ready(ring, min), the
 * deadline (NULL: none) or a signal. It fails with -EPIPE once the other side's state word
 * peer (the header's writer or reader) says it closed, or, checked after each
 * RING_SIDE_CHECK_MS slice spent asleep while that side is registered open, it died.
 * Returns 0, -ETIMEDOUT, -EINTR or -EPIPE (message set).
 */
int ring_wait(struct mmapd_ring *ring, _Atomic uint32_t *seq, _Atomic uint32_t *waiters,
              ring_ready_fn *ready, size_t min, _Atomic uint32_t *peer,
              const struct timespec *deadline);
/*
 * After a position was stored: wakes the processes sleeping on seq, if waiters says there
 * are any and (version 3) one went to sleep since this handle's last wake-up on seq (one
 * load when there are none, after a fence unless ring->fenceless).
 */
void ring_wake(struct mmapd_ring *ring, _Atomic uint32_t *seq, _Atomic uint32_t *waiters);
/* Sets ring->fenceless: registers the process for membarrier() on version 2 rings. */
void ring_barrier_register(struct mmapd_ring *ring);

/* Publishes the bytes put with mmapd_ring_put() (ring_io.c). */
void ring_flush_pending(struct mmapd_ring *ring);

#endif
