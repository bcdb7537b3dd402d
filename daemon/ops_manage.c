/* SPDX-License-Identifier: MIT */
/*
 * The ops that manage regions as files (docs/protocol.md, "rename" and "copy"): rename
 * gives a region another name while it is held, copy makes a new file region of an
 * existing region's bytes on the thread pool.
 *
 * rename is one renameat2 in the data directory, on the loop (a metadata operation, like
 * the fstatat lookups the loop makes already), then the region table follows: the region
 * keeps its struct (region_rename), so grants, locks, subscriptions, resizes, flushes and
 * the control page carry on under the new name, and every holder and subscriber (the
 * renamer's connection too) hears "renamed". A region the rename replaced is retired as a
 * delete retires it, its clients told "deleted" before "renamed". The metadata record
 * moves with the file (meta_rename) and the reply waits until it is on disk. Anonymous
 * regions are renamed in the table (and the fd store) only.
 *
 * copy opens the source read-only, then on the thread pool makes a hidden temporary file,
 * fills it by FICLONE (a reflink: shared blocks, copy-on-write), else copy_file_range, else
 * read and write, over the source's data segments only (SEEK_DATA/SEEK_HOLE: holes stay
 * holes), flushes it and renames it to the target (without replacing, unless asked). The
 * target's name is a busy placeholder meanwhile, so requests naming it wait. The copy is
 * a new region of the caller's, counted as a creation (allow_create,
 * max_regions_created_per_client, max_regions).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "config.h"
#include "conn.h"
#include "dirindex.h"
#include "fdstore.h"
#include "fsdir.h"
#include "log.h"
#include "meta.h"
#include "msg.h"
#include "name.h"
#include "notify.h"
#include "ops.h"
#include "region.h"
#include "state.h"
#include "vocab.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/* The bytes one read/write or copy_file_range call moves at most. */
#define MANAGE_CHUNK (1u << 20)

/* How a copy was made, as its reply says ("method"). */
enum copy_method {
	COPY_REFLINK,
	COPY_FILE_RANGE,
	COPY_BYTES,
};

static const char *const copy_method_names[] = {
	[COPY_REFLINK] = "reflink",
	[COPY_FILE_RANGE] = "copy_file_range",
	[COPY_BYTES] = "bytes",
};

/*
 * Reads name and the "to" name of a rename or copy. Returns 0, or -1 after answering EINVAL
 * or ENAMETOOLONG.
 */
static int manage_get_names(struct conn *c, uint64_t id, const cJSON *req, const char **ret_name,
                            const char **ret_to)
{
	const char *to;
	size_t len;
	int r;

	*ret_name = ops_get_name(c, id, req);
	if (!*ret_name || ops_get_string(c, id, req, PROTO_FIELD_TO, true, &to) < 0)
		return -1;
	len = strlen(to);
	r = name_check(to, len);
	if (r == -ENAMETOOLONG) {
		reply_error(c, id, ENAMETOOLONG, "field 'to' is longer than %d bytes", NAME_MAX_LEN);
		return -1;
	}
	if (r < 0) {
		reply_error(c, id, EINVAL, "field 'to' is not a valid region name: %s",
		            name_problem(to, len));
		return -1;
	}
	if (strcmp(*ret_name, to) == 0) {
		reply_error(c, id, EINVAL, "fields 'name' and 'to' are the same region '%s'", to);
		return -1;
	}
	*ret_to = to;
	return 0;
}

/*
 * Refuses an adopted region as the source or target of a rename or copy: it is known by its
 * inode, not by a name in the data directory, and the daemon never renames, replaces or
 * deletes a file a client handed over. Returns 0 or -1 (answered).
 */
static int manage_refuse_adopted(struct conn *c, uint64_t id, const struct region *r)
{
	if (!r || !r->adopt)
		return 0;
	reply_error(c, id, EPERM, "operation not permitted: region '%s' is an adopted file, not a "
	            "file of the data directory; rename or copy the file itself", r->name);
	return -1;
}

/*
 * Whether the name to, which held has in the table (not busy) or nothing does, may become a
 * file region made by what ("a file region", "a copy (a file region)"): a region of that name
 * is refused without replace (EEXIST), and with replace when it is anonymous (EEXIST) or
 * adopted (EPERM), or c may not write it (replacing it is deleting it). *ret_exists tells
 * whether a region of that name exists. Returns 0, or -1 after answering.
 */
