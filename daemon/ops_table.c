/* SPDX-License-Identifier: MIT */
/*
 * Request dispatch (see ops.h). A frame's payload is parsed strictly (msg_parse: valid UTF-8,
 * so that no client's bytes can make a reply invalid text for another), its "id" and "op"
 * read, the op looked up in the table below, and the handler run; every request read from a
 * well-formed frame gets exactly one reply, from here or, for requests that wait, from
 * whoever finishes them. Handlers validate their own fields and name the offending field in
 * every EINVAL message; the table lists, per op, the fields a request keeps while it waits.
 */
#include "ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "msg.h"
#include "state.h"
#include "utf8.h"
#include "vocab.h"

/* The fields each op reads, which a request keeps while it waits (ops_request_trim). */
static const char *const fields_none[] = { PROTO_FIELD_OP, NULL };
static const char *const fields_name[] = { PROTO_FIELD_OP, PROTO_FIELD_NAME, NULL };
static const char *const fields_open[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_MODE, PROTO_FIELD_CREATE,
	PROTO_FIELD_EXCLUSIVE, PROTO_FIELD_SIZE, PROTO_FIELD_ANONYMOUS, PROTO_FIELD_SPARSE,
	PROTO_FIELD_POLICY, PROTO_FIELD_PERM, PROTO_FIELD_EXEC, PROTO_FIELD_HUGE,
	PROTO_FIELD_TEMPORARY, PROTO_FIELD_TRUNCATE, NULL,
};
static const char *const fields_lock[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_OFFSET, PROTO_FIELD_LENGTH, PROTO_FIELD_MODE,
	PROTO_FIELD_WAIT, PROTO_FIELD_TIMEOUT_MS, NULL,
};
static const char *const fields_range[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_OFFSET, PROTO_FIELD_LENGTH, NULL,
};
static const char *const fields_subscribe[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_PAGE, PROTO_FIELD_EXTERNAL, NULL,
};
static const char *const fields_changed[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_OFFSET, PROTO_FIELD_LENGTH,
	PROTO_FIELD_DOORBELL, NULL,
};
static const char *const fields_resize[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_SIZE, PROTO_FIELD_SPARSE, NULL,
};
static const char *const fields_policy[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_POLICY, NULL,
};
static const char *const fields_chown[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_UID, PROTO_FIELD_GID, NULL,
};
static const char *const fields_chmod[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_PERM, NULL,
};
static const char *const fields_rename[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_TO, PROTO_FIELD_REPLACE, NULL,
};
static const char *const fields_copy[] = {
	PROTO_FIELD_OP, PROTO_FIELD_NAME, PROTO_FIELD_TO, PROTO_FIELD_REPLACE, PROTO_FIELD_PERM, NULL,
};
/* Within a policy object. */
static const char *const fields_policy_object[] = { PROTO_FIELD_KIND, PROTO_FIELD_VALUE, NULL };

/* Indexed by enum proto_op: the op's name is proto_op_name(i). */
static const struct {
	ops_handler fn;
	const char *const *fields;
} ops_table[] = {
#define OPS_ENTRY(op, fn, fields) [PROTO_OP_##op] = { fn, fields },
	OPS_TABLE(OPS_ENTRY)
#undef OPS_ENTRY
};

/*
 * Every proto op has exactly one handler: an op listed twice in OPS_TABLE is a duplicate
 * enumerator here, an op proto/vocab.h does not list an undeclared PROTO_OP_, and with no
 * duplicates and no strangers, equal counts leave no proto op without a handler.
 */
#define OPS_HANDLED(op, fn, fields) OPS_HANDLED_##op = PROTO_OP_##op,
enum { OPS_TABLE(OPS_HANDLED) };
#undef OPS_HANDLED
#define OPS_ONE(op, fn, fields) + 1
_Static_assert(0 OPS_TABLE(OPS_ONE) == PROTO_OP_COUNT,
               "OPS_TABLE has a handler for every proto op");
#undef OPS_ONE

#define OPS_COUNT ((size_t)PROTO_OP_COUNT)

_Static_assert(OPS_COUNT < SERVER_STAT_OPS_MAX, "the stats have a slot per op and one more");

#define OPS_ECHO_MAX 64   /* the most of an unknown op's name its error message repeats */

/* The index of op in the table, or OPS_COUNT when it is unknown. */
static size_t ops_find(const char *op)
{
	return (size_t)proto_op_find(op);
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
		else if (strcmp(keep[i], PROTO_FIELD_POLICY) == 0 && cJSON_IsObject(item))
			ops_trim_object(item, fields_policy_object);
		item = next;
	}
}

