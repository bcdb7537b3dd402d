/* SPDX-License-Identifier: MIT */
/*
 * The region getters (see ops.h): how a handler finds the region a request names (from the
 * table, or its file opened now), checks the client's access to it, parks the request
 * behind a busy region (region_defer) and gives the region back.
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

#include "access.h"
#include "adopt.h"
#include "conn.h"
#include "fsdir.h"
#include "region.h"
#include "state.h"
#include "vocab.h"

int ops_check_access(struct conn *c, uint64_t id, const char *name, const struct access *a,
                     unsigned want)
{
	if (access_check(a, c, want) == 0)
		return 0;
	conn_warn(c, "denied %s access to region '%s' (owner %" PRIu32 ":%" PRIu32 ", mode %04o)",
	          access_want_name(want), name, a->uid, a->gid, a->perm);
	reply_error(c, id, EACCES, "permission denied: uid %lu may not %s region '%s' "
	            "(owner %" PRIu32 ":%" PRIu32 ", mode %04o)", (unsigned long)c->uid,
	            access_want_name(want), name, a->uid, a->gid, a->perm);
	return -1;
}

int ops_check_region(struct conn *c, uint64_t id, const struct region *r, unsigned want)
{
	if (!r->adopt)
		return ops_check_access(c, id, r->name, &r->acc, want);
	if (adopt_check(r, c, want) == 0)
		return 0;
	conn_warn(c, "denied %s access to adopted region '%s'", access_want_name(want), r->name);
	reply_error(c, id, EACCES, "permission denied: uid %lu may not %s adopted region '%s': "
	            "neither a descriptor it sent nor the region's mode (owner %" PRIu32 ":%" PRIu32
	            ", mode %04o) within what the owner's descriptors allow gives that",
	            (unsigned long)c->uid, access_want_name(want), r->name, r->acc.uid, r->acc.gid,
	            r->acc.perm);
	return -1;
}

/* Ends ops_get_region: checks access to the region found. */
static int ops_get_region_checked(struct conn *c, uint64_t id, unsigned want,
                                  struct region **ret_region)
{
	if (want && *ret_region && ops_check_region(c, id, *ret_region, want) < 0) {
		ops_put_region(*ret_region);
		*ret_region = NULL;
	}
	return OPS_DONE;
}

int ops_defer(struct conn *c, uint64_t id, cJSON *req, struct region *r)
{
	if (region_defer(r, c, id, req) < 0)
		reply_nomem(c, id);
	return OPS_KEPT;
}

int ops_get_region(struct conn *c, uint64_t id, cJSON *req, const char *name, unsigned want,
                   struct region **ret_region)
{
	struct region *r;
	struct stat st;
	int pathfd, ret;

	*ret_region = NULL;
	r = region_lookup(c->srv, name);
	if (r && r->state == REGION_BUSY)
		return ops_defer(c, id, req, r);
	if (r) {
		region_ref(r);
		*ret_region = r;
		return ops_get_region_checked(c, id, want, ret_region);
	}
	ret = fsdir_lookup(c->srv->dir_fd, name, &st, &pathfd);
	if (ret < 0) {
		reply_lookup_error(c, id, name, -ret);
		return OPS_DONE;
	}
	ret = region_open_file(c->srv, name, pathfd, &st, ret_region);
	if (ret < 0)
		reply_open_file_error(c, id, name, &st, -ret);
	return ops_get_region_checked(c, id, want, ret_region);
}

void ops_put_region(struct region *r)
{
	region_check_idle(r);
	region_unref(r);
}

struct grant *ops_get_grant(struct conn *c, uint64_t id, const cJSON *req)
{
	struct grant *g;
	uint64_t handle;

	if (ops_get_u64(c, id, req, PROTO_FIELD_HANDLE, true, &handle) < 0)
		return NULL;
	g = grant_find(c, handle);
	if (!g)
		reply_error(c, id, EBADF, "no grant with handle %" PRIu64 " on this connection",
		            handle);
	return g;
}
