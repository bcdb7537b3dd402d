/* SPDX-License-Identifier: MIT */
/*
 * One client connection. The socket is watched by one uv_poll_t; bytes are read with our own
 * recvmsg with room for one descriptor (fdpass_recv_one: only an adopt frame may carry one,
 * see conn_frame_fd) into a frame_reader, and every complete frame goes to
 * ops_handle_frame(). Output is an ordered queue of frames {bytes, fds[]}: a frame is
 * written at once if the socket takes it and UV_WRITABLE is armed only when it would block.
 * The bytes are a shared, reference-counted outbuf, so an event sent to many connections is
 * encoded once and queued on each.
 * The queue owns the descriptors it holds and closes them once sent or when the connection
 * dies.
 *
 * A connection is reference-counted: thread-pool jobs and requests waiting on a region hold
 * a reference, so that a completion arriving after the client went away finds a closed
 * connection (and drops its reply) instead of freed memory.
 *
 * A send never closes the connection there and then: when a client must be cut off from
 * inside conn_send (its queue is over max_queue_bytes, the socket failed), the connection
 * stops taking replies at once and is closed at the start of the next loop iteration. So
 * code that sends to many connections, or walks a lock queue while it answers waiters,
 * never sees the lists it walks change under it. Closing releases everything the
 * connection held: locks and lock waits, subscriptions, shrink acknowledgements it owed,
 * grants.
 */
#ifndef MMAPD_DAEMON_CONN_H
#define MMAPD_DAEMON_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include <cjson/cJSON.h>

#include "fdpass.h"
#include "frame.h"
#include "htab.h"

struct budget;
struct lock;
struct lock_edge;
struct server;

enum conn_state {
	CONN_OPEN,    /* reading requests, sending replies */
	CONN_HALF,    /* the client shut down its side: send what is due, then close */
	CONN_LINGER,  /* closing after an error event or the shutdown event: flush, then close */
	CONN_CLOSED,  /* socket closed; only references keep the struct */
};

/*
 * An encoded frame (header and payload). Reference-counted so that one event going to many
 * connections is encoded once: every output queue holding it has a reference, dropped when
 * the frame has been sent or the connection closes.
 */
struct outbuf {
	unsigned refs;
	size_t len;
	uint8_t bytes[];
};

struct outframe {
	struct outframe *next;
	struct outbuf *buf;    /* referenced */
	size_t off;        /* bytes already sent; the descriptors went with the first one */
	size_t nfds;
	int fds[];
};

/*
 * The teardown hook (as Wayland's destroy signal): each module that keeps per-connection
 * state has a listener in the server's list (state.h, conn_listeners, wired by server_init),
 * so that conn.c names none of them. On close, release runs for each listener in list order.
 * A listener that holds output back until the socket drains says so with holding (such a
 * connection is not kept over a restart) and hears of the drain through drained. Any of
 * the three may be NULL.
 */
struct conn;
struct control_ref;

/*
 * A descriptor a client sent, waiting for the frame it belongs to (conn_frame_fd): the
 * recvmsg that brought it read stream bytes [from, to). fd is -1 when more than one came
 * (extra; the kernel and fdpass_recv_one closed them all).
 */
struct conn_infd {
	int fd;
	bool extra;
	uint64_t from, to;
};

/* Descriptors waiting at most: one for a frame not yet whole and one just received. */
#define CONN_INFDS_MAX 2

struct conn_listener {
	void (*release)(struct conn *c);
	bool (*holding)(const struct conn *c);
	void (*drained)(struct conn *c);
};

struct conn {
	struct server *srv;
	struct conn *prev, *next;     /* srv->conns */
	unsigned refs;
	unsigned open_handles;        /* poll and timer, until their close callbacks ran */
	uint64_t serial;
	int fd;
	uv_poll_t poll;
	uv_timer_t timer;             /* the linger deadline */
	int events;                   /* events poll is started with; 0 when stopped */
	enum conn_state state;
	bool eof;                     /* the client shut down its sending side */
	bool yielded;                 /* buffered requests wait for the next loop turn */
	struct conn *turn_next;       /* in srv->turns while yielded (referenced there) */

