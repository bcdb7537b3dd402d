/* SPDX-License-Identifier: MIT */
/*
 * Emptying and trimming regions like files (docs/protocol.md): open's "truncate", O_TRUNC of
 * an existing file region nobody uses (mmap-io's create_rw), done on the thread pool while
 * the region is busy, after which the open runs again without it and is granted as usual;
 * and "truncate-on-close" (fmmap's close_with_truncate), which records a final size that
 * lifetime.c applies when the region's last grant goes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "conn.h"
#include "fsdir.h"
#include "log.h"
#include "msg.h"
#include "ops.h"
#include "region.h"
#include "state.h"
#include "vocab.h"

struct truncate_job {
	struct state_job job;
	struct region *region;        /* made busy meanwhile; referenced */
	struct conn *conn;            /* referenced; its pending count covers this job */
	uint64_t id;
	cJSON *req;                   /* the open, run again once the region is emptied */
	int fd;                       /* the region's, borrowed */
	uint64_t size;
	bool sparse;
	int result;
};

/* On the thread pool: O_TRUNC, then the size asked for. */
static void truncate_run(struct state_job *sj)
{
	struct truncate_job *job = (struct truncate_job *)sj;
	bool fell_back = false;
	int ret;

	do
		ret = ftruncate(job->fd, 0);
	while (ret < 0 && errno == EINTR);
	job->result = ret < 0 ? -errno : fsdir_resize(job->fd, job->size, job->sparse, &fell_back);
}

static void truncate_done(struct state_job *sj)
{
	struct truncate_job *job = (struct truncate_job *)sj;
	struct region *r = job->region;
	struct conn *c = job->conn;

	r->state = REGION_READY;
	if (job->result == 0 || job->result == -ENOSPC || job->result == -EDQUOT) {
		/* Emptied at least: the size the file has now is the one the daemon made. */
		r->size = region_size(r);
		r->generation++;
	}
	if (job->result < 0) {
		reply_error(c, job->id, reply_wire_errno(-job->result), "cannot truncate region "
		            "'%s' to %" PRIu64 " bytes: %s", r->name, job->size,
		            strerror(-job->result));
		cJSON_Delete(job->req);
	} else {
		log_info("truncated region '%s' to %" PRIu64 " empty bytes for client %llu (pid %ld)",
		         r->name, job->size, (unsigned long long)c->serial, (long)c->pid);
		cJSON_DeleteItemFromObjectCaseSensitive(job->req, PROTO_FIELD_TRUNCATE);
		if (conn_alive(c))
			c->srv->rerun(c, job->id, job->req);
		else
			cJSON_Delete(job->req);
	}
	region_wake(r);
	region_check_idle(r);
	region_unref(r);
	conn_pending_done(c);
	conn_unref(c);
	free(job);
}

int ops_open_truncate(struct conn *c, uint64_t id, cJSON *req, struct region *r, uint64_t size,
                      bool sparse)
{
	struct truncate_job *job;
	int ret;

	if (ops_check_access(c, id, r->name, &r->acc, ACCESS_WRITE) < 0)
		return OPS_DONE;
	if (r->anonymous) {
		reply_error(c, id, EINVAL, "field 'truncate' applies to file regions: anonymous "
		            "region '%s' is sealed against shrinking", r->name);
		return OPS_DONE;
	}
	if (r->adopt) {
		reply_error(c, id, EPERM, "operation not permitted: region '%s' is an adopted file, "
		            "which the daemon never truncates", r->name);
		return OPS_DONE;
	}
	if (r->rdonly) {
		reply_error(c, id, EACCES, "the daemon can open region '%s' only read-only", r->name);
		return OPS_DONE;
	}
	/* Emptying a region under its mappers would raise SIGBUS in them: resize is for that. */
	if (r->grants > 0 || r->nsubs > 0 || r->locks.nheld > 0 || r->locks.nwaiting > 0 ||
	    region_busy(r)) {
		reply_error(c, id, EBUSY, "region '%s' is in use (held, subscribed to, locked or "
		            "being resized or flushed): open it without \"truncate\", or resize it",
		            r->name);
		return OPS_DONE;
	}
	job = calloc(1, sizeof(*job));
	if (!job) {
		reply_nomem(c, id);
		return OPS_DONE;
	}
	job->region = r;
	region_ref(r);
	job->conn = c;
	conn_ref(c);
	conn_pending_add(c);
	job->id = id;
	job->req = c->srv->request_trim(req);
	job->fd = r->fd;
	job->size = size;
	job->sparse = sparse;
	/* Requests naming it wait until it is emptied (region_defer). */
	r->state = REGION_BUSY;
	ret = state_job_start(c->srv, &job->job, truncate_run, truncate_done);
	if (ret < 0) {
		log_error("cannot queue the truncation of region '%s': %s", r->name, uv_strerror(ret));
		job->result = -ENOMEM;
		truncate_done(&job->job);
	}
	return OPS_KEPT;
}

int ops_truncate_on_close(struct conn *c, uint64_t id, cJSON *req)
{
	uint64_t size;
	struct region *r;
	const char *name;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name || ops_get_u64(c, id, req, PROTO_FIELD_SIZE, true, &size) < 0)
		return OPS_DONE;
	if (size > c->srv->limits->max_region_size) {
		reply_error(c, id, EFBIG, "field 'size' (%" PRIu64 ") is above max_region_size "
		            "(%" PRIu64 ")", size, c->srv->limits->max_region_size);
		return OPS_DONE;
	}
	ret = ops_get_region(c, id, req, name, ACCESS_WRITE, &r);
	if (!r)
		return ret;
	if (r->anonymous) {
		reply_error(c, id, EINVAL, "truncate-on-close applies to file regions: anonymous "
		            "region '%s' is sealed against shrinking", name);
	} else if (r->adopt) {
		reply_error(c, id, EPERM, "operation not permitted: region '%s' is an adopted file, "
		            "which the daemon never truncates", name);
	} else if (r->rdonly) {
		reply_error(c, id, EACCES, "the daemon can open region '%s' only read-only", name);
	} else {
		r->final_size = size;
		r->has_final_size = true;
		/* A region nobody holds is truncated now, before the reply says it is done. */
		ops_put_region(r);
		reply_ok(c, id);
		return OPS_DONE;
	}
	ops_put_region(r);
	return OPS_DONE;
}
