/* SPDX-License-Identifier: MIT */
/*
 * Client connections (see conn.h). The poll handle is started with exactly the events we
 * need: UV_READABLE while we read (also while lingering, to discard input so that the final
 * close does not turn into a reset before the client has read our error event), and
 * UV_WRITABLE only while the output queue is non-empty, which after every write attempt
 * means the socket said EAGAIN.
 *
 * Closing is immediate and idempotent: the socket is closed, queued descriptors are
 * released and so, through the server's release listeners (struct conn_listener, which name
 * the modules so that this file does not), are locks, subscriptions, shrink
 * acknowledgements and grants; the struct waits for its handles' close
 * callbacks and for whoever else holds a reference. Only from inside conn_send (and
 * conn_pending_done, which answered requests call) is it put off to the next loop
 * iteration (conn_close_soon), for the reason given in conn.h.
 */
#include "conn.h"

#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "budget.h"
#include "log.h"
#include "msg.h"
#include "state.h"
#include "vocab.h"

#define CONN_LINGER_MS      1000          /* how long an error or shutdown event may take */
#define CONN_READS_PER_WAKE 4             /* full reads per readiness event, for fairness */
#define CONN_INPUT_BYTES    (64u << 10)   /* the input buffer the connections share */
#define CONN_OUTPUT_KEEP    (256u << 10)  /* the output buffer is freed when larger, once used */
/*
 * A connection's turn: a client may pipeline a whole buffer of requests (64 KiB is thousands
 * of small ones, or hundreds of list pages). Once this many have run, or they took this long,
 * the rest wait for the next loop turn, so every other connection's requests run in between.
 */
#define CONN_FRAMES_PER_TURN 64
#define CONN_TURN_NS         1000000u     /* 1 ms */
#define CONN_DISCARD_MAX    (256u << 10)  /* input drained before the final close */
#define CONN_WARNINGS_MAX   10            /* limit warnings per connection before going quiet */
#define CONN_TRIM_BYTES     (1u << 20)    /* memory freed by closing that is worth a malloc_trim */
/* What a connection holds besides its struct: libuv's bookkeeping, tables, its peer's groups. */
#define CONN_OTHER_BYTES    512u
/*
 * Requests of one connection that may wait at once (on a busy region or the thread pool).
 * Beyond it the connection is not read until some finish: its further requests wait in the
 * socket, costing us nothing, and no error is needed.
 */
#define CONN_PENDING_MAX    64

/*
 * Every connection receives into this one buffer (the loop reads one connection at a time)
 * and its whole frames run from there; only the part of a frame that has not fully arrived
 * is copied into memory of the connection's own, freed again once the frame is complete
 * (frame_reader_space_in, frame_reader_settle). So an idle connection holds no input buffer
 * and a request that arrives whole costs no allocation.
 */
static uint8_t conn_input[CONN_INPUT_BYTES];

/*
 * Every frame is encoded here first (the loop sends one at a time) and written straight from
 * here when the socket takes it; only what must wait is copied into an outbuf. The buffer
 * keeps the size of the frames it carries, up to CONN_OUTPUT_KEEP.
 */
static struct msg_buf conn_output;

static void conn_output_trim(void)
{
	if (conn_output.cap > CONN_OUTPUT_KEEP)
		msg_buf_done(&conn_output);
}

static void conn_update_poll(struct conn *c);
static int conn_write(struct conn *c);
static void conn_on_poll(uv_poll_t *handle, int status, int events);
/* What conn_dispatch did: the connection ended, the buffer is empty, or a turn's worth ran. */
enum conn_dispatched {
	CONN_DISPATCH_ENDED,
	CONN_DISPATCH_IDLE,
	CONN_DISPATCH_YIELDED,
};

static enum conn_dispatched conn_dispatch(struct conn *c);

/* True while the connection has as many waiting requests as it may. */
static bool conn_paused(const struct conn *c)
{
	return c->state == CONN_OPEN && c->pending >= CONN_PENDING_MAX;
}

/*
 * Bytes freed by connections that ended, since the last malloc_trim. free() gives memory back
 * to the system only from the top of the heap, so thousands of connections that came and went
 * would leave their peak behind in malloc's free lists (60 MB after 10,000 idle clients);
 * once a megabyte has been freed, malloc_trim hands the free pages back wherever they are.
 * The loop runs on one thread, so a plain counter does.
 */
static size_t conn_freed_bytes;

static void conn_freed(size_t bytes)
{
	conn_freed_bytes += bytes;
	if (conn_freed_bytes < CONN_TRIM_BYTES)
		return;
	conn_freed_bytes = 0;
	malloc_trim(0);
}

