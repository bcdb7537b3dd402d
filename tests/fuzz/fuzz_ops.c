/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the daemon's request handling: ops_handle_frame and every op handler
 * (daemon/ops*.c) with what they drive (regions, grants, locks, resize, notify, flush,
 * policies, metadata), run in-process on a private libuv loop without main.c.
 *
 * Each input gets a fresh server (server_init on a new data directory, with small limits so
 * a run's disk use stays bounded) and one or two connections from conn_new() over
 * socketpairs. The input is written to the client ends, which are then shut down for writing
 * (SHUT_WR), and the loop runs until the connections have closed, draining the client ends
 * (closing every descriptor received) unless the input says not to. A connection that stays
 * open with nothing left to do but a timer far away (a lock wait with a long timeout, output
 * the client does not read) is closed by the target, which exercises the release paths too.
 * Then the server is stopped as on SIGTERM and freed, and its directory removed.
 *
 * Input encoding. An input whose first byte is 0x00 is a raw byte stream (a frame's length
 * header starts with 0x00 below 16 MiB), written as it is. Anything else is split into lines,
 * each non-empty line sent as one frame, so that JSON mutations do not have to keep length
 * headers right; a line starting with '>' goes (without the '>') to a second connection, made
 * only for such lines. A first line starting with '#' is not sent but read for directives:
 * "uid=N" and "uid2=N" (the first or second connection's uid and gid are N instead of ours;
 * allow_create lists uids 0 and 1000 only), "nodrain" (small socket buffers, and the client
 * ends are not read until the daemon is idle) and "stage" (the second connection's requests are written first, the
 * first connection's once the daemon is idle, and the second connection is shut down when it
 * is idle again: so one client's state, a subscription with a full socket say, is in place
 * while the other acts).
 *
 * Checked after every input (a broken invariant prints one line and ends in
 * __builtin_trap(), which libFuzzer reports as a crash): every frame the daemon sent is a
 * well-formed JSON object in valid UTF-8; every request with an id the daemon can read got exactly one reply
 * (unless the connection was cut off: a fatal frame, an error event, closed by the target, or
 * "nodrain"); the connections closed and the server counts no connection,
 * grant, lock, lock waiter or subscription, no shrink and no thread-pool job; after the
 * shutdown no region is left alive, the loop has no active handle, and the process has
 * exactly the descriptors it had before the input (shared/fdcount.h). An input also ends
 * within FUZZ_ITER_MAX turns of the loop, of which at most FUZZ_WAIT_MAX wait (FUZZ_SOON_MS
 * each at most: fuzz_turn): the target never blocks in the loop, so a daemon that keeps it
 * busy, or a timer always due soon, is a finding, not a hang.
 *
 * tests/fuzz/replay.c calls the same entry points without libFuzzer, to replay the corpus.
 * With FUZZ_OPS_VERBOSE=1 in the environment, every frame the daemon sends is printed on
 * stderr (with the client end's descriptor), to see what a seed does; with FUZZ_OPS_DEBUG set,
 * the daemon logs at debug level.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "conn.h"
#include "fdcount.h"
#include "fdpass.h"
#include "frame.h"
#include "log.h"
#include "msg.h"
#include "sdnotify.h"
#include "server.h"

#define FUZZ_MAX_FRAME     4096u
#define FUZZ_ITER_MAX      100000   /* loop turns per input before the target gives up */
#define FUZZ_IDLE_TURNS    4        /* turns without progress before the connection is idle */
#define FUZZ_SOON_MS       20       /* a timer due this soon is waited for */
#define FUZZ_WAIT_MAX      3000     /* waits of FUZZ_SOON_MS at most per input (fuzz_turn) */
#define FUZZ_CREATE_UID    1000u    /* the one non-root uid allow_create lists */
#define FUZZ_CONNS         2

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *what, int line) __attribute__((noreturn));

static void fuzz_fail(const char *what, int line)
{
	fprintf(stderr, "fuzz_ops.c:%d: invariant violated: %s\n", line, what);
	__builtin_trap();
}

#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_fail(#cond, __LINE__))

static uv_loop_t fuzz_loop;
static struct config fuzz_cfg;
static char fuzz_root[64];    /* the target's own temporary directory */
static uint32_t fuzz_create_uids[] = { 0, FUZZ_CREATE_UID };
static bool fuzz_verbose;
static unsigned fuzz_waits;   /* the waits of the loop for this input (fuzz_turn) */

/* What one input asks for: each connection's bytes and uid, and the directives. */
struct fuzz_input {
	uint8_t *bytes[FUZZ_CONNS];
	size_t len[FUZZ_CONNS];
	uid_t uid[FUZZ_CONNS];
	bool nodrain;
	bool stage;
};

/* Appends one frame with payload p[0..n) to connection i's bytes (room was reserved). */
static void fuzz_add_frame(struct fuzz_input *in, size_t i, const uint8_t *p, size_t n)
{
	uint8_t *out = in->bytes[i] + in->len[i];

	out[0] = (uint8_t)(n >> 24);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	memcpy(out + FRAME_HEADER_SIZE, p, n);
	in->len[i] += FRAME_HEADER_SIZE + n;
}

/* Reads the directives of a '#' line. */
static void fuzz_directives(struct fuzz_input *in, const uint8_t *p, size_t n)
{
	char line[128];
	const char *uid;

	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, p, n);
	line[n] = '\0';
	uid = strstr(line, "uid=");
	if (uid)
		in->uid[0] = (uid_t)strtoul(uid + 4, NULL, 10);
	uid = strstr(line, "uid2=");
	if (uid)
		in->uid[1] = (uid_t)strtoul(uid + 5, NULL, 10);
	in->nodrain = strstr(line, "nodrain") != NULL;
	in->stage = strstr(line, "stage") != NULL;
}

