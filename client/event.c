/*
 * Events of libmmapd. Whichever thread reads an event from the daemon acts on it at once
 * (a resize remaps, a shrink protects the tail and is acknowledged, a cancelled shrink
 * restores access, a deletion is noted: region.c does the work) and queues a copy. The
 * queue is only emptied by mmapd_client_dispatch(), which calls the application's handler without
 * any lock held, so the handler may call libmmapd (even mmapd_disconnect()).
 *
 * The queue is bounded: at most EVENTS_MAX events or EVENTS_BYTES_MAX bytes of ranges and
 * strings. When a new event does not fit, the oldest ones are dropped (the newest are kept)
 * and one MMAPD_EVENT_OVERFLOW per affected region, carrying the highest seq dropped, is put
 * at the head of the queue, so the application knows to re-read those regions. RECONNECTED
 * and LOCKS_LOST (made by a reconnection, not read) are never dropped; a newer one replaces
 * one that still waits (the lost locks add up), so there is at most one of each.
 *
 * mmapd_client_fd() is an epoll descriptor over the socket and an eventfd; the eventfd is readable
 * while events wait or the connection is broken (client_wake_update), so a poll loop also
 * wakes for events another thread read. The background dispatch thread (dispatch_thread.c)
 * is such a loop; while it runs, mmapd_client_dispatch() is refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "msg.h"

#define EVENTS_MAX 1024
#define EVENTS_BYTES_MAX (1u << 20)

struct event_node {
	struct event_node *next;
	struct mmapd_event ev;  /* its pointers point into this node's tail */
	bool marker;            /* an OVERFLOW standing for dropped events */
	size_t bytes;           /* of the tail: ranges, then strings */
};

void event_queue_init(struct event_queue *q)
{
	memset(q, 0, sizeof(*q));
}

void event_queue_clear(struct event_queue *q)
{
	while (q->head) {
		struct event_node *node = q->head;

		q->head = node->next;
		free(node);
	}
	event_queue_init(q);
}

static bool event_ordinary(const struct event_node *node)
{
	return node->ev.region && !node->marker;
}

/* Unlinks node (whose predecessor is prev, NULL at the head). */
static void queue_unlink(struct event_queue *q, struct event_node *prev, struct event_node *node)
{
	if (prev)
		prev->next = node->next;
	else
		q->head = node->next;
	if (q->tail == node)
		q->tail = prev;
	node->next = NULL;
	if (event_ordinary(node)) {
		q->count--;
		q->bytes -= node->bytes;
	}
}

static void queue_append(struct event_queue *q, struct event_node *node)
{
	if (q->tail)
		q->tail->next = node;
	else
		q->head = node;
	q->tail = node;
	if (event_ordinary(node)) {
		q->count++;
		q->bytes += node->bytes;
	}
}

/* Copies s to *p and advances it. Returns the copy, or NULL for NULL. */
static const char *tail_string(char **p, const char *s)
{
	char *copy = *p;
	size_t len;

	if (!s)
		return NULL;
	len = strlen(s) + 1;
	memcpy(copy, s, len);
	*p += len;
	return copy;
}

/* A node holding a deep copy of ev. NULL when out of memory. */
static struct event_node *event_node_new(const struct mmapd_event *ev)
{
	size_t nr = ev->nranges * sizeof(*ev->ranges);
	size_t lr = ev->region ? strlen(ev->region) + 1 : 0;
	size_t lw = ev->writer_client ? strlen(ev->writer_client) + 1 : 0;
	size_t lm = ev->message ? strlen(ev->message) + 1 : 0;
	struct event_node *node = malloc(sizeof(*node) + nr + lr + lw + lm);
	char *p;

	if (!node)
		return NULL;
	node->next = NULL;
	node->ev = *ev;
	node->marker = false;
	node->bytes = nr + lr + lw + lm;
	/* sizeof(*node) is a multiple of its 8-byte alignment, so the ranges are aligned. */
	p = (char *)(node + 1);
	node->ev.ranges = nr ? memcpy(p, ev->ranges, nr) : NULL;
	p += nr;
	node->ev.region = tail_string(&p, ev->region);
	node->ev.writer_client = tail_string(&p, ev->writer_client);
	node->ev.message = tail_string(&p, ev->message);
	return node;
}

/*
 * Events of region were dropped (the last with seq): the OVERFLOW marker of that region at
 * the head of the queue says so, made if there is none yet.
 */
