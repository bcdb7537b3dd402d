/* SPDX-License-Identifier: MIT */
/*
 * Region metadata on disk (see meta.h). A file region's metadata lives in
 * <data-dir>/.mmapd/meta/<name>.json; a name too long for the suffix to fit NAME_MAX uses
 * its first 233 bytes, '~' (which no region name contains) and 16 hex digits of a hash of
 * the whole name. Either way the name inside the file must map back to the file's name, or
 * the file "names another region" and is quarantined.
 *
 * The writer keeps a FIFO of changes. When nothing is on the thread pool, everything queued
 * becomes one batch: a job writes each file through a hidden temporary file (write, fsync,
 * rename) or unlinks it, then fsyncs the directory once for all of them, and the completion
 * reports to each change's callback. Changes queued meanwhile wait for the next batch.
 */
#include "meta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "fsdir.h"
#include "log.h"
#include "msg.h"
#include "name.h"
#include "region.h"
#include "state.h"
#include "why.h"

#define META_DIR         ".mmapd"
#define META_SUBDIR      "meta"
#define META_QUARANTINE  "quarantine"
#define META_SUFFIX      ".json"
#define META_TMP_PREFIX  ".tmp-"
#define META_VERSION     1
#define META_FILE_NAME_MAX 256     /* NAME_MAX + 1 */
#define META_KEEP        233       /* bytes of a long name kept in its file name */
#define META_FILE_SIZE_MAX 65536   /* a metadata file is a few hundred bytes */

enum meta_op_kind {
	META_WRITE,
	META_REMOVE,
};

/* One queued change. */
struct meta_op {
	struct meta_op *next;
	enum meta_op_kind kind;
	char file[META_FILE_NAME_MAX];
	char tmp[FSDIR_TMP_NAME_MAX];
	char *text;                   /* META_WRITE: the content (cJSON_free) */
	char *undo;                   /* region file to unlink if writing fails, or NULL */
	int result;
	meta_cb cb;
	void *arg;
};

struct meta_writer {
	struct state_job job;
	int dir_fd, meta_fd;
	unsigned long counter;        /* numbers temporary files */
	struct meta_op *head, *tail;  /* waiting for the next batch */
	struct meta_op *batch;        /* on the thread pool */
};

/* The file name of region name's metadata; see the top of this file. */
static void meta_file_name(const char *name, char *buf)
{
	size_t len = strlen(name);

	if (len + strlen(META_SUFFIX) < META_FILE_NAME_MAX)
		snprintf(buf, META_FILE_NAME_MAX, "%s" META_SUFFIX, name);
	else
		snprintf(buf, META_FILE_NAME_MAX, "%.*s~%016" PRIx64 META_SUFFIX, META_KEEP, name,
		         htab_hash_string(name));
}

static struct meta *meta_lookup(struct server *srv, const char *name)
{
	struct hnode *node;

	for (node = htab_find_first(&srv->meta, htab_hash_string(name)); node;
	     node = htab_find_next(node)) {
		struct meta *m = htab_entry(node, struct meta, node);

		if (strcmp(m->name, name) == 0)
			return m;
	}
	return NULL;
}

const struct meta *meta_find(struct server *srv, const char *name)
{
	return meta_lookup(srv, name);
}

/* The record of name, made (manual, not poisoned, nothing known) if missing. NULL: ENOMEM. */
static struct meta *meta_get(struct server *srv, const char *name)
{
	struct meta *m = meta_lookup(srv, name);
	size_t len;

	if (m)
		return m;
	len = strlen(name);
	m = calloc(1, sizeof(*m) + len + 1);
	if (!m)
		return NULL;
	memcpy(m->name, name, len + 1);
	m->policy.kind = POLICY_MANUAL;
	if (htab_insert(&srv->meta, &m->node, htab_hash_string(name)) < 0) {
		free(m);
		return NULL;
	}
	return m;
}

static void meta_forget(struct server *srv, struct meta *m)
{
	htab_remove(&srv->meta, &m->node);
	free(m);
}