/* Closes the descriptors c received that no frame claimed. */
static void conn_infds_clear(struct conn *c)
{
	while (c->ninfds > 0)
		if (c->infds[--c->ninfds].fd >= 0)
			close(c->infds[c->ninfds].fd);
}

static void conn_free(struct conn *c)
{
	assert(c->state == CONN_CLOSED && c->open_handles == 0);
	conn_freed(sizeof(*c) + c->reader.cap + CONN_OTHER_BYTES);
	frame_reader_done(&c->reader);
	htab_done(&c->grants);
	htab_done(&c->holders);
	htab_done(&c->locks);
	htab_done(&c->subs);
	free(c->client_name);
	free(c->groups);
	free(c);
}

void conn_ref(struct conn *c)
{
	c->refs++;
}

void conn_unref(struct conn *c)
{
	assert(c->refs > 0);
	if (--c->refs == 0)
		conn_free(c);
}

static void conn_on_handle_closed(uv_handle_t *handle)
{
	struct conn *c = handle->data;

	/* Both handles share the server's reference, given back when the last one is closed. */
	if (--c->open_handles == 0)
		conn_unref(c);
}

static void conn_on_linger_timeout(uv_timer_t *timer)
{
	struct conn *c = timer->data;

	log_debug("client %llu (pid %ld): output not drained in time; closing",
	          (unsigned long long)c->serial, (long)c->pid);
	conn_close(c);
}

/* A connection that has not said hello in time holds a slot for nothing: it is cut off. */
static void conn_on_hello_timeout(uv_timer_t *timer)
{
	struct conn *c = timer->data;

	if (c->state == CONN_OPEN && !c->hello_done)
		conn_fail(c, ETIMEDOUT, "no hello within %llu ms",
		          (unsigned long long)c->srv->limits->hello_timeout_ms);
}

void conn_hello_done(struct conn *c)
{
	c->hello_done = true;
	/* Before hello the timer counts down nothing else (no request can be pending yet). */
	uv_timer_stop(&c->timer);
}

static void conn_on_close_soon(uv_timer_t *timer)
{
	conn_close(timer->data);
}

/*
 * Ends c at the start of the next loop iteration (see conn.h). From now on it takes no
 * replies and reads nothing more.
 */
static void conn_close_soon(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	c->state = CONN_LINGER;
	uv_timer_start(&c->timer, conn_on_close_soon, 0, 0);
}

int conn_new(struct server *srv, int fd, pid_t pid, uid_t uid, gid_t gid, struct conn **ret_conn)
{
	struct conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->srv = srv;
	c->refs = 1;
	c->serial = ++srv->conn_serial;
	c->fd = fd;
	c->pid = pid;
	c->uid = uid;
	c->gid = gid;
	c->connected_ms = state_epoch_ms();
	c->state = CONN_OPEN;
	c->budget = budget_ref_uid(srv, (uint32_t)uid);
	if (!c->budget) {
		close(fd);
		free(c);
		return -ENOMEM;
	}
	frame_reader_init(&c->reader, (uint32_t)srv->limits->max_frame);
	htab_init(&c->grants);
	htab_init(&c->holders);
	htab_init(&c->locks);
	htab_init(&c->subs);

	r = uv_poll_init(srv->loop, &c->poll, fd);
	if (r < 0) {
		close(fd);
		budget_unref(c->budget);
		free(c);
		return r;
	}
	c->poll.data = c;
	uv_timer_init(srv->loop, &c->timer);
	c->timer.data = c;
	c->open_handles = 2;

	c->next = srv->conns;
	if (c->next)
		c->next->prev = c;
	srv->conns = c;
	srv->nconns++;
	/* Admission (budget_admit_uid) was checked by whoever accepted the socket. */
	budget_force(c->budget, BUDGET_CONNECTIONS, 1);
	budget_force(c->budget, BUDGET_FDS, 1);
	if (!c->budget->exempt)
		srv->nconns_unprivileged++;

	if (srv->limits->hello_timeout_ms > 0)
		uv_timer_start(&c->timer, conn_on_hello_timeout, srv->limits->hello_timeout_ms, 0);
	conn_update_poll(c);
	if (!conn_alive(c))
		return -EIO;
	*ret_conn = c;
	return 0;
}

bool conn_alive(const struct conn *c)
{
	return c->state == CONN_OPEN || c->state == CONN_HALF;
}

/* A new outbuf holding a copy of the len bytes at p, with one reference; NULL without memory. */
static struct outbuf *conn_outbuf_copy(const void *p, size_t len)
{
	struct outbuf *b = malloc(sizeof(*b) + len);

	if (!b)
		return NULL;
	b->refs = 1;
	b->len = len;
	memcpy(b->bytes, p, len);
	return b;
}

