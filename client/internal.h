/*
 * Private plumbing of libmmapd, shared by its files:
 *   conn.c    the socket, sending, the reader role (leader/follower), calls and their
 *             replies, the hello exchange, reconnection and what it restores;
 *   event.c   events: parsing, the internal reactions, the bounded queue, mmapd_client_dispatch();
 *   dispatch_thread.c  the optional background thread that dispatches events;
 *   region.c  grants, their mappings, how mappings follow the region's size, reopening,
 *             changing a region's mode in place;
 *   coord.c   locks, resize, subscriptions, change reports, flush and flush policies;
 *   query.c   stat, list, status, delete, ping and the readers of their replies;
 *   mapping.c advice, prewarm, mlock, chunk and page iteration, flush_range and its batch;
 *   atomic.c  atomic views of the window;
 *   guard.c   the SIGBUS guard;
 *   error.c   the per-thread failure message;
 *   policytext.c  flush policies as text.
 * The rings and persistent structures (client/toolbox/) are built on the public headers only
 * and see none of this.
 * Nothing here is exported: the shared library is built with -fvisibility=hidden and only
 * the MMAPD_EXPORT functions of mmapd.h are visible.
 *
 * Locking: every struct mmapd_client has two mutexes. send_lock makes each frame one
 * uninterrupted write and is always taken before lock; lock guards everything else in the
 * struct and the mutable fields of its regions. Only the thread holding the reader role
 * (client->reading) touches the frame reader and the descriptor queue, with or without lock.
 */
#ifndef MMAPD_CLIENT_INTERNAL_H
#define MMAPD_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

/* One request and, once it is done, its reply. The caller fills the first group. */
struct call {
	cJSON *req;                /* borrowed; client_run() sets its "id" */
	unsigned flags;            /* CALL_* */
	uint64_t gen;              /* with CALL_PINNED: the connection it belongs to */
	bool want_fd;              /* a successful reply must carry one descriptor */
	call_hook_fn *on_reply;    /* may be NULL */
	void *ctx;                 /* for on_reply */
	/*
	 * With CALL_DETACHED: runs with the lock held when the call is done (reply or err and
	 * message set) and frees the call: its req, reply, message, and cond (pthread_cond_destroy).
	 */
	void (*on_done)(struct mmapd_client *client, struct call *call);

	cJSON *reply;              /* result: the "ok": true reply, owned by the caller */
	int fd;                    /* result with want_fd: owned by the caller, or -1 */

	/* Private to conn.c. */
	uint64_t id;
	bool done;
	int err;
	char *message;
	pthread_cond_t cond;
	struct call *prev, *next;
};

/* A held lock or a pending shrink-ack: a node of a singly linked list. */
struct id_node {
	struct id_node *next;
	uint64_t id;
};

/* A subscription, kept so that a reconnection can subscribe again. */
struct name_node {
	struct name_node *next;
	char name[];
};

struct event_node;

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
 * A mapped window (region.c owns its life; mapping.c, atomic.c and guard.c read its mapping).
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

	/* mapping.c: tiny flushes batched until a page's worth (under the client's lock). */
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

struct mmapd_client {
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
	uint32_t max_frame;           /* the largest payload we may send, from hello */
	uint32_t protocol;            /* the version agreed in hello */
	struct frame_reader reader;   /* reader role only */
	struct fd_queue fds;          /* reader role only */
	struct call *calls;           /* sent and waiting for their replies */
	struct id_node *acks;         /* shrink-acks to send once the frames are read */

	char *path;                   /* for reconnecting */
	char *name;                   /* hello's client name, or NULL */
	int reconnect_ms;             /* 0: never; < 0: without a time limit */

	struct mmapd_region *regions; /* open (and opening) regions */
	struct name_node *subs;       /* subscriptions */
	struct id_node *locks;        /* locks held */
	size_t locks_lost;            /* forgotten by a reconnection, not reported yet */

	struct event_queue events;
	mmapd_event_fn *handler;
	void *handler_data;
	int epfd;                     /* mmapd_client_fd(): the socket and evfd */
	int evfd;                     /* readable while events wait or the connection died */
	bool evfd_set;
	unsigned dispatching;         /* mmapd_client_dispatch() calls running */
	struct dispatch_thread dispatch;
};

/* Takes one more reference on client. */
void client_ref(struct mmapd_client *client);
/* Drops a reference; the last one frees the client. */
void client_unref(struct mmapd_client *client);

/*
 * Sends call->req and waits for its reply, reading for other threads meanwhile when nobody
 * else reads. A broken connection is first re-made (unless CALL_INTERNAL or CALL_PINNED, or
 * reconnection is off). Returns 0 with call->reply (and call->fd) set, or a negative errno
 * with the thread's message set: the daemon's error, the connection's (-ECONNRESET,
 * -ESHUTDOWN, an error event's code, -EPROTO), -ENOTCONN after mmapd_disconnect(), -ESTALE
 * for a CALL_PINNED call whose connection is gone, -ENOMEM. Call without client->lock.
 * With CALL_DETACHED it returns 0 as soon as the request is handed over; an error return
 * means it never was (on_done will not run and the caller keeps the call).
 */