/* Decodes data into *in (see the top of the file). Returns 0 or -ENOMEM. */
static int fuzz_decode(const uint8_t *data, size_t size, struct fuzz_input *in)
{
	size_t start = 0, lines = 0, i;

	memset(in, 0, sizeof(*in));
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	for (i = 0; i < FUZZ_CONNS; i++) {
		in->uid[i] = getuid();
		in->bytes[i] = malloc(size + FRAME_HEADER_SIZE * (lines + 1) + 1);
		if (!in->bytes[i])
			return -ENOMEM;
	}
	if (size > 0 && data[0] == 0) {
		memcpy(in->bytes[0], data, size);
		in->len[0] = size;
		return 0;
	}
	while (start < size) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) : size;

		if (start == 0 && data[0] == '#')
			fuzz_directives(in, data, end);
		else if (end > start + 1 && data[start] == '>')
			fuzz_add_frame(in, 1, data + start + 1, end - start - 1);
		else if (end > start)
			fuzz_add_frame(in, 0, data + start, end - start);
		start = end + 1;
	}
	return 0;
}

/* Removes everything inside the directory dirfd (consumed), depth first. */
static void fuzz_rm_tree(int dirfd)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;

	if (!d) {
		close(dirfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		int sub;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd, de->d_name, 0) == 0)
			continue;
		sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			fuzz_rm_tree(sub);
		unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

