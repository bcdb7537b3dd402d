/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of restarts that keep anonymous regions (daemon/fdstore.h), with this file
 * playing systemd: it binds the listening socket itself, receives the daemon's notifications
 * on a datagram socket ($NOTIFY_SOCKET) — READY=1, and FDSTORE=1 / FDSTOREREMOVE=1 with
 * FDNAME= and the descriptors attached — keeps the stored descriptors as systemd's fd store
 * would, and starts the daemon again with the socket and the stored descriptors as
 * $LISTEN_FDS/$LISTEN_FDNAMES (fds 3, 4, ..., $LISTEN_PID set in the child before exec).
 *
 * Checked: an anonymous region's bytes survive SIGTERM and SIGKILL restarts, a client that
 * kept its mapping still shares pages with a client of the new daemon, owner and mode come
 * back, a deletion leaves the store, descriptors that are not mmapd memfds are refused
 * without harm, READY=1 is sent before the first client is served (and after the store was
 * adopted), and outside a service manager the loss of anonymous regions is logged.
 *
 * The daemon's stderr goes to <dir>/log, which tests read for the lines they expect.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define STORE_MAX 32

struct stored_fd {
	int fd;
	char name[256];
};

/* systemd, as far as mmapd can tell: the socket, the notify socket and the fd store. */
struct fake_sd {
	struct test_daemon d;
	int listen_fd;
	int notify_fd;
	char notify_path[TEST_PATH_MAX + 8];
	char log_path[TEST_PATH_MAX + 8];
	bool notify;                  /* give the daemon $NOTIFY_SOCKET */
	bool ready;                   /* READY=1 received from the current daemon */
	unsigned watchdog_usec;       /* give the daemon $WATCHDOG_USEC (0: none) */
	unsigned watchdogs;           /* WATCHDOG=1 received */
	unsigned statuses;            /* STATUS= received */
	struct stored_fd store[STORE_MAX];
	size_t nstore;
};

static int unix_socket_at(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	ck_assert(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", path,
	              strerror(errno));
	if (type == SOCK_STREAM)
		ck_assert(listen(fd, 64) == 0);
	return fd;
}

static void sd_init(struct fake_sd *sd, const char *config_json)
{
	memset(sd, 0, sizeof(*sd));
	test_daemon_init(&sd->d, config_json);
	sd->listen_fd = unix_socket_at(sd->d.sock, SOCK_STREAM);
	snprintf(sd->notify_path, sizeof(sd->notify_path), "%s/n", sd->d.dir);
	sd->notify_fd = unix_socket_at(sd->notify_path, SOCK_DGRAM);
	snprintf(sd->log_path, sizeof(sd->log_path), "%s/log", sd->d.dir);
	sd->notify = true;
}

static void store_add(struct fake_sd *sd, const char *name, int fd)
{
	ck_assert_msg(sd->nstore < STORE_MAX, "fd store full");
	sd->store[sd->nstore].fd = fd;
	snprintf(sd->store[sd->nstore].name, sizeof(sd->store[0].name), "%s", name);
	sd->nstore++;
}

/* FDSTOREREMOVE=1: every descriptor stored under name goes. */
static void store_remove(struct fake_sd *sd, const char *name)
{
	size_t i = 0;

	while (i < sd->nstore) {
		if (strcmp(sd->store[i].name, name) != 0) {
			i++;
			continue;
		}
		close(sd->store[i].fd);
		sd->store[i] = sd->store[--sd->nstore];
	}
}

/* How many descriptors the store holds under name. */
static size_t store_count(const struct fake_sd *sd, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < sd->nstore; i++)
		n += strcmp(sd->store[i].name, name) == 0;
	return n;
}

/* The value of "KEY=" in a notification, copied into buf; false when absent. */
static bool notify_field(const char *msg, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	const char *p = msg;

	while (p && *p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t n = strcspn(p + klen + 1, "\n");

			ck_assert(n < size);
			memcpy(buf, p + klen + 1, n);
			buf[n] = '\0';
			return true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

/* Handles one notification as systemd does: READY, FDSTORE, FDSTOREREMOVE. */
static void sd_handle(struct fake_sd *sd, const char *msg, int fd)
{
	char name[256] = "", flag[8];

	if (notify_field(msg, "READY", flag, sizeof(flag)))
		sd->ready = true;
	if (notify_field(msg, "WATCHDOG", flag, sizeof(flag)) && strcmp(flag, "1") == 0)
		sd->watchdogs++;
	if (notify_field(msg, "STATUS", name, sizeof(name)))
		sd->statuses++;
	name[0] = '\0';
	notify_field(msg, "FDNAME", name, sizeof(name));
	if (notify_field(msg, "FDSTOREREMOVE", flag, sizeof(flag)))
		store_remove(sd, name);
	if (notify_field(msg, "FDSTORE", flag, sizeof(flag))) {
		ck_assert_msg(fd >= 0, "FDSTORE=1 without a descriptor (\"%s\")", msg);
		store_add(sd, name, fd);
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
}

/*
 * Receives notifications for up to timeout_ms, stopping early once READY=1 was seen when
 * until_ready is set (0: only what is queued now).
 */
static void sd_pump(struct fake_sd *sd, int timeout_ms, bool until_ready)
{
	int64_t deadline = test_now_ms() + timeout_ms;

	for (;;) {
		union {
			struct cmsghdr hdr;
			char buf[CMSG_SPACE(4 * sizeof(int))];
		} control;
		char msg[4096];
		struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
		                     .msg_controllen = sizeof(control.buf) };
		struct pollfd p = { .fd = sd->notify_fd, .events = POLLIN };
		struct cmsghdr *cm;
		int64_t left = deadline - test_now_ms();
		int fd = -1;
		ssize_t n;

		if (until_ready && sd->ready)
			return;
		if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
			return;
		n = recvmsg(sd->notify_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		ck_assert_msg(n >= 0, "recvmsg: %s", strerror(errno));
		ck_assert(!(mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)));
		msg[n] = '\0';
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			ck_assert_msg(cm->cmsg_len == CMSG_LEN(sizeof(int)) && fd < 0,
			              "one descriptor per notification expected");
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		}
		sd_handle(sd, msg, fd);
	}
}

/*
 * Starts mmapd as systemd would: the listening socket as fd 3, the store's descriptors and
 * extra[0..nextra) (borrowed, named extra_names) after it. Returns once READY=1 arrived
 * (when the daemon has $NOTIFY_SOCKET) or at once (when it has not).
 */
static void sd_spawn_with(struct fake_sd *sd, const int *extra, const char *const *extra_names,
                          size_t nextra, bool wait_ready)
{
	const char *bin = test_env_path("MMAPD_BIN");
	int fds[STORE_MAX + 8];
	char names[STORE_MAX * 260 + 64] = "mmapd.socket";
	size_t n = 0, i;
	pid_t pid;

	fds[n++] = sd->listen_fd;
	for (i = 0; i < sd->nstore; i++) {
		fds[n++] = sd->store[i].fd;
		strcat(names, ":");
		strcat(names, sd->store[i].name);
	}
	for (i = 0; i < nextra; i++) {
		fds[n++] = extra[i];
		strcat(names, ":");
		strcat(names, extra_names[i]);
	}
	sd->ready = false;
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		char num[32];
		int log = open(sd->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		/* A test that fails half-way takes its daemon with it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (log >= 0)
			dup2(log, 2);
		/* Out of the way first, so that placing fds at 3.. overwrites none of them. */
		for (i = 0; i < n; i++)
			fds[i] = fcntl(fds[i], F_DUPFD, 100);
		for (i = 0; i < n; i++)
			dup2(fds[i], 3 + (int)i);
		close_range(3 + (unsigned)n, ~0U, 0);
		snprintf(num, sizeof(num), "%zu", n);
		setenv("LISTEN_FDS", num, 1);
		setenv("LISTEN_FDNAMES", names, 1);
		snprintf(num, sizeof(num), "%d", (int)getpid());
		setenv("LISTEN_PID", num, 1);
		if (sd->notify)
			setenv("NOTIFY_SOCKET", sd->notify_path, 1);
		else
			unsetenv("NOTIFY_SOCKET");
		if (sd->watchdog_usec) {
			snprintf(num, sizeof(num), "%u", sd->watchdog_usec);
			setenv("WATCHDOG_USEC", num, 1);
			snprintf(num, sizeof(num), "%d", (int)getpid());
			setenv("WATCHDOG_PID", num, 1);
		} else {
			unsetenv("WATCHDOG_USEC");
			unsetenv("WATCHDOG_PID");
		}
		execl(bin, bin, "--foreground", "--socket", sd->d.sock, "--data-dir", sd->d.data,
		      "--log-level", "info", sd->d.config[0] ? "--config" : "--no-config",
		      sd->d.config[0] ? sd->d.config : (char *)NULL, (char *)NULL);
		_exit(127);
	}
	sd->d.pid = pid;
	if (!wait_ready)
		return;
	sd_pump(sd, TEST_WAIT_MS, true);
	ck_assert_msg(sd->ready, "no READY=1 from mmapd within %d ms", TEST_WAIT_MS);
}

static void sd_spawn(struct fake_sd *sd)
{
	sd_spawn_with(sd, NULL, NULL, 0, sd->notify);
}

/* Stops the daemon with sig (SIGTERM: exit status 0 asserted), then takes its last notes. */
static void sd_stop(struct fake_sd *sd, int sig)
{
	int st;

	ck_assert(kill(sd->d.pid, sig) == 0);
	st = test_wait_pid(sd->d.pid, TEST_WAIT_MS);
	if (sig == SIGKILL)
		ck_assert_msg(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		              "wait status 0x%x", (unsigned)st);
	else
		ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		              "mmapd did not exit with 0 after signal %d (wait status 0x%x)", sig,
		              (unsigned)st);
	sd->d.pid = 0;
	sd_pump(sd, 0, false);
}

