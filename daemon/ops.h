/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher: the protocol's operations, from request parsing and validation to the
 * handlers of docs/protocol.md and docs/coordination.md. One thing per file: ops_table.c the
 * op table and dispatch; ops_session.c hello, ping and close; ops_region.c open, delete and
 * stat, which may wait on a busy region or on the thread pool; ops_list.c list and status,
 * which read the data directory; ops_coord.c the coordination ops (locks, resize, change
 * notification, flush and policy), which check their fields and hand the work to lock.c,
 * resize.c, notify.c and flush.c; ops_admin.c chown, chmod, clients and stats; ops_manage.c rename and copy; ops_truncate.c
 * open's truncate and truncate-on-close; and the
 * handlers' helpers: ops_get.c (field readers), ops_getregion.c (region getters), ops_json.c
 * (JSON helpers). Replies go through reply.h, which the domain modules use too. Nothing
 * below this layer calls it by name: the server hands it frames and continuations (state.h).
 */
#ifndef MMAPD_DAEMON_OPS_H
#define MMAPD_DAEMON_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>

#include "budget.h"
#include "region.h"
#include "reply.h"

#define OPS_CLIENT_NAME_MAX 64   /* the longest client name hello takes */

struct access;
struct conn;
struct grant;
struct policy;
struct region;

/* Handles one frame's payload from c: parses it, runs the op, sends the reply. */
void ops_handle_frame(struct conn *c, const char *payload, size_t len);

/*
 * Runs a parsed request (consumed) again after it waited on a busy region. Drops it if the
 * connection can no longer take replies.
 */
void ops_run(struct conn *c, uint64_t id, cJSON *req);

/*
 * Drops every field of req that no op reads, so a request kept waiting costs little memory
 * whatever padding the client sent. Returns req.
 */
cJSON *ops_request_trim(cJSON *req);

/* Results of a handler: whether it kept the request (to run it again later). */
#define OPS_DONE 0
#define OPS_KEPT 1

typedef int (*ops_handler)(struct conn *c, uint64_t id, cJSON *req);

/* Handlers (ops_session.c, ops_region.c, ops_list.c, ops_coord.c, ops_admin.c, ops_manage.c,
 * ops_truncate.c). */
int ops_hello(struct conn *c, uint64_t id, cJSON *req);
int ops_ping(struct conn *c, uint64_t id, cJSON *req);
int ops_close(struct conn *c, uint64_t id, cJSON *req);
int ops_stat(struct conn *c, uint64_t id, cJSON *req);
int ops_open(struct conn *c, uint64_t id, cJSON *req);
int ops_delete(struct conn *c, uint64_t id, cJSON *req);
int ops_list(struct conn *c, uint64_t id, cJSON *req);
int ops_status(struct conn *c, uint64_t id, cJSON *req);
int ops_lock(struct conn *c, uint64_t id, cJSON *req);
int ops_unlock(struct conn *c, uint64_t id, cJSON *req);
int ops_locks(struct conn *c, uint64_t id, cJSON *req);
int ops_control(struct conn *c, uint64_t id, cJSON *req);
int ops_resize(struct conn *c, uint64_t id, cJSON *req);
int ops_shrink_ack(struct conn *c, uint64_t id, cJSON *req);
int ops_subscribe(struct conn *c, uint64_t id, cJSON *req);
int ops_unsubscribe(struct conn *c, uint64_t id, cJSON *req);
int ops_changed(struct conn *c, uint64_t id, cJSON *req);
int ops_flush(struct conn *c, uint64_t id, cJSON *req);
int ops_clear_error(struct conn *c, uint64_t id, cJSON *req);
int ops_set_policy(struct conn *c, uint64_t id, cJSON *req);
int ops_chown(struct conn *c, uint64_t id, cJSON *req);
int ops_chmod(struct conn *c, uint64_t id, cJSON *req);
int ops_clients(struct conn *c, uint64_t id, cJSON *req);
int ops_stats(struct conn *c, uint64_t id, cJSON *req);
int ops_rename(struct conn *c, uint64_t id, cJSON *req);
int ops_copy(struct conn *c, uint64_t id, cJSON *req);
int ops_truncate_on_close(struct conn *c, uint64_t id, cJSON *req);
int ops_adopt(struct conn *c, uint64_t id, cJSON *req);

