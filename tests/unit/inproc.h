/* SPDX-License-Identifier: MIT */
/*
 * The real server in-process, for unit suites of daemon modules that need connections,
 * regions or the data directory (lock, notify, meta): server_init on a private libuv loop
 * and a fresh temporary data directory, without main.c and without accepting on the socket,
 * as tests/fuzz/fuzz_ops.c runs it. Connections are made with conn_new() over socketpairs;
 * the test holds the client end, writes requests to it and reads the daemon's frames back,
 * running the loop while it waits. The module under test is then driven through its own
 * header with the server's structs (a conn, a region from region_lookup).
 *
 * Every helper asserts with ck_assert, and inproc_stop() leaves no descriptor behind, so
 * the suites keep the fd-leak fixture (test_fd_setup/test_fd_teardown).
 */
#ifndef MMAPD_TESTS_UNIT_INPROC_H
#define MMAPD_TESTS_UNIT_INPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "fdpass.h"
#include "frame.h"
#include "harness.h"
#include "server.h"

struct conn;
struct region;

struct inproc {
	uv_loop_t loop;
	struct config cfg;
	struct server srv;
	char dir[TEST_PATH_MAX];      /* holds data/ and the socket path s */
	char data[TEST_PATH_MAX + 8];
	bool started;
};

#define INPROC_MAX_KEPT 64

struct inproc_client {
	struct inproc *p;
	int fd;                       /* the client end */
	struct conn *conn;            /* the daemon's end, referenced */
	struct frame_reader reader;
	struct fd_queue fdq;          /* descriptors received; closed after each read */
	uint64_t next_id;
	cJSON *kept[INPROC_MAX_KEPT]; /* frames read while waiting for another, oldest first */
	size_t nkept;
};

/*
 * Makes libuv set up what it keeps for the whole process (the signal lock pipe, made at the
 * first uv_loop_init), so that the fd-leak fixture does not count it: call it before
 * test_fd_setup().
 */
void inproc_prime(void);

/*
 * Fills p->cfg for a server on a fresh temporary directory (fd store off, log level error,
 * no hello timeout); the caller may change p->cfg before inproc_start().
 */
void inproc_config(struct inproc *p);
/* server_init on p->cfg; asserts it succeeded. */
void inproc_start(struct inproc *p);
/* inproc_config() and inproc_start(). */
void inproc_setup(struct inproc *p);
/*
 * Stops the server as on SIGTERM, runs the loop until it finished, frees it and closes the
 * loop (asserting no handle is left), and frees the config. Clients must be closed first.
 */
void inproc_stop(struct inproc *p);
/* Stops the server as inproc_stop() does and starts a new one on the same config and
 * data directory (a daemon restart). */
void inproc_restart(struct inproc *p);
/* Runs the loop until nothing happens for a few turns and no thread-pool work is pending. */
void inproc_run(struct inproc *p);

/* A connection from uid (gid the same) over a socketpair, made with conn_new(). */
void inproc_connect(struct inproc *p, struct inproc_client *cl, uid_t uid);
/* inproc_connect() and a successful hello. */
void inproc_connect_hello(struct inproc *p, struct inproc_client *cl, const char *name);
/*
 * The client closes its end; the loop runs until the daemon closed the connection. Frees
 * what the client kept.
 */
void inproc_disconnect(struct inproc_client *cl);

/* Sends a request written as a printf format with ' for " (no "id": one is added first).
 * Returns the id. */
uint64_t inproc_sendf(struct inproc_client *cl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The next frame (kept ones first) within timeout_ms, running the loop; NULL on timeout. */
cJSON *inproc_recv(struct inproc_client *cl, int timeout_ms);
/* The reply with "id" id (frames before it are kept), asserted to arrive. */
cJSON *inproc_reply(struct inproc_client *cl, uint64_t id);
/* inproc_sendf, then inproc_reply. */
cJSON *inproc_callf(struct inproc_client *cl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The next frame that carries "event" (replies before it are kept), asserted to arrive. */
cJSON *inproc_event(struct inproc_client *cl);
/* Runs the loop until idle, then asserts no frame came (or is kept). */
void inproc_expect_nothing(struct inproc_client *cl);

/* Creates anonymous region name of size bytes through cl (open, create); returns it. */
struct region *inproc_create_region(struct inproc_client *cl, const char *name, uint64_t size);

#endif
