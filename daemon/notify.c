/* SPDX-License-Identifier: MIT */
/*
 * The notifier (see notify.h). A subscription is linked twice: into its region's list,
 * which events walk, and into its connection's table by region, which finds it when an
 * event for that region is about to reach the connection, when the connection's queue
 * drains, and when the connection goes away.
 *
 * What a subscription holds back while its connection is over event_backlog_bytes: a sorted
 * array of disjoint, non-adjacent ranges [off, end) with the first and last seq they cover
 * and their writer (unless several wrote); whether an overflow was sent and changes were
 * dropped since; and the last flushed seq. The array grows by doubling up to
 * max_pending_ranges and is freed as soon as it has been sent.
 */
#include "notify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "conn.h"
#include "changelog.h"
#include "control.h"
#include "extwatch.h"
#include "log.h"
#include "msg.h"
#include "region.h"
#include "state.h"
#include "vocab.h"

#define NOTIFY_WRITER_NAME_MAX 64   /* hello's client name is at most this long */
/* The tags of page subscriptions: above the page's slots, below CHANGELOG_DAEMON. */
#define NOTIFY_TAG_FIRST 256u
#define NOTIFY_TAG_LAST  (CHANGELOG_DAEMON - 1u)

struct range {
	uint64_t off;
	uint64_t end;                 /* UINT64_MAX never occurs: offset + length <= 2^54 */
};

struct sub {
	struct hnode node;            /* in conn->subs, by region */
	struct sub *prev, *next;      /* region->subs */
	struct conn *conn;
	struct region *region;        /* referenced */
	bool page;                    /* reads its changes from the control page's log itself
	                                 (a page subscription): no changed or lost events */
	unsigned tag;                 /* with page: what the log's entries of its connection's
	                                 changed requests carry as their slot */
	bool external;                /* also hears of changes nobody reported (extwatch.h) */

	bool holding;                 /* something below is held back */
	struct range *ranges;
	size_t nranges, cap;
	uint64_t first_seq, last_seq;
	bool mixed;                   /* the held changes come from several writers */
	uint64_t writer_serial;
	long writer_pid;
	char writer_name[NOTIFY_WRITER_NAME_MAX + 1];
	bool overflowed;              /* overflow sent: nothing kept until the queue drains */
	bool dropped;                 /* changes were dropped after it */
	uint64_t dropped_seq;
	bool flushed;                 /* a flushed event is held */
	uint64_t flushed_seq;
};

static uint64_t sub_hash(const struct region *r)
{
	return htab_hash_u64((uint64_t)(uintptr_t)r);
}

static struct sub *sub_find(const struct conn *c, const struct region *r)
{
	struct hnode *node;

	for (node = htab_find_first(&c->subs, sub_hash(r)); node; node = htab_find_next(node)) {
		struct sub *s = htab_entry(node, struct sub, node);

		if (s->region == r)
			return s;
	}
	return NULL;
}

cJSON *notify_event_new(const struct region *r, const char *name)
{
	cJSON *event = msg_event(name);

	if (event && !cJSON_AddStringToObject(event, PROTO_FIELD_REGION, r->name)) {
		cJSON_Delete(event);
		return NULL;
	}
	return event;
}

/* Sends event to c, logging what cannot be encoded. */
static void notify_send(struct conn *c, const cJSON *event)
{
	int r = conn_send(c, event, NULL, 0);

	if (r == -ENOMEM || r == -EMSGSIZE)
		log_error("cannot send an event to client %llu: %s", (unsigned long long)c->serial,
		          strerror(-r));
}

/* Sends the encoded event b to c, logging what cannot be queued. */
static void notify_send_outbuf(struct conn *c, struct outbuf *b)
{
	if (conn_send_outbuf(c, b) == -ENOMEM)
		log_error("cannot send an event to client %llu: %s", (unsigned long long)c->serial,
		          strerror(ENOMEM));
}