int conn_outbuf_new(const struct server *srv, const cJSON *msg, struct outbuf **ret_buf)
{
	int r = msg_encode_buf(msg, (uint32_t)srv->limits->max_frame, &conn_output);

	conn_output_trim();
	if (r < 0)
		return r;
	*ret_buf = conn_outbuf_copy(conn_output.data, conn_output.len);
	return *ret_buf ? 0 : -ENOMEM;
}

void conn_outbuf_unref(struct outbuf *b)
{
	assert(b->refs > 0);
	if (--b->refs == 0)
		free(b);
}

static void conn_out_free(struct outframe *f)
{
	size_t i;

	for (i = 0; i < f->nfds; i++)
		close(f->fds[i]);
	conn_outbuf_unref(f->buf);
	free(f);
}

/* Reads and throws away what the client still sent, so closing does not reset the stream. */
static void conn_discard_input(struct conn *c, size_t max)
{
	uint8_t scratch[16384];
	size_t total = 0;

	while (total < max) {
		ssize_t n = fdpass_recv_nofds(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

		if (n <= 0 && n != -EPROTO)
			break;
		if (n > 0)
			total += (size_t)n;
	}
}

/* Closes c (see conn.h); discard: read away what the client sent, so that no reset comes. */
static void conn_end(struct conn *c, bool discard)
{
	struct server *srv = c->srv;
	struct outframe *f;

	if (c->state == CONN_CLOSED)
		return;
	c->state = CONN_CLOSED;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	srv->nconns--;
	if (!c->budget->exempt)
		srv->nconns_unprivileged--;

	/* uv_close stops the poll handle at once, so the descriptor may be closed right after. */
	uv_close((uv_handle_t *)&c->poll, conn_on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_on_handle_closed);
	c->events = 0;
	if (discard)
		conn_discard_input(c, CONN_DISCARD_MAX);
	close(c->fd);
	c->fd = -1;
	conn_infds_clear(c);

	budget_release(c->budget, BUDGET_FDS, c->out_fds + c->handed_fds);
	c->handed_fds = 0;
	budget_release(c->budget, BUDGET_QUEUE_BYTES, c->out_bytes);
	while ((f = c->out_head) != NULL) {
		c->out_head = f->next;
		conn_out_free(f);
	}
	c->out_tail = NULL;
	conn_freed(c->out_bytes);
	c->out_bytes = 0;
	c->out_fds = 0;
	for (const struct conn_listener *const *l = srv->conn_listeners; l && *l; l++)
		if ((*l)->release)
			(*l)->release(c);
	/* Last, once its lock waits are given back: a closed connection holds nothing. */
	budget_release(c->budget, BUDGET_CONNECTIONS, 1);
	budget_release(c->budget, BUDGET_FDS, 1);
	budget_unref(c->budget);
	c->budget = NULL;

	log_debug("client %llu (pid %ld) %s", (unsigned long long)c->serial, (long)c->pid,
	          discard ? "disconnected" : "handed over to the next daemon");
	state_check_finished(srv);
}

void conn_close(struct conn *c)
{
	conn_end(c, true);
}

void conn_close_kept(struct conn *c)
{
	conn_end(c, false);
}

/* Whether a listener holds output of c back until its socket drains (struct conn_listener). */
static bool conn_holding(const struct conn *c)
{
	for (const struct conn_listener *const *l = c->srv->conn_listeners; l && *l; l++)
		if ((*l)->holding && (*l)->holding(c))
			return true;
	return false;
}

/* The socket took c's output down to event_backlog_bytes: tells the listeners holding some. */
static void conn_drained(struct conn *c)
{
	for (const struct conn_listener *const *l = c->srv->conn_listeners; l && *l; l++)
		if ((*l)->holding && (*l)->drained && (*l)->holding(c))
			(*l)->drained(c);
}

bool conn_keepable(const struct conn *c)
{
	return c->state == CONN_OPEN && c->hello_done && !c->eof && c->pending == 0 &&
	       frame_reader_pending(&c->reader) == 0 &&
	       !conn_holding(c);
}

int conn_drain(struct conn *c, uint64_t deadline_ms)
{
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		uint64_t now;
		int r = conn_write(c);

		if (r < 0)
			return r;
		if (!c->out_head)
			return 0;
		now = state_now_ms();
		if (now >= deadline_ms)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(deadline_ms - now));
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* True when c has nothing more to do: lingering done, or half-closed and idle. */
static bool conn_done(const struct conn *c)
{
	if (c->out_head)
		return false;
	return c->state == CONN_LINGER ||
	       (c->state == CONN_HALF && c->pending == 0 && c->parked == 0);
}

static void conn_close_if_done(struct conn *c)
{
	if (conn_done(c))
		conn_close(c);
}

static void conn_update_poll(struct conn *c)
{
	int want = 0;
	int r;

	if (c->state == CONN_CLOSED)
		return;
	/* Nothing more is read while requests already read wait their turn (or a slot). */
	if ((c->state == CONN_OPEN || c->state == CONN_LINGER) && !c->eof && !conn_paused(c) &&
	    !c->yielded)
		want |= UV_READABLE;
	if (c->out_head)
		want |= UV_WRITABLE;
	if (want == c->events)
		return;
	r = want ? uv_poll_start(&c->poll, want, conn_on_poll) : uv_poll_stop(&c->poll);
	if (r < 0) {
		log_error("client %llu (pid %ld): cannot watch its socket: %s",
		          (unsigned long long)c->serial, (long)c->pid, uv_strerror(r));
		conn_close_soon(c);
		return;
	}
	c->events = want;
}

/*
 * Writes queued frames until the queue is empty or the socket would block. Returns 0, or
 * -errno when the socket failed (after logging it; the caller closes).
 */
static int conn_write(struct conn *c)
{
	struct outframe *f;

	while ((f = c->out_head) != NULL) {
		ssize_t n = fdpass_send(c->fd, f->buf->bytes + f->off, f->buf->len - f->off,
		                        f->off == 0 ? f->fds : NULL, f->off == 0 ? f->nfds : 0,
		                        MSG_DONTWAIT);

		if (n == -EAGAIN)
			break;
		if (n < 0) {
			log_debug("client %llu (pid %ld): send failed: %s",
			          (unsigned long long)c->serial, (long)c->pid, strerror((int)-n));
			return (int)n;
		}
		if (f->nfds > 0) {
			/* The descriptors rode on the first byte: the client has them now. */
			size_t i;

			for (i = 0; i < f->nfds; i++)
				close(f->fds[i]);
			c->out_fds -= f->nfds;
			budget_release(c->budget, BUDGET_FDS, f->nfds);
			f->nfds = 0;
		}
		f->off += (size_t)n;
		c->out_bytes -= (size_t)n;
		budget_release(c->budget, BUDGET_QUEUE_BYTES, (size_t)n);
		if (f->off == f->buf->len) {
			c->out_head = f->next;
			if (!c->out_head)
				c->out_tail = NULL;
			conn_out_free(f);
		}
	}
	return 0;
}

/*
 * Writes what the socket takes, outside of any send; closes the connection when it failed
 * or is done. Returns 0, or -ECONNRESET when it was closed.
 */
static int conn_flush(struct conn *c)
{
	if (conn_write(c) < 0) {
		conn_close(c);
		return -ECONNRESET;
	}
	conn_close_if_done(c);
	conn_update_poll(c);
	return c->state == CONN_CLOSED ? -ECONNRESET : 0;
}

/*
 * Queues frame b (a new reference) with nfds descriptors (consumed, closed on failure); the
 * caller has checked that the connection can take it. Returns 0 or -ENOMEM.
 */
static int conn_queue_outbuf(struct conn *c, struct outbuf *b, int *fds, size_t nfds)
{
	struct outframe *f = malloc(sizeof(*f) + nfds * sizeof(int));
	size_t i;

	if (!f) {
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		return -ENOMEM;
	}
	f->next = NULL;
	f->buf = b;
	b->refs++;
	f->off = 0;
	f->nfds = nfds;
	for (i = 0; i < nfds; i++)
		f->fds[i] = fds[i];
	if (c->out_tail)
		c->out_tail->next = f;
	else
		c->out_head = f;
	c->out_tail = f;
	c->out_bytes += b->len;
	c->out_fds += nfds;
	/* Counted whatever the budget: conn_sent cuts off the connection that passed it. */
	budget_force(c->budget, BUDGET_QUEUE_BYTES, b->len);
	budget_force(c->budget, BUDGET_FDS, nfds);
	return 0;
}

/*
 * Sends the len bytes of a frame at p with nfds descriptors (consumed, closed on failure):
 * written at once when nothing waits before it and the socket is not known to be full; what
 * the socket did not take is queued, as b (referenced) when b holds the whole frame, else as a
 * copy. Returns 0, or -ENOMEM (the connection is then untouched).
 */
static int conn_put(struct conn *c, const uint8_t *p, size_t len, struct outbuf *b, int *fds,
                    size_t nfds)
{
	size_t off = 0, i;
	int r;

	if (!c->out_head && !(c->events & UV_WRITABLE)) {
		ssize_t n = fdpass_send(c->fd, p, len, fds, nfds, MSG_DONTWAIT);

		if (n < 0 && n != -EAGAIN) {
			log_debug("client %llu (pid %ld): send failed: %s",
			          (unsigned long long)c->serial, (long)c->pid, strerror((int)-n));
			for (i = 0; i < nfds; i++)
				close(fds[i]);
			conn_close_soon(c);
			return 0;
		}
		if (n > 0) {
			/* The descriptors rode on the first byte: the client has them now. */
			for (i = 0; i < nfds; i++)
				close(fds[i]);
			nfds = 0;
			off = (size_t)n;
		}
	}
	if (off == len)
		return 0;
	if (off > 0 || !b) {
		b = conn_outbuf_copy(p + off, len - off);
		if (!b) {
			for (i = 0; i < nfds; i++)
				close(fds[i]);
			return -ENOMEM;
		}
		r = conn_queue_outbuf(c, b, fds, nfds);
		conn_outbuf_unref(b);
		return r;
	}
	return conn_queue_outbuf(c, b, fds, nfds);
}

/*
 * Sends what was just encoded into conn_output (r: the encoder's result) as conn_put does.
 * Returns 0, -ENOMEM or -EMSGSIZE.
 */
static int conn_queue_output(struct conn *c, int r, int *fds, size_t nfds)
{
	size_t i;

	if (r < 0) {
		for (i = 0; i < nfds; i++)
			close(fds[i]);
	} else {
		r = conn_put(c, (const uint8_t *)conn_output.data, conn_output.len, NULL, fds, nfds);
	}
	conn_output_trim();
	return r;
}

/* Encodes msg and sends it as conn_put does. Returns 0, -ENOMEM or -EMSGSIZE. */
static int conn_queue(struct conn *c, const cJSON *msg, int *fds, size_t nfds)
{
	return conn_queue_output(c, msg_encode_buf(msg, (uint32_t)c->srv->limits->max_frame,
	                                           &conn_output), fds, nfds);
}

/* After conn_put: enforces max_queue_bytes (see conn_send). */
static int conn_sent(struct conn *c)
{
	if (c->state == CONN_CLOSED || c->state == CONN_LINGER)
		return -ECONNRESET;
	if (c->out_bytes > c->srv->limits->max_queue_bytes) {
		conn_warn(c, "%zu bytes of replies wait unread (max_queue_bytes %llu); cutting it off",
		          c->out_bytes, (unsigned long long)c->srv->limits->max_queue_bytes);
		conn_close_soon(c);
		return -ECONNRESET;
	}
	if (!c->budget->exempt &&
	    c->budget->used[BUDGET_QUEUE_BYTES] > c->srv->limits->max_queue_bytes_per_uid) {
		conn_warn(c, "uid %lu has %llu bytes of replies waiting unread over all its "
		          "connections (max_queue_bytes_per_uid %llu); cutting this one off",
		          (unsigned long)c->uid,
		          (unsigned long long)c->budget->used[BUDGET_QUEUE_BYTES],
		          (unsigned long long)c->srv->limits->max_queue_bytes_per_uid);
		conn_close_soon(c);
		return -ECONNRESET;
	}
	if (conn_done(c))
		conn_close_soon(c);
	else
		conn_update_poll(c);
	return 0;
}

int conn_send(struct conn *c, const cJSON *msg, int *fds, size_t nfds)
{
	int r;

	if (!conn_alive(c)) {
		size_t i;

		for (i = 0; i < nfds; i++)
			close(fds[i]);
		return -ECONNRESET;
	}
	r = conn_queue(c, msg, fds, nfds);
	return r < 0 ? r : conn_sent(c);
}

int conn_send_ok(struct conn *c, uint64_t id)
{
	int r;

	if (!conn_alive(c))
		return -ECONNRESET;
	r = conn_queue_output(c, msg_encode_ok_buf(id, &conn_output), NULL, 0);
	return r < 0 ? r : conn_sent(c);
}

int conn_send_outbuf(struct conn *c, struct outbuf *b)
{
	int r;

	if (!conn_alive(c))
		return -ECONNRESET;
	r = conn_put(c, b->bytes, b->len, b, NULL, 0);
	return r < 0 ? r : conn_sent(c);
}

/* Queues a closing event and lingers until it is written or the deadline passes. */
static void conn_end_with(struct conn *c, const cJSON *event)
{
	if (event)
		conn_queue(c, event, NULL, 0);
	c->state = CONN_LINGER;
	uv_timer_start(&c->timer, conn_on_linger_timeout, CONN_LINGER_MS, 0);
	if (!(c->events & UV_WRITABLE))
		conn_flush(c);
	else
		conn_update_poll(c);
}

void conn_fail(struct conn *c, int err, const char *fmt, ...)
{
	cJSON *event = NULL, *error;
	char *message = NULL;
	va_list ap;
	int r;

	if (!conn_alive(c))
		return;
	va_start(ap, fmt);
	r = vasprintf(&message, fmt, ap);
	va_end(ap);
	if (r < 0)
		message = NULL;

	log_warn("client %llu (pid %ld): %s; disconnecting", (unsigned long long)c->serial,
	         (long)c->pid, message ? message : strerror(err));
	event = msg_event(proto_event_name(PROTO_EVENT_ERROR));
	error = msg_error_object(err, message);
	if (event && error && cJSON_AddItemToObject(event, PROTO_FIELD_ERROR, error))
		error = NULL;
	cJSON_Delete(error);
	conn_end_with(c, event);
	cJSON_Delete(event);
	free(message);
}

void conn_shutdown(struct conn *c, const char *message)
{
	cJSON *event;

	if (!conn_alive(c))
		return;
	event = msg_event(proto_event_name(PROTO_EVENT_SHUTDOWN));
	if (event && !cJSON_AddStringToObject(event, PROTO_FIELD_MESSAGE, message)) {
		cJSON_Delete(event);
		event = NULL;
	}
	conn_end_with(c, event);
	cJSON_Delete(event);
}

void conn_pending_add(struct conn *c)
{
	c->pending++;
}

/*
 * Deferred turns. A connection with requests left in its buffer (it yielded its turn, or
 * was paused and a slot freed) joins the server's queue; an idle handle, active while the
 * queue is not empty, gives each queued connection one turn per loop iteration. An idle
 * handle, not a 0 ms timer: libuv runs a timer that restarts itself from its callback again
 * in the same pass, before any I/O, which would let one connection hold the loop after all.
 */
static void conn_on_turns(uv_idle_t *idle)
{
	struct server *srv = idle->data;
	struct conn *c = srv->turns_head;

	/* Connections queued by these turns wait for the next iteration. */
	srv->turns_head = srv->turns_tail = NULL;
	while (c) {
		struct conn *next = c->turn_next;

		c->turn_next = NULL;
		c->yielded = false;
		if (conn_dispatch(c) != CONN_DISPATCH_ENDED)
			conn_update_poll(c);
		/* The last turn frees the buffer the leftovers were kept in. */
		frame_reader_settle(&c->reader);
		conn_unref(c);
		c = next;
	}
	if (!srv->turns_head)
		uv_idle_stop(idle);
}

/* Queues c for a turn at the next loop iteration (once). */
static void conn_turn_later(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->yielded)
		return;
	if (!srv->turns_init) {
		uv_idle_init(srv->loop, &srv->turns_idle);
		srv->turns_idle.data = srv;
		srv->turns_init = true;
	}
	c->yielded = true;
	conn_ref(c);
	if (srv->turns_tail)
		srv->turns_tail->turn_next = c;
	else
		srv->turns_head = c;
	srv->turns_tail = c;
	uv_idle_start(&srv->turns_idle, conn_on_turns);
}

