/* SPDX-License-Identifier: MIT */
/*
 * The send queue of libmmapd: frames of the start calls (start.c) that could not be written
 * at once. A start call must not block on the daemon, so its frame goes to the tail of this
 * queue and is written without waiting, as far as the socket takes it; whatever is left goes
 * out with the next blocking send (which writes the queue before its own frame, so frames never
 * interleave and keep their order) or when the application dispatches because
 * mmapd_client_fd() reported the socket writable: the socket is watched for EPOLLOUT exactly
 * while the queue holds frames of the working connection.
 *
 * The queue is under client->lock; writing to the socket needs send_lock as every send does,
 * and only the holder of send_lock advances or pops the head. Frames of a connection that is
 * gone are dropped (their calls already failed with it, call.c). Low in the layers: the
 * client object frees it, the call layer fills and writes it.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "client.h"

/* Pops and frees the head. Lock held. */
static void sendq_pop(struct mmapd_client *client)
{
	struct out_frame *f = client->out_head;

	client->out_head = f->next;
	if (!client->out_head)
		client->out_tail = NULL;
	atomic_fetch_sub(&client->out_count, 1);
	free(f->buf);
	free(f);
}

int sendq_push(struct mmapd_client *client, uint64_t gen, uint8_t *buf, size_t len)
{
	struct out_frame *f = malloc(sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->next = NULL;
	f->gen = gen;
	f->len = len;
	f->sent = 0;
	f->buf = buf;
	if (client->out_tail)
		client->out_tail->next = f;
	else
		client->out_head = f;
	client->out_tail = f;
	atomic_fetch_add(&client->out_count, 1);
	return 0;
}

int sendq_write(struct mmapd_client *client, int sock, uint64_t gen, bool block)
{
	for (;;) {
		struct out_frame *f;
		ssize_t n;

		pthread_mutex_lock(&client->lock);
		while ((f = client->out_head) && f->gen < gen)
			sendq_pop(client);
		pthread_mutex_unlock(&client->lock);
		if (!f || f->gen != gen)
			return 0;
		/* Only the holder of send_lock touches the head's sent and pops it. */
		n = send(sock, f->buf + f->sent, f->len - f->sent,
		         MSG_NOSIGNAL | (block ? 0 : MSG_DONTWAIT));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		f->sent += (size_t)n;
		if (f->sent == f->len) {
			pthread_mutex_lock(&client->lock);
			sendq_pop(client);
			pthread_mutex_unlock(&client->lock);
		}
	}
}

void sendq_watch(struct mmapd_client *client)
{
	bool want = client->state == CLIENT_UP && client->sock >= 0 && client->out_head &&
	            client->out_head->gen <= client->gen;
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0u),
	                          .data.fd = client->sock };

	if (want == client->out_watched || client->state != CLIENT_UP)
		return;
	if (epoll_ctl(client->epfd, EPOLL_CTL_MOD, client->sock, &ev) == 0)
		client->out_watched = want;
}

void sendq_clear(struct mmapd_client *client)
{
	while (client->out_head)
		sendq_pop(client);
}
