/*
 * The connection of libmmapd to the daemon: a plain blocking Unix stream socket, the hello
 * exchange, and client_call(), which sends one request and waits for the reply with the same
 * id. Each call holds the client's mutex from send to reply, so at most one request of ours is
 * in flight and threads sharing a client simply take turns; no thread of our own is started.
 *
 * Frames come out of a frame_reader (proto/frame.h) sized for FRAME_MAX_LIMIT, the largest
 * maximum any daemon may announce, and descriptors out of a FIFO fd_queue (proto/fdpass.h):
 * every frame that says "fds": n claims the next n, whether or not we wanted them, so the queue
 * never falls out of step with the frames; descriptors nobody expects are closed.
 * Events are handled as they are met: "shutdown" and "error" end the connection with their
 * reason, others are ignored. A connection that broke (end of stream, reset, a protocol violation) is closed at
 * once and every later call returns the same error and message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "msg.h"

/* The longest client name the daemon accepts in hello. */
#define CLIENT_NAME_MAX 64

static void fds_close(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* Closes the socket and every descriptor still waiting in the queue. Called with the lock. */
static void client_close(struct mmapd_client *client)
{
	if (client->sock >= 0)
		close(client->sock);
	client->sock = -1;
	fd_queue_clear(&client->fds);
}

/*
 * Marks the connection dead with err and the formatted reason, closes it, and records the
 * reason as the calling thread's message. Returns err. Called with the lock.
 */
static int client_kill(struct mmapd_client *client, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int client_kill(struct mmapd_client *client, int err, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);

	client->dead_err = err;
	free(client->dead_message);
	client->dead_message = msg;
	client_close(client);
	return error_set(err, "%s", msg ? msg : mmapd_strerror(err));
}

/* The error of a connection that is closed already. Called with the lock. */
static int client_closed_error(const struct mmapd_client *client)
{
	if (client->disconnected)
		return error_set(-ENOTCONN, "the connection was closed by mmapd_disconnect()");
	return error_set(client->dead_err, "%s",
	                 client->dead_message ? client->dead_message : mmapd_strerror(client->dead_err));
}

void client_ref(struct mmapd_client *client)
{
	atomic_fetch_add(&client->refs, 1);
}

void client_unref(struct mmapd_client *client)
{
	if (atomic_fetch_sub(&client->refs, 1) != 1)
		return;
	client_close(client);
	frame_reader_done(&client->reader);
	pthread_mutex_destroy(&client->lock);
	free(client->dead_message);
	free(client);
}

/*
 * Receives once into the frame reader. recv_flags is 0 (block) or MSG_DONTWAIT. Returns 0,
 * -EAGAIN when MSG_DONTWAIT found nothing, or a negative errno (the connection is then dead,
 * except for -ENOMEM, which consumed nothing).
 */
static int client_fill(struct mmapd_client *client, int recv_flags)
{
	uint8_t *space;
	size_t avail;
	ssize_t n;
	int r;

	r = frame_reader_space(&client->reader, &space, &avail);
	if (r < 0)
		return error_set(r, "cannot buffer a message from mmapd: %s", mmapd_strerror(r));

	n = fdpass_recv(client->sock, space, avail, &client->fds, recv_flags);
	if (n == -EAGAIN)
		return -EAGAIN;
	if (n == 0 || n == -ECONNRESET)
		return client_kill(client, -ECONNRESET, "mmapd closed the connection");
	/*
	 * Descriptors were dropped: the kernel truncated them (this process may be out of
	 * descriptors) or more arrived than the queue holds. Frames would claim the wrong ones.
	 */
	if (n == -EPROTO)
		return client_kill(client, -EPROTO, "descriptors sent by mmapd were lost (too many "
		                   "at once, or this process is out of descriptors)");
	if (n < 0)
		return client_kill(client, (int)n, "cannot receive from mmapd: %s",
		                   mmapd_strerror((int)n));
	frame_reader_commit(&client->reader, (size_t)n);
	return 0;
}

/*
 * Parses one frame. Returns 0 with *ret_msg set, or a negative errno after killing the
 * connection: a frame we cannot read may have declared descriptors, so the queue can no longer
 * be trusted to match the frames.
 */
static int client_parse_frame(struct mmapd_client *client, const char *payload, size_t len,
                              cJSON **ret_msg)
{
	int r = msg_parse(payload, len, ret_msg);

	if (r == -ENOMEM)
		return client_kill(client, -ENOMEM, "out of memory reading a message from mmapd");
	if (r < 0)
		return client_kill(client, -EPROTO, "mmapd sent a malformed message");
	return 0;
}

/*
 * Claims the descriptors msg declares with "fds" from the queue into fds (room for
 * FD_QUEUE_CAP) and counts them in *ret_nfds. Returns 0, or -EPROTO after killing the
 * connection when the count is malformed or the descriptors did not arrive.
 */
static int client_claim_fds(struct mmapd_client *client, const cJSON *msg, int *fds,
                            size_t *ret_nfds)
{
	uint64_t n = 0;
	int r;

	r = msg_get_u64(msg, "fds", &n);
	if ((r < 0 && r != -ENOENT) || n > FD_QUEUE_CAP)
		return client_kill(client, -EPROTO, "mmapd sent a message with a bad \"fds\" count");
	if (fd_queue_take(&client->fds, n, fds) < 0)
		return client_kill(client, -EPROTO,
		                   "mmapd announced %llu descriptors that did not arrive",
		                   (unsigned long long)n);
	*ret_nfds = n;
	return 0;
}

/*
 * Acts on an event. "shutdown" and "error" precede the daemon closing the connection, so they
 * kill it with their reason; events this library does not know are ignored, as the protocol
 * allows new ones. Returns 0, or the negative errno the connection died with.
 */
static int client_handle_event(struct mmapd_client *client, const cJSON *msg, const char *name)
{
	const char *text;
	int err;

	if (strcmp(name, "shutdown") == 0) {
		if (msg_get_string(msg, "message", &text) < 0 || !*text)
			text = "mmapd is shutting down";
		return client_kill(client, -ESHUTDOWN, "%s", text);
	}
	if (strcmp(name, "error") == 0) {
		if (msg_error_parse(msg, &err, &text) < 0 || err <= 0) {
			err = EPROTO;
			text = "";
		}
		return client_kill(client, -err, "%s", *text ? text : mmapd_strerror(err));
	}
	return 0;
}

/*
 * Whether msg is the reply to request id. Only one request of ours is in flight at a time, so
 * a reply with "id": null (the daemon could not read an id) answers the one we sent.
 */
static bool reply_matches(const cJSON *msg, uint64_t id)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(msg, "id");
	uint64_t got;

	if (cJSON_IsNull(item))
		return true;
	return msg_get_u64(msg, "id", &got) == 0 && got == id;
}

