/* SPDX-License-Identifier: MIT */
/*
 * The resize coordinator (see resize.h). A region's resizes queue in arrival order and run
 * one at a time; each decides grow or shrink against the size the file has when its turn
 * comes. A shrink that is asking for acknowledgements is also on the server's list, where
 * shrink-ack and a departing connection find it by id.
 *
 * Before a resize starts, and every size_check_ms for every region in the table that is
 * not being resized, the file's size is compared with the size the daemon made or last
 * saw: a difference is a change someone else made (a client with a read-write descriptor
 * can ftruncate it), announced as "resized" with "external": true. A size above
 * max_region_size is not such a change: region_size never adopts it (region.h).
 */
#include "resize.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "fsdir.h"
#include "log.h"
#include "msg.h"
#include "notify.h"
#include "reply.h"
#include "region.h"
#include "state.h"
#include "timer.h"
#include "vocab.h"

/* The least time between two warnings of size changes a region got behind the daemon's back. */
#define RESIZE_WARN_MS 10000u

#define RESIZE_LAGGARDS_NAMED 16   /* pids named in a shrink timeout's message */

/* A connection asked to acknowledge a shrink. */
struct shrink_peer {
	struct conn *conn;            /* referenced */
	bool acked;
};

struct resize {
	struct state_job job;        /* the thread-pool work of a grow or a truncation */
	struct resize *next;          /* the region's queue */
	struct resize *sprev, *snext; /* srv->shrinks, while asking */
	struct region *region;        /* referenced */
	struct conn *conn;            /* the requester, referenced; its pending count covers us */
	uint64_t id;
	uint64_t size;
	bool sparse;
	bool grow_only;               /* a smaller size leaves the region as it is */

	uint64_t old_size;
	bool asking;                  /* a shrink waiting for acknowledgements */
	bool truncating;              /* a shrink on the thread pool */
	uint64_t shrink;              /* the shrink's id */
	struct shrink_peer *peers;
	size_t npeers, cap;
	uv_timer_t *timer;

	int fd;
	int result;
	bool fell_back;
};

static void resize_next(struct region *r);

bool resize_busy(const struct region *r)
{
	return r->resizes.active || r->resizes.head;
}

bool resize_truncating(const struct region *r)
{
	return r->resizes.active && r->resizes.active->truncating;
}

/* Announces to r's holders and subscribers that it went from old_size to r->size (generation
 * already set). */
static void resize_announce(struct region *r, uint64_t old_size, bool external)
{
	cJSON *event = notify_event_new(r, proto_event_name(PROTO_EVENT_RESIZED));

	if (event && cJSON_AddNumberToObject(event, PROTO_FIELD_SIZE, (double)r->size) &&
	    cJSON_AddNumberToObject(event, PROTO_FIELD_OLD_SIZE, (double)old_size) &&
	    cJSON_AddNumberToObject(event, PROTO_FIELD_GENERATION, (double)r->generation) &&
	    cJSON_AddBoolToObject(event, PROTO_FIELD_EXTERNAL, external))
		notify_region(r, event, NOTIFY_HOLDERS | NOTIFY_SUBSCRIBERS, NULL);
	else
		log_error("out of memory announcing the new size of region '%s'", r->name);
	cJSON_Delete(event);
}

/* The size of r is size now, whoever made it so. */
static void resize_set(struct region *r, uint64_t size, bool external)
{
	uint64_t old_size = r->size;

	r->size = size;
	region_budget_resize(r, size);
	r->generation++;
	resize_announce(r, old_size, external);
}

/*
 * Logs that r changed size from its known size to size behind the daemon's back: at most once
 * per RESIZE_WARN_MS per region, with how many changes went unlogged meanwhile, so that a
 * user who truncates a file in a loop cannot fill the log.
 */
static void resize_warn_external(struct region *r, uint64_t size)
{
	uint64_t now = state_now_ms();

	if (r->size_warned_ms && now - r->size_warned_ms < RESIZE_WARN_MS) {
		r->size_unwarned++;
		return;
	}
	log_warn("region '%s' changed size from %" PRIu64 " to %" PRIu64 " bytes behind the "
	         "daemon's back (a client truncated it)", r->name, r->size, size);
	if (r->size_unwarned)
		log_warn("region '%s': %" PRIu64 " size changes behind the daemon's back in the last "
		         "%llu s were not logged", r->name, r->size_unwarned,
		         (unsigned long long)((now - r->size_warned_ms) / 1000));
	r->size_warned_ms = now ? now : 1;
	r->size_unwarned = 0;
}