/*
 * Encodes event (taken: deleted here; NULL when building it failed) once for every
 * connection it goes to. Returns the frame, or NULL after logging what failed (what says
 * what was being done: "announcing a change").
 */
static struct outbuf *notify_encode(const struct region *r, cJSON *event, const char *what)
{
	struct outbuf *b = NULL;
	int err = event ? conn_outbuf_new(r->srv, event, &b) : -ENOMEM;

	cJSON_Delete(event);
	if (err < 0) {
		log_error("%s of region '%s': %s", what, r->name, strerror(-err));
		return NULL;
	}
	return b;
}

/* {"event": name, "region", "seq"} (overflow, flushed) to the subscriber. */
static void sub_send_seq_event(struct sub *s, const char *name, uint64_t seq)
{
	cJSON *event = notify_event_new(s->region, name);

	if (event && cJSON_AddNumberToObject(event, PROTO_FIELD_SEQ, (double)seq))
		notify_send(s->conn, event);
	else
		log_error("out of memory sending '%s' to client %llu", name,
		          (unsigned long long)s->conn->serial);
	cJSON_Delete(event);
}

/* The changed event of ranges[0..n) covering first..last, with the writer unless mixed. */
static cJSON *notify_changed_event(struct region *r, uint64_t first, uint64_t last,
                                   const struct range *ranges, size_t n, bool mixed,
                                   const char *writer_name, long writer_pid)
{
	cJSON *event = notify_event_new(r, proto_event_name(PROTO_EVENT_CHANGED));
	cJSON *array, *writer;
	size_t i;

	if (!event || !cJSON_AddNumberToObject(event, PROTO_FIELD_SEQ, (double)last) ||
	    !cJSON_AddNumberToObject(event, PROTO_FIELD_FIRST_SEQ, (double)first))
		goto fail;
	array = cJSON_AddArrayToObject(event, PROTO_FIELD_RANGES);
	if (!array)
		goto fail;
	for (i = 0; i < n; i++) {
		double pair[2] = { (double)ranges[i].off, (double)(ranges[i].end - ranges[i].off) };
		cJSON *item = cJSON_CreateDoubleArray(pair, 2);

		if (!item || !cJSON_AddItemToArray(array, item)) {
			cJSON_Delete(item);
			goto fail;
		}
	}
	if (!mixed) {
		writer = cJSON_AddObjectToObject(event, PROTO_FIELD_WRITER);
		if (!writer || !cJSON_AddStringToObject(writer, PROTO_FIELD_CLIENT, writer_name) ||
		    !cJSON_AddNumberToObject(writer, PROTO_FIELD_PID, (double)writer_pid))
			goto fail;
	}
	return event;
fail:
	cJSON_Delete(event);
	return NULL;
}

static void sub_set_holding(struct sub *s, bool holding)
{
	if (s->holding == holding)
		return;
	s->holding = holding;
	if (holding)
		s->conn->subs_holding++;
	else
		s->conn->subs_holding--;
}

/* Sends what s holds back, in order, and holds nothing afterwards. */
static void sub_release(struct sub *s)
{
	if (!s->holding)
		return;
	if (s->nranges > 0) {
		cJSON *event = notify_changed_event(s->region, s->first_seq, s->last_seq, s->ranges,
		                                    s->nranges, s->mixed, s->writer_name, s->writer_pid);
		int r = event ? conn_send(s->conn, event, NULL, 0) : -ENOMEM;

		/* A list too long for one frame, or no memory for it: the client re-reads instead. */
		if (r == -EMSGSIZE || r == -ENOMEM)
			sub_send_seq_event(s, proto_event_name(PROTO_EVENT_OVERFLOW), s->last_seq);
		cJSON_Delete(event);
	}
	if (s->dropped)
		sub_send_seq_event(s, proto_event_name(PROTO_EVENT_OVERFLOW), s->dropped_seq);
	if (s->flushed)
		sub_send_seq_event(s, proto_event_name(PROTO_EVENT_FLUSHED), s->flushed_seq);
	free(s->ranges);
	s->ranges = NULL;
	s->nranges = s->cap = 0;
	s->overflowed = s->dropped = s->flushed = false;
	sub_set_holding(s, false);
}