int client_run(struct mmapd_client *client, struct call *call);

/* client_run() of a plain request (no descriptor, no hook). */
int client_call(struct mmapd_client *client, cJSON *req, cJSON **ret_reply);

/* Records err and a formatted reason as call's result (from a hook). Returns err. */
int call_fail(struct call *call, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The hello exchange on a fresh connection (flags: CALL_INTERNAL when reconnecting): offers
 * PROTO_VERSION, learns the version and frame limit. Returns 0 or a negative errno.
 */
int client_hello(struct mmapd_client *client, unsigned flags);

/*
 * Tells the daemon that grant handle of connection gen is released. Nothing is sent when that
 * connection is gone: the daemon released the grant when it closed. Returns 0 or the error
 * that prevented telling it.
 */
int client_release_grant(struct mmapd_client *client, uint64_t handle, uint64_t gen);

/* Makes client->evfd readable exactly while events wait or the connection is broken. */
void client_wake_update(struct mmapd_client *client);

/*
 * Waits, with the lock held, until an event is queued, the deadline passes (-ETIMEDOUT),
 * a signal interrupts the wait (-EINTR) or the connection is not up (its error). Reads for
 * everyone meanwhile when nobody else does. deadline NULL: no limit.
 */
int client_wait_event(struct mmapd_client *client, const struct timespec *deadline);

/* Reads what is already there without blocking, if nobody else is reading. Lock held. */
void client_read_ready(struct mmapd_client *client);

/*
 * Reconnects a broken client (lock held, state CLIENT_BROKEN, not reconnecting): backoff,
 * hello, then the grants of open regions and the subscriptions are renewed and LOCKS_LOST
 * and RECONNECTED queued. Returns 0, or a negative errno with the thread's message set.
 */
int client_reconnect(struct mmapd_client *client);

/* The error of a client that is not up, with its message set for the calling thread. */
int client_down_error(const struct mmapd_client *client);

/* Records the shrink id to acknowledge once the frames being read are handled. Lock held. */
void client_ack_later(struct mmapd_client *client, uint64_t shrink);

/* Sets *ts to ms milliseconds from now on CLOCK_MONOTONIC (the clock of client->cond). */
void deadline_after(struct timespec *ts, int ms);

/* ---- event.c ---- */

void event_queue_init(struct event_queue *q);
/* Frees every queued event. */
void event_queue_clear(struct event_queue *q);
/*
 * Acts on an event read from the daemon (other than "shutdown" and "error") and queues it
 * for mmapd_client_dispatch(). Malformed and unknown events are ignored. Lock held.
 */
void event_handle(struct mmapd_client *client, const cJSON *msg, const char *name);
/* Queues ev (deep-copied). Lock held. */
void event_push(struct mmapd_client *client, const struct mmapd_event *ev);
/*
 * mmapd_client_dispatch() without its checks of who may dispatch: for the dispatch thread.
 * Lock not held.
 */
int event_dispatch(struct mmapd_client *client, int timeout_ms);

/* ---- dispatch_thread.c ---- */

/* Whether a dispatch thread is started (mmapd_client_dispatch() is then refused). Lock held. */
bool dispatch_thread_busy(const struct mmapd_client *client);
/*
 * Whether the calling thread is the client's dispatch thread and is told to stop: a
 * reconnection it makes gives up instead of waiting for its next attempt. Lock held.
 */
bool dispatch_thread_stopping_self(const struct mmapd_client *client);
/*
 * For mmapd_disconnect(), before it closes anything: stops and joins the dispatch thread, or,
 * called from a handler on that thread, detaches it so that it ends once the handler returns.
 * Lock not held.
 */
void dispatch_thread_end(struct mmapd_client *client);

/* ---- region.c: reactions, lock held ---- */

/* The region called name now has size bytes (generation: the daemon's count). */
void regions_resized(struct mmapd_client *client, const char *name, uint64_t size,
                     uint64_t generation);
/*
 * The daemon shrinks name to size (request shrink): the tail of every window becomes
 * inaccessible. Returns true when it did for every window, so the shrink may be acknowledged.
 */
bool regions_shrinking(struct mmapd_client *client, const char *name, uint64_t size,
                       uint64_t shrink);
/* Shrink shrink was cancelled: windows are accessible again up to the region's size. */
void regions_shrink_cancelled(struct mmapd_client *client, const char *name, uint64_t shrink);
/* name was deleted: its regions no longer follow it and are not opened again on reconnect. */
void regions_deleted(struct mmapd_client *client, const char *name);

/*
 * After a reconnection's hello: opens every region that held a grant again, by name and in
 * its mode. The mapping stays; the new descriptor is only compared with the old one. A
 * region whose name is gone or now names another file is given up (DELETED is queued).
 * Returns 0, or a negative errno (message set) when the connection failed meanwhile.
 * Lock not held.
 */
int regions_reopen(struct mmapd_client *client);
/* Whether a region called name is open (or was given up but not closed). Lock held. */
bool regions_have(const struct mmapd_client *client, const char *name);
/*
 * Checks that off..off+len lies in the part of the window that may be touched (all of it
 * unless a shrink cut or is cutting into it). Returns 0 or -ERANGE (message set).
 */
int region_check_range(const struct mmapd_region *region, uint64_t off, size_t len);

/* ---- coord.c ---- */

/* Forgets every lock held (they died with the connection). Returns how many. Lock held. */
size_t locks_forget(struct mmapd_client *client);
/* Forgets the subscription to name, if any. Lock held. */
void subs_forget(struct mmapd_client *client, const char *name);
/*
 * After a reconnection's hello: subscribes again to every region subscribed to. One that no
 * longer exists is forgotten (with a DELETED event unless a region of it had one). Returns 0,
 * or a negative errno (message set) when the connection failed meanwhile. Lock not held.
 */
int subs_restore(struct mmapd_client *client);
/* Frees a list of id_node or name_node. */
void id_list_free(struct id_node *list);
void name_list_free(struct name_node *list);

/* ---- query.c and request helpers ---- */

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

/* Reads {"kind", "value"} into *ret with proto_policy_parse. Returns 0 or -EPROTO (message
 * not set). */
int policy_read(const cJSON *obj, struct mmapd_policy *ret);
/* Checks a policy before a round trip. Returns 0 or -EINVAL (message set). */
int policy_check(const struct mmapd_policy *policy);
/* Builds the policy object. Returns NULL on allocation failure (message not set). */
cJSON *policy_json(const struct mmapd_policy *policy);

/*
 * The info objects the library hands out (mmapd.h, "How this ABI grows"): the public struct
 * first, so that a pointer to it is a pointer to the whole, then the storage its strings point
 * at. Never copied by value once the pointers are set (region_entry_fix() sets them again).
 */
struct region_entry {
	struct mmapd_region_info info;
	char name[MMAPD_NAME_MAX + 1];
};
struct client_entry {
	struct mmapd_client_info info;
	char name[65];
};
struct lock_entry {
	struct mmapd_lock_info info;
	char region[MMAPD_NAME_MAX + 1];
	char client[65];
};
struct status_entry {
	struct mmapd_status status;
	char version[32];
};
/* The opaque lists: an array of entries, allocated at once. */
struct mmapd_region_list {
	struct region_entry *entries;
	size_t count;
};
struct mmapd_client_list {
	struct client_entry *entries;
	size_t count;
};
struct mmapd_lock_list {
	struct lock_entry *entries;
	size_t count;
};

/*
 * Fills *ret from a region object of a reply (ret->info.name points at ret->name). The
 * coordination fields (generation, policy, poisoned, seq, locks) are zero/manual when absent,
 * as from a daemon without them. Returns 0, or -EPROTO when a field is missing or malformed
 * (message not set).
 */
int region_info_parse(const cJSON *obj, struct region_entry *ret);

/*
 * A listing op answered a page at a time ({"<key>": [...], "more": bool}), asked again with
 * "after" set to the last entry until "more" is false. Entries must come in strictly rising
 * order, also across pages: the protocol's order, and what makes the loop end.
 */
struct pager {
	enum proto_op op;      /* PROTO_OP_LIST, PROTO_OP_CLIENTS */
	const char *key;       /* the reply's array, also the plural in messages */
	const char *noun;      /* one entry, for messages: "region", "client" */
	size_t size;           /* of one entry */
	/* Fills entry from item. Returns 0 or a negative errno (message not set). */
	int (*parse)(const cJSON *item, void *entry);
	/* Adds "after" for the entry last received to req. Returns 0 or a negative errno
	 * (message set). */
	int (*after)(cJSON *req, const void *last);
	/* True when entry may follow prev. */
	bool (*follows)(const void *prev, const void *entry);
};

/*
 * Collects every page of p's op. Returns 0 with *ret_entries (malloc'd, NULL when empty) and
 * *ret_count, or a negative errno (message set).
 */
int pager_collect(struct mmapd_client *client, const struct pager *p, void **ret_entries,
                  size_t *ret_count);

/*
 * Checks a region name before any round trip. Returns 0, -EINVAL or -ENAMETOOLONG with the
 * thread's message set to the reason.
 */
int region_name_check(const char *name);

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

#endif