/* The file's content for record m. NULL on ENOMEM. */
static char *meta_serialise(const struct meta *m)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON *policy = policy_to_json(&m->policy);
	char *text = NULL;

	if (!obj || !policy)
		goto out;
	if (!cJSON_AddNumberToObject(obj, "version", META_VERSION) ||
	    !cJSON_AddStringToObject(obj, "name", m->name) ||
	    !cJSON_AddItemToObject(obj, "policy", policy))
		goto out;
	policy = NULL;
	if (!cJSON_AddBoolToObject(obj, "poisoned", m->poisoned))
		goto out;
	if (m->owned && (!cJSON_AddNumberToObject(obj, "uid", m->acc.uid) ||
	                 !cJSON_AddNumberToObject(obj, "gid", m->acc.gid) ||
	                 !cJSON_AddNumberToObject(obj, "perm", m->acc.perm)))
		goto out;
	if (m->created && (!cJSON_AddNumberToObject(obj, "created_ms", (double)m->created_ms) ||
	                   !cJSON_AddNumberToObject(obj, "size", (double)m->size) ||
	                   !cJSON_AddBoolToObject(obj, "sparse", m->sparse)))
		goto out;
	text = msg_print(obj, true);
out:
	cJSON_Delete(policy);
	cJSON_Delete(obj);
	return text;
}