/* True when the event must be held back: s's connection is over event_backlog_bytes. */
static bool sub_must_hold(struct sub *s)
{
	if (s->conn->out_bytes > s->conn->srv->limits->event_backlog_bytes)
		return true;
	sub_release(s);
	return false;
}

/* Merges [off, end) into s's ranges. Returns false when they would pass the bound. */
static bool sub_merge(struct sub *s, uint64_t off, uint64_t end, size_t max)
{
	size_t i = 0, j;

	/* Ranges before the new one, not touching it, stay; [i, j) touch it and merge. */
	while (i < s->nranges && s->ranges[i].end < off)
		i++;
	j = i;
	while (j < s->nranges && s->ranges[j].off <= end) {
		if (s->ranges[j].off < off)
			off = s->ranges[j].off;
		if (s->ranges[j].end > end)
			end = s->ranges[j].end;
		j++;
	}
	if (j == i) {
		if (s->nranges + 1 > max)
			return false;
		if (s->nranges == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 4;
			struct range *nr;

			if (cap > max)
				cap = max;
			nr = realloc(s->ranges, cap * sizeof(*nr));
			if (!nr)
				return false;
			s->ranges = nr;
			s->cap = cap;
		}
		memmove(s->ranges + i + 1, s->ranges + i, (s->nranges - i) * sizeof(*s->ranges));
		s->nranges++;
	} else if (j > i + 1) {
		memmove(s->ranges + i + 1, s->ranges + j, (s->nranges - j) * sizeof(*s->ranges));
		s->nranges -= j - i - 1;
	}
	s->ranges[i].off = off;
	s->ranges[i].end = end;
	return true;
}

/* Holds change seq back in s, or overflows (see notify.h). */
static void sub_hold_change(struct sub *s, const struct notify_writer *writer, uint64_t seq,
                            uint64_t off, uint64_t end)
{
	bool first = s->nranges == 0;

	sub_set_holding(s, true);
	if (s->overflowed) {
		s->dropped = true;
		s->dropped_seq = seq;
		return;
	}
	if (!sub_merge(s, off, end, s->conn->srv->limits->max_pending_ranges)) {
		free(s->ranges);
		s->ranges = NULL;
		s->nranges = s->cap = 0;
		s->overflowed = true;
		sub_send_seq_event(s, proto_event_name(PROTO_EVENT_OVERFLOW), seq);
		return;
	}
	if (first) {
		s->first_seq = seq;
		s->writer_serial = writer->serial;
		s->writer_pid = writer->pid;
		snprintf(s->writer_name, sizeof(s->writer_name), "%s", writer->name);
		s->mixed = false;
	} else if (writer->serial != s->writer_serial) {
		s->mixed = true;
	}
	s->last_seq = seq;
}

/*
 * Holds in s a gap up to seq: what it holds cannot be told exactly any more, so one overflow,
 * when its queue drains, stands for all of it and for what comes until then.
 */
static void sub_hold_gap(struct sub *s, uint64_t seq)
{
	sub_set_holding(s, true);
	free(s->ranges);
	s->ranges = NULL;
	s->nranges = s->cap = 0;
	s->overflowed = s->dropped = true;
	s->dropped_seq = seq;
}

