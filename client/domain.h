/* SPDX-License-Identifier: MIT */
/*
 * Layer 5 of libmmapd (see internal.h): what the library does with calls: hello (hello.c),
 * queries (query.c, admin.c), mappings (mapping.c, hugemap.c, advise.c, atomic.c, scalar.c,
 * cursor.c, guard.c), coordination (coord.c) and regions (region.c). Included by those files
 * and top.h.
 */
#ifndef MMAPD_CLIENT_DOMAIN_H
#define MMAPD_CLIENT_DOMAIN_H

#include "call.h"

/* ---- hello.c ---- */

/*
 * The hello exchange on a fresh connection (flags: CALL_INTERNAL when reconnecting): offers
 * PROTO_VERSION, learns the version and frame limit. Returns 0 or a negative errno.
 */
int client_hello(struct mmapd_client *client, unsigned flags);

/* ---- mapping.c (lock held) ---- */

/* Address space held for a window to grow into: no access, no memory, no file. */
#define RESERVE_NONE (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* File offset of the mapping's first page. */
uint64_t region_start(const struct mmapd_region *region);
/* Pages of the mapping that hold bytes before file offset end (not capped). */
uint64_t region_pages_before(const struct mmapd_region *region, uint64_t end);
/* Whether transparent huge pages are advised on the region's mappings. */
bool region_wants_thp(const struct mmapd_region *region);
/* Publishes map (the mapping may have moved). */
void region_set_map(struct mmapd_region *region, uint8_t *map);
/*
 * Brings the mapping in line with the latest known size and any shrink in progress. Returns
 * false when the tail of a shrinking window could not be made inaccessible.
 */
bool region_apply(struct mmapd_region *region);
/* Takes a size the daemon reported, unless an event of a later generation came first. */
void region_resized(struct mmapd_region *region, uint64_t size, uint64_t generation);
/* The region called name now has size bytes (generation: the daemon's count). */
void regions_resized(struct mmapd_client *client, const char *name, uint64_t size,
                     uint64_t generation);
/*
 * The daemon shrinks name to size (request shrink): the tail of every window becomes
 * inaccessible. Returns true when it did for every window, so the shrink may be acknowledged.
 */
bool regions_shrinking(struct mmapd_client *client, const char *name, uint64_t size,
                       uint64_t shrink);
/* Shrink shrink was cancelled: windows are accessible again up to the region's size. */
void regions_shrink_cancelled(struct mmapd_client *client, const char *name, uint64_t shrink);
/* name was deleted: its regions no longer follow it and are not opened again on reconnect. */
void regions_deleted(struct mmapd_client *client, const char *name);
/* Whether a region called name is open (or was given up but not closed). Lock held. */
bool regions_have(const struct mmapd_client *client, const char *name);
/*
 * Checks that off..off+len lies in the part of the window that may be touched (all of it
 * unless a shrink cut or is cutting into it). Returns 0 or -ERANGE (message set).
 */
int region_check_range(const struct mmapd_region *region, uint64_t off, size_t len);

/* ---- fastlock.c ---- */

/* What fastlock_lock and fastlock_unlock return when the daemon must be asked instead. */
#define FAST_FALLBACK 1

/*
 * Takes a lock of the whole region called name (MMAPD_LOCK_* flags; region: a handle of it
 * whose page is remembered, or NULL) on its control page when this client holds it open
 * read-write, waiting there at most MMAPD_FAST_WAIT_US. Returns 0
 * with *ret_lock, a negative errno (message set: -EAGAIN with MMAPD_LOCK_NOWAIT, -ETIMEDOUT,
 * -ENOMEM), or FAST_FALLBACK: ask the daemon, with *ret_timeout_ms left of timeout_ms.
 * Lock not held.
 */
int fastlock_lock(struct mmapd_client *client, struct mmapd_region *region, const char *name,
                  unsigned flags, int timeout_ms, int *ret_timeout_ms, uint64_t *ret_lock);
