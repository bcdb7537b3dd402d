/* SPDX-License-Identifier: MIT */
/*
 * The real server in-process for unit suites (see inproc.h). The loop is run in small steps
 * (UV_RUN_NOWAIT, and UV_RUN_ONCE while thread-pool work is pending) between reads of the
 * client ends, so a test sees every frame as soon as the daemon has written it.
 */
#include "inproc.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "msg.h"
#include "region.h"
#include "sdnotify.h"

#define INPROC_TURNS_MAX 100000   /* loop turns before a helper gives up */
#define INPROC_IDLE_TURNS 16      /* turns without progress that count as idle */

void inproc_prime(void)
{
	uv_loop_t loop;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}

void inproc_config(struct inproc *p)
{
	char sock[TEST_PATH_MAX + 8];

	memset(p, 0, sizeof(*p));
	log_init(LOG_LEVEL_ERROR);
	test_mkdtemp(p->dir, sizeof(p->dir));
	snprintf(p->data, sizeof(p->data), "%s/data", p->dir);
	snprintf(sock, sizeof(sock), "%s/s", p->dir);
	ck_assert_int_eq(config_init(&p->cfg), 0);
	ck_assert_int_eq(config_set_string(&p->cfg.data_dir, p->data), 0);
	ck_assert_int_eq(config_set_string(&p->cfg.socket_path, sock), 0);
	p->cfg.log_level = LOG_LEVEL_ERROR;
	p->cfg.fdstore = false;
	p->cfg.limits.hello_timeout_ms = 0;
	p->cfg.limits.size_check_ms = 0;
}

void inproc_start(struct inproc *p)
{
	struct sdlisten passed = { .listen_fd = -1 };

	ck_assert_int_eq(uv_loop_init(&p->loop), 0);
	ck_assert_msg(server_init(&p->srv, &p->loop, &p->cfg, &passed) == 0,
	              "server_init on %s failed", p->data);
	p->started = true;
}

void inproc_setup(struct inproc *p)
{
	inproc_config(p);
	inproc_start(p);
}