/* On the thread pool: writes one file atomically. Returns 0 or -errno. */
static int meta_write_file(int meta_fd, const char *tmp, const char *file, const char *text)
{
	int fd, r;

	do
		fd = openat(meta_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	r = fileio_write_all(fd, text, strlen(text));
	if (r < 0)
		goto fail;
	if (fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	if (renameat(meta_fd, tmp, meta_fd, file) < 0) {
		r = -errno;
		goto fail;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	unlinkat(meta_fd, tmp, 0);
	return r;
}

/* On the thread pool: a failed creation leaves neither metadata nor region file. */
static void meta_undo(struct meta_writer *w, const struct meta_op *op)
{
	unlinkat(w->meta_fd, op->file, 0);
	if (unlinkat(w->dir_fd, op->undo, 0) == 0)
		fsync(w->dir_fd);
}

/* On the thread pool: the whole batch, then one fsync of the directory. */
static void meta_run(struct state_job *job)
{
	struct meta_writer *w = (struct meta_writer *)job;
	struct meta_op *op;
	bool any = false;
	int r;

	for (op = w->batch; op; op = op->next) {
		if (op->kind == META_WRITE) {
			op->result = meta_write_file(w->meta_fd, op->tmp, op->file, op->text);
		} else {
			op->result = unlinkat(w->meta_fd, op->file, 0) < 0 && errno != ENOENT ? -errno : 0;
		}
		any |= op->result == 0;
	}
	if (any && fsync(w->meta_fd) < 0) {
		r = -errno;
		for (op = w->batch; op; op = op->next)
			if (op->result == 0)
				op->result = r;
	}
	for (op = w->batch; op; op = op->next)
		if (op->result < 0 && op->undo)
			meta_undo(w, op);
}

static void meta_op_free(struct meta_op *op)
{
	if (op->text)
		cJSON_free(op->text);
	free(op->undo);
	free(op);
}

static void meta_done_batch(struct state_job *job);

/* Starts a batch of everything queued, if nothing is on the thread pool. */
static void meta_kick(struct server *srv)
{
	struct meta_writer *w = srv->meta_writer;
	struct meta_op *op;
	int r;

	if (w->batch || !w->head)
		return;
	w->batch = w->head;
	w->head = w->tail = NULL;
	for (op = w->batch; op; op = op->next)
		snprintf(op->tmp, sizeof(op->tmp), META_TMP_PREFIX "%ld-%lu", (long)getpid(),
		         ++w->counter);
	r = state_job_start(srv, &w->job, meta_run, meta_done_batch);
	if (r < 0) {
		log_error("cannot queue metadata writes: %s", uv_strerror(r));
		for (op = w->batch; op; op = op->next)
			op->result = -ENOMEM;
		meta_done_batch(&w->job);
	}
}

static void meta_done_batch(struct state_job *job)
{
	struct meta_writer *w = (struct meta_writer *)job;
	struct server *srv = job->srv;
	struct meta_op *op = w->batch;

	w->batch = NULL;
	while (op) {
		struct meta_op *next = op->next;

		if (op->result < 0) {
			log_error("cannot %s region metadata %s: %s",
			          op->kind == META_WRITE ? "write" : "remove", op->file,
			          strerror(-op->result));
			if (op->undo) {
				struct meta *m = meta_lookup(srv, op->undo);

				if (m)
					meta_forget(srv, m);
			}
		}
		if (op->cb)
			op->cb(op->arg, op->result);
		meta_op_free(op);
		op = next;
	}
	meta_kick(srv);
}

/* Queues a write of record m (or its removal when m is NULL) of region name. */
static int meta_queue(struct server *srv, const char *name, const struct meta *m, bool undo,
                      meta_cb cb, void *arg)
{
	struct meta_writer *w = srv->meta_writer;
	struct meta_op *op = calloc(1, sizeof(*op));

	if (!op)
		return -ENOMEM;
	op->kind = m ? META_WRITE : META_REMOVE;
	meta_file_name(name, op->file);
	if (m) {
		op->text = meta_serialise(m);
		if (!op->text)
			goto nomem;
	}
	if (undo) {
		op->undo = strdup(name);
		if (!op->undo)
			goto nomem;
	}
	op->cb = cb;
	op->arg = arg;
	if (w->tail)
		w->tail->next = op;
	else
		w->head = op;
	w->tail = op;
	meta_kick(srv);
	return 0;
nomem:
	meta_op_free(op);
	return -ENOMEM;
}

int meta_save_created(struct server *srv, const char *name, const struct policy *p,
                      const struct access *acc, uint64_t size, bool sparse, meta_cb cb,
                      void *arg)
{
	struct meta *m = meta_get(srv, name);
	int r;

	if (!m)
		return -ENOMEM;
	m->policy = *p;
	m->poisoned = false;
	m->owned = true;
	m->acc = *acc;
	m->created = true;
	m->created_ms = state_epoch_ms();
	m->size = size;
	m->sparse = sparse;
	r = meta_queue(srv, name, m, true, cb, arg);
	if (r < 0)
		meta_forget(srv, m);
	return r;
}

int meta_save_region(struct region *r, meta_cb cb, void *arg)
{
	struct meta *m = meta_get(r->srv, r->name);

	if (!m)
		return -ENOMEM;
	m->policy = r->flush.policy;
	m->poisoned = r->flush.poisoned;
	m->owned = true;
	m->acc = r->acc;
	return meta_queue(r->srv, r->name, m, false, cb, arg);
}

void meta_remove(struct server *srv, const char *name)
{
	struct meta *m = meta_lookup(srv, name);

	if (!m)
		return;
	meta_forget(srv, m);
	if (meta_queue(srv, name, NULL, false, NULL, NULL) < 0)
		log_error("out of memory: the metadata file of deleted region '%s' stays; "
		          "it is removed at the next start", name);
}

int meta_rename(struct server *srv, const char *from, const char *to, meta_cb cb, void *arg)
{
	struct meta *m = meta_lookup(srv, from), *old = meta_lookup(srv, to), *n;
	size_t len = strlen(to);
	int r;

	if (!m) {
		/* A file made without mmapd: nothing recorded moves, and nothing may stay for to. */
		if (old)
			meta_forget(srv, old);
		return meta_queue(srv, to, NULL, false, cb, arg);
	}
	n = malloc(sizeof(*n) + len + 1);
	if (!n)
		return -ENOMEM;
	*n = *m;
	memcpy(n->name, to, len + 1);
	if (old)
		meta_forget(srv, old);
	if (htab_insert(&srv->meta, &n->node, htab_hash_string(to)) < 0) {
		free(n);
		return -ENOMEM;
	}
	meta_forget(srv, m);
	/* The new file first: a crash between the two leaves a stale file, removed at start. */
	r = meta_queue(srv, to, n, false, cb, arg);
	if (r == 0 && meta_queue(srv, from, NULL, false, NULL, NULL) < 0)
		log_error("out of memory: the metadata file of renamed region '%s' stays; "
		          "it is removed at the next start", from);
	return r;
}

/* Opens (making it if missing) directory name beneath dirfd. Returns the fd or -errno. */
static int meta_open_dir(int dirfd, const char *name)
{
	int fd;

	if (mkdirat(dirfd, name, 0750) == 0)
		fsync(dirfd);
	else if (errno != EEXIST)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Reads a small regular file beneath dirfd into a NUL-terminated buffer. */
static int meta_read(int dirfd, const char *file, char **ret_text, size_t *ret_len)
{
	int fd, r;

	fd = openat(dirfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	r = fileio_read_file(fd, META_FILE_SIZE_MAX, ret_text, ret_len);
	close(fd);
	return r;
}

/* Reads the owner fields (all three, or none) into m. Returns 0 or -EINVAL. */
static int meta_parse_access(const cJSON *obj, struct meta *m)
{
	uint64_t uid, gid, perm;
	int ru = msg_get_u64(obj, "uid", &uid);
	int rg = msg_get_u64(obj, "gid", &gid);
	int rp = msg_get_u64(obj, "perm", &perm);

	if (ru == -ENOENT && rg == -ENOENT && rp == -ENOENT)
		return 0;
	if (ru < 0 || rg < 0 || rp < 0 || uid > UINT32_MAX - 1 || gid > UINT32_MAX - 1 ||
	    perm > ACCESS_PERM_MAX)
		return -EINVAL;
	m->owned = true;
	m->acc.uid = (uint32_t)uid;
	m->acc.gid = (uint32_t)gid;
	m->acc.perm = (unsigned)perm;
	return 0;
}

/*
 * Checks the content of metadata file file and fills *ret (whose name is set from it).
 * Returns 0, or -EINVAL (or -ENOMEM) with ret_why set to the reason it is unusable.
 */
static int meta_parse(const char *file, const char *text, size_t len, struct meta **ret,
                      struct why *ret_why)
{
	char expect[META_FILE_NAME_MAX];
	const char *name;
	struct meta *m = NULL;
	cJSON *obj = NULL, *policy;
	uint64_t version;
	size_t nlen;
	int r, err = -EINVAL;

	if (len == 0 || msg_parse(text, len, &obj) < 0) {
		why_set(ret_why, "not a JSON object");
		return -EINVAL;
	}
	if (msg_get_u64(obj, "version", &version) < 0 || version != META_VERSION) {
		why_set(ret_why, "wrong or missing \"version\"");
		goto out;
	}
	if (msg_get_string(obj, "name", &name) < 0 || name_check(name, strlen(name)) < 0) {
		why_set(ret_why, "missing or invalid \"name\"");
		goto out;
	}
	meta_file_name(name, expect);
	if (strcmp(expect, file) != 0) {
		why_set(ret_why, "it names another region");
		goto out;
	}
	nlen = strlen(name);
	m = calloc(1, sizeof(*m) + nlen + 1);
	if (!m) {
		why_set(ret_why, "out of memory");
		err = -ENOMEM;
		goto out;
	}
	memcpy(m->name, name, nlen + 1);
	m->policy.kind = POLICY_MANUAL;
	policy = cJSON_GetObjectItemCaseSensitive(obj, "policy");
	if (policy && policy_parse(policy, &m->policy, ret_why) < 0)
		goto out;
	if (msg_get_bool(obj, "poisoned", &m->poisoned) == -EINVAL) {
		why_set(ret_why, "\"poisoned\" is not a boolean");
		goto out;
	}
	r = meta_parse_access(obj, m);
	if (r < 0) {
		why_set(ret_why, "bad \"uid\", \"gid\" or \"perm\"");
		goto out;
	}
	r = msg_get_u64(obj, "created_ms", &m->created_ms);
	m->created = r == 0;
	if (r == -EINVAL || msg_get_u64(obj, "size", &m->size) == -EINVAL ||
	    msg_get_bool(obj, "sparse", &m->sparse) == -EINVAL) {
		why_set(ret_why, "bad creation fields");
		goto out;
	}
	*ret = m;
	m = NULL;
	err = 0;
out:
	free(m);
	cJSON_Delete(obj);
	return err;
}

/* Moves file out of the way into the quarantine directory, keeping it for an operator. */
static void meta_quarantine(struct server *srv, int quarantine_fd, const char *file,
                            const char *why)
{
	char dest[META_FILE_NAME_MAX];
	unsigned n;

	for (n = 0; n < 100; n++) {
		snprintf(dest, sizeof(dest), "%" PRIu64 ".%u-%s", state_epoch_ms(), n, file);
		if (renameat2(srv->meta_fd, file, quarantine_fd, dest, RENAME_NOREPLACE) == 0) {
			log_warn("region metadata %s/" META_DIR "/" META_SUBDIR "/%s is unusable (%s); "
			         "moved it to " META_DIR "/" META_QUARANTINE "/%s", srv->cfg->data_dir,
			         file, why, dest);
			return;
		}
		if (errno != EEXIST)
			break;
	}
	log_error("region metadata %s/" META_DIR "/" META_SUBDIR "/%s is unusable (%s) and cannot "
	          "be moved to quarantine: %s; ignoring it", srv->cfg->data_dir, file, why,
	          strerror(errno));
}

/* Loads one directory entry of the metadata directory. */
static void meta_load_one(struct server *srv, int quarantine_fd, const char *file)
{
	struct meta *m = NULL;
	struct stat st;
	struct why why;
	char *text = NULL;
	size_t len = 0;
	int r;

	if (strncmp(file, META_TMP_PREFIX, strlen(META_TMP_PREFIX)) == 0) {
		/* A write a crash interrupted: the file it was for is intact. */
		unlinkat(srv->meta_fd, file, 0);
		return;
	}
	r = meta_read(srv->meta_fd, file, &text, &len);
	if (r == -ENOMEM) {
		log_error("out of memory reading region metadata %s; ignoring it", file);
		return;
	}
	if (r < 0)
		why_set(&why, "not a readable regular file");
	else
		r = meta_parse(file, text, len, &m, &why);
	free(text);
	if (r < 0) {
		meta_quarantine(srv, quarantine_fd, file, why.text);
		return;
	}
	if (fsdir_lookup(srv->dir_fd, m->name, &st, NULL) == -ENOENT) {
		/* A deletion a crash interrupted between the region file and its metadata. */
		log_info("removing the metadata of region '%s', which no longer exists", m->name);
		unlinkat(srv->meta_fd, file, 0);
		free(m);
		return;
	}
	if (htab_insert(&srv->meta, &m->node, htab_hash_string(m->name)) < 0) {
		log_error("out of memory loading the metadata of region '%s'", m->name);
		free(m);
	}
}

static int meta_load(struct server *srv, int quarantine_fd)
{
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(srv->meta_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		meta_load_one(srv, quarantine_fd, de->d_name);
	}
	closedir(d);
	return 0;
}

int meta_init(struct server *srv)
{
	const char *dir = srv->cfg->data_dir;
	int top = -1, quarantine = -1, r;

	srv->meta_writer = calloc(1, sizeof(*srv->meta_writer));
	if (!srv->meta_writer)
		return -ENOMEM;
	top = meta_open_dir(srv->dir_fd, META_DIR);
	if (top < 0) {
		r = top;
		log_error("cannot open %s/" META_DIR ": %s", dir, strerror(-r));
		goto out;
	}
	r = meta_open_dir(top, META_SUBDIR);
	if (r < 0) {
		log_error("cannot open %s/" META_DIR "/" META_SUBDIR ": %s", dir, strerror(-r));
		goto out;
	}
	srv->meta_fd = r;
	quarantine = meta_open_dir(top, META_QUARANTINE);
	if (quarantine < 0) {
		r = quarantine;
		log_error("cannot open %s/" META_DIR "/" META_QUARANTINE ": %s", dir, strerror(-r));
		goto out;
	}
	srv->meta_writer->dir_fd = srv->dir_fd;
	srv->meta_writer->meta_fd = srv->meta_fd;
	r = meta_load(srv, quarantine);
	if (r < 0)
		log_error("cannot read %s/" META_DIR "/" META_SUBDIR ": %s", dir, strerror(-r));
	else if (srv->meta.count > 0)
		log_info("loaded the metadata of %zu region%s", srv->meta.count,
		         srv->meta.count == 1 ? "" : "s");
out:
	if (top >= 0)
		close(top);
	if (quarantine >= 0)
		close(quarantine);
	return r;
}

void meta_done(struct server *srv)
{
	struct htab_iter it;
	struct hnode *node;

	htab_iter_init(&srv->meta, &it);
	while ((node = htab_iter_next(&srv->meta, &it)) != NULL)
		meta_forget(srv, htab_entry(node, struct meta, node));
	htab_done(&srv->meta);
	if (srv->meta_writer) {
		while (srv->meta_writer->head) {
			struct meta_op *op = srv->meta_writer->head;

			srv->meta_writer->head = op->next;
			meta_op_free(op);
		}
		free(srv->meta_writer);
		srv->meta_writer = NULL;
	}
	if (srv->meta_fd >= 0)
		close(srv->meta_fd);
	srv->meta_fd = -1;
}
