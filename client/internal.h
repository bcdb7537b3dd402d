/* SPDX-License-Identifier: MIT */
/*
 * Private plumbing of libmmapd, shared by its files: the types, and the base layer's
 * functions. The files form one-way layers (lowest first; a file calls and includes only its
 * own layer and the ones below, which mk/layercheck.sh checks in `make check`). Each layer
 * above base declares its functions in one header that includes the one below (client.h,
 * socket.h, call.h, domain.h, top.h), and its files include that header:
 *   base     error.c (the per-thread failure message), version.c, deadline.c (CLOCK_MONOTONIC
 *            deadlines), policytext.c (flush policies as text), policyjson.c (flush policies
 *            on the wire);
 *   client   client.c (the client object: references, wake descriptors, remembered lists),
 *            evqueue.c (the bounded event queue and the event descriptor), sendq.c (frames of
 *            start calls waiting for room in the socket);
 *   socket   socket.c (connecting the socket, installing it, closing it);
 *   call     request.c (building requests), call.c (client_run(): the call multiplexer and
 *            its leader/follower reader, which reaches the layers above only through the
 *            client's hooks, struct client_hooks);
 *   domain   hello.c (the hello exchange), query.c (stat, list, status, delete, ping),
 *            admin.c, mapping.c (a window's mapping and how it follows its region's size),
 *            hugemap.c (where a mapping goes for huge pages, and how many it got),
 *            advise.c (advice, prewarm, mlock, iteration, flush_range), atomic.c (atomic views),
 *            scalar.c (numbers in a byte order), cursor.c (stdio streams over a window),
 *            guard.c (the SIGBUS guard), coord.c (locks, resize, subscriptions, change
 *            reports, flush and policies), region.c (open, close, reopen, set_mode),
 *            start.c (the start calls: open, lock, resize, flush, delete without waiting);
 *   top      react.c (the reactions to events), reconnect.c (reconnecting and restoring),
 *            event.c (mmapd_client_dispatch()), dispatch_thread.c (the background dispatch
 *            thread), connect.c (mmapd_connect(), mmapd_disconnect(); sets the hooks).
 * The rings and persistent structures (client/toolbox/) are built on the public headers only
 * and see none of this.
 * Nothing here is exported: the shared library is built with -fvisibility=hidden and only
 * the MMAPD_EXPORT functions of mmapd.h are visible.
 *
 * Locking: every struct mmapd_client has two mutexes. send_lock makes each frame one
 * uninterrupted write and is always taken before lock; lock guards everything else in the
 * struct and the mutable fields of its regions (the send queue too: send_lock only gives the
 * right to write to the socket). Only the thread holding the reader role
 * (client->reading) touches the frame reader and the descriptor queue, with or without lock.
 */
#ifndef MMAPD_CLIENT_INTERNAL_H
#define MMAPD_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "fdpass.h"
#include "frame.h"
#include "mmapd.h"
#include "tuning.h"
#include "vocab.h"

enum client_state {
	CLIENT_UP,      /* the socket works (a reconnection may still be restoring state) */
	CLIENT_BROKEN,  /* it died: dead_err says why; the next call reconnects (if enabled) */
	CLIENT_CLOSED,  /* mmapd_disconnect() was called */
};

struct call;

/*
 * Runs with the client's lock held, in whichever thread read the successful reply of call,
 * before any later frame is looked at: so what it records is in the daemon's order with
 * every event. It may take call->fd (setting it to -1). Returns 0, or a negative errno set
 * with call_fail(), which then becomes the call's result.
 */
typedef int call_hook_fn(struct mmapd_client *client, struct call *call, const cJSON *reply);

#define CALL_INTERNAL 0x1u /* part of a reconnection: goes out while other calls wait for it */
#define CALL_PINNED   0x2u /* only on connection call->gen; -ESTALE without sending otherwise */
/*
 * Nobody waits: client_run() returns 0 once the request is out, and the call (allocated by
 * the caller) then belongs to its on_done, which runs when it completes, successfully or not.
 */
#define CALL_DETACHED 0x4u
/*
 * The daemon answers only a failure (close's "reply": false): a reply to any call sent after
 * it (a later stamp) completes it successfully, since the daemon answers a connection's
 * requests in order. A daemon that answers anyway (one before "quiet-close") completes it too.
 */
#define CALL_QUIET    0x10u

