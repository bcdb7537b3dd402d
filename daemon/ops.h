/*
 * The protocol's operations: request parsing and validation, the dispatch table, and the
 * handlers of hello, ping, open, close, stat, list, delete and status (docs/protocol.md).
 * ops.c holds the dispatch and the small ops; ops_region.c open and delete, which may wait
 * on a busy region or on the thread pool; ops_list.c list and status, which read the data
 * directory.
 */
#ifndef MMAPD_DAEMON_OPS_H
#define MMAPD_DAEMON_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct conn;

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

/* Handlers (ops_region.c, ops_list.c). */
int ops_open(struct conn *c, uint64_t id, cJSON *req);
int ops_delete(struct conn *c, uint64_t id, cJSON *req);
int ops_list(struct conn *c, uint64_t id, cJSON *req);
int ops_status(struct conn *c, uint64_t id, cJSON *req);

/* Helpers shared by the handlers (ops.c). */

/* Sends {"id", "ok": false, "error": {...}} with a formatted message. err is positive. */
void ops_reply_error(struct conn *c, uint64_t id, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* {"id": id, "ok": true} with an exact integer id. NULL on ENOMEM. */
cJSON *ops_reply_new(uint64_t id);
/* Sends reply (consumed, may be NULL after a failed allocation: ENOMEM is answered). */
void ops_reply_send(struct conn *c, uint64_t id, cJSON *reply);
/* Adds an integer field printed exactly (cJSON would print 1e+15). Returns false on ENOMEM. */
bool ops_json_add_u64(cJSON *obj, const char *key, uint64_t v);
/* The errno to put on the wire for a local failure: err if the protocol names it, else EIO. */
int ops_wire_errno(int err);

/*
 * Reads and checks the "name" field. Returns the name (borrowed from req), or NULL after
 * answering the request with EINVAL or ENAMETOOLONG.
 */
const char *ops_get_name(struct conn *c, uint64_t id, const cJSON *req);

/* Answers a failed fsdir_lookup (ENOENT, ELOOP, EINVAL, ...) for region name. */
void ops_reply_lookup_error(struct conn *c, uint64_t id, const char *name, int err);

/* Limits of the hello and status replies. NULL on ENOMEM. */
cJSON *ops_limits_json(const struct conn *c);

#endif
