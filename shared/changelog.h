/* SPDX-License-Identifier: MIT */
/*
 * The change log of a region: the pages of its control page after the first (ctlpage.h,
 * CTLPAGE_LOG_OFFSET; docs/coordination.md "Change notification on the control page"). It
 * carries the region's change sequence number and the last CHANGELOG_ENTRIES changes, so that a
 * writer holding the page reports a change with no round trip and a reader learns of it with no
 * daemon in between: threads sleep on the futex word "wake"; the daemon relays the entries to
 * protocol subscribers (JSON `changed` events) when a writer rings its doorbell.
 *
 * Writing change s: head is reserved with one fetch-and-add (s = old head + 1); the entry
 * s % CHANGELOG_ENTRIES is marked busy, filled, and published by storing s into its seq
 * (release). A reader of s checks the entry's seq before and after reading it (a seqlock):
 * equal to s, it has the change; above s, the ring lapped it (an overflow); busy or below s,
 * not yet published.
 *
 * The daemon's word "route" tells writers who needs to hear of changes besides the readers of
 * the page: nobody, the daemon by doorbell, or the daemon by the protocol (a flush policy that
 * answers after the flush). While the daemon reads the log, writers keep within the ring of
 * what it read ("relayed"), waiting a bounded time for it, so that changes are not lost on
 * their way to protocol subscribers because the daemon was busy.
 *
 * The daemon's word "listeners" counts page subscriptions (docs/coordination.md): subscribers
 * that read the changes from this log themselves and are woken by the same doorbell, which
 * they watch edge-triggered with epoll. While it is nonzero every change rings it.
 *
 * A page holder can write anything here: every function is bounded, and the daemon checks
 * what it reads.
 */
#ifndef MMAPD_SHARED_CHANGELOG_H
#define MMAPD_SHARED_CHANGELOG_H

#include <stdalign.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define CHANGELOG_ENTRIES 248u         /* fills the log's pages: see the assertion below */
#define CHANGELOG_BUSY    UINT64_MAX   /* an entry's seq while a writer fills it */
/* Seqs stay below 2^53, so that JSON carries them exactly (a scribbled head is clamped). */
#define CHANGELOG_SEQ_MAX ((1ull << 53) - 1)

/* The slot of an entry written by the daemon (a change reported through the protocol). */
#define CHANGELOG_DAEMON  0xffffu
/* An entry's flags. */
#define CHANGELOG_RELAYED 1u           /* the daemon sent the JSON events already */
#define CHANGELOG_EXTERNAL 2u          /* made outside mmapd: the range is the whole region,
                                          pid 0 (docs/coordination.md) */

enum changelog_route {
	CHANGELOG_ROUTE_NONE,          /* only readers of the page care */
	CHANGELOG_ROUTE_DOORBELL,      /* ring the daemon's doorbell after publishing */
	CHANGELOG_ROUTE_PROTOCOL,      /* report through the `changed` request instead */
	CHANGELOG_ROUTE_GONE,          /* no daemon reads this log any more (it handed its
	                                  connections to the next one): use the protocol */
};

struct changelog_entry {
	_Atomic uint64_t seq;         /* stored last; CHANGELOG_BUSY while being filled */
	_Atomic uint64_t offset;
	_Atomic uint64_t length;
	_Atomic uint32_t pid;         /* the writer's */
	_Atomic uint16_t slot;        /* its slot in the control page, or CHANGELOG_DAEMON */
	_Atomic uint16_t flags;       /* CHANGELOG_RELAYED, CHANGELOG_EXTERNAL */
};

struct changelog {
	alignas(64) _Atomic uint64_t head;   /* the last seq reserved */
	_Atomic uint32_t route;       /* enum changelog_route, the daemon's */
	_Atomic uint64_t relayed;     /* the daemon's: it read every change up to this seq */
	_Atomic uint32_t listeners;   /* the daemon's: subscribers that wait on the doorbell
	                                 (page subscriptions): nonzero, every change rings it */
	alignas(64) _Atomic uint32_t wake;   /* futex: bumped by writers that find sleepers */
	_Atomic uint32_t sleepers;
	alignas(64) struct changelog_entry entries[CHANGELOG_ENTRIES];
};

/* A change as read from the log. */
struct changelog_change {
	uint64_t seq, offset, length;
	uint32_t pid;
	unsigned slot, flags;
};

/* Sets up a zeroed log whose last change is seq (the daemon, before the page is passed). */
void changelog_init(struct changelog *log, uint64_t seq, enum changelog_route route);

/* The last seq reserved, clamped to CHANGELOG_SEQ_MAX. */
uint64_t changelog_head(struct changelog *log);

/*
 * Reserves, fills and publishes a change, then wakes the log's sleepers. Returns its seq, or 0
 * when the log is full of seqs (a scribbled head at CHANGELOG_SEQ_MAX).
 */
uint64_t changelog_publish(struct changelog *log, uint64_t offset, uint64_t length, uint32_t pid,
                           unsigned slot, unsigned flags);

/* Reads change seq: 0, -EAGAIN (not published yet), -ESTALE (overwritten: the ring lapped). */
int changelog_read(struct changelog *log, uint64_t seq, struct changelog_change *ret);

/* The daemon stops reading log for good: route CHANGELOG_ROUTE_GONE, and sleepers wake. */
void changelog_close(struct changelog *log);

/*
 * Whether a change published in log must ring its doorbell, read after the change was
 * reserved: the daemon may need it (any route but CHANGELOG_ROUTE_NONE) or page subscribers
 * wait on it.
 */
bool changelog_must_ring(struct changelog *log);
/*
 * Rings the doorbell bell (an eventfd): adds 1. Every holder may write it, so a counter driven
 * to its maximum (a write would fail with EAGAIN) is drained and rung again: page subscribers
 * wait for the edge of a write (EPOLLET), never for the count. Returns 0 or -errno.
 */
int changelog_ring(int bell);

/*
 * Sleeps until the head passes after_seq or the absolute CLOCK_MONOTONIC deadline (NULL: none).
 * Returns the head (> after_seq), -ETIMEDOUT, -EINTR, or -ESHUTDOWN (the route is
 * CHANGELOG_ROUTE_GONE).
 */
int64_t changelog_wait(struct changelog *log, uint64_t after_seq, const struct timespec *deadline);

#endif
