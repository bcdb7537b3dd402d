/* SPDX-License-Identifier: MIT */
/*
 * Case (j): no request may stall the loop. One process queues the most lock waiters one uid
 * may have (4096: 4 connections of 1024, max_locks_per_client, behind an exclusive lock that
 * another connection holds; shared and exclusive waiters on overlapping ranges), then those
 * connections close and the daemon drops every waiter. Meanwhile the benchmark's own client
 * pings without pause. Reported: how long queuing and releasing took, and the ping during
 * each next to the ping with no waiters at all, measured just before in the same run.
 *
 * The waiters speak the raw protocol (frames of JSON), since libmmapd's mmapd_lock() waits
 * for its grant; the queuing process writes every request, then pings each connection and
 * waits for those replies, which come only once all its requests were handled.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "region.h"

#define STALL_REGION "bench-stall"
#define STALL_MAX_SAMPLES 100000  /* pings kept per phase (more are timed, not kept) */
#define STALL_CONNS 4
#define STALL_PER_CONN 1024
#define STALL_PING_ID "999999"   /* the id of the queuing process's pings */

/* Connects a raw socket to the daemon. Returns it, or -errno. */
static int stall_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Writes the whole of buf. Returns 0 or -errno. */
static int stall_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends one frame (a 4-byte big-endian length, then text). Returns 0 or -errno. */
static int stall_send(int fd, const char *text)
{
	size_t len = strlen(text);
	uint8_t hdr[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
	                   (uint8_t)len };
	int r = stall_write(fd, hdr, sizeof(hdr));

	return r < 0 ? r : stall_write(fd, text, len);
}

