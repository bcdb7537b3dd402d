/* SPDX-License-Identifier: MIT */
/*
 * Building requests: {"op": ..., "name": ...} and integer fields, with the checks every
 * public entry point makes before a round trip (a client, a valid region name). Below the
 * call multiplexer (call.c), which sends what is built here, and below every op's file.
 */
#include <errno.h>
#include <string.h>

#include "call.h"
#include "msg.h"
#include "name.h"

cJSON *request_new(const char *op, const char *name)
{
	cJSON *req = cJSON_CreateObject();

	if (!req || !cJSON_AddStringToObject(req, PROTO_FIELD_OP, op) ||
	    (name && !cJSON_AddStringToObject(req, PROTO_FIELD_NAME, name))) {
		cJSON_Delete(req);
		request_nomem();
		return NULL;
	}
	return req;
}

int request_start(struct mmapd_client *client, const char *op, const char *name,
                  cJSON **ret_req)
{
	int r;

	if (!client)
		return error_set(-EINVAL, "client is NULL");
	if (name) {
		r = region_name_check(name);
		if (r < 0)
			return r;
	}
	*ret_req = request_new(op, name);
	return *ret_req ? 0 : -ENOMEM;
}

int request_start_region(struct mmapd_client *client, const char *op, const char *name,
                         cJSON **ret_req)
{
	if (client && !name)
		return error_set(-EINVAL, "name is NULL");
	return request_start(client, op, name, ret_req);
}

int request_nomem(void)
{
	return error_set(-ENOMEM, "out of memory building a request");
}

int request_add_u64(cJSON *req, const char *key, uint64_t value)
{
	if (value > PROTO_ID_MAX)
		return error_set(-EINVAL, "%s %llu is above 2^53-1, the largest the protocol carries",
		                 key, (unsigned long long)value);
	if (!cJSON_AddNumberToObject(req, key, (double)value))
		return request_nomem();
	return 0;
}

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
