/* SPDX-License-Identifier: MIT */
/*
 * The ops that make and unmake regions: open (with its creation on the thread pool) and
 * delete (unlink on the thread pool). Both may wait behind a busy region. The region table
 * guarantees that one name has at most one creation or unlink in flight; every other request
 * for that name queues on the busy placeholder and runs again when the job is over.
 *
 * A file region is created, then its metadata (policy, creation parameters) is written
 * (meta.c), and only then is the creation answered: a policy acknowledged is on disk. If
 * the metadata cannot be written, the region file goes too. A deletion retires the region
 * the name had (waiters cancelled, "deleted" sent) once the file is gone, and forgets its
 * metadata. Anonymous regions enter and leave the service manager's fd store (fdstore.h).
 *
 * An open may ask for an executable grant ("exec"): allowed by the config's allow_exec and
 * by an execute bit of the client's class in the region's mode (access.h); with create it
 * makes the region executable. "huge" makes an anonymous region of huge pages (memfd.h),
 * its size rounded up to whole huge pages here, before the job starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "conn.h"
#include "fdstore.h"
#include "flush.h"
#include "fsdir.h"
#include "log.h"
#include "memfd.h"
#include "meta.h"
#include "msg.h"
#include "ops.h"
#include "region.h"
#include "resize.h"
#include "state.h"
#include "vocab.h"

struct open_args {
	const char *name;
	enum region_mode mode;
	bool create;
	bool exclusive;
	bool anonymous;
	bool sparse;
	bool has_size;
	uint64_t size;
	bool has_policy;
	struct policy policy;
	bool has_perm;
	uint64_t perm;
	bool exec;                    /* an executable grant; with create, an executable region */
	bool huge;                    /* create an anonymous region with huge pages */
	bool temporary;               /* created: deleted when its last grant goes (lifetime.h) */
	bool truncate;                /* existing: emptied and sized to size first (ops_truncate.c) */
};

/*
 * Checks "huge" of a creation and rounds its size up to whole huge pages. Returns 0, or -1
 * after answering with the error.
 */
static int open_parse_huge(struct conn *c, uint64_t id, struct open_args *a)
{
	uint64_t page = memfd_huge_page_size();

	if (!a->anonymous) {
		reply_error(c, id, EINVAL, "field 'huge' needs \"anonymous\": true (file regions "
		            "get the page size of their file system)");
		return -1;
	}
	if (a->sparse) {
		reply_error(c, id, EINVAL, "fields 'huge' and 'sparse' exclude each other: huge "
		            "pages are reserved at creation");
		return -1;
	}
	if (a->size > UINT64_MAX - (page - 1)) {
		reply_error(c, id, EFBIG, "field 'size' (%" PRIu64 ") is above max_region_size "
		            "(%" PRIu64 ")", a->size, c->srv->limits->max_region_size);
		return -1;
	}
	a->size = (a->size + page - 1) / page * page;
	return 0;
}