/*
 * One try, without waiting and without a round trip, for a lock of the whole region called
 * name on a control page this client already has (region: a handle of it, or NULL): 0 with
 * *ret_lock, -ENOMEM, or FAST_FALLBACK (no page known yet, or the lock is busy: ask the
 * daemon). For the start calls. Lock not held.
 */
int fastlock_try(struct mmapd_client *client, struct mmapd_region *region, const char *name,
                 unsigned flags, uint64_t *ret_lock);
/*
 * Releases id if it is a fast lock of this client: 0, and *ret_tell is the id the daemon must
 * also release (it took the page's locks over meanwhile; EBADF from it means it handed them
 * back first) or 0. FAST_FALLBACK: not a fast lock. Lock not held.
 */
int fastlock_unlock(struct mmapd_client *client, uint64_t id, uint64_t *ret_tell);
/* The connection is gone: every page is dead and every fast lock lost. Returns how many. Lock
 * held. */
size_t fastlock_forget(struct mmapd_client *client);

/*
 * The control page of region (a handle, or NULL) or of the open read-write region called name,
 * asked of the daemon once (see fastlock.c): with client->fast_mu held when not NULL, released
 * by fastlock_page_done. Lock not held. (fastnotify.c uses the page's change log.)
 */
struct fast_page *fastlock_page(struct mmapd_client *client, struct mmapd_region *region,
                                const char *name);
void fastlock_page_done(struct mmapd_client *client);
/* This client's slot in the control page whose memfd is dev/ino, on the working connection,
 * or -1. Lock held. */
int fastlock_slot_of(struct mmapd_client *client, dev_t dev, ino_t ino);

/* The control pages of region name are now found by the name `to` ("renamed"). */
void fastlock_renamed(struct mmapd_client *client, const char *name, const char *to);

/* ---- fastnotify.c ---- */

/*
 * Reports a change of region (a handle, or NULL) or of the region called name in its control
 * page's change log when this client holds it open read-write and no flush policy makes the
 * daemon answer after a flush: 0 with *ret_seq (may be NULL), -ERANGE (message set), or
 * FAST_FALLBACK: send the changed request. offset is the region's. Lock not held.
 */
int fastnotify_report(struct mmapd_client *client, struct mmapd_region *region, const char *name,
                      uint64_t offset, uint64_t length, uint64_t *ret_seq);

/* ---- pagesub.c ---- */

/*
 * Records a page subscription to name made on the working connection: maps the control page
 * (page_fd, closed) read-only and watches its doorbell bell (taken) in client->epfd; tag is
 * what the reply's "slot" said, seq its "seq". Returns 0 or a negative errno (message not
 * set; both descriptors closed). Lock held.
 */
int pagesub_add(struct mmapd_client *client, const char *name, int page_fd, int bell,
                unsigned tag, uint64_t seq);
/* Drops the page subscription to name, if any. Lock held. */
void pagesub_forget(struct mmapd_client *client, const char *name);
/* Region name is now called `to` ("renamed"): its page subscription follows. Lock held. */
void pagesub_renamed(struct mmapd_client *client, const char *name, const char *to);
/*
 * Consumes the doorbells' edges in mmapd_client_fd()'s set (a ring after this makes it readable
 * again). Returns false when the set says the socket has nothing to read, else true (also
 * without page subscriptions). Lock held.
 */
bool pagesub_edges(struct mmapd_client *client);
/* Reads every page subscription's log and queues the events found. Lock held. */
void pagesub_read(struct mmapd_client *client);
/* Reads the log of the page subscription to name, if any (before another event of name is
 * queued). Lock held. */
void pagesub_catch_up(struct mmapd_client *client, const char *name);

/* ---- coord.c ---- */

/*
 * The requests of mmapd_lock(), mmapd_resize() and mmapd_flush() (flush: offset and length 0
 * is the whole file), checked and built in *ret_req; and the reply hooks that record, in stream
 * order, what the lock and resize replies mean (lock: ctx is a struct id_node ** whose node
 * the hook takes onto client->locks). Return 0 or a negative errno (message set).
 */
