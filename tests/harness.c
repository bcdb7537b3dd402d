/* SPDX-License-Identifier: MIT */
/*
 * Test harness for the end-to-end suites (see harness.h): a real mmapd on a temporary socket and
 * data directory, raw protocol connections built on proto/ (framing, descriptor passing,
 * message codec), and real client processes whose output the tests read line by line.
 *
 * A failure anywhere is a Check assertion with a sentence that says what was expected and what
 * came instead, so a red test explains itself without a debugger.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctlpage.h"
#include "fdcount.h"
#include "mmapd.h"
#include "msg.h"

int64_t test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A printable copy of a JSON value for failure messages. Check evaluates the message only when
 * the assertion fails, and the test process ends right after, so the copy is never freed. */
static char *describe(const cJSON *obj)
{
	char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;

	return s ? s : strdup("(null)");
}

const char *test_env_path(const char *var)
{
	const char *v = getenv(var);

	ck_assert_msg(v != NULL && v[0] == '/',
	              "environment variable %s must hold an absolute path (run the suite through "
	              "`make check`, or set it by hand)", var);
	return v;
}

static void describe_status(int st, char *buf, size_t size)
{
	if (st == -1)
		snprintf(buf, size, "still running");
	else if (WIFEXITED(st))
		snprintf(buf, size, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, size, "wait status 0x%x", (unsigned)st);
}

int test_wait_pid(pid_t pid, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		ck_assert_msg(r == 0 || (r < 0 && errno == EINTR), "waitpid(%d): %s", (int)pid,
		              strerror(errno));
		if (test_now_ms() >= deadline)
			return -1;
		sleep_ms(5);
	}
}

void test_child_wait(pid_t pid, int timeout_ms)
{
	int st = test_wait_pid(pid, timeout_ms);

	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		ck_abort_msg("child %d did not finish within %d ms", (int)pid, timeout_ms);
	}
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: wait status 0x%x",
	              (int)pid, (unsigned)st);
}

static int rmtree_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int test_rmtree(const char *path)
{
	int r = nftw(path, rmtree_cb, 32, FTW_DEPTH | FTW_PHYS);

	if (r < 0)
		return errno == ENOENT ? 0 : -errno;
	return r;
}

/* In a freshly forked child: stdin from /dev/null unless given, no inherited descriptors
 * beyond 0..2, no systemd variables that would change the daemon's behaviour. */
static void child_prepare(void)
{
	close_range(3, ~0U, 0);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	signal(SIGPIPE, SIG_DFL);
}

static pid_t daemon_spawn(const char *sock, const char *data, const char *config,
                          const struct test_daemon *envd);

pid_t test_daemon_spawn(const char *sock, const char *data, const char *config)
{
	return daemon_spawn(sock, data, config, NULL);
}

/* Starts mmapd; envd (may be NULL) gives extra environment variables. */
static pid_t daemon_spawn(const char *sock, const char *data, const char *config,
                          const struct test_daemon *envd)
{
	const char *bin = test_env_path("MMAPD_BIN");
	char *argv[16];
	int n = 0;
	pid_t pid;

	argv[n++] = (char *)bin;
	argv[n++] = (char *)"--foreground";
	argv[n++] = (char *)"--socket";
	argv[n++] = (char *)sock;
	argv[n++] = (char *)"--data-dir";
	argv[n++] = (char *)data;
	argv[n++] = (char *)"--log-level";
	argv[n++] = (char *)"warn";
	/* Without a config of the test's own, none: never the host's /etc/mmapd/mmapd.json. */
	if (config != NULL && config[0] != '\0') {
		argv[n++] = (char *)"--config";
		argv[n++] = (char *)config;
	} else {
		argv[n++] = (char *)"--no-config";
	}
	argv[n] = NULL;

	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null >= 0 && null != 0) {
			dup2(null, 0);
			close(null);
		}
		child_prepare();
		for (size_t i = 0; envd != NULL && i < envd->nenv; i++)
			putenv((char *)envd->env[i]);
		if (envd != NULL && envd->run_as &&
		    (setgroups(0, NULL) < 0 || setgid(envd->gid) < 0 || setuid(envd->uid) < 0)) {
			fprintf(stderr, "harness: cannot become %lu:%lu: %s\n",
			        (unsigned long)envd->uid, (unsigned long)envd->gid, strerror(errno));
			_exit(126);
		}
		execv(bin, argv);
		fprintf(stderr, "harness: exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	return pid;
}

int test_try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/*
 * Daemons this process started and has not stopped yet, with their directories. A test that
 * fails half-way leaves through Check's exit() without its own clean-up; the atexit handler
 * then kills what is left and removes the directories. Forked tests inherit the table, so each
 * entry remembers the process that owns it, and a handler touches only its own.
 */
#define TEST_MAX_DAEMONS 16

static struct {
	pid_t owner;
	pid_t pid;
	char dir[TEST_PATH_MAX];
} live[TEST_MAX_DAEMONS];

static void live_cleanup(void)
{
	for (size_t i = 0; i < TEST_MAX_DAEMONS; i++) {
		if (live[i].dir[0] == '\0' || live[i].owner != getpid())
			continue;
		/* Only a child of ours that still runs: a reaped pid may belong to anyone now. */
		if (live[i].pid > 0 && waitpid(live[i].pid, NULL, WNOHANG) == 0) {
			kill(live[i].pid, SIGKILL);
			waitpid(live[i].pid, NULL, 0);
		}
		test_rmtree(live[i].dir);
		live[i].dir[0] = '\0';
	}
}

static void live_set(const char *dir, pid_t pid)
{
	static pid_t registered;
	size_t i, free_slot = TEST_MAX_DAEMONS;

	if (registered != getpid()) {
		atexit(live_cleanup);
		registered = getpid();
	}
	for (i = 0; i < TEST_MAX_DAEMONS; i++) {
		if (live[i].dir[0] != '\0' && live[i].owner == getpid() && strcmp(live[i].dir, dir) == 0)
			break;
		if (live[i].dir[0] == '\0' && free_slot == TEST_MAX_DAEMONS)
			free_slot = i;
	}
	if (i == TEST_MAX_DAEMONS) {
		ck_assert_msg(free_slot < TEST_MAX_DAEMONS, "more than %d daemons at once",
		              TEST_MAX_DAEMONS);
		i = free_slot;
		snprintf(live[i].dir, sizeof(live[i].dir), "%s", dir);
		live[i].owner = getpid();
	}
	live[i].pid = pid;
}

static void live_drop(const char *dir)
{
	for (size_t i = 0; i < TEST_MAX_DAEMONS; i++)
		if (live[i].dir[0] != '\0' && live[i].owner == getpid() && strcmp(live[i].dir, dir) == 0)
			live[i].dir[0] = '\0';
}

