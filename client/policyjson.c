/* SPDX-License-Identifier: MIT */
/*
 * Flush policies on the wire, for libmmapd: the {"kind", "value"} object read from replies
 * and events, built for requests, and checked before a round trip. The kinds' names and
 * which take a value are proto/policy.c's, the one table the daemon uses too. Low in the
 * client's layers: coordination (coord.c), the readers of region objects (query.c) and the
 * reactions to events (react.c) all read policies. (Moved out of coord.c, unchanged, because
 * query.c and coord.c each used the other's functions: issue 10's client layers.)
 */
#include <errno.h>

#include "internal.h"
#include "msg.h"
#include "policy.h"

_Static_assert((int)MMAPD_POLICY_MANUAL == (int)PROTO_POLICY_MANUAL &&
               (int)MMAPD_POLICY_ALWAYS == (int)PROTO_POLICY_ALWAYS &&
               (int)MMAPD_POLICY_EVERY_BYTES == (int)PROTO_POLICY_EVERY_BYTES &&
               (int)MMAPD_POLICY_EVERY_WRITES == (int)PROTO_POLICY_EVERY_WRITES &&
               (int)MMAPD_POLICY_INTERVAL == (int)PROTO_POLICY_INTERVAL,
               "enum mmapd_policy_kind numbers the kinds as proto/policy.h does");

int policy_check(const struct mmapd_policy *policy)
{
	if ((unsigned)policy->kind >= PROTO_POLICY_KINDS)
		return error_set(-EINVAL, "unknown policy kind %d", (int)policy->kind);
	if (!proto_policy_valid(policy->kind, policy->value))
		return error_set(-EINVAL, "policy %s needs a value from 1 to 2^53-1",
		                 proto_policy_name(policy->kind));
	return 0;
}

int policy_read(const cJSON *obj, struct mmapd_policy *ret)
{
	const char *problem;
	uint64_t value;
	unsigned kind;

	/* The daemon's own decoder: what it would refuse in a request is a protocol error here. */
	if (proto_policy_parse(obj, &kind, &value, &problem) < 0)
		return -EPROTO;
	ret->kind = (enum mmapd_policy_kind)kind;
	ret->value = value;
	return 0;
}

cJSON *policy_json(const struct mmapd_policy *policy)
{
	return proto_policy_json(policy->kind, policy->value);
}