/* One request and, once it is done, its reply. The caller fills the first group. */
struct call {
	cJSON *req;                /* borrowed; client_run() sets its "id" */
	unsigned flags;            /* CALL_* */
	uint64_t gen;              /* with CALL_PINNED: the connection it belongs to */
	bool want_fd;              /* a successful reply must carry one descriptor */
	bool want_fd2;             /* with want_fd: and a second one (fd2) */
	const int *send_fd;        /* a descriptor sent with the request (adopt; borrowed), or NULL */
	call_hook_fn *on_reply;    /* may be NULL */
	void *ctx;                 /* for on_reply */
	/*
	 * With CALL_DETACHED: runs with the lock held when the call is done (reply or err and
	 * message set) and frees the call: its req, reply, message, and cond (pthread_cond_destroy).
	 */
	void (*on_done)(struct mmapd_client *client, struct call *call);

	cJSON *reply;              /* result: the "ok": true reply, owned by the caller */
	int fd;                    /* result with want_fd: owned by the caller, or -1 */
	int fd2;                   /* result with want_fd2: the same */

	/* Private to call.c. */
	uint64_t id;
	uint64_t stamp;            /* the frame's place in the stream (client_send), 0: unknown */
	bool done;
	int err;
	char *message;
	pthread_cond_t cond;
	struct call *prev, *next;
};

/*
 * A page subscription (pagesub.c): a subscription whose changes this client reads from the
 * region's change log itself, woken by the log's doorbell (in client->epfd, edge-triggered).
 * Under client->lock.
 */
struct page_sub {
	struct page_sub *next;        /* client->page_subs */
	struct ctlpage *page;         /* mapped read-only, CTLPAGE_SIZE bytes */
	dev_t dev;                    /* the page's memfd: a fast_page of it is this client's */
	ino_t ino;
	int bell;                     /* the doorbell, in client->epfd */
	unsigned tag;                 /* what the log's entries of this connection's requests
	                                 carry as their slot */
	uint64_t gen;                 /* the connection it was made on */
	uint64_t next_seq;            /* the first change not delivered nor reported lost */
	uint64_t stuck_seq;           /* found reserved but not published (0: none) ... */
	struct timespec stuck_since;  /* ... since then */
	char name[MMAPD_NAME_MAX + 1]; /* follows a rename (pagesub_renamed) */
};

/*
 * Nobody waits and nothing blocks: the frame is queued and written as far as the socket takes
 * it without waiting (sendq.c); the rest goes out with the next send, or when mmapd_client_fd()
 * reports the socket writable and the application dispatches. A broken or reconnecting client
 * refuses it at once instead of reconnecting. With CALL_DETACHED only (the start calls, start.c).
 */
#define CALL_NOWAIT   0x8u  /* (CALL_QUIET is 0x10u, above) */

/* A frame waiting to be written (sendq.c): bytes sent of len, on connection gen only. */
struct out_frame {
	struct out_frame *next;
	uint64_t gen;
	size_t len, sent;
	uint8_t *buf;                 /* owned */
};

/* A held lock or a pending shrink-ack: a node of a singly linked list. */
struct id_node {
	struct id_node *next;
	uint64_t id;
};

/* A subscription, kept so that a reconnection can subscribe again. */
struct name_node {
	struct name_node *next;
	unsigned flags;         /* MMAPD_SUBSCRIBE_* it was made with */
	char name[];
};

/* A queued event (evqueue.c); mmapd_client_dispatch() (event.c) hands ev to the handler. */
struct event_node {
	struct event_node *next;
	struct mmapd_event ev;  /* its pointers point into this node's tail */
	bool marker;            /* an OVERFLOW standing for dropped events */
	size_t bytes;           /* of the tail: ranges, then strings */
};

/*
 * Events read from the daemon and not yet dispatched. count and bytes cover ordinary events
 * only; the OVERFLOW markers that stand for dropped events (at most one per region, at the
 * head) and RECONNECTED/LOCKS_LOST (at most one each) come on top.
 */
struct event_queue {
	struct event_node *head, *tail;
	size_t count;
	size_t bytes;
};

struct mmapd_region;

/*
 * The fast path of whole-region locks (fastlock.c, shared/ctlpage.h): a control page this
 * client mapped, with its slot and what the slot holds. Pages stay mapped until the client is
 * freed (a reconnection marks its old ones dead: the daemon freed their slots), so a pointer
 * to one never dangles. All under client->fast_mu.
 */