	struct frame_reader reader;
	uint64_t in_bytes;            /* stream bytes received so far */
	uint64_t frame_pos;           /* stream offset of the next frame to be handled */
	uint64_t frame_start, frame_end; /* stream offsets of the frame being handled */
	struct conn_infd infds[CONN_INFDS_MAX]; /* descriptors received, not yet claimed */
	size_t ninfds;
	struct outframe *out_head, *out_tail;
	size_t out_bytes;             /* bytes queued and not yet sent */
	size_t out_fds;               /* descriptors queued and not yet sent */
	uint64_t handed_fds;          /* descriptors the daemon made for it (control pages,
	                                 doorbells), charged to BUDGET_FDS until it ends: the
	                                 daemon cannot see when the client closes them */

	pid_t pid;                    /* SO_PEERCRED at accept */
	struct budget *budget;        /* its uid's (budget.h), referenced */
	uid_t uid;
	gid_t gid;
	uint32_t *groups;             /* supplementary groups (SO_PEERGROUPS), malloc'd */
	size_t ngroups;
	uint64_t connected_ms;        /* Unix epoch milliseconds at accept */
	char *client_name;            /* from hello, or NULL */
	bool hello_done;
	unsigned version;

	struct htab grants;           /* struct grant by handle */
	struct htab holders;          /* struct holder by region */
	size_t ngrants;
	uint64_t bytes_granted;       /* sum of the region sizes its grants were made at */
	uint64_t regions_created;     /* creations it started (max_regions_created_per_client) */
	uint64_t next_handle;
	size_t pending;               /* requests waiting on a region or on the thread pool */
	size_t parked;                /* lock requests waiting (bounded by max_locks_per_client) */
	unsigned warnings;            /* limit warnings logged, to keep a flood out of the log */

	struct htab locks;            /* held struct lock by id (lock.c) */
	struct lock *lock_waits;      /* its waiting locks */
	struct control_ref *controls; /* its slots in control pages (control.c) */
	uint64_t nlocks;              /* held and waiting */
	uint64_t wait_mark;           /* deadlock search (lock.c) */
	struct lock_edge *lock_out;   /* wait-for graph edges from and to it (lock.c) */
	struct lock_edge *lock_in;
	struct htab subs;             /* struct sub by region (notify.c) */
	uint64_t nsubs;
	uint64_t subs_holding;        /* subscriptions holding events back */
};

/*
 * Makes a connection of the accepted socket fd (consumed, even on failure) and starts
 * reading. Returns 0 with *ret_conn set (its reference belongs to the server until the
 * connection closes), or -errno.
 */
int conn_new(struct server *srv, int fd, pid_t pid, uid_t uid, gid_t gid, struct conn **ret_conn);

void conn_ref(struct conn *c);
void conn_unref(struct conn *c);

/* True while replies can still reach the client (open, or half-closed by it). */
bool conn_alive(const struct conn *c);

/*
 * Sends msg (borrowed) with nfds descriptors (consumed: closed once sent, or on any failure):
 * written at once when nothing waits before it and the socket takes it (then nothing is
 * allocated), the rest queued. A queue above max_queue_bytes
 * cuts the client off at once. Returns 0; -ECONNRESET when the connection cannot take
 * replies (or was closed by this call); -ENOMEM or -EMSGSIZE when msg could not be encoded
 * (the connection is then untouched).
 */
int conn_send(struct conn *c, const cJSON *msg, int *fds, size_t nfds);
/*
 * conn_send of msg_reply_ok(id), encoded without building it (msg_encode_ok_buf). Returns as
 * conn_send (-EINVAL for an id above PROTO_ID_MAX).
 */