static int manage_target(struct conn *c, uint64_t id, const char *to, struct region *held,
                         bool replace, const char *what, bool *ret_exists)
{
	struct access acc;
	struct stat st;
	int ret;

	*ret_exists = false;
	if (held) {
		acc = held->acc;
	} else {
		ret = fsdir_lookup(c->srv->dir_fd, to, &st, NULL);
		if (ret == -ENOENT)
			return 0;
		if (ret < 0) {
			reply_lookup_error(c, id, to, -ret);
			return -1;
		}
		region_file_access(c->srv, to, &st, &acc);
	}
	*ret_exists = true;
	if (!replace) {
		reply_error(c, id, EEXIST, "region '%s' already exists (set \"replace\": true to "
		            "replace it)", to);
		return -1;
	}
	if (held && held->anonymous) {
		reply_error(c, id, EEXIST, "region '%s' is an anonymous region; %s cannot replace it",
		            to, what);
		return -1;
	}
	if (manage_refuse_adopted(c, id, held) < 0 ||
	    ops_check_access(c, id, to, &acc, ACCESS_WRITE) < 0)
		return -1;
	return 0;
}

/* The region old, which had the name to, was replaced: its clients hear "deleted". */
static void manage_retire(struct region *old)
{
	if (!old)
		return;
	region_ref(old);
	region_table_remove(old);
	if (old->anonymous)
		fdstore_region_removed(old->srv, old->name);
	region_retire(old, NULL);
	region_unref(old);
}

/* A request answered once metadata is on disk: the reply waits here meanwhile. */
struct manage_saving {
	struct conn *conn;            /* referenced; its pending count covers this */
	uint64_t id;
	cJSON *reply;
	char name[NAME_MAX_LEN + 1];
};

static void manage_saved(void *arg, int result)
{
	struct manage_saving *s = arg;

	if (result < 0) {
		reply_error(s->conn, s->id, reply_wire_errno(-result), "region '%s' was renamed but "
		            "its metadata could not be saved: %s", s->name, strerror(-result));
		cJSON_Delete(s->reply);
	} else {
		reply_send(s->conn, s->id, s->reply);
	}
	conn_pending_done(s->conn);
	conn_unref(s->conn);
	free(s);
}

/* The rename reply: {"replaced": bool}. NULL on ENOMEM. */
static cJSON *rename_reply(uint64_t id, bool replaced)
{
	cJSON *reply = msg_reply_ok(id);

	if (reply && !cJSON_AddBoolToObject(reply, PROTO_FIELD_REPLACED, replaced)) {
		cJSON_Delete(reply);
		return NULL;
	}
	return reply;
}

/*
 * The name of r (NULL: a file region nobody holds) went from name to to: the table follows,
 * and r's holders and subscribers hear "renamed".
 */
static void rename_follow(struct region *r, const char *name, const char *to)
{
	cJSON *event;

	if (!r)
		return;
	event = notify_event_new(r, proto_event_name(PROTO_EVENT_RENAMED));
	if (event && !cJSON_AddStringToObject(event, PROTO_FIELD_TO, to)) {
		cJSON_Delete(event);
		event = NULL;
	}
	if (region_rename(r, to) < 0) {
		/* Out of memory re-adding it: it cannot be found by either name; tell its clients. */
		log_error("out of memory renaming region '%s' to '%s': it is retired", name, to);
		cJSON_Delete(event);
		region_ref(r);
		region_retire(r, NULL);
		region_unref(r);
		return;
	}
	if (r->anonymous)
		fdstore_region_added(r);
	if (event)
		notify_region(r, event, NOTIFY_HOLDERS | NOTIFY_SUBSCRIBERS, NULL);
	else
		log_error("out of memory telling the clients of region '%s' it is now '%s'", name, to);
	cJSON_Delete(event);
}

/* Renames anonymous region r (not busy, c may write it) to to, which old (or nothing) has. */
static void rename_anonymous(struct conn *c, uint64_t id, struct region *r, const char *to,
                             struct region *old, bool replace)
{
	struct stat st;
	char name[NAME_MAX_LEN + 1];