/* Parses and checks an open request. Returns 0, or -1 after answering with the error. */
static int open_parse(struct conn *c, uint64_t id, const cJSON *req, struct open_args *a)
{
	const char *mode = NULL;
	struct why why;
	const cJSON *policy;
	int r;

	memset(a, 0, sizeof(*a));
	a->name = ops_get_name(c, id, req);
	if (!a->name)
		return -1;
	if (ops_get_string(c, id, req, PROTO_FIELD_MODE, false, &mode) < 0)
		return -1;
	a->mode = REGION_MODE_RO;
	if (mode) {
		r = region_mode_parse(mode);
		if (r < 0) {
			reply_error(c, id, EINVAL, "field 'mode' must be \"ro\", \"rw\" or \"cow\"");
			return -1;
		}
		a->mode = (enum region_mode)r;
	}
	if (ops_get_bool(c, id, req, PROTO_FIELD_CREATE, &a->create) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_EXCLUSIVE, &a->exclusive) < 0)
		return -1;
	r = msg_get_u64(req, PROTO_FIELD_SIZE, &a->size);
	if (r == -EINVAL) {
		reply_error(c, id, EINVAL, "field 'size' must be an integer from 0 to %" PRIu64,
		            c->srv->limits->max_region_size);
		return -1;
	}
	a->has_size = r == 0;
	if (ops_get_bool(c, id, req, PROTO_FIELD_ANONYMOUS, &a->anonymous) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_SPARSE, &a->sparse) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_EXEC, &a->exec) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_HUGE, &a->huge) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_TEMPORARY, &a->temporary) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_TRUNCATE, &a->truncate) < 0)
		return -1;
	a->policy.kind = POLICY_MANUAL;
	policy = cJSON_GetObjectItemCaseSensitive(req, PROTO_FIELD_POLICY);
	a->has_policy = policy != NULL;
	if (policy && policy_parse(policy, &a->policy, &why) < 0) {
		reply_error(c, id, EINVAL, "%s", why.text);
		return -1;
	}
	a->perm = a->exec ? ACCESS_PERM_DEFAULT_EXEC : ACCESS_PERM_DEFAULT;
	r = ops_get_u64(c, id, req, PROTO_FIELD_PERM, false, &a->perm);
	if (r < 0)
		return -1;
	a->has_perm = r > 0;
	if (a->perm > ACCESS_PERM_MAX) {
		reply_error(c, id, EINVAL, "field 'perm' must be a mode from 0 to 0777 (511)");
		return -1;
	}

	if (!a->create) {
		/* A false flag asks for nothing, so only a set flag, a size or a policy is refused. */
		const char *stray = a->exclusive ? "exclusive" : a->has_size ? "size" :
		                    a->anonymous ? "anonymous" : a->sparse ? "sparse" :
		                    a->has_policy ? "policy" : a->has_perm ? "perm" :
		                    a->huge ? "huge" : a->temporary ? "temporary" :
		                    a->truncate ? "truncate" : NULL;

		if (stray) {
			reply_error(c, id, EINVAL, "field '%s' is only allowed with \"create\": true",
			            stray);
			return -1;
		}
		return 0;
	}
	if (!a->has_size) {
		reply_error(c, id, EINVAL, "field 'size' is required with \"create\": true");
		return -1;
	}
	if (a->huge && open_parse_huge(c, id, a) < 0)
		return -1;
	if (a->truncate && (a->mode != REGION_MODE_RW || a->exclusive)) {
		reply_error(c, id, EINVAL, "field 'truncate' needs \"mode\": \"rw\" and no "
		            "\"exclusive\" (it empties an existing region for writing)");
		return -1;
	}
	/* An anonymous region not created executable never gets x bits (chmod refuses them). */
	if (a->anonymous && !a->exec)
		a->perm &= ~ACCESS_PERM_EXEC;
	if (a->size > c->srv->limits->max_region_size) {
		reply_error(c, id, EFBIG, "field 'size' (%" PRIu64 ") is above max_region_size (%" PRIu64 ")",
		            a->size, c->srv->limits->max_region_size);
		return -1;
	}
	return 0;
}

int ops_admit_grant(struct conn *c, uint64_t id, bool created)
{
	const struct limits *l = c->srv->limits;

	if (c->ngrants >= l->max_grants_per_client) {
		conn_warn(c, "refused an open: it holds max_grants_per_client (%" PRIu64 ") grants",
		          l->max_grants_per_client);
		reply_error(c, id, EAGAIN, "this connection holds max_grants_per_client (%" PRIu64
		            ") grants; close some first", l->max_grants_per_client);
		return -1;
	}
	if (c->out_fds >= l->max_fds_in_flight) {
		conn_warn(c, "refused an open: %zu descriptors wait unread (max_fds_in_flight %" PRIu64 ")",
		          c->out_fds, l->max_fds_in_flight);
		reply_error(c, id, EAGAIN, "%zu descriptors wait in this connection's output queue "
		            "(max_fds_in_flight); read your replies", c->out_fds);
		return -1;
	}
	/* The grant's descriptor waits in the queue until the client reads it. */
	if (!created && !budget_fits(c->budget, BUDGET_FDS, 1)) {
		reply_budget(c, id, c->budget, BUDGET_FDS, 1);
		return -1;
	}
	return 0;
}

int ops_admit_create(struct conn *c, uint64_t id, const char *name, const char *what)
{
	const struct config *cfg = c->srv->cfg;
	uint64_t max = cfg->limits.max_regions_created_per_client;

	if (!id_list_allows(&cfg->allow_create, c->uid, c->gid, c->groups, c->ngroups)) {
		conn_warn(c, "denied %s region '%s': not in allow_create", what, name);
		reply_error(c, id, EACCES, "permission denied: uid %lu may not create regions "
		            "(allow_create)", (unsigned long)c->uid);
		return -1;
	}
	if (c->regions_created >= max) {
		conn_warn(c, "refused %s region '%s': max_regions_created_per_client (%" PRIu64 ")",
		          what, name, max);
		reply_error(c, id, EAGAIN, "this connection created max_regions_created_per_client "
		            "(%" PRIu64 ") regions already", max);
		return -1;
	}
	return 0;
}

