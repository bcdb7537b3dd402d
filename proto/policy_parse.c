/*
 * The decoder of the flush-policy object (see policy.h), for the daemon, which reads
 * policies from requests, metadata and the fd store's state. It reads fields with msg.h, so
 * it lives apart from policy.c: mmapctl links policy.o (the names) without msg.o.
 */
#include "policy.h"

#include <errno.h>

#include "msg.h"
#include "vocab.h"

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
