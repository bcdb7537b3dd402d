/*
 * The ops that make and unmake regions: open (with its creation on the thread pool) and
 * delete (unlink on the thread pool). Both may wait behind a busy region. The region table
 * guarantees that one name has at most one creation or unlink in flight; every other request
 * for that name queues on the busy placeholder and runs again when the job is over.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "fsdir.h"
#include "log.h"
#include "msg.h"
#include "ops.h"
#include "region.h"
#include "server.h"

struct open_args {
	const char *name;
	enum region_mode mode;
	bool create;
	bool exclusive;
	bool anonymous;
	bool sparse;
	bool has_size;
	uint64_t size;
};

/* Reads one optional boolean field. Returns 0, or -1 after answering with EINVAL. */
static int open_get_bool(struct conn *c, uint64_t id, const cJSON *req, const char *key, bool *ret)
{
	if (msg_get_bool(req, key, ret) == -EINVAL) {
		ops_reply_error(c, id, EINVAL, "field '%s' must be true or false", key);
		return -1;
	}
	return 0;
}

/*
 * Parses and checks an open request. With quiet (a request checked before), nothing is
 * answered. Returns 0, or -1 after answering with the error.
 */
static int open_parse(struct conn *c, uint64_t id, const cJSON *req, struct open_args *a)
{
	const char *mode = NULL;
	int r;

	memset(a, 0, sizeof(*a));
	a->name = ops_get_name(c, id, req);
	if (!a->name)
		return -1;
	r = msg_get_string(req, "mode", &mode);
	if (r == -EINVAL) {
		ops_reply_error(c, id, EINVAL, "field 'mode' must be a string");
		return -1;
	}
	a->mode = REGION_MODE_RO;
	if (mode) {
		r = region_mode_parse(mode);
		if (r < 0) {
			ops_reply_error(c, id, EINVAL, "field 'mode' must be \"ro\", \"rw\" or \"cow\"");
			return -1;
		}
		a->mode = (enum region_mode)r;
	}
	if (open_get_bool(c, id, req, "create", &a->create) < 0 ||
	    open_get_bool(c, id, req, "exclusive", &a->exclusive) < 0)
		return -1;
	r = msg_get_u64(req, "size", &a->size);
	if (r == -EINVAL) {
		ops_reply_error(c, id, EINVAL, "field 'size' must be an integer from 1 to %" PRIu64,
		                c->srv->limits->max_region_size);
		return -1;
	}
	a->has_size = r == 0;
	if (open_get_bool(c, id, req, "anonymous", &a->anonymous) < 0 ||
	    open_get_bool(c, id, req, "sparse", &a->sparse) < 0)
		return -1;

	if (!a->create) {
		/* A false flag asks for nothing, so only a set flag or a size is refused. */
		const char *stray = a->exclusive ? "exclusive" : a->has_size ? "size" :
		                    a->anonymous ? "anonymous" : a->sparse ? "sparse" : NULL;

		if (stray) {
			ops_reply_error(c, id, EINVAL, "field '%s' is only allowed with \"create\": true",
			                stray);
			return -1;
		}
		return 0;
	}
	if (!a->has_size) {
		ops_reply_error(c, id, EINVAL, "field 'size' is required with \"create\": true");
		return -1;
	}
	if (a->size == 0) {
		ops_reply_error(c, id, EINVAL, "field 'size' must be at least 1");
		return -1;
	}
	if (a->size > c->srv->limits->max_region_size) {
		ops_reply_error(c, id, EFBIG, "field 'size' (%" PRIu64 ") is above max_region_size (%" PRIu64 ")",
		                a->size, c->srv->limits->max_region_size);
		return -1;
	}
	return 0;
}

/* Checks the per-client limits an open runs into. Returns 0, or -1 after answering EAGAIN. */
static int open_admit(struct conn *c, uint64_t id)
{
	const struct limits *l = c->srv->limits;

	if (c->ngrants >= l->max_grants_per_client) {
		conn_warn(c, "refused an open: it holds max_grants_per_client (%" PRIu64 ") grants",
		          l->max_grants_per_client);
		ops_reply_error(c, id, EAGAIN, "this connection holds max_grants_per_client (%" PRIu64
		                ") grants; close some first", l->max_grants_per_client);
		return -1;
	}
	if (c->out_fds >= l->max_fds_in_flight) {
		conn_warn(c, "refused an open: %zu descriptors wait unread (max_fds_in_flight %" PRIu64 ")",
		          c->out_fds, l->max_fds_in_flight);
		ops_reply_error(c, id, EAGAIN, "%zu descriptors wait in this connection's output queue "
		                "(max_fds_in_flight); read your replies", c->out_fds);
		return -1;
	}
	return 0;
}

