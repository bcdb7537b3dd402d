/* SPDX-License-Identifier: MIT */
/*
 * The call multiplexer of libmmapd: client_run(), which sends one request and waits for its
 * reply, and the reader that hands replies to their calls.
 *
 * Several threads may have requests in flight on one client at once. Each request is a
 * struct call registered under its id before it is sent; sends are serialised by send_lock,
 * so a frame is never interleaved with another. Reading is done by whichever waiting thread
 * holds the reader role (leader/follower): it polls the socket without the lock, then, with
 * the lock, takes every complete frame, hands each reply to its call by id (waking that
 * thread), and gives each event to the client's event hook at once (react.c: remapping on
 * resize, protecting a shrinking tail, queueing it for mmapd_client_dispatch()). Then it gives
 * up the role and wakes the waiting threads; one that still needs a reader takes it over. A
 * blocking request (a lock that waits) thus never keeps the replies of other threads unread.
 * Shrink acknowledgements found on the way are sent after the frames are handled (send_lock
 * is always taken before lock). A start call (CALL_NOWAIT) never waits to send: its frame
 * goes through the send queue (sendq.c), flushed by the next sender or, when the socket is
 * full, by dispatching once mmapd_client_fd() reports it writable (client_read_ready).
 *
 * Frames come out of a frame_reader (proto/frame.h) sized for FRAME_MAX_LIMIT and
 * descriptors out of a FIFO fd_queue (proto/fdpass.h): every frame that says "fds": n claims
 * the next n, wanted or not, so the queue never falls out of step with the frames.
 *
 * When the connection dies (end of stream, reset, a shutdown or error event, a protocol
 * violation) every call in flight fails with the reason and the client is BROKEN. The next
 * call reconnects through the client's reconnect hook (reconnect.c), while other calls wait.
 * Both hooks (struct client_hooks) are set by mmapd_connect() (connect.c): this layer names
 * nothing above it.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "call.h"
#include "msg.h"

static void fds_close(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* ---- time (CLOCK_MONOTONIC, as the client's condition variable) ---- */

/* ---- life cycle ---- */

/* ---- requests ---- */

/* ---- failing calls, breaking the connection ---- */

int call_fail(struct call *call, int err, const char *fmt, ...)
{
	va_list ap;

	free(call->message);
	va_start(ap, fmt);
	if (vasprintf(&call->message, fmt, ap) < 0)
		call->message = NULL;
	va_end(ap);
	call->err = err;
	return err;
}

/* Takes call off the list of calls in flight and wakes its thread. Lock held. */
static void call_complete(struct mmapd_client *client, struct call *call)
{
	if (call->prev)
		call->prev->next = call->next;
	else
		client->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
	call->done = true;
	if (call->flags & CALL_QUIET)
		client->quiet--;
	if (call->flags & CALL_DETACHED)
		call->on_done(client, call);
	else
		pthread_cond_signal(&call->cond);
}

/* Fails every call in flight with err and message. Lock held. */
void client_fail_calls(struct mmapd_client *client, int err, const char *message)
{
	while (client->calls) {
		struct call *call = client->calls;

		call_fail(call, err, "%s", message ? message : mmapd_strerror(err));
		call_complete(client, call);
	}
}

void client_break(struct mmapd_client *client, uint64_t gen, int err, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (client->state != CLIENT_UP || client->gen != gen)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);

	client->state = CLIENT_BROKEN;
	client->dead_err = err;
	free(client->dead_message);
	client->dead_message = msg;
	shutdown(client->sock, SHUT_RDWR);
	epoll_ctl(client->epfd, EPOLL_CTL_DEL, client->sock, NULL);
	client->out_watched = false;
	id_list_free(client->acks);
	client->acks = NULL;
	client_fail_calls(client, err, msg);
	client_wake_update(client);
	pthread_cond_broadcast(&client->cond);
}

/* ---- sending ---- */

/*
 * Gives req the next id and frames it. Returns 0, -EMSGSIZE or -ENOMEM (message not set).
 * Lock held.
 */