/* Checks allow_exec. Returns 0, or -1 after answering EPERM (logged). */
static int open_check_exec_allowed(struct conn *c, uint64_t id, const char *name)
{
	if (c->srv->cfg->allow_exec)
		return 0;
	conn_warn(c, "denied an executable map of region '%s': allow_exec is false", name);
	reply_error(c, id, EPERM, "operation not permitted: this daemon grants no "
	            "executable maps (allow_exec is false)");
	return -1;
}

/*
 * Checks that c may map r executable: the daemon allows executable maps (allow_exec), and,
 * unless c's request created r, r's mode gives c's class an execute bit. Returns 0, or -1
 * after answering EPERM or EACCES (logged).
 */
static int open_check_exec(struct conn *c, uint64_t id, const struct region *r, bool created)
{
	if (open_check_exec_allowed(c, id, r->name) < 0)
		return -1;
	if (created || (r->acc.perm & ACCESS_PERM_EXEC))
		return 0;
	conn_warn(c, "denied an executable map of region '%s': mode %04o has no execute bit",
	          r->name, r->acc.perm);
	reply_error(c, id, EACCES, "permission denied: region '%s' has no exec consent (mode "
	            "%04o has no execute bit%s)", r->name, r->acc.perm,
	            r->anonymous && !r->exec ? "; an anonymous region is executable only when "
	            "created with \"exec\": true" : "");
	return -1;
}

/*
 * A fresh open file description of r in mode for a grant to c: nothing shared with the
 * daemon or other clients (architecture.md, "Grants are fresh open file descriptions").
 * Its number is also the descriptor reserve's check (budget.h): a non-exempt user may not
 * make the daemon hold one in the top reserved_fds, and the idle regions of the lookup
 * cache are given up before such a user is refused. Returns the descriptor or -errno of the
 * open, or -EMFILE with *ret_reserve set (the reserve).
 */
static int open_grant_fd(struct conn *c, struct region *r, enum region_mode mode,
                         bool *ret_reserve)
{
	int flags = mode == REGION_MODE_RW ? O_RDWR : O_RDONLY;
	int fd = fsdir_reopen(r->fd, flags);

	*ret_reserve = false;
	if (fd < 0 || budget_fd_allowed(c->srv, (uint32_t)c->uid, fd))
		return fd;
	close(fd);
	fd = region_idle_drop(c->srv) > 0 ? fsdir_reopen(r->fd, flags) : -EMFILE;
	if (fd >= 0 && budget_fd_allowed(c->srv, (uint32_t)c->uid, fd))
		return fd;
	if (fd >= 0)
		close(fd);
	*ret_reserve = true;
	return -EMFILE;
}

/*
 * Makes a grant of r for c in mode (executable if exec) and sends the reply with its
 * descriptor. Answers any failure itself. The request that created r is granted whatever
 * r's mode says, as open(2) with O_CREAT is.
 */