/* Reads exactly len bytes. Returns 0 or -errno (-ECONNRESET at end of stream). */
static int stall_read(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads frames until the reply to the ping: the hello's reply comes first, nothing else may. */
static int stall_await_ping(int fd)
{
	char buf[4096];
	int frames;

	for (frames = 0; frames < 2; frames++) {
		uint8_t hdr[4];
		size_t len;
		int r = stall_read(fd, hdr, sizeof(hdr));

		if (r < 0)
			return r;
		len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
		if (len >= sizeof(buf))
			return -EPROTO;
		r = stall_read(fd, buf, len);
		if (r < 0)
			return r;
		buf[len] = '\0';
		if (strstr(buf, "\"ok\":false"))
			return -EPROTO;
		if (strstr(buf, "\"id\":" STALL_PING_ID))
			return 0;
	}
	return -EPROTO;
}

/* The queuing process: every waiter, then a ping on each connection and its reply. */
static void stall_queue(const int *fds)
{
	char req[256];
	int k, j;

	for (k = 0; k < STALL_CONNS; k++) {
		if (stall_send(fds[k], "{\"op\":\"hello\",\"id\":1,\"version\":1,"
		               "\"client\":\"bench-waiter\"}") < 0)
			_exit(1);
		/* A connection's batch is in before the next one queues (else: EDEADLK). */
		for (j = 0; j < STALL_PER_CONN; j++) {
			snprintf(req, sizeof(req), "{\"op\":\"lock\",\"id\":%d,\"name\":\"" STALL_REGION
			         "\",\"offset\":%d,\"length\":256,\"mode\":\"%s\"}", j + 2,
			         (j % 32) * 128, j % 8 == 0 ? "exclusive" : "shared");
			if (stall_send(fds[k], req) < 0)
				_exit(1);
		}
		if (stall_send(fds[k], "{\"op\":\"ping\",\"id\":" STALL_PING_ID "}") < 0 ||
		    stall_await_ping(fds[k]) < 0)
			_exit(1);
	}
	_exit(0);
}

/* The lock_waiters figure of the stats op, or -errno. */
static int64_t stall_waiters(struct mmapd_client *client)
{
	const char *key = "\"lock_waiters\":";
	char *json, *at;
	int64_t n;
	int r = mmapd_stats_json(client, &json);

	if (r < 0)
		return r;
	at = strstr(json, key);
	n = at ? strtoll(at + strlen(key), NULL, 10) : -EPROTO;
	free(json);
	return n;
}

/* One timed ping into s. Returns 0 or -errno. */
static int stall_ping(struct mmapd_client *client, struct side *s)
{
	uint64_t t0 = clock_ns();
	int r = mmapd_ping(client);

	if (r < 0) {
		fprintf(stderr, "mmapd-bench: mmapd_ping: %s\n", mmapd_last_message());
		return r;
	}
	if (s->samples.count < s->samples.cap)
		samples_add(&s->samples, clock_ns() - t0);
	return 0;
}

/* Pings until the queuing process has exited. Returns 0 or -errno. */
static int stall_ping_while_queuing(struct mmapd_client *client, pid_t pid, struct side *s)
{
	int status, r;

	for (;;) {
		r = stall_ping(client, s);
		if (r < 0)
			return r;
		r = (int)waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
		if (r < 0)
			return -errno;
	}
}

/* Pings (and asks for lock_waiters) until no waiter is left. Returns 0 or -errno. */
static int stall_ping_while_releasing(struct mmapd_client *client, struct side *s)
{
	int64_t n;
	int r;

	do {
		r = stall_ping(client, s);
		if (r < 0)
			return r;
		n = stall_waiters(client);
		if (n < 0)
			return (int)n;
	} while (n > 0);
	return 0;
}

static void stall_print_times(uint64_t queue_ns, uint64_t release_ns)
{
	char q[32], rel[32];

	format_duration(q, sizeof(q), queue_ns);
	format_duration(rel, sizeof(rel), release_ns);
	printf("%-26s queued in %s, released in %s\n", "4096 lock waiters, 1 uid", q, rel);
	fflush(stdout);
}

int case_stall(struct mmapd_client *client, const struct bench_opts *o)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL, .mode = MMAPD_MODE_RW, .size = 4096);
	struct side sides[] = {
		{ .label = "queuing" }, { .label = "releasing" }, { .label = "idle" },
	};
	size_t nsides = sizeof(sides) / sizeof(sides[0]), i;
	size_t idle_pings = o->iters / 10 < 50 ? 50 : o->iters / 10;
	int fds[STALL_CONNS], k, nfds = 0, r;
	struct mmapd_client *holder = NULL;
	struct mmapd_region *region;
	uint64_t lock, t0, queue_ns = 0, release_ns = 0;
	pid_t pid;

	for (i = 0; i < nsides; i++) {
		r = samples_init(&sides[i].samples, STALL_MAX_SAMPLES);
		if (r < 0)
			goto out;
	}
	r = bench_region_open(client, STALL_REGION, &opts, &region);
	if (r < 0)
		goto out;
	mmapd_region_close(region);
	r = mmapd_connect(o->socket, "bench-holder", &holder);
	if (r == 0)
		r = mmapd_lock(holder, STALL_REGION, 0, 0, MMAPD_LOCK_EXCLUSIVE, -1, &lock);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: the holder's lock: %s\n", mmapd_last_message());
		goto out;
	}
	for (i = 0; i < idle_pings && r == 0; i++)
		r = stall_ping(client, &sides[2]);
	for (k = 0; k < STALL_CONNS && r == 0; k++) {
		r = stall_connect(o->socket);
		if (r >= 0) {
			fds[nfds++] = r;
			r = 0;
		}
	}
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: connecting the waiters: %s\n", strerror(-r));
		goto out;
	}

	t0 = clock_ns();
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out;
	}
	if (pid == 0)
		stall_queue(fds);
	r = stall_ping_while_queuing(client, pid, &sides[0]);
	queue_ns = clock_ns() - t0;
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: queuing the waiters: %s\n", strerror(-r));
		goto out;
	}

	t0 = clock_ns();
	while (nfds > 0)
		close(fds[--nfds]);
	r = stall_ping_while_releasing(client, &sides[1]);
	release_ns = clock_ns() - t0;
	if (r < 0)
		goto out;
	stall_print_times(queue_ns, release_ns);
	compare_print_latency("ping, 4096 waiters queue", &sides[0], &sides[2]);
	compare_print_latency("ping, 4096 waiters go", &sides[1], &sides[2]);
	r = mmapd_unlock(holder, lock);