int conn_send_ok(struct conn *c, uint64_t id);

/*
 * Encodes msg (borrowed) for any connection of srv into a new outbuf holding one reference.
 * Returns 0, -ENOMEM, or -EMSGSIZE (longer than max_frame).
 */
int conn_outbuf_new(const struct server *srv, const cJSON *msg, struct outbuf **ret_buf);
/* Drops a reference; the last one frees b. */
void conn_outbuf_unref(struct outbuf *b);
/*
 * conn_send for a frame encoded by conn_outbuf_new, without descriptors. b is borrowed: the
 * queue takes its own reference while it holds the frame (if it must). Returns 0, -ECONNRESET as
 * conn_send, or -ENOMEM (the connection is then untouched).
 */
int conn_send_outbuf(struct conn *c, struct outbuf *b);

/*
 * Ends the connection for a protocol violation or a limit: logs at warn, sends an "error"
 * event with err and the message, then closes once it is written (or after a short
 * deadline). Further input is discarded.
 */
void conn_fail(struct conn *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Records a successful hello and stops the hello_timeout_ms countdown started at accept. */
void conn_hello_done(struct conn *c);

/* Sends the "shutdown" event and closes once it is written or the deadline passes. */
void conn_shutdown(struct conn *c, const char *message);

/*
 * Closes the connection now: releases what it holds (see above), drops its queue.
 * Idempotent. Never call it from inside code that walks connections, locks or subscribers.
 */
void conn_close(struct conn *c);

/*
 * Handing connections over to the next daemon (fdconn.h). conn_keepable: c can be handed
 * over as it stands (hello done, open both ways, nothing half-read, no request waiting, no
 * events held back). conn_drain writes c's queued output,
 * waiting for the socket until deadline_ms (state_now_ms clock): 0 once all is written,
 * -ETIMEDOUT, or -errno when the socket failed. conn_close_kept closes c like conn_close but
 * leaves unread what the client sent: the next daemon reads it.
 */
bool conn_keepable(const struct conn *c);
int conn_drain(struct conn *c, uint64_t deadline_ms);
void conn_close_kept(struct conn *c);

/*
 * A request now waits on a region or the thread pool / no longer does. At most a few may
 * wait at once; then the connection is not read until some finish.
 */
void conn_pending_add(struct conn *c);
void conn_pending_done(struct conn *c);
/*
 * A lock request now waits / no longer does. Those are bounded by max_locks_per_client and
 * the uid's max_lock_waiters_per_uid (conn_may_park: false when that budget is spent), and
 * never stop the reading (the unlock that frees them may be the next request).
 */
bool conn_may_park(const struct conn *c);
void conn_parked_add(struct conn *c);
void conn_parked_done(struct conn *c);

/*
 * The descriptor the frame being handled carries (the dispatcher asks once it knows the
 * frame's op; adopt: whether that op may carry one). The rule (docs/protocol.md, "Sending a
 * descriptor"): the kernel delivers a descriptor with the recvmsg that reads the first byte of
 * the segment it was sent with, and that recvmsg stops at the segment's end, so the
 * descriptor's segment began within the bytes that recvmsg read. It belongs to the first adopt
 * frame that begins in those bytes; with none, to the frame in which those bytes end. Returns
 * 1 with *ret_fd (the caller owns it), 0 when the frame carries none, -EPROTO when a frame
 * that may not carry one did, or -E2BIG when more than one came with it; the descriptors are
 * closed then.
 */
int conn_frame_fd(struct conn *c, bool adopt, int *ret_fd);

/* Logs a refused limit at warn, then (after a few) at debug only, naming the client. */
void conn_warn(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Closes the handle that runs connections' deferred turns (at the end of the shutdown, and
 * in server_done). Connections still waiting for a turn are dropped from the queue.
 */
void conn_turns_stop(struct server *srv);

#endif