void notify_changed_by(struct region *r, const struct notify_writer *writer, uint64_t seq,
                       uint64_t offset, uint64_t length)
{
	struct range one = { offset, offset + length };
	struct outbuf *frame = NULL;
	struct sub *s;

	/* Every subscriber gets the same bytes: the event is encoded once, when first needed. */
	for (s = r->subs; s; s = s->next) {
		if (s->page || s->conn->serial == writer->serial || !conn_alive(s->conn))
			continue;
		if (sub_must_hold(s)) {
			sub_hold_change(s, writer, seq, one.off, one.end);
			continue;
		}
		if (!frame)
			frame = notify_encode(r, notify_changed_event(r, seq, seq, &one, 1, false,
			                                              writer->name, writer->pid),
			                      "announcing a change");
		if (!frame)
			break;
		notify_send_outbuf(s->conn, frame);
	}
	if (frame)
		conn_outbuf_unref(frame);
}

void notify_changed(struct region *r, const struct conn *writer, uint64_t seq, uint64_t offset,
                    uint64_t length)
{
	struct notify_writer w = {
		.serial = writer->serial, .pid = (long)writer->pid,
		.name = writer->client_name ? writer->client_name : "",
	};

	notify_changed_by(r, &w, seq, offset, length);
}

void notify_lost(struct region *r, uint64_t seq)
{
	struct sub *s;

	for (s = r->subs; s; s = s->next) {
		if (s->page || !conn_alive(s->conn))
			continue;
		if (sub_must_hold(s)) {
			sub_hold_gap(s, seq);
			continue;
		}
		sub_send_seq_event(s, proto_event_name(PROTO_EVENT_OVERFLOW), seq);
	}
}

/* {"event": "changed", "region", "seq", "first_seq", "ranges": null, "external": true, "size"}. */
static cJSON *notify_external_event(struct region *r, uint64_t seq, uint64_t size)
{
	cJSON *event = notify_event_new(r, proto_event_name(PROTO_EVENT_CHANGED));

	if (event && cJSON_AddNumberToObject(event, PROTO_FIELD_SEQ, (double)seq) &&
	    cJSON_AddNumberToObject(event, PROTO_FIELD_FIRST_SEQ, (double)seq) &&
	    cJSON_AddNullToObject(event, PROTO_FIELD_RANGES) &&
	    cJSON_AddTrueToObject(event, PROTO_FIELD_EXTERNAL) &&
	    cJSON_AddNumberToObject(event, PROTO_FIELD_SIZE, (double)size))
		return event;
	cJSON_Delete(event);
	return NULL;
}

void notify_changed_external(struct region *r, uint64_t seq, uint64_t size)
{
	struct outbuf *frame = NULL;
	struct sub *s;

	for (s = r->subs; s; s = s->next) {
		/* A page subscription reads it from the log (relay_publish_external). */
		if (!s->external || s->page || !conn_alive(s->conn))
			continue;
		/* Ranges held back cannot absorb a change of unknown place: re-read instead. */
		if (sub_must_hold(s)) {
			sub_hold_gap(s, seq);
			continue;
		}
		if (!frame)
			frame = notify_encode(r, notify_external_event(r, seq, size),
			                      "announcing an external change");
		if (!frame)
			break;
		notify_send_outbuf(s->conn, frame);
	}
	if (frame)
		conn_outbuf_unref(frame);
}

/* {"event": "flushed", "region", "seq"}, or NULL on ENOMEM. */
static cJSON *notify_flushed_event(struct region *r, uint64_t seq)
{
	cJSON *event = notify_event_new(r, proto_event_name(PROTO_EVENT_FLUSHED));

	if (event && !cJSON_AddNumberToObject(event, PROTO_FIELD_SEQ, (double)seq)) {
		cJSON_Delete(event);
		return NULL;
	}
	return event;
}

void notify_flushed(struct region *r, uint64_t seq)
{
	struct outbuf *frame = NULL;
	struct sub *s;

	for (s = r->subs; s; s = s->next) {
		if (!conn_alive(s->conn))
			continue;
		if (sub_must_hold(s)) {
			sub_set_holding(s, true);
			s->flushed = true;
			s->flushed_seq = seq;
			continue;
		}
		if (!frame)
			frame = notify_encode(r, notify_flushed_event(r, seq), "announcing a flush");
		if (!frame)
			break;
		notify_send_outbuf(s->conn, frame);
	}
	if (frame)
		conn_outbuf_unref(frame);
}

