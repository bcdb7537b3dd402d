/* Flush policy names of the protocol (see policy.h). */
#include "policy.h"
#include "vocab.h"

#include <errno.h>
#include <string.h>

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
