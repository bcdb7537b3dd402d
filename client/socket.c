/* SPDX-License-Identifier: MIT */
/*
 * The socket of libmmapd: connecting a Unix stream socket to the daemon's path, making it the
 * working connection (a new generation, watched by mmapd_client_fd()'s epoll set), and closing
 * it once the connection is down. It sends and reads nothing: that is the call multiplexer's
 * (call.c), the layer above.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "socket.h"

/* Connects a new socket to path. Returns the descriptor or a negative errno (message set). */
int socket_open(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int sock, r;

	memcpy(addr.sun_path, path, strlen(path) + 1);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		r = -errno;
		return error_set(r, "cannot create a socket: %s", mmapd_strerror(r));
	}
	/*
	 * An AF_UNIX connect interrupted while it waits for room in the listener's backlog has not
	 * changed the socket's state, so trying again is correct (unlike TCP).
	 */
	while (connect(sock, (const struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		if (r == -EINTR)
			continue;
		close(sock);
		return error_set(r, "%s: %s", path, mmapd_strerror(r));
	}
	return sock;
}

/* Makes sock the working connection. Returns 0 or a negative errno (message set). Lock held. */
int socket_install(struct mmapd_client *client, int sock)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = sock };
	int r;

	if (epoll_ctl(client->epfd, EPOLL_CTL_ADD, sock, &ev) < 0) {
		r = -errno;
		close(sock);
		return error_set(r, "cannot watch the socket: %s", mmapd_strerror(r));
	}
	client->sock = sock;
	client->gen++;
	client->state = CLIENT_UP;
	client_wake_update(client);
	pthread_cond_broadcast(&client->cond);
	return 0;
}

/*
 * Closes the socket of a connection that is no longer up and forgets what was read from it.
 * Nobody reads (the role is free and the state keeps it so) and send_lock keeps senders out.
 * Lock held; released and taken again to respect the lock order.
 */
void socket_teardown(struct mmapd_client *client)
{
	if (client->sock < 0)
		return;
	pthread_mutex_unlock(&client->lock);
	pthread_mutex_lock(&client->send_lock);
	pthread_mutex_lock(&client->lock);
	if (client->sock >= 0) {
		epoll_ctl(client->epfd, EPOLL_CTL_DEL, client->sock, NULL);
		close(client->sock);
		client->sock = -1;
	}
	fd_queue_clear(&client->fds);
	frame_reader_done(&client->reader);
	frame_reader_init(&client->reader, FRAME_MAX_LIMIT);
	pthread_mutex_unlock(&client->send_lock);
}