/* Stops the daemon if it runs, empties the store, removes the directory. */
static void sd_done(struct fake_sd *sd)
{
	if (sd->d.pid > 0)
		sd_stop(sd, SIGTERM);
	while (sd->nstore > 0)
		store_remove(sd, sd->store[0].name);
	close(sd->listen_fd);
	close(sd->notify_fd);
	test_daemon_stop(&sd->d);
}

/* Asserts that the daemon's log holds text. */
static void log_expect(const struct fake_sd *sd, const char *text)
{
	char buf[65536];
	int fd = open(sd->log_path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	ck_assert_msg(fd >= 0, "open %s: %s", sd->log_path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert(n >= 0);
	buf[n] = '\0';
	ck_assert_msg(strstr(buf, text) != NULL, "the log lacks \"%s\":\n%s", text, buf);
}

/* Asserts reply (consumed) is the error code/err. */
static void reply_error(cJSON *reply, const char *code, int err)
{
	test_assert_error(reply, code, err);
	cJSON_Delete(reply);
}

/* Opens name read-only over c and asserts that its mapping starts with want. */
static void expect_bytes(struct test_conn *c, const char *name, const char *want)
{
	cJSON *reply = test_conn_callf(c, "{'op':'open','name':'%s','mode':'ro'}", name);
	size_t len = strlen(want);
	void *p;
	int fd;

	test_assert_ok(reply);
	ck_assert(test_json_bool(cJSON_GetObjectItem(reply, "region"), "anonymous"));
	fd = test_conn_take_fd(c);
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert(p != MAP_FAILED);
	ck_assert_msg(memcmp(p, want, len) == 0, "region '%s' does not hold \"%s\"", name, want);
	munmap(p, len);
	close(fd);
	cJSON_Delete(reply);
}

START_TEST(test_fdstore_anonymous_region_survives_sigterm_and_sigkill_restarts)
{
	struct fake_sd sd;
	struct test_sess keeper, fresh;
	struct test_conn c;
	const cJSON *region;
	cJSON *st;
	int sig;

	sd_init(&sd, NULL);
	sd_spawn(&sd);
	test_sess_start(&keeper, &sd.d, "keeper");
	(void)test_sess_ok(&keeper, "open keep rw create=65536 anon");
	(void)test_sess_ok(&keeper, "write 0 0 before-restart");
	test_conn_open_hello(&c, &sd.d);
	test_reply_ok(test_conn_callf(&c, "{'op':'chmod','name':'keep','perm':%d}", 0640));
	test_conn_close(&c);
	sd_pump(&sd, 0, false);
	ck_assert_uint_eq(store_count(&sd, "anon/keep"), 1);
	ck_assert_uint_eq(store_count(&sd, "state"), 1);

	for (sig = SIGTERM; sig != 0; sig = sig == SIGTERM ? SIGKILL : 0) {
		sd_stop(&sd, sig);
		/* The store is what carries the region: still one memfd, one state. */
		ck_assert_uint_eq(store_count(&sd, "anon/keep"), 1);
		ck_assert_uint_eq(store_count(&sd, "state"), 1);
		sd_spawn(&sd);
		log_expect(&sd, "restored 1 of 1 anonymous region");

		test_conn_open_hello(&c, &sd.d);
		expect_bytes(&c, "keep", "before-restart");
		test_conn_close(&c);
		st = test_daemon_stat(&sd.d, "keep", &region);
		ck_assert_uint_eq(test_json_u64(region, "perm"), 0640);
		ck_assert_uint_eq(test_json_u64(region, "uid"), getuid());
		ck_assert_uint_eq(test_json_u64(region, "size"), 65536);
		cJSON_Delete(st);

		/* The keeper's mapping and a new client's are the same pages. */
		test_sess_start(&fresh, &sd.d, "fresh");
		(void)test_sess_ok(&fresh, "open keep rw");
		(void)test_sess_ok(&fresh, "write 0 100 %s", sig == SIGTERM ? "after-term" : "after-kill");
		ck_assert_str_eq(test_sess_ok(&keeper, "read 0 100 10"),
		                 sig == SIGTERM ? " after-term" : " after-kill");
		(void)test_sess_ok(&keeper, "write 0 200 from-keeper");
		ck_assert_str_eq(test_sess_ok(&fresh, "read 0 200 11"), " from-keeper");
		ck_assert_int_eq(test_sess_end(&fresh), 0);
	}
	ck_assert_int_eq(test_sess_end(&keeper), 0);
	sd_done(&sd);
}
END_TEST

START_TEST(test_fdstore_deleted_region_leaves_the_store)
{
	struct fake_sd sd;
	struct test_conn c;

	sd_init(&sd, NULL);
	sd_spawn(&sd);
	test_daemon_create(&sd.d, "gone", 4096, true);
	test_daemon_create(&sd.d, "stays", 4096, true);
	sd_pump(&sd, 0, false);
	ck_assert_uint_eq(store_count(&sd, "anon/gone"), 1);
	test_daemon_delete(&sd.d, "gone");
	sd_pump(&sd, 0, false);
	ck_assert_uint_eq(store_count(&sd, "anon/gone"), 0);
	ck_assert_uint_eq(store_count(&sd, "anon/stays"), 1);
	ck_assert_uint_eq(store_count(&sd, "state"), 1);

	sd_stop(&sd, SIGTERM);
	sd_spawn(&sd);
	test_conn_open_hello(&c, &sd.d);
	reply_error(test_conn_callf(&c, "{'op':'open','name':'gone'}"), "ENOENT", ENOENT);
	test_reply_ok(test_conn_callf(&c, "{'op':'stat','name':'stays'}"));
	test_conn_close(&c);
	sd_done(&sd);
}
END_TEST

START_TEST(test_fdstore_refuses_descriptors_that_are_not_mmapd_memfds)
{
	static const char *const names[] = { "anon/file", "anon/unsealed", "anon/.bad", "stray" };
	struct fake_sd sd;
	struct test_conn c;
	char path[TEST_PATH_MAX + 8];
	int extra[4];
	size_t i;

	sd_init(&sd, NULL);
	snprintf(path, sizeof(path), "%s/plain", sd.d.dir);
	extra[0] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	extra[1] = memfd_create("unsealed", MFD_CLOEXEC);
	extra[2] = memfd_create("bad-name", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	extra[3] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (i = 0; i < 4; i++)
		ck_assert(extra[i] >= 0);
	ck_assert(ftruncate(extra[2], 4096) == 0 && fcntl(extra[2], F_ADD_SEALS, F_SEAL_SHRINK) == 0);
	sd_spawn_with(&sd, extra, names, 4, true);
	for (i = 0; i < 4; i++)
		close(extra[i]);

	log_expect(&sd, "refusing the descriptor stored as \"anon/file\": not a memfd");
	log_expect(&sd, "refusing the descriptor stored as \"anon/unsealed\": not sealed");
	log_expect(&sd, "refusing the descriptor stored as \"anon/.bad\": not a valid region name");
	log_expect(&sd, "closing extra descriptor");
	test_conn_open_hello(&c, &sd.d);
	reply_error(test_conn_callf(&c, "{'op':'open','name':'file'}"), "ENOENT", ENOENT);
	reply_error(test_conn_callf(&c, "{'op':'open','name':'unsealed'}"), "ENOENT", ENOENT);
	test_conn_close(&c);
	test_daemon_assert_alive(&sd.d);
	/* What was refused is asked out of the store, so it does not come back every start. */
	sd_pump(&sd, 0, false);
	ck_assert_uint_eq(sd.nstore, 1);
	ck_assert_uint_eq(store_count(&sd, "state"), 1);
	sd_done(&sd);
}
END_TEST

START_TEST(test_fdstore_ready_comes_before_the_first_client_is_served)
{
	struct fake_sd sd;
	struct test_conn c;
	cJSON *reply;
	uint64_t hello, open;

	sd_init(&sd, NULL);
	sd_spawn(&sd);
	test_daemon_create(&sd.d, "early", 4096, true);
	sd_stop(&sd, SIGKILL);

	/* The client is in the socket's backlog, its requests written, before mmapd even runs. */
	test_conn_open(&c, &sd.d);
	hello = test_conn_sendf(&c, "{'op':'hello','version':1,'client':'early'}");
	open = test_conn_sendf(&c, "{'op':'open','name':'early','mode':'ro'}");
	sd_spawn_with(&sd, NULL, NULL, 0, false);
	reply = test_conn_reply(&c, hello, TEST_WAIT_MS);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	/* Served, so READY=1 is queued already; and the store was adopted before it. */
	sd_pump(&sd, 0, false);
	ck_assert_msg(sd.ready, "a client was served before READY=1 was sent");
	reply = test_conn_reply(&c, open, TEST_WAIT_MS);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	test_conn_close(&c);
	sd_done(&sd);
}
END_TEST

START_TEST(test_fdstore_loss_of_anonymous_regions_is_logged_without_a_store)
{
	struct fake_sd sd;

	/* Socket activation without $NOTIFY_SOCKET: no service manager to keep anything. */
	sd_init(&sd, NULL);
	sd.notify = false;
	sd_spawn(&sd);
	test_daemon_assert_alive(&sd.d);   /* (the socket is already bound: no wait needed) */
	test_daemon_create(&sd.d, "lost", 4096, true);
	test_daemon_create(&sd.d, "lost2", 4096, true);
	sd_stop(&sd, SIGTERM);
	log_expect(&sd, "2 anonymous regions will be lost: not running under systemd with a file "
	           "descriptor store");
	ck_assert_uint_eq(sd.nstore, 0);
	sd_done(&sd);

	/* A service manager, but "fdstore": false. */
	sd_init(&sd, "{\"fdstore\": false}");
	sd_spawn(&sd);
	test_daemon_create(&sd.d, "lost", 4096, true);
	sd_stop(&sd, SIGTERM);
	log_expect(&sd, "1 anonymous region will be lost: the file descriptor store is disabled");
	ck_assert_uint_eq(sd.nstore, 0);
	sd_done(&sd);
}
END_TEST

/* Under a watchdog the daemon pings systemd at half the interval, and reports its status. */
START_TEST(test_fdstore_watchdog_keepalives_arrive_at_half_the_interval)
{
	struct fake_sd sd;

	sd_init(&sd, NULL);
	sd.watchdog_usec = 200000;
	sd_spawn(&sd);
	ck_assert_uint_ge(sd.statuses, 1);
	sd.watchdogs = 0;
	sd_pump(&sd, 1000, false);
	/* Every 100 ms for one second: allow for a loaded machine, but not for silence. */
	ck_assert_msg(sd.watchdogs >= 4 && sd.watchdogs <= 12,
	              "%u WATCHDOG=1 in 1 s with WatchdogSec=200ms", sd.watchdogs);
	sd_stop(&sd, SIGTERM);
	sd_done(&sd);
}
END_TEST

/* ---- connections handed over (daemon/fdconn.h) -------------------------------------------- */

/* How many descriptors the store holds under names starting with prefix. */
static size_t store_count_prefix(const struct fake_sd *sd, const char *prefix)
{
	size_t i, n = 0;

	for (i = 0; i < sd->nstore; i++)
		n += strncmp(sd->store[i].name, prefix, strlen(prefix)) == 0;
	return n;
}

/*
 * Starts mmapd under sd with the regions "file" (65536 bytes, on disk) and "anon" (65536,
 * anonymous), and the session old (client "old") with both open read-write.
 */
static void sd_start_old(struct fake_sd *sd, struct test_sess *old)
{
	sd_init(sd, NULL);
	sd_spawn(sd);
	test_daemon_create(&sd->d, "file", 65536, false);
	test_daemon_create(&sd->d, "anon", 65536, true);
	test_sess_start(old, &sd->d, "old");
	(void)test_sess_ok(old, "open file rw");
	(void)test_sess_ok(old, "open anon rw");
}

/*
 * Two libmmapd clients holding file and anonymous grants, locks and a subscription go
 * through a SIGTERM restart on their connections: no reconnection, nothing lost, and the
 * new daemon knows what they hold (stat, locks, shrinks, notifications). A lock request
 * still waiting when the daemon stops is answered ECANCELED.
 */
START_TEST(test_fdconn_client_keeps_its_connection_grants_locks_and_subscription)
{
	struct fake_sd sd;
	struct test_sess old, other;
	const char *line;
	char want[64];
	char *ev;
	uint64_t seq_before, seq_after, lock_id;

	sd_start_old(&sd, &old);
	(void)test_sess_ok(&old, "write 0 0 file-data");
	(void)test_sess_ok(&old, "write 1 0 anon-data");
	lock_id = test_line_u64(test_sess_ok(&old, "lock file 0 8 exclusive"), "lock");
	(void)test_sess_ok(&old, "lock anon 0 8 shared");
	(void)test_sess_ok(&old, "subscribe file");
	(void)test_sess_ok(&old, "subscribe anon");
	test_sess_start(&other, &sd.d, "other");
	(void)test_sess_ok(&other, "open file rw");
	(void)test_sess_ok(&other, "lock file 100 8 exclusive");
	seq_before = test_line_u64(test_sess_ok(&other, "changed file 0 4"), "seq");
	ev = test_sess_find_event(&old, "changed file ", TEST_WAIT_MS);
	ck_assert_msg(ev != NULL, "no changed event before the restart");
	free(ev);
	test_sess_send(&old, "lock file 100 8 exclusive");
	ck_assert_uint_eq(test_daemon_wait_status(&sd.d, "lock_waiters", 1), 1);

	sd_stop(&sd, SIGTERM);
	/* A wait is not carried over: answered before the connection is handed over. */
	line = test_sess_result(&old, TEST_WAIT_MS);
	ck_assert_msg(strncmp(line, "err ECANCELED", 13) == 0, "waiting lock at stop: %s", line);
	ck_assert_uint_eq(store_count_prefix(&sd, "conn/"), 2);
	log_expect(&sd, "handed 2 client connections over to the next daemon");
	/* Sent while no daemon runs: it waits in the socket and is answered by the next one. */
	test_sess_send(&old, "ping");
	sd_spawn(&sd);
	ck_assert_str_eq(test_sess_result(&old, TEST_WAIT_MS), "ok");
	log_expect(&sd, "taken over from the previous daemon: 2 grants, 2 locks, 2 subscriptions");
	log_expect(&sd, "taken over from the previous daemon: 1 grant, 1 lock, 0 subscriptions");
	/* Taken over, the connections left the store: the daemon's copies are the only ones. */
	ck_assert_uint_eq(store_count_prefix(&sd, "conn/"), 0);
	/* Neither "reconnected" nor "locks-lost": the clients saw a pause, nothing else. */
	test_sess_expect_no_event(&old, 100);
	test_sess_expect_no_event(&other, 0);

	line = test_sess_ok(&old, "stat file");
	ck_assert_uint_eq(test_line_u64(line, "grants"), 2);
	ck_assert_uint_eq(test_line_u64(line, "locks"), 2);
	ck_assert_uint_eq(test_daemon_status_u64(&sd.d, "grants"), 3);
	ck_assert_str_eq(test_sess_ok(&old, "read 0 0 9"), " file-data");
	ck_assert_str_eq(test_sess_ok(&old, "read 1 0 9"), " anon-data");
	ck_assert_str_eq(test_sess_ok(&other, "read 0 0 9"), " file-data");

	/* Each one's lock still holds against the other. */
	line = test_sess_cmd(&other, "lock file 0 8 exclusive nowait");
	ck_assert_msg(strncmp(line, "err EAGAIN", 10) == 0, "try-lock on a held range: %s", line);
	line = test_sess_cmd(&old, "lock file 100 8 exclusive nowait");
	ck_assert_msg(strncmp(line, "err EAGAIN", 10) == 0, "try-lock on a held range: %s", line);
	line = test_sess_cmd(&other, "lock anon 0 8 exclusive nowait");
	ck_assert_msg(strncmp(line, "err EAGAIN", 10) == 0, "try-lock on a held range: %s", line);
	(void)test_sess_ok(&other, "lock anon 0 8 shared nowait");
	(void)test_sess_ok(&other, "open anon ro");
	ck_assert_str_eq(test_sess_ok(&other, "read 1 0 9"), " anon-data");
	(void)test_sess_ok(&old, "write 1 16 after");
	ck_assert_str_eq(test_sess_ok(&other, "read 1 16 5"), " after");

	/* The subscription goes on, and the change seq does not go backwards. */
	seq_after = test_line_u64(test_sess_ok(&other, "changed file 0 4"), "seq");
	ck_assert_uint_gt(seq_after, seq_before);
	snprintf(want, sizeof(want), "changed file seq=%llu ", (unsigned long long)seq_after);
	ev = test_sess_find_event(&old, want, TEST_WAIT_MS);
	ck_assert_msg(ev != NULL, "the old subscriber did not hear change %llu",
	              (unsigned long long)seq_after);
	free(ev);
	(void)test_sess_ok(&other, "changed anon 0 4");
	ev = test_sess_find_event(&old, "changed anon ", TEST_WAIT_MS);
	ck_assert_msg(ev != NULL, "the old subscriber did not hear a change of the anonymous region");
	free(ev);

	/* A shrink asks the old client, which holds the file mapped, on its old connection. */
	(void)test_sess_ok(&other, "resize file 4096");
	ev = test_sess_find_event(&old, "shrinking file size=4096 ", TEST_WAIT_MS);
	ck_assert_msg(ev != NULL, "the old client heard no shrinking event");
	free(ev);
	/* The lock kept its id, under which the old client releases it. */
	(void)test_sess_ok(&old, "unlock %llu", (unsigned long long)lock_id);
	(void)test_sess_ok(&other, "lock file 0 8 exclusive nowait");

	ck_assert_int_eq(test_sess_end(&other), 0);
	ck_assert_int_eq(test_sess_end(&old), 0);
	sd_done(&sd);
}
END_TEST

/*
 * A subscription made with "external" goes through a SIGTERM restart with it: the new daemon
 * watches the file again, and a write(2) by a process that is no client reaches the
 * subscriber on its old connection as an external change.
 */
START_TEST(test_fdconn_external_subscription_survives_the_restart)
{
	char path[TEST_PATH_MAX + 16];
	struct fake_sd sd;
	struct test_conn sub, c;
	cJSON *reply, *ev;
	int fd;

	sd_init(&sd, NULL);
	sd_spawn(&sd);
	test_daemon_create(&sd.d, "file", 65536, false);
	test_conn_open_hello(&sub, &sd.d);
	test_reply_ok(test_conn_callf(&sub, "{'op':'subscribe','name':'file','external':true}"));

	sd_stop(&sd, SIGTERM);
	sd_spawn(&sd);
	ck_assert_uint_eq(test_daemon_wait_status(&sd.d, "subscriptions", 1), 1);
	test_conn_open_hello(&c, &sd.d);
	reply = test_conn_callf(&c, "{'op':'stats'}");
	test_assert_ok(reply);
	ck_assert_uint_eq(test_json_u64(reply, "watched_files"), 1);
	cJSON_Delete(reply);
	test_conn_close(&c);

	snprintf(path, sizeof(path), "%s/file", sd.d.data);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "outside", 7, 0), 7);
	close(fd);
	ev = test_conn_expect_event(&sub, "changed", TEST_WAIT_MS);
	ck_assert_msg(test_json_bool(ev, "external") &&
	              cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(ev, "ranges")),
	              "not an external change: %s", test_describe(ev));
	cJSON_Delete(ev);

	test_conn_close(&sub);
	sd_done(&sd);
}
END_TEST

