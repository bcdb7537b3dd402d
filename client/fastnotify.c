/* SPDX-License-Identifier: MIT */
/*
 * The fast path of change notification in libmmapd (docs/coordination.md, "Change notification
 * on the control page"; shared/changelog.h): a client holding a region open read-write reports
 * a change by publishing it in the change log of the region's control page (the page fastlock.c
 * asks for once per connection and region), with no round trip; the daemon hears of it through
 * a doorbell only when someone needs it to (protocol subscribers, a counting flush policy), and
 * the changed request stays for the policy that answers after a flush ("always").
 *
 * Threads of any process holding the page wait for changes on the log's futex word
 * (mmapd_region_wait_changed) and read them from the ring (mmapd_region_read_change): sequence
 * numbers are the daemon's, shared with the changed request; a change the ring overwrote before
 * it was read is reported as such (the reader's overflow).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctlpage.h"
#include "domain.h"
#include "msg.h"

/* How long a writer waits for the daemon to read the log before it overwrites what the daemon
 * did not read yet (its subscribers then get an overflow), and the room it leaves. */
#define FASTNOTIFY_RELAY_WAIT_MS 20
#define FASTNOTIFY_RELAY_ROOM    16

/* Tries of a read that finds its change reserved but not yet published (a writer between two
 * stores), yielding between them, before it says -EAGAIN. */
#define FASTNOTIFY_PUBLISH_TRIES 64

/* A page to report on, and its doorbell (-1: not fetched yet). */
struct fastnotify_page {
	struct fast_page *fp;
	struct changelog *log;
	unsigned slot;
	uint64_t gen;
	int bell;
};

/* The page of region or name into *ret. Returns 0 or FAST_FALLBACK (no page to use). */
static int fastnotify_page(struct mmapd_client *client, struct mmapd_region *region,
                           const char *name, struct fastnotify_page *ret)
{
	struct fast_page *fp = fastlock_page(client, region, name);

	if (!fp)
		return FAST_FALLBACK;
	ret->fp = fp;
	ret->log = ctlpage_log(fp->page);
	ret->slot = fp->slot;
	ret->gen = fp->gen;
	fastlock_page_done(client);
	ret->bell = atomic_load_explicit(&fp->bell, memory_order_acquire) - 1;
	return 0;
}

/*
 * Asks the daemon for the doorbell of p (the changed request's doorbell form, which also makes
 * it read the log now) and keeps it in the page. Returns 0 or a negative errno.
 */
static int fastnotify_bell(struct mmapd_client *client, const char *name,
                           struct fastnotify_page *p)
{
	struct call call = { .flags = CALL_PINNED, .want_fd = true, .fd = -1, .gen = p->gen };
	struct error_saved saved;
	int r, none = 0;

	error_save(&saved);
	r = request_start_region(client, proto_op_name(PROTO_OP_CHANGED), name, &call.req);
	if (r == 0 && !cJSON_AddBoolToObject(call.req, PROTO_FIELD_DOORBELL, 1))
		r = -ENOMEM;
	if (r == 0)
		r = client_run(client, &call);
	if (r == 0 && call.fd < 0)
		r = -EPROTO;
	cJSON_Delete(call.req);
	cJSON_Delete(call.reply);
	error_restore(&saved);
	if (r < 0)
		return r;
	/* Another thread may have fetched one meanwhile: the first kept stays. */
	if (atomic_compare_exchange_strong(&p->fp->bell, &none, call.fd + 1)) {
		p->bell = call.fd;
	} else {
		close(call.fd);
		p->bell = none - 1;
	}
	return 0;
}

/* The size of the open region called name, or 0 (none open here). */
static uint64_t fastnotify_size(struct mmapd_client *client, struct mmapd_region *region,
                                const char *name)
{
	uint64_t size = 0;

	if (region)
		return atomic_load_explicit(&region->size, memory_order_relaxed);
	pthread_mutex_lock(&client->lock);
	for (region = client->regions; region && !size; region = region->next)
		if (region->granted && !region->gone && strcmp(region->name, name) == 0)
			size = atomic_load_explicit(&region->size, memory_order_relaxed);
	pthread_mutex_unlock(&client->lock);
	return size;
}

/* Waits (a bounded time) until the daemon read far enough that the next change does not
 * overwrite one it did not read. */
static void fastnotify_keep_pace(struct fastnotify_page *p)
{
	struct timespec end, now;
	bool rung = false;

	for (;;) {
		uint64_t head = atomic_load_explicit(&p->log->head, memory_order_relaxed);
		uint64_t relayed = atomic_load_explicit(&p->log->relayed, memory_order_acquire);

		if (head < relayed || head - relayed < CHANGELOG_ENTRIES - FASTNOTIFY_RELAY_ROOM)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!rung) {
			rung = true;
			(void)changelog_ring(p->bell);
			deadline_after(&end, FASTNOTIFY_RELAY_WAIT_MS);
		} else if (now.tv_sec > end.tv_sec ||
		           (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec)) {
			return;
		}
		sched_yield();
	}
}