/* Spawns mmapd on d's paths and waits until its socket accepts a connection. */
static void daemon_launch(struct test_daemon *d)
{
	char what[96];
	int64_t deadline;

	d->pid = daemon_spawn(d->sock, d->data, d->config, d);
	live_set(d->dir, d->pid);
	deadline = test_now_ms() + TEST_WAIT_MS;
	for (;;) {
		int st, fd = test_try_connect(d->sock);

		if (fd >= 0) {
			close(fd);
			return;
		}
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			describe_status(st, what, sizeof(what));
			d->pid = 0;
			test_rmtree(d->dir);
			live_drop(d->dir);
			ck_abort_msg("mmapd exited during start-up (%s) before its socket accepted "
			             "connections", what);
		}
		if (test_now_ms() >= deadline) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
			d->pid = 0;
			test_rmtree(d->dir);
			live_drop(d->dir);
			ck_abort_msg("mmapd's socket did not accept a connection within %d ms "
			             "(last connect error: %s)", TEST_WAIT_MS, strerror(-fd));
		}
		sleep_ms(10);
	}
}

/*
 * Every temporary directory of a suite lives under one root, made by test_run_suite() in the
 * runner process and removed by it at the end: a test that fails half-way ends through
 * Check's _exit() with no chance to clean up, and its directory goes with the root.
 */
static char suite_root[TEST_PATH_MAX];
static pid_t suite_root_owner;

static void suite_root_remove(void)
{
	if (suite_root[0] != '\0' && suite_root_owner == getpid()) {
		test_rmtree(suite_root);
		suite_root[0] = '\0';
	}
}

void test_mkdtemp(char *buf, size_t size)
{
	int n;

	if (suite_root[0] != '\0')
		n = snprintf(buf, size, "%s/d.XXXXXX", suite_root);
	else
		n = snprintf(buf, size, "/tmp/mmapd-test.XXXXXX");
	ck_assert((size_t)n < size);
	ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp %s: %s", buf, strerror(errno));
}

void test_daemon_start(struct test_daemon *d, const char *config_json)
{
	test_daemon_init(d, config_json);
	daemon_launch(d);
}

void test_daemon_start_shared(struct test_daemon *d, const char *config_json)
{
	test_daemon_init(d, config_json);
	test_daemon_open_dirs(d);
	daemon_launch(d);
}

void test_daemon_launch(struct test_daemon *d)
{
	ck_assert_msg(d->pid == 0 && d->dir[0] != '\0', "launch wants an initialised daemon");
	daemon_launch(d);
}

void test_daemon_setenv(struct test_daemon *d, const char *name_value)
{
	ck_assert_msg(d->nenv < TEST_DAEMON_MAX_ENV, "too many environment variables");
	ck_assert(strchr(name_value, '=') != NULL && strlen(name_value) < TEST_PATH_MAX);
	snprintf(d->env[d->nenv++], TEST_PATH_MAX, "%s", name_value);
}

void test_daemon_kill(struct test_daemon *d)
{
	int st;

	ck_assert_msg(d->pid > 0, "kill wants a running daemon");
	ck_assert_msg(kill(d->pid, SIGKILL) == 0, "kill(SIGKILL): %s", strerror(errno));
	st = test_wait_pid(d->pid, TEST_WAIT_MS);
	ck_assert_msg(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	              "mmapd did not die of SIGKILL (wait status 0x%x)", (unsigned)st);
	d->pid = 0;
	/* The entry keeps the directory; the pid is gone. */
	live_set(d->dir, 0);
}

uint64_t test_daemon_rss_kib(const struct test_daemon *d)
{
	char path[64], line[256];
	FILE *f;
	unsigned long long kib = 0;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	f = fopen(path, "re");
	ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %llu kB", &kib) == 1) {
			found = true;
			break;
		}
	fclose(f);
	ck_assert_msg(found, "no VmRSS line in %s", path);
	return kib;
}

void test_daemon_init(struct test_daemon *d, const char *config_json)
{
	char tmpl[TEST_PATH_MAX - 16];

	memset(d, 0, sizeof(*d));
	(void)test_env_path("MMAPD_BIN");
	test_mkdtemp(tmpl, sizeof(tmpl));
	live_set(tmpl, 0);
	snprintf(d->dir, sizeof(d->dir), "%s", tmpl);
	snprintf(d->sock, sizeof(d->sock), "%s/s", tmpl);
	snprintf(d->data, sizeof(d->data), "%s/data", tmpl);
	ck_assert_msg(mkdir(d->data, 0700) == 0, "mkdir %s: %s", d->data, strerror(errno));
	if (config_json != NULL) {
		FILE *f;

		snprintf(d->config, sizeof(d->config), "%s/cfg.json", tmpl);
		f = fopen(d->config, "we");
		ck_assert_msg(f != NULL, "fopen %s: %s", d->config, strerror(errno));
		ck_assert(fputs(config_json, f) >= 0);
		ck_assert(fclose(f) == 0);
	}
}

void test_daemon_restart(struct test_daemon *d)
{
	ck_assert_msg(d->pid == 0 && d->dir[0] != '\0', "restart wants a stopped daemon");
	daemon_launch(d);
}

void test_daemon_stop(struct test_daemon *d)
{
	int st = 0;
	char what[96];
	bool killed = false;

	if (d->pid > 0) {
		ck_assert_msg(kill(d->pid, SIGTERM) == 0, "kill(SIGTERM): %s", strerror(errno));
		st = test_wait_pid(d->pid, TEST_WAIT_MS);
		if (st == -1) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &st, 0);
			killed = true;
		}
		d->pid = 0;
	}
	if (d->dir[0] != '\0') {
		int r = test_rmtree(d->dir);

		live_drop(d->dir);
		ck_assert_msg(r == 0, "removing %s: %s", d->dir, strerror(-r));
		d->dir[0] = '\0';
	}
	ck_assert_msg(!killed, "mmapd did not exit within %d ms of SIGTERM", TEST_WAIT_MS);
	describe_status(st, what, sizeof(what));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	              "mmapd should exit with status 0 after SIGTERM, but: %s", what);
}

/* ---- raw connections ------------------------------------------------------------------- */

int test_connect_raw(const struct test_daemon *d)
{
	int fd = test_try_connect(d->sock);

	ck_assert_msg(fd >= 0, "connect %s: %s", d->sock, strerror(-fd));
	return fd;
}

static void conn_init(struct test_conn *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	frame_reader_init(&c->reader, FRAME_MAX_LIMIT);
	fd_queue_init(&c->queue);
	c->next_id = 1;
}

void test_conn_open(struct test_conn *c, const struct test_daemon *d)
{
	conn_init(c, test_connect_raw(d));
}

void test_conn_open_as(struct test_conn *c, const struct test_daemon *d, uid_t uid, gid_t gid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, status;
	pid_t pid;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(strlen(d->sock), sizeof(sa.sun_path));
	memcpy(sa.sun_path, d->sock, strlen(d->sock) + 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(100);
		_exit(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : 101);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "the child could not connect as %lu:%lu (status %d)", (unsigned long)uid,
	              (unsigned long)gid, status);
	conn_init(c, fd);
}