/*
 * Whole-region locks held on the control page's fast path (a shared one and an exclusive
 * one) go through a SIGTERM restart: the old daemon takes them over and hands them on, the
 * new daemon holds them against others under the ids their holders know, and once they are
 * released the region can be locked again.
 */
START_TEST(test_fdconn_fast_path_locks_survive_the_restart)
{
	struct fake_sd sd;
	struct test_sess old, other;
	uint64_t excl, shared, requests;
	const char *line;

	sd_start_old(&sd, &old);
	excl = test_line_u64(test_sess_ok(&old, "lock file 0 0 exclusive"), "lock");
	shared = test_line_u64(test_sess_ok(&old, "lock anon 0 0 shared"), "lock");
	ck_assert_uint_ge(excl, 1ull << 52);
	ck_assert_uint_ge(shared, 1ull << 52);
	sd_stop(&sd, SIGTERM);
	sd_spawn(&sd);
	log_expect(&sd, "taken over from the previous daemon: 2 grants, 2 locks, 0 subscriptions");
	test_sess_start(&other, &sd.d, "other");
	(void)test_sess_ok(&other, "open file rw");
	(void)test_sess_ok(&other, "open anon rw");
	line = test_sess_cmd(&other, "lock file 0 0 shared nowait");
	ck_assert_msg(strncmp(line, "err EAGAIN", 10) == 0, "the exclusive lock is lost: %s", line);
	line = test_sess_cmd(&other, "lock anon 0 0 exclusive nowait");
	ck_assert_msg(strncmp(line, "err EAGAIN", 10) == 0, "the shared lock is lost: %s", line);
	(void)test_sess_ok(&old, "unlock %llu", (unsigned long long)excl);
	(void)test_sess_ok(&old, "unlock %llu", (unsigned long long)shared);
	line = test_sess_ok(&other, "lock file 0 0 exclusive nowait");
	(void)test_sess_ok(&other, "unlock %llu", (unsigned long long)test_line_u64(line, "lock"));
	line = test_sess_ok(&other, "lock anon 0 0 exclusive nowait");
	(void)test_sess_ok(&other, "unlock %llu", (unsigned long long)test_line_u64(line, "lock"));
	/*
	 * The old client's next locks leave the old daemon's page (managed for good) for a page
	 * of the new daemon: back on the fast path, no lock request, and they still exclude.
	 */
	line = test_sess_ok(&old, "lock file 0 0 exclusive");
	ck_assert_uint_ge(test_line_u64(line, "lock"), 1ull << 52);
	ck_assert_msg(strncmp(test_sess_cmd(&other, "lock file 0 0 shared nowait"), "err EAGAIN",
	                      10) == 0, "the old client's lock does not exclude");
	(void)test_sess_ok(&old, "unlock %llu", (unsigned long long)test_line_u64(line, "lock"));
	requests = test_daemon_requests(&sd.d, "lock");
	for (int i = 0; i < 20; i++) {
		line = test_sess_ok(&old, "lock file 0 0 exclusive");
		(void)test_sess_ok(&old, "unlock %llu", (unsigned long long)test_line_u64(line, "lock"));
	}
	ck_assert_uint_eq(test_daemon_requests(&sd.d, "lock"), requests);
	ck_assert_int_eq(test_sess_end(&other), 0);
	ck_assert_int_eq(test_sess_end(&old), 0);
	sd_done(&sd);
}
END_TEST