/*
 * The op table, one X(op, handler, fields) per op of proto/vocab.h's PROTO_OPS (op is the
 * PROTO_OP_ suffix; the index of the stats' request counters is enum proto_op): ops_table.c
 * makes the dispatch table of it, with the per-op lists of fields a waiting request keeps
 * (fields_*, defined there), and checks at compile time that it pairs every proto op with a
 * handler exactly once; ops_admin.c takes the stats' names from proto_op_name.
 */
#define OPS_TABLE(X) \
	X(HELLO, ops_hello, fields_none) \
	X(PING, ops_ping, fields_none) \
	X(OPEN, ops_open, fields_open) \
	X(CLOSE, ops_close, fields_none) \
	X(STAT, ops_stat, fields_name) \
	X(LIST, ops_list, fields_none) \
	X(DELETE, ops_delete, fields_name) \
	X(STATUS, ops_status, fields_none) \
	X(LOCK, ops_lock, fields_lock) \
	X(UNLOCK, ops_unlock, fields_none) \
	X(LOCKS, ops_locks, fields_name) \
	X(CONTROL, ops_control, fields_none) \
	X(RESIZE, ops_resize, fields_resize) \
	X(SHRINK_ACK, ops_shrink_ack, fields_none) \
	X(SUBSCRIBE, ops_subscribe, fields_subscribe) \
	X(UNSUBSCRIBE, ops_unsubscribe, fields_name) \
	X(CHANGED, ops_changed, fields_changed) \
	X(FLUSH, ops_flush, fields_range) \
	X(CLEAR_ERROR, ops_clear_error, fields_name) \
	X(SET_POLICY, ops_set_policy, fields_policy) \
	X(CHOWN, ops_chown, fields_chown) \
	X(CHMOD, ops_chmod, fields_chmod) \
	X(CLIENTS, ops_clients, fields_none) \
	X(STATS, ops_stats, fields_none) \
	X(RENAME, ops_rename, fields_rename) \
	X(COPY, ops_copy, fields_copy) \
	X(TRUNCATE_ON_CLOSE, ops_truncate_on_close, fields_resize) \
	X(ADOPT, ops_adopt, fields_none)

/* Helpers shared by the handlers: the field readers (ops_get.c), the region getters
 * (ops_getregion.c) and the JSON helpers (ops_json.c). */

/*
 * Reads and checks the "name" field. Returns the name (borrowed from req), or NULL after
 * answering the request with EINVAL or ENAMETOOLONG.
 */
const char *ops_get_name(struct conn *c, uint64_t id, const cJSON *req);

/*
 * Reads integer field key: returns 1 with *ret set, 0 when it is absent and not required,
 * or -1 after answering EINVAL (missing, or not an integer from 0 to 2^53-1).
 */
int ops_get_u64(struct conn *c, uint64_t id, const cJSON *req, const char *key, bool required,
                uint64_t *ret);
/*
 * Reads string field key (borrowed from req): returns 1 with *ret set, 0 when it is absent
 * and not required (*ret untouched), or -1 after answering EINVAL (missing, or not a string).
 */
int ops_get_string(struct conn *c, uint64_t id, const cJSON *req, const char *key, bool required,
                   const char **ret);
/* Reads optional boolean field key into *ret. Returns 0, or -1 after answering EINVAL. */
int ops_get_bool(struct conn *c, uint64_t id, const cJSON *req, const char *key, bool *ret);

/*
 * Finds region name for a request that needs the daemon to hold it: the table's, or the
 * file region opened and put in the table now, and checks that c may do want to it
 * (ACCESS_READ, ACCESS_WRITE; 0 checks nothing). Returns OPS_KEPT when req waits behind a
 * busy region; otherwise OPS_DONE, with *ret_region referenced (release it with
 * ops_put_region) or NULL after answering the error.
 */