void ops_grant(struct conn *c, uint64_t id, struct region *r, enum region_mode mode,
                       bool exec, bool created)
{
	uint64_t max_bytes = c->srv->limits->max_bytes_granted_per_client, size, grant_size;
	unsigned want = (mode == REGION_MODE_RW ? ACCESS_WRITE : ACCESS_READ) |
	                (exec ? ACCESS_EXEC : 0);
	struct grant *g;
	cJSON *reply = NULL, *obj;
	struct stat st;
	bool reserve, have_st;
	int fd, ret;

	if (exec && open_check_exec(c, id, r, created) < 0)
		return;
	if (!created && ops_check_region(c, id, r, want) < 0)
		return;
	/*
	 * One fstat: the size a holder of an rw grant may have changed, for all that follows,
	 * and the times of the reply's region object.
	 */
	have_st = region_size_stat(r, &size, &st);
	if (size > max_bytes || c->bytes_granted > max_bytes - size) {
		conn_warn(c, "refused an open of '%s': max_bytes_granted_per_client (%" PRIu64 ")",
		          r->name, max_bytes);
		reply_error(c, id, EAGAIN, "this connection holds grants of %" PRIu64 " bytes; "
		            "%" PRIu64 " more would pass max_bytes_granted_per_client (%" PRIu64 ")",
		            c->bytes_granted, size, max_bytes);
		return;
	}

	if (mode == REGION_MODE_RW && r->rdonly) {
		reply_error(c, id, EACCES, "the daemon can open region '%s' only read-only", r->name);
		return;
	}
	fd = open_grant_fd(c, r, mode, &reserve);
	if (fd < 0) {
		if (reserve)
			reply_fd_reserve(c, id);
		else
			reply_fd_error(c, id, r->name, -fd);
		return;
	}
	ret = grant_new_sized(c, r, mode, size, &g);
	if (ret < 0) {
		close(fd);
		reply_nomem(c, id);
		return;
	}
	reply = msg_reply_ok(id);
	/* During a shrink the new window must stop where the shrink will cut (resize.h). */
	grant_size = resize_grant_size(r, size);
	obj = reply ? region_to_json_sized(r, grant_size, have_st ? &st : NULL) : NULL;
	if (!obj || !cJSON_AddNumberToObject(reply, PROTO_FIELD_FDS, 1) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_HANDLE, g->handle) ||
	    !cJSON_AddStringToObject(reply, PROTO_FIELD_MODE, region_mode_name(mode)) ||
	    !cJSON_AddBoolToObject(reply, PROTO_FIELD_CREATED, created) ||
	    !cJSON_AddBoolToObject(reply, PROTO_FIELD_EXEC, exec) ||
	    !cJSON_AddItemToObject(reply, PROTO_FIELD_REGION, obj)) {
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
	if (ret == 0) {
		if (exec)
			log_info("client %llu (pid %ld, uid %lu): executable grant %" PRIu64 " of '%s' "
			         "(%s)", (unsigned long long)c->serial, (long)c->pid,
			         (unsigned long)c->uid, g->handle, r->name, region_mode_name(mode));
		log_debug("client %llu (pid %ld): grant %" PRIu64 " of '%s' (%s)",
		          (unsigned long long)c->serial, (long)c->pid, g->handle, r->name,
		          region_mode_name(mode));
		resize_grant_added(c, r);
	}
	return;
fail:
	cJSON_Delete(reply);
	if (fd >= 0)
		close(fd);
	grant_free(g);
	reply_nomem(c, id);
}

/* Opens the existing region file behind pathfd (consumed) and grants it. */
static void open_existing_file(struct conn *c, uint64_t id, const struct open_args *a, int pathfd,
                               const struct stat *st)
{
	struct region *r;
	int ret;

	ret = region_open_file(c->srv, a->name, pathfd, st, &r);
	if (ret < 0) {
		reply_open_file_error(c, id, a->name, st, -ret);
		return;
	}
	ops_grant(c, id, r, a->mode, a->exec, false);
	ops_put_region(r);
}

/*
 * Reads mode, exclusive and exec (ret_exec may be NULL) of a request that open_parse
 * accepted before.
 */
static void open_reparse(const cJSON *req, enum region_mode *ret_mode, bool *ret_exclusive,
                         bool *ret_exec)
{
	const char *mode = NULL;
	int r;

	*ret_mode = REGION_MODE_RO;
	*ret_exclusive = false;
	if (msg_get_string(req, PROTO_FIELD_MODE, &mode) == 0 && (r = region_mode_parse(mode)) >= 0)
		*ret_mode = (enum region_mode)r;
	msg_get_bool(req, PROTO_FIELD_EXCLUSIVE, ret_exclusive);
	if (ret_exec) {
		*ret_exec = false;
		msg_get_bool(req, PROTO_FIELD_EXEC, ret_exec);
	}
}

