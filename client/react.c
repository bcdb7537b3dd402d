/* SPDX-License-Identifier: MIT */
/*
 * Reactions of libmmapd to the daemon's events. Whichever thread holds the reader role
 * (call.c) gives each event it reads here, through the client's event hook, with the lock held:
 * it is parsed, acted on at once (a resize remaps, a shrink protects the tail and is
 * acknowledged, a cancelled shrink restores access, a deletion is noted, a rename renames: mapping.c does the
 * work on every window of the region, coord.c forgets the subscription) and a copy is queued
 * for mmapd_client_dispatch() (evqueue.c). "shutdown" and "error" never come here: they break
 * the connection in call.c. Above the mappings and coordination it acts on; nothing names it
 * but mmapd_connect(), which sets the hook.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "top.h"
#include "msg.h"
#include "name.h"

/* ---- reading events ---- */

static const struct {
	enum proto_event event;
	enum mmapd_event_type type;
} event_kinds[] = {
	{ PROTO_EVENT_CHANGED, MMAPD_EVENT_CHANGED },
	{ PROTO_EVENT_OVERFLOW, MMAPD_EVENT_OVERFLOW },
	{ PROTO_EVENT_RESIZED, MMAPD_EVENT_RESIZED },
	{ PROTO_EVENT_SHRINKING, MMAPD_EVENT_SHRINKING },
	{ PROTO_EVENT_SHRINK_CANCELLED, MMAPD_EVENT_SHRINK_CANCELLED },
	{ PROTO_EVENT_POLICY, MMAPD_EVENT_POLICY },
	{ PROTO_EVENT_FLUSHED, MMAPD_EVENT_FLUSHED },
	{ PROTO_EVENT_FLUSH_FAILED, MMAPD_EVENT_FLUSH_FAILED },
	{ PROTO_EVENT_DELETED, MMAPD_EVENT_DELETED },
	{ PROTO_EVENT_UNLOCKED, MMAPD_EVENT_UNLOCKED },
	{ PROTO_EVENT_RENAMED, MMAPD_EVENT_RENAMED },
};

/* Reads a JSON number that holds an integer 0..2^53-1 (msg_get_u64 reads one by key). */
static int json_u64(const cJSON *item, uint64_t *ret)
{
	double d;

	if (!cJSON_IsNumber(item))
		return -EINVAL;
	d = item->valuedouble;
	if (!(d >= 0.0 && d <= (double)PROTO_ID_MAX) || (double)(uint64_t)d != d)
		return -EINVAL;
	*ret = (uint64_t)d;
	return 0;
}

/* Reads "ranges": [[offset, length], ...] into a malloc'd array. Returns 0 or -EINVAL/-ENOMEM. */
static int event_ranges(const cJSON *msg, struct mmapd_range **ret, size_t *ret_n)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(msg, PROTO_FIELD_RANGES), *item;
	struct mmapd_range *ranges;
	size_t n = 0;

	if (!cJSON_IsArray(arr))
		return -EINVAL;
	ranges = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	cJSON_ArrayForEach(item, arr) {
		if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2 ||
		    json_u64(cJSON_GetArrayItem(item, 0), &ranges[n].offset) < 0 ||
		    json_u64(cJSON_GetArrayItem(item, 1), &ranges[n].length) < 0) {
			free(ranges);
			return -EINVAL;
		}
		n++;
	}
	*ret = ranges;
	*ret_n = n;
	return 0;
}

/* Reads the optional "writer": {"client", "pid"} of a changed event. */
static int event_writer(const cJSON *msg, struct mmapd_event *ev)
{
	const cJSON *writer = cJSON_GetObjectItemCaseSensitive(msg, PROTO_FIELD_WRITER);
	uint64_t pid;

	if (!writer)
		return 0;
	if (!cJSON_IsObject(writer) ||
	    msg_get_string(writer, PROTO_FIELD_CLIENT, &ev->writer_client) < 0 ||
	    msg_get_u64(writer, PROTO_FIELD_PID, &pid) < 0 || pid > INT64_MAX)
		return -EINVAL;
	ev->writer_pid = (int64_t)pid;
	return 0;
}

/* Reads the "error" object of an event into error and message. */
static int event_error(const cJSON *msg, struct mmapd_event *ev)
{
	int err;

	if (msg_error_parse(msg, &err, &ev->message) < 0 || err <= 0)
		return -EINVAL;
	ev->error = -err;
	return 0;
}

/*
 * Fills ev (type set) from msg; *ret_ranges is for the caller to free, *ret_shrink gets the
 * shrink id. Pointers in ev are borrowed from msg. Returns 0, -EINVAL or -ENOMEM.
 */