static void event_mark_dropped(struct event_queue *q, const char *region, uint64_t seq)
{
	struct mmapd_event ev = { .type = MMAPD_EVENT_OVERFLOW, .region = region, .seq = seq };
	struct event_node *node;

	for (node = q->head; node && node->marker; node = node->next) {
		if (strcmp(node->ev.region, region) == 0) {
			if (seq > node->ev.seq)
				node->ev.seq = seq;
			return;
		}
	}
	/* Without memory the application is not told; nothing else can be done. */
	node = event_node_new(&ev);
	if (!node)
		return;
	node->marker = true;
	node->next = q->head;
	q->head = node;
	if (!q->tail)
		q->tail = node;
}

/* Drops the oldest ordinary event for an OVERFLOW marker. */
static void event_drop_oldest(struct event_queue *q)
{
	struct event_node *prev = NULL, *node = q->head;

	while (node && !event_ordinary(node)) {
		prev = node;
		node = node->next;
	}
	if (!node)
		return;
	queue_unlink(q, prev, node);
	event_mark_dropped(q, node->ev.region, node->ev.seq);
	free(node);
}

void event_push(struct mmapd_client *client, const struct mmapd_event *ev)
{
	struct event_queue *q = &client->events;
	struct mmapd_event copy = *ev;
	struct event_node *node;

	if (!ev->region) {
		struct event_node *prev = NULL;

		for (node = q->head; node; prev = node, node = node->next) {
			if (node->ev.type == ev->type) {
				copy.nlocks += node->ev.nlocks;
				queue_unlink(q, prev, node);
				free(node);
				break;
			}
		}
	}
	node = event_node_new(&copy);
	if (node) {
		queue_append(q, node);
		while (q->count > EVENTS_MAX || q->bytes > EVENTS_BYTES_MAX)
			event_drop_oldest(q);
	} else if (ev->region) {
		event_mark_dropped(q, ev->region, ev->seq);
	}
	client_wake_update(client);
	pthread_cond_broadcast(&client->cond);
}

/* ---- reading events ---- */

static const struct {
	enum proto_event event;
	enum mmapd_event_type type;
} event_kinds[] = {
	{ PROTO_EVENT_CHANGED, MMAPD_EVENT_CHANGED },
	{ PROTO_EVENT_OVERFLOW, MMAPD_EVENT_OVERFLOW },
	{ PROTO_EVENT_RESIZED, MMAPD_EVENT_RESIZED },
	{ PROTO_EVENT_SHRINKING, MMAPD_EVENT_SHRINKING },
	{ PROTO_EVENT_SHRINK_CANCELLED, MMAPD_EVENT_SHRINK_CANCELLED },
	{ PROTO_EVENT_POLICY, MMAPD_EVENT_POLICY },
	{ PROTO_EVENT_FLUSHED, MMAPD_EVENT_FLUSHED },
	{ PROTO_EVENT_FLUSH_FAILED, MMAPD_EVENT_FLUSH_FAILED },
	{ PROTO_EVENT_DELETED, MMAPD_EVENT_DELETED },
	{ PROTO_EVENT_UNLOCKED, MMAPD_EVENT_UNLOCKED },
};

/* Reads a JSON number that holds an integer 0..2^53-1 (msg_get_u64 reads one by key). */
static int json_u64(const cJSON *item, uint64_t *ret)
{
	double d;

	if (!cJSON_IsNumber(item))
		return -EINVAL;
	d = item->valuedouble;
	if (!(d >= 0.0 && d <= (double)PROTO_ID_MAX) || (double)(uint64_t)d != d)
		return -EINVAL;
	*ret = (uint64_t)d;
	return 0;
}

/* Reads "ranges": [[offset, length], ...] into a malloc'd array. Returns 0 or -EINVAL/-ENOMEM. */
static int event_ranges(const cJSON *msg, struct mmapd_range **ret, size_t *ret_n)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(msg, PROTO_FIELD_RANGES), *item;
	struct mmapd_range *ranges;
	size_t n = 0;

	if (!cJSON_IsArray(arr))
		return -EINVAL;
	ranges = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	cJSON_ArrayForEach(item, arr) {
		if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2 ||
		    json_u64(cJSON_GetArrayItem(item, 0), &ranges[n].offset) < 0 ||
		    json_u64(cJSON_GetArrayItem(item, 1), &ranges[n].length) < 0) {
			free(ranges);
			return -EINVAL;
		}
		n++;
	}
	*ret = ranges;
	*ret_n = n;
	return 0;
}