/* A client that dies while the daemon restarts: its connection is dropped, grants released. */
START_TEST(test_fdconn_peer_that_died_during_the_restart_is_dropped)
{
	struct fake_sd sd;
	struct test_sess old;
	struct test_conn c;
	uint64_t fds_after;

	sd_start_old(&sd, &old);
	(void)test_sess_ok(&old, "lock file 0 8 exclusive");
	sd_stop(&sd, SIGTERM);
	ck_assert_uint_eq(store_count_prefix(&sd, "conn/"), 1);
	(void)test_sess_kill(&old, SIGKILL);

	sd_spawn(&sd);
	ck_assert_uint_eq(store_count_prefix(&sd, "conn/"), 0);
	ck_assert_uint_eq(test_daemon_wait_status(&sd.d, "clients", 1), 1);
	ck_assert_uint_eq(test_daemon_status_u64(&sd.d, "grants"), 0);
	ck_assert_uint_eq(test_daemon_status_u64(&sd.d, "locks"), 0);
	test_conn_open_hello(&c, &sd.d);
	test_reply_ok(test_conn_callf(&c, "{'op':'lock','name':'file','offset':0,'length':8,"
	                              "'mode':'exclusive','wait':false}"));
	test_conn_close(&c);
	fds_after = test_daemon_status_u64(&sd.d, "open_fds");

	/*
	 * No descriptor is left behind: as many as a daemon that never had the client, after
	 * the same lock (which leaves 'file' in the region lookup cache of both).
	 */
	sd_stop(&sd, SIGTERM);
	sd_spawn(&sd);
	test_conn_open_hello(&c, &sd.d);
	test_reply_ok(test_conn_callf(&c, "{'op':'lock','name':'file','offset':0,'length':8,"
	                              "'mode':'exclusive','wait':false}"));
	test_conn_close(&c);
	ck_assert_uint_eq(test_daemon_status_u64(&sd.d, "open_fds"), fds_after);
	sd_done(&sd);
}
END_TEST

