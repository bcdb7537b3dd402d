/* SPDX-License-Identifier: MIT */
/*
 * The notifier: subscriptions, changed events with their backpressure, and the delivery of
 * every region event (docs/coordination.md, "Change notification" and "Events").
 *
 * Events of a region go to its grant holders, its subscribers, or both (each connection
 * once). An event is encoded once and the same frame queued on every connection it goes to
 * (struct outbuf, conn.h). A subscriber whose output queue holds more than event_backlog_bytes does not get
 * changed events queued: their ranges are merged into a list kept in its subscription
 * (at most max_pending_ranges ranges), and so is the latest flushed seq; when its queue
 * drains below the limit they go out as one changed event (and one flushed). A list that
 * would grow past its bound is dropped for one overflow event, and nothing more is kept for
 * that subscription until the queue drains. Before any other event of that region reaches
 * the connection, what its subscription holds is sent first, so events keep their order.
 * So the daemon's memory per subscriber is bounded whatever the subscriber does.
 */
#ifndef MMAPD_DAEMON_NOTIFY_H
#define MMAPD_DAEMON_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct conn;
struct region;

#define NOTIFY_HOLDERS     1u   /* connections holding a grant on the region */
#define NOTIFY_SUBSCRIBERS 2u   /* connections subscribed to it */

/* {"event": name, "region": r's name}. NULL on ENOMEM. */
cJSON *notify_event_new(const struct region *r, const char *name);

/*
 * Sends event (borrowed) of region r to the connections in to (NOTIFY_* bits), except
 * except (may be NULL): the connection whose request caused it, when its reply says so.
 */
void notify_region(struct region *r, const cJSON *event, unsigned to, const struct conn *except);
/* Sends event (borrowed) of region r to c alone. */
void notify_conn(struct conn *c, struct region *r, const cJSON *event);

/* Subscribes c to r. Returns 0, -EALREADY, -EAGAIN (max_subscriptions_per_client), -ENOMEM. */
int notify_subscribe(struct conn *c, struct region *r);
/*
 * Makes c's subscription to r a page subscription: c reads r's changes from the control page's
 * log, woken by its doorbell, so it gets no changed or overflow events of changes (other
 * events as before), and the log's listeners word counts it until it ends. Returns its tag:
 * the slot that entries of c's changed requests carry in the log (c has no slot in the page),
 * unique among r's page subscriptions, so that c can leave out its own changes.
 */
unsigned notify_subscribe_page(struct conn *c, struct region *r);
/* The tag of c's page subscription to r, or CHANGELOG_DAEMON (none). */
unsigned notify_page_tag(const struct conn *c, const struct region *r);
/*
 * notify_subscribe, and to changes nobody reported too (extwatch.h), charged to c's uid as one
 * watched file: also -EDQUOT (the uid's max_watched_files_per_uid: reply_budget) or the error
 * of extwatch_ref.
 */
int notify_subscribe_external(struct conn *c, struct region *r);
/* Ends c's subscription to r. Returns 0 or -ENOENT. */
int notify_unsubscribe(struct conn *c, struct region *r);

/* Announces change seq (offset, length) written by writer to every other subscriber. */
void notify_changed(struct region *r, const struct conn *writer, uint64_t seq, uint64_t offset,
                    uint64_t length);

/* Who wrote a change read from the change log (relay.c). */
struct notify_writer {
	uint64_t serial;              /* its connection's (which gets no event of its own change;
	                                 0: none); tells writers apart when changes are merged */
	long pid;
	const char *name;             /* its hello name, "" for none */
};
/* notify_changed for a writer described by w. */
void notify_changed_by(struct region *r, const struct notify_writer *w, uint64_t seq,
                       uint64_t offset, uint64_t length);
/*
 * Change seq was made outside mmapd, where is not known (the file's size is now size): a
 * changed event with "external": true and "ranges": null to the subscribers that asked for
 * external changes; one that must hold it back gets an overflow instead (when its queue drains).
 */
void notify_changed_external(struct region *r, uint64_t seq, uint64_t size);
/* Changes up to seq were lost (the change log lapped the relay): an overflow to every subscriber. */
void notify_lost(struct region *r, uint64_t seq);
/* Announces that changes up to seq are durable ("flushed") to the subscribers. */
void notify_flushed(struct region *r, uint64_t seq);

/* c's output queue went below event_backlog_bytes: sends what its subscriptions kept. */
void notify_conn_drained(struct conn *c);
/* True when c has subscriptions holding events back. */
bool notify_conn_holding(const struct conn *c);

/*
 * c's subscriptions as an array of {"region": name, "anonymous": bool, "external": bool}
 * (fdconn.h). NULL on ENOMEM.
 */
cJSON *notify_conn_subs_json(const struct conn *c);

/* c is going away: drops its subscriptions. */
void notify_conn_release(struct conn *c);
/*
 * r was deleted by connection by: sends "deleted" to the other holders and subscribers and
 * drops the subscriptions.
 */
void notify_region_retire(struct region *r, const struct conn *by);

#endif