void conn_turns_stop(struct server *srv)
{
	struct conn *c = srv->turns_head;

	srv->turns_head = srv->turns_tail = NULL;
	while (c) {
		struct conn *next = c->turn_next;

		c->turn_next = NULL;
		c->yielded = false;
		conn_unref(c);
		c = next;
	}
	if (srv->turns_init) {
		uv_close((uv_handle_t *)&srv->turns_idle, NULL);
		srv->turns_init = false;
	}
}

bool conn_may_park(const struct conn *c)
{
	return conn_alive(c) && budget_fits(c->budget, BUDGET_LOCK_WAITERS, 1);
}

void conn_parked_add(struct conn *c)
{
	c->parked++;
	budget_force(c->budget, BUDGET_LOCK_WAITERS, 1);
}

void conn_parked_done(struct conn *c)
{
	assert(c->parked > 0);
	c->parked--;
	budget_release(c->budget, BUDGET_LOCK_WAITERS, 1);
	if (conn_done(c))
		conn_close_soon(c);
}

void conn_pending_done(struct conn *c)
{
	assert(c->pending > 0);
	c->pending--;
	if (conn_done(c)) {
		conn_close_soon(c);
	} else if (c->state == CONN_OPEN && c->pending == CONN_PENDING_MAX - 1) {
		/* Not dispatching here: we may be deep inside another request's completion. */
		conn_turn_later(c);
	}
}

