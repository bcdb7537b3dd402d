/* SPDX-License-Identifier: MIT */
/*
 * Replies to requests: the layer below both the dispatcher (ops*.c) and the domain modules
 * that answer a request later (lock.c, resize.c, flush.c), so that neither calls the other to
 * answer. Every function sends exactly one reply on c for request id (an error reply also
 * counts in the stats op's errors), or logs that it could not for lack of memory.
 */
#ifndef MMAPD_DAEMON_REPLY_H
#define MMAPD_DAEMON_REPLY_H

#include <stdint.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>

#include "budget.h"

struct conn;

/* Sends {"id", "ok": false, "error": {...}} with a formatted message. err is positive. */
void reply_error(struct conn *c, uint64_t id, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Sends the ENOMEM error "the daemon is out of memory". */
void reply_nomem(struct conn *c, uint64_t id);
/* Sends reply (consumed, may be NULL after a failed allocation: ENOMEM is answered). */
void reply_send(struct conn *c, uint64_t id, cJSON *reply);
/* Sends {"id", "ok": true}, as reply_send(c, id, msg_reply_ok(id)) without the tree. */
void reply_ok(struct conn *c, uint64_t id);
/* The errno to put on the wire for a local failure: err if the protocol names it, else EIO. */
int reply_wire_errno(int err);

/*
 * Sends an error reply with "id": null, for a request whose id could not be read. err is
 * positive.
 */
void reply_error_noid(struct conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Answers a failed fsdir_lookup (ENOENT, ELOOP, EINVAL, ...) for region name. */
void reply_lookup_error(struct conn *c, uint64_t id, const char *name, int err);
/* Answers a failure to open region name's file (err positive). */
void reply_fd_error(struct conn *c, uint64_t id, const char *name, int err);
/*
 * Answers a failed region_open_file of name (st: the file's stat, err positive): EAGAIN
 * (max_regions), EPERM (the daemon may not take the file over: who owns it, its mode and
 * what an administrator must do), EFBIG (larger than max_region_size), else as
 * reply_fd_error. Logs the EPERM and EFBIG cases, which an administrator must fix.
 */
void reply_open_file_error(struct conn *c, uint64_t id, const char *name,
                               const struct stat *st, int err);
/* Answers EAGAIN for a region that would pass max_regions. */
void reply_max_regions(struct conn *c, uint64_t id);
/*
 * Answers EAGAIN for a request that would take the budget b of uid past its item's limit
 * (n more of it), naming the budget; EMFILE for descriptors (the reserve included).
 */
void reply_budget(struct conn *c, uint64_t id, const struct budget *b,
                      enum budget_item item, uint64_t n);
/* Answers EMFILE: the daemon's last reserved_fds descriptors are kept for root and its uid. */
void reply_fd_reserve(struct conn *c, uint64_t id);

#endif