/*
 * A connection whose region went away during the restart cannot be restored whole: the
 * next daemon closes it, and libmmapd reconnects as after any lost connection.
 */
START_TEST(test_fdconn_connection_whose_region_is_gone_is_closed)
{
	struct fake_sd sd;
	struct test_sess old;
	char path[TEST_PATH_MAX + 16];
	char *ev;

	sd_init(&sd, NULL);
	sd_spawn(&sd);
	test_daemon_create(&sd.d, "gone", 4096, false);
	test_sess_start(&old, &sd.d, "old");
	(void)test_sess_ok(&old, "open gone rw");
	sd_stop(&sd, SIGTERM);
	ck_assert_uint_eq(store_count_prefix(&sd, "conn/"), 1);
	snprintf(path, sizeof(path), "%s/gone", sd.d.data);
	ck_assert(unlink(path) == 0);
	sd_spawn(&sd);
	log_expect(&sd, "region 'gone' is gone or cannot be opened; the client will reconnect");
	ck_assert_uint_eq(store_count_prefix(&sd, "conn/"), 0);
	(void)test_sess_ok(&old, "ping");
	ev = test_sess_find_event(&old, "reconnected", TEST_WAIT_MS);
	ck_assert_msg(ev != NULL, "the client did not reconnect");
	free(ev);
	ck_assert_int_eq(test_sess_end(&old), 0);
	sd_done(&sd);
}
END_TEST

/* A sealed memfd holding text, as the daemon stores its state. */
static int state_memfd(const char *text)
{
	int fd = memfd_create("forged-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert(fd >= 0);
	ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	ck_assert(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0);
	return fd;
}

/* Sends a ping frame with id on the raw socket fd and asserts the reply to it is ok. */
static void raw_ping(int fd, unsigned id)
{
	char payload[64], reply[4096];
	uint8_t hdr[4];
	uint32_t len;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	len = (uint32_t)snprintf(payload, sizeof(payload), "{\"op\":\"ping\",\"id\":%u}", id);
	hdr[0] = (uint8_t)(len >> 24), hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8), hdr[3] = (uint8_t)len;
	ck_assert(write(fd, hdr, 4) == 4 && write(fd, payload, len) == (ssize_t)len);
	ck_assert_msg(poll(&p, 1, TEST_WAIT_MS) == 1, "no reply to a ping on the adopted socket");
	ck_assert(recv(fd, hdr, 4, MSG_WAITALL) == 4);
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	ck_assert(len < sizeof(reply));
	ck_assert(recv(fd, reply, len, MSG_WAITALL) == (ssize_t)len);
	reply[len] = '\0';
	ck_assert_msg(strstr(reply, "\"ok\":true") != NULL, "ping on the adopted socket: %s", reply);
}

/* Asserts that the peer of fd sees end of stream (the daemon closed its end). */
static void expect_closed(int fd, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char byte;

	ck_assert_msg(poll(&p, 1, TEST_WAIT_MS) == 1, "%s was not closed", what);
	ck_assert_msg(recv(fd, &byte, 1, MSG_DONTWAIT) == 0, "%s: data instead of end of stream", what);
}

/*
 * Forged "conn/..." descriptors: a pipe, a regular file, a socket whose peer is not the uid
 * the state names, a socket the state does not describe: each refused and closed. A socket
 * the state describes truly is taken over and answered (so the refusals are not an accident).
 */
