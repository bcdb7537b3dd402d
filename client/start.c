/* SPDX-License-Identifier: MIT */
/*
 * The start calls of libmmapd (mmapd.h, "Start calls"): open, lock, resize, flush and delete
 * without waiting for the daemon, for programs that run an event loop on mmapd_client_fd().
 *
 * Each is the blocking call's request (built by region.c and coord.c, which the blocking calls
 * use too) sent as a detached call that never waits (CALL_DETACHED | CALL_NOWAIT: the send
 * queue, sendq.c, takes the frame when the socket is full), with the blocking call's reply
 * hook, which records in stream order what the reply means (a lock held, a new size, a grant).
 * When the call ends (its reply, or the connection's end: client_break and mmapd_disconnect()
 * fail every call in flight) its on_done queues exactly one completion event carrying the
 * token the start call returned. Completion events are never dropped by the bounded queue
 * (evqueue.c). An open's region is mapped when its OPEN_DONE is delivered, outside the lock
 * (start_event_deliver, called by event.c), as mmapd_region_open() maps after its reply.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domain.h"
#include "msg.h"

/* A start call in flight: the call, what its event reports, and the region's name. */
struct start {
	struct call call;
	struct mmapd_event ev;        /* type, seq (the token), offset, length set at start */
	struct id_node *node;         /* lock: for lock_reply_hook, which takes it */
	char name[];
};

static _Atomic uint64_t start_tokens;

/* The call ended: its event is queued (reply or err set), and the start is freed. Lock held. */
static void start_done(struct mmapd_client *client, struct call *call)
{
	struct start *st = (struct start *)call;
	struct mmapd_event *ev = &st->ev;
	struct region_entry e;

	ev->region = st->name;
	ev->writer_pid = -1;
	ev->error = call->err;
	ev->message = call->err ? call->message : NULL;
	if (ev->type == MMAPD_EVENT_OPEN_DONE) {
		/* Granted or not, the region goes with the event: delivering maps or frees it. */
		ev->opened = call->ctx;
	} else if (call->err == 0 && ev->type == MMAPD_EVENT_LOCK_DONE) {
		msg_get_u64(call->reply, PROTO_FIELD_LOCK, &ev->lock);
	} else if (call->err == 0 && ev->type == MMAPD_EVENT_RESIZE_DONE &&
	           region_info_parse(cJSON_GetObjectItemCaseSensitive(call->reply,
	                                                              PROTO_FIELD_REGION), &e) == 0) {
		ev->size = e.info.size;
		ev->generation = e.info.generation;
	}
	event_push(client, ev);
	cJSON_Delete(call->req);
	cJSON_Delete(call->reply);
	if (call->fd >= 0)
		close(call->fd);
	free(call->message);
	pthread_cond_destroy(&call->cond);
	free(st->node);
	free(st);
}

/*
 * Sends call (its req, hook and ctx set) of region name as a start call whose end is an event
 * of type with offset and length. Consumes req. Returns 0 with *ret_token (may be NULL), or a
 * negative errno (message set; on_reply's ctx stays the caller's).
 */
static int start_run(struct mmapd_client *client, const struct call *call, const char *name,
                     enum mmapd_event_type type, uint64_t offset, uint64_t length,
                     struct id_node *node, uint64_t *ret_token)
{
	struct start *st = calloc(1, sizeof(*st) + strlen(name) + 1);
	uint64_t token;
	int r;

	if (!st) {
		cJSON_Delete(call->req);
		free(node);
		return error_set(-ENOMEM, "out of memory");
	}
	strcpy(st->name, name);
	st->call = *call;
	st->call.flags = CALL_DETACHED | CALL_NOWAIT;
	st->call.on_done = start_done;
	st->node = node;
	if (node)
		st->call.ctx = &st->node;
	token = atomic_fetch_add(&start_tokens, 1) + 1;
	st->ev.type = type;
	st->ev.seq = token;
	st->ev.offset = offset;
	st->ev.length = length;
	/* Once handed over, st is start_done()'s and may be gone already. */
	r = client_run(client, &st->call);
	if (r < 0) {
		cJSON_Delete(st->call.req);
		free(st->node);
		free(st);
		return r;
	}
	if (ret_token)
		*ret_token = token;
	return 0;
}

MMAPD_EXPORT int mmapd_region_open_start(struct mmapd_client *client, const char *name,
                                         const struct mmapd_open_opts *opts,
                                         uint64_t *ret_token)
{
	struct call call = { 0 };
	struct error_saved saved;
	int r = region_open_begin(client, name, opts, &call);

	if (r < 0)
		return r;
	r = start_run(client, &call, name, MMAPD_EVENT_OPEN_DONE, 0, 0, NULL, ret_token);
	if (r < 0) {
		error_save(&saved);
		region_free(call.ctx);
		error_restore(&saved);
	}
	return r;
}

/*
 * A start that ended before it began: its event is queued now. Returns 0 with *ret_token (may
 * be NULL).
 */
static int start_done_now(struct mmapd_client *client, const struct mmapd_event *ev,
                          uint64_t *ret_token)
{
	struct mmapd_event copy = *ev;

	copy.seq = atomic_fetch_add(&start_tokens, 1) + 1;
	copy.writer_pid = -1;
	pthread_mutex_lock(&client->lock);
	event_push(client, &copy);
	pthread_mutex_unlock(&client->lock);
	if (ret_token)
		*ret_token = copy.seq;
	return 0;
}

