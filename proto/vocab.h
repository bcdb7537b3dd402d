/* SPDX-License-Identifier: MIT */
/*
 * The protocol's vocabulary, owned here and nowhere else: every op a client may send, every
 * event the daemon sends, the fields both sides read and write and the values of enumerated
 * fields (docs/protocol.md, docs/coordination.md), each listed once. The daemon pairs each
 * op with its handler (daemon/ops.h's OPS_TABLE, checked at compile time to cover this list
 * exactly), both sides build and read messages with these names, and mk/doccheck.sh reads
 * the lists from this file to check that the documents describe every entry. Keep one entry
 * a line, in the form X(ID, "wire-name"), so that the doc check can read it.
 */
#ifndef MMAPD_PROTO_VOCAB_H
#define MMAPD_PROTO_VOCAB_H

/* The ops, in the order of the daemon's request counters (the stats reply lists them so). */
#define PROTO_OPS(X) \
	X(HELLO, "hello") \
	X(PING, "ping") \
	X(OPEN, "open") \
	X(CLOSE, "close") \
	X(STAT, "stat") \
	X(LIST, "list") \
	X(DELETE, "delete") \
	X(STATUS, "status") \
	X(LOCK, "lock") \
	X(UNLOCK, "unlock") \
	X(LOCKS, "locks") \
	X(CONTROL, "control") \
	X(RESIZE, "resize") \
	X(SHRINK_ACK, "shrink-ack") \
	X(SUBSCRIBE, "subscribe") \
	X(UNSUBSCRIBE, "unsubscribe") \
	X(CHANGED, "changed") \
	X(FLUSH, "flush") \
	X(CLEAR_ERROR, "clear-error") \
	X(SET_POLICY, "set-policy") \
	X(CHOWN, "chown") \
	X(CHMOD, "chmod") \
	X(CLIENTS, "clients") \
	X(STATS, "stats") \
	X(RENAME, "rename") \
	X(COPY, "copy") \
	X(TRUNCATE_ON_CLOSE, "truncate-on-close") \
	X(ADOPT, "adopt")

/* The events the daemon sends (the "event" member of a message without an "id"). */
#define PROTO_EVENTS(X) \
	X(ERROR, "error") \
	X(SHUTDOWN, "shutdown") \
	X(CHANGED, "changed") \
	X(OVERFLOW, "overflow") \
	X(RESIZED, "resized") \
	X(SHRINKING, "shrinking") \
	X(SHRINK_CANCELLED, "shrink-cancelled") \
	X(POLICY, "policy") \
	X(FLUSHED, "flushed") \
	X(FLUSH_FAILED, "flush-failed") \
	X(DELETED, "deleted") \
	X(UNLOCKED, "unlocked") \
	X(RENAMED, "renamed")

/*
 * The field names of requests, replies and events that the daemon and libmmapd both read or
 * write (docs/protocol.md, docs/coordination.md). Each is a string constant PROTO_FIELD_<ID>;
 * mk/doccheck.sh checks that the documents name every one. Fields of the daemon's own files
 * (metadata, the fd store's state) and the limits' names (daemon/config.h) are not here.
 */
#define PROTO_FIELDS(X) \
	/* the envelope of requests, replies and events */ \
	X(ID, "id") \
	X(OP, "op") \
	X(OK, "ok") \
	X(ERROR, "error") \
	X(CODE, "code") \
	X(ERRNO, "errno") \
	X(MESSAGE, "message") \
	X(EVENT, "event") \
	/* hello */ \
	X(VERSION, "version") \
	X(CLIENT, "client") \
	X(SERVER, "server") \
	X(FEATURES, "features") \
	X(LIMITS, "limits") \
	X(MAX_FRAME, "max_frame") \
	/* regions: open, close, stat, list, delete, resize, the region object */ \
	X(NAME, "name") \
	X(HANDLE, "handle") \
	X(REPLY, "reply") \
	X(MODE, "mode") \
	X(CREATE, "create") \
	X(EXCLUSIVE, "exclusive") \
	X(SIZE, "size") \
	X(ANONYMOUS, "anonymous") \
	X(SPARSE, "sparse") \
	X(POLICY, "policy") \
	X(PERM, "perm") \
	X(EXEC, "exec") \
	X(HUGE, "huge") \
	X(CREATED, "created") \
	X(FDS, "fds") \
	X(REGION, "region") \
	X(GENERATION, "generation") \
	X(OLD_SIZE, "old_size") \
	X(EXTERNAL, "external") \
	X(GRANTS, "grants") \
	X(CLIENTS, "clients") \
	X(POISONED, "poisoned") \
	X(ADOPTED, "adopted") \
	/* locks */ \
	X(OFFSET, "offset") \
	X(LENGTH, "length") \
	X(WAIT, "wait") \
	X(TIMEOUT_MS, "timeout_ms") \
	X(LOCK, "lock") \
	X(LOCKS, "locks") \
	X(SLOT, "slot") \
	X(SHRINK, "shrink") \
	X(GROW_ONLY, "grow_only") \
	X(TRUNCATED, "truncated") \
	X(STATE, "state") \
	X(SINCE_MS, "since_ms") \
	X(PID, "pid") \
	/* change notification, flushes and flush policies */ \
	X(SEQ, "seq") \
	X(FIRST_SEQ, "first_seq") \
	X(RANGES, "ranges") \
	X(WRITER, "writer") \
	X(DOORBELL, "doorbell") \
	X(PAGE, "page") \
	X(KIND, "kind") \
	X(VALUE, "value") \
	/* administration and paged listings */ \
	X(UID, "uid") \
	X(GID, "gid") \
	X(AFTER, "after") \
	X(FORMAT, "format") \
	X(MORE, "more") \
	X(REGIONS, "regions") \
	X(SUBSCRIPTIONS, "subscriptions") \
	X(TEXT, "text") \
	/* status */ \
	X(UPTIME_MS, "uptime_ms") \
	X(ANONYMOUS_REGIONS, "anonymous_regions") \
	X(BYTES_GRANTED, "bytes_granted") \
	X(OPEN_FDS, "open_fds") \
	X(LOCK_WAITERS, "lock_waiters") \
	/* managing regions like files (ops_manage.c) */ \
	X(TO, "to") \
	X(REPLACE, "replace") \
	X(METHOD, "method") \
	X(REPLACED, "replaced") \
	X(MTIME_US, "mtime_us") \
	X(CTIME_US, "ctime_us") \
	X(TEMPORARY, "temporary") \
	X(TRUNCATE, "truncate")

