/* SPDX-License-Identifier: MIT */
/*
 * The hello exchange of libmmapd, the first call on every connection (mmapd_connect() and each
 * reconnection): it offers PROTO_VERSION and the client's name, and learns the version agreed
 * and the largest frame the daemon reads, and whether it offers the open fields an older one
 * would ignore ("manage"). A call like any other, above the call multiplexer.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "domain.h"
#include "msg.h"

int client_hello(struct mmapd_client *client, unsigned flags)
{
	struct call call = { .flags = flags };
	const cJSON *limits, *features, *feature;
	bool manage = false;
	uint64_t version, max_frame = FRAME_MAX_DEFAULT;
	cJSON *req;
	int r;

	req = request_new(proto_op_name(PROTO_OP_HELLO), NULL);
	if (!req)
		return -ENOMEM;
	r = request_add_u64(req, PROTO_FIELD_VERSION, PROTO_VERSION);
	if (r == 0 && client->name &&
	    !cJSON_AddStringToObject(req, PROTO_FIELD_CLIENT, client->name))
		r = request_nomem();
	if (r < 0)
		goto out;

	call.req = req;
	r = client_run(client, &call);
	if (r < 0)
		goto out;
	if (msg_get_u64(call.reply, "version", &version) < 0) {
		r = error_set(-EPROTO, "mmapd's hello reply has no valid \"version\"");
		goto out;
	}
	if (version < PROTO_VERSION_MIN || version > PROTO_VERSION) {
		r = error_set(-EPROTONOSUPPORT,
		              "mmapd chose protocol version %llu; this library speaks %d to %d",
		              (unsigned long long)version, PROTO_VERSION_MIN, PROTO_VERSION);
		goto out;
	}
	/* Without a "limits" object the documented default frame size is in force. */
	limits = cJSON_GetObjectItemCaseSensitive(call.reply, "limits");
	if (cJSON_IsObject(limits) && msg_get_u64(limits, "max_frame", &max_frame) == 0 &&
	    (max_frame < FRAME_MAX_MIN || max_frame > FRAME_MAX_LIMIT)) {
		r = error_set(-EPROTO, "mmapd announced an invalid max_frame of %llu bytes",
		              (unsigned long long)max_frame);
		goto out;
	}
	/* A daemon without "manage" would ignore open's "temporary" and "truncate" silently. */
	features = cJSON_GetObjectItemCaseSensitive(call.reply, PROTO_FIELD_FEATURES);
	if (cJSON_IsArray(features))
		cJSON_ArrayForEach(feature, features)
			manage |= cJSON_IsString(feature) &&
			          strcmp(feature->valuestring, "manage") == 0;
	pthread_mutex_lock(&client->lock);
	client->manage = manage;
	client->protocol = (uint32_t)version;
	client->max_frame = (uint32_t)max_frame;
	pthread_mutex_unlock(&client->lock);

out:
	cJSON_Delete(req);
	cJSON_Delete(call.reply);
	return r;
}