/* The region exists now (with its metadata on disk): grant it to whoever asked. */
static void open_ready(struct region_job *job)
{
	struct conn *c = job->conn;
	struct region *r = job->region;
	enum region_mode mode;
	bool exclusive, exec;

	open_reparse(job->req, &mode, &exclusive, &exec);
	region_set_ready(r, job->result, job->size);
	job->result = -EBADF;   /* the region owns the descriptor now */
	r->flush.policy = job->policy;
	r->huge = job->huge;
	if (r->anonymous)
		fdstore_region_added(r);
	if (job->fell_back)
		log_debug("the file system cannot reserve blocks for region '%s'; "
		          "it was sized with ftruncate", r->name);
	if (r->huge == MEMFD_HUGE_THP)
		log_info("region '%s': the hugetlb pool cannot give %" PRIu64 " bytes of huge pages; "
		         "it uses transparent huge pages instead", r->name, job->size);
	log_info("created %sregion '%s' (%" PRIu64 " bytes%s%s%s) for client %llu (pid %ld)",
	         r->anonymous ? "anonymous " : "", r->name, job->size,
	         job->sparse ? ", sparse" : "", r->exec ? ", executable" : "",
	         r->huge == MEMFD_HUGE_NONE ? "" : r->huge == MEMFD_HUGE_HUGETLB ? ", hugetlb" :
	         ", thp", (unsigned long long)c->serial, (long)c->pid);
	if (conn_alive(c) && ops_admit_grant(c, job->id, true) == 0)
		ops_grant(c, job->id, r, mode, exec, true);
	region_check_idle(r);
	region_wake(r);
	region_job_free(job);
}

/* The creation failed with err (positive): nothing of it is left. */
static void open_failed(struct region_job *job, int err)
{
	struct conn *c = job->conn;
	struct region *r = job->region;
	enum region_mode mode;
	bool exclusive;

	open_reparse(job->req, &mode, &exclusive, NULL);
	region_table_remove(r);
	if (c->regions_created > 0)
		c->regions_created--;
	if (err == EEXIST && !exclusive && conn_alive(c)) {
		/* Someone outside the daemon made the file meanwhile: open it as it is. */
		cJSON *req = job->req;

		job->req = NULL;
		c->srv->rerun(c, job->id, req);
	} else if (err == EEXIST) {
		reply_error(c, job->id, EEXIST, "region '%s' already exists", r->name);
	} else if (err == EACCES && r->exec) {
		log_warn("cannot create executable anonymous region '%s': the kernel refuses "
		         "executable memfds (vm.memfd_noexec = 2)", r->name);
		reply_error(c, job->id, EACCES, "cannot create region '%s': the kernel refuses "
		            "executable memfds (vm.memfd_noexec = 2)", r->name);
	} else {
		if (err == ENOSPC || err == EDQUOT)
			log_warn("cannot create region '%s' (%" PRIu64 " bytes): %s", r->name, job->size,
			         strerror(err));
		else
			log_error("cannot create region '%s': %s", r->name, strerror(err));
		reply_error(c, job->id, reply_wire_errno(err), "cannot create region '%s': %s",
		            r->name, strerror(err));
	}
	region_wake(r);
	region_job_free(job);
}

/* The metadata of a new file region is on disk (or failed, and the file is gone with it). */
static void open_meta_saved(void *arg, int result)
{
	struct region_job *job = arg;

	if (result < 0)
		open_failed(job, -result);
	else
		open_ready(job);
}