/* Refuses a region that would pass max_regions. */
static void open_refuse_max_regions(struct conn *c, uint64_t id)
{
	uint64_t max = c->srv->limits->max_regions;

	conn_warn(c, "refused an open: the daemon tracks max_regions (%" PRIu64 ") regions", max);
	ops_reply_error(c, id, EAGAIN, "the daemon tracks max_regions (%" PRIu64 ") regions already; "
	                "retry once some are closed or deleted", max);
}

/* Answers a failure to get a descriptor, with a warning when the daemon is short of them. */
static void open_reply_fd_error(struct conn *c, uint64_t id, const char *name, int err)
{
	if (err == EMFILE || err == ENFILE) {
		log_warn("out of file descriptors opening region '%s' for client %llu (pid %ld)", name,
		         (unsigned long long)c->serial, (long)c->pid);
		ops_reply_error(c, id, err, "the daemon is out of file descriptors");
	} else if (err == EACCES || err == EPERM || err == EROFS) {
		ops_reply_error(c, id, EACCES, "the daemon cannot open region '%s' in that mode", name);
	} else if (err == ENOMEM) {
		ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
	} else {
		log_error("cannot open region '%s': %s", name, strerror(err));
		ops_reply_error(c, id, ops_wire_errno(err), "cannot open region '%s': %s", name,
		                strerror(err));
	}
}

/*
 * Makes a grant of r for c in mode and sends the reply with its descriptor. Answers any
 * failure itself.
 */
static void open_grant(struct conn *c, uint64_t id, struct region *r, enum region_mode mode,
                       bool created)
{
	struct grant *g;
	cJSON *reply = NULL, *obj;
	int fd, ret;

	if (mode == REGION_MODE_RW && r->rdonly) {
		ops_reply_error(c, id, EACCES, "the daemon can open region '%s' only read-only", r->name);
		return;
	}
	/* A fresh open file description per grant: nothing shared with us or other clients. */
	fd = fsdir_reopen(r->fd, mode == REGION_MODE_RW ? O_RDWR : O_RDONLY);
	if (fd < 0) {
		open_reply_fd_error(c, id, r->name, -fd);
		return;
	}
	ret = grant_new(c, r, mode, &g);
	if (ret < 0) {
		close(fd);
		ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
		return;
	}
	reply = ops_reply_new(id);
	obj = reply ? region_to_json(r) : NULL;
	if (!obj || !ops_json_add_u64(reply, "fds", 1) ||
	    !ops_json_add_u64(reply, "handle", g->handle) ||
	    !cJSON_AddStringToObject(reply, "mode", region_mode_name(mode)) ||
	    !cJSON_AddBoolToObject(reply, "created", created) ||
	    !cJSON_AddItemToObject(reply, "region", obj)) {
		cJSON_Delete(obj);
		goto fail;
	}
	ret = conn_send(c, reply, &fd, 1);
	fd = -1;
	cJSON_Delete(reply);
	reply = NULL;
	/* A connection closed by the send released its grants already. */
	if (ret < 0 && conn_alive(c))
		goto fail;
	if (ret == 0)
		log_debug("client %llu (pid %ld): grant %" PRIu64 " of '%s' (%s)",
		          (unsigned long long)c->serial, (long)c->pid, g->handle, r->name,
		          region_mode_name(mode));
	return;
fail:
	cJSON_Delete(reply);
	if (fd >= 0)
		close(fd);
	grant_free(g);
	ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
}

/* Opens the existing region file behind pathfd (consumed) and grants it. */
static void open_existing_file(struct conn *c, uint64_t id, const struct open_args *a, int pathfd,
                               const struct stat *st)
{
	struct region *r;
	bool rdonly = false;
	int fd, ret;

	/* The daemon's own descriptor is read-write if it can be, so rw grants are possible. */
	fd = fsdir_reopen(pathfd, O_RDWR);
	if (fd == -EACCES || fd == -EPERM || fd == -EROFS || fd == -ETXTBSY) {
		fd = fsdir_reopen(pathfd, O_RDONLY);
		rdonly = true;
	}
	close(pathfd);
	if (fd < 0) {
		open_reply_fd_error(c, id, a->name, -fd);
		return;
	}
	r = region_new(c->srv, a->name, false, REGION_READY);
	if (!r) {
		close(fd);
		ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
		return;
	}
	r->fd = fd;
	r->rdonly = rdonly;
	r->size = (uint64_t)st->st_size;
	ret = region_table_add(r, false);
	if (ret == -EAGAIN)
		open_refuse_max_regions(c, id);
	else if (ret < 0)
		ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
	else
		open_grant(c, id, r, a->mode, false);
	if (r->grants == 0)
		region_table_remove(r);
	region_unref(r);
}