void test_conn_open_hello_as(struct test_conn *c, const struct test_daemon *d, uid_t uid,
                             gid_t gid)
{
	cJSON *reply;

	test_conn_open_as(c, d, uid, gid);
	reply = test_conn_hello_version(c, 1);
	test_assert_ok(reply);
	cJSON_Delete(reply);
}

static void conn_drop_fds(struct test_conn *c)
{
	for (size_t i = 0; i < c->nfds; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	c->nfds = 0;
}

void test_conn_close(struct test_conn *c)
{
	size_t stray = c->queue.count;

	for (size_t i = 0; i < c->nevents; i++)
		cJSON_Delete(c->events[i]);
	free(c->events);
	c->events = NULL;
	c->nevents = c->events_cap = 0;

	conn_drop_fds(c);
	fd_queue_clear(&c->queue);
	frame_reader_done(&c->reader);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	ck_assert_msg(stray == 0, "the daemon sent %zu descriptor(s) that no frame claimed", stray);
}

int test_conn_send_raw(struct test_conn *c, const void *buf, size_t len)
{
	const char *p = buf;
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
				int64_t left = deadline - test_now_ms();

				if (left <= 0)
					return -ETIMEDOUT;
				poll(&pfd, 1, (int)left);
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

size_t test_frame_put(void *buf, const void *payload, size_t len)
{
	frame_header_put(buf, (uint32_t)len);
	if (len > 0)
		memcpy((uint8_t *)buf + FRAME_HEADER_SIZE, payload, len);
	return FRAME_HEADER_SIZE + len;
}

int test_conn_send_frame(struct test_conn *c, const void *payload, size_t len)
{
	uint8_t *buf = malloc(len + FRAME_HEADER_SIZE);
	int r;

	ck_assert(buf != NULL);
	r = test_conn_send_raw(c, buf, test_frame_put(buf, payload, len));
	free(buf);
	return r;
}

void test_conn_send_text(struct test_conn *c, const char *text)
{
	int r = test_conn_send_frame(c, text, strlen(text));

	ck_assert_msg(r == 0, "sending frame %s: %s", text, strerror(-r));
}

int test_conn_recv(struct test_conn *c, int timeout_ms, cJSON **ret_obj)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	conn_drop_fds(c);
	*ret_obj = NULL;
	for (;;) {
		const char *payload;
		size_t len;
		uint8_t *space;
		size_t avail;
		ssize_t n;
		int r = frame_reader_next(&c->reader, &payload, &len);

		if (r < 0)
			return r;
		if (r == 1) {
			cJSON *obj;
			const cJSON *fds;

			/* The daemon's frames obey the same rules as requests: one JSON object. */
			r = msg_parse(payload, len, &obj);
			if (r < 0)
				return r;
			/* "fds": n claims the next n descriptors of the queue. */
			fds = cJSON_GetObjectItemCaseSensitive(obj, "fds");
			if (fds != NULL) {
				double v = cJSON_IsNumber(fds) ? fds->valuedouble : -1;

				if (v < 0 || v > TEST_CONN_MAX_FDS || v != (double)(size_t)v ||
				    fd_queue_take(&c->queue, (size_t)v, c->fds) < 0) {
					cJSON_Delete(obj);
					return -EPROTO;
				}
				c->nfds = (size_t)v;
			}
			*ret_obj = obj;
			return 1;
		}

		r = frame_reader_space(&c->reader, &space, &avail);
		if (r < 0)
			return r;
		for (;;) {
			struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
			int64_t left = deadline - test_now_ms();
			int pr;

			if (left < 0)
				left = 0;
			pr = poll(&pfd, 1, (int)left);
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr == 0)
				return -ETIMEDOUT;
			break;
		}
		n = fdpass_recv(c->fd, space, avail, &c->queue, MSG_DONTWAIT);
		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return 0;
		frame_reader_commit(&c->reader, (size_t)n);
	}
}

cJSON *test_conn_recv_frame(struct test_conn *c)
{
	cJSON *obj;
	int r = test_conn_recv(c, TEST_WAIT_MS, &obj);

	ck_assert_msg(r == 1, "expected a frame from the daemon, got %s",
	              r == 0 ? "end of stream" : strerror(-r));
	return obj;
}

void test_conn_expect_eof(struct test_conn *c, int timeout_ms)
{
	cJSON *obj = NULL;
	int r = test_conn_recv(c, timeout_ms, &obj);

	ck_assert_msg(r == 0 || r == -ECONNRESET,
	              "expected the daemon to close the connection, got %s%s",
	              r == 1 ? "a frame: " : strerror(-r), r == 1 ? describe(obj) : "");
}

int test_conn_take_fd(struct test_conn *c)
{
	int fd;

	ck_assert_msg(c->nfds >= 1, "the reply carried no descriptor");
	fd = c->fds[0];
	memmove(c->fds, c->fds + 1, (c->nfds - 1) * sizeof(int));
	c->nfds--;
	return fd;
}

cJSON *test_conn_request_text(struct test_conn *c, const char *text)
{
	test_conn_send_text(c, text);
	for (;;) {
		cJSON *obj = test_conn_recv_frame(c);

		ck_assert_msg(cJSON_IsObject(obj), "the daemon sent a frame that is not an object: %s",
		              describe(obj));
		if (cJSON_HasObjectItem(obj, "id"))
			return obj;
		ck_abort_msg("expected a reply to %s, got an event: %s", text, describe(obj));
	}
}

cJSON *test_conn_request(struct test_conn *c, cJSON *req)
{
	uint64_t id = c->next_id++;
	char *text;
	cJSON *reply;

	cJSON_DeleteItemFromObjectCaseSensitive(req, "id");
	ck_assert(cJSON_AddNumberToObject(req, "id", (double)id) != NULL);
	text = cJSON_PrintUnformatted(req);
	ck_assert(text != NULL);
	cJSON_Delete(req);
	reply = test_conn_request_text(c, text);
	test_assert_id(reply, id);
	free(text);
	return reply;
}

cJSON *test_conn_request_op(struct test_conn *c, const char *op)
{
	cJSON *req = cJSON_CreateObject();

	ck_assert(req != NULL && cJSON_AddStringToObject(req, "op", op) != NULL);
	return test_conn_request(c, req);
}

cJSON *test_conn_hello_version(struct test_conn *c, uint64_t version)
{
	cJSON *req = cJSON_CreateObject();

	ck_assert(req != NULL);
	cJSON_AddStringToObject(req, "op", "hello");
	cJSON_AddNumberToObject(req, "version", (double)version);
	cJSON_AddStringToObject(req, "client", "harness");
	return test_conn_request(c, req);
}

void test_daemon_open_dirs(const struct test_daemon *d)
{
	char parent[TEST_PATH_MAX];

	snprintf(parent, sizeof(parent), "%s", d->dir);
	ck_assert_int_eq(chmod(d->dir, 0711), 0);
	ck_assert_int_eq(chmod(dirname(parent), 0711), 0);
}

