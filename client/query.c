/*
 * The queries of libmmapd: stat, list, delete, status and ping (the operator's ops are in
 * admin.c), and the readers of the
 * region objects they (and open and resize) return. Names are checked with the daemon's own rules
 * (shared/name.c) before any round trip, and every field of a reply is type-checked: a reply
 * that is not what docs/protocol.md promises is -EPROTO, never a half-filled struct.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "msg.h"
#include "name.h"

int region_name_check(const char *name)
{
	size_t len;
	int r;

	if (!name)
		return error_set(-EINVAL, "the region name is NULL");
	len = strnlen(name, NAME_MAX_LEN + 1);
	r = name_check(name, len);
	if (r < 0)
		return error_set(r, "%s", name_problem(name, len));
	return 0;
}

/* Reads integer key of obj into *ret when present. Returns 0 or -EPROTO. */
static int info_u64_optional(const cJSON *obj, const char *key, uint64_t *ret)
{
	*ret = 0;
	return msg_get_u64(obj, key, ret) == -EINVAL ? -EPROTO : 0;
}

/* info_u64_optional() for a value that must fit 32 bits. Returns 0 or -EPROTO. */
static int info_u32_optional(const cJSON *obj, const char *key, uint32_t *ret)
{
	uint64_t v;

	*ret = 0;
	if (info_u64_optional(obj, key, &v) < 0 || v > UINT32_MAX)
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
static int info_size(const cJSON *obj, uint64_t *ret)
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

/* Reads "huge" ("none", "hugetlb", "thp"; absent from older daemons: none). */
static int info_huge_optional(const cJSON *obj, enum mmapd_huge *ret)
{
	const char *s;
	int r = msg_get_string(obj, PROTO_FIELD_HUGE, &s);

	*ret = MMAPD_HUGE_NONE;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (strcmp(s, "hugetlb") == 0)
		*ret = MMAPD_HUGE_HUGETLB;
	else if (strcmp(s, "thp") == 0)
		*ret = MMAPD_HUGE_THP;
	else if (strcmp(s, "none") != 0)
		return -EPROTO;
	return 0;
}

int region_info_parse(const cJSON *obj, struct region_entry *ret)
{
	struct mmapd_region_info info = { .policy.kind = MMAPD_POLICY_MANUAL };
	const cJSON *policy;
	const char *name;
	size_t len;

	if (!cJSON_IsObject(obj) || msg_get_string(obj, PROTO_FIELD_NAME, &name) < 0 ||
	    info_size(obj, &info.size) < 0 ||
	    msg_get_bool(obj, PROTO_FIELD_ANONYMOUS, &info.anonymous) < 0 ||
	    msg_get_u64(obj, PROTO_FIELD_GRANTS, &info.grants) < 0 ||
	    msg_get_u64(obj, PROTO_FIELD_CLIENTS, &info.clients) < 0)
		return -EPROTO;
	/* The coordination fields are absent from a daemon without coordination.md. */
	policy = cJSON_GetObjectItemCaseSensitive(obj, PROTO_FIELD_POLICY);
	if (info_u64_optional(obj, PROTO_FIELD_GENERATION, &info.generation) < 0 ||
	    info_u64_optional(obj, PROTO_FIELD_SEQ, &info.seq) < 0 ||
	    info_u64_optional(obj, PROTO_FIELD_LOCKS, &info.locks) < 0 ||
	    msg_get_bool(obj, PROTO_FIELD_POISONED, &info.poisoned) == -EINVAL ||
	    (policy && policy_read(policy, &info.policy) < 0))
		return -EPROTO;
	/* The access control fields are absent from a daemon without it (and for a region
	 * whose owner the daemon has not recorded). */
	if (info_u32_optional(obj, "uid", &info.uid) < 0 ||
	    info_u32_optional(obj, "gid", &info.gid) < 0 ||
	    info_u32_optional(obj, "perm", &info.perm) < 0 || info.perm > 0777)
		return -EPROTO;
	if (info_huge_optional(obj, &info.huge) < 0)
		return -EPROTO;
	len = strlen(name);
	if (len == 0 || len > MMAPD_NAME_MAX)
		return -EPROTO;
	memcpy(ret->name, name, len + 1);
	ret->info = info;
	ret->info.name = ret->name;
	return 0;
}

/*
 * Sends {"op": op, "name": name} (name may be NULL for none) and returns the reply in
 * *ret_reply. Returns 0 or a negative errno (message set).
 */
static int query_call(struct mmapd_client *client, const char *op, const char *name,
                      cJSON **ret_reply)
{
	cJSON *req;
	int r;

	r = request_start(client, op, name, &req);
	if (r < 0)
		return r;
	r = client_call(client, req, ret_reply);
	cJSON_Delete(req);
	return r;
}

MMAPD_EXPORT int mmapd_stat(struct mmapd_client *client, const char *name,
                            struct mmapd_region_info **ret_info)
{
	struct region_entry *e;
	cJSON *reply = NULL;
	int r;

	if (!ret_info)
		return error_set(-EINVAL, "ret_info is NULL");
	if (!name)
		return error_set(-EINVAL, "the region name is NULL");
	r = query_call(client, proto_op_name(PROTO_OP_STAT), name, &reply);
	if (r < 0)
		return r;
	e = malloc(sizeof(*e));
	if (!e) {
		cJSON_Delete(reply);
		return error_set(-ENOMEM, "out of memory");
	}
	r = region_info_parse(cJSON_GetObjectItemCaseSensitive(reply, PROTO_FIELD_REGION), e);
	cJSON_Delete(reply);
	if (r < 0) {
		free(e);
		return error_set(r, "mmapd sent a malformed region object");
	}
	*ret_info = &e->info;
	return 0;
}

MMAPD_EXPORT int mmapd_region_stat(struct mmapd_region *region,
                                   struct mmapd_region_info **ret_info)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	return mmapd_stat(region->client, region->name, ret_info);
}

