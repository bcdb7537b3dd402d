/* SPDX-License-Identifier: MIT */
/*
 * The protocol's one codec of flush policies (see policy.h): the kinds' names, the encoder
 * and the decoder, for the daemon (requests, metadata, the fd store's state) and libmmapd
 * (replies and events) alike.
 */
#include "policy.h"

#include <errno.h>
#include <string.h>

#include "msg.h"
#include "vocab.h"

static const char *const policy_names[PROTO_POLICY_KINDS] = {
	[PROTO_POLICY_MANUAL] = "manual",
	[PROTO_POLICY_ALWAYS] = "always",
	[PROTO_POLICY_EVERY_BYTES] = "every-bytes",
	[PROTO_POLICY_EVERY_WRITES] = "every-writes",
	[PROTO_POLICY_INTERVAL] = "interval",
};

const char *proto_policy_name(unsigned kind)
{
	return kind < PROTO_POLICY_KINDS ? policy_names[kind] : NULL;
}

int proto_policy_kind(const char *name)
{
	for (unsigned kind = 0; kind < PROTO_POLICY_KINDS; kind++)
		if (strcmp(name, policy_names[kind]) == 0)
			return (int)kind;
	return -EINVAL;
}

bool proto_policy_has_value(unsigned kind)
{
	return kind == PROTO_POLICY_EVERY_BYTES || kind == PROTO_POLICY_EVERY_WRITES ||
	       kind == PROTO_POLICY_INTERVAL;
}

bool proto_policy_valid(unsigned kind, uint64_t value)
{
	return kind < PROTO_POLICY_KINDS &&
	       (!proto_policy_has_value(kind) || (value >= 1 && value <= PROTO_ID_MAX));
}

cJSON *proto_policy_json(unsigned kind, uint64_t value)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj || !cJSON_AddStringToObject(obj, PROTO_FIELD_KIND, policy_names[kind]) ||
	    (proto_policy_has_value(kind) &&
	     !cJSON_AddNumberToObject(obj, PROTO_FIELD_VALUE, (double)value))) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

int proto_policy_parse(const cJSON *obj, unsigned *ret_kind, uint64_t *ret_value,
                       const char **ret_problem)
{
	const char *kind;
	uint64_t value = 0;
	int i, r;

	if (!cJSON_IsObject(obj)) {
		*ret_problem = "field 'policy' must be an object such as {\"kind\": \"manual\"}";
		return -EINVAL;
	}
	if (msg_get_string(obj, PROTO_FIELD_KIND, &kind) < 0) {
		*ret_problem = "field 'policy.kind' must be \"manual\", \"always\", \"every-bytes\", "
		               "\"every-writes\" or \"interval\"";
		return -EINVAL;
	}
	i = proto_policy_kind(kind);
	if (i < 0) {
		*ret_problem = "field 'policy.kind' must be \"manual\", \"always\", \"every-bytes\", "
		               "\"every-writes\" or \"interval\"";
		return -EINVAL;
	}
	r = msg_get_u64(obj, PROTO_FIELD_VALUE, &value);
	if (r == -EINVAL || (proto_policy_has_value((unsigned)i) && (r == -ENOENT || value == 0))) {
		*ret_problem = "field 'policy.value' must be an integer from 1 to 2^53-1 "
		               "(required by every-bytes, every-writes and interval)";
		return -EINVAL;
	}
	*ret_kind = (unsigned)i;
	*ret_value = proto_policy_has_value((unsigned)i) ? value : 0;
	return 0;
}