/* Completion of a creation job, on the loop. */
static void open_created(struct region_job *job)
{
	struct region *r = job->region;

	if (job->result < 0) {
		open_failed(job, -job->result);
		return;
	}
	if (r->anonymous) {
		open_ready(job);
		return;
	}
	if (meta_save_created(r->srv, r->name, &job->policy, &r->acc, job->size, job->sparse,
	                      open_meta_saved, job) < 0) {
		/* Rare enough to unlink here rather than queue more work that needs memory too. */
		unlinkat(r->srv->dir_fd, r->name, 0);
		open_failed(job, ENOMEM);
	}
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
		reply_nomem(c, id);
		cJSON_Delete(req);
		return;
	}
	ret = region_table_add(r, false);
	if (ret < 0) {
		if (ret == -EAGAIN)
			reply_max_regions(c, id);
		else
			reply_nomem(c, id);
		cJSON_Delete(req);
		region_unref(r);
		return;
	}
	job = region_job_new(r, a->anonymous ? REGION_JOB_CREATE_ANONYMOUS : REGION_JOB_CREATE_FILE,
	                     c, id, req);
	if (!job) {
		region_table_remove(r);
		region_unref(r);
		reply_nomem(c, id);
		return;
	}
	job->size = a->size;
	job->sparse = a->sparse;
	job->memfd_flags = (a->exec ? MEMFD_EXEC : 0) | (a->huge ? MEMFD_HUGE : 0);
	job->policy = a->policy;
	r->exec = a->anonymous && a->exec;
	r->temporary = a->temporary;
	r->acc.uid = (uint32_t)c->uid;
	r->acc.gid = (uint32_t)c->gid;
	r->acc.perm = (unsigned)a->perm;
	if (a->anonymous) {
		enum budget_item item;

		ret = region_budget_attach(r, c->budget, a->size, false, &item);
		if (ret < 0) {
			reply_budget(c, id, c->budget, item, item == BUDGET_ANON_BYTES ? a->size : 1);
			region_table_remove(r);
			region_job_free(job);
			region_unref(r);
			return;
		}
	}
	c->regions_created++;
	fsdir_tmp_name(job->tmpname, ++srv->tmp_counter);
	job->done = open_created;
	ret = region_job_start(job);
	if (ret < 0) {
		log_error("cannot queue the creation of region '%s': %s", a->name, uv_strerror(ret));
		reply_error(c, id, ENOMEM, "the daemon cannot queue work");
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
	/* Refused before anything is created for it (checked again at the grant: SIGHUP). */
	if (a.exec && open_check_exec_allowed(c, id, a.name) < 0)
		return OPS_DONE;
	r = region_lookup(c->srv, a.name);
	/* Being truncated: a grant now could be mapped at the old size, past the new end. */
	if (r && (r->state == REGION_BUSY || resize_truncating(r)))
		return ops_defer(c, id, req, r);
	if (ops_admit_grant(c, id, false) < 0)
		return OPS_DONE;
	if (r) {
		if (a.create && a.exclusive)
			reply_error(c, id, EEXIST, "region '%s' already exists", a.name);
		else if (a.truncate)
			return ops_open_truncate(c, id, req, r, a.size, a.sparse);
		else
			ops_grant(c, id, r, a.mode, a.exec, false);
		return OPS_DONE;
	}

	ret = fsdir_lookup(c->srv->dir_fd, a.name, &st, &pathfd);
	if (ret == 0) {
		if (a.create && a.exclusive) {
			close(pathfd);
			reply_error(c, id, EEXIST, "region '%s' already exists", a.name);
		} else if (a.truncate) {
			ret = region_open_file(c->srv, a.name, pathfd, &st, &r);
			if (ret < 0) {
				reply_open_file_error(c, id, a.name, &st, -ret);
				return OPS_DONE;
			}
			ret = ops_open_truncate(c, id, req, r, a.size, a.sparse);
			ops_put_region(r);
			return ret;
		} else {
			open_existing_file(c, id, &a, pathfd, &st);
		}
		return OPS_DONE;
	}
	if (ret != -ENOENT || !a.create) {
		reply_lookup_error(c, id, a.name, -ret);
		return OPS_DONE;
	}
	if (!budget_fd_headroom(c->srv, (uint32_t)c->uid) &&
	    (region_idle_drop(c->srv) == 0 || !budget_fd_headroom(c->srv, (uint32_t)c->uid))) {
		reply_fd_reserve(c, id);
		return OPS_DONE;
	}
	if (ops_admit_create(c, id, a.name, "the creation of") < 0)
		return OPS_DONE;
	open_create(c, id, &a, req);
	return OPS_KEPT;
}

/*
 * The region old had the name just deleted: its clients hear "deleted". A failed unlink
 * (the file is still there) gives it the name back instead.
 */
static void delete_settle(struct region *old, bool deleted, const struct conn *by)
{
	if (!old)
		return;
	if (!deleted && region_table_add(old, true) == 0)
		return;
	region_retire(old, by);
}

/* Completion of an unlink job, on the loop. */
static void delete_done(struct region_job *job)
{
	struct conn *c = job->conn;
	struct region *r = job->region;
	int err = -job->result;

	region_table_remove(r);
	delete_settle(job->old, job->result == 0 || err == ENOENT, c);
	if (job->result == 0 || err == ENOENT)
		meta_remove(r->srv, r->name);
	if (job->result == 0) {
		log_info("deleted region '%s' for client %llu (pid %ld)", r->name,
		         (unsigned long long)c->serial, (long)c->pid);
		reply_ok(c, job->id);
	} else if (err == ENOENT) {
		reply_error(c, job->id, ENOENT, "region '%s' does not exist", r->name);
	} else {
		log_error("cannot delete region '%s': %s", r->name, strerror(err));
		reply_error(c, job->id, reply_wire_errno(err), "cannot delete region '%s': %s",
		            r->name, strerror(err));
	}
	region_wake(r);
	region_job_free(job);
}