/* The info is the first member of its region_entry, which is what was allocated. */
MMAPD_EXPORT void mmapd_region_info_free(struct mmapd_region_info *info)
{
	free(info);
}

MMAPD_EXPORT int mmapd_delete(struct mmapd_client *client, const char *name)
{
	cJSON *reply = NULL;
	int r;

	if (!name)
		return error_set(-EINVAL, "the region name is NULL");
	r = query_call(client, proto_op_name(PROTO_OP_DELETE), name, &reply);
	cJSON_Delete(reply);
	return r;
}

MMAPD_EXPORT int mmapd_ping(struct mmapd_client *client)
{
	cJSON *reply = NULL;
	int r;

	r = query_call(client, proto_op_name(PROTO_OP_PING), NULL, &reply);
	cJSON_Delete(reply);
	return r;
}

/* Reads one page into the end of *entries (grown as needed). Returns 0 with *ret_more set. */
static int pager_page_read(const struct pager *p, const cJSON *reply, char **entries,
                           size_t *count, size_t *cap, bool *ret_more)
{
	const cJSON *array = cJSON_GetObjectItemCaseSensitive(reply, p->key);
	const cJSON *item;
	size_t n;
	int r;

	if (!cJSON_IsArray(array) || msg_get_bool(reply, PROTO_FIELD_MORE, ret_more) < 0)
		return error_set(-EPROTO, "mmapd's %s reply has no valid \"%s\" or \"more\"",
		                 proto_op_name(p->op), p->key);
	n = (size_t)cJSON_GetArraySize(array);
	if (*ret_more && n == 0)
		return error_set(-EPROTO, "mmapd said more %s follow but sent none", p->key);

	if (n > *cap - *count) {
		size_t want = *count + n > 2 * *cap ? *count + n : 2 * *cap;
		char *grown = reallocarray(*entries, want, p->size);

		if (!grown)
			return error_set(-ENOMEM, "out of memory listing %zu %s", *count + n, p->key);
		*entries = grown;
		*cap = want;
	}

	cJSON_ArrayForEach(item, array) {
		char *entry = *entries + *count * p->size;

		r = p->parse(item, entry);
		if (r < 0)
			return error_set(r, "mmapd sent a malformed %s object", p->noun);
		if (*count > 0 && !p->follows(entry - p->size, entry))
			return error_set(-EPROTO, "mmapd listed %s out of order", p->key);
		(*count)++;
	}
	return 0;
}

int pager_collect(struct mmapd_client *client, const struct pager *p, void **ret_entries,
                  size_t *ret_count)
{
	char *entries = NULL;
	size_t count = 0, cap = 0;
	bool more = true;
	int r = 0;

	while (more) {
		cJSON *req, *reply = NULL;

		req = request_new(proto_op_name(p->op), NULL);
		if (!req) {
			r = -ENOMEM;
			goto fail;
		}
		if (count > 0 && (r = p->after(req, entries + (count - 1) * p->size)) < 0) {
			cJSON_Delete(req);
			goto fail;
		}
		r = client_call(client, req, &reply);
		cJSON_Delete(req);
		if (r < 0)
			goto fail;
		r = pager_page_read(p, reply, &entries, &count, &cap, &more);
		cJSON_Delete(reply);
		if (r < 0)
			goto fail;
	}

	if (count == 0) {
		free(entries);
		entries = NULL;
	}
	*ret_entries = entries;
	*ret_count = count;
	return 0;

fail:
	free(entries);
	return r;
}

static int list_parse(const cJSON *item, void *entry)
{
	return region_info_parse(item, entry);
}

/* The entries' own name buffers, not info.name: the array moves while it is collected. */
static int list_after(cJSON *req, const void *last)
{
	const struct region_entry *e = last;

	return cJSON_AddStringToObject(req, PROTO_FIELD_AFTER, e->name) ? 0 : request_nomem();
}

static bool list_follows(const void *prev, const void *entry)
{
	return strcmp(((const struct region_entry *)prev)->name,
	              ((const struct region_entry *)entry)->name) < 0;
}

