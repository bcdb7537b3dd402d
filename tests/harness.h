/* SPDX-License-Identifier: MIT */
/*
 * Test harness for the end-to-end suites: starts a real mmapd ($MMAPD_BIN) on a fresh temporary
 * socket and data directory, stops it (SIGTERM, exit status 0 asserted) and removes the
 * directory; talks to it over raw connections (frames with descriptors, through proto/), and
 * runs real client processes ($MMAPD_TESTCLIENT, $MMAPCTL_BIN) with their output captured.
 *
 * Every helper asserts with Check's ck_assert on anything unexpected, so a test reads as a
 * sequence of steps. The helpers never leave a descriptor or a child behind when they return;
 * the checked fixture test_fd_setup/test_fd_teardown proves a test did not either.
 */
#ifndef MMAPD_TESTS_HARNESS_H
#define MMAPD_TESTS_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>
#include <check.h>

#include "fdpass.h"
#include "frame.h"

/* How long a helper waits for the daemon before failing the test. */
#define TEST_WAIT_MS 5000

#define TEST_NOBODY 65534u   /* uid and gid of nobody/nogroup on Debian, for test_conn_open_as */

/* ---- the daemon ------------------------------------------------------------------------ */

#define TEST_PATH_MAX 256   /* the paths below are short: /tmp/mmapd-test.XXXXXX/d.XXXXXX/... */
#define TEST_DAEMON_MAX_ENV 4

struct test_daemon {
	pid_t pid;
	char dir[TEST_PATH_MAX];     /* the test_mkdtemp() directory holding everything below */
	char sock[TEST_PATH_MAX];    /* <dir>/s */
	char data[TEST_PATH_MAX];    /* <dir>/data */
	char config[TEST_PATH_MAX];  /* <dir>/cfg.json, or "" */
	/* Extra environment of the daemon ("NAME=VALUE"), kept for restarts. */
	char env[TEST_DAEMON_MAX_ENV][TEST_PATH_MAX];
	size_t nenv;
	/* Run mmapd as uid:gid (test_daemon_run_as), not as the test's user. */
	bool run_as;
	uid_t uid;
	gid_t gid;
};

/*
 * Creates a fresh temporary directory under the suite's root (removed, with everything in it,
 * when test_run_suite() returns, even after failed tests) and stores its path in buf.
 */
void test_mkdtemp(char *buf, size_t size);

/*
 * Creates a temporary directory, writes config_json (may be NULL: no --config) to cfg.json and
 * starts mmapd on <dir>/s with data directory <dir>/data. Returns once the socket accepts
 * connections; fails the test if it does not within TEST_WAIT_MS or if mmapd exits.
 */
void test_daemon_start(struct test_daemon *d, const char *config_json);

/*
 * test_daemon_start() in two steps, for tests that prepare something first (an environment
 * variable, a file system mounted on the data directory): test_daemon_init() makes the
 * directory and config exactly as test_daemon_start() does, test_daemon_launch() starts mmapd.
 */
void test_daemon_init(struct test_daemon *d, const char *config_json);
void test_daemon_launch(struct test_daemon *d);
/*
 * test_daemon_start() for tests that speak as other users: the temporary directories are
 * opened (0711) so that any uid reaches the socket. config_json should set "socket_mode".
 */
void test_daemon_start_shared(struct test_daemon *d, const char *config_json);
/*
 * Lets other uids reach the daemon's socket: makes its directory and the suite's root 0711
 * (the test directories are 0700).
 */
void test_daemon_open_dirs(const struct test_daemon *d);
/*
 * Between test_daemon_init() and test_daemon_launch(): mmapd will run as uid:gid (the test
 * must be root). Gives it its directory and data directory, lets it read the config, and
 * opens the directories above (test_daemon_open_dirs).
 */
void test_daemon_run_as(struct test_daemon *d, uid_t uid, gid_t gid);
/* Adds "NAME=VALUE" to the daemon's environment (for this and every later (re)start). */
void test_daemon_setenv(struct test_daemon *d, const char *name_value);

