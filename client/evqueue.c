/* SPDX-License-Identifier: MIT */
/*
 * The event queue of libmmapd: events read from the daemon wait here, bounded, until
 * mmapd_client_dispatch() (event.c) or the dispatch thread hands them to the handler, and the
 * client's event descriptor (mmapd_client_fd()) is readable exactly while some wait or the
 * connection is broken. Low in the client's layers: every layer that reports something to the
 * application (the reader's reactions, a reconnection, a region given up) pushes here.
 *
 * The queue is bounded: at most EVENTS_MAX events or EVENTS_BYTES_MAX bytes of ranges and
 * strings. When a new event does not fit, the oldest ones are dropped (the newest are kept)
 * and one MMAPD_EVENT_OVERFLOW per affected region, carrying the highest seq dropped, is put
 * at the head of the queue, so the application knows to re-read those regions. The ends of
 * what this client started (FLUSH_DONE and the start calls' events) are never dropped nor
 * counted. RECONNECTED and LOCKS_LOST (made by a reconnection, not read) are never dropped; a newer one replaces
 * one that still waits (the lost locks add up), so there is at most one of each.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"

void client_wake_update(struct mmapd_client *client)
{
	bool want = client->events.head || client->state == CLIENT_BROKEN;
	uint64_t one = 1, got;

	if (client->evfd < 0 || want == client->evfd_set)
		return;
	/* A non-blocking eventfd that holds 0 or 1: the write cannot block, the read drains. */
	if (want ? write(client->evfd, &one, sizeof(one)) == sizeof(one)
	         : read(client->evfd, &got, sizeof(got)) == sizeof(got))
		client->evfd_set = want;
}

#define EVENTS_MAX 1024
#define EVENTS_BYTES_MAX (1u << 20)


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

/*
 * Ordinary events are counted against the bound and may be dropped. The end of something this
 * client started (mmapd_flush_async() and the start calls) is not: it is reported exactly
 * once, and there are only as many as the program started.
 */
static bool event_ordinary(const struct event_node *node)
{
	switch (node->ev.type) {
	case MMAPD_EVENT_FLUSH_DONE:
	case MMAPD_EVENT_OPEN_DONE:
	case MMAPD_EVENT_LOCK_DONE:
	case MMAPD_EVENT_RESIZE_DONE:
	case MMAPD_EVENT_DELETE_DONE:
		return false;
	default:
		return node->ev.region && !node->marker;
	}
}

/* Unlinks node (whose predecessor is prev, NULL at the head). */
void event_queue_unlink(struct event_queue *q, struct event_node *prev, struct event_node *node)
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
	size_t lt = ev->to ? strlen(ev->to) + 1 : 0;
	struct event_node *node = malloc(sizeof(*node) + nr + lr + lw + lm + lt);
	char *p;

	if (!node)
		return NULL;
	node->next = NULL;
	node->ev = *ev;
	node->marker = false;
	node->bytes = nr + lr + lw + lm + lt;
	/* sizeof(*node) is a multiple of its 8-byte alignment, so the ranges are aligned. */
	p = (char *)(node + 1);
	node->ev.ranges = nr ? memcpy(p, ev->ranges, nr) : NULL;
	p += nr;
	node->ev.region = tail_string(&p, ev->region);
	node->ev.writer_client = tail_string(&p, ev->writer_client);
	node->ev.message = tail_string(&p, ev->message);
	node->ev.to = tail_string(&p, ev->to);
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
	event_queue_unlink(q, prev, node);
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
				event_queue_unlink(q, prev, node);
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