struct fast_page {
	struct fast_page *next;       /* client->fast_pages */
	char name[MMAPD_NAME_MAX + 1];
	struct ctlpage *page;
	dev_t dev;                    /* the memfd's identity: one fast_page per page and slot */
	ino_t ino;
	unsigned slot;
	unsigned index;               /* in client->fast_index, and in its lock ids */
	bool dead;                    /* its connection ended (its slot is not ours any more), or
	                                 its region was deleted (the name is another's) */
	bool stale;                   /* its daemon handed the connection over to the next one
	                                 (its log's route is CHANGELOG_ROUTE_GONE): no new locks
	                                 here, the ones held unlock through the next daemon */
	bool current;                 /* the daemon gave this page again after that: used
	                                 whatever its log says (a holder may write the route) */
	uint64_t gen;                 /* the connection the slot belongs to */
	uint64_t excl_id;             /* the exclusive lock this slot holds, or 0 */
	uint64_t shared_count;        /* shared locks this slot holds */
	uint64_t shared_id;           /* the id the daemon knows them by */
	_Atomic int bell;             /* the page's doorbell descriptor + 1, 0: none (fastnotify.c;
	                                 set once, without fast_mu) */
};

/* A shared lock held on the fast path: client->fast_locks (an exclusive one is its page's
 * excl_id). */
struct fast_lock {
	struct fast_lock *next;
	uint64_t id;
	struct fast_page *fp;
};

/*
 * A mapped window (region.c owns its life; mapping.c keeps it in step with the region; advise.c,
 * atomic.c and guard.c read it).
 * The mapping starts at the window's offset rounded down to a page: map + delta is the
 * window's first byte.
 */
struct mmapd_region {
	struct mmapd_region *prev, *next;  /* on client->regions */
	struct mmapd_client *client;       /* a reference */
	char name[MMAPD_NAME_MAX + 1];
	enum mmapd_mode mode;
	bool report_writes;
	unsigned open_flags;           /* MMAPD_OPEN_* as opened */
	int map_flags;                /* mmap() flags of the file mapping */
	int prot;                     /* mmap() protection: the mode's, PROT_EXEC once granted */
	enum mmapd_huge huge;         /* the region's pages (from the open reply) */
	bool anonymous;               /* a memfd region (from the open reply) */
	uint64_t offset;              /* of the window in the region */
	uint64_t want_length;         /* asked for; 0: follows the region's size */
	uint64_t reserve;             /* address space asked for (struct mmapd_open_opts) */
	size_t page;                  /* of the mapping: a hugetlb region's huge page size */
	size_t delta;                 /* offset % page */

	/* Under the client's lock. */
	unsigned refs;                /* the owner, and a reconnection reopening it */
	bool closed;                  /* mmapd_region_close() took it off the list */
	bool granted;                 /* handle is a grant of connection gen */
	uint64_t handle;
	uint64_t gen;
	bool gone;                    /* deleted, or given up on reconnect: follows nothing */
	int fd;
	int adopt_fd;                 /* adopted: the descriptor it was adopted with, to adopt it
	                               * again after a reconnection; -1 otherwise */
	uint8_t *map;                 /* page-aligned; NULL until mapped */
	size_t map_pages;             /* pages mapped from the file */
	size_t access_pages;          /* the first ones are accessible, the rest PROT_NONE */
	size_t reserve_pages;         /* pages of address space held (0: no reservation) */
	bool shrinking;               /* shrink (to shrink_size) is announced */
	uint64_t shrink;
	uint64_t shrink_size;

	/* Written under the lock, read without it. */
	_Atomic(uint8_t *) data;      /* map + delta */
	atomic_size_t length;         /* of the window */
	atomic_size_t usable;         /* bytes of the window read and write may touch */
	_Atomic uint64_t size;        /* of the region, as last heard */
	_Atomic uint64_t generation;

	uint64_t fast_refused;        /* the connection that refused it a control page (lock held) */
	struct fast_page *fast;       /* its control page once known, or NULL (fast_mu held) */

	/* advise.c: tiny flushes batched until a page's worth (under the client's lock). */
	uint64_t batch_lo, batch_hi;  /* window offsets; batch_hi 0: nothing pending */
	unsigned batch_count;
};

enum dispatch_thread_state {
	DISPATCH_THREAD_NONE = 0,
	DISPATCH_THREAD_RUNNING,   /* started (it may have ended by itself: err says why) */
	DISPATCH_THREAD_STOPPING,  /* told to stop; being joined, or detached and ending */
};

/* The background dispatch thread of a client (dispatch_thread.c), under the client's lock. */
struct dispatch_thread {
	enum dispatch_thread_state state;
	pthread_t thread;             /* valid unless NONE */
	int stopfd;                   /* eventfd that wakes it to stop; valid unless NONE */
	int err;                      /* the connection error that ended it by itself, or 0 */
	bool detached;                /* mmapd_disconnect() from its handler: nobody joins it */
};

/*
 * What the call multiplexer (call.c) reaches above it without naming it: set by
 * mmapd_connect() (connect.c) for every client, as Wayland's transport owns a signal that the
 * modules above subscribe to.
 */