START_TEST(test_fdconn_forged_connections_are_refused)
{
	static const char *const names[] = { "state", "conn/1", "conn/2", "conn/3", "conn/4",
	                                     "conn/5" };
	struct fake_sd sd;
	char path[TEST_PATH_MAX + 8], text[2048];
	int extra[6], pipefd[2], wrong_uid[2], undescribed[2], good[2];
	size_t i;

#define FORGED_CONN(n, uid) "{\"fdname\":\"conn/" #n "\",\"uid\":%lu,\"gid\":0,\"pid\":1," \
	"\"client\":\"forged\",\"version\":1,\"next_handle\":0,\"regions_created\":0," \
	"\"grants\":[],\"locks\":[],\"subs\":[]}"
	snprintf(text, sizeof(text), "{\"version\":2,\"regions\":{},\"handover\":{\"conns\":["
	         FORGED_CONN(1, uid) "," FORGED_CONN(2, uid) "," FORGED_CONN(3, uid) ","
	         FORGED_CONN(5, uid) "],\"lock_serial\":0,\"regions\":{}}}",
	         (unsigned long)getuid() + 1, (unsigned long)getuid(), (unsigned long)getuid(),
	         (unsigned long)getuid());
#undef FORGED_CONN
	sd_init(&sd, NULL);
	ck_assert(pipe2(pipefd, O_CLOEXEC) == 0);
	ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, wrong_uid) == 0);
	ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, undescribed) == 0);
	ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, good) == 0);
	snprintf(path, sizeof(path), "%s/plain", sd.d.dir);
	extra[0] = state_memfd(text);
	extra[1] = wrong_uid[0];
	extra[2] = pipefd[0];
	extra[3] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	extra[4] = undescribed[0];
	extra[5] = good[0];
	ck_assert(extra[3] >= 0);
	sd_spawn_with(&sd, extra, names, 6, true);
	for (i = 0; i < 6; i++)
		close(extra[i]);

	log_expect(&sd, "refusing the descriptor stored as \"conn/1\": its peer is uid");
	log_expect(&sd, "refusing the descriptor stored as \"conn/2\": not a socket");
	log_expect(&sd, "refusing the descriptor stored as \"conn/3\": not a socket");
	log_expect(&sd, "refusing the descriptor stored as \"conn/4\": the stored state does not "
	           "describe it");
	expect_closed(wrong_uid[1], "the socket of another uid");
	expect_closed(undescribed[1], "the socket the state does not describe");
	raw_ping(good[1], 7);
	ck_assert_uint_eq(test_daemon_status_u64(&sd.d, "clients"), 2);
	test_daemon_assert_alive(&sd.d);
	/* Nothing of it stays in the store. */
	sd_pump(&sd, 0, false);
	ck_assert_uint_eq(store_count_prefix(&sd, "conn/"), 0);
	close(pipefd[1]);
	close(wrong_uid[1]);
	close(undescribed[1]);
	close(good[1]);
	sd_done(&sd);
}
END_TEST

#define NOBODY 65534u   /* uid and gid of nobody/nogroup on Debian */

/*
 * A connected stream socket pair whose peer credentials are uid:gid, as a client of that uid
 * leaves one: returns the end the daemon would hold, *ret_peer the client's end. A forked
 * child drops to uid:gid to connect (an abstract address: no file permissions in the way).
 */
static int socket_of_uid(uid_t uid, gid_t gid, int *ret_peer)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int lfd, cfd, sfd, status;
	pid_t pid;

	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	                  (size_t)snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
	                                   "mmapd-check-fdstore-%d", (int)getpid()));
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert(lfd >= 0 && cfd >= 0);
	ck_assert_msg(bind(lfd, (struct sockaddr *)&sa, len) == 0 && listen(lfd, 1) == 0,
	              "bind: %s", strerror(errno));
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(100);
		_exit(connect(cfd, (struct sockaddr *)&sa, len) == 0 ? 0 : 101);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x",
	              (unsigned)status);
	sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert(sfd >= 0);
	close(lfd);
	*ret_peer = cfd;
	return sfd;
}

/* The handover entry of a forged connection stored as conn/<n> for uid, with locks and subs. */
#define FORGED_ENTRY_G(n, uid, next_handle, grants, locks, subs) "{\"fdname\":\"conn/" #n \
	"\",\"uid\":" #uid ",\"gid\":" #uid ",\"pid\":1,\"client\":\"forged\",\"version\":1," \
	"\"next_handle\":" #next_handle ",\"regions_created\":0,\"grants\":[" grants "]," \
	"\"locks\":[" locks "],\"subs\":[" subs "]}"
#define FORGED_ENTRY(n, uid, locks, subs) FORGED_ENTRY_G(n, uid, 0, "", locks, subs)
#define FORGED_LOCK_ID(region, id) "{\"lock\":" #id ",\"region\":\"" region "\"," \
	"\"anonymous\":false,\"mode\":\"shared\",\"offset\":0,\"length\":8}"
#define FORGED_LOCK(region) FORGED_LOCK_ID(region, 1)
#define FORGED_LOCK_SINCE(region, id, since) "{\"lock\":" #id ",\"region\":\"" region "\"," \
	"\"anonymous\":false,\"mode\":\"shared\",\"offset\":0,\"length\":8," \
	"\"since_ms\":" #since "}"
#define FORGED_GRANT(region, handle) "{\"handle\":" #handle ",\"region\":\"" region "\"," \
	"\"anonymous\":false,\"mode\":\"rw\",\"size\":4096}"
#define FORGED_SUB(region) "{\"region\":\"" region "\",\"anonymous\":false}"

/* Starts the daemon on a forged state and the stored connections socks (conn/1, conn/2...). */
static void sd_spawn_forged(struct fake_sd *sd, const char *handover_conns, const int *socks,
                            size_t n)
{
	static const char *const names[] = { "state", "conn/1", "conn/2", "conn/3" };
	char text[4096];
	int extra[4];
	size_t i;

	ck_assert(n < 4);
	snprintf(text, sizeof(text), "{\"version\":2,\"regions\":{},\"handover\":{\"conns\":[%s],"
	         "\"lock_serial\":0,\"regions\":{}}}", handover_conns);
	extra[0] = state_memfd(text);
	for (i = 0; i < n; i++)
		extra[i + 1] = socks[i];
	sd_spawn_with(sd, extra, names, n + 1, true);
	for (i = 0; i < n + 1; i++)
		close(extra[i]);
}

/*
 * Locks and subscriptions need read access, at adoption as at the "lock" and "subscribe"
 * ops: a stored connection whose region now denies it reading (a file replaced or its mode
 * changed during the restart) is closed. One that may still read is taken over.
 */
START_TEST(test_fdconn_lock_or_subscription_without_read_access_is_not_adopted)
{
	struct fake_sd sd;
	struct test_conn c;
	int socks[3], peers[3], i;

	if (getuid() != 0)
		return;
	sd_init(&sd, NULL);
	sd_spawn(&sd);
	test_daemon_create(&sd.d, "public", 4096, false);
	test_daemon_create(&sd.d, "secret", 4096, false);
	test_conn_open_hello(&c, &sd.d);
	test_reply_ok(test_conn_callf(&c, "{'op':'chmod','name':'public','perm':%d}", 0644));
	test_reply_ok(test_conn_callf(&c, "{'op':'chmod','name':'secret','perm':%d}", 0600));
	test_conn_close(&c);
	sd_stop(&sd, SIGTERM);
	while (sd.nstore > 0)
		store_remove(&sd, sd.store[0].name);
	for (i = 0; i < 3; i++)
		socks[i] = socket_of_uid(NOBODY, NOBODY, &peers[i]);
	sd_spawn_forged(&sd, FORGED_ENTRY(1, 65534, FORGED_LOCK("public"), FORGED_SUB("public")) ","
	                FORGED_ENTRY(2, 65534, FORGED_LOCK("secret"), "") ","
	                FORGED_ENTRY(3, 65534, "", FORGED_SUB("secret")), socks, 3);
	log_expect(&sd, "taken over from the previous daemon: 0 grants, 1 lock, 1 subscription");
	log_expect(&sd, "its lock on region 'secret' is no longer allowed (no read access)");
	log_expect(&sd, "its subscription on region 'secret' is no longer allowed (no read access)");
	raw_ping(peers[0], 3);
	expect_closed(peers[1], "the connection locking a region it cannot read");
	expect_closed(peers[2], "the connection subscribed to a region it cannot read");
	ck_assert_uint_eq(test_daemon_status_u64(&sd.d, "locks"), 1);
	for (i = 0; i < 3; i++)
		close(peers[i]);
	sd_done(&sd);
}
END_TEST