static int client_encode(struct mmapd_client *client, cJSON *req, uint64_t *ret_id,
                         uint8_t **ret_buf, size_t *ret_len)
{
	uint64_t id = client->next_id;

	client->next_id = id == PROTO_ID_MAX ? 1 : id + 1;
	cJSON_DeleteItemFromObjectCaseSensitive(req, "id");
	if (!cJSON_AddNumberToObject(req, PROTO_FIELD_ID, (double)id))
		return -ENOMEM;
	*ret_id = id;
	return msg_encode(req, client->max_frame, ret_buf, ret_len);
}

/*
 * Sends a whole frame on connection gen, holding send_lock so that frames never interleave:
 * the frames of start calls queued before it go first, and those queued meanwhile follow as
 * far as the socket takes them without waiting. MSG_NOSIGNAL: a dead daemon must never raise
 * SIGPIPE in the caller. fd (borrowed, may be NULL) goes with the frame's first byte, in the
 * same sendmsg as the rest of the frame as far as the socket takes it (docs/protocol.md,
 * "Sending a descriptor"). call (may be NULL), whose frame this is, gets the frame's stamp:
 * stamps grow in the order frames enter the stream. Returns 0, -ESTALE when gen is not up any
 * more, or send's error. Lock not held.
 */
static int client_send(struct mmapd_client *client, uint64_t gen, const uint8_t *buf,
                       size_t len, const int *fd, struct call *call)
{
	bool queued = atomic_load(&client->out_count) != 0;
	int sock, r = 0;

	pthread_mutex_lock(&client->send_lock);
	pthread_mutex_lock(&client->lock);
	sock = client->state == CLIENT_UP && client->gen == gen ? client->sock : -1;
	/* Still on the list while the connection is up: a detached call is not freed yet. */
	if (sock >= 0 && call)
		call->stamp = ++client->send_stamp;
	pthread_mutex_unlock(&client->lock);
	if (sock >= 0 && queued)
		r = sendq_write(client, sock, gen, true);
	while (sock >= 0 && r == 0 && len > 0) {
		ssize_t n = fdpass_send(sock, buf, len, fd, fd ? 1 : 0, 0);

		if (n < 0) {
			r = (int)n;
			break;
		}
		fd = NULL;
		buf += n;
		len -= (size_t)n;
	}
	/* Frames queued meanwhile follow; the writability watch ends once the queue is empty. */
	if (sock >= 0 && r == 0 && (queued || atomic_load(&client->out_count))) {
		sendq_write(client, sock, gen, false);
		pthread_mutex_lock(&client->lock);
		sendq_watch(client);
		pthread_mutex_unlock(&client->lock);
	}
	pthread_mutex_unlock(&client->send_lock);
	return sock < 0 ? -ESTALE : r;
}

/*
 * After client_send() returned r. When the daemon hung up (EPIPE, ECONNRESET) the reader
 * finds the end of the stream, after any shutdown or error event that says why; any other
 * failure may have cut a frame short, so the connection is broken here. Lock held.
 */
static void client_sent(struct mmapd_client *client, uint64_t gen, int r)
{
	if (r < 0 && r != -ESTALE && r != -EPIPE && r != -ECONNRESET)
		client_break(client, gen, r, "cannot send to mmapd: %s", mmapd_strerror(r));
}

/*
 * Writes the queued frames of connection gen without waiting, if no other thread is sending
 * (that one writes the queue before it lets go of send_lock, or the EPOLLOUT watch set here
 * makes the application dispatch, client_send_pending). Lock not held.
 */
static void client_send_queued(struct mmapd_client *client, uint64_t gen)
{
	int sock = -1, r = 0;

	if (pthread_mutex_trylock(&client->send_lock) == 0) {
		pthread_mutex_lock(&client->lock);
		sock = client->state == CLIENT_UP && client->gen == gen ? client->sock : -1;
		pthread_mutex_unlock(&client->lock);
		if (sock >= 0)
			r = sendq_write(client, sock, gen, false);
		pthread_mutex_unlock(&client->send_lock);
	}
	pthread_mutex_lock(&client->lock);
	if (r < 0 && r != -EAGAIN)
		client_sent(client, gen, r);
	sendq_watch(client);
	pthread_mutex_unlock(&client->lock);
}

/*
 * What mmapd_client_fd() reported writable: the queued frames go out as far as they can
 * without waiting. Lock held (dropped while writing); send_lock only if free, never waited for.
 */