void test_daemon_run_as(struct test_daemon *d, uid_t uid, gid_t gid)
{
	ck_assert_msg(d->pid == 0 && d->dir[0] != '\0', "run_as wants an initialised daemon");
	test_daemon_open_dirs(d);
	ck_assert_int_eq(chown(d->dir, uid, gid), 0);
	ck_assert_int_eq(chown(d->data, uid, gid), 0);
	if (d->config[0] != '\0')
		ck_assert_int_eq(chmod(d->config, 0644), 0);
	d->run_as = true;
	d->uid = uid;
	d->gid = gid;
}

void test_conn_open_hello(struct test_conn *c, const struct test_daemon *d)
{
	cJSON *reply;

	test_conn_open(c, d);
	reply = test_conn_hello_version(c, 1);
	test_assert_ok(reply);
	ck_assert_uint_eq(test_json_u64(reply, "version"), 1);
	cJSON_Delete(reply);
}

const char *test_describe(const cJSON *obj)
{
	return describe(obj);
}

static void conn_keep_event(struct test_conn *c, cJSON *ev)
{
	if (c->nevents == c->events_cap) {
		size_t cap = c->events_cap ? 2 * c->events_cap : 16;
		cJSON **n = realloc(c->events, cap * sizeof(*n));

		ck_assert(n != NULL);
		c->events = n;
		c->events_cap = cap;
	}
	c->events[c->nevents++] = ev;
}

static bool is_event(const cJSON *obj)
{
	return cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "event")) &&
	       !cJSON_HasObjectItem(obj, "id");
}

uint64_t test_conn_sendf(struct test_conn *c, const char *fmt, ...)
{
	va_list ap;
	char *body, *text;
	uint64_t id = c->next_id++;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&body, fmt, ap);
	va_end(ap);
	ck_assert(n > 0);
	for (char *p = body; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	ck_assert_msg(body[0] == '{', "a request must be a JSON object: %s", body);
	ck_assert(asprintf(&text, "{\"id\":%llu%s%s", (unsigned long long)id,
	                   strcmp(body, "{}") == 0 ? "" : ",", body + 1) > 0);
	test_conn_send_text(c, text);
	free(text);
	free(body);
	return id;
}

cJSON *test_conn_reply(struct test_conn *c, uint64_t id, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	for (;;) {
		cJSON *obj;
		int64_t left = deadline - test_now_ms();
		int r = test_conn_recv(c, left > 0 ? (int)left : 0, &obj);

		ck_assert_msg(r == 1, "expected the reply to request %llu, got %s",
		              (unsigned long long)id, r == 0 ? "end of stream" : strerror(-r));
		if (is_event(obj)) {
			conn_keep_event(c, obj);
			continue;
		}
		test_assert_id(obj, id);
		return obj;
	}
}

cJSON *test_conn_callf(struct test_conn *c, const char *fmt, ...)
{
	va_list ap;
	char *body;
	uint64_t id;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&body, fmt, ap);
	va_end(ap);
	ck_assert(n > 0);
	id = test_conn_sendf(c, "%s", body);
	free(body);
	return test_conn_reply(c, id, TEST_WAIT_MS);
}

cJSON *test_conn_event(struct test_conn *c, int timeout_ms)
{
	cJSON *obj;
	int r;

	if (c->nevents > 0) {
		obj = c->events[0];
		memmove(c->events, c->events + 1, (c->nevents - 1) * sizeof(*c->events));
		c->nevents--;
		return obj;
	}
	r = test_conn_recv(c, timeout_ms, &obj);
	if (r == -ETIMEDOUT)
		return NULL;
	ck_assert_msg(r == 1, "expected an event, got %s", r == 0 ? "end of stream" : strerror(-r));
	ck_assert_msg(is_event(obj), "expected an event, got %s", describe(obj));
	return obj;
}

cJSON *test_conn_expect_event(struct test_conn *c, const char *name, int timeout_ms)
{
	cJSON *ev = test_conn_event(c, timeout_ms);

	ck_assert_msg(ev != NULL, "expected a \"%s\" event within %d ms, got nothing", name,
	              timeout_ms);
	ck_assert_msg(strcmp(test_json_str(ev, "event"), name) == 0,
	              "expected a \"%s\" event, got %s", name, describe(ev));
	return ev;
}

void test_conn_expect_no_event(struct test_conn *c, int ms)
{
	cJSON *reply, *ev;

	ck_assert_msg(c->nevents == 0, "unexpected event: %s", describe(c->events[0]));
	reply = test_conn_callf(c, "{'op':'ping'}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ck_assert_msg(c->nevents == 0, "unexpected event: %s", describe(c->events[0]));
	ev = test_conn_event(c, ms);
	ck_assert_msg(ev == NULL, "unexpected event: %s", describe(ev));
}

uint64_t test_conn_subscribe(struct test_conn *c, const char *name)
{
	cJSON *reply = test_conn_callf(c, "{'op':'subscribe','name':'%s'}", name);
	uint64_t seq;

	test_assert_ok(reply);
	seq = test_json_u64(reply, "seq");
	cJSON_Delete(reply);
	return seq;
}

uint64_t test_conn_changed(struct test_conn *c, const char *name, uint64_t off, uint64_t len)
{
	cJSON *reply = test_conn_callf(c, "{'op':'changed','name':'%s','offset':%llu,'length':%llu}",
	                               name, (unsigned long long)off, (unsigned long long)len);
	uint64_t seq;

	test_assert_ok(reply);
	seq = test_json_u64(reply, "seq");
	cJSON_Delete(reply);
	return seq;
}

/* ---- assertions -------------------------------------------------------------------------- */

void test_assert_ok(const cJSON *reply)
{
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");

	ck_assert_msg(cJSON_IsTrue(ok), "expected an ok reply, got %s", describe(reply));
}

void test_assert_error(const cJSON *reply, const char *code, int err)
{
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
	const cJSON *jc, *jn, *jm;

	ck_assert_msg(cJSON_IsFalse(ok), "expected error %s, got %s", code, describe(reply));
	ck_assert_msg(cJSON_IsObject(e), "error reply without an error object: %s", describe(reply));
	jc = cJSON_GetObjectItemCaseSensitive(e, "code");
	jn = cJSON_GetObjectItemCaseSensitive(e, "errno");
	jm = cJSON_GetObjectItemCaseSensitive(e, "message");
	ck_assert_msg(cJSON_IsString(jc) && strcmp(jc->valuestring, code) == 0,
	              "expected error code %s, got %s", code, describe(reply));
	ck_assert_msg(cJSON_IsNumber(jn) && jn->valuedouble == (double)err,
	              "expected errno %d with %s, got %s", err, code, describe(reply));
	ck_assert_msg(cJSON_IsString(jm) && jm->valuestring[0] != '\0',
	              "error without a message sentence: %s", describe(reply));
}

bool test_is_root(void)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "skipped: needs root to act as other users\n");
	return false;
}