int ops_get_region(struct conn *c, uint64_t id, cJSON *req, const char *name, unsigned want,
                   struct region **ret_region);
/*
 * Checks that c may do want to region name owned as a says; if not, logs it at warn and
 * answers EACCES. Returns 0, or -1 after answering.
 */
int ops_check_access(struct conn *c, uint64_t id, const char *name, const struct access *a,
                     unsigned want);
/*
 * Checks that c may do want to region r: its owner and mode (ops_check_access), and for an
 * adopted region the descriptors behind it (adopt.h). Returns 0, or -1 after answering.
 */
int ops_check_region(struct conn *c, uint64_t id, const struct region *r, unsigned want);
/*
 * Checks the per-client limits and budgets a grant runs into (max_grants_per_client,
 * max_fds_in_flight, the uid's descriptors). Returns 0, or -1 after answering EAGAIN or
 * EMFILE. created: the grant of a region c just created, whose descriptor was charged with
 * the region. The daemon's descriptor reserve is checked on the grant's own descriptor, and
 * before a creation (ops_open). (ops_region.c)
 */
int ops_admit_grant(struct conn *c, uint64_t id, bool created);
/*
 * Checks that c may create region name: allow_create and max_regions_created_per_client;
 * what ("the creation of", "the copy to") names the request in the log. Returns 0, or -1
 * after answering EACCES or EAGAIN. (ops_region.c)
 */
int ops_admit_create(struct conn *c, uint64_t id, const char *name, const char *what);
/*
 * Makes a grant of r for c in mode (executable if exec) and sends the reply with its
 * descriptor (the reply of open and adopt), answering any failure itself. created: the
 * request made r, which is granted whatever r's mode says, as open(2) with O_CREAT is.
 * (ops_region.c)
 */
void ops_grant(struct conn *c, uint64_t id, struct region *r, enum region_mode mode,
               bool exec, bool created);
/*
 * Saves file region r's metadata and answers request id once it is on disk (at once for an
 * anonymous region, whose state goes to the fd store instead, fdstore.h); with p, the reply
 * carries the policy. (ops_coord.c)
 */
void ops_save_region(struct conn *c, uint64_t id, struct region *r, const struct policy *p);
/*
 * Reads the required "handle" field and finds that grant of c. Returns it, or NULL after
 * answering EINVAL (no valid handle) or EBADF (no such grant on this connection).
 */
struct grant *ops_get_grant(struct conn *c, uint64_t id, const cJSON *req);
/* Releases a region from ops_get_region; a file region nothing needs leaves the table. */
void ops_put_region(struct region *r);

/*
 * Parks req behind busy region r until the region settles (region_defer), answering ENOMEM
 * if it cannot. Returns OPS_KEPT, for the handler to return.
 */
int ops_defer(struct conn *c, uint64_t id, cJSON *req, struct region *r);

/* Length of obj printed compactly, or 0 on ENOMEM. */
size_t ops_json_len(const cJSON *obj);
/* Sets obj's existing member key (a "more" or "truncated" flag) to true. Returns 0 or -ENOMEM. */
int ops_json_set_true(cJSON *obj, const char *key);

/*
 * open with "truncate" of region r (held by the caller, referenced; not busy), which exists:
 * checks that c may (write access, a file region nobody holds), empties it and sizes it to
 * size (sparse: without reserving blocks) on the thread pool, then runs req (consumed) again
 * without "truncate", which grants it. Returns OPS_KEPT, or OPS_DONE after answering the
 * error (req then stays the caller's). (ops_truncate.c)
 */
int ops_open_truncate(struct conn *c, uint64_t id, cJSON *req, struct region *r, uint64_t size,
                      bool sparse);

/* Limits of the hello and status replies. NULL on ENOMEM. */
cJSON *ops_limits_json(const struct conn *c);

#endif