static void client_send_pending(struct mmapd_client *client)
{
	uint64_t gen = client->gen;
	int sock = client->sock, r;

	if (!client->out_head || client->state != CLIENT_UP ||
	    pthread_mutex_trylock(&client->send_lock) != 0)
		return;
	pthread_mutex_unlock(&client->lock);
	/* send_lock keeps the socket open (socket_teardown takes it before closing). */
	r = sendq_write(client, sock, gen, false);
	pthread_mutex_lock(&client->lock);
	pthread_mutex_unlock(&client->send_lock);
	if (r < 0 && r != -EAGAIN)
		client_sent(client, gen, r);
	sendq_watch(client);
}

void client_ack_later(struct mmapd_client *client, uint64_t shrink)
{
	struct id_node *node = malloc(sizeof(*node)), **tail = &client->acks;

	/* Without memory the shrink is not acknowledged and fails: the safe outcome. */
	if (!node)
		return;
	node->id = shrink;
	node->next = NULL;
	while (*tail)
		tail = &(*tail)->next;
	*tail = node;
}

/*
 * Sends the shrink-acks queued while frames were handled. No call waits for their replies,
 * which are dropped when they come. Lock held; released while sending.
 */
static void client_send_acks(struct mmapd_client *client)
{
	while (client->acks && client->state == CLIENT_UP) {
		struct id_node *ack = client->acks;
		cJSON *req = cJSON_CreateObject();
		uint64_t gen = client->gen, id;
		uint8_t *buf = NULL;
		size_t len;
		int r;

		client->acks = ack->next;
		if (req &&
		    cJSON_AddStringToObject(req, PROTO_FIELD_OP, proto_op_name(PROTO_OP_SHRINK_ACK)) &&
		    cJSON_AddNumberToObject(req, PROTO_FIELD_SHRINK, (double)ack->id) &&
		    client_encode(client, req, &id, &buf, &len) == 0) {
			pthread_mutex_unlock(&client->lock);
			r = client_send(client, gen, buf, len, NULL, NULL);
			pthread_mutex_lock(&client->lock);
			client_sent(client, gen, r);
		}
		cJSON_Delete(req);
		free(buf);
		free(ack);
	}
}

/* ---- reading ---- */

/*
 * Claims the descriptors msg declares with "fds" into fds (room for FD_QUEUE_CAP). Returns
 * 0, or -EPROTO after breaking the connection when the count is bad or they did not arrive.
 */
static int client_claim_fds(struct mmapd_client *client, const cJSON *msg, int *fds,
                            size_t *ret_nfds)
{
	uint64_t n = 0;
	int r;

	r = msg_get_u64(msg, "fds", &n);
	if ((r < 0 && r != -ENOENT) || n > FD_QUEUE_CAP) {
		client_break(client, client->gen, -EPROTO,
		             "mmapd sent a message with a bad \"fds\" count");
		return -EPROTO;
	}
	if (fd_queue_take(&client->fds, n, fds) < 0) {
		client_break(client, client->gen, -EPROTO,
		             "mmapd announced %llu descriptors that did not arrive",
		             (unsigned long long)n);
		return -EPROTO;
	}
	*ret_nfds = n;
	return 0;
}

/*
 * A reply came to a call whose frame had stamp: the CALL_QUIET calls sent before it were
 * handled without an error (the daemon would have answered them first). Lock held.
 */
static void client_quiet_done(struct mmapd_client *client, uint64_t stamp)
{
	struct call *call = client->calls, *next;

	for (; call && client->quiet > 0 && stamp > 0; call = next) {
		next = call->next;
		if ((call->flags & CALL_QUIET) && call->stamp > 0 && call->stamp < stamp)
			call_complete(client, call);
	}
}

/*
 * Gives a reply to its call (the daemon's error, or the reply and its descriptor once the
 * call's hook has run), or drops it with its descriptors when no call waits for it (the
 * reply to a shrink-ack). Consumes msg and fds. Lock held.
 */