/* Notices a size of r the daemon did not make. Returns r's current size. */
static uint64_t resize_check(struct region *r)
{
	uint64_t size = region_size(r);

	if (size != r->size) {
		resize_warn_external(r, size);
		resize_set(r, size, true);
	}
	return size;
}

/* Answers the resize with the region, or with err and message. */
static void resize_reply(struct resize *rs, int err, const char *message)
{
	cJSON *reply, *obj;

	if (err) {
		reply_error(rs->conn, rs->id, err, "%s", message);
		return;
	}
	reply = msg_reply_ok(rs->id);
	obj = reply ? region_to_json(rs->region) : NULL;
	if (!obj || !cJSON_AddItemToObject(reply, PROTO_FIELD_REGION, obj)) {
		cJSON_Delete(obj);
		cJSON_Delete(reply);
		reply = NULL;
	}
	reply_send(rs->conn, rs->id, reply);
}

static void resize_free(struct resize *rs)
{
	size_t i;

	for (i = 0; i < rs->npeers; i++)
		conn_unref(rs->peers[i].conn);
	free(rs->peers);
	timer_free(rs->timer);
	conn_pending_done(rs->conn);
	conn_unref(rs->conn);
	region_unref(rs->region);
	free(rs);
}

/* Ends the active resize of its region: answers, frees, and starts the next one. */
static void resize_finish(struct resize *rs, int err, const char *message)
{
	struct region *r = rs->region;

	region_ref(r);
	r->resizes.active = NULL;
	resize_reply(rs, err, message);
	resize_free(rs);
	resize_next(r);
	region_check_idle(r);
	region_unref(r);
}

/* Sends "shrink-cancelled" with message to every connection rs asked. */
static void resize_tell_peers(struct resize *rs, const char *message)
{
	cJSON *event = notify_event_new(rs->region, proto_event_name(PROTO_EVENT_SHRINK_CANCELLED));
	size_t i;

	if (!event || !cJSON_AddNumberToObject(event, PROTO_FIELD_SHRINK, (double)rs->shrink) ||
	    !cJSON_AddStringToObject(event, PROTO_FIELD_MESSAGE, message)) {
		log_error("out of memory cancelling shrink %" PRIu64, rs->shrink);
		cJSON_Delete(event);
		return;
	}
	for (i = 0; i < rs->npeers; i++)
		notify_conn(rs->peers[i].conn, rs->region, event);
	cJSON_Delete(event);
}

/* Takes rs off the server's list of asking shrinks. */
static void resize_stop_asking(struct resize *rs)
{
	struct server *srv = rs->region->srv;

	if (!rs->asking)
		return;
	rs->asking = false;
	if (rs->sprev)
		rs->sprev->snext = rs->snext;
	else
		srv->shrinks = rs->snext;
	if (rs->snext)
		rs->snext->sprev = rs->sprev;
	rs->sprev = rs->snext = NULL;
	timer_free(rs->timer);
	rs->timer = NULL;
}

/* A shrink that will not happen: everyone asked is told, the requester gets err. */
static void resize_cancel(struct resize *rs, int err, const char *message)
{
	resize_stop_asking(rs);
	resize_tell_peers(rs, message);
	resize_finish(rs, err, message);
}

static void resize_run(struct state_job *sj)
{
	struct resize *rs = (struct resize *)sj;
	struct stat st;
	int r;

	if (rs->size < rs->old_size) {
		do
			r = ftruncate(rs->fd, (off_t)rs->size);
		while (r < 0 && errno == EINTR);
		rs->result = r < 0 ? -errno : 0;
		return;
	}
	rs->result = fsdir_resize(rs->fd, rs->size, rs->sparse, &rs->fell_back);
	/* A failed grow leaves the old size, even if the file system got part of the way. */
	if (rs->result < 0 && fstat(rs->fd, &st) == 0 && (uint64_t)st.st_size != rs->old_size) {
		while (ftruncate(rs->fd, (off_t)rs->old_size) < 0 && errno == EINTR)
			;
	}
}