void test_reply_ok(cJSON *reply)
{
	test_assert_ok(reply);
	cJSON_Delete(reply);
}

void test_reply_error(cJSON *reply, const char *code, int err, const char *text)
{
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");

	test_assert_error(reply, code, err);
	ck_assert_msg(!text || strstr(test_json_str(error, "message"), text) != NULL,
	              "message lacks \"%s\": %s", text, describe(reply));
	cJSON_Delete(reply);
}

void test_assert_error_event(const cJSON *obj, const char *code, int err)
{
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(obj, "event");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, "error");
	const cJSON *jc, *jn;

	ck_assert_msg(cJSON_IsString(ev) && strcmp(ev->valuestring, "error") == 0,
	              "expected an error event with %s, got %s", code, describe(obj));
	ck_assert_msg(!cJSON_HasObjectItem(obj, "id"), "events carry no id: %s", describe(obj));
	ck_assert_msg(cJSON_IsObject(e), "error event without an error object: %s", describe(obj));
	jc = cJSON_GetObjectItemCaseSensitive(e, "code");
	jn = cJSON_GetObjectItemCaseSensitive(e, "errno");
	ck_assert_msg(cJSON_IsString(jc) && strcmp(jc->valuestring, code) == 0,
	              "expected error event code %s, got %s", code, describe(obj));
	ck_assert_msg(cJSON_IsNumber(jn) && jn->valuedouble == (double)err,
	              "expected errno %d in the error event, got %s", err, describe(obj));
}

void test_assert_id_null(const cJSON *reply)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(reply, "id");

	ck_assert_msg(cJSON_IsNull(id), "expected \"id\": null, got %s", describe(reply));
}

void test_assert_id(const cJSON *reply, uint64_t want)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(reply, "id");

	ck_assert_msg(cJSON_IsNumber(id) && id->valuedouble == (double)want,
	              "expected \"id\": %llu, got %s", (unsigned long long)want, describe(reply));
}

uint64_t test_json_u64(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	ck_assert_msg(cJSON_IsNumber(v) && v->valuedouble >= 0 &&
	              v->valuedouble == (double)(uint64_t)v->valuedouble,
	              "expected a non-negative integer \"%s\" in %s", key, describe(obj));
	return (uint64_t)v->valuedouble;
}

const char *test_json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	ck_assert_msg(cJSON_IsString(v), "expected a string \"%s\" in %s", key, describe(obj));
	return v->valuestring;
}

bool test_json_bool(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	ck_assert_msg(cJSON_IsBool(v), "expected a boolean \"%s\" in %s", key, describe(obj));
	return cJSON_IsTrue(v);
}

/* ---- daemon-level helpers ---------------------------------------------------------------- */

void test_daemon_assert_alive(const struct test_daemon *d)
{
	struct test_conn c;
	cJSON *reply;

	test_conn_open_hello(&c, d);
	reply = test_conn_request_op(&c, "ping");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	test_conn_close(&c);
}

cJSON *test_daemon_status(const struct test_daemon *d)
{
	struct test_conn c;
	cJSON *reply;

	test_conn_open_hello(&c, d);
	reply = test_conn_request_op(&c, "status");
	test_assert_ok(reply);
	test_conn_close(&c);
	return reply;
}

uint64_t test_daemon_status_u64(const struct test_daemon *d, const char *key)
{
	cJSON *reply = test_daemon_status(d);
	uint64_t v = test_json_u64(reply, key);

	cJSON_Delete(reply);
	return v;
}

uint64_t test_daemon_wait_status(const struct test_daemon *d, const char *key, uint64_t want)
{
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;

	for (;;) {
		uint64_t v = test_daemon_status_u64(d, key);

		if (v == want || test_now_ms() >= deadline)
			return v;
		sleep_ms(10);
	}
}

cJSON *test_daemon_stat(const struct test_daemon *d, const char *name, const cJSON **ret_region)
{
	struct test_conn c;
	cJSON *req = cJSON_CreateObject(), *reply;
	const cJSON *region;

	test_conn_open_hello(&c, d);
	cJSON_AddStringToObject(req, "op", "stat");
	cJSON_AddStringToObject(req, "name", name);
	reply = test_conn_request(&c, req);
	test_conn_close(&c);
	test_assert_ok(reply);
	region = cJSON_GetObjectItemCaseSensitive(reply, "region");
	ck_assert_msg(cJSON_IsObject(region), "stat reply without a region: %s", describe(reply));
	*ret_region = region;
	return reply;
}

/* test_daemon_create with a mode: perm < 0 leaves the daemon's default. */
static void daemon_create(const struct test_daemon *d, const char *name, uint64_t size,
                          bool anonymous, int perm)
{
	struct test_conn c;
	cJSON *req = cJSON_CreateObject(), *reply;

	test_conn_open_hello(&c, d);
	cJSON_AddStringToObject(req, "op", "open");
	cJSON_AddStringToObject(req, "name", name);
	cJSON_AddStringToObject(req, "mode", "rw");
	cJSON_AddBoolToObject(req, "create", true);
	cJSON_AddBoolToObject(req, "exclusive", true);
	cJSON_AddNumberToObject(req, "size", (double)size);
	if (anonymous)
		cJSON_AddBoolToObject(req, "anonymous", true);
	if (perm >= 0)
		cJSON_AddNumberToObject(req, "perm", perm);
	reply = test_conn_request(&c, req);
	test_assert_ok(reply);
	ck_assert_msg(test_json_bool(reply, "created"), "create of %s: \"created\" is false", name);
	ck_assert_uint_eq(test_json_u64(reply, "fds"), 1);
	close(test_conn_take_fd(&c));
	cJSON_Delete(reply);
	test_conn_close(&c);
}

void test_daemon_create(const struct test_daemon *d, const char *name, uint64_t size, bool anonymous)
{
	daemon_create(d, name, size, anonymous, -1);
}

void test_daemon_create_perm(const struct test_daemon *d, const char *name, uint64_t size,
                            unsigned perm)
{
	daemon_create(d, name, size, false, (int)perm);
}

uint64_t test_conn_grant(struct test_conn *c, const char *name, const char *mode)
{
	cJSON *reply = test_conn_callf(c, "{'op':'open','name':'%s','mode':'%s'}", name, mode);
	uint64_t handle;

	test_assert_ok(reply);
	handle = test_json_u64(reply, "handle");
	cJSON_Delete(reply);
	close(test_conn_take_fd(c));
	return handle;
}

void *test_conn_control(struct test_conn *c, uint64_t handle, int *ret_fd)
{
	cJSON *reply = test_conn_callf(c, "{'op':'control','handle':%llu}",
	                               (unsigned long long)handle);
	void *map;

	test_assert_ok(reply);
	ck_assert_uint_lt(test_json_u64(reply, "slot"), CTLPAGE_SLOTS);
	cJSON_Delete(reply);
	*ret_fd = test_conn_take_fd(c);
	map = mmap(NULL, CTLPAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *ret_fd, 0);
	ck_assert(map != MAP_FAILED);
	ck_assert_int_eq(ctlpage_check(map), 0);
	return map;
}