/*
 * mmapd_lock_start() and mmapd_region_lock_start() (region: the handle, or NULL). A whole-region
 * lock free on a control page this client already has is taken there at once, as
 * mmapd_lock() would, and its LOCK_DONE is queued before the call returns.
 */
static int lock_start(struct mmapd_client *client, struct mmapd_region *region,
                      const char *name, uint64_t offset, uint64_t length, unsigned flags,
                      int timeout_ms, uint64_t *ret_token)
{
	struct call call = { .on_reply = lock_reply_hook };
	struct id_node *node;
	uint64_t lock;
	int r;

	r = lock_request_new(client, name, offset, length, flags, timeout_ms, &call.req);
	if (r < 0)
		return r;
	if (offset == 0 && length == 0) {
		r = fastlock_try(client, region, name, flags, &lock);
		if (r != FAST_FALLBACK) {
			struct mmapd_event ev = { .type = MMAPD_EVENT_LOCK_DONE, .region = name,
			                          .lock = lock };

			cJSON_Delete(call.req);
			return r < 0 ? r : start_done_now(client, &ev, ret_token);
		}
	}
	node = calloc(1, sizeof(*node));
	if (!node) {
		cJSON_Delete(call.req);
		return error_set(-ENOMEM, "out of memory");
	}
	return start_run(client, &call, name, MMAPD_EVENT_LOCK_DONE, offset, length, node,
	                 ret_token);
}

MMAPD_EXPORT int mmapd_lock_start(struct mmapd_client *client, const char *name,
                                  uint64_t offset, uint64_t length, unsigned flags,
                                  int timeout_ms, uint64_t *ret_token)
{
	return lock_start(client, NULL, name, offset, length, flags, timeout_ms, ret_token);
}

MMAPD_EXPORT int mmapd_region_lock_start(struct mmapd_region *region, uint64_t offset,
                                         uint64_t length, unsigned flags, int timeout_ms,
                                         uint64_t *ret_token)
{
	int r = region_coord_offset(region, offset, &offset);

	return r < 0 ? r : lock_start(region->client, region, region->name, offset, length,
	                              flags, timeout_ms, ret_token);
}

MMAPD_EXPORT int mmapd_resize_start(struct mmapd_client *client, const char *name,
                                    uint64_t size, unsigned flags, uint64_t *ret_token)
{
	struct call call = { .on_reply = resize_reply_hook };
	int r = resize_request_new(client, name, size, flags, &call.req);

	return r < 0 ? r : start_run(client, &call, name, MMAPD_EVENT_RESIZE_DONE, 0, 0, NULL,
	                             ret_token);
}

MMAPD_EXPORT int mmapd_region_resize_start(struct mmapd_region *region, uint64_t size,
                                           unsigned flags, uint64_t *ret_token)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	return mmapd_resize_start(region->client, region->name, size, flags, ret_token);
}

MMAPD_EXPORT int mmapd_flush_range_async(struct mmapd_client *client, const char *name,
                                         uint64_t offset, uint64_t length, uint64_t *ret_token)
{
	struct call call = { 0 };
	int r = flush_request_new(client, name, offset, length, &call.req);

	return r < 0 ? r : start_run(client, &call, name, MMAPD_EVENT_FLUSH_DONE, offset, length,
	                             NULL, ret_token);
}

MMAPD_EXPORT int mmapd_flush_async(struct mmapd_client *client, const char *name,
                                   uint64_t *ret_token)
{
	return mmapd_flush_range_async(client, name, 0, 0, ret_token);
}

MMAPD_EXPORT int mmapd_region_flush_range_async(struct mmapd_region *region, uint64_t offset,
                                                uint64_t length, uint64_t *ret_token)
{
	int r = region_coord_offset(region, offset, &offset);

	return r < 0 ? r : mmapd_flush_range_async(region->client, region->name, offset, length,
	                                           ret_token);
}

MMAPD_EXPORT int mmapd_region_flush_async(struct mmapd_region *region, uint64_t *ret_token)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	return mmapd_flush_async(region->client, region->name, ret_token);
}

MMAPD_EXPORT int mmapd_delete_start(struct mmapd_client *client, const char *name,
                                    uint64_t *ret_token)
{
	struct call call = { 0 };
	int r = request_start_region(client, proto_op_name(PROTO_OP_DELETE), name, &call.req);

	return r < 0 ? r : start_run(client, &call, name, MMAPD_EVENT_DELETE_DONE, 0, 0, NULL,
	                             ret_token);
}

/* ---- delivering ---- */

char *start_event_deliver(struct mmapd_event *ev, bool claimed)
{
	struct mmapd_region *region = ev->opened;
	char *message = NULL;
	int r;

	if (ev->type != MMAPD_EVENT_OPEN_DONE || !region)
		return NULL;
	if (ev->error == 0 && claimed) {
		r = region_open_finish(region);
		if (r < 0) {
			message = strdup(mmapd_last_message());
			ev->error = r;
			ev->message = message ? message : mmapd_strerror(r);
		}
	}
	if (ev->error < 0 || !claimed) {
		region_free(region);
		ev->opened = NULL;
	}
	return message;
}

void start_events_drop(struct event_queue *q)
{
	while (q->head) {
		struct event_node *node = q->head;

		q->head = node->next;
		if (node->ev.type == MMAPD_EVENT_OPEN_DONE && node->ev.opened)
			region_free(node->ev.opened);
		free(node);
	}
	event_queue_init(q);
}