static void resize_done(struct state_job *sj)
{
	struct resize *rs = (struct resize *)sj;
	struct region *r = rs->region;
	char *message = NULL;
	int err = -rs->result;

	region_ref(r);
	rs->truncating = false;
	if (rs->result == 0) {
		log_info("resized region '%s' from %" PRIu64 " to %" PRIu64 " bytes for client %llu "
		         "(pid %ld)", r->name, rs->old_size, rs->size,
		         (unsigned long long)rs->conn->serial, (long)rs->conn->pid);
		resize_set(r, rs->size, false);
		resize_finish(rs, 0, NULL);
	} else {
		if (asprintf(&message, "cannot resize region '%s' to %" PRIu64 " bytes: %s", r->name,
		             rs->size, strerror(err)) < 0)
			message = NULL;
		log_warn("%s", message ? message : "cannot resize a region");
		if (rs->npeers > 0)
			resize_tell_peers(rs, message ? message : "the truncation failed");
		resize_finish(rs, reply_wire_errno(err), message ? message : "the resize failed");
		free(message);
	}
	/* Opens that waited for the truncation see the new size. */
	region_wake(r);
	region_unref(r);
}

/* Starts the thread-pool half of rs (or finishes it with an error). */
static void resize_start_job(struct resize *rs)
{
	int r;

	rs->fd = rs->region->fd;
	rs->truncating = rs->size < rs->old_size;
	r = state_job_start(rs->region->srv, &rs->job, resize_run, resize_done);
	if (r == 0)
		return;
	log_error("cannot queue a resize of region '%s': %s", rs->region->name, uv_strerror(r));
	rs->truncating = false;
	if (rs->npeers > 0)
		resize_tell_peers(rs, "the daemon cannot queue the truncation");
	resize_finish(rs, ENOMEM, "the daemon cannot queue work");
}

/* True when every connection asked has acknowledged (or gone). */
static bool resize_all_acked(const struct resize *rs)
{
	size_t i;

	for (i = 0; i < rs->npeers; i++)
		if (!rs->peers[i].acked)
			return false;
	return true;
}

/* Everyone acknowledged: truncate. */
static void resize_acked(struct resize *rs)
{
	resize_stop_asking(rs);
	resize_start_job(rs);
}

static void resize_on_timeout(void *data)
{
	struct resize *rs = data;
	char pids[RESIZE_LAGGARDS_NAMED * 24 + 32] = "";
	char *message = NULL;
	size_t i, named = 0, len = 0;

	for (i = 0; i < rs->npeers; i++) {
		if (rs->peers[i].acked)
			continue;
		if (named++ < RESIZE_LAGGARDS_NAMED)
			len += (size_t)snprintf(pids + len, sizeof(pids) - len, "%s%ld",
			                        len ? ", " : "", (long)rs->peers[i].conn->pid);
	}
	if (named > RESIZE_LAGGARDS_NAMED)
		snprintf(pids + len, sizeof(pids) - len, " and %zu more", named - RESIZE_LAGGARDS_NAMED);
	if (asprintf(&message, "shrink %" PRIu64 " of region '%s' to %" PRIu64 " bytes timed out "
	             "after %" PRIu64 " ms waiting for shrink-ack from pid %s; nothing was truncated",
	             rs->shrink, rs->region->name, rs->size,
	             rs->region->srv->limits->shrink_timeout_ms, pids) < 0)
		message = NULL;
	log_warn("%s", message ? message : "a shrink timed out");
	resize_cancel(rs, ETIMEDOUT, message ? message : "the shrink timed out");
	free(message);
}

/* Adds c to the connections rs asks (once). Returns false on ENOMEM. */
static bool resize_add_peer(struct resize *rs, struct conn *c)
{
	size_t i;

	for (i = 0; i < rs->npeers; i++)
		if (rs->peers[i].conn == c)
			return true;
	if (rs->npeers == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 4;
		struct shrink_peer *p = realloc(rs->peers, cap * sizeof(*p));

		if (!p)
			return false;
		rs->peers = p;
		rs->cap = cap;
	}
	rs->peers[rs->npeers].conn = c;
	rs->peers[rs->npeers].acked = false;
	rs->npeers++;
	conn_ref(c);
	return true;
}

/* Sends "shrinking" for rs to c. */
static void resize_ask(struct resize *rs, struct conn *c)
{
	struct region *r = rs->region;
	cJSON *event = notify_event_new(r, proto_event_name(PROTO_EVENT_SHRINKING));

	if (event && cJSON_AddNumberToObject(event, PROTO_FIELD_SIZE, (double)rs->size) &&
	    cJSON_AddNumberToObject(event, PROTO_FIELD_GENERATION, (double)r->generation) &&
	    cJSON_AddNumberToObject(event, PROTO_FIELD_SHRINK, (double)rs->shrink))
		notify_conn(c, r, event);
	else
		log_error("out of memory asking client %llu to acknowledge a shrink",
		          (unsigned long long)c->serial);
	cJSON_Delete(event);
}