void test_daemon_delete(const struct test_daemon *d, const char *name)
{
	struct test_conn c;
	cJSON *req = cJSON_CreateObject(), *reply;

	test_conn_open_hello(&c, d);
	cJSON_AddStringToObject(req, "op", "delete");
	cJSON_AddStringToObject(req, "name", name);
	reply = test_conn_request(&c, req);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	test_conn_close(&c);
}

struct mmapd_client *test_client_connect(const struct test_daemon *d, const char *client_name)
{
	struct mmapd_client *c = NULL;
	int r = mmapd_connect(d->sock, client_name, &c);

	ck_assert_msg(r == 0, "mmapd_connect: %s", mmapd_last_message());
	return c;
}

/* ---- client processes -------------------------------------------------------------------- */

/* test_proc_spawn(); with merge_stderr, the child's stderr goes to the stdout pipe too. */
static void proc_spawn(struct test_proc *p, const struct test_daemon *d, char *const argv[],
                       bool merge_stderr)
{
	int in[2], out[2];

	memset(p, 0, sizeof(*p));
	ck_assert(pipe2(in, O_CLOEXEC) == 0);
	ck_assert(pipe2(out, O_CLOEXEC) == 0);
	p->pid = fork();
	ck_assert_msg(p->pid >= 0, "fork: %s", strerror(errno));
	if (p->pid == 0) {
		/* dup2 clears close-on-exec on the copies. */
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || (merge_stderr && dup2(out[1], 2) < 0))
			_exit(127);
		child_prepare();
		if (d != NULL)
			setenv("MMAPD_SOCKET", d->sock, 1);
		execv(argv[0], argv);
		fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->in = in[1];
	p->out = out[0];
}

void test_proc_spawn(struct test_proc *p, const struct test_daemon *d, char *const argv[])
{
	proc_spawn(p, d, argv, false);
}

void test_proc_spawn_merged(struct test_proc *p, const struct test_daemon *d, char *const argv[])
{
	proc_spawn(p, d, argv, true);
}

#define TEST_MAX_ARGS 32

static void collect_args(char **argv, const char *first, va_list ap)
{
	int n = 0;

	argv[n++] = (char *)first;
	for (;;) {
		char *a = va_arg(ap, char *);

		ck_assert_msg(n < TEST_MAX_ARGS, "too many arguments");
		argv[n++] = a;
		if (a == NULL)
			break;
	}
}

void test_proc_spawn_client(struct test_proc *p, const struct test_daemon *d, ...)
{
	char *argv[TEST_MAX_ARGS + 1];
	va_list ap;

	va_start(ap, d);
	collect_args(argv, test_env_path("MMAPD_TESTCLIENT"), ap);
	va_end(ap);
	test_proc_spawn(p, d, argv);
}

int test_proc_readline(struct test_proc *p, char *line, size_t size, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	for (;;) {
		char *nl = memchr(p->buf, '\n', p->len);
		struct pollfd pfd = { .fd = p->out, .events = POLLIN };
		int64_t left;
		ssize_t n;

		if (nl != NULL) {
			size_t l = (size_t)(nl - p->buf);

			ck_assert_msg(l < size, "line longer than %zu bytes", size);
			memcpy(line, p->buf, l);
			line[l] = '\0';
			memmove(p->buf, nl + 1, p->len - l - 1);
			p->len -= l + 1;
			return 1;
		}
		ck_assert_msg(p->len < sizeof(p->buf), "child output line too long");
		left = deadline - test_now_ms();
		if (left < 0)
			left = 0;
		if (poll(&pfd, 1, (int)left) == 0)
			return -ETIMEDOUT;
		n = read(p->out, p->buf + p->len, sizeof(p->buf) - p->len);
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_msg(n >= 0, "read from child: %s", strerror(errno));
		if (n == 0) {
			if (p->len == 0)
				return 0;
			/* A last line without newline still counts. */
			p->buf[p->len++] = '\n';
			continue;
		}
		p->len += (size_t)n;
	}
}

void test_proc_expect_line(struct test_proc *p, const char *want)
{
	char line[4096];
	int r = test_proc_readline(p, line, sizeof(line), TEST_WAIT_MS);

	ck_assert_msg(r == 1, "expected \"%s\" from the client process, got %s", want,
	              r == 0 ? "end of output" : "nothing in time");
	ck_assert_msg(strcmp(line, want) == 0, "expected \"%s\" from the client process, got \"%s\"",
	              want, line);
}

void test_proc_writeline(struct test_proc *p, const char *line)
{
	size_t len = strlen(line);
	char *buf = malloc(len + 1);

	ck_assert(buf != NULL);
	memcpy(buf, line, len);
	buf[len] = '\n';
	ck_assert_msg(write(p->in, buf, len + 1) == (ssize_t)(len + 1), "write to child: %s",
	              strerror(errno));
	free(buf);
}

void test_proc_close_stdin(struct test_proc *p)
{
	if (p->in >= 0)
		close(p->in);
	p->in = -1;
}

void test_proc_kill(struct test_proc *p, int sig)
{
	ck_assert_msg(kill(p->pid, sig) == 0, "kill(%d, %d): %s", (int)p->pid, sig, strerror(errno));
}

int test_proc_wait(struct test_proc *p)
{
	int st;

	test_proc_close_stdin(p);
	if (p->out >= 0)
		close(p->out);
	p->out = -1;
	st = test_wait_pid(p->pid, TEST_WAIT_MS);
	if (st == -1) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->pid = 0;
		ck_abort_msg("client process did not exit within %d ms", TEST_WAIT_MS);
	}
	p->pid = 0;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

/* test_run(), and test_run_merged() with merge_stderr. */
static int run(const struct test_daemon *d, char *out, size_t outsize, char *const argv[],
               bool merge_stderr)
{
	struct test_proc p;
	size_t len = 0;
	int64_t deadline;
	bool overflow = false;
	int st;

	proc_spawn(&p, d, argv, merge_stderr);
	test_proc_close_stdin(&p);
	deadline = test_now_ms() + 2 * TEST_WAIT_MS;
	for (;;) {
		struct pollfd pfd = { .fd = p.out, .events = POLLIN };
		char tmp[4096];
		int64_t left = deadline - test_now_ms();
		ssize_t n;

		if (left <= 0) {
			kill(p.pid, SIGKILL);
			test_proc_wait(&p);
			ck_abort_msg("%s %s did not finish within %d ms", argv[0], argv[1] ? argv[1] : "",
			             2 * TEST_WAIT_MS);
		}
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = read(p.out, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len + (size_t)n >= outsize) {
			overflow = true;
			n = (ssize_t)(outsize - 1 - len);
		}
		memcpy(out + len, tmp, (size_t)n);
		len += (size_t)n;
	}
	out[len] = '\0';
	st = test_proc_wait(&p);
	ck_assert_msg(!overflow, "output of %s exceeded %zu bytes", argv[0], outsize - 1);
	return st;
}