/*
 * Turns the reply to our request into client_call()'s result. Consumes msg and fds.
 */
static int client_finish_reply(cJSON *msg, int *fds, size_t nfds, size_t want_fds,
                               cJSON **ret_reply, int *ret_fds)
{
	const char *text;
	bool ok;
	int err, r;

	if (msg_get_bool(msg, "ok", &ok) < 0) {
		r = error_set(-EPROTO, "mmapd sent a reply without \"ok\"");
		goto fail;
	}
	if (!ok) {
		if (msg_error_parse(msg, &err, &text) < 0 || err <= 0) {
			r = error_set(-EPROTO, "mmapd sent a failed reply without an error object");
			goto fail;
		}
		r = error_set(-err, "%s", *text ? text : mmapd_strerror(err));
		goto fail;
	}
	if (nfds < want_fds) {
		r = error_set(-EPROTO, "mmapd sent %zu descriptors where %zu were expected",
		              nfds, want_fds);
		goto fail;
	}
	if (want_fds > 0)
		memcpy(ret_fds, fds, want_fds * sizeof(*fds));
	fds_close(fds + want_fds, nfds - want_fds);
	*ret_reply = msg;
	return 0;

fail:
	fds_close(fds, nfds);
	cJSON_Delete(msg);
	return r;
}

/*
 * Reads frames until the reply to request id arrives, acting on events and dropping stray
 * replies (with their descriptors) on the way. recv_flags as for client_fill(): with
 * MSG_DONTWAIT it returns -EAGAIN once nothing more is buffered. Called with the lock.
 */
