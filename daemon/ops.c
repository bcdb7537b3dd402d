/*
 * Request dispatch and the small operations (see ops.h). A frame's payload is parsed
 * strictly (msg_parse: valid UTF-8, so that no client's bytes can make a reply invalid text
 * for another), its "id" and "op" read, the op looked up in the table below, and the
 * handler run; every request read from a well-formed frame gets exactly one reply, from here
 * or, for requests that wait, from whoever finishes them. Handlers validate their own fields
 * and name the offending field in every EINVAL message; the table lists, per op, the fields
 * a request keeps while it waits.
 */
#include "ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "conn.h"
#include "fsdir.h"
#include "log.h"
#include "msg.h"
#include "name.h"
#include "region.h"
#include "state.h"
#include "utf8.h"


int ops_wire_errno(int err)
{
	return proto_errname(err) ? err : EIO;
}

/* Sends an error reply; has_id false answers with "id": null. */
static void ops_reply_error_v(struct conn *c, bool has_id, uint64_t id, int err,
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

void ops_reply_error(struct conn *c, uint64_t id, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ops_reply_error_v(c, true, id, err, fmt, ap);
	va_end(ap);
}

static void ops_reply_error_noid(struct conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void ops_reply_error_noid(struct conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ops_reply_error_v(c, false, 0, err, fmt, ap);
	va_end(ap);
}

void ops_reply_nomem(struct conn *c, uint64_t id)
{
	ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
}

void ops_reply_send(struct conn *c, uint64_t id, cJSON *reply)
{
	int r;

	if (!reply) {
		ops_reply_nomem(c, id);
		return;
	}
	r = conn_send(c, reply, NULL, 0);
	cJSON_Delete(reply);
	if (r == -ENOMEM || r == -EMSGSIZE)
		ops_reply_error(c, id, ENOMEM, "the daemon could not encode the reply");
}

const char *ops_get_name(struct conn *c, uint64_t id, const cJSON *req)
{
	const char *name;
	size_t len;
	int r;

	if (ops_get_string(c, id, req, "name", true, &name) < 0)
		return NULL;
	len = strlen(name);
	r = name_check(name, len);
	if (r == -ENAMETOOLONG) {
		ops_reply_error(c, id, ENAMETOOLONG, "field 'name' is longer than %d bytes", NAME_MAX_LEN);
		return NULL;
	}
	if (r < 0) {
		ops_reply_error(c, id, EINVAL, "field 'name' is not a valid region name: %s",
		                name_problem(name, len));
		return NULL;
	}
	return name;
}

int ops_get_u64(struct conn *c, uint64_t id, const cJSON *req, const char *key, bool required,
                uint64_t *ret)
{
	int r = msg_get_u64(req, key, ret);

	if (r == 0)
		return 1;
	if (r == -ENOENT && !required)
		return 0;
	ops_reply_error(c, id, EINVAL, r == -ENOENT ? "field '%s' is required"
	                : "field '%s' must be an integer from 0 to 2^53-1", key);
	return -1;
}

int ops_get_string(struct conn *c, uint64_t id, const cJSON *req, const char *key, bool required,
                   const char **ret)
{
	int r = msg_get_string(req, key, ret);

	if (r == 0)
		return 1;
	if (r == -ENOENT && !required)
		return 0;
	ops_reply_error(c, id, EINVAL, r == -ENOENT ? "field '%s' is required"
	                : "field '%s' must be a string", key);
	return -1;
}

int ops_get_bool(struct conn *c, uint64_t id, const cJSON *req, const char *key, bool *ret)
{
	if (msg_get_bool(req, key, ret) == -EINVAL) {
		ops_reply_error(c, id, EINVAL, "field '%s' must be true or false", key);
		return -1;
	}
	return 0;
}

int ops_check_access(struct conn *c, uint64_t id, const char *name, const struct access *a,
                     unsigned want)
{
	if (access_check(a, c, want) == 0)
		return 0;
	conn_warn(c, "denied %s access to region '%s' (owner %" PRIu32 ":%" PRIu32 ", mode %04o)",
	          access_want_name(want), name, a->uid, a->gid, a->perm);
	ops_reply_error(c, id, EACCES, "permission denied: uid %lu may not %s region '%s' "
	                "(owner %" PRIu32 ":%" PRIu32 ", mode %04o)", (unsigned long)c->uid,
	                access_want_name(want), name, a->uid, a->gid, a->perm);
	return -1;
}

/* Ends ops_get_region: checks access to the region found. */
static int ops_get_region_checked(struct conn *c, uint64_t id, const char *name, unsigned want,
                                  struct region **ret_region)
{
	if (want && *ret_region && ops_check_access(c, id, name, &(*ret_region)->acc, want) < 0) {
		ops_put_region(*ret_region);
		*ret_region = NULL;
	}
	return OPS_DONE;
}

int ops_defer(struct conn *c, uint64_t id, cJSON *req, struct region *r)
{
	if (region_defer(r, c, id, req) < 0)
		ops_reply_nomem(c, id);
	return OPS_KEPT;
}

int ops_get_region(struct conn *c, uint64_t id, cJSON *req, const char *name, unsigned want,
                   struct region **ret_region)
{
	struct region *r;
	struct stat st;
	int pathfd, ret;

	*ret_region = NULL;
	r = region_lookup(c->srv, name);
	if (r && r->state == REGION_BUSY)
		return ops_defer(c, id, req, r);
	if (r) {
		region_ref(r);
		*ret_region = r;
		return ops_get_region_checked(c, id, name, want, ret_region);
	}
	ret = fsdir_lookup(c->srv->dir_fd, name, &st, &pathfd);
	if (ret < 0) {
		ops_reply_lookup_error(c, id, name, -ret);
		return OPS_DONE;
	}
	ret = region_open_file(c->srv, name, pathfd, &st, ret_region);
	if (ret < 0)
		ops_reply_open_file_error(c, id, name, &st, -ret);
	return ops_get_region_checked(c, id, name, want, ret_region);
}

void ops_put_region(struct region *r)
{
	region_check_idle(r);
	region_unref(r);
}

void ops_reply_max_regions(struct conn *c, uint64_t id)
{
	uint64_t max = c->srv->limits->max_regions;

	conn_warn(c, "refused a request: the daemon tracks max_regions (%" PRIu64 ") regions", max);
	ops_reply_error(c, id, EAGAIN, "the daemon tracks max_regions (%" PRIu64 ") regions already; "
	                "retry once some are closed or deleted", max);
}

void ops_reply_budget(struct conn *c, uint64_t id, const struct budget *b,
                      enum budget_item item, uint64_t n)
{
	uint64_t max = budget_limit(c->srv, item);

	conn_warn(c, "refused a request: uid %lu would pass %s (%" PRIu64 " in use, %" PRIu64
	          " more asked, limit %" PRIu64 ")", (unsigned long)b->uid, budget_key(item),
	          b->used[item], n, max);
	ops_reply_error(c, id, item == BUDGET_FDS ? EMFILE : EAGAIN, "uid %lu is at its budget "
	                "%s: %" PRIu64 " in use, %" PRIu64 " more asked, limit %" PRIu64,
	                (unsigned long)b->uid, budget_key(item), b->used[item], n, max);
}

void ops_reply_fd_reserve(struct conn *c, uint64_t id)
{
	uint64_t reserve = c->srv->limits->reserved_fds;

	conn_warn(c, "refused a request: the daemon is within reserved_fds (%" PRIu64 ") of its "
	          "descriptor limit", reserve);
	ops_reply_error(c, id, EMFILE, "the daemon is near its descriptor limit: the last %" PRIu64
	                " are reserved for root and its own user (reserved_fds)", reserve);
}

void ops_reply_open_file_error(struct conn *c, uint64_t id, const char *name,
                               const struct stat *st, int err)
{
	const struct limits *l = c->srv->limits;

	if (err == EAGAIN) {
		ops_reply_max_regions(c, id);
	} else if (err == EPERM) {
		log_warn("cannot grant region '%s': its file belongs to uid %lu with mode %04o, and the "
		         "daemon (uid %lu) may not make it its own with mode %04o", name,
		         (unsigned long)st->st_uid, (unsigned)(st->st_mode & 07777),
		         (unsigned long)geteuid(), FSDIR_FILE_MODE);
		ops_reply_error(c, id, EPERM, "region '%s' cannot be granted: its file belongs to uid "
		                "%lu with mode %04o, and the daemon (uid %lu) grants only files it owns "
		                "with mode %04o; an administrator must chown it to the daemon's user",
		                name, (unsigned long)st->st_uid, (unsigned)(st->st_mode & 07777),
		                (unsigned long)geteuid(), FSDIR_FILE_MODE);
	} else if (err == EFBIG) {
		log_warn("cannot grant region '%s': its file is %" PRIu64 " bytes, above "
		         "max_region_size (%" PRIu64 ")", name, (uint64_t)st->st_size,
		         l->max_region_size);
		ops_reply_error(c, id, EFBIG, "region '%s' cannot be granted: its file is larger than "
		                "max_region_size (%" PRIu64 " bytes); an administrator must truncate it "
		                "or raise the limit", name, l->max_region_size);
	} else {
		ops_reply_fd_error(c, id, name, err);
	}
}

void ops_reply_fd_error(struct conn *c, uint64_t id, const char *name, int err)
{
	if (err == EMFILE || err == ENFILE) {
		log_warn("out of file descriptors opening region '%s' for client %llu (pid %ld)", name,
		         (unsigned long long)c->serial, (long)c->pid);
		ops_reply_error(c, id, err, "the daemon is out of file descriptors");
	} else if (err == EACCES || err == EPERM || err == EROFS) {
		ops_reply_error(c, id, EACCES, "the daemon cannot open region '%s' in that mode", name);
	} else if (err == ENOMEM) {
		ops_reply_nomem(c, id);
	} else {
		log_error("cannot open region '%s': %s", name, strerror(err));
		ops_reply_error(c, id, ops_wire_errno(err), "cannot open region '%s': %s", name,
		                strerror(err));
	}
}

size_t ops_json_len(const cJSON *obj)
{
	char *text = msg_print(obj, false);
	size_t len;

	if (!text)
		return 0;
	len = strlen(text);
	cJSON_free(text);
	return len;
}

int ops_json_set_true(cJSON *obj, const char *key)
{
	cJSON *yes = cJSON_CreateTrue();

	if (!yes || !cJSON_ReplaceItemInObjectCaseSensitive(obj, key, yes)) {
		cJSON_Delete(yes);
		return -ENOMEM;
	}
	return 0;
}

/* Adds the per-uid budgets and the reserve to a limits object. Returns false on ENOMEM. */
static bool ops_limits_budgets(const struct server *srv, cJSON *obj)
{
	for (int i = 0; i < BUDGET_NITEMS; i++)
		if (!cJSON_AddNumberToObject(obj, budget_key((enum budget_item)i),
		                             (double)budget_limit(srv, (enum budget_item)i)))
			return false;
	return cJSON_AddNumberToObject(obj, "reserved_clients",
	                               (double)srv->limits->reserved_clients) &&
	       cJSON_AddNumberToObject(obj, "reserved_fds", (double)srv->limits->reserved_fds);
}

cJSON *ops_limits_json(const struct conn *c)
{
	const struct limits *l = c->srv->limits;
	cJSON *obj = cJSON_CreateObject();

	if (!obj)
		return NULL;
	if (!cJSON_AddNumberToObject(obj, "max_frame", (double)l->max_frame) ||
	    !cJSON_AddNumberToObject(obj, "max_clients", (double)l->max_clients) ||
	    !cJSON_AddNumberToObject(obj, "max_grants_per_client", (double)l->max_grants_per_client) ||
	    !cJSON_AddNumberToObject(obj, "max_fds_in_flight", (double)l->max_fds_in_flight) ||
	    !cJSON_AddNumberToObject(obj, "max_region_size", (double)l->max_region_size) ||
	    !cJSON_AddNumberToObject(obj, "max_name", NAME_MAX_LEN) ||
	    !cJSON_AddNumberToObject(obj, "max_locks_per_client", (double)l->max_locks_per_client) ||
	    !cJSON_AddNumberToObject(obj, "max_subscriptions_per_client",
	                             (double)l->max_subscriptions_per_client) ||
	    !cJSON_AddNumberToObject(obj, "shrink_timeout_ms", (double)l->shrink_timeout_ms) ||
	    !cJSON_AddNumberToObject(obj, "event_backlog_bytes", (double)l->event_backlog_bytes) ||
	    !cJSON_AddNumberToObject(obj, "max_pending_ranges", (double)l->max_pending_ranges) ||
	    !cJSON_AddNumberToObject(obj, "size_check_ms", (double)l->size_check_ms) ||
	    !ops_limits_budgets(c->srv, obj)) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

static int ops_hello(struct conn *c, uint64_t id, cJSON *req)
{
	static const char *const features[] = {
		"file", "anonymous", "cow", "window", "sparse",
		"locks", "resize", "notify", "flush", "policy", "exec", "huge",
	};
	const char *client = NULL;
	cJSON *reply, *limits, *list;
	uint64_t version;
	size_t i;

	if (ops_get_u64(c, id, req, "version", true, &version) < 0)
		return OPS_DONE;
	if (ops_get_string(c, id, req, "client", false, &client) < 0)
		return OPS_DONE;
	if (client && strlen(client) > OPS_CLIENT_NAME_MAX) {
		ops_reply_error(c, id, EINVAL, "field 'client' is longer than %d bytes",
		                OPS_CLIENT_NAME_MAX);
		return OPS_DONE;
	}
	if (version < PROTO_VERSION_MIN) {
		ops_reply_error(c, id, EPROTONOSUPPORT,
		                "protocol version %" PRIu64 " is not supported; this server speaks %d to %d",
		                version, PROTO_VERSION_MIN, PROTO_VERSION);
		return OPS_DONE;
	}

	reply = msg_reply_ok(id);
	limits = ops_limits_json(c);
	list = cJSON_CreateArray();
	if (!reply || !limits || !list)
		goto nomem;
	for (i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		cJSON *s = cJSON_CreateString(features[i]);

		if (!s || !cJSON_AddItemToArray(list, s)) {
			cJSON_Delete(s);
			goto nomem;
		}
	}
	c->version = version < PROTO_VERSION ? (unsigned)version : PROTO_VERSION;
	if (!cJSON_AddNumberToObject(reply, "version", (double)c->version) ||
	    !cJSON_AddStringToObject(reply, "server", "mmapd " MMAPD_VERSION_STRING) ||
	    !cJSON_AddItemToObject(reply, "features", list))
		goto nomem;
	list = NULL;
	if (!cJSON_AddItemToObject(reply, "limits", limits))
		goto nomem;
	limits = NULL;

	free(c->client_name);
	c->client_name = client ? strdup(client) : NULL;
	/* The name goes to the log: nothing in it may forge a line or a terminal escape. */
	for (char *p = c->client_name; p && *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	conn_hello_done(c);
	log_debug("client %llu (pid %ld, uid %lu) says hello: \"%s\", protocol %u",
	          (unsigned long long)c->serial, (long)c->pid, (unsigned long)c->uid,
	          c->client_name ? c->client_name : "", c->version);
	ops_reply_send(c, id, reply);
	return OPS_DONE;

nomem:
	cJSON_Delete(reply);
	cJSON_Delete(limits);
	cJSON_Delete(list);
	ops_reply_nomem(c, id);
	return OPS_DONE;
}

static int ops_ping(struct conn *c, uint64_t id, cJSON *req)
{
	(void)req;
	ops_reply_send(c, id, msg_reply_ok(id));
	return OPS_DONE;
}

static int ops_close(struct conn *c, uint64_t id, cJSON *req)
{
	struct grant *g;
	uint64_t handle;

	if (ops_get_u64(c, id, req, "handle", true, &handle) < 0)
		return OPS_DONE;
	g = grant_find(c, handle);
	if (!g) {
		ops_reply_error(c, id, EBADF, "no grant with handle %" PRIu64 " on this connection",
		                handle);
		return OPS_DONE;
	}
	grant_free(g);
	ops_reply_send(c, id, msg_reply_ok(id));
	return OPS_DONE;
}

static int ops_stat(struct conn *c, uint64_t id, cJSON *req)
{
	struct region *r;
	struct stat st;
	const char *name;
	cJSON *reply, *obj;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name)
		return OPS_DONE;
	r = region_lookup(c->srv, name);
	if (r && r->state == REGION_BUSY)
		return ops_defer(c, id, req, r);
	if (r) {
		if (ops_check_access(c, id, name, &r->acc, ACCESS_READ) < 0)
			return OPS_DONE;
		obj = region_to_json(r);
	} else {
		struct access acc;

		ret = fsdir_lookup(c->srv->dir_fd, name, &st, NULL);
		if (ret < 0) {
			ops_reply_lookup_error(c, id, name, -ret);
			return OPS_DONE;
		}
		region_file_access(c->srv, name, &st, &acc);
		if (ops_check_access(c, id, name, &acc, ACCESS_READ) < 0)
			return OPS_DONE;
		obj = region_file_json(c->srv, name, &st);
	}
	reply = msg_reply_ok(id);
	if (!obj || !reply || !cJSON_AddItemToObject(reply, "region", obj)) {
		cJSON_Delete(obj);
		cJSON_Delete(reply);
		reply = NULL;
	}
	ops_reply_send(c, id, reply);
	return OPS_DONE;
}

void ops_reply_lookup_error(struct conn *c, uint64_t id, const char *name, int err)
{
	switch (err) {
	case ENOENT:
		ops_reply_error(c, id, ENOENT, "region '%s' does not exist", name);
		break;
	case ELOOP:
		ops_reply_error(c, id, ELOOP, "region '%s' is a symbolic link in the data directory", name);
		break;
	case EINVAL:
		ops_reply_error(c, id, EINVAL, "'%s' in the data directory is not a regular file", name);
		break;
	case EMFILE:
	case ENFILE:
		log_warn("out of file descriptors looking up region '%s' for client %llu (pid %ld)",
		         name, (unsigned long long)c->serial, (long)c->pid);
		ops_reply_error(c, id, err, "the daemon is out of file descriptors");
		break;
	default:
		log_error("cannot look up region '%s': %s", name, strerror(err));
		ops_reply_error(c, id, ops_wire_errno(err), "cannot look up region '%s': %s", name,
		                strerror(err));
		break;
	}
}

/* The fields each op reads, which a request keeps while it waits (ops_request_trim). */
static const char *const fields_none[] = { "op", NULL };
static const char *const fields_name[] = { "op", "name", NULL };
static const char *const fields_open[] = {
	"op", "name", "mode", "create", "exclusive", "size", "anonymous", "sparse", "policy", "perm",
	"exec", "huge", NULL,
};
static const char *const fields_lock[] = {
	"op", "name", "offset", "length", "mode", "wait", "timeout_ms", NULL,
};
static const char *const fields_range[] = { "op", "name", "offset", "length", NULL };
static const char *const fields_resize[] = { "op", "name", "size", "sparse", NULL };
static const char *const fields_policy[] = { "op", "name", "policy", NULL };
static const char *const fields_chown[] = { "op", "name", "uid", "gid", NULL };
static const char *const fields_chmod[] = { "op", "name", "perm", NULL };
/* Within a policy object. */
static const char *const fields_policy_object[] = { "kind", "value", NULL };

static const struct {
	const char *name;
	ops_handler fn;
	const char *const *fields;
} ops_table[] = {
	{ "hello", ops_hello, fields_none },
	{ "ping", ops_ping, fields_none },
	{ "open", ops_open, fields_open },
	{ "close", ops_close, fields_none },
	{ "stat", ops_stat, fields_name },
	{ "list", ops_list, fields_none },
	{ "delete", ops_delete, fields_name },
	{ "status", ops_status, fields_none },
	{ "lock", ops_lock, fields_lock },
	{ "unlock", ops_unlock, fields_none },
	{ "locks", ops_locks, fields_name },
	{ "resize", ops_resize, fields_resize },
	{ "shrink-ack", ops_shrink_ack, fields_none },
	{ "subscribe", ops_subscribe, fields_name },
	{ "unsubscribe", ops_unsubscribe, fields_name },
	{ "changed", ops_changed, fields_range },
	{ "flush", ops_flush, fields_range },
	{ "clear-error", ops_clear_error, fields_name },
	{ "set-policy", ops_set_policy, fields_policy },
	{ "chown", ops_chown, fields_chown },
	{ "chmod", ops_chmod, fields_chmod },
	{ "clients", ops_clients, fields_none },
	{ "stats", ops_stats, fields_none },
};

#define OPS_COUNT (sizeof(ops_table) / sizeof(ops_table[0]))

_Static_assert(OPS_COUNT < SERVER_STAT_OPS_MAX, "the stats have a slot per op and one more");

const char *ops_name(size_t i)
{
	return i < OPS_COUNT ? ops_table[i].name : NULL;
}

#define OPS_ECHO_MAX 64   /* the most of an unknown op's name its error message repeats */

/* The index of op in the table, or OPS_COUNT when it is unknown. */
static size_t ops_find(const char *op)
{
	size_t i;

	for (i = 0; i < OPS_COUNT; i++)
		if (strcmp(op, ops_table[i].name) == 0)
			break;
	return i;
}

/* Deletes every member of obj not named in keep (a NULL-terminated list). */
static void ops_trim_object(cJSON *obj, const char *const *keep)
{
	cJSON *item = obj->child;

	while (item) {
		cJSON *next = item->next;
		size_t i;

		for (i = 0; keep[i]; i++)
			if (item->string && strcmp(item->string, keep[i]) == 0)
				break;
		if (!keep[i])
			cJSON_Delete(cJSON_DetachItemViaPointer(obj, item));
		else if (strcmp(keep[i], "policy") == 0 && cJSON_IsObject(item))
			ops_trim_object(item, fields_policy_object);
		item = next;
	}
}

cJSON *ops_request_trim(cJSON *req)
{
	const char *op = NULL;
	size_t i;

	/* Requests wait only after their handler checked them, so "op" names a known op. */
	if (msg_get_string(req, "op", &op) < 0)
		return req;
	i = ops_find(op);
	if (i < OPS_COUNT)
		ops_trim_object(req, ops_table[i].fields);
	return req;
}

void ops_run(struct conn *c, uint64_t id, cJSON *req)
{
	const char *op;
	size_t i;

	if (!conn_alive(c)) {
		cJSON_Delete(req);
		return;
	}
	if (ops_get_string(c, id, req, "op", true, &op) < 0)
		goto done;
	i = ops_find(op);
	if (i == OPS_COUNT) {
		/* At most OPS_ECHO_MAX bytes of it, cut before a character rather than inside one. */
		int n = (int)strnlen(op, OPS_ECHO_MAX);

		while (n > 0 && ((unsigned char)op[n] & 0xc0) == 0x80)
			n--;
		ops_reply_error(c, id, ENOSYS, "unknown op '%.*s'", n, op);
		goto done;
	}
	if (ops_table[i].fn == ops_hello ? c->hello_done : !c->hello_done) {
		ops_reply_error(c, id, EPROTO, c->hello_done ? "hello was already sent on this connection"
		                                            : "send hello first");
		goto done;
	}
	if (ops_table[i].fn(c, id, req) == OPS_KEPT)
		return;
done:
	cJSON_Delete(req);
}

void ops_handle_frame(struct conn *c, const char *payload, size_t len)
{
	cJSON *req = NULL;
	const char *op;
	uint64_t id;
	int r;

	r = msg_parse(payload, len, &req);
	if (r == -ENOMEM) {
		ops_reply_error_noid(c, ENOMEM, "the daemon is out of memory");
		return;
	}
	if (r == -EILSEQ) {
		size_t bad = 0;

		/* Only the offset: the bytes themselves would make this reply invalid too. */
		utf8_check(payload, len, &bad);
		ops_reply_error_noid(c, EBADMSG, "the request is not valid UTF-8 at byte %zu", bad);
		return;
	}
	if (r < 0) {
		ops_reply_error_noid(c, EBADMSG, "the request is not a well-formed JSON object "
		                     "(at most %d levels deep, no \\u0000 in strings)", PROTO_JSON_DEPTH_MAX);
		return;
	}
	r = msg_get_u64(req, "id", &id);
	if (r < 0) {
		ops_reply_error_noid(c, EINVAL, r == -ENOENT ? "field 'id' is required"
		                     : "field 'id' must be an integer from 0 to 2^53-1");
		cJSON_Delete(req);
		return;
	}
	/* Counted once here: a request that waits runs through ops_run again. */
	c->srv->stats.requests[msg_get_string(req, "op", &op) == 0 ? ops_find(op) : OPS_COUNT]++;
	ops_run(c, id, req);
}
