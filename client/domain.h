/* SPDX-License-Identifier: MIT */
/*
 * Layer 5 of libmmapd (see internal.h): what the library does with calls: hello (hello.c),
 * queries (query.c, admin.c), mappings (mapping.c, advise.c, atomic.c, guard.c), coordination
 * (coord.c) and regions (region.c). Included by those files and top.h.
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

/* ---- fastnotify.c ---- */

/*
 * Reports a change of region (a handle, or NULL) or of the region called name in its control
 * page's change log when this client holds it open read-write and no flush policy makes the
 * daemon answer after a flush: 0 with *ret_seq (may be NULL), -ERANGE (message set), or
 * FAST_FALLBACK: send the changed request. offset is the region's. Lock not held.
 */
int fastnotify_report(struct mmapd_client *client, struct mmapd_region *region, const char *name,
                      uint64_t offset, uint64_t length, uint64_t *ret_seq);

/* ---- coord.c ---- */

/* Forgets every lock held (they died with the connection). Returns how many. Lock held. */
size_t locks_forget(struct mmapd_client *client);
/* Forgets the subscription to name, if any. Lock held. */
void subs_forget(struct mmapd_client *client, const char *name);
/*
 * After a reconnection's hello: subscribes again to every region subscribed to. One that no
 * longer exists is forgotten (with a DELETED event unless a region of it had one). Returns 0,
 * or a negative errno (message set) when the connection failed meanwhile. Lock not held.
 */
int subs_restore(struct mmapd_client *client);

/* ---- region.c ---- */

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
 * The body of mmapd_region_open() for a request already built (req, consumed): the open
 * request, or adopt's with send_fd (borrowed) sent along. name may be NULL (adopt: the
 * daemon's reply names the region). opts were read and checked. Returns as
 * mmapd_region_open().
 */
int region_open_with(struct mmapd_client *client, const char *name,
                     const struct mmapd_open_opts *opts, cJSON *req, const int *send_fd,
                     struct mmapd_region **ret_region);

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