int test_run_client(const struct test_daemon *d, char *out, size_t outsize, ...)
{
	char *argv[TEST_MAX_ARGS + 1];
	va_list ap;

	va_start(ap, outsize);
	collect_args(argv, test_env_path("MMAPD_TESTCLIENT"), ap);
	va_end(ap);
	return test_run(d, out, outsize, argv);
}

int test_run(const struct test_daemon *d, char *out, size_t outsize, char *const argv[])
{
	return run(d, out, outsize, argv, false);
}

int test_run_merged(const struct test_daemon *d, char *out, size_t outsize, char *const argv[])
{
	return run(d, out, outsize, argv, true);
}

int test_run_ctl(const struct test_daemon *d, char *out, size_t outsize, ...)
{
	char *argv[TEST_MAX_ARGS + 1];
	va_list ap;

	va_start(ap, outsize);
	collect_args(argv, test_env_path("MMAPCTL_BIN"), ap);
	va_end(ap);
	return test_run(d, out, outsize, argv);
}

int test_run_ctl_merged(const struct test_daemon *d, char *out, size_t outsize, ...)
{
	char *argv[TEST_MAX_ARGS + 1];
	va_list ap;

	va_start(ap, outsize);
	collect_args(argv, test_env_path("MMAPCTL_BIN"), ap);
	va_end(ap);
	return test_run_merged(d, out, outsize, argv);
}

/* ---- session processes ------------------------------------------------------------------- */

void test_sess_start(struct test_sess *s, const struct test_daemon *d, const char *client_name)
{
	const char *line;

	memset(s, 0, sizeof(*s));
	if (client_name != NULL)
		test_proc_spawn_client(&s->p, d, "session", client_name, (char *)NULL);
	else
		test_proc_spawn_client(&s->p, d, "session", (char *)NULL);
	s->pid = s->p.pid;
	line = test_sess_result(s, TEST_WAIT_MS);
	ck_assert_msg(strncmp(line, "ready pid=", 10) == 0, "session did not start: \"%s\"", line);
	ck_assert_uint_eq(test_line_u64(line, "pid"), (uint64_t)s->pid);
}

void test_sess_send(struct test_sess *s, const char *fmt, ...)
{
	va_list ap;
	char *line;

	va_start(ap, fmt);
	ck_assert(vasprintf(&line, fmt, ap) >= 0);
	va_end(ap);
	test_proc_writeline(&s->p, line);
	free(line);
}

/* Reads one line: returns 1 for a result (in s->result), 2 for an event (kept), -ETIMEDOUT. */
static int sess_read(struct test_sess *s, int timeout_ms)
{
	char line[4096];
	int r = test_proc_readline(&s->p, line, sizeof(line), timeout_ms);

	if (r == -ETIMEDOUT)
		return r;
	ck_assert_msg(r == 1, "session %d ended its output (did it die?)", (int)s->pid);
	if (strncmp(line, "! ", 2) == 0) {
		ck_assert_msg(s->nevents < TEST_SESS_MAX_EVENTS, "session %d: too many events kept",
		              (int)s->pid);
		s->events[s->nevents] = strdup(line + 2);
		ck_assert(s->events[s->nevents] != NULL);
		s->nevents++;
		return 2;
	}
	ck_assert_msg(strncmp(line, "= ", 2) == 0, "session %d printed \"%s\"", (int)s->pid, line);
	snprintf(s->result, sizeof(s->result), "%s", line + 2);
	return 1;
}

const char *test_sess_result(struct test_sess *s, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	for (;;) {
		int64_t left = deadline - test_now_ms();
		int r = sess_read(s, left > 0 ? (int)left : 0);

		ck_assert_msg(r != -ETIMEDOUT, "session %d: no result within %d ms", (int)s->pid,
		              timeout_ms);
		if (r == 1)
			return s->result;
	}
}

static const char *sess_vcmd(struct test_sess *s, const char *fmt, va_list ap)
{
	char *line;

	ck_assert(vasprintf(&line, fmt, ap) >= 0);
	test_proc_writeline(&s->p, line);
	free(line);
	return test_sess_result(s, TEST_WAIT_MS);
}

const char *test_sess_cmd(struct test_sess *s, const char *fmt, ...)
{
	va_list ap;
	const char *r;

	va_start(ap, fmt);
	r = sess_vcmd(s, fmt, ap);
	va_end(ap);
	return r;
}

