/* SPDX-License-Identifier: MIT */
/* The region object's one codec (see region_obj.h). */
#include "region_obj.h"

#include <errno.h>
#include <string.h>

#include "msg.h"
#include "policy.h"
#include "vocab.h"

static const char *const huge_names[PROTO_HUGE_KINDS] = {
	[PROTO_HUGE_NONE] = "none",
	[PROTO_HUGE_HUGETLB] = "hugetlb",
	[PROTO_HUGE_THP] = "thp",
};

const char *proto_huge_name(unsigned huge)
{
	return huge < PROTO_HUGE_KINDS ? huge_names[huge] : NULL;
}

cJSON *proto_region_json(const struct proto_region *r)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON *policy = proto_policy_json(r->policy_kind, r->policy_value);

	if (!obj || !policy ||
	    !cJSON_AddStringToObject(obj, PROTO_FIELD_NAME, r->name) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_SIZE, (double)r->size) ||
	    !cJSON_AddBoolToObject(obj, PROTO_FIELD_ANONYMOUS, r->anonymous) ||
	    !cJSON_AddStringToObject(obj, PROTO_FIELD_HUGE, huge_names[r->huge]) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_GRANTS, (double)r->grants) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_CLIENTS, (double)r->clients) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_UID, r->uid) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_GID, r->gid) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_PERM, r->perm))
		goto fail;
	if (!cJSON_AddItemToObject(obj, PROTO_FIELD_POLICY, policy))
		goto fail;
	policy = NULL;   /* obj's now */
	if (!cJSON_AddNumberToObject(obj, PROTO_FIELD_GENERATION, (double)r->generation) ||
	    !cJSON_AddBoolToObject(obj, PROTO_FIELD_POISONED, r->poisoned) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_SEQ, (double)r->seq) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_LOCKS, (double)r->locks) ||
	    (r->adopted && !cJSON_AddTrueToObject(obj, PROTO_FIELD_ADOPTED)))
		goto fail;
	if (r->mtime_us && (!cJSON_AddNumberToObject(obj, PROTO_FIELD_MTIME_US, (double)r->mtime_us) ||
	                    !cJSON_AddNumberToObject(obj, PROTO_FIELD_CTIME_US, (double)r->ctime_us)))
		goto fail;
	if (r->temporary && !cJSON_AddTrueToObject(obj, PROTO_FIELD_TEMPORARY))
		goto fail;
	return obj;
fail:
	cJSON_Delete(policy);
	cJSON_Delete(obj);
	return NULL;
}

/* Reads integer key of obj into *ret when present (0 when absent). Returns 0 or -EPROTO. */
static int region_u64_optional(const cJSON *obj, const char *key, uint64_t *ret)
{
	*ret = 0;
	return msg_get_u64(obj, key, ret) == -EINVAL ? -EPROTO : 0;
}

/* region_u64_optional for a value that must fit 32 bits. Returns 0 or -EPROTO. */
static int region_u32_optional(const cJSON *obj, const char *key, uint32_t *ret)
{
	uint64_t v;

	*ret = 0;
	if (region_u64_optional(obj, key, &v) < 0 || v > UINT32_MAX)
		return -EPROTO;
	*ret = (uint32_t)v;
	return 0;
}

/*
 * Reads "size". Older daemons reported whatever size a client had truncated a region to,
 * even one past 2^53-1, which a JSON number does not hold exactly: such a size is read as
 * the integer the number holds (at most UINT64_MAX) rather than making a whole list fail.
 * Returns 0 or -EPROTO.
 */
static int region_size_read(const cJSON *obj, uint64_t *ret)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, PROTO_FIELD_SIZE);
	double d;

	if (msg_get_u64(obj, PROTO_FIELD_SIZE, ret) == 0)
		return 0;
	/* Every double past 2^53 is an integer; below it, msg_get_u64 said no for a reason. */
	if (!cJSON_IsNumber(item) || !(item->valuedouble > (double)PROTO_ID_MAX))
		return -EPROTO;
	d = item->valuedouble;
	*ret = d >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)d;
	return 0;
}

/* Reads "huge" (absent from older daemons: none). Returns 0 or -EPROTO. */
static int region_huge_optional(const cJSON *obj, unsigned *ret)
{
	const char *s;
	int r = msg_get_string(obj, PROTO_FIELD_HUGE, &s);
	unsigned huge;

	*ret = PROTO_HUGE_NONE;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return -EPROTO;
	for (huge = 0; huge < PROTO_HUGE_KINDS; huge++)
		if (strcmp(s, huge_names[huge]) == 0) {
			*ret = huge;
			return 0;
		}
	return -EPROTO;
}

int proto_region_parse(const cJSON *obj, struct proto_region *ret)
{
	struct proto_region r = { .policy_kind = PROTO_POLICY_MANUAL };
	const cJSON *policy;
	const char *problem;

	if (!cJSON_IsObject(obj) || msg_get_string(obj, PROTO_FIELD_NAME, &r.name) < 0 ||
	    region_size_read(obj, &r.size) < 0 ||
	    msg_get_bool(obj, PROTO_FIELD_ANONYMOUS, &r.anonymous) < 0 ||
	    msg_get_u64(obj, PROTO_FIELD_GRANTS, &r.grants) < 0 ||
	    msg_get_u64(obj, PROTO_FIELD_CLIENTS, &r.clients) < 0)
		return -EPROTO;
	/* The coordination fields are absent from a daemon without coordination.md. */
	policy = cJSON_GetObjectItemCaseSensitive(obj, PROTO_FIELD_POLICY);
	if (region_u64_optional(obj, PROTO_FIELD_GENERATION, &r.generation) < 0 ||
	    region_u64_optional(obj, PROTO_FIELD_SEQ, &r.seq) < 0 ||
	    region_u64_optional(obj, PROTO_FIELD_LOCKS, &r.locks) < 0 ||
	    msg_get_bool(obj, PROTO_FIELD_POISONED, &r.poisoned) == -EINVAL ||
	    msg_get_bool(obj, PROTO_FIELD_ADOPTED, &r.adopted) == -EINVAL ||
	    (policy && proto_policy_parse(policy, &r.policy_kind, &r.policy_value, &problem) < 0))
		return -EPROTO;
	/* The access control fields are absent from a daemon without it (and for a region
	 * whose owner the daemon has not recorded). */
	if (region_u32_optional(obj, PROTO_FIELD_UID, &r.uid) < 0 ||
	    region_u32_optional(obj, PROTO_FIELD_GID, &r.gid) < 0 ||
	    region_u32_optional(obj, PROTO_FIELD_PERM, &r.perm) < 0 || r.perm > 0777)
		return -EPROTO;
	if (region_huge_optional(obj, &r.huge) < 0 ||
	    region_u64_optional(obj, PROTO_FIELD_MTIME_US, &r.mtime_us) < 0 ||
	    region_u64_optional(obj, PROTO_FIELD_CTIME_US, &r.ctime_us) < 0 ||
	    msg_get_bool(obj, PROTO_FIELD_TEMPORARY, &r.temporary) == -EINVAL)
		return -EPROTO;
	*ret = r;
	return 0;
}
