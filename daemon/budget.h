/* SPDX-License-Identifier: MIT */
/*
 * Per-user budgets: what one uid can make the daemon hold, summed over all its connections
 * and over the anonymous regions it owns, so that reconnecting resets nothing.
 *
 * A budget is found or made by uid when a connection is accepted (or an anonymous region
 * adopted) and referenced by each connection and anonymous region of that uid; it goes away
 * with the last of them. Every item is a gauge: charged when the daemon takes the thing on
 * and released when it lets go. Charging is all-or-nothing and refuses past the item's limit
 * (the *_per_uid keys of struct limits).
 *
 * Root and the daemon's own uid are exempt: their items are counted (and reported by
 * `stats`) but never refused, and they may also use the slots and descriptors held in
 * reserve (reserved_clients, reserved_fds), so that an administrator can always connect,
 * create and clean up while other users are at their limits.
 */
#ifndef MMAPD_DAEMON_BUDGET_H
#define MMAPD_DAEMON_BUDGET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

#include "htab.h"

struct server;
struct why;

enum budget_item {
	BUDGET_CONNECTIONS,    /* open connections */
	BUDGET_FDS,            /* connections + anonymous regions' memfds + descriptors queued */
	BUDGET_QUEUE_BYTES,    /* reply and event bytes queued, not yet read by the client */
	BUDGET_LOCK_WAITERS,   /* lock requests waiting */
	BUDGET_ANON_REGIONS,   /* anonymous regions it owns */
	BUDGET_ANON_BYTES,     /* their sizes */
	BUDGET_WATCHED_FILES,  /* external subscriptions: files the daemon watches for it */
	BUDGET_NITEMS,
};

struct budget {
	struct hnode node;             /* in srv->budgets, by uid */
	struct server *srv;
	uint32_t uid;
	bool exempt;                   /* root or the daemon's own uid */
	unsigned refs;
	uint64_t used[BUDGET_NITEMS];
};

/* The budget of uid, made if it has none, with a new reference. NULL on ENOMEM. */
struct budget *budget_ref_uid(struct server *srv, uint32_t uid);
void budget_ref(struct budget *b);
/* Drops a reference; the last one frees b (everything charged must be released by then). */
void budget_unref(struct budget *b);

/* The budget of uid if it has one (no reference taken), else NULL. */
struct budget *budget_find(const struct server *srv, uint32_t uid);

/* True for root and the daemon's own uid. */
bool budget_uid_exempt(const struct server *srv, uint32_t uid);

/* The configured limit of item for one uid. */
uint64_t budget_limit(const struct server *srv, enum budget_item item);
/* The item's name in the configuration and in messages ("max_fds_per_uid"). */
const char *budget_key(enum budget_item item);

/*
 * True when n more of item fit b's limit (always for exempt users), and for anonymous bytes
 * also max_anonymous_bytes_all_users: what all users that are not exempt own together, the
 * memory reserve kept for root and the daemon's uid.
 */
bool budget_fits(const struct budget *b, enum budget_item item, uint64_t n);

/* max_anonymous_bytes_all_users, its 0 resolved to half the machine's memory. */
uint64_t budget_all_users_limit(const struct server *srv);

/* Which limit n more of item would pass for b, for a refusal that names it. */
struct budget_refusal {
	const char *key;     /* its config key */
	uint64_t used;       /* what b uses of it, or all users together for an all-users limit */
	uint64_t limit;
};
void budget_explain(const struct budget *b, enum budget_item item, uint64_t n,
                    struct budget_refusal *ret);
/*
 * Charges n of item. Returns 0, or -EAGAIN (nothing charged) when b is not exempt and that
 * would pass the item's limit.
 */
int budget_charge(struct budget *b, enum budget_item item, uint64_t n);
/*
 * Charges n[item] of every item at once. Returns 0, or -EAGAIN with *ret_item set to the first
 * item that would pass its limit (nothing is charged then).
 */
int budget_charge_all(struct budget *b, const uint64_t n[BUDGET_NITEMS],
                      enum budget_item *ret_item);
/* Charges n of item whatever the limit (what was already taken on, e.g. at adoption). */
void budget_force(struct budget *b, enum budget_item item, uint64_t n);
void budget_release(struct budget *b, enum budget_item item, uint64_t n);

/*
 * Descriptor reserve: true when a non-exempt user may make the daemon hold one more
 * descriptor, that is while the daemon's lowest free descriptor number is below its limit
 * (RLIMIT_NOFILE) less reserved_fds. Linux hands out the lowest free number, so a number in
 * the top reserved_fds means that many descriptors are open. budget_fd_allowed asks the same
 * of fd, a descriptor just made for uid. Both are always true for exempt uids.
 */
bool budget_fd_headroom(const struct server *srv, uint32_t uid);
bool budget_fd_allowed(const struct server *srv, uint32_t uid, int fd);

/* How many connections unprivileged peers may hold together: max_clients less the reserve. */
uint64_t budget_max_unprivileged_clients(const struct server *srv);

/* The name of item in the stats reply ("fds"). */
const char *budget_stat_name(enum budget_item item);

/* The "users" object of the stats reply: per uid, its items. NULL on ENOMEM. */
cJSON *budget_table_json(const struct server *srv);

/*
 * Whether a peer of uid may take one more connection: max_clients (less reserved_clients for
 * users that are not exempt), max_clients_per_uid and max_fds_per_uid. Returns 0, or
 * -EUSERS or -EMFILE with ret_why set (why.h).
 */
int budget_admit_uid(const struct server *s, uid_t uid, struct why *ret_why);

#endif