/*
 * Kills mmapd with SIGKILL and reaps it (asserting that the signal ended it); the directory
 * stays, for test_daemon_restart() or test_daemon_stop().
 */
void test_daemon_kill(struct test_daemon *d);

/* The daemon's resident set size in KiB (VmRSS of /proc/PID/status). */
uint64_t test_daemon_rss_kib(const struct test_daemon *d);

/*
 * Sends SIGTERM, waits for mmapd to exit (asserting exit status 0 within TEST_WAIT_MS; it is
 * killed if it does not), then removes the temporary directory. Accepts a daemon that was
 * already reaped (pid 0): only the directory is removed.
 */
void test_daemon_stop(struct test_daemon *d);

/*
 * Starts mmapd again on the same directory, socket and config after it was stopped or killed
 * and reaped (d->pid == 0); returns once the socket accepts connections.
 */
void test_daemon_restart(struct test_daemon *d);

/*
 * Starts mmapd with explicit paths (config may be NULL) and returns its pid at once, without
 * waiting for the socket. For tests of start-up itself.
 */
pid_t test_daemon_spawn(const char *sock, const char *data, const char *config);

/*
 * Waits up to timeout_ms for pid to exit. Returns its wait status, or -1 on timeout (the
 * process is left running).
 */
int test_wait_pid(pid_t pid, int timeout_ms);
/*
 * Waits up to timeout_ms for pid, a process the test forked, and asserts that it exited with
 * status 0. One still running then is killed and reaped, and the test fails.
 */
void test_child_wait(pid_t pid, int timeout_ms);

/* ---- raw connections ------------------------------------------------------------------- */

#define TEST_CONN_MAX_FDS 8

struct test_conn {
	int fd;
	struct frame_reader reader;
	struct fd_queue queue;
	uint64_t next_id;
	/* Descriptors claimed by the last frame received ("fds": n); owned by the connection
	 * until taken with test_conn_take_fd(), closed at the next receive otherwise. */
	int fds[TEST_CONN_MAX_FDS];
	size_t nfds;
	/* Events read while waiting for a reply (test_conn_reply), oldest first. */
	cJSON **events;
	size_t nevents, events_cap;
};

/* A socket connected to path, or -errno (-ECONNREFUSED while nothing listens there yet). */
int test_try_connect(const char *path);
/* A connected socket to the daemon (no hello). Returns the descriptor; fails the test if the
 * connection is refused. */
int test_connect_raw(const struct test_daemon *d);

/* Connects (no hello). The connection must be closed with test_conn_close(). */
void test_conn_open(struct test_conn *c, const struct test_daemon *d);
/*
 * Connects (no hello) as uid:gid with no supplementary groups: a forked child drops to them
 * (setgroups, setgid, setuid) just to connect() a socket made here, and the daemon records the
 * connecting process's credentials. Needs root, and a daemon from test_daemon_start_shared().
 */
void test_conn_open_as(struct test_conn *c, const struct test_daemon *d, uid_t uid, gid_t gid);
/* test_conn_open_as, then a successful hello (version 1). */
void test_conn_open_hello_as(struct test_conn *c, const struct test_daemon *d, uid_t uid,
                             gid_t gid);
/* Connects and performs a successful hello (version 1). */
void test_conn_open_hello(struct test_conn *c, const struct test_daemon *d);
/*
 * Closes the socket and every descriptor the connection still holds. Asserts that no received
 * descriptor was left unclaimed by a frame (the daemon sent more fds than its frames said).
 */
void test_conn_close(struct test_conn *c);

/* Sends len arbitrary bytes. Returns 0, or -errno (EPIPE/ECONNRESET once the daemon closed). */
int test_conn_send_raw(struct test_conn *c, const void *buf, size_t len);
/* Writes a frame (the 4-byte big-endian header for len, then payload) at buf, which has room
 * for len + FRAME_HEADER_SIZE bytes. Returns the bytes written. */