	if (!old && fsdir_lookup(c->srv->dir_fd, to, &st, NULL) != -ENOENT) {
		reply_error(c, id, EEXIST, "region '%s' exists as a file region; an anonymous "
		            "region cannot take its name", to);
		return;
	}
	if (old && !replace) {
		reply_error(c, id, EEXIST, "region '%s' already exists (set \"replace\": true to "
		            "replace it)", to);
		return;
	}
	if (old && !old->anonymous) {
		reply_error(c, id, EEXIST, "region '%s' is a file region; an anonymous region "
		            "cannot replace it", to);
		return;
	}
	snprintf(name, sizeof(name), "%s", r->name);
	manage_retire(old);
	fdstore_region_removed(c->srv, name);
	rename_follow(r, name, to);
	log_info("renamed anonymous region '%s' to '%s' for client %llu (pid %ld)", name, to,
	         (unsigned long long)c->serial, (long)c->pid);
	reply_send(c, id, rename_reply(id, old != NULL));
}

/* renameat2(RENAME_NOREPLACE unless replace) in the data directory. Returns 0 or -errno. */
static int rename_file(int dir_fd, const char *name, const char *to, bool replace)
{
	if (renameat2(dir_fd, name, dir_fd, to, replace ? 0 : RENAME_NOREPLACE) == 0)
		return 0;
	return -errno;
}

int ops_rename(struct conn *c, uint64_t id, cJSON *req)
{
	struct server *srv = c->srv;
	const char *name, *to;
	struct region *r, *old;
	struct manage_saving *s;
	struct access acc;
	struct stat st;
	bool replace = false, exists;
	int ret;

	if (manage_get_names(c, id, req, &name, &to) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_REPLACE, &replace) < 0)
		return OPS_DONE;
	r = region_lookup(srv, name);
	if (r && r->state == REGION_BUSY)
		return ops_defer(c, id, req, r);
	old = region_lookup(srv, to);
	if (old && old->state == REGION_BUSY)
		return ops_defer(c, id, req, old);
	if (manage_refuse_adopted(c, id, r) < 0 || manage_refuse_adopted(c, id, old) < 0)
		return OPS_DONE;
	if (r && r->anonymous) {
		if (ops_check_access(c, id, name, &r->acc, ACCESS_WRITE) < 0 ||
		    (old && ops_check_access(c, id, to, &old->acc, ACCESS_WRITE) < 0))
			return OPS_DONE;
		rename_anonymous(c, id, r, to, old, replace);
		return OPS_DONE;
	}

	ret = fsdir_lookup(srv->dir_fd, name, &st, NULL);
	if (ret < 0) {
		reply_lookup_error(c, id, name, -ret);
		return OPS_DONE;
	}
	if (r)
		acc = r->acc;
	else
		region_file_access(srv, name, &st, &acc);
	/* The rule of delete: renaming takes the name away from whoever opens it by it. */
	if (ops_check_access(c, id, name, &acc, ACCESS_WRITE) < 0 ||
	    manage_target(c, id, to, old, replace, "a file region", &exists) < 0)
		return OPS_DONE;

	s = calloc(1, sizeof(*s));
	if (!s) {
		reply_nomem(c, id);
		return OPS_DONE;
	}
	ret = rename_file(srv->dir_fd, name, to, replace);
	dirindex_file_changed(srv, name);
	dirindex_file_changed(srv, to);
	if (ret < 0) {
		free(s);
		if (ret == -EEXIST)
			reply_error(c, id, EEXIST, "region '%s' already exists (set \"replace\": true "
			            "to replace it)", to);
		else if (ret == -ENOENT)
			reply_error(c, id, ENOENT, "region '%s' does not exist", name);
		else
			reply_error(c, id, reply_wire_errno(-ret), "cannot rename region '%s' to '%s': %s",
			            name, to, strerror(-ret));
		return OPS_DONE;
	}
	/* Its clients hear "deleted" before the renamed region's hear "renamed" under its name. */
	manage_retire(old);
	rename_follow(r, name, to);
	log_info("renamed region '%s' to '%s'%s for client %llu (pid %ld)", name, to,
	         exists ? " (replacing it)" : "", (unsigned long long)c->serial, (long)c->pid);

	s->conn = c;
	s->id = id;
	s->reply = rename_reply(id, exists);
	snprintf(s->name, sizeof(s->name), "%s", to);
	conn_ref(c);
	conn_pending_add(c);
	if (meta_rename(srv, name, to, manage_saved, s) < 0)
		manage_saved(s, -ENOMEM);
	return OPS_DONE;
}