/*
 * The next daemon's configuration applies to the connections it takes over as to new ones:
 * max_clients_per_uid and allow_connect refuse (close) the stored connections beyond them.
 */
START_TEST(test_fdconn_adoption_obeys_the_connection_limits_and_allow_connect)
{
	struct fake_sd sd;
	int socks[3], peers[3], i;

	if (getuid() != 0)
		return;
	sd_init(&sd, "{\"max_clients_per_uid\": 1, \"allow_connect\": {\"uids\": [65534]}}");
	socks[0] = socket_of_uid(NOBODY, NOBODY, &peers[0]);
	socks[1] = socket_of_uid(NOBODY, NOBODY, &peers[1]);
	socks[2] = socket_of_uid(NOBODY - 1, NOBODY - 1, &peers[2]);
	sd_spawn_forged(&sd, FORGED_ENTRY(1, 65534, "", "") "," FORGED_ENTRY(2, 65534, "", "") ","
	                FORGED_ENTRY(3, 65533, "", ""), socks, 3);
	log_expect(&sd, "refusing the descriptor stored as \"conn/2\": too many connections from "
	           "uid 65534 (max_clients_per_uid is 1)");
	log_expect(&sd, "refusing the descriptor stored as \"conn/3\": uid 65533 may not connect "
	           "(allow_connect)");
	raw_ping(peers[0], 5);
	expect_closed(peers[1], "the connection beyond max_clients_per_uid");
	expect_closed(peers[2], "the connection allow_connect refuses");
	ck_assert_uint_eq(test_daemon_status_u64(&sd.d, "clients"), 2);
	for (i = 0; i < 3; i++)
		close(peers[i]);
	sd_done(&sd);
}
END_TEST

/*
 * max_grants_per_client and max_locks_per_client of the new configuration hold for the
 * connections taken over: one holding more is closed (and reconnects to ask again).
 */
START_TEST(test_fdconn_adoption_obeys_the_grant_and_lock_limits)
{
	struct fake_sd sd;
	struct test_conn c;
	const cJSON *lock;
	cJSON *reply;
	int pairs[3][2], socks[3], i;

	sd_init(&sd, "{\"max_grants_per_client\": 1, \"max_locks_per_client\": 1}");
	sd_spawn(&sd);
	test_daemon_create(&sd.d, "f", 4096, false);
	sd_stop(&sd, SIGTERM);
	while (sd.nstore > 0)
		store_remove(&sd, sd.store[0].name);
	for (i = 0; i < 3; i++) {
		ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]) == 0);
		socks[i] = pairs[i][0];
	}
	sd_spawn_forged(&sd, FORGED_ENTRY(1, 0, FORGED_LOCK_ID("f", 1) "," FORGED_LOCK_ID("f", 2),
	                                  "") ","
	                FORGED_ENTRY_G(2, 0, 2, FORGED_GRANT("f", 1) "," FORGED_GRANT("f", 2), "",
	                               "") ","
	                FORGED_ENTRY_G(3, 0, 1, FORGED_GRANT("f", 1), FORGED_LOCK_SINCE("f", 3, 1234),
	                               ""), socks, 3);
	log_expect(&sd, "closing the connection stored as \"conn/1\"");
	log_expect(&sd, "closing the connection stored as \"conn/2\"");
	log_expect(&sd, "it holds more grants or locks than max_grants_per_client (1) or "
	           "max_locks_per_client (1) allow");
	log_expect(&sd, "taken over from the previous daemon: 1 grant, 1 lock, 0 subscriptions");
	expect_closed(pairs[0][1], "the connection holding too many locks");
	expect_closed(pairs[1][1], "the connection holding too many grants");
	raw_ping(pairs[2][1], 9);
	ck_assert_uint_eq(test_daemon_status_u64(&sd.d, "locks"), 1);
	ck_assert_uint_eq(test_daemon_status_u64(&sd.d, "grants"), 1);
	/* The lock taken over is as old as it was, not as old as the daemon. */
	test_conn_open_hello(&c, &sd.d);
	reply = test_conn_callf(&c, "{'op':'locks','name':'f'}");
	test_assert_ok(reply);
	lock = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "locks"), 0);
	ck_assert_ptr_nonnull(lock);
	ck_assert_uint_eq(test_json_u64(lock, "since_ms"), 1234);
	cJSON_Delete(reply);
	test_conn_close(&c);
	for (i = 0; i < 3; i++)
		close(pairs[i][1]);
	sd_done(&sd);
}
END_TEST

/* Grants of more bytes than max_bytes_granted_per_client allows are not taken over either. */
START_TEST(test_fdconn_adoption_obeys_max_bytes_granted_per_client)
{
	struct fake_sd sd;
	int pairs[2][2], socks[2], i;

	sd_init(&sd, "{\"max_bytes_granted_per_client\": 8192}");
	sd_spawn(&sd);
	test_daemon_create(&sd.d, "f", 4096, false);
	sd_stop(&sd, SIGTERM);
	while (sd.nstore > 0)
		store_remove(&sd, sd.store[0].name);
	for (i = 0; i < 2; i++) {
		ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]) == 0);
		socks[i] = pairs[i][0];
	}
	sd_spawn_forged(&sd, FORGED_ENTRY_G(1, 0, 3, FORGED_GRANT("f", 1) "," FORGED_GRANT("f", 2)
	                                    "," FORGED_GRANT("f", 3), "", "") ","
	                FORGED_ENTRY_G(2, 0, 2, FORGED_GRANT("f", 1) "," FORGED_GRANT("f", 2), "",
	                               ""), socks, 2);
	log_expect(&sd, "its grants pass max_bytes_granted_per_client (8192)");
	log_expect(&sd, "taken over from the previous daemon: 2 grants, 0 locks, 0 subscriptions");
	expect_closed(pairs[0][1], "the connection holding too many bytes");
	raw_ping(pairs[1][1], 4);
	ck_assert_uint_eq(test_daemon_status_u64(&sd.d, "grants"), 2);
	for (i = 0; i < 2; i++)
		close(pairs[i][1]);
	sd_done(&sd);
}
END_TEST

/*
 * A memfd made non-executable (MFD_NOEXEC_SEAL) stays so whatever the stored state claims:
 * no executable grant, no execute bits.
 */