/* Removes the server's data directory and socket, leaving fuzz_root itself. */
static void fuzz_reset_root(void)
{
	int fd = open(fuzz_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	FUZZ_CHECK(fd >= 0);
	fuzz_rm_tree(fd);
}

static void fuzz_cleanup(void)
{
	fuzz_reset_root();
	rmdir(fuzz_root);
}

/*
 * The temporary directory: under $TMPDIR if set, else /dev/shm where it exists (regions and
 * their metadata are fdatasync'ed, which costs nothing on tmpfs), else /tmp.
 */
static void fuzz_make_root(void)
{
	const char *base = getenv("TMPDIR");
	struct stat st;

	if (!base || !*base)
		base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
		       ? "/dev/shm" : "/tmp";
	snprintf(fuzz_root, sizeof(fuzz_root), "%.40s/mmapd-fuzz-XXXXXX", base);
	FUZZ_CHECK(mkdtemp(fuzz_root) != NULL);
	atexit(fuzz_cleanup);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct limits *l = &fuzz_cfg.limits;
	char *path = NULL;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	fuzz_verbose = getenv("FUZZ_OPS_VERBOSE") && strcmp(getenv("FUZZ_OPS_VERBOSE"), "1") == 0;
	log_init(getenv("FUZZ_OPS_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	FUZZ_CHECK(uv_loop_init(&fuzz_loop) == 0);
	fuzz_make_root();

	FUZZ_CHECK(config_init(&fuzz_cfg) == 0);
	fuzz_cfg.log_level = LOG_LEVEL_ERROR;
	fuzz_cfg.fdstore = false;
	FUZZ_CHECK(asprintf(&path, "%s/data", fuzz_root) > 0);
	FUZZ_CHECK(config_set_string(&fuzz_cfg.data_dir, path) == 0);
	free(path);
	FUZZ_CHECK(asprintf(&path, "%s/sock", fuzz_root) > 0);
	FUZZ_CHECK(config_set_string(&fuzz_cfg.socket_path, path) == 0);
	free(path);
	fuzz_cfg.allow_create.set = true;
	fuzz_cfg.allow_create.uids = fuzz_create_uids;
	fuzz_cfg.allow_create.nuids = sizeof(fuzz_create_uids) / sizeof(fuzz_create_uids[0]);

	/* Small, but within what config.c allows. */
	l->max_frame = FUZZ_MAX_FRAME;
	l->hello_timeout_ms = 0;
	l->max_grants_per_client = 16;
	l->max_fds_in_flight = 8;
	l->max_queue_bytes = 65536;
	l->max_region_size = 65536;
	l->max_regions = 8;
	l->max_locks_per_client = 16;
	l->max_subscriptions_per_client = 8;
	l->shrink_timeout_ms = 10;
	l->event_backlog_bytes = 4096;
	l->max_pending_ranges = 4;
	l->size_check_ms = 0;
	l->max_bytes_granted_per_client = 262144;
	l->max_regions_created_per_client = 8;
	return 0;
}

/* The client end: what is left to write, and the frames read back. */
struct fuzz_client {
	int fd;
	const uint8_t *out;
	size_t out_len;
	bool shut;
	bool hold;            /* "stage": write nothing yet */
	bool hold_shut;       /* "stage": do not shut down yet */
	struct frame_reader reader;
	struct fd_queue fdq;
	size_t requests;      /* frames sent that carry a valid id: each must get one reply */
	bool fatal;           /* a frame sent is connection-fatal (zero length, too long) */
	size_t replies;       /* frames received with an integer id */
	bool error_event;     /* an "error" event came: the connection was cut off */
};

/*
 * Counts the requests in bytes[0..len) that must be answered (those a framing error does not
 * cut off, with an id the daemon can read), and notes whether a frame is connection-fatal.
 */
static void fuzz_count_requests(struct fuzz_client *cl, const uint8_t *bytes, size_t len)
{
	size_t off = 0;

	while (len - off >= FRAME_HEADER_SIZE) {
		size_t n = (size_t)bytes[off] << 24 | (size_t)bytes[off + 1] << 16 |
		           (size_t)bytes[off + 2] << 8 | bytes[off + 3];
		cJSON *req = NULL;
		uint64_t id;

		if (n == 0 || n > FUZZ_MAX_FRAME) {
			cl->fatal = true;
			return;
		}
		if (len - off - FRAME_HEADER_SIZE < n)
			return;
		if (msg_parse((const char *)bytes + off + FRAME_HEADER_SIZE, n, &req) == 0 &&
		    msg_get_u64(req, "id", &id) == 0)
			cl->requests++;
		cJSON_Delete(req);
		off += FRAME_HEADER_SIZE + n;
	}
}

/* Writes what the socket takes, then shuts down the sending side. Returns bytes written. */
static size_t fuzz_client_write(struct fuzz_client *cl)
{
	size_t done = 0;

	if (cl->hold)
		return 0;
	while (cl->out_len > 0) {
		ssize_t n = send(cl->fd, cl->out, cl->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n <= 0)
			break;
		cl->out += n;
		cl->out_len -= (size_t)n;
		done += (size_t)n;
	}
	if (cl->out_len == 0 && !cl->shut && !cl->hold_shut) {
		shutdown(cl->fd, SHUT_WR);
		cl->shut = true;
		done++;
	}
	return done;
}

/* Reads what the daemon sent; every frame must be a JSON object. Returns bytes read. */
static size_t fuzz_client_read(struct fuzz_client *cl)
{
	size_t done = 0;

	for (;;) {
		const char *payload;
		uint8_t *space;
		size_t avail, len;
		ssize_t n;
		int r;

		while ((r = frame_reader_next(&cl->reader, &payload, &len)) > 0) {
			cJSON *msg = NULL;

			const char *event = NULL;
			uint64_t id;

			FUZZ_CHECK(msg_parse(payload, len, &msg) == 0);
			if (fuzz_verbose)
				fprintf(stderr, "  %d <- %.*s\n", cl->fd, (int)len, payload);
			if (msg_get_u64(msg, "id", &id) == 0)
				cl->replies++;
			else if (msg_get_string(msg, "event", &event) == 0 && strcmp(event, "error") == 0)
				cl->error_event = true;
			cJSON_Delete(msg);
		}
		FUZZ_CHECK(r == 0);
		FUZZ_CHECK(frame_reader_space(&cl->reader, &space, &avail) == 0);
		n = fdpass_recv(cl->fd, space, avail, &cl->fdq, MSG_DONTWAIT);
		fd_queue_clear(&cl->fdq);
		if (n <= 0)
			break;
		frame_reader_commit(&cl->reader, (size_t)n);
		done += (size_t)n;
	}
	return done;
}

/* "stage": lets the next held-back step go (see the top). Returns false when none is left. */
static bool fuzz_release(struct fuzz_client *cl, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cl[i].hold) {
			cl[i].hold = false;
			return true;
		}
	for (i = 0; i < n; i++)
		if (cl[i].hold_shut) {
			cl[i].hold_shut = false;
			return true;
		}
	return false;
}

/*
 * One turn of the loop, after waiting up to max_ms (no longer than its next timer) for one
 * of its descriptors. The wait is ours, on uv_backend_fd(), and uv_run() only runs what is
 * ready: UV_RUN_ONCE would choose its own wait after running the due timers and idle
 * handles, and with no timer left that wait is forever, although only this thread (through
 * the client ends) can make anything happen. That is what the daemon's deferred turns did:
 * a connection that used up its time slice (CONN_TURN_NS, easily, in a process descheduled
 * under load) finishes its frames in an idle handle, which uv_backend_timeout() counts as
 * "due now". Every wait counts against the input's FUZZ_WAIT_MAX.
 */
static void fuzz_turn(int max_ms)
{
	int ms = uv_backend_timeout(&fuzz_loop);

	if (max_ms > 0 && ms != 0) {
		struct pollfd p = { .fd = uv_backend_fd(&fuzz_loop), .events = POLLIN };

		if (fuzz_waits++ == FUZZ_WAIT_MAX)
			fuzz_fail("the input was done within FUZZ_WAIT_MAX waits of the loop", __LINE__);
		(void)poll(&p, 1, ms < 0 || ms > max_ms ? max_ms : ms);
	}
	uv_run(&fuzz_loop, UV_RUN_NOWAIT);
}

/*
 * Runs the loop until the n connections in c have closed, closing them once they have
 * nothing left to do but wait; before that, each time the daemon is idle, releases the next
 * step "stage" held back, then (with drain false) starts reading the client ends. Returns
 * true when it closed them, false when the daemon did.
 */
static bool fuzz_serve(struct server *s, struct conn **c, struct fuzz_client *cl, size_t n,
                       bool drain)
{
	unsigned idle = 0;
	bool forced = false;
	size_t iter, i;

	for (iter = 0; iter < FUZZ_ITER_MAX; iter++) {
		size_t progress = 0, open = 0;
		int timeout;

		for (i = 0; i < n; i++) {
			progress += fuzz_client_write(&cl[i]);
			if (drain)
				progress += fuzz_client_read(&cl[i]);
			open += c[i]->state != CONN_CLOSED;
		}
		if (open == 0 && s->work_pending == 0)
			return forced;
		idle = progress > 0 || s->work_pending > 0 ? 0 : idle + 1;
		if (idle < FUZZ_IDLE_TURNS) {
			fuzz_turn(s->work_pending > 0 ? FUZZ_SOON_MS : 0);
			continue;
		}
		/* With no active handle uv_backend_timeout says 0, but nothing will ever happen. */
		timeout = uv_loop_alive(&fuzz_loop) ? uv_backend_timeout(&fuzz_loop) : -1;
		if (timeout >= 0 && timeout <= FUZZ_SOON_MS) {
			fuzz_turn(FUZZ_SOON_MS);
			continue;
		}
		idle = 0;
		if (fuzz_release(cl, n))
			continue;
		if (!drain) {
			/* "nodrain": the client reads at last, and the daemon sends what it held. */
			drain = true;
			continue;
		}
		/* Waiting for a timer far away, or for a client that does not read. */
		for (i = 0; i < n; i++)
			conn_close(c[i]);
		forced = true;
	}
	FUZZ_CHECK(!"the connections closed within FUZZ_ITER_MAX loop turns");
	return forced;
}

/* Stops the server as on SIGTERM, runs the loop until it is finished, and frees it. */
static void fuzz_server_stop(struct server *s)
{
	size_t iter;

	server_stop(s);
	for (iter = 0; iter < FUZZ_ITER_MAX && !s->finished; iter++)
		fuzz_turn(FUZZ_SOON_MS);
	FUZZ_CHECK(s->finished);
	server_done(s);
	FUZZ_CHECK(s->all_regions == NULL);
	uv_run(&fuzz_loop, UV_RUN_NOWAIT);
	FUZZ_CHECK(!uv_loop_alive(&fuzz_loop));
}

/* Makes connection i of in: a socketpair, the daemon's end given to conn_new(). */
static void fuzz_connect(struct server *s, const struct fuzz_input *in, size_t i,
                         struct fuzz_client *cl, struct conn **ret_conn)
{
	int sv[2];

	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	if (in->nodrain) {
		int small = 4096;

		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	cl->fd = sv[1];
	cl->out = in->bytes[i];
	cl->out_len = in->len[i];
	cl->shut = cl->hold = cl->hold_shut = false;
	cl->requests = cl->replies = 0;
	cl->fatal = cl->error_event = false;
	fuzz_count_requests(cl, in->bytes[i], in->len[i]);
	frame_reader_init(&cl->reader, FRAME_MAX_LIMIT);
	fd_queue_init(&cl->fdq);
	FUZZ_CHECK(conn_new(s, sv[0], getpid(), in->uid[i], in->uid[i], ret_conn) == 0);
	conn_ref(*ret_conn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_client cl[FUZZ_CONNS];
	struct conn *c[FUZZ_CONNS];
	struct fuzz_input in;
	struct server srv;
	struct sdlisten passed = { .listen_fd = -1 };
	size_t i, n;
	int fds_before;
	bool forced;

	if (fuzz_decode(data, size, &in) < 0)
		goto out;
	fuzz_waits = 0;
	fds_before = fd_count();
	FUZZ_CHECK(fds_before > 0);
	FUZZ_CHECK(server_init(&srv, &fuzz_loop, &fuzz_cfg, &passed) == 0);
	n = in.len[1] > 0 ? 2 : 1;
	for (i = 0; i < n; i++)
		fuzz_connect(&srv, &in, i, &cl[i], &c[i]);

	if (n == 2 && in.stage) {
		cl[0].hold = true;
		cl[1].hold_shut = true;
	}
	forced = fuzz_serve(&srv, c, cl, n, !in.nodrain);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(c[i]->state == CONN_CLOSED);
		/* Unless the connection was cut off, every request was answered, once. */
		if (!forced && !in.nodrain && !cl[i].fatal && !cl[i].error_event)
			FUZZ_CHECK(cl[i].replies == cl[i].requests);
	}
	FUZZ_CHECK(srv.nconns == 0 && srv.conns == NULL);
	FUZZ_CHECK(srv.ngrants == 0);
	FUZZ_CHECK(srv.nlocks == 0 && srv.nlock_waiters == 0);
	FUZZ_CHECK(srv.nsubscriptions == 0);
	FUZZ_CHECK(srv.shrinks == NULL);
	FUZZ_CHECK(srv.work_pending == 0);

	fuzz_server_stop(&srv);
	for (i = 0; i < n; i++) {
		conn_unref(c[i]);
		close(cl[i].fd);
		frame_reader_done(&cl[i].reader);
		fd_queue_clear(&cl[i].fdq);
	}
	fuzz_reset_root();
	FUZZ_CHECK(fd_count() == fds_before);
out:
	for (i = 0; i < FUZZ_CONNS; i++)
		free(in.bytes[i]);
	return 0;
}