/* ---- copy ---- */

struct copy_job {
	struct state_job job;
	struct region *region;        /* the busy placeholder of the target's name; referenced */
	struct region *old;           /* the region the target's name had, or NULL; referenced */
	struct conn *conn;            /* referenced; its pending count covers this job */
	uint64_t id;
	int dir_fd;
	int src_fd;                   /* read-only, closed by the job */
	bool replace;
	bool existed;                 /* the target's name named a region: the reply's replaced */
	uint64_t max_size;
	struct access acc;            /* of the copy */
	char tmp[FSDIR_TMP_NAME_MAX];
	/* Results. */
	int result;                   /* 0 or -errno */
	enum copy_method method;
	uint64_t size;
};

/*
 * Copies len bytes at off from in to out: copy_file_range while *method says so and the
 * file systems allow it, else read and write (*method becomes COPY_BYTES). Returns 0 or
 * -errno.
 */
static int copy_range(int in, int out, off_t off, uint64_t len, enum copy_method *method)
{
	char *chunk = NULL;
	int ret = 0;

	while (len > 0) {
		size_t n = len > MANAGE_CHUNK ? MANAGE_CHUNK : (size_t)len;
		ssize_t got;

		if (*method == COPY_FILE_RANGE) {
			loff_t a = off, b = off;

			got = copy_file_range(in, &a, out, &b, n, 0);
			if (got < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			                errno == EOPNOTSUPP || errno == EBADF)) {
				*method = COPY_BYTES;
				continue;
			}
		} else {
			if (!chunk && !(chunk = malloc(MANAGE_CHUNK))) {
				ret = -ENOMEM;
				break;
			}
			got = pread(in, chunk, n, off);
			if (got > 0) {
				ssize_t done = 0;

				while (done < got) {
					ssize_t w = pwrite(out, chunk + done, (size_t)(got - done), off + done);

					if (w < 0 && errno == EINTR)
						continue;
					if (w < 0) {
						ret = -errno;
						goto out;
					}
					done += w;
				}
			}
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = -errno;
			break;
		}
		if (got == 0)   /* the source shrank meanwhile: the rest reads as zeros */
			break;
		off += got;
		len -= (uint64_t)got;
	}
out:
	free(chunk);
	return ret;
}

