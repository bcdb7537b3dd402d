/* SPDX-License-Identifier: MIT */
/*
 * Replies (see reply.h): the one way a request is answered, whoever answers it. The
 * dispatcher answers at once; a domain module (lock.c, resize.c, flush.c) answers a request
 * it kept when the work is done. Both call down to here, never back into the dispatcher, and
 * this file knows nothing above the connection: it counts the error in the stats, encodes the
 * reply (msg.h) and queues it (conn_send).
 */
#include "reply.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "fsdir.h"
#include "log.h"
#include "msg.h"
#include "state.h"

int reply_wire_errno(int err)
{
	return proto_errname(err) ? err : EIO;
}

/* Sends an error reply; has_id false answers with "id": null. */
static void reply_error_v(struct conn *c, bool has_id, uint64_t id, int err,
                          const char *fmt, va_list ap)
{
	char *message = NULL;
	cJSON *reply;

	if (vasprintf(&message, fmt, ap) < 0)
		message = NULL;
	if (err > 0 && err < SERVER_STAT_ERRNO_MAX)
		c->srv->stats.errors[err]++;
	reply = msg_reply_error(has_id, id, err, message);
	if (reply)
		conn_send(c, reply, NULL, 0);
	else
		log_error("out of memory answering client %llu", (unsigned long long)c->serial);
	cJSON_Delete(reply);
	free(message);
}

void reply_error(struct conn *c, uint64_t id, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_v(c, true, id, err, fmt, ap);
	va_end(ap);
}

void reply_error_noid(struct conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_v(c, false, 0, err, fmt, ap);
	va_end(ap);
}

void reply_nomem(struct conn *c, uint64_t id)
{
	reply_error(c, id, ENOMEM, "the daemon is out of memory");
}

void reply_send(struct conn *c, uint64_t id, cJSON *reply)
{
	int r;

	if (!reply) {
		reply_nomem(c, id);
		return;
	}
	r = conn_send(c, reply, NULL, 0);
	cJSON_Delete(reply);
	if (r == -ENOMEM || r == -EMSGSIZE)
		reply_error(c, id, ENOMEM, "the daemon could not encode the reply");
}

void reply_ok(struct conn *c, uint64_t id)
{
	int r = conn_send_ok(c, id);

	if (r == -ENOMEM || r == -EINVAL)
		reply_error(c, id, ENOMEM, "the daemon could not encode the reply");
}

void reply_max_regions(struct conn *c, uint64_t id)
{
	uint64_t max = c->srv->limits->max_regions;

	conn_warn(c, "refused a request: the daemon tracks max_regions (%" PRIu64 ") regions", max);
	reply_error(c, id, EAGAIN, "the daemon tracks max_regions (%" PRIu64 ") regions already; "
	            "retry once some are closed or deleted", max);
}

void reply_budget(struct conn *c, uint64_t id, const struct budget *b,
                  enum budget_item item, uint64_t n)
{
	struct budget_refusal why;

	budget_explain(b, item, n, &why);
	conn_warn(c, "refused a request: uid %lu would pass %s (%" PRIu64 " in use, %" PRIu64
	          " more asked, limit %" PRIu64 ")", (unsigned long)b->uid, why.key, why.used, n,
	          why.limit);
	reply_error(c, id, item == BUDGET_FDS ? EMFILE : EAGAIN, "uid %lu is at its budget "
	            "%s: %" PRIu64 " in use, %" PRIu64 " more asked, limit %" PRIu64,
	            (unsigned long)b->uid, why.key, why.used, n, why.limit);
}

void reply_fd_reserve(struct conn *c, uint64_t id)
{
	uint64_t reserve = c->srv->limits->reserved_fds;

	conn_warn(c, "refused a request: the daemon is within reserved_fds (%" PRIu64 ") of its "
	          "descriptor limit", reserve);
	reply_error(c, id, EMFILE, "the daemon is near its descriptor limit: the last %" PRIu64
	            " are reserved for root and its own user (reserved_fds)", reserve);
}

void reply_open_file_error(struct conn *c, uint64_t id, const char *name,
                           const struct stat *st, int err)
{
	const struct limits *l = c->srv->limits;

	if (err == EAGAIN) {
		reply_max_regions(c, id);
	} else if (err == EPERM) {
		log_warn("cannot grant region '%s': its file belongs to uid %lu with mode %04o, and the "
		         "daemon (uid %lu) may not make it its own with mode %04o", name,
		         (unsigned long)st->st_uid, (unsigned)(st->st_mode & 07777),
		         (unsigned long)geteuid(), FSDIR_FILE_MODE);
		reply_error(c, id, EPERM, "region '%s' cannot be granted: its file belongs to uid "
		            "%lu with mode %04o, and the daemon (uid %lu) grants only files it owns "
		            "with mode %04o; an administrator must chown it to the daemon's user",
		            name, (unsigned long)st->st_uid, (unsigned)(st->st_mode & 07777),
		            (unsigned long)geteuid(), FSDIR_FILE_MODE);
	} else if (err == EFBIG) {
		log_warn("cannot grant region '%s': its file is %" PRIu64 " bytes, above "
		         "max_region_size (%" PRIu64 ")", name, (uint64_t)st->st_size,
		         l->max_region_size);
		reply_error(c, id, EFBIG, "region '%s' cannot be granted: its file is larger than "
		            "max_region_size (%" PRIu64 " bytes); an administrator must truncate it "
		            "or raise the limit", name, l->max_region_size);
	} else {
		reply_fd_error(c, id, name, err);
	}
}

void reply_fd_error(struct conn *c, uint64_t id, const char *name, int err)
{
	if (err == EMFILE || err == ENFILE) {
		log_warn("out of file descriptors opening region '%s' for client %llu (pid %ld)", name,
		         (unsigned long long)c->serial, (long)c->pid);
		reply_error(c, id, err, "the daemon is out of file descriptors");
	} else if (err == EACCES || err == EPERM || err == EROFS) {
		reply_error(c, id, EACCES, "the daemon cannot open region '%s' in that mode", name);
	} else if (err == ENOMEM) {
		reply_nomem(c, id);
	} else {
		log_error("cannot open region '%s': %s", name, strerror(err));
		reply_error(c, id, reply_wire_errno(err), "cannot open region '%s': %s", name,
		            strerror(err));
	}
}

void reply_lookup_error(struct conn *c, uint64_t id, const char *name, int err)
{
	switch (err) {
	case ENOENT:
		reply_error(c, id, ENOENT, "region '%s' does not exist", name);
		break;
	case ELOOP:
		reply_error(c, id, ELOOP, "region '%s' is a symbolic link in the data directory", name);
		break;
	case EINVAL:
		reply_error(c, id, EINVAL, "'%s' in the data directory is not a regular file", name);
		break;
	case EMFILE:
	case ENFILE:
		log_warn("out of file descriptors looking up region '%s' for client %llu (pid %ld)",
		         name, (unsigned long long)c->serial, (long)c->pid);
		reply_error(c, id, err, "the daemon is out of file descriptors");
		break;
	default:
		log_error("cannot look up region '%s': %s", name, strerror(err));
		reply_error(c, id, reply_wire_errno(err), "cannot look up region '%s': %s", name,
		            strerror(err));
		break;
	}
}