START_TEST(test_fdstore_state_cannot_make_a_noexec_memfd_executable)
{
	static const char *const names[] = { "state", "anon/jit" };
	struct fake_sd sd;
	struct test_conn c;
	int extra[2];

	extra[1] = memfd_create("mmapd:jit", MFD_CLOEXEC | MFD_ALLOW_SEALING | 0x0008u);
	if (extra[1] < 0 && errno == EINVAL)
		return;   /* a kernel before 6.3: no MFD_NOEXEC_SEAL */
	ck_assert(extra[1] >= 0);
	ck_assert(ftruncate(extra[1], 4096) == 0);
	ck_assert(fcntl(extra[1], F_ADD_SEALS, F_SEAL_SHRINK) == 0);
	extra[0] = state_memfd("{\"version\":1,\"regions\":{\"jit\":{\"uid\":0,\"gid\":0,"
	                       "\"perm\":448,\"policy\":{\"kind\":\"manual\"},\"exec\":true,"
	                       "\"huge\":\"none\"}}}");
	sd_init(&sd, "{\"allow_exec\": true}");
	sd_spawn_with(&sd, extra, names, 2, true);
	close(extra[0]);
	close(extra[1]);
	log_expect(&sd, "restored 1 of 1 anonymous region");
	test_conn_open_hello(&c, &sd.d);
	reply_error(test_conn_callf(&c, "{'op':'open','name':'jit','mode':'rw','exec':true}"),
	            "EACCES", EACCES);
	reply_error(test_conn_callf(&c, "{'op':'chmod','name':'jit','perm':%d}", 0755), "EPERM",
	            EPERM);
	test_conn_close(&c);
	sd_done(&sd);
}
END_TEST

/* Whether process pid has a descriptor whose link contains text (a memfd's name). */
static bool proc_has_fd(pid_t pid, const char *text)
{
	char dir[64], path[64 + 256], link[256];
	bool found = false;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = strstr(link, text) != NULL;
		}
	}
	closedir(d);
	return found;
}

/*
 * A creation of an anonymous region still running when the daemon stops ends after the
 * connections were handed over, and stores the state again: with the handover still in it,
 * or the next daemon would find the stored connections undescribed and close them.
 */
START_TEST(test_fdconn_handover_survives_a_creation_that_ends_after_the_stop)
{
	struct fake_sd sd;
	struct test_sess kept;
	struct test_conn c;
	int64_t deadline;

	sd_init(&sd, NULL);
	sd_spawn(&sd);
	test_daemon_create(&sd.d, "file", 4096, false);
	test_sess_start(&kept, &sd.d, "kept");
	(void)test_sess_ok(&kept, "open file rw");
	(void)test_sess_ok(&kept, "lock file 0 8 exclusive");
	/* Big enough that reserving its memory is still under way when the stop comes. */
	test_conn_open_hello(&c, &sd.d);
	(void)test_conn_sendf(&c, "{'op':'open','name':'big','mode':'rw','create':true,"
	                      "'anonymous':true,'size':%llu}", 1ull << 30);
	deadline = test_now_ms() + TEST_WAIT_MS;
	while (!proc_has_fd(sd.d.pid, "mmapd:big") && test_now_ms() < deadline)
		usleep(200);
	sd_stop(&sd, SIGTERM);
	log_expect(&sd, "handed 1 client connection over to the next daemon");
	log_expect(&sd, "created anonymous region 'big'");
	test_conn_close(&c);

	sd_spawn(&sd);
	log_expect(&sd, "taken over from the previous daemon: 1 grant, 1 lock, 0 subscriptions");
	(void)test_sess_ok(&kept, "ping");
	test_sess_expect_no_event(&kept, 100);
	ck_assert_int_eq(test_sess_end(&kept), 0);
	sd_done(&sd);
}
END_TEST

/* Writes v to /proc/sys/vm/nr_hugepages (as root). Returns the old value, or -1. */
static long hugepages_set(long v)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r+e");
	long old = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &old) != 1 || fseek(f, 0, SEEK_SET) != 0 ||
	    fprintf(f, "%ld\n", v < 0 ? old + 1 : v) < 0)
		old = -1;
	/* The kernel's refusal (no memory for the page) comes with the write, at fclose. */
	if (fclose(f) != 0)
		old = -1;
	return old;
}

START_TEST(test_fdstore_exec_and_huge_pages_of_anonymous_regions_come_back)
{
	struct fake_sd sd;
	struct test_conn c;
	const cJSON *region;
	char huge[16];
	cJSON *st;
	long old = hugepages_set(-1);   /* one huge page for this test, where root may */

	sd_init(&sd, "{\"allow_exec\": true}");
	sd_spawn(&sd);
	test_conn_open_hello(&c, &sd.d);
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'x','mode':'rw','create':true,"
	                              "'size':4096,'anonymous':true,'exec':true,'perm':%d}", 0750));
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'n','mode':'rw','create':true,"
	                              "'size':4096,'anonymous':true}"));
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'h','mode':'rw','create':true,"
	                              "'size':4096,'anonymous':true,'huge':true}"));
	test_conn_close(&c);
	st = test_daemon_stat(&sd.d, "h", &region);
	snprintf(huge, sizeof(huge), "%s", test_json_str(region, "huge"));
	cJSON_Delete(st);
	ck_assert_str_eq(huge, old >= 0 ? "hugetlb" : "thp");
	sd_pump(&sd, 0, false);
	sd_stop(&sd, SIGKILL);
	sd_spawn(&sd);
	log_expect(&sd, "restored 3 of 3 anonymous regions");

	test_conn_open_hello(&c, &sd.d);
	test_reply_ok(test_conn_callf(&c, "{'op':'open','name':'x','exec':true}"));
	reply_error(test_conn_callf(&c, "{'op':'chmod','name':'n','perm':%d}", 0770), "EPERM",
	            EPERM);
	test_reply_ok(test_conn_callf(&c, "{'op':'chmod','name':'x','perm':%d}", 0700));
	test_conn_close(&c);
	st = test_daemon_stat(&sd.d, "h", &region);
	ck_assert_str_eq(test_json_str(region, "huge"), huge);
	cJSON_Delete(st);
	sd_done(&sd);
	if (old >= 0)
		hugepages_set(old);
}
END_TEST

static Suite *fdstore_suite(void)
{
	Suite *s = suite_create("fdstore");
	TCase *tc = tcase_create("fdstore");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_fdstore_anonymous_region_survives_sigterm_and_sigkill_restarts);
	tcase_add_test(tc, test_fdstore_deleted_region_leaves_the_store);
	tcase_add_test(tc, test_fdstore_refuses_descriptors_that_are_not_mmapd_memfds);
	tcase_add_test(tc, test_fdstore_ready_comes_before_the_first_client_is_served);
	tcase_add_test(tc, test_fdstore_loss_of_anonymous_regions_is_logged_without_a_store);
	tcase_add_test(tc, test_fdstore_watchdog_keepalives_arrive_at_half_the_interval);
	tcase_add_test(tc, test_fdconn_client_keeps_its_connection_grants_locks_and_subscription);
	tcase_add_test(tc, test_fdconn_external_subscription_survives_the_restart);
	tcase_add_test(tc, test_fdconn_fast_path_locks_survive_the_restart);
	tcase_add_test(tc, test_fdconn_peer_that_died_during_the_restart_is_dropped);
	tcase_add_test(tc, test_fdconn_connection_whose_region_is_gone_is_closed);
	tcase_add_test(tc, test_fdconn_forged_connections_are_refused);
	tcase_add_test(tc, test_fdconn_lock_or_subscription_without_read_access_is_not_adopted);
	tcase_add_test(tc, test_fdconn_adoption_obeys_the_connection_limits_and_allow_connect);
	tcase_add_test(tc, test_fdconn_adoption_obeys_the_grant_and_lock_limits);
	tcase_add_test(tc, test_fdconn_adoption_obeys_max_bytes_granted_per_client);
	tcase_add_test(tc, test_fdstore_state_cannot_make_a_noexec_memfd_executable);
	tcase_add_test(tc, test_fdconn_handover_survives_a_creation_that_ends_after_the_stop);
	tcase_add_test(tc, test_fdstore_exec_and_huge_pages_of_anonymous_regions_come_back);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(fdstore_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