/* Before another event of r reaches c: sends what c's subscription to r held back. */
static void notify_conn_catch_up(struct conn *c, struct region *r)
{
	struct sub *s = sub_find(c, r);

	/* What the subscription held back happened before: it goes first, backlog or not. */
	if (s)
		sub_release(s);
}

void notify_conn(struct conn *c, struct region *r, const cJSON *event)
{
	notify_conn_catch_up(c, r);
	notify_send(c, event);
}

/* notify_conn for an event already encoded. */
static void notify_conn_outbuf(struct conn *c, struct region *r, struct outbuf *b)
{
	notify_conn_catch_up(c, r);
	notify_send_outbuf(c, b);
}

void notify_region(struct region *r, const cJSON *event, unsigned to, const struct conn *except)
{
	struct outbuf *frame = NULL;
	struct holder *h;
	struct sub *s;
	int err;

	/* One encoding for every connection it goes to. */
	err = conn_outbuf_new(r->srv, event, &frame);
	if (err < 0) {
		log_error("cannot send an event of region '%s': %s", r->name, strerror(-err));
		return;
	}
	if (to & NOTIFY_HOLDERS)
		for (h = r->holders; h; h = h->rnext)
			if (h->conn != except)
				notify_conn_outbuf(h->conn, r, frame);
	if (to & NOTIFY_SUBSCRIBERS)
		for (s = r->subs; s; s = s->next)
			if (s->conn != except && (!(to & NOTIFY_HOLDERS) || !region_held_by(r, s->conn)))
				notify_conn_outbuf(s->conn, r, frame);
	conn_outbuf_unref(frame);
}

/* Starts watching r for s's connection: one watched file of its uid's budget. */
static int sub_watch(struct conn *c, struct region *r)
{
	int ret;

	if (budget_charge(c->budget, BUDGET_WATCHED_FILES, 1) < 0)
		return -EDQUOT;
	ret = extwatch_ref(r);
	if (ret < 0)
		budget_release(c->budget, BUDGET_WATCHED_FILES, 1);
	return ret;
}

/* notify_subscribe, with the external watch when external. */
static int sub_add(struct conn *c, struct region *r, bool external)
{
	struct sub *s;
	int ret;

	if (sub_find(c, r))
		return -EALREADY;
	if (c->nsubs >= c->srv->limits->max_subscriptions_per_client)
		return -EAGAIN;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (htab_insert(&c->subs, &s->node, sub_hash(r)) < 0) {
		free(s);
		return -ENOMEM;
	}
	if (external && (ret = sub_watch(c, r)) < 0) {
		htab_remove(&c->subs, &s->node);
		free(s);
		return ret;
	}
	s->external = external;
	s->conn = c;
	s->region = r;
	region_ref(r);
	s->next = r->subs;
	if (s->next)
		s->next->prev = s;
	r->subs = s;
	r->nsubs++;
	c->nsubs++;
	c->srv->nsubscriptions++;
	return 0;
}

int notify_subscribe(struct conn *c, struct region *r)
{
	return sub_add(c, r, false);
}

int notify_subscribe_external(struct conn *c, struct region *r)
{
	return sub_add(c, r, true);
}

static void sub_free(struct sub *s)
{
	struct region *r = s->region;
	struct conn *c = s->conn;

	sub_set_holding(s, false);
	htab_remove(&c->subs, &s->node);
	if (s->prev)
		s->prev->next = s->next;
	else
		r->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	r->nsubs--;
	if (s->page) {
		r->npage_subs--;
		control_listeners(r->ctl, (uint32_t)r->npage_subs);
	}
	c->nsubs--;
	c->srv->nsubscriptions--;
	if (s->external) {
		extwatch_unref(r);
		budget_release(c->budget, BUDGET_WATCHED_FILES, 1);
	}
	free(s->ranges);
	free(s);
	region_check_idle(r);
	region_unref(r);
}