static int client_wait(struct mmapd_client *client, uint64_t id, int recv_flags,
                       size_t want_fds, cJSON **ret_reply,
                       int *ret_fds)
{
	int fds[FD_QUEUE_CAP];

	for (;;) {
		const char *payload, *event;
		size_t len, nfds = 0;
		cJSON *msg = NULL;
		bool is_event, is_ours;
		int r;

		r = frame_reader_next(&client->reader, &payload, &len);
		if (r < 0)
			return client_kill(client, -EPROTO, "mmapd sent a frame %s",
			                   r == -EMSGSIZE ? "larger than 16 MiB" : "of length 0");
		if (r == 0) {
			r = client_fill(client, recv_flags);
			if (r < 0)
				return r;
			continue;
		}

		r = client_parse_frame(client, payload, len, &msg);
		if (r < 0)
			return r;
		is_event = msg_get_string(msg, "event", &event) == 0;
		is_ours = !is_event && reply_matches(msg, id);
		r = client_claim_fds(client, msg, fds, &nfds);
		if (r < 0) {
			cJSON_Delete(msg);
			return r;
		}

		if (is_ours)
			return client_finish_reply(msg, fds, nfds, want_fds, ret_reply, ret_fds);
		r = is_event ? client_handle_event(client, msg, event) : 0;
		/* Events carry no descriptors we use; a stray reply answers a request we gave up on. */
		fds_close(fds, nfds);
		cJSON_Delete(msg);
		if (r < 0)
			return r;
	}
}

/*
 * After a failed send. When the daemon hung up, it may have said why first (a shutdown or error
 * event); read what is already buffered, without blocking, so the caller gets that reason rather
 * than a bare reset. Returns the negative errno the connection died with. Called with the lock.
 */
static int client_send_failed(struct mmapd_client *client, int err, uint64_t id)
{
	cJSON *reply = NULL;

	if (err != -EPIPE && err != -ECONNRESET)
		return client_kill(client, err, "cannot send to mmapd: %s", mmapd_strerror(err));

	client_wait(client, id, MSG_DONTWAIT, 0, &reply, NULL);
	cJSON_Delete(reply);
	if (client->sock < 0)
		return client_closed_error(client);
	return client_kill(client, -ECONNRESET, "mmapd closed the connection");
}