/* Stops and frees the server and closes the loop; the config stays. */
static void inproc_server_stop(struct inproc *p)
{
	size_t turns;

	ck_assert(p->started);
	server_stop(&p->srv);
	for (turns = 0; turns < INPROC_TURNS_MAX && !p->srv.finished; turns++)
		uv_run(&p->loop, UV_RUN_ONCE);
	ck_assert_msg(p->srv.finished, "the server did not finish stopping");
	server_done(&p->srv);
	ck_assert_ptr_null(p->srv.all_regions);
	uv_run(&p->loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(uv_loop_close(&p->loop), 0);
	p->started = false;
}

void inproc_stop(struct inproc *p)
{
	inproc_server_stop(p);
	config_done(&p->cfg);
}

void inproc_restart(struct inproc *p)
{
	inproc_server_stop(p);
	memset(&p->srv, 0, sizeof(p->srv));
	inproc_start(p);
}

/* One step of the loop. Returns true when it waited for thread-pool work. */
static bool inproc_turn(struct inproc *p)
{
	if (p->srv.work_pending > 0) {
		/* A thread-pool job is running: wait for its completion rather than spin. */
		uv_run(&p->loop, UV_RUN_ONCE);
		return true;
	}
	uv_run(&p->loop, UV_RUN_NOWAIT);
	return false;
}

void inproc_run(struct inproc *p)
{
	unsigned idle = 0;
	size_t turns;

	for (turns = 0; turns < INPROC_TURNS_MAX && idle < INPROC_IDLE_TURNS; turns++) {
		bool busy = p->srv.work_pending > 0;

		inproc_turn(p);
		idle = busy ? 0 : idle + 1;
	}
	ck_assert_msg(idle >= INPROC_IDLE_TURNS, "the server never went idle");
}

void inproc_connect(struct inproc *p, struct inproc_client *cl, uid_t uid)
{
	int sv[2];

	memset(cl, 0, sizeof(*cl));
	cl->p = p;
	cl->next_id = 1;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	cl->fd = sv[1];
	frame_reader_init(&cl->reader, FRAME_MAX_LIMIT);
	fd_queue_init(&cl->fdq);
	ck_assert_int_eq(conn_new(&p->srv, sv[0], getpid(), uid, uid, &cl->conn), 0);
	conn_ref(cl->conn);
}

void inproc_connect_hello(struct inproc *p, struct inproc_client *cl, const char *name)
{
	cJSON *reply;

	inproc_connect(p, cl, getuid());
	reply = inproc_callf(cl, "{'op':'hello','version':1,'client':'%s'}", name);
	test_assert_ok(reply);
	cJSON_Delete(reply);
}

void inproc_disconnect(struct inproc_client *cl)
{
	size_t turns, i;

	close(cl->fd);
	cl->fd = -1;
	for (turns = 0; turns < INPROC_TURNS_MAX && cl->conn->state != CONN_CLOSED; turns++)
		inproc_turn(cl->p);
	ck_assert_msg(cl->conn->state == CONN_CLOSED, "the daemon kept a connection whose client left");
	conn_unref(cl->conn);
	cl->conn = NULL;
	frame_reader_done(&cl->reader);
	fd_queue_clear(&cl->fdq);
	for (i = 0; i < cl->nkept; i++)
		cJSON_Delete(cl->kept[i]);
	cl->nkept = 0;
}

uint64_t inproc_sendf(struct inproc_client *cl, const char *fmt, ...)
{
	char body[4096], text[4200];
	uint8_t *frame = NULL;
	size_t len = 0, off = 0;
	uint64_t id = cl->next_id++;
	va_list ap;
	char *q;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	ck_assert(n > 1 && (size_t)n < sizeof(body) && body[0] == '{');
	for (q = body; *q; q++)
		if (*q == '\'')
			*q = '"';
	n = snprintf(text, sizeof(text), "{\"id\":%llu%s%s", (unsigned long long)id,
	             body[1] == '}' ? "" : ",", body + 1);
	ck_assert((size_t)n < sizeof(text));
	ck_assert_int_eq(frame_encode(text, (size_t)n, &frame, &len), 0);
	while (off < len) {
		ssize_t w = send(cl->fd, frame + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EAGAIN) {
			inproc_turn(cl->p);
			continue;
		}
		ck_assert_msg(w > 0, "send: %s", strerror(errno));
		off += (size_t)w;
	}
	free(frame);
	return id;
}

/* A complete frame already read, parsed; NULL if none. */
static cJSON *inproc_take_frame(struct inproc_client *cl)
{
	const char *payload;
	cJSON *obj = NULL;
	size_t len;
	int r = frame_reader_next(&cl->reader, &payload, &len);

	ck_assert_int_ge(r, 0);
	if (r == 0)
		return NULL;
	ck_assert_msg(msg_parse(payload, len, &obj) == 0, "the daemon sent a frame that is not an "
	              "object: %.*s", (int)len, payload);
	return obj;
}

/* Reads what the client end has. Returns true when bytes came. */
static bool inproc_read(struct inproc_client *cl)
{
	bool got = false;

	for (;;) {
		uint8_t *space;
		size_t avail;
		ssize_t n;

		if (frame_reader_space(&cl->reader, &space, &avail) < 0)
			break;   /* a complete frame must be taken first */
		n = fdpass_recv(cl->fd, space, avail, &cl->fdq, MSG_DONTWAIT);
		fd_queue_clear(&cl->fdq);
		if (n <= 0)
			break;
		frame_reader_commit(&cl->reader, (size_t)n);
		got = true;
	}
	return got;
}

/* The next new frame (not a kept one) within timeout_ms, or NULL. */
static cJSON *inproc_recv_new(struct inproc_client *cl, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	for (;;) {
		cJSON *obj = inproc_take_frame(cl);

		if (obj)
			return obj;
		if (inproc_read(cl))
			continue;
		if (test_now_ms() > deadline)
			return NULL;
		if (!inproc_turn(cl->p)) {
			struct pollfd pfd = { .fd = cl->fd, .events = POLLIN };

			poll(&pfd, 1, 1);
		}
	}
}

cJSON *inproc_recv(struct inproc_client *cl, int timeout_ms)
{
	if (cl->nkept > 0) {
		cJSON *obj = cl->kept[0];

		memmove(cl->kept, cl->kept + 1, --cl->nkept * sizeof(cl->kept[0]));
		return obj;
	}
	return inproc_recv_new(cl, timeout_ms);
}

static void inproc_keep(struct inproc_client *cl, cJSON *obj)
{
	ck_assert_msg(cl->nkept < INPROC_MAX_KEPT, "too many frames kept");
	cl->kept[cl->nkept++] = obj;
}

/* Removes and returns the first kept frame for which match is true, or NULL. */
static cJSON *inproc_take_kept(struct inproc_client *cl, bool (*match)(const cJSON *, uint64_t),
                               uint64_t arg)
{
	size_t i;

	for (i = 0; i < cl->nkept; i++) {
		cJSON *obj = cl->kept[i];

		if (match(obj, arg)) {
			memmove(cl->kept + i, cl->kept + i + 1, (cl->nkept - i - 1) * sizeof(cl->kept[0]));
			cl->nkept--;
			return obj;
		}
	}
	return NULL;
}

static bool is_reply_to(const cJSON *obj, uint64_t id)
{
	uint64_t got;

	return msg_get_u64(obj, "id", &got) == 0 && got == id;
}

static bool is_event(const cJSON *obj, uint64_t unused)
{
	(void)unused;
	return cJSON_GetObjectItemCaseSensitive(obj, "event") != NULL;
}

/* The first kept or arriving frame that matches, keeping the others; asserted. */
static cJSON *inproc_wait_for(struct inproc_client *cl, bool (*match)(const cJSON *, uint64_t),
                              uint64_t arg, const char *what)
{
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;
	cJSON *obj = inproc_take_kept(cl, match, arg);

	while (!obj) {
		int left = (int)(deadline - test_now_ms());

		obj = left > 0 ? inproc_recv_new(cl, left) : NULL;
		ck_assert_msg(obj != NULL, "no %s within %d ms", what, TEST_WAIT_MS);
		if (!match(obj, arg)) {
			inproc_keep(cl, obj);
			obj = NULL;
		}
	}
	return obj;
}

cJSON *inproc_reply(struct inproc_client *cl, uint64_t id)
{
	return inproc_wait_for(cl, is_reply_to, id, "reply");
}

cJSON *inproc_event(struct inproc_client *cl)
{
	return inproc_wait_for(cl, is_event, 0, "event");
}

cJSON *inproc_callf(struct inproc_client *cl, const char *fmt, ...)
{
	char body[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	ck_assert((size_t)n < sizeof(body));
	return inproc_reply(cl, inproc_sendf(cl, "%s", body));
}

void inproc_expect_nothing(struct inproc_client *cl)
{
	cJSON *obj;

	inproc_run(cl->p);
	inproc_read(cl);
	obj = cl->nkept > 0 ? cl->kept[0] : inproc_take_frame(cl);
	ck_assert_msg(obj == NULL, "unexpected frame: %s", obj ? test_describe(obj) : "");
}

struct region *inproc_create_region(struct inproc_client *cl, const char *name, uint64_t size)
{
	struct region *r;
	cJSON *reply;

	reply = inproc_callf(cl, "{'op':'open','name':'%s','mode':'rw','create':true,"
	                     "'exclusive':true,'anonymous':true,'size':%llu}", name,
	                     (unsigned long long)size);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	r = region_lookup(&cl->p->srv, name);
	ck_assert_msg(r != NULL, "region %s is not in the table after its creation", name);
	return r;
}