int ops_delete(struct conn *c, uint64_t id, cJSON *req)
{
	struct region_job *job;
	struct region *r, *old;
	struct access acc;
	struct stat st;
	const char *name;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name)
		return OPS_DONE;
	old = region_lookup(c->srv, name);
	if (old && old->state == REGION_BUSY)
		return ops_defer(c, id, req, old);
	if (old && old->adopt) {
		reply_error(c, id, EPERM, "operation not permitted: region '%s' is an adopted file, "
		            "which the daemon never deletes; it goes when its last holder lets go",
		            name);
		return OPS_DONE;
	}
	if (old && old->anonymous) {
		if (ops_check_access(c, id, name, &old->acc, ACCESS_WRITE) < 0)
			return OPS_DONE;
		/* Its grants keep the struct (and the memfd) alive; the name is free now. */
		region_ref(old);
		region_table_remove(old);
		fdstore_region_removed(c->srv, name);
		log_info("deleted anonymous region '%s' for client %llu (pid %ld)", name,
		         (unsigned long long)c->serial, (long)c->pid);
		region_retire(old, c);
		region_unref(old);
		reply_ok(c, id);
		return OPS_DONE;
	}

	ret = fsdir_lookup(c->srv->dir_fd, name, &st, NULL);
	if (ret < 0) {
		if (old && ret == -ENOENT) {
			/* Unlinked behind the daemon's back: the held region is gone all the same. */
			region_ref(old);
			region_table_remove(old);
			region_retire(old, c);
			region_unref(old);
			meta_remove(c->srv, name);
		}
		reply_lookup_error(c, id, name, -ret);
		return OPS_DONE;
	}
	if (old)
		acc = old->acc;
	else
		region_file_access(c->srv, name, &st, &acc);
	if (ops_check_access(c, id, name, &acc, ACCESS_WRITE) < 0)
		return OPS_DONE;
	/* The name stays busy until the file is gone, so nobody opens what is being unlinked. */
	r = region_new(c->srv, name, false, REGION_BUSY);
	if (!r) {
		reply_nomem(c, id);
		return OPS_DONE;
	}
	job = region_job_new(r, REGION_JOB_UNLINK, c, id, req);
	if (!job) {
		region_unref(r);
		reply_nomem(c, id);
		return OPS_KEPT;
	}
	/* A region held under the name leaves the table now; the unlink follows on the pool. */
	if (old) {
		region_ref(old);
		job->old = old;
		region_table_remove(old);
	}
	if (region_table_add(r, true) < 0) {
		reply_nomem(c, id);
		goto fail;
	}
	job->done = delete_done;
	ret = region_job_start(job);
	if (ret < 0) {
		log_error("cannot queue the deletion of region '%s': %s", name, uv_strerror(ret));
		reply_error(c, id, ENOMEM, "the daemon cannot queue work");
		region_table_remove(r);
		goto fail;
	}
	region_unref(r);
	return OPS_KEPT;
fail:
	delete_settle(job->old, false, c);
	region_job_free(job);
	region_unref(r);
	return OPS_KEPT;
}

int ops_stat(struct conn *c, uint64_t id, cJSON *req)
{
	struct region *r;
	struct stat st;
	const char *name;
	cJSON *reply, *obj;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name)
		return OPS_DONE;
	r = region_lookup(c->srv, name);
	if (r && r->state == REGION_BUSY)
		return ops_defer(c, id, req, r);
	if (r) {
		if (ops_check_access(c, id, name, &r->acc, ACCESS_READ) < 0)
			return OPS_DONE;
		obj = region_to_json(r);
	} else {
		struct access acc;

		ret = fsdir_lookup(c->srv->dir_fd, name, &st, NULL);
		if (ret < 0) {
			reply_lookup_error(c, id, name, -ret);
			return OPS_DONE;
		}
		region_file_access(c->srv, name, &st, &acc);
		if (ops_check_access(c, id, name, &acc, ACCESS_READ) < 0)
			return OPS_DONE;
		obj = region_file_json(c->srv, name, &st);
	}
	reply = msg_reply_ok(id);
	if (!obj || !reply || !cJSON_AddItemToObject(reply, PROTO_FIELD_REGION, obj)) {
		cJSON_Delete(obj);
		cJSON_Delete(reply);
		reply = NULL;
	}
	reply_send(c, id, reply);
	return OPS_DONE;
}