static void client_reply(struct mmapd_client *client, cJSON *msg, int *fds, size_t nfds)
{
	struct call *call;
	const char *text;
	uint64_t id;
	bool ok;
	int err;

	if (msg_get_u64(msg, "id", &id) < 0) {
		/* Only a request whose id the daemon could not read is answered so. */
		client_break(client, client->gen, -EPROTO,
		             "mmapd could not read the id of a request of this library");
		goto drop;
	}
	for (call = client->calls; call && call->id != id; call = call->next)
		;
	if (!call)
		goto drop;
	if (client->quiet > 0)
		client_quiet_done(client, call->stamp);

	if (msg_get_bool(msg, "ok", &ok) < 0) {
		call_fail(call, -EPROTO, "mmapd sent a reply without \"ok\"");
	} else if (!ok) {
		if (msg_error_parse(msg, &err, &text) < 0 || err <= 0)
			call_fail(call, -EPROTO, "mmapd sent a failed reply without an error object");
		else
			call_fail(call, -err, "%s", *text ? text : mmapd_strerror(err));
	} else if (call->want_fd && nfds == 0) {
		call_fail(call, -EPROTO, "mmapd sent no descriptor with its reply");
	} else {
		if (call->want_fd) {
			call->fd = fds[0];
			fds++;
			nfds--;
		}
		if (call->want_fd2 && nfds > 0) {
			call->fd2 = fds[0];
			fds++;
			nfds--;
		}
		if (!call->on_reply || call->on_reply(client, call, msg) == 0) {
			call->reply = msg;
			msg = NULL;
		} else {
			if (call->fd >= 0)
				close(call->fd);
			if (call->fd2 >= 0)
				close(call->fd2);
			call->fd = call->fd2 = -1;
		}
	}
	call_complete(client, call);
drop:
	fds_close(fds, nfds);
	cJSON_Delete(msg);
}

/*
 * An event: "shutdown" and "error" precede the daemon closing the connection, so they break
 * it with their reason; the event hook (react.c) acts on the others. Lock held.
 */
static void client_event(struct mmapd_client *client, const cJSON *msg, const char *name)
{
	const char *text;
	int err;

	if (strcmp(name, "shutdown") == 0) {
		if (msg_get_string(msg, "message", &text) < 0 || !*text)
			text = "mmapd is shutting down";
		client_break(client, client->gen, -ESHUTDOWN, "%s", text);
	} else if (strcmp(name, "error") == 0) {
		if (msg_error_parse(msg, &err, &text) < 0 || err <= 0) {
			err = EPROTO;
			text = "";
		}
		client_break(client, client->gen, -err, "%s", *text ? text : mmapd_strerror(err));
	} else {
		client->hooks->event(client, msg, name);
	}
}

/* Handles every complete frame in the reader. Lock and reader role held. */
static void client_frames(struct mmapd_client *client)
{
	int fds[FD_QUEUE_CAP];
	uint64_t gen = client->gen;

	while (client->state == CLIENT_UP && client->gen == gen) {
		const char *payload, *event;
		size_t len, nfds = 0;
		cJSON *msg = NULL;
		int r;

		r = frame_reader_next(&client->reader, &payload, &len);
		if (r == 0)
			return;
		if (r < 0) {
			client_break(client, gen, -EPROTO, "mmapd sent a frame %s",
			             r == -EMSGSIZE ? "larger than 16 MiB" : "of length 0");
			return;
		}
		/* A frame we cannot read may have declared descriptors: the queue is lost. */
		r = msg_parse(payload, len, &msg);
		if (r < 0) {
			client_break(client, gen, r == -ENOMEM ? -ENOMEM : -EPROTO, "%s",
			             r == -ENOMEM ? "out of memory reading a message from mmapd"
			                          : "mmapd sent a malformed message");
			return;
		}
		if (client_claim_fds(client, msg, fds, &nfds) < 0) {
			cJSON_Delete(msg);
			return;
		}
		if (msg_get_string(msg, "event", &event) == 0) {
			/* Events carry no descriptors we use. */
			fds_close(fds, nfds);
			client_event(client, msg, event);
			cJSON_Delete(msg);
		} else {
			client_reply(client, msg, fds, nfds);
		}
	}
}

/*
 * Acts on what one receive brought (n bytes, or recv's error). Lock and reader role held,
 * connection gen still up.
 */