size_t test_frame_put(void *buf, const void *payload, size_t len);
/* Sends a frame: the 4-byte big-endian header for len, then payload. Returns as above. */
int test_conn_send_frame(struct test_conn *c, const void *payload, size_t len);
/* Sends a string (NUL excluded) as one frame; asserts it went out whole. */
void test_conn_send_text(struct test_conn *c, const char *text);

/*
 * Receives one frame within timeout_ms. Returns 1 with *ret_obj set (a JSON object; caller
 * frees), 0 at end of stream, -ETIMEDOUT, or another -errno (-ECONNRESET, -EBADMSG when the
 * frame is not one JSON object, -EPROTO on a framing error or when the frame claims
 * descriptors that did not arrive). Descriptors the frame claims ("fds": n, except in the
 * status reply, where "fds" counts the daemon's descriptors) are in c->fds.
 */
int test_conn_recv(struct test_conn *c, int timeout_ms, cJSON **ret_obj);
/* Like test_conn_recv but asserts a frame arrived and returns it. */
cJSON *test_conn_recv_frame(struct test_conn *c);
/* Asserts that the daemon closes the connection within timeout_ms, reading no frame first. */
void test_conn_expect_eof(struct test_conn *c, int timeout_ms);
/* Moves the first descriptor of the last frame to the caller (who closes it). Asserts one. */
int test_conn_take_fd(struct test_conn *c);

/*
 * Sends text as one frame and returns the next frame that carries an "id" (a reply), failing
 * the test on timeout, EOF or any event in between.
 */
cJSON *test_conn_request_text(struct test_conn *c, const char *text);
/*
 * Sets "id" in req (consumed) to a fresh id, sends it and returns the reply with that id.
 * Asserts the reply echoes the id.
 */
cJSON *test_conn_request(struct test_conn *c, cJSON *req);
/* Builds {"op": op} and sends it through test_conn_request(). */
cJSON *test_conn_request_op(struct test_conn *c, const char *op);
/* Performs hello with the given version; returns the reply. */
cJSON *test_conn_hello_version(struct test_conn *c, uint64_t version);

/*
 * Requests written as printf formats of a JSON object without "id", in which ' stands for "
 * (so "{'op':'lock','name':'%s'}" needs no escapes); the id is added in front.
 * test_conn_sendf() sends and returns the id. test_conn_reply() waits up to timeout_ms for the
 * reply to id, keeping the events that come first for test_conn_event(); a reply to another id
 * fails the test. test_conn_callf() is both, with TEST_WAIT_MS.
 */
