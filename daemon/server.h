/* SPDX-License-Identifier: MIT */
/*
 * The server: everything one running mmapd owns. It sets up the data directory and the
 * listening socket, accepts connections (a uv_poll_t on the listening socket and our own
 * accept4, never libuv's stream machinery), enforces max_clients, handles signals, and runs
 * the orderly shutdown: stop listening, hand the connections that can be over to the next
 * daemon through the service manager's fd store (fdconn.h), tell every other client, let
 * output drain for a moment,
 * let thread-pool work finish, free everything. Work for the thread pool goes through
 * state_job_start, which counts it, so that the shutdown waits for every job.
 */
#ifndef MMAPD_DAEMON_SERVER_H
#define MMAPD_DAEMON_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config.h"
#include "htab.h"
#include "state.h"

struct sdlisten;

/*
 * Prepares the data directory (created if missing, stale temporary files removed), the
 * anonymous regions the service manager kept in its fd store (fdstore.c) and the listening
 * socket: the one the service manager passed (socket activation), else the socket at the
 * configured path (parent directory created if missing, a stale socket replaced, another
 * live daemon refused). Everything in passed is consumed, whatever the result. Logs the
 * reason of a failure. Returns 0 or -errno.
 */
int server_init(struct server *s, uv_loop_t *loop, const struct config *cfg,
                struct sdlisten *passed);

/* Starts accepting and watching signals. Returns 0 or a negative libuv/errno error. */
int server_start(struct server *s);

/* Begins the orderly shutdown (as on SIGTERM). Idempotent. */
void server_stop(struct server *s);

/* Called when a connection closed or a job finished: ends the shutdown when all is quiet. */
void server_check_finished(struct server *s);

/* Frees what the server still holds once the loop has stopped. Accepts a half-set-up server. */
void server_done(struct server *s);

/*
 * Tells the service manager (if any) the daemon's state in STATUS=, when it changed since
 * the last report or when force is set (then with READY=1, ending a reload).
 */
void server_sd_report(struct server *s, bool force);

#endif