int lock_request_new(struct mmapd_client *client, const char *name, uint64_t offset,
                     uint64_t length, unsigned flags, int timeout_ms, cJSON **ret_req);
int lock_reply_hook(struct mmapd_client *client, struct call *call, const cJSON *reply);
int resize_request_new(struct mmapd_client *client, const char *name, uint64_t size,
                       unsigned flags, cJSON **ret_req);
int resize_reply_hook(struct mmapd_client *client, struct call *call, const cJSON *reply);
int flush_request_new(struct mmapd_client *client, const char *name, uint64_t offset,
                      uint64_t length, cJSON **ret_req);
/* Turns window offset off of region into a region offset. Returns 0 or -EINVAL/-ERANGE. */
int region_coord_offset(const struct mmapd_region *region, uint64_t off, uint64_t *ret);

/* Forgets every lock held (they died with the connection). Returns how many. Lock held. */
size_t locks_forget(struct mmapd_client *client);
/* Forgets the subscription to name, if any. Lock held. */
void subs_forget(struct mmapd_client *client, const char *name);
/* The subscription to name (if any) is now to name `to` ("renamed"). Lock held. */
void subs_renamed(struct mmapd_client *client, const char *name, const char *to);
/*
 * After a reconnection's hello: subscribes again to every region subscribed to. One that no
 * longer exists is forgotten (with a DELETED event unless a region of it had one). Returns 0,
 * or a negative errno (message set) when the connection failed meanwhile. Lock not held.
 */
int subs_restore(struct mmapd_client *client);

/* ---- hugemap.c ---- */
/*
 * The alignment the mapping of bytes bytes of region must start at, and in *ret_phase its
 * offset from it: the huge page size for a hugetlb region; the transparent huge page size and
 * the mapping's file offset modulo it for a region that wants them (region_wants_thp()) and
 * can hold one; else the region's page (any address).
 */
size_t hugemap_align(const struct mmapd_region *region, uint64_t bytes, size_t *ret_phase);

/* ---- region.c ---- */
/*
 * Drops a reference on region (taken with region->refs++ under the lock, as a reconnection
 * and a stdio cursor do); the last one frees the struct. Lock held.
 */
void region_put(struct mmapd_region *region);

/*
 * The first half of an open: checks client, name and opts, makes the region (on the client's
 * list, not granted yet) and fills *ret_call with its open request (the region as ctx, the
 * reply hook region_open_hook). Returns 0 or a negative errno (message set).
 */
int region_open_begin(struct mmapd_client *client, const char *name,
                      const struct mmapd_open_opts *opts, struct call *ret_call);
/* The open reply's hook (ctx: the region): the region takes the grant and the descriptor. */
int region_open_hook(struct mmapd_client *client, struct call *call, const cJSON *reply);
/*
 * The second half, once the reply came: learns the page size, maps it, advises huge pages.
 * Returns 0 or a negative errno (message set); the caller then frees the region. Lock not held.
 */
int region_open_finish(struct mmapd_region *region);
/*
 * Unmaps and closes region, releases its grant without waiting and drops the client's
 * reference (mmapd_region_close()). Lock not held.
 */
void region_free(struct mmapd_region *region);

/*
 * After a reconnection's hello: opens every region that held a grant again, by name and in
 * its mode. The mapping stays; the new descriptor is only compared with the old one. A
 * region whose name is gone or now names another file is given up (DELETED is queued).
 * Returns 0, or a negative errno (message set) when the connection failed meanwhile.
 * Lock not held.
 */
int regions_reopen(struct mmapd_client *client);

/*
 * Copies the caller's options into *ret as this library knows them (MMAPD_OPEN_OPTS(); opts
 * NULL: all defaults). Returns 0, -EINVAL or -E2BIG (message set).
 */
