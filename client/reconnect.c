/* SPDX-License-Identifier: MIT */
/*
 * Reconnection of libmmapd. When the connection dies the client is BROKEN; the next call
 * (through the call multiplexer's reconnect hook), or mmapd_client_dispatch(), reconnects:
 * backoff from 10 ms doubling to 1 s for up to reconnect_ms, a new socket, hello, then
 * reconnect_restore(): the grants of open regions (region.c) and the subscriptions (coord.c)
 * are renewed, the locks held are reported lost and RECONNECTED is queued. Other calls wait
 * for it. This file sits above the regions and coordination it restores; nothing below it
 * names it (call.c reaches it through the hook mmapd_connect() sets).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "top.h"

#define BACKOFF_FIRST_MS 10
#define BACKOFF_MAX_MS 1000

/*
 * What a reconnection restores after hello: the grants of open regions and the
 * subscriptions. Then the locks held before are reported lost and RECONNECTED is queued.
 * Returns 0, or a negative errno (message set) when the new connection failed meanwhile (the
 * next attempt starts over; what was restored is restored again, what was given up stays
 * given up). Lock not held.
 */
static int reconnect_restore(struct mmapd_client *client)
{
	struct mmapd_event ev = { 0 };
	int r;

	pthread_mutex_lock(&client->lock);
	client->locks_lost += locks_forget(client);
	pthread_mutex_unlock(&client->lock);
	r = regions_reopen(client);
	if (r == 0)
		r = subs_restore(client);
	if (r < 0)
		return r;
	pthread_mutex_lock(&client->lock);
	if (client->locks_lost > 0) {
		ev.type = MMAPD_EVENT_LOCKS_LOST;
		ev.nlocks = client->locks_lost;
		client->locks_lost = 0;
		event_push(client, &ev);
	}
	ev.type = MMAPD_EVENT_RECONNECTED;
	ev.nlocks = 0;
	event_push(client, &ev);
	pthread_mutex_unlock(&client->lock);
	return 0;
}

/*
 * One attempt: a new socket, hello, reconnect_restore(). Returns 0 with the client up, or a
 * negative errno (message set). Lock held; released meanwhile.
 */
static int reconnect_once(struct mmapd_client *client)
{
	int sock, r;

	pthread_mutex_unlock(&client->lock);
	sock = socket_open(client->path);
	pthread_mutex_lock(&client->lock);
	if (sock < 0)
		return sock;
	if (client->state == CLIENT_CLOSED) {
		close(sock);
		return client_down_error(client);
	}
	r = socket_install(client, sock);
	if (r < 0)
		return r;
	pthread_mutex_unlock(&client->lock);
	r = client_hello(client, CALL_INTERNAL);
	if (r == 0)
		r = reconnect_restore(client);
	pthread_mutex_lock(&client->lock);
	if (r == 0 && client->state != CLIENT_UP)
		r = client_down_error(client);
	return r;
}

int client_reconnect(struct mmapd_client *client)
{
	struct timespec start, wake;
	int err = client->dead_err, delay = BACKOFF_FIRST_MS, r;
	char *reason = client->dead_message ? strdup(client->dead_message) : NULL;

	client->reconnecting = true;
	deadline_after(&start, 0);
	for (;;) {
		int elapsed, pause;

		/* A reader of the dead socket leaves once it sees that it is dead. */
		while (client->reading)
			pthread_cond_wait(&client->cond, &client->lock);
		socket_teardown(client);
		if (client->state == CLIENT_CLOSED) {
			r = client_down_error(client);
			break;
		}
		r = reconnect_once(client);
		if (r == 0 || client->state == CLIENT_CLOSED)
			break;
		/* A connection made in this attempt is of no use now. */
		client_break(client, client->gen, r, "%s", mmapd_last_message());

		deadline_after(&wake, 0);
		elapsed = (int)((wake.tv_sec - start.tv_sec) * 1000 +
		                (wake.tv_nsec - start.tv_nsec) / 1000000L);
		/* The dispatch thread told to stop leaves the reconnection to other callers. */
		if ((client->reconnect_ms > 0 && elapsed >= client->reconnect_ms) ||
		    client_dispatch_stopping_self(client)) {
			char *last = strdup(mmapd_last_message());

			/* Calls keep reporting why the connection died, not the last attempt. */
			free(client->dead_message);
			client->dead_message = reason;
			client->dead_err = err;
			reason = NULL;
			r = error_set(err, "%s; reconnecting failed for %d ms: %s",
			              client->dead_message ? client->dead_message : mmapd_strerror(err),
			              elapsed, last ? last : "out of memory");
			free(last);
			break;
		}
		pause = delay;
		if (client->reconnect_ms > 0 && pause > client->reconnect_ms - elapsed)
			pause = client->reconnect_ms - elapsed;
		deadline_after(&wake, pause);
		while (client->state != CLIENT_CLOSED && !client_dispatch_stopping_self(client) &&
		       pthread_cond_timedwait(&client->cond, &client->lock, &wake) != ETIMEDOUT)
			;
		delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
	}
	free(reason);
	client->reconnecting = false;
	pthread_cond_broadcast(&client->cond);
	return r;
}
