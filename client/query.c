/* SPDX-License-Identifier: MIT */
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

#include "domain.h"
#include "msg.h"
#include "region_obj.h"

/* Reads integer key of obj into *ret when present. Returns 0 or -EPROTO. */
static int info_u64_optional(const cJSON *obj, const char *key, uint64_t *ret)
{
	*ret = 0;
	return msg_get_u64(obj, key, ret) == -EINVAL ? -EPROTO : 0;
}

_Static_assert((int)MMAPD_HUGE_NONE == (int)PROTO_HUGE_NONE &&
               (int)MMAPD_HUGE_HUGETLB == (int)PROTO_HUGE_HUGETLB &&
               (int)MMAPD_HUGE_THP == (int)PROTO_HUGE_THP,
               "enum mmapd_huge numbers huge pages as proto/region_obj.h does");

int region_info_parse(const cJSON *obj, struct region_entry *ret)
{
	struct proto_region r;
	size_t len;

	if (proto_region_parse(obj, &r) < 0)
		return -EPROTO;
	len = strlen(r.name);
	if (len == 0 || len > MMAPD_NAME_MAX)
		return -EPROTO;
	memcpy(ret->name, r.name, len + 1);
	ret->info = (struct mmapd_region_info){
		.name = ret->name,
		.size = r.size,
		.anonymous = r.anonymous,
		.grants = r.grants,
		.clients = r.clients,
		.generation = r.generation,
		.policy = { (enum mmapd_policy_kind)r.policy_kind, r.policy_value },
		.poisoned = r.poisoned,
		.seq = r.seq,
		.locks = r.locks,
		.uid = r.uid,
		.gid = r.gid,
		.perm = r.perm,
		.huge = (enum mmapd_huge)r.huge,
		.mtime_us = r.mtime_us,
		.ctime_us = r.ctime_us,
		.temporary = r.temporary,
		.adopted = r.adopted,
	};
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
	/* The array was moved by realloc while it grew: the strings are pointed at only now. */
	for (size_t i = 0; i < count; i++)
		p->settle(entries + i * p->size);
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

static void list_settle(void *entry)
{
	struct region_entry *e = entry;

	e->info.name = e->name;
}

static const struct pager list_pager = {
	.op = PROTO_OP_LIST, .key = PROTO_FIELD_REGIONS, .noun = "region",
	.size = sizeof(struct region_entry),
	.parse = list_parse, .after = list_after, .follows = list_follows, .settle = list_settle,
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
		{ reply, PROTO_FIELD_PID, &pid },
		{ reply, PROTO_FIELD_UPTIME_MS, &st->uptime_ms },
		{ reply, PROTO_FIELD_CLIENTS, &st->clients },
		{ reply, PROTO_FIELD_REGIONS, &st->regions },
		{ reply, PROTO_FIELD_ANONYMOUS_REGIONS, &st->anonymous_regions },
		{ reply, PROTO_FIELD_GRANTS, &st->grants },
		{ reply, PROTO_FIELD_BYTES_GRANTED, &st->bytes_granted },
		{ reply, PROTO_FIELD_OPEN_FDS, &st->open_fds },
		{ limits, "max_clients", &st->max_clients },
		{ limits, "max_grants_per_client", &st->max_grants_per_client },
		{ limits, "max_fds_in_flight", &st->max_fds_in_flight },
		{ limits, PROTO_FIELD_MAX_FRAME, &st->max_frame },
		{ limits, "max_region_size", &st->max_region_size },
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (msg_get_u64(fields[i].obj, fields[i].key, fields[i].dst) < 0)
			return error_set(-EPROTO, "mmapd's status reply has no valid \"%s\"",
			                 fields[i].key);
	}
	/* The coordination figures are absent from a daemon without coordination.md. */
	if (info_u64_optional(reply, PROTO_FIELD_LOCKS, &st->locks) < 0 ||
	    info_u64_optional(reply, PROTO_FIELD_LOCK_WAITERS, &st->lock_waiters) < 0 ||
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