static int event_parse(const cJSON *msg, struct mmapd_event *ev, struct mmapd_range **ret_ranges,
                       uint64_t *ret_shrink)
{
	switch (ev->type) {
	case MMAPD_EVENT_CHANGED:
		if (msg_get_u64(msg, PROTO_FIELD_SEQ, &ev->seq) < 0)
			return -EINVAL;
		ev->first_seq = ev->seq;
		ev->writer_pid = -1;
		if (msg_get_u64(msg, PROTO_FIELD_FIRST_SEQ, &ev->first_seq) == -EINVAL ||
		    event_writer(msg, ev) < 0 ||
		    msg_get_bool(msg, PROTO_FIELD_EXTERNAL, &ev->external) == -EINVAL ||
		    msg_get_u64(msg, PROTO_FIELD_SIZE, &ev->size) == -EINVAL)
			return -EINVAL;
		/* A change made outside mmapd has no ranges: "ranges": null. */
		if (ev->external &&
		    cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(msg, PROTO_FIELD_RANGES)))
			return 0;
		return event_ranges(msg, ret_ranges, &ev->nranges);
	case MMAPD_EVENT_OVERFLOW:
	case MMAPD_EVENT_FLUSHED:
		return msg_get_u64(msg, PROTO_FIELD_SEQ, &ev->seq) < 0 ? -EINVAL : 0;
	case MMAPD_EVENT_RESIZED:
		if (msg_get_u64(msg, PROTO_FIELD_SIZE, &ev->size) < 0 ||
		    msg_get_u64(msg, PROTO_FIELD_OLD_SIZE, &ev->old_size) < 0 ||
		    msg_get_u64(msg, PROTO_FIELD_GENERATION, &ev->generation) < 0 ||
		    msg_get_bool(msg, PROTO_FIELD_EXTERNAL, &ev->external) == -EINVAL)
			return -EINVAL;
		return 0;
	case MMAPD_EVENT_SHRINKING:
		if (msg_get_u64(msg, PROTO_FIELD_SIZE, &ev->size) < 0 ||
		    msg_get_u64(msg, PROTO_FIELD_GENERATION, &ev->generation) < 0 ||
		    msg_get_u64(msg, PROTO_FIELD_SHRINK, ret_shrink) < 0)
			return -EINVAL;
		return 0;
	case MMAPD_EVENT_SHRINK_CANCELLED:
		/* The daemon says why in words only; the code says that the shrink did not happen. */
		ev->error = -ECANCELED;
		if (msg_get_u64(msg, PROTO_FIELD_SHRINK, ret_shrink) < 0 ||
		    msg_get_string(msg, PROTO_FIELD_MESSAGE, &ev->message) == -EINVAL ||
		    (cJSON_HasObjectItem(msg, PROTO_FIELD_ERROR) && event_error(msg, ev) < 0))
			return -EINVAL;
		return 0;
	case MMAPD_EVENT_POLICY:
		return policy_read(cJSON_GetObjectItemCaseSensitive(msg, PROTO_FIELD_POLICY),
		                   &ev->policy) < 0 ? -EINVAL : 0;
	case MMAPD_EVENT_FLUSH_FAILED:
		return event_error(msg, ev);
	case MMAPD_EVENT_UNLOCKED:
		if (msg_get_u64(msg, PROTO_FIELD_OFFSET, &ev->offset) < 0 ||
		    msg_get_u64(msg, PROTO_FIELD_LENGTH, &ev->length) < 0)
			return -EINVAL;
		return 0;
	case MMAPD_EVENT_RENAMED:
		return msg_get_string(msg, PROTO_FIELD_TO, &ev->to) < 0 || name_check(ev->to,
		       strlen(ev->to)) < 0 ? -EINVAL : 0;
	default:
		return 0;
	}
}

void event_handle(struct mmapd_client *client, const cJSON *msg, const char *name)
{
	struct mmapd_event ev = { 0 };
	struct mmapd_range *ranges = NULL;
	uint64_t shrink = 0;
	size_t i;

	for (i = 0; i < sizeof(event_kinds) / sizeof(event_kinds[0]); i++)
		if (strcmp(name, proto_event_name(event_kinds[i].event)) == 0)
			break;
	/* The protocol may add events; those and malformed ones are ignored. */
	if (i == sizeof(event_kinds) / sizeof(event_kinds[0]))
		return;
	ev.type = event_kinds[i].type;
	if (msg_get_string(msg, PROTO_FIELD_REGION, &ev.region) < 0 ||
	    event_parse(msg, &ev, &ranges, &shrink) < 0) {
		free(ranges);
		return;
	}
	ev.ranges = ranges;
	/* The changes a page subscription reads itself happened before this event: first. */
	pagesub_catch_up(client, ev.region);

	switch (ev.type) {
	case MMAPD_EVENT_RESIZED:
		regions_resized(client, ev.region, ev.size, ev.generation);
		break;
	case MMAPD_EVENT_SHRINKING:
		/* A window whose tail could not be protected must not let the shrink go on. */
		if (regions_shrinking(client, ev.region, ev.size, shrink))
			client_ack_later(client, shrink);
		break;
	case MMAPD_EVENT_SHRINK_CANCELLED:
		regions_shrink_cancelled(client, ev.region, shrink);
		break;
	case MMAPD_EVENT_DELETED:
		regions_deleted(client, ev.region);
		subs_forget(client, ev.region);
		break;
	case MMAPD_EVENT_RENAMED:
		regions_renamed(client, ev.region, ev.to);
		subs_renamed(client, ev.region, ev.to);
		pagesub_renamed(client, ev.region, ev.to);
		fastlock_renamed(client, ev.region, ev.to);
		break;
	default:
		break;
	}
	event_push(client, &ev);
	free(ranges);
}
