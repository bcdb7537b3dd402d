/* SPDX-License-Identifier: MIT */
/*
 * The ops that survey the daemon: list (regions by name, a page at a time) and status
 * (server-wide figures). Both read the data directory, where file regions live whether or
 * not anyone holds them, and merge what only the region table knows: anonymous regions and
 * the grant counts of regions in use.
 *
 * Neither reads the directory: both answer from its index (dirindex.h), which inotify keeps
 * true. A page costs O(log n) per name it looks at and work (an fstatat, a region object)
 * only for the regions it returns; status's count of files is O(1).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "dirindex.h"
#include "fdcount.h"
#include "log.h"
#include "msg.h"
#include "ops.h"
#include "region.h"
#include "state.h"
#include "vocab.h"

#define LIST_LIMIT_MAX 1000

/* The region object of a file nobody holds; NULL if it vanished or on ENOMEM. */
static cJSON *list_file_json(struct server *srv, const char *name)
{
	struct stat st;

	if (fstatat(srv->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	return region_file_json(srv, name, &st);
}

int ops_list(struct conn *c, uint64_t id, cJSON *req)
{
	struct server *srv = c->srv;
	const char *after = NULL, *name;
	cJSON *reply = NULL, *array;
	uint64_t limit = LIST_LIMIT_MAX, sent = 0;
	bool more = false;
	size_t used;
	int r;

	if (ops_get_string(c, id, req, PROTO_FIELD_AFTER, false, &after) < 0)
		return OPS_DONE;
	r = msg_get_u64(req, "limit", &limit);
	if (r == -EINVAL || limit < 1 || limit > LIST_LIMIT_MAX) {
		reply_error(c, id, EINVAL, "field 'limit' must be an integer from 1 to %d",
		            LIST_LIMIT_MAX);
		return OPS_DONE;
	}

	reply = msg_reply_ok(id);
	if (!reply || !cJSON_AddFalseToObject(reply, PROTO_FIELD_MORE))
		goto nomem;
	array = cJSON_AddArrayToObject(reply, PROTO_FIELD_REGIONS);
	if (!array)
		goto nomem;
	/* What the page may still use: "false" is the longer value of "more". */
	used = ops_json_len(reply);
	if (used == 0)
		goto nomem;

	dirindex_sync(srv);
	for (name = dirindex_next(srv, after); name; name = dirindex_next(srv, name)) {
		struct region *reg = region_lookup(srv, name);
		cJSON *obj;
		size_t len;

		/* A name being created or unlinked is in neither state yet: leave it out. */
		if (reg && reg->state == REGION_BUSY)
			continue;
		if (sent == limit) {
			more = true;
			break;
		}
		obj = reg ? region_to_json(reg) : list_file_json(srv, name);
		if (!obj)
			continue;   /* vanished, its event not read yet (or ENOMEM: a shorter page) */
		len = ops_json_len(obj) + (sent ? 1 : 0);
		if (len == 0 || used + len > srv->limits->max_frame) {
			cJSON_Delete(obj);
			more = true;
			break;
		}
		if (!cJSON_AddItemToArray(array, obj)) {
			cJSON_Delete(obj);
			goto nomem;
		}
		used += len;
		sent++;
	}
	if (more && ops_json_set_true(reply, PROTO_FIELD_MORE) < 0)
		goto nomem;
	reply_send(c, id, reply);
	return OPS_DONE;

nomem:
	cJSON_Delete(reply);
	reply_nomem(c, id);
	return OPS_DONE;
}

int ops_status(struct conn *c, uint64_t id, cJSON *req)
{
	struct server *srv = c->srv;
	uint64_t files = 0, bytes = 0;
	struct region *r;
	cJSON *reply, *limits;
	int fds;

	(void)req;
	dirindex_sync(srv);
	files = dirindex_files(srv);
	/*
	 * The sizes the daemon last saw, not an fstat of each region: a user may hold every
	 * file of the data directory, and status would then cost as much as the scan it no
	 * longer does. A size set behind the daemon's back counts from the next size check.
	 */
	for (r = srv->all_regions; r; r = r->next)
		if (r->grants > 0)
			bytes += r->size * r->grants;
	fds = fd_count();

	reply = msg_reply_ok(id);
	limits = ops_limits_json(c);
	if (!reply || !limits ||
	    !cJSON_AddStringToObject(reply, PROTO_FIELD_VERSION, MMAPD_VERSION_STRING) ||
	    !cJSON_AddNumberToObject(reply, "protocol", (double)c->version) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_PID, (double)getpid()) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_UPTIME_MS, (double)state_uptime_ms(srv)) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_CLIENTS, (double)srv->nconns) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_REGIONS,
	                             (double)(files + srv->nanonymous)) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_ANONYMOUS_REGIONS,
	                             (double)srv->nanonymous) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_GRANTS, (double)srv->ngrants) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_BYTES_GRANTED, (double)bytes) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_OPEN_FDS, fds > 0 ? (double)fds : 0) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_LOCKS, (double)srv->nlocks) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_LOCK_WAITERS, (double)srv->nlock_waiters) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_SUBSCRIPTIONS,
	                             (double)srv->nsubscriptions) ||
	    !cJSON_AddItemToObject(reply, PROTO_FIELD_LIMITS, limits)) {
		cJSON_Delete(reply);
		cJSON_Delete(limits);
		reply = NULL;
	}
	reply_send(c, id, reply);
	return OPS_DONE;
}