/* Reads mode and exclusive of a request that open_parse accepted before. */
static void open_reparse(const cJSON *req, enum region_mode *ret_mode, bool *ret_exclusive)
{
	const char *mode = NULL;
	int r;

	*ret_mode = REGION_MODE_RO;
	*ret_exclusive = false;
	if (msg_get_string(req, "mode", &mode) == 0 && (r = region_mode_parse(mode)) >= 0)
		*ret_mode = (enum region_mode)r;
	msg_get_bool(req, "exclusive", ret_exclusive);
}

/* Completion of a creation job, on the loop. */
static void open_created(struct region_job *job)
{
	struct conn *c = job->conn;
	struct region *r = job->region;
	enum region_mode mode;
	bool exclusive;
	int err;

	open_reparse(job->req, &mode, &exclusive);
	if (job->result >= 0) {
		region_set_ready(r, job->result, job->size);
		job->result = -EBADF;   /* the region owns the descriptor now */
		if (job->fell_back)
			log_debug("the file system cannot reserve blocks for region '%s'; "
			          "it was sized with ftruncate", r->name);
		log_info("created %sregion '%s' (%" PRIu64 " bytes%s) for client %llu (pid %ld)",
		         r->anonymous ? "anonymous " : "", r->name, job->size,
		         job->sparse ? ", sparse" : "", (unsigned long long)c->serial, (long)c->pid);
		if (conn_alive(c) && open_admit(c, job->id) == 0)
			open_grant(c, job->id, r, mode, true);
		if (!r->anonymous && r->grants == 0)
			region_table_remove(r);
		goto wake;
	}

	err = -job->result;
	region_table_remove(r);
	if (err == EEXIST && !exclusive && conn_alive(c)) {
		/* Someone outside the daemon made the file meanwhile: open it as it is. */
		cJSON *req = job->req;

		job->req = NULL;
		ops_run(c, job->id, req);
		goto wake;
	}
	if (err == EEXIST) {
		ops_reply_error(c, job->id, EEXIST, "region '%s' already exists", r->name);
	} else {
		if (err == ENOSPC || err == EDQUOT)
			log_warn("cannot create region '%s' (%" PRIu64 " bytes): %s", r->name, job->size,
			         strerror(err));
		else
			log_error("cannot create region '%s': %s", r->name, strerror(err));
		ops_reply_error(c, job->id, ops_wire_errno(err), "cannot create region '%s': %s",
		                r->name, strerror(err));
	}
wake:
	region_wake(r);
	region_job_free(job);
}

/* Starts creating the region a->name. Consumes req. */
static void open_create(struct conn *c, uint64_t id, const struct open_args *a, cJSON *req)
{
	struct server *srv = c->srv;
	struct region_job *job;
	struct region *r;
	int ret;

	r = region_new(srv, a->name, a->anonymous, REGION_BUSY);
	if (!r) {
		ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
		cJSON_Delete(req);
		return;
	}
	ret = region_table_add(r, false);
	if (ret < 0) {
		if (ret == -EAGAIN)
			open_refuse_max_regions(c, id);
		else
			ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
		cJSON_Delete(req);
		region_unref(r);
		return;
	}
	job = region_job_new(r, a->anonymous ? REGION_JOB_CREATE_ANONYMOUS : REGION_JOB_CREATE_FILE,
	                     c, id, req);
	if (!job) {
		region_table_remove(r);
		region_unref(r);
		ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
		return;
	}
	job->size = a->size;
	job->sparse = a->sparse;
	fsdir_tmp_name(job->tmpname, ++srv->tmp_counter);
	job->done = open_created;
	ret = region_job_start(job);
	if (ret < 0) {
		log_error("cannot queue the creation of region '%s': %s", a->name, uv_strerror(ret));
		ops_reply_error(c, id, ENOMEM, "the daemon cannot queue work");
		region_table_remove(r);
		region_job_free(job);
	}
	region_unref(r);
}