static void client_received(struct mmapd_client *client, uint64_t gen, ssize_t n)
{
	if (n > 0) {
		frame_reader_commit(&client->reader, (size_t)n);
		client_frames(client);
	} else if (n == 0 || n == -ECONNRESET) {
		client_break(client, gen, -ECONNRESET, "mmapd closed the connection");
	} else if (n == -EPROTO) {
		/*
		 * Descriptors were dropped: the kernel truncated them (this process may be out
		 * of descriptors) or more arrived than the queue holds. Frames would claim the
		 * wrong ones.
		 */
		client_break(client, gen, -EPROTO, "descriptors sent by mmapd were lost (too many "
		             "at once, or this process is out of descriptors)");
	} else if (n != -EAGAIN) {
		client_break(client, gen, (int)n, "cannot receive from mmapd: %s",
		             mmapd_strerror((int)n));
	}
}

/* How client_read() waits for the socket. */
enum read_wait {
	READ_NOW,     /* not at all: what is there already, if anything */
	READ_REPLY,   /* in recvmsg itself, for a reply: one syscall, and EINTR cannot end it */
	READ_UNTIL,   /* in poll, until the deadline (NULL: none); a signal ends it (-EINTR) */
};

/*
 * Takes the reader role, receives once (waiting as wait says) and handles every complete
 * frame; then gives the role up, wakes every waiting thread (one that still needs a reader
 * takes over) and sends the acknowledgements found. A reply is waited for in a blocking
 * recvmsg rather than poll then recvmsg: a shut-down socket (client_break, mmapd_disconnect)
 * ends either. Returns 1 when bytes came, 0 (nothing was there for READ_NOW, or the
 * connection went down), -ETIMEDOUT or -EINTR (READ_UNTIL), or -EAGAIN (READ_UNTIL: a page
 * subscription's doorbell rang, the socket has nothing). Lock held, role free, state up.
 */
static int client_read(struct mmapd_client *client, enum read_wait wait,
                       const struct timespec *deadline)
{
	/* With page subscriptions, READ_UNTIL also wakes for their doorbells, which are in
	 * mmapd_client_fd()'s set (pagesub.c): the set is readable, the socket is not. */
	struct pollfd pfd[2] = {
		{ .fd = client->sock, .events = POLLIN },
		{ .fd = client->epfd, .events = POLLIN },
	};
	nfds_t npfd = client->bells ? 2 : 1;
	uint64_t gen = client->gen;
	uint8_t *space;
	size_t avail;
	ssize_t n = -EAGAIN;
	int r = 0;

	client->reading = true;
	pthread_mutex_unlock(&client->lock);
	if (wait == READ_UNTIL) {
		r = poll(pfd, npfd, deadline ? deadline_left_ms(deadline) : -1);
		if (r < 0)
			r = -errno;
		else
			r = r == 0 ? -ETIMEDOUT : pfd[0].revents ? 0 : -EAGAIN;
	}
	if (r == 0 && (r = frame_reader_space(&client->reader, &space, &avail)) == 0)
		n = fdpass_recv(pfd[0].fd, space, avail, &client->fds,
		                wait == READ_REPLY ? 0 : MSG_DONTWAIT);
	pthread_mutex_lock(&client->lock);

	if (client->state == CLIENT_UP && client->gen == gen) {
		if (r == 0)
			client_received(client, gen, n);
		else if (r != -ETIMEDOUT && r != -EINTR && r != -EAGAIN)
			client_break(client, gen, r, "cannot buffer a message from mmapd: %s",
			             mmapd_strerror(r));
	}
	client->reading = false;
	for (struct call *call = client->calls; call; call = call->next)
		pthread_cond_signal(&call->cond);
	pthread_cond_broadcast(&client->cond);
	client_send_acks(client);
	return r == -ETIMEDOUT || r == -EINTR || r == -EAGAIN ? r : n > 0;
}

void client_read_ready(struct mmapd_client *client)
{
	client_send_pending(client);
	/*
	 * Until a receive finds nothing: a short one does not say that the end of the stream is
	 * not behind what it brought (a dead daemon's last replies, then end of stream).
	 */
	while (!client->reading && client->state == CLIENT_UP &&
	       client_read(client, READ_NOW, NULL) > 0)
		;
}

/* Waits until call is done, reading for everyone while nobody else does. Lock held. */
static void client_wait_call(struct mmapd_client *client, struct call *call)
{
	while (!call->done) {
		if (!client->reading && client->state == CLIENT_UP)
			client_read(client, READ_REPLY, NULL);
		else
			pthread_cond_wait(&call->cond, &client->lock);
	}
}

