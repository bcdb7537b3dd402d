/* SPDX-License-Identifier: MIT */
/*
 * Layer 4 of libmmapd (see internal.h): building requests (request.c) and the call
 * multiplexer (call.c). Included by request.c, call.c and domain.h.
 */
#ifndef MMAPD_CLIENT_CALL_H
#define MMAPD_CLIENT_CALL_H

#include "socket.h"

/* ---- request.c ---- */

/*
 * Checks a region name before any round trip. Returns 0, -EINVAL or -ENAMETOOLONG with the
 * thread's message set to the reason.
 */
int region_name_check(const char *name);
/*
 * Builds {"op": op} plus "name" when name is not NULL. Returns NULL on allocation failure
 * (with the thread's message set).
 */
cJSON *request_new(const char *op, const char *name);
/*
 * Checks client and name (may be NULL when the op takes none), then builds the request as
 * request_new does in *ret_req. Returns 0 or a negative errno (message set).
 */
int request_start(struct mmapd_client *client, const char *op, const char *name,
                  cJSON **ret_req);
/* request_start for the ops about one region: a NULL name is -EINVAL here, not a round trip. */
int request_start_region(struct mmapd_client *client, const char *op, const char *name,
                         cJSON **ret_req);
/*
 * Adds an integer field. Returns 0, -EINVAL (above 2^53-1, which JSON numbers cannot carry
 * exactly) or -ENOMEM, with the thread's message set.
 */
int request_add_u64(cJSON *req, const char *key, uint64_t value);
/* For a failed cJSON_Add*: sets the thread's message and returns -ENOMEM. */
int request_nomem(void);

/* ---- call.c ---- */

/*
 * Sends call->req and waits for its reply, reading for other threads meanwhile when nobody
 * else reads. A broken connection is first re-made (unless CALL_INTERNAL or CALL_PINNED, or
 * reconnection is off). Returns 0 with call->reply (and call->fd) set, or a negative errno
 * with the thread's message set: the daemon's error, the connection's (-ECONNRESET,
 * -ESHUTDOWN, an error event's code, -EPROTO), -ENOTCONN after mmapd_disconnect(), -ESTALE
 * for a CALL_PINNED call whose connection is gone, -ENOMEM. Call without client->lock.
 * With CALL_DETACHED it returns 0 as soon as the request is handed over; an error return
 * means it never was (on_done will not run and the caller keeps the call). With CALL_NOWAIT
 * too it never waits: not for a reconnection (-EAGAIN while one runs, the connection's error
 * when it is broken), nor for send_lock or room in the socket (the frame is queued, sendq.c).
 */
int client_run(struct mmapd_client *client, struct call *call);

/* client_run() of a plain request (no descriptor, no hook). */
int client_call(struct mmapd_client *client, cJSON *req, cJSON **ret_reply);

/* Records err and a formatted reason as call's result (from a hook). Returns err. */
int call_fail(struct call *call, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Connection gen died with err and the formatted reason: every call in flight fails with it,
 * the socket is shut down (a thread polling it wakes up) and leaves mmapd_client_fd()'s set, and
 * the client is BROKEN until a reconnection. Nothing happens when gen is not the working
 * connection any more. Lock held.
 */
void client_break(struct mmapd_client *client, uint64_t gen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Fails every call in flight with err and message. Lock held. */
void client_fail_calls(struct mmapd_client *client, int err, const char *message);

/*
 * Tells the daemon that grant handle of region name, made on connection gen, is released,
 * without waiting: one frame sent, on that connection only (nothing is sent when it is gone:
 * the daemon released the grant when it closed). The close is quiet (no reply on success,
 * CALL_QUIET) unless MMAPD_QUIET_MAX quiet ones wait unsettled already. Requests sent afterwards
 * on the connection are handled by the daemon after it, so a close followed by an open of the
 * same name behaves as if the close had waited. Whatever keeps the grant from being released
 * (the daemon's error reply, read later by whichever thread reads, or a failure to send) is
 * reported as an MMAPD_EVENT_RELEASE_FAILED event for name, never dropped. Lock not held.
 */
void client_release_grant(struct mmapd_client *client, const char *name, uint64_t handle,
                          uint64_t gen);

/*
 * Waits, with the lock held, until an event is queued, the deadline passes (-ETIMEDOUT),
 * a signal interrupts the wait (-EINTR), a page subscription's doorbell rings (-EAGAIN: the
 * caller reads the pages, pagesub.c) or the connection is not up (its error). Reads for
 * everyone meanwhile when nobody else does. deadline NULL: no limit.
 */
int client_wait_event(struct mmapd_client *client, const struct timespec *deadline);

/* Reads what is already there without blocking, if nobody else is reading. Lock held. */
void client_read_ready(struct mmapd_client *client);

/* Records the shrink id to acknowledge once the frames being read are handled. Lock held. */
void client_ack_later(struct mmapd_client *client, uint64_t shrink);

#endif