/* Fills out (empty) with in's size bytes, holes kept. Returns 0 or -errno. */
static int copy_contents(int in, int out, uint64_t size, enum copy_method *method)
{
	off_t data = 0, hole;
	int ret;

	if (ioctl(out, FICLONE, in) == 0) {
		*method = COPY_REFLINK;
		return 0;
	}
	*method = COPY_FILE_RANGE;
	if (ftruncate(out, (off_t)size) < 0)
		return -errno;
	while ((uint64_t)data < size) {
		data = lseek(in, data, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if ((uint64_t)hole > size)
			hole = (off_t)size;
		ret = copy_range(in, out, data, (uint64_t)(hole - data), method);
		if (ret < 0)
			return ret;
		data = hole;
	}
	return 0;
}

/* On the thread pool: the whole copy, from the temporary file to the target's name. */
static void copy_run(struct state_job *sj)
{
	struct copy_job *job = (struct copy_job *)sj;
	const char *to = job->region->name;
	struct stat st;
	int fd, ret;

	if (fstat(job->src_fd, &st) < 0) {
		job->result = -errno;
		return;
	}
	job->size = (uint64_t)st.st_size;
	if (job->size > job->max_size) {
		job->result = -EFBIG;
		return;
	}
	fd = openat(job->dir_fd, job->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	            FSDIR_FILE_MODE);
	if (fd < 0) {
		job->result = -errno;
		return;
	}
	ret = fchmod(fd, FSDIR_FILE_MODE) < 0 ? -errno : 0;
	if (ret == 0)
		ret = copy_contents(job->src_fd, fd, job->size, &job->method);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (ret == 0)
		ret = rename_file(job->dir_fd, job->tmp, to, job->replace);
	if (ret == 0 && fsync(job->dir_fd) < 0)
		ret = -errno;
	if (ret < 0)
		unlinkat(job->dir_fd, job->tmp, 0);
	close(fd);
	job->result = ret;
}

static void copy_free(struct copy_job *job)
{
	if (job->src_fd >= 0)
		close(job->src_fd);
	region_table_remove(job->region);
	region_wake(job->region);
	region_unref(job->region);
	if (job->old)
		region_unref(job->old);
	conn_pending_done(job->conn);
	conn_unref(job->conn);
	free(job);
}

/* The copy's metadata is on disk (or failed, and the file went with it): answer. */
static void copy_saved(void *arg, int result)
{
	struct copy_job *job = arg;
	struct conn *c = job->conn;
	const char *to = job->region->name;
	cJSON *reply = NULL, *obj = NULL;
	struct stat st;

	if (result < 0) {
		reply_error(c, job->id, reply_wire_errno(-result), "cannot save the metadata of "
		            "copy '%s': %s", to, strerror(-result));
		copy_free(job);
		return;
	}
	log_info("copied region to '%s' (%" PRIu64 " bytes, %s) for client %llu (pid %ld)", to,
	         job->size, copy_method_names[job->method], (unsigned long long)c->serial,
	         (long)c->pid);
	if (fsdir_lookup(c->srv->dir_fd, to, &st, NULL) == 0)
		obj = region_file_json(c->srv, to, &st);
	reply = obj ? msg_reply_ok(job->id) : NULL;
	if (!reply || !cJSON_AddStringToObject(reply, PROTO_FIELD_METHOD,
	                                       copy_method_names[job->method]) ||
	    !cJSON_AddBoolToObject(reply, PROTO_FIELD_REPLACED, job->existed) ||
	    !cJSON_AddItemToObject(reply, PROTO_FIELD_REGION, obj)) {
		if (!reply || !cJSON_HasObjectItem(reply, PROTO_FIELD_REGION))
			cJSON_Delete(obj);
		cJSON_Delete(reply);
		reply = NULL;
	}
	reply_send(c, job->id, reply);
	copy_free(job);
}

/* Completion of a copy, on the loop. */
static void copy_done(struct state_job *sj)
{
	struct copy_job *job = (struct copy_job *)sj;
	struct conn *c = job->conn;
	const char *to = job->region->name;
	struct policy manual = { .kind = POLICY_MANUAL };
	int err = -job->result;

	close(job->src_fd);
	job->src_fd = -1;
	dirindex_file_changed(c->srv, to);
	if (job->result < 0) {
		if (c->regions_created > 0)
			c->regions_created--;
		/* The target was not replaced: a region held under its name gets it back. */
		if (job->old && region_table_add(job->old, true) < 0)
			region_retire(job->old, NULL);
		if (err == EEXIST)
			reply_error(c, job->id, EEXIST, "region '%s' already exists (set \"replace\": "
			            "true to replace it)", to);
		else if (err == EFBIG)
			reply_error(c, job->id, EFBIG, "the source is larger than max_region_size "
			            "(%" PRIu64 ")", job->max_size);
		else
			reply_error(c, job->id, reply_wire_errno(err), "cannot copy to region '%s': %s",
			            to, strerror(err));
		copy_free(job);
		return;
	}
	if (job->old)
		region_retire(job->old, NULL);
	if (meta_save_created(c->srv, to, &manual, &job->acc, job->size, false, copy_saved, job) < 0) {
		unlinkat(c->srv->dir_fd, to, 0);
		dirindex_file_changed(c->srv, to);
		copy_saved(job, -ENOMEM);
	}
}

/* Opens region name for reading by a copy c asked for. Returns the fd, or -1 after answering. */
static int copy_open_source(struct conn *c, uint64_t id, const char *name, struct region *src)
{
	struct access acc;
	struct stat st;
	int pathfd = -1, fd, ret;

	if (!src) {
		ret = fsdir_lookup(c->srv->dir_fd, name, &st, &pathfd);
		if (ret < 0) {
			reply_lookup_error(c, id, name, -ret);
			return -1;
		}
		region_file_access(c->srv, name, &st, &acc);
	} else {
		acc = src->acc;
	}
	if (ops_check_access(c, id, name, &acc, ACCESS_READ) < 0) {
		if (pathfd >= 0)
			close(pathfd);
		return -1;
	}
	fd = fsdir_reopen(src ? src->fd : pathfd, O_RDONLY);
	if (pathfd >= 0)
		close(pathfd);
	if (fd < 0)
		reply_fd_error(c, id, name, -fd);
	return fd < 0 ? -1 : fd;
}

/* Checks ops_admit_create and the descriptor reserve. Returns 0, or -1 after answering. */
static int copy_admit(struct conn *c, uint64_t id, const char *to)
{
	if (ops_admit_create(c, id, to, "the copy to") < 0)
		return -1;
	if (!budget_fd_headroom(c->srv, (uint32_t)c->uid) &&
	    (region_idle_drop(c->srv) == 0 || !budget_fd_headroom(c->srv, (uint32_t)c->uid))) {
		reply_fd_reserve(c, id);
		return -1;
	}
	return 0;
}

int ops_copy(struct conn *c, uint64_t id, cJSON *req)
{
	struct server *srv = c->srv;
	const char *name, *to;
	struct region *src, *old;
	struct copy_job *job;
	uint64_t perm = ACCESS_PERM_DEFAULT;
	bool replace = false, exists;
	int ret;

	if (manage_get_names(c, id, req, &name, &to) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_REPLACE, &replace) < 0 ||
	    ops_get_u64(c, id, req, PROTO_FIELD_PERM, false, &perm) < 0)
		return OPS_DONE;
	if (perm > ACCESS_PERM_MAX) {
		reply_error(c, id, EINVAL, "field 'perm' must be a mode from 0 to 0777 (511)");
		return OPS_DONE;
	}
	src = region_lookup(srv, name);
	if (src && src->state == REGION_BUSY)
		return ops_defer(c, id, req, src);
	old = region_lookup(srv, to);
	if (old && old->state == REGION_BUSY)
		return ops_defer(c, id, req, old);
	if (manage_target(c, id, to, old, replace, "a copy (a file region)", &exists) < 0 ||
	    copy_admit(c, id, to) < 0)
		return OPS_DONE;

	job = calloc(1, sizeof(*job));
	if (!job) {
		reply_nomem(c, id);
		return OPS_DONE;
	}
	job->src_fd = copy_open_source(c, id, name, src);
	if (job->src_fd < 0) {
		free(job);
		return OPS_DONE;
	}
	job->region = region_new(srv, to, false, REGION_BUSY);
	if (!job->region) {
		close(job->src_fd);
		free(job);
		reply_nomem(c, id);
		return OPS_DONE;
	}
	/* A region held under the target's name leaves the table; it is retired if replaced. */
	if (old) {
		region_ref(old);
		region_table_remove(old);
		job->old = old;
	}
	ret = region_table_add(job->region, false);
	if (ret < 0) {
		if (ret == -EAGAIN)
			reply_max_regions(c, id);
		else
			reply_nomem(c, id);
		if (old && region_table_add(old, true) < 0)
			region_retire(old, NULL);
		if (old)
			region_unref(old);
		close(job->src_fd);
		region_unref(job->region);
		free(job);
		return OPS_DONE;
	}
	job->conn = c;
	conn_ref(c);
	conn_pending_add(c);
	job->id = id;
	job->dir_fd = srv->dir_fd;
	job->replace = replace;
	job->existed = exists;
	job->max_size = srv->limits->max_region_size;
	job->acc.uid = (uint32_t)c->uid;
	job->acc.gid = (uint32_t)c->gid;
	job->acc.perm = (unsigned)perm & ~ACCESS_PERM_EXEC;
	fsdir_tmp_name(job->tmp, ++srv->tmp_counter);
	c->regions_created++;
	ret = state_job_start(srv, &job->job, copy_run, copy_done);
	if (ret < 0) {
		log_error("cannot queue the copy to region '%s': %s", to, uv_strerror(ret));
		reply_error(c, id, ENOMEM, "the daemon cannot queue work");
		c->regions_created--;
		if (old && region_table_add(old, true) < 0)
			region_retire(old, NULL);
		copy_free(job);
	}
	return OPS_DONE;
}

