/* SPDX-License-Identifier: MIT */
/*
 * Flush policies as text ("every-bytes 64M"), for command lines and configuration files: the
 * kinds' names are proto/policy.c's, the one table the daemon and the wire use too, and the
 * numbers are read as strictly as mmapd's own options (shared/num.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "num.h"
#include "policy.h"

#define POLICY_KINDS_TEXT "manual, always, every-bytes N, every-writes N, interval MS"

MMAPD_EXPORT int mmapd_policy_parse(const char *text, struct mmapd_policy *ret_policy)
{
	const char *space, *value;
	char *kind_name;
	uint64_t v = 0;
	int kind, r;

	if (!text || !ret_policy)
		return error_set(-EINVAL, "text or ret_policy is NULL");
	space = strchr(text, ' ');
	kind_name = strndup(text, space ? (size_t)(space - text) : strlen(text));
	if (!kind_name)
		return error_set(-ENOMEM, "out of memory");
	kind = proto_policy_kind(kind_name);
	value = space ? space + 1 : NULL;
	if (kind < 0)
		r = error_set(-EINVAL, "unknown policy '%s' (" POLICY_KINDS_TEXT ")", kind_name);
	else if (!proto_policy_has_value((unsigned)kind))
		r = value ? error_set(-EINVAL, "policy '%s' takes no value", kind_name) : 0;
	else if (!value)
		r = error_set(-EINVAL, "policy '%s' needs a value", kind_name);
	else {
		r = kind == PROTO_POLICY_EVERY_BYTES ? num_parse_size(value, &v)
		                                     : num_parse_u64(value, &v);
		if (r < 0 || v == 0)
			r = error_set(r == -ERANGE ? -ERANGE : -EINVAL, "invalid value '%s' for policy "
			              "'%s'%s", value, kind_name, r == -ERANGE ? ": too large" : "");
	}
	free(kind_name);
	if (r < 0)
		return r;
	ret_policy->kind = (enum mmapd_policy_kind)kind;
	ret_policy->value = v;
	return 0;
}

MMAPD_EXPORT int mmapd_policy_format(const struct mmapd_policy *policy, char *buf, size_t size)
{
	const char *name;
	int n;

	if (!policy || !buf)
		return error_set(-EINVAL, "policy or buf is NULL");
	name = proto_policy_name(policy->kind);
	if (!name)
		return error_set(-EINVAL, "unknown policy kind %d", (int)policy->kind);
	if (proto_policy_has_value(policy->kind))
		n = snprintf(buf, size, "%s %" PRIu64, name, policy->value);
	else
		n = snprintf(buf, size, "%s", name);
	if (n < 0 || (size_t)n >= size)
		return error_set(-ERANGE, "%zu bytes are too few for policy %s", size, name);
	return n;
}
