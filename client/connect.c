/* SPDX-License-Identifier: MIT */
/*
 * Connecting and disconnecting libmmapd: mmapd_connect() builds the client (its locks, the
 * event descriptor behind mmapd_client_fd(), the frame reader), connects the socket, says
 * hello, and wires the hooks by which the call multiplexer (call.c) reaches the layers above
 * it without naming them: events go to react.c, a broken connection to reconnect.c.
 * mmapd_disconnect() ends the dispatch thread, fails the calls in flight and drops the
 * owner's reference. The top of the client's layers: it may name any file, none names it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "top.h"
#include "msg.h"

/* The longest client name the daemon accepts in hello. */
#define CLIENT_NAME_MAX 64

#define RECONNECT_DEFAULT_MS 30000

/* What the call multiplexer reaches above it: every client's. */
static const struct client_hooks connect_hooks = {
	.event = event_handle,
	.reconnect = client_reconnect,
};

MMAPD_EXPORT int mmapd_connect(const char *path, const char *client_name,
                               struct mmapd_client **ret_client)
{
	struct sockaddr_un addr;
	struct epoll_event ev = { .events = EPOLLIN };
	struct mmapd_client *client;
	pthread_condattr_t attr;
	int sock, r;

	if (!ret_client)
		return error_set(-EINVAL, "ret_client is NULL");
	if (!path) {
		path = getenv("MMAPD_SOCKET");
		if (!path || !*path)
			path = MMAPD_DEFAULT_SOCKET;
	}
	if (!*path)
		return error_set(-EINVAL, "the socket path is empty");
	if (strlen(path) >= sizeof(addr.sun_path))
		return error_set(-ENAMETOOLONG, "the socket path is longer than %zu bytes",
		                 sizeof(addr.sun_path) - 1);
	if (client_name && strlen(client_name) > CLIENT_NAME_MAX)
		return error_set(-EINVAL, "the client name is longer than %d bytes", CLIENT_NAME_MAX);

	client = calloc(1, sizeof(*client));
	if (!client)
		return error_set(-ENOMEM, "out of memory");
	client->hooks = &connect_hooks;
	atomic_init(&client->refs, 1);
	pthread_mutex_init(&client->send_lock, NULL);
	pthread_mutex_init(&client->lock, NULL);
	atomic_flag_clear(&client->fast_mu);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&client->cond, &attr);
	pthread_condattr_destroy(&attr);
	client->state = CLIENT_BROKEN;
	client->sock = -1;
	client->next_id = 1;
	client->max_frame = FRAME_MAX_DEFAULT;
	client->protocol = PROTO_VERSION;
	client->reconnect_ms = RECONNECT_DEFAULT_MS;
	frame_reader_init(&client->reader, FRAME_MAX_LIMIT);
	fd_queue_init(&client->fds);
	event_queue_init(&client->events);
	client->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	client->epfd = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = client->evfd;
	if (client->evfd < 0 || client->epfd < 0 ||
	    epoll_ctl(client->epfd, EPOLL_CTL_ADD, client->evfd, &ev) < 0) {
		r = -errno;
		error_set(r, "cannot make the event descriptor: %s", mmapd_strerror(r));
		goto fail;
	}
	client->path = strdup(path);
	client->name = client_name ? strdup(client_name) : NULL;
	if (!client->path || (client_name && !client->name)) {
		r = error_set(-ENOMEM, "out of memory");
		goto fail;
	}

	sock = socket_open(path);
	if (sock < 0) {
		r = sock;
		goto fail;
	}
	r = socket_install(client, sock);
	if (r < 0)
		goto fail;
	r = client_hello(client, 0);
	if (r < 0)
		goto fail;
	*ret_client = client;
	return 0;

fail:
	client_unref(client);
	return r;
}

MMAPD_EXPORT void mmapd_disconnect(struct mmapd_client *client)
{
	struct event_queue left;

	if (!client)
		return;
	dispatch_thread_end(client);
	pthread_mutex_lock(&client->lock);
	if (client->state == CLIENT_UP)
		shutdown(client->sock, SHUT_RDWR);
	client->state = CLIENT_CLOSED;
	client_fail_calls(client, -ENOTCONN, "the connection was closed by mmapd_disconnect()");
	pthread_cond_broadcast(&client->cond);
	/* A reader wakes up from the shut-down socket; a reconnection sees CLOSED and stops. */
	while (client->reading || client->reconnecting)
		pthread_cond_wait(&client->cond, &client->lock);
	socket_teardown(client);
	client_close_wake(client);
	/* Undelivered events go; the regions of started opens among them are closed. */
	left = client->events;
	event_queue_init(&client->events);
	client->handler = NULL;
	pthread_mutex_unlock(&client->lock);
	start_events_drop(&left);
	client_unref(client);
}

MMAPD_EXPORT void mmapd_client_set_reconnect(struct mmapd_client *client, int timeout_ms)
{
	if (!client)
		return;
	pthread_mutex_lock(&client->lock);
	client->reconnect_ms = timeout_ms;
	pthread_mutex_unlock(&client->lock);
}

MMAPD_EXPORT int mmapd_client_fd(struct mmapd_client *client)
{
	int fd;

	if (!client)
		return error_set(-EINVAL, "client is NULL");
	pthread_mutex_lock(&client->lock);
	fd = client->epfd;
	pthread_mutex_unlock(&client->lock);
	return fd >= 0 ? fd : error_set(-ENOTCONN, "the client was disconnected");
}