void conn_warn(struct conn *c, const char *fmt, ...)
{
	char *message = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&message, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	if (c->warnings < CONN_WARNINGS_MAX) {
		log_warn("client %llu (pid %ld, uid %lu): %s%s", (unsigned long long)c->serial,
		         (long)c->pid, (unsigned long)c->uid, message,
		         c->warnings + 1 == CONN_WARNINGS_MAX
		         ? " (further warnings about this client at debug level)" : "");
	} else {
		log_debug("client %llu (pid %ld, uid %lu): %s", (unsigned long long)c->serial,
		          (long)c->pid, (unsigned long)c->uid, message);
	}
	c->warnings++;
	free(message);
}

/*
 * True when the peer closed its socket completely (it exited or was killed) rather than only
 * shutting down its sending side: the kernel then reports POLLHUP on our end.
 */
static bool conn_peer_gone(const struct conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

/*
 * The client has shut down its sending side: nothing more will come. A client that only
 * half-closed still gets the replies to what it sent; one that is gone can read nothing, so
 * it is closed at once, which also drops its lock waits (they could otherwise wait forever).
 */
static void conn_on_eof(struct conn *c)
{
	c->eof = true;
	if (c->state == CONN_OPEN && conn_peer_gone(c)) {
		conn_close(c);
		return;
	}
	if (c->state == CONN_OPEN) {
		if (frame_reader_pending(&c->reader) > 0)
			log_debug("client %llu (pid %ld): %zu bytes of an unfinished frame at end of stream",
			          (unsigned long long)c->serial, (long)c->pid,
			          frame_reader_pending(&c->reader));
		c->state = CONN_HALF;
	}
	conn_close_if_done(c);
	conn_update_poll(c);
}

int conn_frame_fd(struct conn *c, bool adopt, int *ret_fd)
{
	size_t i = 0, got = 0;
	bool extra = false;

	*ret_fd = -1;
	while (i < c->ninfds) {
		struct conn_infd *e = &c->infds[i];
		bool starts = e->from <= c->frame_start && c->frame_start < e->to;

		/* Not this frame's: a later frame of that read may still claim it. */
		if (!(adopt && starts && *ret_fd < 0 && got == 0) && c->frame_end < e->to) {
			i++;
			continue;
		}
		got++;
		extra |= e->extra;
		if (*ret_fd < 0)
			*ret_fd = e->fd;
		else if (e->fd >= 0)
			close(e->fd);
		c->ninfds--;
		memmove(e, e + 1, (c->ninfds - i) * sizeof(*e));
	}
	if (got == 0)
		return 0;
	if (adopt && got == 1 && !extra)
		return 1;
	if (*ret_fd >= 0)
		close(*ret_fd);
	*ret_fd = -1;
	return adopt || got > 1 || extra ? -E2BIG : -EPROTO;
}

/*
 * After a frame was handled: a descriptor whose read ended within it and that it did not
 * claim (the dispatcher never asked: a frame it could not parse) is closed.
 */
static void conn_infds_sweep(struct conn *c)
{
	int fd;

	if (c->ninfds > 0 && conn_frame_fd(c, false, &fd) != 0)
		log_debug("client %llu (pid %ld): a descriptor sent with an unreadable frame was "
		          "closed", (unsigned long long)c->serial, (long)c->pid);
}

/*
 * Receives into p (avail bytes) what the socket holds, with the descriptor that may come
 * along (conn_frame_fd). Returns as fdpass_recv_one; -EPROTO when more descriptors wait than
 * a well-behaved client can have sent (the connection fails then).
 */
static ssize_t conn_recv(struct conn *c, uint8_t *p, size_t avail)
{
	bool extra;
	int fd;
	ssize_t n = fdpass_recv_one(c->fd, p, avail, &fd, &extra, MSG_DONTWAIT);

	if (n > 0 && (fd >= 0 || extra)) {
		if (c->ninfds == CONN_INFDS_MAX) {
			if (fd >= 0)
				close(fd);
			return -EPROTO;
		}
		c->infds[c->ninfds++] = (struct conn_infd){
			.fd = fd, .extra = extra, .from = c->in_bytes, .to = c->in_bytes + (uint64_t)n,
		};
	}
	if (n > 0)
		c->in_bytes += (uint64_t)n;
	return n;
}

/*
 * Hands the complete buffered frames to ops, once hello is done for one turn at most (see
 * CONN_FRAMES_PER_TURN); the rest run at the connection's next turn (conn_turn_later). Before
 * hello every request but hello is answered EPROTO at once, so there is no turn to bound.
 */
static enum conn_dispatched conn_dispatch(struct conn *c)
{
	uint64_t start = 0;
	const char *payload;
	unsigned ran = 0;
	size_t len;
	int r;

	while (c->state == CONN_OPEN) {
		if (conn_paused(c) || frame_reader_pending(&c->reader) == 0)
			return CONN_DISPATCH_IDLE;
		/*
		 * The turn's clock starts once its first frame has run, so that a read that brought
		 * one request (the usual case) costs no clock reading.
		 */
		if (c->hello_done && ran == 1)
			start = uv_hrtime();
		if (c->hello_done && ran > 1 &&
		    (ran == CONN_FRAMES_PER_TURN || uv_hrtime() - start >= CONN_TURN_NS)) {
			conn_turn_later(c);
			return CONN_DISPATCH_YIELDED;
		}
		r = frame_reader_next(&c->reader, &payload, &len);
		if (r == 0)
			return CONN_DISPATCH_IDLE;
		if (r == -EPROTO) {
			conn_fail(c, EPROTO, "zero-length frame");
			return CONN_DISPATCH_ENDED;
		}
		if (r < 0) {
			conn_fail(c, EMSGSIZE, "frame longer than max_frame (%llu bytes)",
			          (unsigned long long)c->srv->limits->max_frame);
			return CONN_DISPATCH_ENDED;
		}
		c->frame_start = c->frame_pos;
		c->frame_end = c->frame_pos + FRAME_HEADER_SIZE + len;
		c->frame_pos = c->frame_end;
		c->srv->handle_frame(c, payload, len);
		conn_infds_sweep(c);
		ran++;
	}
	return CONN_DISPATCH_ENDED;
}

static void conn_read(struct conn *c)
{
	int round;

	for (round = 0; round < CONN_READS_PER_WAKE; round++) {
		enum conn_dispatched done = CONN_DISPATCH_IDLE;
		uint8_t *p;
		size_t avail;
		ssize_t n;

		if (c->state == CONN_LINGER) {
			/* Read and thrown away, so that closing does not reset the stream. */
			n = fdpass_recv_nofds(c->fd, conn_input, sizeof(conn_input), MSG_DONTWAIT);
			if (n == 0)
				conn_on_eof(c);
			else if (n < 0 && n != -EAGAIN && n != -EPROTO)
				conn_close(c);
			if (n <= 0 && n != -EPROTO)
				return;
			if (n > 0 && (size_t)n < sizeof(conn_input))
				return;
			continue;
		}
		if (c->state != CONN_OPEN || conn_paused(c) || c->yielded)
			return;
		if (frame_reader_space_in(&c->reader, conn_input, sizeof(conn_input), &p, &avail) < 0) {
			conn_fail(c, ENOMEM, "out of memory for the input buffer");
			return;
		}
		n = conn_recv(c, p, avail);
		if (n > 0) {
			frame_reader_commit(&c->reader, (size_t)n);
			done = conn_dispatch(c);
		}
		/* The shared input buffer is given back before anything else may read into it. */
		if (frame_reader_settle(&c->reader) < 0) {
			conn_fail(c, ENOMEM, "out of memory for the input buffer");
			return;
		}
		if (n == -EAGAIN)
			return;
		if (n == -EPROTO) {
			conn_fail(c, EPROTO, "descriptors came with frames that do not begin where they "
			          "were sent: only an adopt frame may carry one, sent with its first "
			          "byte");
			return;
		}
		if (n < 0) {
			log_debug("client %llu (pid %ld): receive failed: %s",
			          (unsigned long long)c->serial, (long)c->pid, strerror((int)-n));
			conn_close(c);
			return;
		}
		if (n == 0) {
			conn_on_eof(c);
			return;
		}
		/* Yielded: the reader still holds this turn's leftovers; read more next turn. */
		if (done != CONN_DISPATCH_IDLE)
			return;
		/*
		 * A short read took all the socket had: reading again now would only return
		 * EAGAIN (the poll is level-triggered, so bytes that come meanwhile wake us).
		 */
		if ((size_t)n < avail)
			return;
	}
}

static void conn_on_poll(uv_poll_t *handle, int status, int events)
{
	struct conn *c = handle->data;

	if (c->state == CONN_CLOSED)
		return;
	conn_ref(c);
	if (status < 0) {
		/* libuv reports EPOLLERR as UV_EBADF; the socket knows the real error. */
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr == 0)
			soerr = -status;
		log_debug("client %llu (pid %ld): connection error: %s", (unsigned long long)c->serial,
		          (long)c->pid, strerror(soerr));
		conn_close(c);
		goto out;
	}
	if ((events & UV_WRITABLE) && conn_flush(c) < 0)
		goto out;
	if ((events & UV_WRITABLE) && c->out_bytes <= c->srv->limits->event_backlog_bytes)
		conn_drained(c);
	if (events & UV_READABLE)
		conn_read(c);
	conn_update_poll(c);
out:
	conn_unref(c);
}
