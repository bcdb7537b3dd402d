/* SPDX-License-Identifier: MIT */
/*
 * The operator's requests of libmmapd (docs/protocol.md, "Access control and operations"):
 * chown and chmod of a region, the list of connections and the daemon's counters. As in
 * query.c, names are checked before any round trip and every field of a reply is
 * type-checked: a reply that is not what the protocol promises is -EPROTO.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "msg.h"

/* Largest uid or gid chown takes: 2^32-1 is (uid_t)-1, "no change", to chown(2). */
#define ADMIN_ID_MAX 0xfffffffeULL

/* Sends req (consumed) and drops the reply. Returns 0 or a negative errno (message set). */
static int admin_call_done(struct mmapd_client *client, cJSON *req)
{
	cJSON *reply = NULL;
	int r;

	r = client_call(client, req, &reply);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	return r;
}

MMAPD_EXPORT int mmapd_chown(struct mmapd_client *client, const char *name, int64_t uid,
                             int64_t gid)
{
	cJSON *req;
	int r;

	if (!name)
		return error_set(-EINVAL, "the region name is NULL");
	if (uid == -1 && gid == -1)
		return error_set(-EINVAL, "chown needs a uid or a gid (both are -1)");
	if (uid < -1 || (uid >= 0 && (uint64_t)uid > ADMIN_ID_MAX))
		return error_set(-EINVAL, "uid %lld is not -1 or 0 .. %llu", (long long)uid,
		                 ADMIN_ID_MAX);
	if (gid < -1 || (gid >= 0 && (uint64_t)gid > ADMIN_ID_MAX))
		return error_set(-EINVAL, "gid %lld is not -1 or 0 .. %llu", (long long)gid,
		                 ADMIN_ID_MAX);
	r = request_start_region(client, proto_op_name(PROTO_OP_CHOWN), name, &req);
	if (r < 0)
		return r;
	if ((uid >= 0 && (r = request_add_u64(req, PROTO_FIELD_UID, (uint64_t)uid)) < 0) ||
	    (gid >= 0 && (r = request_add_u64(req, PROTO_FIELD_GID, (uint64_t)gid)) < 0)) {
		cJSON_Delete(req);
		return r;
	}
	return admin_call_done(client, req);
}

MMAPD_EXPORT int mmapd_chmod(struct mmapd_client *client, const char *name, unsigned perm)
{
	cJSON *req;
	int r;

	if (!name)
		return error_set(-EINVAL, "the region name is NULL");
	if (perm > 0777)
		return error_set(-EINVAL, "mode %#o is above 0777", perm);
	r = request_start_region(client, proto_op_name(PROTO_OP_CHMOD), name, &req);
	if (r < 0)
		return r;
	r = request_add_u64(req, PROTO_FIELD_PERM, perm);
	if (r < 0) {
		cJSON_Delete(req);
		return r;
	}
	return admin_call_done(client, req);
}

/* ---- clients ---- */

/* Reads one entry of the clients reply. Returns 0 or -EPROTO. */
static int client_info_parse(const cJSON *obj, struct client_entry *ret)
{
	struct mmapd_client_info info = { 0 };
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "name");
	uint64_t pid, uid, gid;

	if (!cJSON_IsObject(obj))
		return -EPROTO;

	const struct {
		const char *key;
		uint64_t *dst;
	} fields[] = {
		{ "id", &info.id },
		{ "pid", &pid },
		{ "uid", &uid },
		{ "gid", &gid },
		{ "connected_since_ms", &info.connected_since_ms },
		{ "grants", &info.grants },
		{ "bytes_granted", &info.bytes_granted },
		{ "regions_created", &info.regions_created },
		{ "locks_held", &info.locks_held },
		{ "locks_waiting", &info.locks_waiting },
		{ "subscriptions", &info.subscriptions },
		{ "queued_bytes", &info.queued_bytes },
		{ "queued_fds", &info.queued_fds },
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (msg_get_u64(obj, fields[i].key, fields[i].dst) < 0)
			return -EPROTO;
	if (pid > INT64_MAX || uid > UINT32_MAX || gid > UINT32_MAX)
		return -EPROTO;
	if (cJSON_IsString(name)) {
		size_t len = strlen(name->valuestring);

		if (len >= sizeof(ret->name))
			return -EPROTO;
		memcpy(ret->name, name->valuestring, len + 1);
	} else if (name && !cJSON_IsNull(name)) {
		return -EPROTO;
	} else {
		ret->name[0] = '\0';
	}
	info.pid = (int64_t)pid;
	info.uid = (int64_t)uid;
	info.gid = (int64_t)gid;
	info.name = ret->name;
	ret->info = info;
	return 0;
}