/* Reads the optional "writer": {"client", "pid"} of a changed event. */
static int event_writer(const cJSON *msg, struct mmapd_event *ev)
{
	const cJSON *writer = cJSON_GetObjectItemCaseSensitive(msg, PROTO_FIELD_WRITER);
	uint64_t pid;

	if (!writer)
		return 0;
	if (!cJSON_IsObject(writer) ||
	    msg_get_string(writer, PROTO_FIELD_CLIENT, &ev->writer_client) < 0 ||
	    msg_get_u64(writer, PROTO_FIELD_PID, &pid) < 0 || pid > INT64_MAX)
		return -EINVAL;
	ev->writer_pid = (int64_t)pid;
	return 0;
}

/* Reads the "error" object of an event into error and message. */
static int event_error(const cJSON *msg, struct mmapd_event *ev)
{
	int err;

	if (msg_error_parse(msg, &err, &ev->message) < 0 || err <= 0)
		return -EINVAL;
	ev->error = -err;
	return 0;
}

/*
 * Fills ev (type set) from msg; *ret_ranges is for the caller to free, *ret_shrink gets the
 * shrink id. Pointers in ev are borrowed from msg. Returns 0, -EINVAL or -ENOMEM.
 */
static int event_parse(const cJSON *msg, struct mmapd_event *ev, struct mmapd_range **ret_ranges,
                       uint64_t *ret_shrink)
{
	switch (ev->type) {
	case MMAPD_EVENT_CHANGED:
		if (msg_get_u64(msg, PROTO_FIELD_SEQ, &ev->seq) < 0)
			return -EINVAL;
		ev->first_seq = ev->seq;
		ev->writer_pid = -1;
		if (msg_get_u64(msg, PROTO_FIELD_FIRST_SEQ, &ev->first_seq) == -EINVAL ||
		    event_writer(msg, ev) < 0)
			return -EINVAL;
		return event_ranges(msg, ret_ranges, &ev->nranges);
	case MMAPD_EVENT_OVERFLOW:
	case MMAPD_EVENT_FLUSHED:
		return msg_get_u64(msg, PROTO_FIELD_SEQ, &ev->seq) < 0 ? -EINVAL : 0;
	case MMAPD_EVENT_RESIZED:
		if (msg_get_u64(msg, PROTO_FIELD_SIZE, &ev->size) < 0 ||
		    msg_get_u64(msg, PROTO_FIELD_OLD_SIZE, &ev->old_size) < 0 ||
		    msg_get_u64(msg, PROTO_FIELD_GENERATION, &ev->generation) < 0 ||
		    msg_get_bool(msg, PROTO_FIELD_EXTERNAL, &ev->external) == -EINVAL)
			return -EINVAL;
		return 0;
	case MMAPD_EVENT_SHRINKING:
		if (msg_get_u64(msg, PROTO_FIELD_SIZE, &ev->size) < 0 ||
		    msg_get_u64(msg, PROTO_FIELD_GENERATION, &ev->generation) < 0 ||
		    msg_get_u64(msg, PROTO_FIELD_SHRINK, ret_shrink) < 0)
			return -EINVAL;
		return 0;
	case MMAPD_EVENT_SHRINK_CANCELLED:
		/* The daemon says why in words only; the code says that the shrink did not happen. */
		ev->error = -ECANCELED;
		if (msg_get_u64(msg, PROTO_FIELD_SHRINK, ret_shrink) < 0 ||
		    msg_get_string(msg, PROTO_FIELD_MESSAGE, &ev->message) == -EINVAL ||
		    (cJSON_HasObjectItem(msg, PROTO_FIELD_ERROR) && event_error(msg, ev) < 0))
			return -EINVAL;
		return 0;
	case MMAPD_EVENT_POLICY:
		return policy_read(cJSON_GetObjectItemCaseSensitive(msg, PROTO_FIELD_POLICY),
		                   &ev->policy) < 0 ? -EINVAL : 0;
	case MMAPD_EVENT_FLUSH_FAILED:
		return event_error(msg, ev);
	case MMAPD_EVENT_UNLOCKED:
		if (msg_get_u64(msg, PROTO_FIELD_OFFSET, &ev->offset) < 0 ||
		    msg_get_u64(msg, PROTO_FIELD_LENGTH, &ev->length) < 0)
			return -EINVAL;
		return 0;
	default:
		return 0;
	}
}

