/* SPDX-License-Identifier: MIT */
/*
 * JSON helpers of the handlers (see ops.h): reply lengths, "more"/"truncated" flags, and the
 * limits object of the hello and status replies.
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

#include "budget.h"
#include "conn.h"
#include "msg.h"
#include "name.h"
#include "state.h"

size_t ops_json_len(const cJSON *obj)
{
	char *text = msg_print(obj, false);
	size_t len;

	if (!text)
		return 0;
	len = strlen(text);
	cJSON_free(text);
	return len;
}

int ops_json_set_true(cJSON *obj, const char *key)
{
	cJSON *yes = cJSON_CreateTrue();

	if (!yes || !cJSON_ReplaceItemInObjectCaseSensitive(obj, key, yes)) {
		cJSON_Delete(yes);
		return -ENOMEM;
	}
	return 0;
}

/* Adds the per-uid budgets and the reserve to a limits object. Returns false on ENOMEM. */
static bool ops_limits_budgets(const struct server *srv, cJSON *obj)
{
	for (int i = 0; i < BUDGET_NITEMS; i++)
		if (!cJSON_AddNumberToObject(obj, budget_key((enum budget_item)i),
		                             (double)budget_limit(srv, (enum budget_item)i)))
			return false;
	return cJSON_AddNumberToObject(obj, "max_anonymous_bytes_all_users",
	                               (double)budget_all_users_limit(srv)) &&
	       cJSON_AddNumberToObject(obj, "reserved_clients",
	                               (double)srv->limits->reserved_clients) &&
	       cJSON_AddNumberToObject(obj, "reserved_fds", (double)srv->limits->reserved_fds);
}

cJSON *ops_limits_json(const struct conn *c)
{
	const struct limits *l = c->srv->limits;
	cJSON *obj = cJSON_CreateObject();

	if (!obj)
		return NULL;
	if (!cJSON_AddNumberToObject(obj, "max_frame", (double)l->max_frame) ||
	    !cJSON_AddNumberToObject(obj, "max_clients", (double)l->max_clients) ||
	    !cJSON_AddNumberToObject(obj, "max_grants_per_client", (double)l->max_grants_per_client) ||
	    !cJSON_AddNumberToObject(obj, "max_fds_in_flight", (double)l->max_fds_in_flight) ||
	    !cJSON_AddNumberToObject(obj, "max_region_size", (double)l->max_region_size) ||
	    !cJSON_AddNumberToObject(obj, "max_name", NAME_MAX_LEN) ||
	    !cJSON_AddNumberToObject(obj, "max_locks_per_client", (double)l->max_locks_per_client) ||
	    !cJSON_AddNumberToObject(obj, "max_subscriptions_per_client",
	                             (double)l->max_subscriptions_per_client) ||
	    !cJSON_AddNumberToObject(obj, "shrink_timeout_ms", (double)l->shrink_timeout_ms) ||
	    !cJSON_AddNumberToObject(obj, "event_backlog_bytes", (double)l->event_backlog_bytes) ||
	    !cJSON_AddNumberToObject(obj, "max_pending_ranges", (double)l->max_pending_ranges) ||
	    !cJSON_AddNumberToObject(obj, "size_check_ms", (double)l->size_check_ms) ||
	    !cJSON_AddNumberToObject(obj, "external_poll_ms", (double)l->external_poll_ms) ||
	    !ops_limits_budgets(c->srv, obj)) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}