#define PROTO_FIELD_DECL_(id, name) extern const char PROTO_FIELD_##id[];
PROTO_FIELDS(PROTO_FIELD_DECL_)
#undef PROTO_FIELD_DECL_

/*
 * The values of enumerated fields: a region's access "mode" (open and its reply; numbered as
 * enum mmapd_mode and the daemon's enum region_mode), a lock's "mode" and, in a lock listing,
 * its "state".
 */
#define PROTO_MODES(X) \
	X(RO, "ro") \
	X(RW, "rw") \
	X(COW, "cow")

#define PROTO_LOCK_MODES(X) \
	X(SHARED, "shared") \
	X(EXCLUSIVE, "exclusive")

#define PROTO_LOCK_STATES(X) \
	X(HELD, "held") \
	X(WAITING, "waiting")

#define PROTO_OP_ENUM_(id, name) PROTO_OP_##id,
enum proto_op {
	PROTO_OPS(PROTO_OP_ENUM_)
	PROTO_OP_COUNT        /* how many ops there are */
};
#undef PROTO_OP_ENUM_

#define PROTO_EVENT_ENUM_(id, name) PROTO_EVENT_##id,
enum proto_event {
	PROTO_EVENTS(PROTO_EVENT_ENUM_)
	PROTO_EVENT_COUNT     /* how many events there are */
};
#undef PROTO_EVENT_ENUM_

#define PROTO_MODE_ENUM_(id, name) PROTO_MODE_##id,
enum proto_mode {
	PROTO_MODES(PROTO_MODE_ENUM_)
	PROTO_MODE_COUNT
};
#undef PROTO_MODE_ENUM_

#define PROTO_LOCK_MODE_ENUM_(id, name) PROTO_LOCK_##id,
enum proto_lock_mode {
	PROTO_LOCK_MODES(PROTO_LOCK_MODE_ENUM_)
	PROTO_LOCK_MODE_COUNT
};
#undef PROTO_LOCK_MODE_ENUM_

#define PROTO_LOCK_STATE_ENUM_(id, name) PROTO_LOCK_##id,
enum proto_lock_state {
	PROTO_LOCK_STATES(PROTO_LOCK_STATE_ENUM_)
	PROTO_LOCK_STATE_COUNT
};
#undef PROTO_LOCK_STATE_ENUM_

/* The wire name of op (a string constant), or NULL when op is not below PROTO_OP_COUNT. */
const char *proto_op_name(enum proto_op op);
/* The op called name, or PROTO_OP_COUNT when no op has that name. */
enum proto_op proto_op_find(const char *name);
/* The wire name of event, or NULL when event is not below PROTO_EVENT_COUNT. */
const char *proto_event_name(enum proto_event event);

/*
 * The wire names of the values of enumerated fields (NULL when the value is not below its
 * _COUNT), and back: the value called name, or -EINVAL when none has that name.
 */
const char *proto_mode_name(enum proto_mode mode);
int proto_mode_find(const char *name);
const char *proto_lock_mode_name(enum proto_lock_mode mode);
int proto_lock_mode_find(const char *name);
const char *proto_lock_state_name(enum proto_lock_state state);
int proto_lock_state_find(const char *name);

#endif