out:
	while (nfds > 0)
		close(fds[--nfds]);
	mmapd_disconnect(holder);
	compare_done(sides, nsides);
	return r;
}

/*
 * Case (k): list and status over a large data directory. LIST_FILES files are placed in the
 * data directory by hand (as an administrator would); then a list page of LIST_PAGE entries
 * and a status are timed next to a ping, and the benchmark's client pings while another
 * process floods list (pages of LIST_FLOOD_PAGE) and status from LIST_CONNS connections, next
 * to the idle ping. A flood of large pages costs their entries' JSON, times however many
 * requests a connection pipelines: that is the loop's fairness, not the directory's size.
 */
#define LIST_FILES 20000
#define LIST_PAGE 100
#define LIST_FLOOD_PAGE 10        /* small: the flood measures what a request costs beyond its page */
#define LIST_CONNS 4
#define LIST_BATCH 32             /* requests each flooding connection pipelines */
#define LIST_FLOOD_ROUNDS 40
#define LIST_FRAME_MAX (1u << 20)

struct list_raw {
	int fd;
	char *buf;                /* LIST_FRAME_MAX + 1 bytes */
	unsigned next;            /* the next name to start a page after */
};

/* Reads one frame into raw->buf (NUL-terminated). Returns 0 or -errno. */
static int list_read_frame(struct list_raw *raw)
{
	uint8_t hdr[4];
	size_t len;
	int r = stall_read(raw->fd, hdr, sizeof(hdr));

	if (r < 0)
		return r;
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	if (len > LIST_FRAME_MAX)
		return -EPROTO;
	r = stall_read(raw->fd, raw->buf, len);
	if (r < 0)
		return r;
	raw->buf[len] = '\0';
	return strstr(raw->buf, "\"ok\":false") ? -EPROTO : 0;
}

/*
 * Sends request i (a list page of limit entries, every fourth a status) without waiting.
 * Returns 0 or -errno.
 */
static int list_send(struct list_raw *raw, unsigned i, int limit)
{
	char req[160];

	raw->next = (raw->next + 7919) % LIST_FILES;
	if (i % 4 == 3)
		snprintf(req, sizeof(req), "{\"op\":\"status\",\"id\":%u}", i + 2);
	else
		snprintf(req, sizeof(req), "{\"op\":\"list\",\"id\":%u,\"after\":\"bench-list-%05u\","
		         "\"limit\":%d}", i + 2, raw->next, limit);
	return stall_send(raw->fd, req);
}

static int list_open(struct list_raw *raw, const char *socket)
{
	int r;

	raw->fd = -1;
	raw->next = 0;
	raw->buf = malloc(LIST_FRAME_MAX + 1);
	if (!raw->buf)
		return -ENOMEM;
	r = stall_connect(socket);
	if (r < 0)
		return r;
	raw->fd = r;
	r = stall_send(raw->fd, "{\"op\":\"hello\",\"id\":1,\"version\":1,\"client\":\"bench-list\"}");
	return r < 0 ? r : list_read_frame(raw);
}

static void list_close(struct list_raw *raw)
{
	if (raw->fd >= 0)
		close(raw->fd);
	free(raw->buf);
}

/* One side of the timed comparison: a list page, or a status. */
static int list_run_page(void *ctx)
{
	struct list_raw *raw = ctx;
	int r = list_send(raw, 0, LIST_PAGE);

	return r < 0 ? r : list_read_frame(raw);
}

static int list_run_status(void *ctx)
{
	struct list_raw *raw = ctx;
	int r = list_send(raw, 3, LIST_PAGE);

	return r < 0 ? r : list_read_frame(raw);
}