int ops_open(struct conn *c, uint64_t id, cJSON *req)
{
	struct open_args a;
	struct region *r;
	struct stat st;
	int pathfd = -1, ret;

	if (open_parse(c, id, req, &a) < 0)
		return OPS_DONE;
	r = region_lookup(c->srv, a.name);
	if (r && r->state == REGION_BUSY) {
		if (region_defer(r, c, id, req) < 0)
			ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
		return OPS_KEPT;
	}
	if (open_admit(c, id) < 0)
		return OPS_DONE;
	if (r) {
		if (a.create && a.exclusive)
			ops_reply_error(c, id, EEXIST, "region '%s' already exists", a.name);
		else
			open_grant(c, id, r, a.mode, false);
		return OPS_DONE;
	}

	ret = fsdir_lookup(c->srv->dir_fd, a.name, &st, &pathfd);
	if (ret == 0) {
		if (a.create && a.exclusive) {
			close(pathfd);
			ops_reply_error(c, id, EEXIST, "region '%s' already exists", a.name);
		} else {
			open_existing_file(c, id, &a, pathfd, &st);
		}
		return OPS_DONE;
	}
	if (ret != -ENOENT || !a.create) {
		ops_reply_lookup_error(c, id, a.name, -ret);
		return OPS_DONE;
	}
	open_create(c, id, &a, req);
	return OPS_KEPT;
}

/* Completion of an unlink job, on the loop. */
static void delete_done(struct region_job *job)
{
	struct conn *c = job->conn;
	struct region *r = job->region;
	int err = -job->result;

	region_table_remove(r);
	if (job->result == 0) {
		log_info("deleted region '%s' for client %llu (pid %ld)", r->name,
		         (unsigned long long)c->serial, (long)c->pid);
		ops_reply_send(c, job->id, ops_reply_new(job->id));
	} else if (err == ENOENT) {
		ops_reply_error(c, job->id, ENOENT, "region '%s' does not exist", r->name);
	} else {
		log_error("cannot delete region '%s': %s", r->name, strerror(err));
		ops_reply_error(c, job->id, ops_wire_errno(err), "cannot delete region '%s': %s",
		                r->name, strerror(err));
	}
	region_wake(r);
	region_job_free(job);
}

int ops_delete(struct conn *c, uint64_t id, cJSON *req)
{
	struct region_job *job;
	struct region *r;
	struct stat st;
	const char *name;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name)
		return OPS_DONE;
	r = region_lookup(c->srv, name);
	if (r && r->state == REGION_BUSY) {
		if (region_defer(r, c, id, req) < 0)
			ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
		return OPS_KEPT;
	}
	if (r && r->anonymous) {
		/* Its grants keep the struct (and the memfd) alive; the name is free now. */
		region_table_remove(r);
		log_info("deleted anonymous region '%s' for client %llu (pid %ld)", name,
		         (unsigned long long)c->serial, (long)c->pid);
		ops_reply_send(c, id, ops_reply_new(id));
		return OPS_DONE;
	}
	/* A file region with grants leaves the table now; the unlink follows on the pool. */
	if (r)
		region_table_remove(r);

	ret = fsdir_lookup(c->srv->dir_fd, name, &st, NULL);
	if (ret < 0) {
		ops_reply_lookup_error(c, id, name, -ret);
		return OPS_DONE;
	}
	/* The name stays busy until the file is gone, so nobody opens what is being unlinked. */
	r = region_new(c->srv, name, false, REGION_BUSY);
	if (!r) {
		ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
		return OPS_DONE;
	}
	if (region_table_add(r, true) < 0) {
		region_unref(r);
		ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
		return OPS_DONE;
	}
	job = region_job_new(r, REGION_JOB_UNLINK, c, id, req);
	if (!job) {
		region_table_remove(r);
		region_unref(r);
		ops_reply_error(c, id, ENOMEM, "the daemon is out of memory");
		return OPS_KEPT;
	}
	job->done = delete_done;
	ret = region_job_start(job);
	if (ret < 0) {
		log_error("cannot queue the deletion of region '%s': %s", name, uv_strerror(ret));
		ops_reply_error(c, id, ENOMEM, "the daemon cannot queue work");
		region_table_remove(r);
		region_job_free(job);
	}
	region_unref(r);
	return OPS_KEPT;
}