static int clients_parse(const cJSON *item, void *entry)
{
	return client_info_parse(item, entry);
}

static int clients_after(cJSON *req, const void *last)
{
	const struct client_entry *e = last;

	return request_add_u64(req, PROTO_FIELD_AFTER, e->info.id);
}

static bool clients_follows(const void *prev, const void *entry)
{
	return ((const struct client_entry *)prev)->info.id <
	       ((const struct client_entry *)entry)->info.id;
}

static void clients_settle(void *entry)
{
	struct client_entry *e = entry;

	e->info.name = e->name;
}

static const struct pager clients_pager = {
	.op = PROTO_OP_CLIENTS, .key = PROTO_FIELD_CLIENTS, .noun = "client",
	.size = sizeof(struct client_entry),
	.parse = clients_parse, .after = clients_after, .follows = clients_follows,
	.settle = clients_settle,
};

MMAPD_EXPORT int mmapd_list_clients(struct mmapd_client *client,
                                    struct mmapd_client_list **ret_list)
{
	struct mmapd_client_list *list;
	void *entries;
	int r;

	if (!client || !ret_list)
		return error_set(-EINVAL, "client or ret_list is NULL");
	list = calloc(1, sizeof(*list));
	if (!list)
		return error_set(-ENOMEM, "out of memory");
	r = pager_collect(client, &clients_pager, &entries, &list->count);
	if (r < 0) {
		free(list);
		return r;
	}
	list->entries = entries;
	*ret_list = list;
	return 0;
}

MMAPD_EXPORT size_t mmapd_client_list_count(const struct mmapd_client_list *list)
{
	return list ? list->count : 0;
}

MMAPD_EXPORT const struct mmapd_client_info *mmapd_client_list_at(
	const struct mmapd_client_list *list, size_t i)
{
	return list && i < list->count ? &list->entries[i].info : NULL;
}

MMAPD_EXPORT void mmapd_client_list_free(struct mmapd_client_list *list)
{
	if (!list)
		return;
	free(list->entries);
	free(list);
}

/* ---- stats ---- */

/* Sends {"op":"stats","format":format} and returns the reply. Returns 0 or a negative errno. */
static int stats_call(struct mmapd_client *client, const char *format, cJSON **ret_reply)
{
	cJSON *req;
	int r;

	r = request_start(client, proto_op_name(PROTO_OP_STATS), NULL, &req);
	if (r < 0)
		return r;
	if (!cJSON_AddStringToObject(req, PROTO_FIELD_FORMAT, format)) {
		cJSON_Delete(req);
		return request_nomem();
	}
	r = client_call(client, req, ret_reply);
	cJSON_Delete(req);
	return r;
}

MMAPD_EXPORT int mmapd_stats_prometheus(struct mmapd_client *client, char **ret_text)
{
	cJSON *reply = NULL;
	const char *text;
	char *copy;
	int r;

	if (!ret_text)
		return error_set(-EINVAL, "ret_text is NULL");
	r = stats_call(client, "prometheus", &reply);
	if (r < 0)
		return r;
	if (msg_get_string(reply, "text", &text) < 0) {
		cJSON_Delete(reply);
		return error_set(-EPROTO, "mmapd's stats reply has no valid \"text\"");
	}
	copy = strdup(text);
	cJSON_Delete(reply);
	if (!copy)
		return error_set(-ENOMEM, "out of memory copying the stats");
	*ret_text = copy;
	return 0;
}

MMAPD_EXPORT int mmapd_stats_json(struct mmapd_client *client, char **ret_json)
{
	cJSON *reply = NULL;
	uint64_t uptime;
	char *text;
	int r;

	if (!ret_json)
		return error_set(-EINVAL, "ret_json is NULL");
	r = stats_call(client, "json", &reply);
	if (r < 0)
		return r;
	if (msg_get_u64(reply, "uptime_seconds", &uptime) < 0) {
		cJSON_Delete(reply);
		return error_set(-EPROTO, "mmapd's stats reply has no valid \"uptime_seconds\"");
	}
	cJSON_DeleteItemFromObjectCaseSensitive(reply, "id");
	cJSON_DeleteItemFromObjectCaseSensitive(reply, "ok");
	text = cJSON_PrintUnformatted(reply);
	cJSON_Delete(reply);
	if (!text)
		return error_set(-ENOMEM, "out of memory printing the stats");
	*ret_json = text;
	return 0;
}