/* Sends a whole frame. MSG_NOSIGNAL: a dead daemon must never raise SIGPIPE in the caller. */
static int client_send(struct mmapd_client *client, const uint8_t *buf, size_t len, uint64_t id)
{
	while (len > 0) {
		ssize_t n = send(client->sock, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			int r = -errno;

			if (r == -EINTR)
				continue;
			return client_send_failed(client, r, id);
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int client_call(struct mmapd_client *client, cJSON *req, size_t nfds, cJSON **ret_reply,
                int *ret_fds)
{
	uint8_t *buf = NULL;
	size_t len;
	uint64_t id;
	int r;

	pthread_mutex_lock(&client->lock);
	if (client->sock < 0) {
		r = client_closed_error(client);
		goto out;
	}

	id = client->next_id;
	client->next_id = id == PROTO_ID_MAX ? 1 : id + 1;
	cJSON_DeleteItemFromObjectCaseSensitive(req, "id");
	if (!cJSON_AddNumberToObject(req, "id", (double)id)) {
		r = error_set(-ENOMEM, "out of memory building a request");
		goto out;
	}
	r = msg_encode(req, client->max_frame, &buf, &len);
	if (r < 0) {
		r = error_set(r, r == -EMSGSIZE ? "the request is larger than mmapd's frame limit"
		                                : "out of memory building a request");
		goto out;
	}

	r = client_send(client, buf, len, id);
	if (r < 0)
		goto out;
	r = client_wait(client, id, 0, nfds, ret_reply, ret_fds);

out:
	pthread_mutex_unlock(&client->lock);
	free(buf);
	return r;
}

int client_release_grant(struct mmapd_client *client, uint64_t handle)
{
	cJSON *req, *reply = NULL;
	bool closed;
	int r;

	/*
	 * Once the connection is closed (by mmapd_disconnect() or because it broke), the daemon
	 * has released every grant it held: there is nobody to tell and nothing is left held.
	 */
	pthread_mutex_lock(&client->lock);
	closed = client->sock < 0;
	pthread_mutex_unlock(&client->lock);
	if (closed)
		return 0;

	req = request_new("close");
	if (!req)
		return -ENOMEM;
	if (!cJSON_AddNumberToObject(req, "handle", (double)handle)) {
		cJSON_Delete(req);
		return error_set(-ENOMEM, "out of memory building a request");
	}
	r = client_call(client, req, 0, &reply, NULL);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	return r;
}

cJSON *request_new(const char *op)
{
	cJSON *req = cJSON_CreateObject();

	if (!req || !cJSON_AddStringToObject(req, "op", op)) {
		cJSON_Delete(req);
		error_set(-ENOMEM, "out of memory building a request");
		return NULL;
	}
	return req;
}

/*
 * The hello exchange: offers PROTO_VERSION and learns the version and frame limit the daemon
 * will use. Returns 0 or a negative errno (message set).
 */
static int client_hello(struct mmapd_client *client, const char *client_name)
{
	cJSON *req, *reply = NULL;
	const cJSON *limits;
	uint64_t version, max_frame;
	int r;

	req = request_new("hello");
	if (!req)
		return -ENOMEM;
	if (!cJSON_AddNumberToObject(req, "version", PROTO_VERSION) ||
	    (client_name && !cJSON_AddStringToObject(req, "client", client_name))) {
		r = error_set(-ENOMEM, "out of memory building a request");
		goto out;
	}

	r = client_call(client, req, 0, &reply, NULL);
	if (r < 0)
		goto out;

	if (msg_get_u64(reply, "version", &version) < 0) {
		r = error_set(-EPROTO, "mmapd's hello reply has no valid \"version\"");
		goto out;
	}
	if (version < PROTO_VERSION_MIN || version > PROTO_VERSION) {
		r = error_set(-EPROTONOSUPPORT,
		              "mmapd chose protocol version %llu; this library speaks %d to %d",
		              (unsigned long long)version, PROTO_VERSION_MIN, PROTO_VERSION);
		goto out;
	}
	client->protocol = (uint32_t)version;

	/* Without a "limits" object the documented default frame size stays in force. */
	limits = cJSON_GetObjectItemCaseSensitive(reply, "limits");
	if (cJSON_IsObject(limits) && msg_get_u64(limits, "max_frame", &max_frame) == 0) {
		if (max_frame < FRAME_MAX_MIN || max_frame > FRAME_MAX_LIMIT) {
			r = error_set(-EPROTO, "mmapd announced an invalid max_frame of %llu bytes",
			              (unsigned long long)max_frame);
			goto out;
		}
		client->max_frame = (uint32_t)max_frame;
	}
	r = 0;

out:
	cJSON_Delete(req);
	cJSON_Delete(reply);
	return r;
}

MMAPD_EXPORT int mmapd_connect(const char *path, const char *client_name,
                               struct mmapd_client **ret_client)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct mmapd_client *client;
	int r;

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
	memcpy(addr.sun_path, path, strlen(path) + 1);

	client = calloc(1, sizeof(*client));
	if (!client)
		return error_set(-ENOMEM, "out of memory");
	atomic_init(&client->refs, 1);
	pthread_mutex_init(&client->lock, NULL);
	client->sock = -1;
	client->next_id = 1;
	client->max_frame = FRAME_MAX_DEFAULT;
	client->protocol = PROTO_VERSION;
	frame_reader_init(&client->reader, FRAME_MAX_LIMIT);
	fd_queue_init(&client->fds);

	client->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (client->sock < 0) {
		r = -errno;
		error_set(r, "cannot create a socket: %s", mmapd_strerror(r));
		goto fail;
	}
	/*
	 * An AF_UNIX connect interrupted while it waits for room in the listener's backlog has not
	 * changed the socket's state, so trying again is correct (unlike TCP).
	 */
	while (connect(client->sock, (const struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		if (r == -EINTR)
			continue;
		error_set(r, "%s: %s", path, mmapd_strerror(r));
		goto fail;
	}

	r = client_hello(client, client_name);
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
	if (!client)
		return;
	pthread_mutex_lock(&client->lock);
	client->disconnected = true;
	client_close(client);
	pthread_mutex_unlock(&client->lock);
	client_unref(client);
}