void event_handle(struct mmapd_client *client, const cJSON *msg, const char *name)
{
	struct mmapd_event ev = { 0 };
	struct mmapd_range *ranges = NULL;
	uint64_t shrink = 0;
	size_t i;

	for (i = 0; i < sizeof(event_kinds) / sizeof(event_kinds[0]); i++)
		if (strcmp(name, proto_event_name(event_kinds[i].event)) == 0)
			break;
	/* The protocol may add events; those and malformed ones are ignored. */
	if (i == sizeof(event_kinds) / sizeof(event_kinds[0]))
		return;
	ev.type = event_kinds[i].type;
	if (msg_get_string(msg, PROTO_FIELD_REGION, &ev.region) < 0 ||
	    event_parse(msg, &ev, &ranges, &shrink) < 0) {
		free(ranges);
		return;
	}
	ev.ranges = ranges;

	switch (ev.type) {
	case MMAPD_EVENT_RESIZED:
		regions_resized(client, ev.region, ev.size, ev.generation);
		break;
	case MMAPD_EVENT_SHRINKING:
		/* A window whose tail could not be protected must not let the shrink go on. */
		if (regions_shrinking(client, ev.region, ev.size, shrink))
			client_ack_later(client, shrink);
		break;
	case MMAPD_EVENT_SHRINK_CANCELLED:
		regions_shrink_cancelled(client, ev.region, shrink);
		break;
	case MMAPD_EVENT_DELETED:
		regions_deleted(client, ev.region);
		subs_forget(client, ev.region);
		break;
	default:
		break;
	}
	event_push(client, &ev);
	free(ranges);
}

/* ---- dispatching ---- */

MMAPD_EXPORT void mmapd_client_set_event_handler(struct mmapd_client *client, mmapd_event_fn *fn,
                                          void *userdata)
{
	if (!client)
		return;
	pthread_mutex_lock(&client->lock);
	client->handler = fn;
	client->handler_data = userdata;
	pthread_mutex_unlock(&client->lock);
}

/*
 * Makes sure events wait in the queue, or that there will be none before the deadline:
 * reads what is there, reconnects a broken connection once the queue is empty, and waits.
 * Returns 0 (events may or may not wait) or a negative errno (message set). Lock held.
 */
static int dispatch_wait(struct mmapd_client *client, const struct timespec *deadline)
{
	for (;;) {
		int r;

		if (client->state == CLIENT_UP)
			client_read_ready(client);
		if (client->events.head)
			return 0;
		if (client->state == CLIENT_CLOSED)
			return client_down_error(client);
		if (client->reconnecting) {
			if (!deadline)
				pthread_cond_wait(&client->cond, &client->lock);
			else if (pthread_cond_timedwait(&client->cond, &client->lock, deadline) ==
			         ETIMEDOUT)
				return 0;
			continue;
		}
		if (client->state == CLIENT_BROKEN) {
			if (client->reconnect_ms == 0)
				return client_down_error(client);
			r = client_reconnect(client);
			if (r < 0)
				return r;
			continue;
		}
		r = client_wait_event(client, deadline);
		if (r == -ETIMEDOUT)
			return 0;
		if (r == -EINTR)
			return error_set(-EINTR, "waiting for events was interrupted by a signal");
	}
}

int event_dispatch(struct mmapd_client *client, int timeout_ms)
{
	struct timespec deadline;
	size_t todo = 0;
	int n = 0, r;

	if (timeout_ms >= 0)
		deadline_after(&deadline, timeout_ms);
	client_ref(client);
	pthread_mutex_lock(&client->lock);
	r = dispatch_wait(client, timeout_ms >= 0 ? &deadline : NULL);

	/* Only what waits now: events read while handlers run are for the next call. */
	for (struct event_node *node = client->events.head; node; node = node->next)
		todo++;
	while (todo-- > 0 && client->events.head) {
		struct event_node *node = client->events.head;
		mmapd_event_fn *fn = client->handler;
		void *data = client->handler_data;

		queue_unlink(&client->events, NULL, node);
		client_wake_update(client);
		pthread_mutex_unlock(&client->lock);
		if (fn)
			fn(client, &node->ev, data);
		free(node);
		pthread_mutex_lock(&client->lock);
		n++;
	}
	pthread_mutex_unlock(&client->lock);
	client_unref(client);
	return n > 0 ? n : r;
}

MMAPD_EXPORT int mmapd_client_dispatch(struct mmapd_client *client, int timeout_ms)
{
	int r;

	if (!client)
		return error_set(-EINVAL, "client is NULL");
	pthread_mutex_lock(&client->lock);
	if (dispatch_thread_busy(client)) {
		pthread_mutex_unlock(&client->lock);
		return error_set(-EBUSY, "a dispatch thread delivers this client's events");
	}
	/* A handler may disconnect: the client must outlive the count. */
	client_ref(client);
	client->dispatching++;
	pthread_mutex_unlock(&client->lock);
	r = event_dispatch(client, timeout_ms);
	pthread_mutex_lock(&client->lock);
	client->dispatching--;
	pthread_mutex_unlock(&client->lock);
	client_unref(client);
	return r;
}
