/* SPDX-License-Identifier: MIT */
/*
 * Dispatching the events of libmmapd. Whichever thread reads an event from the daemon acts on
 * it at once (react.c) and queues a copy (evqueue.c). The queue is only emptied here, by
 * mmapd_client_dispatch(), which calls the application's handler without any lock held, so
 * the handler may call libmmapd (even mmapd_disconnect()); waiting for events it reads for
 * everyone (call.c) and reconnects a broken connection (reconnect.c), which is why it sits
 * above both.
 *
 * mmapd_client_fd() is an epoll descriptor over the socket and an eventfd; the eventfd is readable
 * while events wait or the connection is broken (client_wake_update), so a poll loop also
 * wakes for events another thread read. With page subscriptions it also holds their
 * doorbells, edge-triggered (pagesub.c), and each dispatch reads their logs. The background
 * dispatch thread (dispatch_thread.c) is such a loop; while it runs, mmapd_client_dispatch()
 * is refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "top.h"
#include "msg.h"

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

		/* A wake-up for a doorbell alone costs no receive that finds nothing. */
		if (pagesub_edges(client) && client->state == CLIENT_UP)
			client_read_ready(client);
		pagesub_read(client);
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
		/* -EAGAIN: a page subscription's doorbell rang; its log is read above. */
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

		char *message;

		event_queue_unlink(&client->events, NULL, node);
		client_wake_update(client);
		pthread_mutex_unlock(&client->lock);
		/* A started open's region is mapped (or freed) now, outside the lock (start.c). */
		message = start_event_deliver(&node->ev, fn != NULL);
		if (fn)
			fn(client, &node->ev, data);
		free(message);
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
	if (client_dispatch_busy(client)) {
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