uint64_t test_conn_sendf(struct test_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
cJSON *test_conn_reply(struct test_conn *c, uint64_t id, int timeout_ms);
cJSON *test_conn_callf(struct test_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * The next event: the oldest kept one, or the next frame within timeout_ms (asserted to be an
 * event, not a reply). NULL on timeout. The caller frees it.
 */
cJSON *test_conn_event(struct test_conn *c, int timeout_ms);
/* Like test_conn_event, but asserts an event came and that its "event" is name. */
cJSON *test_conn_expect_event(struct test_conn *c, const char *name, int timeout_ms);
/*
 * Asserts that no event is kept and none arrives before the reply to a ping (which orders
 * everything the daemon had queued for c before it) nor within ms after it.
 */
void test_conn_expect_no_event(struct test_conn *c, int ms);
/* Subscribes c to name; asserts ok. Returns the reply's "seq". */
uint64_t test_conn_subscribe(struct test_conn *c, const char *name);
/* Reports a change of len bytes at off of name; asserts ok. Returns the reply's "seq". */
uint64_t test_conn_changed(struct test_conn *c, const char *name, uint64_t off, uint64_t len);
/* Opens name with mode ("ro", "rw", "cow") on c, closes the descriptor; returns the handle. */
uint64_t test_conn_grant(struct test_conn *c, const char *name, const char *mode);
/*
 * Asks c's control page of grant handle (the control op), asserts a slot came with it, maps
 * the page read-write shared and asserts its header; *ret_fd is its descriptor (the caller's,
 * as is the mapping of CTLPAGE_SIZE bytes).
 */
void *test_conn_control(struct test_conn *c, uint64_t handle, int *ret_fd);
/* A printable copy of obj for messages (never freed: for failure messages). */
const char *test_describe(const cJSON *obj);

/* ---- assertions on replies --------------------------------------------------------------- */

/* Asserts reply is {"ok": true, ...} (prints the error otherwise). */
void test_assert_ok(const cJSON *reply);
/* Asserts reply is {"ok": false, "error": {"code": code, "errno": err, "message": "<text>"}}. */
void test_assert_error(const cJSON *reply, const char *code, int err);
/* test_assert_ok(reply), then frees reply. */
void test_reply_ok(cJSON *reply);
/*
 * True when the tests run as root (they can then act as other users); otherwise says on stderr
 * that the calling test is skipped and returns false.
 */
bool test_is_root(void);
/*
 * test_assert_error(reply, code, err) and, unless text is NULL, that the error's message
 * contains text; then frees reply.
 */
void test_reply_error(cJSON *reply, const char *code, int err, const char *text);
/* Asserts obj is {"event": "error", "error": {"code": code, "errno": err, ...}} without id. */
void test_assert_error_event(const cJSON *obj, const char *code, int err);
/* Asserts reply has "id": null. */
void test_assert_id_null(const cJSON *reply);
/* Asserts reply has "id": id (an integer). */
void test_assert_id(const cJSON *reply, uint64_t id);
/* The integer at key of obj (asserted present and a number with no fraction). */
uint64_t test_json_u64(const cJSON *obj, const char *key);
/* The string at key of obj (asserted present; borrowed). */
const char *test_json_str(const cJSON *obj, const char *key);
/* The boolean at key of obj (asserted present and true/false). */
bool test_json_bool(const cJSON *obj, const char *key);

/* ---- daemon-level helpers ---------------------------------------------------------------- */

/* Opens a fresh connection, says hello, pings, asserts ok, closes. */
void test_daemon_assert_alive(const struct test_daemon *d);
/* The status reply from a fresh connection (caller frees). That connection counts itself. */
cJSON *test_daemon_status(const struct test_daemon *d);
/* One figure of status ("fds", "grants", "clients", ...) from a fresh connection. */
uint64_t test_daemon_status_u64(const struct test_daemon *d, const char *key);
/*
 * Polls status from fresh connections until key equals want (within TEST_WAIT_MS), then
 * returns the last value read (the caller asserts it equals want).
 */
uint64_t test_daemon_wait_status(const struct test_daemon *d, const char *key, uint64_t want);
/* The stats reply from a fresh connection (caller frees). */
cJSON *test_daemon_stats(const struct test_daemon *d);
/* One top-level figure of the stats reply, from a fresh connection. */
uint64_t test_daemon_stats_u64(const struct test_daemon *d, const char *key);
/* The daemon's count of requests of op so far (the stats reply's "requests"), from a fresh
 * connection (whose hello counts itself). */
uint64_t test_daemon_requests(const struct test_daemon *d, const char *op);
/* The stat reply's region object for name (caller frees the returned reply; region borrowed). */
cJSON *test_daemon_stat(const struct test_daemon *d, const char *name, const cJSON **ret_region);
/* Creates a file (or anonymous) region of size bytes through a raw connection; asserts ok. */
void test_daemon_create(const struct test_daemon *d, const char *name, uint64_t size, bool anonymous);
/* Creates a file region of size bytes with mode perm (e.g. 0666) through a raw connection. */
void test_daemon_create_perm(const struct test_daemon *d, const char *name, uint64_t size,
                            unsigned perm);
/* Deletes a region; asserts ok. */
void test_daemon_delete(const struct test_daemon *d, const char *name);

/* ---- libmmapd clients -------------------------------------------------------------------- */

struct mmapd_client;

/*
 * mmapd_connect() to d's socket with hello name client_name; asserts it succeeded (printing
 * libmmapd's message otherwise). The caller ends it with mmapd_disconnect().
 */
struct mmapd_client *test_client_connect(const struct test_daemon *d, const char *client_name);

/* ---- client processes -------------------------------------------------------------------- */

struct test_proc {
	pid_t pid;
	int in;   /* write end of the child's stdin, or -1 */
	int out;  /* read end of the child's stdout, or -1 */
	char buf[4096];
	size_t len;
};

/*
 * Starts argv[0] (a path) with argv, MMAPD_SOCKET set to d's socket, stdin and stdout on pipes.
 * The child's stderr is the test's.
 */
void test_proc_spawn(struct test_proc *p, const struct test_daemon *d, char *const argv[]);
/* test_proc_spawn() with the child's stderr on the stdout pipe too. */
void test_proc_spawn_merged(struct test_proc *p, const struct test_daemon *d, char *const argv[]);
/* Starts $MMAPD_TESTCLIENT with the given arguments (NULL-terminated). */
void test_proc_spawn_client(struct test_proc *p, const struct test_daemon *d, ...);
/*
 * Reads one line of the child's stdout (without the newline) into line. Returns 1, 0 at end of
 * stream, -ETIMEDOUT after timeout_ms.
 */
int test_proc_readline(struct test_proc *p, char *line, size_t size, int timeout_ms);
/* Asserts the next line is exactly want. */
void test_proc_expect_line(struct test_proc *p, const char *want);
/* Writes one line to the child's stdin. */
void test_proc_writeline(struct test_proc *p, const char *line);
/* Closes the child's stdin (it sees end of file). */
void test_proc_close_stdin(struct test_proc *p);
/* Sends sig to the child. */
void test_proc_kill(struct test_proc *p, int sig);
/*
 * Closes the pipes, waits for the child (killing it after TEST_WAIT_MS) and returns its exit
 * status, or 128 + signal number if a signal ended it.
 */
int test_proc_wait(struct test_proc *p);

/*
 * Runs argv to completion with MMAPD_SOCKET set; its stdout (up to outsize - 1 bytes) goes to
 * out, NUL-terminated. Returns the exit status (or 128 + signal).
 */
int test_run(const struct test_daemon *d, char *out, size_t outsize, char *const argv[]);
/* test_run() with the child's stderr in out too, interleaved as written. */
int test_run_merged(const struct test_daemon *d, char *out, size_t outsize, char *const argv[]);
/* test_run on $MMAPD_TESTCLIENT with the given arguments (NULL-terminated). */
int test_run_client(const struct test_daemon *d, char *out, size_t outsize, ...);
/* test_run on $MMAPCTL_BIN with the given arguments (NULL-terminated). */
int test_run_ctl(const struct test_daemon *d, char *out, size_t outsize, ...);
/* test_run_ctl() with stderr in out too (test_run_merged). */
int test_run_ctl_merged(const struct test_daemon *d, char *out, size_t outsize, ...);
/*
 * test_run_ctl on d with the given arguments (NULL added) into the array out; asserts the exit
 * status is want_status (the message names the arguments and the output).
 */
#define TEST_CTL(d, want_status, out, ...)                                                      \
	do {                                                                                    \
		int st_ = test_run_ctl(d, out, sizeof(out), __VA_ARGS__, (char *)NULL);         \
		ck_assert_msg(st_ == (want_status), "mmapctl %s: exit status %d, expected %d "  \
		              "(output \"%s\")", #__VA_ARGS__, st_, (want_status), out);        \
	} while (0)

/* TEST_CTL() with mmapctl's stderr in out too. */
#define TEST_CTL_MERGED(d, want_status, out, ...)                                               \
	do {                                                                                    \
		int st_ = test_run_ctl_merged(d, out, sizeof(out), __VA_ARGS__, (char *)NULL);  \
		ck_assert_msg(st_ == (want_status), "mmapctl %s: exit status %d, expected %d "  \
		              "(output \"%s\")", #__VA_ARGS__, st_, (want_status), out);        \
	} while (0)

/*
 * Session processes: "$MMAPD_TESTCLIENT session", a libmmapd connection driven line by line
 * (commands and output formats at the top of tests/mmapd-testclient.c). Result lines ("= ...")
 * answer commands in order; event lines ("! ...") are kept, oldest first, for the
 * test_sess_*event functions, whenever they were read.
 */
#define TEST_SESS_MAX_EVENTS 4096

struct test_sess {
	struct test_proc p;
	pid_t pid;                 /* the process (also p.pid until it is reaped) */
	char *events[TEST_SESS_MAX_EVENTS];   /* without the "! " */
	size_t nevents;
	char result[4096];         /* the last result line, without the "= " */
};

/* Starts a session whose hello names it client_name (NULL: "mmapd-testclient"). */
void test_sess_start(struct test_sess *s, const struct test_daemon *d, const char *client_name);
/* Sends one command line (a printf format) without waiting for its result. */
void test_sess_send(struct test_sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * The next result line within timeout_ms (without "= "; borrowed until the next call), keeping
 * events. Fails the test on timeout or if the process ends.
 */
const char *test_sess_result(struct test_sess *s, int timeout_ms);
/* Sends a command and returns its result (TEST_WAIT_MS). */
const char *test_sess_cmd(struct test_sess *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Sends a command, asserts its result is "ok..." and returns what follows "ok" ("" or " k=v..."). */
const char *test_sess_ok(struct test_sess *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reads output for up to timeout_ms, keeping events, until one is kept. Returns it (caller
 * frees) or NULL on timeout. */
char *test_sess_event(struct test_sess *s, int timeout_ms);
/* Asserts that the next event (within TEST_WAIT_MS) is exactly want. */
void test_sess_expect_event(struct test_sess *s, const char *want);
/*
 * Removes and returns the first kept or arriving event that starts with prefix (within
 * timeout_ms; NULL after it), leaving the others in place.
 */
char *test_sess_find_event(struct test_sess *s, const char *prefix, int timeout_ms);
/* Asserts that no event is kept and none arrives within ms (after a ping round trip). */
void test_sess_expect_no_event(struct test_sess *s, int ms);
/* A number from a result or event line: the digits after "key=" (asserted present). */
uint64_t test_line_u64(const char *line, const char *key);
/*
 * Ends the session (end of stdin), waits for it and frees the kept events. Returns the exit
 * status as test_proc_wait() does (128 + signal). Asserts it was not SIGBUS or SIGSEGV.
 */
int test_sess_end(struct test_sess *s);
/* Kills the session with sig, reaps it and frees the kept events; returns as above. */
int test_sess_kill(struct test_sess *s, int sig);

/*
 * Asserts that text is a Prometheus text exposition that follows the naming conventions: every
 * line a "# HELP name ..." and "# TYPE name counter|gauge" pair, or a sample
 * `name{label="value",...} number` of a metric typed before it; names mmapd_* (never the
 * process_* of node_exporter, which relays them); counters, and only counters, end in _total.
 * Returns the number of samples.
 */
size_t test_assert_prometheus(const char *text);

/* The value of an environment variable the suite needs (asserted set, absolute path). */
const char *test_env_path(const char *var);

/* ---- leak checking ----------------------------------------------------------------------- */

/* Checked fixture: records fd_count(); test_fd_teardown asserts the count is unchanged and
 * that no child of the test is left. */
void test_fd_setup(void);
void test_fd_teardown(void);

/*
 * Runs a suite with CK_NORMAL output inside a fresh temporary root directory (see
 * test_mkdtemp), then kills any daemon a failed test left and removes the root. Returns the
 * number of failed tests.
 */
int test_run_suite(Suite *s);

/* Removes a directory tree (no symlinks followed). Returns 0 or -errno. */
int test_rmtree(const char *path);
/* Monotonic milliseconds. */
int64_t test_now_ms(void);

#endif