struct client_hooks {
	/*
	 * Acts on an event read from the daemon other than "shutdown" and "error" (react.c:
	 * event_handle()). Lock and reader role held.
	 */
	void (*event)(struct mmapd_client *client, const cJSON *msg, const char *name);
	/* Reconnects a broken client, as client_reconnect() (reconnect.c). Lock held. */
	int (*reconnect)(struct mmapd_client *client);
};

struct mmapd_client {
	const struct client_hooks *hooks;
	atomic_uint refs;             /* the owner, every open region, every call in progress */
	pthread_mutex_t send_lock;
	pthread_mutex_t lock;
	pthread_cond_t cond;          /* state, reader role, queue, reconnection: all broadcast */

	enum client_state state;
	bool reconnecting;            /* a thread is reconnecting; other calls wait */
	bool reading;                 /* a thread holds the reader role */
	int sock;                     /* -1 when there is none */
	uint64_t gen;                 /* +1 per connection made */
	int dead_err;                 /* with CLIENT_BROKEN: what calls return */
	char *dead_message;
	uint64_t next_id;
	uint64_t send_stamp;          /* the last call->stamp given (send_lock and lock held) */
	size_t quiet;                 /* CALL_QUIET calls in calls */
	uint32_t max_frame;           /* the largest payload we may send, from hello */
	uint32_t protocol;            /* the version agreed in hello */
	bool manage;                  /* hello listed "manage": open's "temporary" and "truncate" */
	struct frame_reader reader;   /* reader role only */
	struct fd_queue fds;          /* reader role only */
	struct call *calls;           /* sent and waiting for their replies */
	struct out_frame *out_head;   /* frames of start calls not written yet (sendq.c) */
	struct out_frame *out_tail;
	atomic_size_t out_count;      /* frames in it: read without the lock by senders */
	bool out_watched;             /* EPOLLOUT is asked on the socket while it is not empty */
	struct id_node *acks;         /* shrink-acks to send once the frames are read */

	char *path;                   /* for reconnecting */
	char *name;                   /* hello's client name, or NULL */
	int reconnect_ms;             /* 0: never; < 0: without a time limit */

	struct mmapd_region *regions; /* open (and opening) regions */
	struct name_node *subs;       /* subscriptions */
	struct page_sub *page_subs;   /* those read from the control page (pagesub.c) */
	bool bells;                   /* their doorbells are in epfd (edge-triggered) */
	struct id_node *locks;        /* locks held */
	size_t locks_lost;            /* forgotten by a reconnection, not reported yet */

	atomic_flag fast_mu;          /* a spin lock (fastlock.c), after client->lock */
	struct fast_page *fast_pages;
	struct fast_page **fast_index; /* by fast_page.index */
	size_t fast_npages;
	struct fast_lock *fast_locks;
	struct fast_lock *fast_spare; /* freed ones, for the next lock */
	uint64_t fast_next_id;

	struct event_queue events;
	mmapd_event_fn *handler;
	void *handler_data;
	int epfd;                     /* mmapd_client_fd(): the socket and evfd */
	int evfd;                     /* readable while events wait or the connection died */
	bool evfd_set;
	unsigned dispatching;         /* mmapd_client_dispatch() calls running */
	struct dispatch_thread dispatch;
};

/* ---- error.c ---- */

/*
 * Records a failure for mmapd_last_message() of the calling thread and returns err (a negative
 * errno), so callers can write `return error_set(-EINVAL, "...", ...)`.
 */
int error_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A failure detached from the calling thread by error_save(). */
struct error_saved {
	int err;
	char *message;
};

/*
 * Detaches the calling thread's last failure, so that clean-up which may fail in its turn (and
 * record its own message) cannot replace the reason the caller is about to return.
 * error_restore() puts it back and frees whatever was recorded in between.
 */
void error_save(struct error_saved *ret_saved);
void error_restore(struct error_saved *saved);

/* ---- deadline.c ---- */

/* Sets *ts to ms milliseconds from now on CLOCK_MONOTONIC (the clock of client->cond). */
void deadline_after(struct timespec *ts, int ms);
/* Milliseconds until ts, rounded up; 0 once it has passed. */
int deadline_left_ms(const struct timespec *ts);

/* ---- policyjson.c ---- */

/* Reads {"kind", "value"} into *ret with proto_policy_parse. Returns 0 or -EPROTO (message
 * not set). */
int policy_read(const cJSON *obj, struct mmapd_policy *ret);
/* Checks a policy before a round trip. Returns 0 or -EINVAL (message set). */
int policy_check(const struct mmapd_policy *policy);
/* Builds the policy object. Returns NULL on allocation failure (message not set). */
cJSON *policy_json(const struct mmapd_policy *policy);

#endif