/* Phase one of a shrink: asks every holder (or truncates at once when there is none). */
static void resize_begin_shrink(struct resize *rs)
{
	struct region *r = rs->region;
	struct server *srv = r->srv;
	struct holder *h;
	size_t i;

	if (srv->stopping) {
		resize_finish(rs, ECANCELED, "mmapd is stopping; nothing was truncated");
		return;
	}
	rs->shrink = ++srv->shrink_serial;
	for (h = r->holders; h; h = h->rnext) {
		if (conn_alive(h->conn) && !resize_add_peer(rs, h->conn)) {
			resize_finish(rs, ENOMEM, "the daemon is out of memory");
			return;
		}
	}
	if (rs->npeers == 0) {
		resize_start_job(rs);
		return;
	}
	rs->timer = timer_start(srv->loop, srv->limits->shrink_timeout_ms, resize_on_timeout, rs);
	if (!rs->timer) {
		resize_finish(rs, ENOMEM, "the daemon is out of memory");
		return;
	}
	rs->asking = true;
	rs->snext = srv->shrinks;
	if (rs->snext)
		rs->snext->sprev = rs;
	srv->shrinks = rs;
	log_debug("shrink %" PRIu64 " of region '%s' to %" PRIu64 " bytes asks %zu client%s",
	          rs->shrink, r->name, rs->size, rs->npeers, rs->npeers == 1 ? "" : "s");
	for (i = 0; i < rs->npeers; i++)
		resize_ask(rs, rs->peers[i].conn);
}

/* Starts the active resize of its region; one that needs no work finishes at once. */
static void resize_begin(struct resize *rs)
{
	struct region *r = rs->region;
	char *message = NULL;

	rs->old_size = resize_check(r);
	if (rs->size == rs->old_size || (rs->grow_only && rs->size < rs->old_size)) {
		resize_finish(rs, 0, NULL);
		return;
	}
	if (rs->size > rs->old_size) {
		resize_start_job(rs);
		return;
	}
	if (!r->anonymous) {
		resize_begin_shrink(rs);
		return;
	}
	if (asprintf(&message, "anonymous region '%s' cannot shrink (it is sealed against "
	             "shrinking)", r->name) < 0)
		message = NULL;
	resize_finish(rs, EPERM, message ? message : "anonymous regions cannot shrink");
	free(message);
}

/*
 * Starts queued resizes of r until one is in progress or none is left. A resize that ends
 * at once comes back here through resize_finish; the flag keeps that from recursing once
 * per queued request.
 */
static void resize_next(struct region *r)
{
	if (r->resizes.starting)
		return;
	r->resizes.starting = true;
	while (!r->resizes.active && r->resizes.head) {
		struct resize *rs = r->resizes.head;

		r->resizes.head = rs->next;
		if (!r->resizes.head)
			r->resizes.tail = NULL;
		rs->next = NULL;
		r->resizes.active = rs;
		resize_begin(rs);
	}
	r->resizes.starting = false;
}

void resize_request(struct conn *c, uint64_t id, struct region *r, uint64_t size, bool sparse,
                    bool grow_only)
{
	struct resize *rs;

	if (r->rdonly) {
		reply_error(c, id, EACCES, "the daemon can open region '%s' only read-only, so it "
		            "cannot resize it", r->name);
		return;
	}
	/* Without its pages reserved, a hugetlb region grown past the pool would fail later, in
	 * the clients' mappings, instead of here with ENOSPC. */
	if (r->huge == MEMFD_HUGE_HUGETLB && sparse) {
		reply_error(c, id, EINVAL, "region '%s' has huge pages, which are reserved when it "
		            "grows: field 'sparse' cannot be used", r->name);
		return;
	}
	/* hugetlbfs sizes files in whole huge pages only. */
	if (r->huge == MEMFD_HUGE_HUGETLB && size % memfd_huge_page_size() != 0) {
		reply_error(c, id, EINVAL, "region '%s' has huge pages of %" PRIu64 " bytes; "
		            "field 'size' must be a multiple of that", r->name,
		            memfd_huge_page_size());
		return;
	}
	/* Growth is charged to the owner's budget (anonymous regions only shrink never). */
	if (r->budget && size > r->charged &&
	    !budget_fits(r->budget, BUDGET_ANON_BYTES, size - r->charged)) {
		reply_budget(c, id, r->budget, BUDGET_ANON_BYTES, size - r->charged);
		return;
	}
	rs = calloc(1, sizeof(*rs));
	if (!rs) {
		reply_nomem(c, id);
		return;
	}
	rs->region = r;
	region_ref(r);
	rs->conn = c;
	conn_ref(c);
	conn_pending_add(c);
	rs->id = id;
	rs->size = size;
	rs->sparse = sparse;
	rs->grow_only = grow_only;
	if (r->resizes.tail)
		r->resizes.tail->next = rs;
	else
		r->resizes.head = rs;
	r->resizes.tail = rs;
	region_ref(r);
	resize_next(r);
	region_unref(r);
}