static int list_run_ping(void *ctx)
{
	int r = mmapd_ping(ctx);

	if (r < 0)
		fprintf(stderr, "mmapd-bench: mmapd_ping: %s\n", mmapd_last_message());
	return r;
}

/* The flooding process: LIST_FLOOD_ROUNDS batches on every connection, replies read. */
static void list_flood(const char *socket)
{
	struct list_raw raws[LIST_CONNS];
	int k, round;
	unsigned i;

	for (k = 0; k < LIST_CONNS; k++)
		if (list_open(&raws[k], socket) < 0)
			_exit(1);
	for (round = 0; round < LIST_FLOOD_ROUNDS; round++) {
		for (k = 0; k < LIST_CONNS; k++)
			for (i = 0; i < LIST_BATCH; i++)
				if (list_send(&raws[k], i, LIST_FLOOD_PAGE) < 0)
					_exit(1);
		for (k = 0; k < LIST_CONNS; k++)
			for (i = 0; i < LIST_BATCH; i++)
				if (list_read_frame(&raws[k]) < 0)
					_exit(1);
	}
	_exit(0);
}

/* Places (add) or removes LIST_FILES files in data_dir. Returns 0 or -errno. */
static int list_files(const char *data_dir, bool add)
{
	char path[PATH_MAX];
	int i, fd;

	for (i = 0; i < LIST_FILES; i++) {
		snprintf(path, sizeof(path), "%s/bench-list-%05d", data_dir, i);
		if (!add) {
			unlink(path);
			continue;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, 4096) < 0) {
			fprintf(stderr, "mmapd-bench: %s: %s\n", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -errno;
		}
		close(fd);
	}
	return 0;
}

int case_list(struct mmapd_client *client, const char *data_dir, const struct bench_opts *o)
{
	struct list_raw raw = { .fd = -1 };
	struct side timed[] = {
		{ .label = "list", .run = list_run_page, .ctx = &raw },
		{ .label = "status", .run = list_run_status, .ctx = &raw },
		{ .label = "ping", .run = list_run_ping, .ctx = client },
	};
	struct side flood[] = { { .label = "flood" }, { .label = "idle" } };
	size_t idle_pings = o->iters / 10 < 50 ? 50 : o->iters / 10, i;
	struct mmapd_status *st = NULL;
	pid_t pid;
	int r;

	for (i = 0; i < 2; i++) {
		r = samples_init(&flood[i].samples, STALL_MAX_SAMPLES);
		if (r < 0)
			goto out;
	}
	r = list_files(data_dir, true);
	if (r == 0)
		r = mmapd_get_status(client, &st);
	if (r == 0 && st->regions < LIST_FILES) {
		fprintf(stderr, "mmapd-bench: status counts %llu regions, not %d\n",
		        (unsigned long long)st->regions, LIST_FILES);
		r = -EPROTO;
	}
	mmapd_status_free(st);
	if (r == 0)
		r = list_open(&raw, o->socket);
	if (r < 0)
		goto out;
	r = compare_run(timed, sizeof(timed) / sizeof(timed[0]), o->warmup, o->iters);
	if (r < 0)
		goto out;
	compare_print_latency("list 100 of 20000 files", &timed[0], &timed[2]);
	compare_print_latency("status, 20000 files", &timed[1], &timed[2]);

	for (i = 0; i < idle_pings && r == 0; i++)
		r = stall_ping(client, &flood[1]);
	if (r < 0)
		goto out;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out;
	}
	if (pid == 0)
		list_flood(o->socket);
	r = stall_ping_while_queuing(client, pid, &flood[0]);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: the list flood failed: %s\n", strerror(-r));
		goto out;
	}
	compare_print_latency("ping, list flood", &flood[0], &flood[1]);
out:
	list_close(&raw);
	list_files(data_dir, false);
	compare_done(timed, sizeof(timed) / sizeof(timed[0]));
	compare_done(flood, 2);
	return r;
}
