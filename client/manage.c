/* SPDX-License-Identifier: MIT */
/*
 * Managing regions like files (docs/protocol.md, "rename", "copy" and "truncate-on-close"):
 * mmapd_rename(), mmapd_copy(), mmapd_region_truncate_on_close(), and what a "renamed" event
 * does to this client's windows. As in query.c,
 * names are checked before any round trip and a reply that is not what the protocol
 * promises is -EPROTO. The daemon sends "renamed" to the renamer's connection too, before
 * its reply, so when mmapd_rename() returns this client's windows carry the new name.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "msg.h"

static const char *const copy_methods[] = {
	[MMAPD_COPY_REFLINK] = "reflink",
	[MMAPD_COPY_FILE_RANGE] = "copy_file_range",
	[MMAPD_COPY_BYTES] = "bytes",
};

/*
 * Sends op {name, to, replace} and waits for the reply (*ret_reply, for the caller to free).
 * Returns 0 or a negative errno (message set).
 */
static int manage_call(struct mmapd_client *client, enum proto_op op, const char *name,
                       const char *to, unsigned flags, cJSON **ret_reply)
{
	cJSON *req;
	int r;

	*ret_reply = NULL;
	if (!name || !to)
		return error_set(-EINVAL, "the region name is NULL");
	if (flags & ~MMAPD_MANAGE_REPLACE)
		return error_set(-EINVAL, "unknown flags %#x", flags & ~MMAPD_MANAGE_REPLACE);
	r = region_name_check(to);
	if (r < 0)
		return r;
	r = request_start_region(client, proto_op_name(op), name, &req);
	if (r < 0)
		return r;
	if (!cJSON_AddStringToObject(req, PROTO_FIELD_TO, to) ||
	    ((flags & MMAPD_MANAGE_REPLACE) && !cJSON_AddTrueToObject(req, PROTO_FIELD_REPLACE))) {
		cJSON_Delete(req);
		return request_nomem();
	}
	r = client_call(client, req, ret_reply);
	cJSON_Delete(req);
	return r;
}

MMAPD_EXPORT int mmapd_rename(struct mmapd_client *client, const char *name, const char *to,
                              unsigned flags)
{
	cJSON *reply;
	int r = manage_call(client, PROTO_OP_RENAME, name, to, flags, &reply);

	cJSON_Delete(reply);
	return r;
}

MMAPD_EXPORT int mmapd_copy(struct mmapd_client *client, const char *name, const char *to,
                            unsigned flags, enum mmapd_copy_method *ret_method)
{
	const char *method;
	cJSON *reply;
	size_t i;
	int r = manage_call(client, PROTO_OP_COPY, name, to, flags, &reply);

	if (r < 0)
		return r;
	r = -EPROTO;
	if (msg_get_string(reply, PROTO_FIELD_METHOD, &method) == 0)
		for (i = 0; i < sizeof(copy_methods) / sizeof(copy_methods[0]); i++)
			if (strcmp(method, copy_methods[i]) == 0) {
				if (ret_method)
					*ret_method = (enum mmapd_copy_method)i;
				r = 0;
			}
	cJSON_Delete(reply);
	return r < 0 ? error_set(r, "the copy reply has no valid 'method'") : 0;
}

MMAPD_EXPORT int mmapd_region_truncate_on_close(struct mmapd_region *region, uint64_t size)
{
	cJSON *req, *reply = NULL;
	int r;

	if (!region)
		return error_set(-EINVAL, "the region is NULL");
	r = request_start_region(region->client, proto_op_name(PROTO_OP_TRUNCATE_ON_CLOSE),
	                         region->name, &req);
	if (r < 0)
		return r;
	r = request_add_u64(req, PROTO_FIELD_SIZE, size);
	if (r == 0)
		r = client_call(region->client, req, &reply);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	return r;
}

void regions_renamed(struct mmapd_client *client, const char *name, const char *to)
{
	size_t len = strlen(to);

	if (len > MMAPD_NAME_MAX)
		return;
	for (struct mmapd_region *region = client->regions; region; region = region->next)
		if (!region->gone && strcmp(region->name, name) == 0)
			memcpy(region->name, to, len + 1);
}