/* True when a page subscription of r other than s has tag. */
static bool sub_tag_taken(const struct region *r, const struct sub *s, unsigned tag)
{
	for (const struct sub *o = r->subs; o; o = o->next)
		if (o != s && o->page && o->tag == tag)
			return true;
	return false;
}

unsigned notify_subscribe_page(struct conn *c, struct region *r)
{
	struct sub *s = sub_find(c, r);
	unsigned span = NOTIFY_TAG_LAST - NOTIFY_TAG_FIRST + 1;

	if (!s)
		return CHANGELOG_DAEMON;
	if (s->page)
		return s->tag;
	/* The next free tag: at most one per page subscription of r is taken. */
	do {
		s->tag = NOTIFY_TAG_FIRST + (unsigned)(r->next_tag++ % span);
	} while (sub_tag_taken(r, s, s->tag));
	s->page = true;
	r->npage_subs++;
	control_listeners(r->ctl, (uint32_t)r->npage_subs);
	return s->tag;
}

unsigned notify_page_tag(const struct conn *c, const struct region *r)
{
	const struct sub *s = sub_find(c, r);

	return s && s->page ? s->tag : CHANGELOG_DAEMON;
}

int notify_unsubscribe(struct conn *c, struct region *r)
{
	struct sub *s = sub_find(c, r);

	if (!s)
		return -ENOENT;
	sub_free(s);
	return 0;
}

bool notify_conn_holding(const struct conn *c)
{
	return c->subs_holding > 0;
}

void notify_conn_drained(struct conn *c)
{
	struct htab_iter it;
	struct hnode *node;

	htab_iter_init(&c->subs, &it);
	while (c->subs_holding > 0 && (node = htab_iter_next(&c->subs, &it)) != NULL)
		sub_release(htab_entry(node, struct sub, node));
}

void notify_conn_release(struct conn *c)
{
	struct htab_iter it;
	struct hnode *node;

	htab_iter_init(&c->subs, &it);
	while ((node = htab_iter_next(&c->subs, &it)) != NULL)
		sub_free(htab_entry(node, struct sub, node));
}

void notify_region_retire(struct region *r, const struct conn *by)
{
	cJSON *event = notify_event_new(r, proto_event_name(PROTO_EVENT_DELETED));

	if (event)
		notify_region(r, event, NOTIFY_HOLDERS | NOTIFY_SUBSCRIBERS, by);
	else
		log_error("out of memory telling the clients of region '%s' it was deleted", r->name);
	cJSON_Delete(event);
	while (r->subs)
		sub_free(r->subs);
}

cJSON *notify_conn_subs_json(const struct conn *c)
{
	cJSON *arr = cJSON_CreateArray();
	struct htab_iter it;
	struct hnode *node;

	if (!arr)
		return NULL;
	htab_iter_init(&c->subs, &it);
	while ((node = htab_iter_next(&c->subs, &it)) != NULL) {
		const struct sub *sub = htab_entry(node, struct sub, node);
		cJSON *obj = cJSON_CreateObject();

		if (!obj || !cJSON_AddItemToArray(arr, obj)) {
			cJSON_Delete(obj);
			cJSON_Delete(arr);
			return NULL;
		}
		if (!cJSON_AddStringToObject(obj, PROTO_FIELD_REGION, sub->region->name) ||
		    !cJSON_AddBoolToObject(obj, PROTO_FIELD_ANONYMOUS, sub->region->anonymous) ||
		    !cJSON_AddBoolToObject(obj, PROTO_FIELD_EXTERNAL, sub->external)) {
			cJSON_Delete(arr);
			return NULL;
		}
	}
	return arr;
}