static struct resize *resize_find_shrink(struct server *srv, uint64_t shrink)
{
	struct resize *rs;

	for (rs = srv->shrinks; rs; rs = rs->snext)
		if (rs->shrink == shrink)
			return rs;
	return NULL;
}

/* Marks c as having acknowledged rs. Returns false if rs did not ask c. */
static bool resize_mark_acked(struct resize *rs, const struct conn *c)
{
	size_t i;

	for (i = 0; i < rs->npeers; i++) {
		if (rs->peers[i].conn == c) {
			rs->peers[i].acked = true;
			return true;
		}
	}
	return false;
}

int resize_ack(struct conn *c, uint64_t shrink)
{
	struct resize *rs = resize_find_shrink(c->srv, shrink);

	if (!rs || !resize_mark_acked(rs, c))
		return -ESRCH;
	if (resize_all_acked(rs))
		resize_acked(rs);
	return 0;
}

uint64_t resize_grant_size(const struct region *r, uint64_t size)
{
	const struct resize *rs = r->resizes.active;

	return rs && rs->asking && rs->size < size ? rs->size : size;
}

void resize_grant_added(struct conn *c, struct region *r)
{
	struct resize *rs = r->resizes.active;
	size_t n;

	if (!rs || !rs->asking)
		return;
	n = rs->npeers;
	if (!resize_add_peer(rs, c)) {
		log_error("out of memory asking client %llu to acknowledge shrink %" PRIu64,
		          (unsigned long long)c->serial, rs->shrink);
		return;
	}
	if (rs->npeers > n)
		resize_ask(rs, c);
}

void resize_conn_gone(struct conn *c)
{
	struct resize *rs = c->srv->shrinks;

	while (rs) {
		struct resize *next = rs->snext;

		if (resize_mark_acked(rs, c) && resize_all_acked(rs))
			resize_acked(rs);
		rs = next;
	}
}

void resize_region_retire(struct region *r)
{
	struct resize *rs;
	char *message = NULL;

	if (asprintf(&message, "region '%s' was deleted", r->name) < 0)
		message = NULL;
	while ((rs = r->resizes.head) != NULL) {
		r->resizes.head = rs->next;
		if (!r->resizes.head)
			r->resizes.tail = NULL;
		resize_reply(rs, ECANCELED, message ? message : "the region was deleted");
		resize_free(rs);
	}
	rs = r->resizes.active;
	if (rs && rs->asking)
		resize_cancel(rs, ECANCELED, message ? message : "the region was deleted");
	free(message);
}

void resize_server_stop(struct server *srv)
{
	while (srv->shrinks)
		resize_cancel(srv->shrinks, ECANCELED, "mmapd is stopping; nothing was truncated");
}

static void resize_on_size_timer(uv_timer_t *timer)
{
	struct server *srv = timer->data;
	struct htab_iter it;
	struct hnode *node;

	htab_iter_init(&srv->regions, &it);
	while ((node = htab_iter_next(&srv->regions, &it)) != NULL) {
		struct region *r = htab_entry(node, struct region, node);

		if (r->state == REGION_READY && !resize_busy(r))
			resize_check(r);
	}
}

uint64_t resize_notice(struct region *r)
{
	return resize_busy(r) ? region_size(r) : resize_check(r);
}

void resize_checker_start(struct server *srv)
{
	uint64_t ms = srv->limits->size_check_ms;

	if (ms == 0)
		return;
	uv_timer_init(srv->loop, &srv->size_timer);
	srv->size_timer.data = srv;
	srv->size_timer_active = true;
	uv_timer_start(&srv->size_timer, resize_on_size_timer, ms, ms);
}

void resize_checker_stop(struct server *srv)
{
	if (!srv->size_timer_active)
		return;
	uv_close((uv_handle_t *)&srv->size_timer, NULL);
	srv->size_timer_active = false;
}