static const struct pager list_pager = {
	.op = PROTO_OP_LIST, .key = "regions", .noun = "region",
	.size = sizeof(struct region_entry),
	.parse = list_parse, .after = list_after, .follows = list_follows,
};

MMAPD_EXPORT int mmapd_list_regions(struct mmapd_client *client,
                                    struct mmapd_region_list **ret_list)
{
	struct mmapd_region_list *list;
	void *entries;
	int r;

	if (!client || !ret_list)
		return error_set(-EINVAL, "client or ret_list is NULL");
	list = calloc(1, sizeof(*list));
	if (!list)
		return error_set(-ENOMEM, "out of memory");
	r = pager_collect(client, &list_pager, &entries, &list->count);
	if (r < 0) {
		free(list);
		return r;
	}
	list->entries = entries;
	/* The array was moved by realloc while it grew: the names are pointed at only now. */
	for (size_t i = 0; i < list->count; i++)
		list->entries[i].info.name = list->entries[i].name;
	*ret_list = list;
	return 0;
}

MMAPD_EXPORT size_t mmapd_region_list_count(const struct mmapd_region_list *list)
{
	return list ? list->count : 0;
}

MMAPD_EXPORT const struct mmapd_region_info *mmapd_region_list_at(
	const struct mmapd_region_list *list, size_t i)
{
	return list && i < list->count ? &list->entries[i].info : NULL;
}

MMAPD_EXPORT void mmapd_region_list_free(struct mmapd_region_list *list)
{
	if (!list)
		return;
	free(list->entries);
	free(list);
}

/* Fills *e from a status reply, except protocol. Returns 0 or -EPROTO (message set). */
static int status_read(const cJSON *reply, struct status_entry *e)
{
	struct mmapd_status *st = &e->status;
	const cJSON *limits = cJSON_GetObjectItemCaseSensitive(reply, PROTO_FIELD_LIMITS);
	const char *version;
	uint64_t pid;

	if (!cJSON_IsObject(limits))
		return error_set(-EPROTO, "mmapd's status reply has no \"limits\" object");

	const struct {
		const cJSON *obj;
		const char *key;
		uint64_t *dst;
	} fields[] = {
		{ reply, "pid", &pid },
		{ reply, "uptime_ms", &st->uptime_ms },
		{ reply, "clients", &st->clients },
		{ reply, "regions", &st->regions },
		{ reply, "anonymous_regions", &st->anonymous_regions },
		{ reply, "grants", &st->grants },
		{ reply, "bytes_granted", &st->bytes_granted },
		{ reply, "open_fds", &st->open_fds },
		{ limits, "max_clients", &st->max_clients },
		{ limits, "max_grants_per_client", &st->max_grants_per_client },
		{ limits, "max_fds_in_flight", &st->max_fds_in_flight },
		{ limits, "max_frame", &st->max_frame },
		{ limits, "max_region_size", &st->max_region_size },
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (msg_get_u64(fields[i].obj, fields[i].key, fields[i].dst) < 0)
			return error_set(-EPROTO, "mmapd's status reply has no valid \"%s\"",
			                 fields[i].key);
	}
	/* The coordination figures are absent from a daemon without coordination.md. */
	if (info_u64_optional(reply, PROTO_FIELD_LOCKS, &st->locks) < 0 ||
	    info_u64_optional(reply, "lock_waiters", &st->lock_waiters) < 0 ||
	    info_u64_optional(reply, PROTO_FIELD_SUBSCRIPTIONS, &st->subscriptions) < 0)
		return error_set(-EPROTO, "mmapd's status reply has a malformed lock or "
		                 "subscription count");
	if (msg_get_string(reply, PROTO_FIELD_VERSION, &version) < 0 ||
	    strlen(version) >= sizeof(e->version))
		return error_set(-EPROTO, "mmapd's status reply has no valid \"version\"");
	strcpy(e->version, version);
	st->version = e->version;
	st->pid = (int64_t)pid;
	return 0;
}

MMAPD_EXPORT int mmapd_get_status(struct mmapd_client *client, struct mmapd_status **ret_status)
{
	struct status_entry *e;
	cJSON *reply = NULL;
	int r;

	if (!ret_status)
		return error_set(-EINVAL, "ret_status is NULL");
	r = query_call(client, proto_op_name(PROTO_OP_STATUS), NULL, &reply);
	if (r < 0)
		return r;
	e = calloc(1, sizeof(*e));
	if (!e) {
		cJSON_Delete(reply);
		return error_set(-ENOMEM, "out of memory");
	}
	r = status_read(reply, e);
	cJSON_Delete(reply);
	if (r < 0) {
		free(e);
		return r;
	}
	pthread_mutex_lock(&client->lock);
	e->status.protocol = client->protocol;
	pthread_mutex_unlock(&client->lock);
	*ret_status = &e->status;
	return 0;
}

/* The status is the first member of its status_entry, which is what was allocated. */
MMAPD_EXPORT void mmapd_status_free(struct mmapd_status *status)
{
	free(status);
}