int client_wait_event(struct mmapd_client *client, const struct timespec *deadline)
{
	while (!client->events.head) {
		int r;

		if (client->state != CLIENT_UP)
			return client_down_error(client);
		if (!client->reading) {
			r = client_read(client, READ_UNTIL, deadline);
			if (r < 0 && !client->events.head)
				return r;
		} else if (!deadline) {
			pthread_cond_wait(&client->cond, &client->lock);
		} else if (pthread_cond_timedwait(&client->cond, &client->lock, deadline) == ETIMEDOUT &&
		           !client->events.head) {
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/* ---- calls ---- */

/*
 * Waits until call may go out: while a reconnection runs (unless call is part of it), and
 * reconnecting first when the connection broke. A CALL_PINNED call goes out at once on its
 * connection, or not at all. Returns 0, -ESTALE for a CALL_PINNED call whose connection is
 * gone (message not set), or a negative errno (message set). Lock held.
 */
static int client_ready(struct mmapd_client *client, const struct call *call)
{
	bool looked = false;

	for (;;) {
		int r;

		if (call->flags & CALL_PINNED)
			return client->state == CLIENT_UP && client->gen == call->gen ? 0 : -ESTALE;
		if (client->state == CLIENT_CLOSED)
			return client_down_error(client);
		if (client->reconnecting && (call->flags & CALL_NOWAIT))
			return error_set(-EAGAIN, "a reconnection to mmapd is under way; start again "
			                 "once MMAPD_EVENT_RECONNECTED is dispatched");
		if (client->reconnecting && !(call->flags & CALL_INTERNAL)) {
			pthread_cond_wait(&client->cond, &client->lock);
			continue;
		}
		/*
		 * A daemon that went away while nobody was reading left the end of the stream
		 * (and perhaps a shutdown event) behind: find it now, so that this request goes
		 * out on a new connection instead of failing on the dead one.
		 */
		if (client->state == CLIENT_UP && !looked && !(call->flags & CALL_INTERNAL)) {
			client_read_ready(client);
			looked = true;
			continue;
		}
		if (client->state == CLIENT_UP)
			return 0;
		/* A start call does not reconnect: dispatching does, without anyone waiting on it. */
		if ((call->flags & (CALL_INTERNAL | CALL_NOWAIT)) || client->reconnect_ms == 0)
			return client_down_error(client);
		r = client->hooks->reconnect(client);
		if (r < 0)
			return r;
	}
}

int client_run(struct mmapd_client *client, struct call *call)
{
	bool detached = call->flags & CALL_DETACHED;
	uint8_t *buf = NULL;
	uint64_t gen;
	size_t len;
	int r;

	call->reply = NULL;
	call->fd = -1;
	call->fd2 = -1;
	call->done = false;
	call->err = 0;
	call->message = NULL;
	call->stamp = 0;
	call->prev = call->next = NULL;
	pthread_cond_init(&call->cond, NULL);
	client_ref(client);
	pthread_mutex_lock(&client->lock);

	r = client_ready(client, call);
	if (r < 0)
		goto out;
	r = client_encode(client, call->req, &call->id, &buf, &len);
	if (r < 0) {
		r = error_set(r, r == -EMSGSIZE ? "the request is larger than mmapd's frame limit"
		                                : "out of memory building a request");
		goto out;
	}
	gen = call->gen = client->gen;
	if (call->flags & CALL_NOWAIT) {
		/* Queued first, written below as far as the socket takes it without waiting. */
		if (sendq_push(client, gen, buf, len) < 0) {
			r = error_set(-ENOMEM, "out of memory queueing a request");
			goto out;
		}
		buf = NULL;
	}
	call->next = client->calls;
	if (client->calls)
		client->calls->prev = call;
	client->calls = call;
	if (call->flags & CALL_QUIET)
		client->quiet++;
	pthread_mutex_unlock(&client->lock);

	/* Once on the list, a detached call may complete (and be freed) at any moment. */
	if (!buf) {
		client_send_queued(client, gen);
		client_unref(client);
		return 0;
	}
	r = client_send(client, gen, buf, len, call->send_fd, call);

	pthread_mutex_lock(&client->lock);
	client_sent(client, gen, r);
	if (detached) {
		pthread_mutex_unlock(&client->lock);
		client_unref(client);
		free(buf);
		return 0;
	}
	client_wait_call(client, call);
	r = call->err;
	if (r < 0)
		error_set(r, "%s", call->message ? call->message : mmapd_strerror(r));
out:
	pthread_mutex_unlock(&client->lock);
	free(call->message);
	call->message = NULL;
	pthread_cond_destroy(&call->cond);
	client_unref(client);
	free(buf);
	return r;
}

int client_call(struct mmapd_client *client, cJSON *req, cJSON **ret_reply)
{
	struct call call = { .req = req };
	int r = client_run(client, &call);

	*ret_reply = call.reply;
	return r;
}

/* A release nobody waits for: the "close" request of one grant, and the region's name. */
struct release {
	struct call call;
	uint64_t handle;
	char name[];
};

/*
 * Reports that grant handle of region name was not released: err and message become an
 * MMAPD_EVENT_RELEASE_FAILED. Lock held.
 */
static void release_report(struct mmapd_client *client, const char *name, uint64_t handle,
                           int err, const char *message)
{
	char *text = NULL;
	struct mmapd_event ev = {
		.type = MMAPD_EVENT_RELEASE_FAILED, .region = name, .seq = handle,
		.writer_pid = -1, .error = err,
	};

	if (asprintf(&text, "mmapd did not release grant %llu of region '%s' (it stays counted "
	             "against this connection until it ends): %s", (unsigned long long)handle,
	             name, message ? message : mmapd_strerror(err)) < 0)
		text = NULL;
	ev.message = text ? text : message;
	event_push(client, &ev);
	free(text);
}

/*
 * The release ended. The daemon's error (or a reply this library cannot read) is reported;
 * a connection that went down released the grant itself, which is not an error. Frees the
 * call. Lock held.
 */
static void release_done(struct mmapd_client *client, struct call *call)
{
	struct release *rel = (struct release *)call;

	if (call->err < 0 && client->state == CLIENT_UP && client->gen == call->gen)
		release_report(client, rel->name, rel->handle, call->err, call->message);
	cJSON_Delete(call->req);
	cJSON_Delete(call->reply);
	free(call->message);
	pthread_cond_destroy(&call->cond);
	free(rel);
}

void client_release_grant(struct mmapd_client *client, const char *name, uint64_t handle,
                          uint64_t gen)
{
	struct release *rel = calloc(1, sizeof(*rel) + strlen(name) + 1);
	cJSON *req = NULL;
	bool quiet;
	int r;

	/* At the limit, the reply to a release that asked for one may be there to settle them. */
	pthread_mutex_lock(&client->lock);
	if (client->quiet >= MMAPD_QUIET_MAX)
		client_read_ready(client);
	quiet = client->quiet < MMAPD_QUIET_MAX;
	pthread_mutex_unlock(&client->lock);

	r = rel ? 0 : error_set(-ENOMEM, "out of memory");
	if (r == 0 && !(req = request_new(proto_op_name(PROTO_OP_CLOSE), NULL)))
		r = -ENOMEM;
	if (r == 0)
		r = request_add_u64(req, PROTO_FIELD_HANDLE, handle);
	if (r == 0 && quiet && !cJSON_AddBoolToObject(req, PROTO_FIELD_REPLY, false))
		r = request_nomem();
	if (r == 0) {
		rel->handle = handle;
		strcpy(rel->name, name);
		rel->call.req = req;
		rel->call.flags = CALL_PINNED | CALL_DETACHED | (quiet ? CALL_QUIET : 0);
		rel->call.gen = gen;
		rel->call.on_done = release_done;
		/* Once sent, rel is release_done()'s and may be gone already. */
		r = client_run(client, &rel->call);
		if (r == 0)
			return;
	}
	cJSON_Delete(req);
	free(rel);
	/* That connection is gone, and with it every grant it held. */
	if (r == -ESTALE)
		return;
	pthread_mutex_lock(&client->lock);
	if (client->state == CLIENT_UP && client->gen == gen)
		release_report(client, name, handle, r, mmapd_last_message());
	pthread_mutex_unlock(&client->lock);
}

/* ---- connecting and reconnecting ---- */
