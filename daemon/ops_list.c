/*
 * The ops that survey the daemon: list (regions by name, a page at a time) and status
 * (server-wide figures). Both read the data directory, where file regions live whether or
 * not anyone holds them, and merge what only the region table knows: anonymous regions and
 * the grant counts of regions in use.
 *
 * list never sorts the whole directory: it keeps the smallest (limit + 1) names above
 * "after", pruning whenever twice that many have gathered, so a page costs one directory
 * scan and O(n log limit) work whatever the directory holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "fdcount.h"
#include "fsdir.h"
#include "log.h"
#include "msg.h"
#include "ops.h"
#include "region.h"
#include "state.h"

#define LIST_LIMIT_MAX 1000

struct list_pick {
	struct server *srv;
	const char *after;     /* NULL: from the start */
	size_t keep;           /* limit + 1: one more than a page tells whether more remain */
	char **names;
	size_t count;
	size_t cap;            /* 2 * keep */
	bool dropped;          /* names above the kept ones were pruned */
};

static int list_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_prune(struct list_pick *p)
{
	size_t i;

	qsort(p->names, p->count, sizeof(*p->names), list_name_cmp);
	if (p->count <= p->keep)
		return;
	for (i = p->keep; i < p->count; i++)
		free(p->names[i]);
	p->count = p->keep;
	p->dropped = true;
}

static int list_offer(void *userdata, const char *name)
{
	struct list_pick *p = userdata;
	struct region *r;

	if (p->after && strcmp(name, p->after) <= 0)
		return 0;
	/* A name being created or unlinked is in neither state yet: leave it out. */
	r = region_lookup(p->srv, name);
	if (r && r->state == REGION_BUSY)
		return 0;
	if (p->count == p->cap)
		list_prune(p);
	p->names[p->count] = strdup(name);
	if (!p->names[p->count])
		return -ENOMEM;
	p->count++;
	return 0;
}

static void list_pick_done(struct list_pick *p)
{
	size_t i;

	for (i = 0; i < p->count; i++)
		free(p->names[i]);
	free(p->names);
}

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
	struct list_pick p = { .srv = srv };
	struct htab_iter it;
	struct hnode *node;
	cJSON *reply = NULL, *array;
	size_t used, i, sent = 0;
	uint64_t limit = LIST_LIMIT_MAX;
	int r;

	if (ops_get_string(c, id, req, "after", false, &p.after) < 0)
		return OPS_DONE;
	r = msg_get_u64(req, "limit", &limit);
	if (r == -EINVAL || limit < 1 || limit > LIST_LIMIT_MAX) {
		reply_error(c, id, EINVAL, "field 'limit' must be an integer from 1 to %d",
		            LIST_LIMIT_MAX);
		return OPS_DONE;
	}
	p.keep = (size_t)limit + 1;
	p.cap = 2 * p.keep;
	p.names = calloc(p.cap, sizeof(*p.names));
	if (!p.names)
		goto nomem;

	r = fsdir_scan(srv->dir_fd, list_offer, &p);
	if (r == -ENOMEM)
		goto nomem;
	if (r < 0) {
		log_error("cannot read the data directory: %s", strerror(-r));
		reply_error(c, id, reply_wire_errno(-r), "cannot read the data directory: %s",
		            strerror(-r));
		goto out;
	}
	htab_iter_init(&srv->regions, &it);
	while ((node = htab_iter_next(&srv->regions, &it)) != NULL) {
		struct region *reg = htab_entry(node, struct region, node);

		if (reg->anonymous && reg->state == REGION_READY && list_offer(&p, reg->name) < 0)
			goto nomem;
	}
	list_prune(&p);

	reply = msg_reply_ok(id);
	if (!reply || !cJSON_AddFalseToObject(reply, "more"))
		goto nomem;
	array = cJSON_AddArrayToObject(reply, "regions");
	if (!array)
		goto nomem;
	/* What the page may still use: "false" is the longer value of "more". */
	used = ops_json_len(reply);
	if (used == 0)
		goto nomem;

	for (i = 0; i < p.count && sent < limit; i++) {
		struct region *reg = region_lookup(srv, p.names[i]);
		cJSON *obj;
		size_t len;

		obj = reg && reg->state == REGION_READY ? region_to_json(reg)
		                                        : list_file_json(srv, p.names[i]);
		if (!obj)
			continue;   /* vanished since the scan */
		len = ops_json_len(obj) + (sent ? 1 : 0);
		if (len == 0 || used + len > srv->limits->max_frame) {
			cJSON_Delete(obj);
			break;
		}
		if (!cJSON_AddItemToArray(array, obj)) {
			cJSON_Delete(obj);
			goto nomem;
		}
		used += len;
		sent++;
	}
	if ((i < p.count || p.dropped) && ops_json_set_true(reply, "more") < 0)
		goto nomem;
	reply_send(c, id, reply);
	reply = NULL;
	goto out;

nomem:
	reply_nomem(c, id);
out:
	cJSON_Delete(reply);
	list_pick_done(&p);
	return OPS_DONE;
}

static int status_count(void *userdata, const char *name)
{
	(void)name;
	(*(uint64_t *)userdata)++;
	return 0;
}

int ops_status(struct conn *c, uint64_t id, cJSON *req)
{
	struct server *srv = c->srv;
	uint64_t files = 0, bytes = 0;
	struct region *r;
	cJSON *reply, *limits;
	int ret, fds;

	(void)req;
	ret = fsdir_scan(srv->dir_fd, status_count, &files);
	if (ret < 0) {
		log_error("cannot read the data directory: %s", strerror(-ret));
		reply_error(c, id, reply_wire_errno(-ret), "cannot read the data directory: %s",
		            strerror(-ret));
		return OPS_DONE;
	}
	for (r = srv->all_regions; r; r = r->next)
		if (r->grants > 0)
			bytes += region_size(r) * r->grants;
	fds = fd_count();

	reply = msg_reply_ok(id);
	limits = ops_limits_json(c);
	if (!reply || !limits ||
	    !cJSON_AddStringToObject(reply, "version", MMAPD_VERSION_STRING) ||
	    !cJSON_AddNumberToObject(reply, "protocol", (double)c->version) ||
	    !cJSON_AddNumberToObject(reply, "pid", (double)getpid()) ||
	    !cJSON_AddNumberToObject(reply, "uptime_ms", (double)state_uptime_ms(srv)) ||
	    !cJSON_AddNumberToObject(reply, "clients", (double)srv->nconns) ||
	    !cJSON_AddNumberToObject(reply, "regions", (double)(files + srv->nanonymous)) ||
	    !cJSON_AddNumberToObject(reply, "anonymous_regions", (double)srv->nanonymous) ||
	    !cJSON_AddNumberToObject(reply, "grants", (double)srv->ngrants) ||
	    !cJSON_AddNumberToObject(reply, "bytes_granted", (double)bytes) ||
	    !cJSON_AddNumberToObject(reply, "open_fds", fds > 0 ? (double)fds : 0) ||
	    !cJSON_AddNumberToObject(reply, "locks", (double)srv->nlocks) ||
	    !cJSON_AddNumberToObject(reply, "lock_waiters", (double)srv->nlock_waiters) ||
	    !cJSON_AddNumberToObject(reply, "subscriptions", (double)srv->nsubscriptions) ||
	    !cJSON_AddItemToObject(reply, "limits", limits)) {
		cJSON_Delete(reply);
		cJSON_Delete(limits);
		reply = NULL;
	}
	reply_send(c, id, reply);
	return OPS_DONE;
}