int fastnotify_report(struct mmapd_client *client, struct mmapd_region *region, const char *name,
                      uint64_t offset, uint64_t length, uint64_t *ret_seq)
{
	struct fastnotify_page p;
	uint64_t size, seq;
	uint32_t route;

	if (fastnotify_page(client, region, name, &p) != 0)
		return FAST_FALLBACK;
	route = atomic_load_explicit(&p.log->route, memory_order_relaxed);
	if (route != CHANGELOG_ROUTE_NONE && route != CHANGELOG_ROUTE_DOORBELL)
		return FAST_FALLBACK;
	size = fastnotify_size(client, region, name);
	if (offset > size || length > size - offset)
		return error_set(-ERANGE, "the range %llu+%llu does not lie inside region '%s' "
		                 "(%llu bytes)", (unsigned long long)offset,
		                 (unsigned long long)length, name, (unsigned long long)size);
	/* The doorbell first: a change published without one could wait for the next ring. */
	if (p.bell < 0 && changelog_must_ring(p.log) && fastnotify_bell(client, name, &p) < 0)
		return FAST_FALLBACK;
	if (route != CHANGELOG_ROUTE_NONE)
		fastnotify_keep_pace(&p);
	seq = changelog_publish(p.log, offset, length, (uint32_t)getpid(), p.slot, 0);
	if (seq == 0)
		return FAST_FALLBACK;
	/* Read after the reservation (seq_cst): a route or listeners set before it are seen
	 * here (relay.c, notify.c), so the daemon or a page subscriber that needs it hears. */
	if (changelog_must_ring(p.log)) {
		if (p.bell >= 0)
			(void)changelog_ring(p.bell);
		else
			(void)fastnotify_bell(client, name, &p);   /* it reads the log as it answers */
	}
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}

/* The page of region for a reader: 0, or -EOPNOTSUPP (message set). */
static int fastnotify_reader(struct mmapd_region *region, struct fastnotify_page *p)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	if (fastnotify_page(region->client, region, region->name, p) != 0)
		return error_set(-EOPNOTSUPP, "region '%s' has no control page here (it is open "
		                 "read-write only with one): subscribe to its events instead",
		                 region->name);
	return 0;
}

MMAPD_EXPORT int mmapd_region_wait_changed(struct mmapd_region *region, uint64_t after_seq,
                                           int timeout_ms, uint64_t *ret_seq)
{
	struct fastnotify_page p;
	struct timespec deadline;
	int64_t h;
	int r = fastnotify_reader(region, &p), spins;

	if (r < 0)
		return r;
	/* A short spin first: a change that comes within it costs no sleep and no wake-up. */
	for (spins = 0; spins < MMAPD_FAST_SPIN; spins++) {
		uint64_t head = changelog_head(p.log);

		if (head > after_seq) {
			if (ret_seq)
				*ret_seq = head;
			return 0;
		}
		if (timeout_ms == 0)
			return error_set(-ETIMEDOUT, "no change of region '%s' after seq %llu",
			                 region->name, (unsigned long long)after_seq);
		sched_yield();
	}
	if (timeout_ms > 0)
		deadline_after(&deadline, timeout_ms);
	h = changelog_wait(p.log, after_seq, timeout_ms > 0 ? &deadline : NULL);
	if (h == -ETIMEDOUT)
		return error_set(-ETIMEDOUT, "no change of region '%s' after seq %llu within "
		                 "timeout_ms (%d)", region->name, (unsigned long long)after_seq,
		                 timeout_ms);
	if (h == -ESHUTDOWN)
		return error_set(-ESHUTDOWN, "the daemon that kept the change log of region '%s' "
		                 "handed its connections over to another: subscribe to its events, "
		                 "or reconnect", region->name);
	if (h < 0)
		return error_set((int)h, "waiting for a change of region '%s' was interrupted",
		                 region->name);
	if (ret_seq)
		*ret_seq = (uint64_t)h;
	return 0;
}

MMAPD_EXPORT int mmapd_region_read_change(struct mmapd_region *region, uint64_t seq,
                                          struct mmapd_change *ret)
{
	struct changelog_change ch;
	struct fastnotify_page p;
	int r = fastnotify_reader(region, &p), tries;

	if (r < 0)
		return r;
	if (!ret)
		return error_set(-EINVAL, "ret is NULL");
	for (tries = 0; (r = changelog_read(p.log, seq, &ch)) == -EAGAIN &&
	                changelog_head(p.log) >= seq && tries < FASTNOTIFY_PUBLISH_TRIES; tries++)
		sched_yield();
	if (r == -ESTALE)
		return error_set(-ESTALE, "change %llu of region '%s' was overwritten before it was "
		                 "read: re-read the region", (unsigned long long)seq, region->name);
	if (r < 0)
		return error_set(-EAGAIN, "change %llu of region '%s' is not published yet",
		                 (unsigned long long)seq, region->name);
	ret->seq = ch.seq;
	ret->offset = ch.offset;
	ret->length = ch.length;
	ret->writer_pid = (long)ch.pid;
	return 0;
}
