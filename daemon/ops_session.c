/* SPDX-License-Identifier: MIT */
/*
 * The session ops (see ops.h): hello, which every connection sends first, ping, and close,
 * which ends one grant of the connection (answered only when it fails if it says
 * "reply": false: the feature "quiet-close").
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
#include "log.h"
#include "msg.h"
#include "region.h"
#include "vocab.h"

int ops_hello(struct conn *c, uint64_t id, cJSON *req)
{
	static const char *const features[] = {
		"file", "anonymous", "cow", "window", "sparse",
		"locks", "resize", "notify", "flush", "policy", "exec", "huge", "manage",
		"external", "quiet-close",
	};
	const char *client = NULL;
	cJSON *reply, *limits, *list;
	uint64_t version;
	size_t i;

	if (ops_get_u64(c, id, req, PROTO_FIELD_VERSION, true, &version) < 0)
		return OPS_DONE;
	if (ops_get_string(c, id, req, PROTO_FIELD_CLIENT, false, &client) < 0)
		return OPS_DONE;
	if (client && strlen(client) > OPS_CLIENT_NAME_MAX) {
		reply_error(c, id, EINVAL, "field 'client' is longer than %d bytes",
		            OPS_CLIENT_NAME_MAX);
		return OPS_DONE;
	}
	if (version < PROTO_VERSION_MIN) {
		reply_error(c, id, EPROTONOSUPPORT,
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
	if (!cJSON_AddNumberToObject(reply, PROTO_FIELD_VERSION, (double)c->version) ||
	    !cJSON_AddStringToObject(reply, PROTO_FIELD_SERVER, "mmapd " MMAPD_VERSION_STRING) ||
	    !cJSON_AddItemToObject(reply, PROTO_FIELD_FEATURES, list))
		goto nomem;
	list = NULL;
	if (!cJSON_AddItemToObject(reply, PROTO_FIELD_LIMITS, limits))
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
	reply_send(c, id, reply);
	return OPS_DONE;

nomem:
	cJSON_Delete(reply);
	cJSON_Delete(limits);
	cJSON_Delete(list);
	reply_nomem(c, id);
	return OPS_DONE;
}

int ops_ping(struct conn *c, uint64_t id, cJSON *req)
{
	(void)req;
	reply_ok(c, id);
	return OPS_DONE;
}

/*
 * A close that says "reply": false is answered only when it fails: the client learns of its
 * success from the reply to any later request (docs/protocol.md, close).
 */
int ops_close(struct conn *c, uint64_t id, cJSON *req)
{
	bool reply = true;
	struct grant *g;

	if (ops_get_bool(c, id, req, PROTO_FIELD_REPLY, &reply) < 0)
		return OPS_DONE;
	g = ops_get_grant(c, id, req);
	if (!g)
		return OPS_DONE;
	grant_free(g);
	if (reply)
		reply_ok(c, id);
	return OPS_DONE;
}
