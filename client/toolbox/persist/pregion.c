/* SPDX-License-Identifier: MIT */
/*
 * The region under a persistent vector or hash map (pvec.c, phash.c).
 *
 * It is opened read-write, following the region's size, with MMAPD_PERSIST_RESERVE bytes of
 * address space reserved: growth maps new pages in place, so the structure's bytes never move
 * in any process. Growth is a resize through the daemon, whose "resized" event reaches every
 * other process; a process learns of it whenever libmmapd reads from the daemon. So before
 * touching bytes past what its mapping covers (a length another process raised), a process
 * makes one round trip: the daemon sent the event before it answered the resize that made
 * those bytes exist, so the event is read, and the mapping grown, before the round trip's
 * reply. Bytes still missing after that are a header that lies: -EBADMSG.
 *
 * The lock is a daemon lock (mmapd_lock()) on the structure's header, so it is fair, works
 * between processes, and dies with its holder.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "persist.h"
#include "toolbox.h"

#define PERSIST_FLAGS_ALL (MMAPD_PERSIST_CREATE | MMAPD_PERSIST_ANONYMOUS | MMAPD_PERSIST_DURABLE)

int pregion_open(struct pregion *p, struct mmapd_client *client, const char *name,
                 unsigned flags, uint64_t size, const struct mmapd_layout *layout,
                 pstruct_init_fn *init, pregion_check_fn *check, void *ctx)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.mode = MMAPD_MODE_RW, .size = size, .reserve = MMAPD_PERSIST_RESERVE);
	void *body;
	int r;

	memset(p, 0, sizeof(*p));
	if (flags & ~PERSIST_FLAGS_ALL)
		return tbx_error(-EINVAL, "unknown flags 0x%x", flags & ~PERSIST_FLAGS_ALL);
	if ((flags & MMAPD_PERSIST_ANONYMOUS) && !(flags & MMAPD_PERSIST_CREATE))
		return tbx_error(-EINVAL, "MMAPD_PERSIST_ANONYMOUS needs MMAPD_PERSIST_CREATE");
	o.flags = (flags & MMAPD_PERSIST_CREATE ? MMAPD_OPEN_CREATE : 0) |
	          (flags & MMAPD_PERSIST_ANONYMOUS ? MMAPD_OPEN_ANONYMOUS : 0);
	r = mmapd_region_open(client, name, &o, &p->region);
	if (r < 0)
		return r;
	p->client = client;
	p->durable = flags & MMAPD_PERSIST_DURABLE;
	p->pid = (uint32_t)getpid();
	r = pstruct_open(p->region, 0, layout, MMAPD_PSTRUCT_INIT, init, ctx, &body);
	if (r == 0)
		r = check(body, ctx);
	if (r < 0) {
		struct tbx_saved saved;

		tbx_message_save(&saved);
		pregion_close(p);
		tbx_message_restore(&saved, r);
	}
	return r;
}

void pregion_close(struct pregion *p)
{
	if (p->locked)
		pregion_unlock(p);
	mmapd_region_close(p->region);
	p->region = NULL;
}

uint8_t *pregion_data(const struct pregion *p)
{
	return mmapd_region_data(p->region);
}

static bool pregion_covers(const struct pregion *p, uint64_t bytes)
{
	return tbx_region_covers(p->region, bytes);
}

int pregion_need(struct pregion *p, uint64_t bytes, const char *what)
{
	int r;

	if (pregion_covers(p, bytes))
		return 0;
	r = mmapd_ping(p->client);
	if (r < 0)
		return r;
	if (pregion_covers(p, bytes))
		return 0;
	return tbx_error(-EBADMSG, "the %s in '%s' claims %llu bytes but the region has %llu",
	                 what, mmapd_region_name(p->region), (unsigned long long)bytes,
	                 (unsigned long long)mmapd_region_size(p->region));
}

int pregion_grow(struct pregion *p, uint64_t bytes, const char *what)
{
	int r;

	if (bytes > MMAPD_PERSIST_RESERVE)
		return tbx_error(-EFBIG, "the %s in '%s' would need %llu bytes, more than the %llu "
		                 "reserved for it", what, mmapd_region_name(p->region),
		                 (unsigned long long)bytes, (unsigned long long)MMAPD_PERSIST_RESERVE);
	/* Grow only: whoever grew it meanwhile may have made it larger than bytes already. */
	r = mmapd_resize(p->client, mmapd_region_name(p->region), bytes, MMAPD_RESIZE_GROW_ONLY);
	if (r < 0)
		return r;
	return pregion_need(p, bytes, what);
}

int pregion_lock(struct pregion *p, int timeout_ms)
{
	int r;

	if (p->locked)
		return tbx_error(-EALREADY, "this handle already holds the lock of '%s'",
		                 mmapd_region_name(p->region));
	r = mmapd_lock(p->client, mmapd_region_name(p->region), 0, MMAPD_PSTRUCT_HEADER,
	               MMAPD_LOCK_EXCLUSIVE, timeout_ms, &p->lock);
	if (r == 0)
		p->locked = true;
	return r;
}

int pregion_unlock(struct pregion *p)
{
	if (!p->locked)
		return tbx_error(-ENOLCK, "this handle does not hold the lock of '%s'",
		                 mmapd_region_name(p->region));
	p->locked = false;
	return mmapd_unlock(p->client, p->lock);
}