int open_opts_read(const struct mmapd_open_opts *opts, struct mmapd_open_opts *ret);
/*
 * The body of mmapd_region_adopt(): sends the adopt request with adopt_fd (consumed), which
 * the region keeps to adopt the file again after a reconnection and closes with the region.
 * name may be NULL (the daemon's reply names the region). opts were read and checked.
 * Returns as mmapd_region_open().
 */
int region_open_adopted(struct mmapd_client *client, const char *name,
                        const struct mmapd_open_opts *opts, int adopt_fd,
                        struct mmapd_region **ret_region);

/* ---- start.c ---- */

/*
 * Before an event reaches the application (event.c, lock not held): an OPEN_DONE's region
 * is mapped now, or freed when the open failed (ev->opened becomes NULL, ev->error and
 * ev->message say why); with no handler (claimed false) a mapped region is closed again.
 * Returns a string ev->message may point to, for the caller to free after the handler.
 */
char *start_event_deliver(struct mmapd_event *ev, bool claimed);
/* Frees the events of q, closing the regions of OPEN_DONE events (mmapd_disconnect()). Lock
 * not held. */
void start_events_drop(struct event_queue *q);

/* ---- manage.c ---- */

/* Region name is now called `to` ("renamed"): its windows take that name. Lock held. */
void regions_renamed(struct mmapd_client *client, const char *name, const char *to);

/* ---- query.c ---- */

/*
 * The info objects the library hands out (mmapd.h, "How this ABI grows"): the public struct
 * first, so that a pointer to it is a pointer to the whole, then the storage its strings point
 * at. Never copied by value once the pointers are set (region_entry_fix() sets them again).
 */
struct region_entry {
	struct mmapd_region_info info;
	char name[MMAPD_NAME_MAX + 1];
};
struct client_entry {
	struct mmapd_client_info info;
	char name[65];
};
struct lock_entry {
	struct mmapd_lock_info info;
	char region[MMAPD_NAME_MAX + 1];
	char client[65];
};
struct status_entry {
	struct mmapd_status status;
	char version[32];
};
/* The opaque lists: an array of entries, allocated at once. */
struct mmapd_region_list {
	struct region_entry *entries;
	size_t count;
};
struct mmapd_client_list {
	struct client_entry *entries;
	size_t count;
};
struct mmapd_lock_list {
	struct lock_entry *entries;
	size_t count;
};

/*
 * Fills *ret from a region object of a reply (ret->info.name points at ret->name). The
 * coordination fields (generation, policy, poisoned, seq, locks) are zero/manual when absent,
 * as from a daemon without them. Returns 0, or -EPROTO when a field is missing or malformed
 * (message not set).
 */
int region_info_parse(const cJSON *obj, struct region_entry *ret);

/*
 * A listing op answered a page at a time ({"<key>": [...], "more": bool}), asked again with
 * "after" set to the last entry until "more" is false. Entries must come in strictly rising
 * order, also across pages: the protocol's order, and what makes the loop end.
 */
struct pager {
	enum proto_op op;      /* PROTO_OP_LIST, PROTO_OP_CLIENTS */
	const char *key;       /* the reply's array, also the plural in messages */
	const char *noun;      /* one entry, for messages: "region", "client" */
	size_t size;           /* of one entry */
	/* Fills entry from item. Returns 0 or a negative errno (message not set). */
	int (*parse)(const cJSON *item, void *entry);
	/* Adds "after" for the entry last received to req. Returns 0 or a negative errno
	 * (message set). */
	int (*after)(cJSON *req, const void *last);
	/* True when entry may follow prev. */
	bool (*follows)(const void *prev, const void *entry);
	/* Points entry's strings at its own storage, once the array no longer moves. */
	void (*settle)(void *entry);
};

/*
 * Collects every page of p's op, each entry settled. Returns 0 with *ret_entries (malloc'd,
 * NULL when empty) and *ret_count, or a negative errno (message set).
 */
int pager_collect(struct mmapd_client *client, const struct pager *p, void **ret_entries,
                  size_t *ret_count);

#endif