const char *test_sess_ok(struct test_sess *s, const char *fmt, ...)
{
	va_list ap;
	const char *r;
	char *cmd;

	va_start(ap, fmt);
	ck_assert(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	r = test_sess_cmd(s, "%s", cmd);
	ck_assert_msg(strncmp(r, "ok", 2) == 0 && (r[2] == '\0' || r[2] == ' '),
	              "session %d: \"%s\" answered \"%s\"", (int)s->pid, cmd, r);
	free(cmd);
	return r + 2;
}

static char *sess_take_event(struct test_sess *s, size_t i)
{
	char *ev = s->events[i];

	memmove(s->events + i, s->events + i + 1, (s->nevents - i - 1) * sizeof(*s->events));
	s->nevents--;
	return ev;
}

char *test_sess_event(struct test_sess *s, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	while (s->nevents == 0) {
		int64_t left = deadline - test_now_ms();

		if (left <= 0 || sess_read(s, (int)left) == -ETIMEDOUT)
			return NULL;
		ck_assert_msg(s->nevents > 0, "session %d printed a result nobody asked for: \"%s\"",
		              (int)s->pid, s->result);
	}
	return sess_take_event(s, 0);
}

void test_sess_expect_event(struct test_sess *s, const char *want)
{
	char *ev = test_sess_event(s, TEST_WAIT_MS);

	ck_assert_msg(ev != NULL, "session %d: expected event \"%s\", got none within %d ms",
	              (int)s->pid, want, TEST_WAIT_MS);
	ck_assert_msg(strcmp(ev, want) == 0, "session %d: expected event \"%s\", got \"%s\"",
	              (int)s->pid, want, ev);
	free(ev);
}

char *test_sess_find_event(struct test_sess *s, const char *prefix, int timeout_ms)
{
	int64_t deadline = test_now_ms() + timeout_ms;
	size_t seen = 0;

	for (;;) {
		int64_t left;

		for (; seen < s->nevents; seen++)
			if (strncmp(s->events[seen], prefix, strlen(prefix)) == 0)
				return sess_take_event(s, seen);
		left = deadline - test_now_ms();
		if (left <= 0 || sess_read(s, (int)left) == -ETIMEDOUT)
			return NULL;
		ck_assert_msg(seen < s->nevents, "session %d printed a result nobody asked for: \"%s\"",
		              (int)s->pid, s->result);
	}
}

void test_sess_expect_no_event(struct test_sess *s, int ms)
{
	char *ev;

	(void)test_sess_ok(s, "ping");
	ck_assert_msg(s->nevents == 0, "session %d: unexpected event \"%s\"", (int)s->pid,
	              s->events[0]);
	ev = test_sess_event(s, ms);
	ck_assert_msg(ev == NULL, "session %d: unexpected event \"%s\"", (int)s->pid, ev);
}

uint64_t test_line_u64(const char *line, const char *key)
{
	size_t klen = strlen(key);
	const char *p = line;

	for (;;) {
		p = strstr(p, key);
		ck_assert_msg(p != NULL, "no \"%s=\" in \"%s\"", key, line);
		if ((p == line || p[-1] == ' ') && p[klen] == '=' && p[klen + 1] >= '0' &&
		    p[klen + 1] <= '9')
			return strtoull(p + klen + 1, NULL, 10);
		p += klen;
	}
}

static void sess_free_events(struct test_sess *s)
{
	for (size_t i = 0; i < s->nevents; i++)
		free(s->events[i]);
	s->nevents = 0;
}

static int sess_check_status(struct test_sess *s, int st)
{
	ck_assert_msg(st != 128 + SIGBUS, "session %d died of SIGBUS", (int)s->pid);
	ck_assert_msg(st != 128 + SIGSEGV, "session %d died of SIGSEGV", (int)s->pid);
	return st;
}

int test_sess_end(struct test_sess *s)
{
	int st = test_proc_wait(&s->p);

	sess_free_events(s);
	return sess_check_status(s, st);
}

int test_sess_kill(struct test_sess *s, int sig)
{
	int st;

	test_proc_kill(&s->p, sig);
	st = test_proc_wait(&s->p);
	sess_free_events(s);
	if (sig != SIGBUS && sig != SIGSEGV)
		sess_check_status(s, st);
	return st;
}

/* ---- Prometheus ---------------------------------------------------------------------------- */

size_t test_assert_prometheus(const char *text)
{
	char typed[128] = "", type[16] = "", line[1024];
	const char *p = text, *end;
	size_t samples = 0;

	while (*p) {
		char name[128], value[64], *labels, *sp;
		size_t len, n;

		end = strchr(p, '\n');
		ck_assert_msg(end != NULL, "the exposition does not end with a newline");
		len = (size_t)(end - p);
		ck_assert_uint_lt(len, sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		p = end + 1;
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			ck_assert_msg(sscanf(line + 7, "%127s %15s", typed, type) == 2, "bad line: %s", line);
			ck_assert_msg(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0,
			              "bad type: %s", line);
			n = strlen(typed);
			ck_assert_msg((strcmp(type, "counter") == 0) ==
			              (n > 6 && strcmp(typed + n - 6, "_total") == 0),
			              "a counter, and only a counter, ends in _total: %s", line);
			/* Not process_*: node_exporter, which relays the text, has its own. */
			ck_assert_msg(strncmp(typed, "mmapd_", 6) == 0, "not in the mmapd_ namespace: %s",
			              line);
			ck_assert_msg(strspn(typed, "abcdefghijklmnopqrstuvwxyz_") == n, "bad name: %s", line);
			continue;
		}
		ck_assert_msg(line[0] != '#', "bad comment: %s", line);
		sp = strrchr(line, ' ');
		ck_assert_msg(sp != NULL, "no value: %s", line);
		*sp = '\0';
		ck_assert_uint_lt(strlen(sp + 1), sizeof(value));
		strcpy(value, sp + 1);
		labels = strchr(line, '{');
		if (labels) {
			ck_assert_msg(line[strlen(line) - 1] == '}' && strchr(labels, '=') &&
			              strchr(labels, '"'), "bad labels: %s", line);
			*labels = '\0';
		}
		ck_assert_uint_lt(strlen(line), sizeof(name));
		strcpy(name, line);
		ck_assert_msg(strcmp(name, typed) == 0, "sample of %s under # TYPE %s", name, typed);
		n = strspn(value, "0123456789");
		ck_assert_msg(n > 0 && (value[n] == '\0' ||
		                        (value[n] == '.' && strspn(value + n + 1, "0123456789") ==
		                                            strlen(value + n + 1))),
		              "bad value %s of %s", value, name);
		samples++;
	}
	return samples;
}

/* ---- leak checking ----------------------------------------------------------------------- */

static int fd_baseline = -1;

void test_fd_setup(void)
{
	fd_baseline = fd_count();
	ck_assert_msg(fd_baseline >= 0, "fd_count: %s", strerror(-fd_baseline));
}

void test_fd_teardown(void)
{
	int now = fd_count();
	const char *fork_env = getenv("CK_FORK");

	ck_assert_msg(now == fd_baseline, "descriptor leak: %d open before the test, %d after",
	              fd_baseline, now);
	/* With Check forking each test, the test process's children are its own: none may be
	 * left running or unreaped. (Without forking, the suite's daemon is a child too.) */
	if (fork_env == NULL || strcmp(fork_env, "no") != 0) {
		pid_t r = waitpid(-1, NULL, WNOHANG);

		ck_assert_msg(r < 0 && errno == ECHILD, "the test left a child process behind (%s)",
		              r == 0 ? "still running" : "not reaped");
	}
}

int test_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	/* A write to a client that died must fail with EPIPE, not end the test. Children get the
	 * default disposition back before exec. */
	signal(SIGPIPE, SIG_IGN);
	/* Config files the tests write must not be group-writable (mmapd refuses those). */
	umask(022);
	snprintf(suite_root, sizeof(suite_root), "/tmp/mmapd-test.XXXXXX");
	if (mkdtemp(suite_root) == NULL) {
		fprintf(stderr, "harness: mkdtemp %s: %s\n", suite_root, strerror(errno));
		suite_root[0] = '\0';
	} else {
		suite_root_owner = getpid();
		atexit(suite_root_remove);
	}

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	live_cleanup();
	suite_root_remove();
	return failed;
}

cJSON *test_daemon_stats(const struct test_daemon *d)
{
	struct test_conn c;
	cJSON *reply;

	test_conn_open_hello(&c, d);
	reply = test_conn_callf(&c, "{'op':'stats'}");
	test_assert_ok(reply);
	test_conn_close(&c);
	return reply;
}

uint64_t test_daemon_stats_u64(const struct test_daemon *d, const char *key)
{
	cJSON *reply = test_daemon_stats(d);
	uint64_t v = test_json_u64(reply, key);

	cJSON_Delete(reply);
	return v;
}

uint64_t test_daemon_requests(const struct test_daemon *d, const char *op)
{
	cJSON *reply = test_daemon_stats(d);
	uint64_t n = test_json_u64(cJSON_GetObjectItemCaseSensitive(reply, "requests"), op);

	cJSON_Delete(reply);
	return n;
}