cJSON *ops_request_trim(cJSON *req)
{
	const char *op = NULL;
	size_t i;

	/* Requests wait only after their handler checked them, so "op" names a known op. */
	if (msg_get_string(req, PROTO_FIELD_OP, &op) < 0)
		return req;
	i = ops_find(op);
	if (i < OPS_COUNT)
		ops_trim_object(req, ops_table[i].fields);
	return req;
}

/* ops_run for a request whose op (req's, borrowed) is the table's entry i (OPS_COUNT: unknown). */
static void ops_run_op(struct conn *c, uint64_t id, cJSON *req, const char *op, size_t i)
{
	if (i == OPS_COUNT) {
		/* At most OPS_ECHO_MAX bytes of it, cut before a character rather than inside one. */
		int n = (int)strnlen(op, OPS_ECHO_MAX);

		while (n > 0 && ((unsigned char)op[n] & 0xc0) == 0x80)
			n--;
		reply_error(c, id, ENOSYS, "unknown op '%.*s'", n, op);
		goto done;
	}
	if (ops_table[i].fn == ops_hello ? c->hello_done : !c->hello_done) {
		reply_error(c, id, EPROTO, c->hello_done ? "hello was already sent on this connection"
		                                        : "send hello first");
		goto done;
	}
	if (ops_table[i].fn(c, id, req) == OPS_KEPT)
		return;
done:
	cJSON_Delete(req);
}

void ops_run(struct conn *c, uint64_t id, cJSON *req)
{
	const char *op;

	if (!conn_alive(c) || ops_get_string(c, id, req, PROTO_FIELD_OP, true, &op) < 0) {
		cJSON_Delete(req);
		return;
	}
	ops_run_op(c, id, req, op, ops_find(op));
}

#define OPS_MALFORMED "the request is not a well-formed JSON object (at most %d levels of " \
                      "objects and arrays, no \\u0000 in strings, no key twice in one object)"

#define OPS_FDS_STRAY "only an adopt request may carry a descriptor: this request carried " \
                      "one, which the daemon closed, and was not run"
#define OPS_FDS_MANY "more than one descriptor came with this request: the daemon closed them " \
                     "all and did not run it (adopt takes exactly one)"

void ops_handle_frame(struct conn *c, const char *payload, size_t len)
{
	cJSON *req = NULL;
	const char *op;
	bool has_op;
	uint64_t id;
	size_t i;
	int r, fd;

	r = msg_parse(payload, len, &req);
	if (r == -ENOMEM) {
		reply_error_noid(c, ENOMEM, "the daemon is out of memory");
		return;
	}
	if (r == -EILSEQ) {
		size_t bad = 0;

		/* Only the offset: the bytes themselves would make this reply invalid too. */
		utf8_check(payload, len, &bad);
		reply_error_noid(c, EBADMSG, "the request is not valid UTF-8 at byte %zu", bad);
		return;
	}
	if (r < 0) {
		/* An id that can still be read is answered, so a pipelining client knows which. */
		if (msg_parse_id(payload, len, &id) == 0)
			reply_error(c, id, EBADMSG, OPS_MALFORMED, PROTO_JSON_DEPTH_MAX);
		else
			reply_error_noid(c, EBADMSG, OPS_MALFORMED, PROTO_JSON_DEPTH_MAX);
		return;
	}
	r = msg_get_u64(req, PROTO_FIELD_ID, &id);
	if (r < 0) {
		reply_error_noid(c, EINVAL, r == -ENOENT ? "field 'id' is required"
		                 : "field 'id' must be an integer from 0 to 2^53-1");
		cJSON_Delete(req);
		return;
	}
	/* Counted once here: a request that waits runs through ops_run again. */
	has_op = msg_get_string(req, PROTO_FIELD_OP, &op) == 0;
	i = has_op ? ops_find(op) : OPS_COUNT;
	c->srv->stats.requests[i]++;
	/* Only adopt may carry a descriptor (it takes it itself); any other is refused unrun. */
	if (i != PROTO_OP_ADOPT && (r = conn_frame_fd(c, false, &fd)) < 0) {
		if (r == -E2BIG)
			reply_error(c, id, E2BIG, OPS_FDS_MANY);
		else
			reply_error(c, id, EPROTO, OPS_FDS_STRAY);
		cJSON_Delete(req);
		return;
	}
	/* The op was found above already; ops_run answers a missing or malformed one. */
	if (has_op && conn_alive(c))
		ops_run_op(c, id, req, op, i);
	else
		ops_run(c, id, req);
}
