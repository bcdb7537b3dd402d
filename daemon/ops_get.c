/* SPDX-License-Identifier: MIT */
/*
 * The field readers (see ops.h): each reads one field of a request and, when the field is
 * missing or of the wrong type, answers EINVAL naming the field, so that handlers only test
 * the result.
 */
#include "ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"
#include "name.h"
#include "vocab.h"

const char *ops_get_name(struct conn *c, uint64_t id, const cJSON *req)
{
	const char *name;
	size_t len;
	int r;

	if (ops_get_string(c, id, req, PROTO_FIELD_NAME, true, &name) < 0)
		return NULL;
	len = strlen(name);
	r = name_check(name, len);
	if (r == -ENAMETOOLONG) {
		reply_error(c, id, ENAMETOOLONG, "field 'name' is longer than %d bytes", NAME_MAX_LEN);
		return NULL;
	}
	if (r < 0) {
		reply_error(c, id, EINVAL, "field 'name' is not a valid region name: %s",
		            name_problem(name, len));
		return NULL;
	}
	return name;
}

int ops_get_u64(struct conn *c, uint64_t id, const cJSON *req, const char *key, bool required,
                uint64_t *ret)
{
	int r = msg_get_u64(req, key, ret);

	if (r == 0)
		return 1;
	if (r == -ENOENT && !required)
		return 0;
	reply_error(c, id, EINVAL, r == -ENOENT ? "field '%s' is required"
	            : "field '%s' must be an integer from 0 to 2^53-1", key);
	return -1;
}

int ops_get_string(struct conn *c, uint64_t id, const cJSON *req, const char *key, bool required,
                   const char **ret)
{
	int r = msg_get_string(req, key, ret);

	if (r == 0)
		return 1;
	if (r == -ENOENT && !required)
		return 0;
	reply_error(c, id, EINVAL, r == -ENOENT ? "field '%s' is required"
	            : "field '%s' must be a string", key);
	return -1;
}

int ops_get_bool(struct conn *c, uint64_t id, const cJSON *req, const char *key, bool *ret)
{
	if (msg_get_bool(req, key, ret) == -EINVAL) {
		reply_error(c, id, EINVAL, "field '%s' must be true or false", key);
		return -1;
	}
	return 0;
}
