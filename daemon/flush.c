/* SPDX-License-Identifier: MIT */
/*
 * The flusher and flush policies (see flush.h). A region's flush requests wait in two
 * queues: those answered by the fdatasync now on the thread pool, and those that arrived
 * after it started, answered by the next one. A policy that wants a flush while one runs
 * sets "again" instead, so any number of changes cost at most one more fdatasync.
 * A flush of a range is not queued: it is its own job (msync(MS_SYNC) of a mapping of the
 * range, which writes that range's dirty pages only and then commits as fdatasync does),
 * answered when it ends, and any number run beside each other and beside the whole-file one.
 */
#include "flush.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "meta.h"
#include "msg.h"
#include "notify.h"
#include "reply.h"
#include "policy.h"
#include "region.h"
#include "state.h"
#include "timer.h"
#include "vocab.h"

#define FLUSH_HOOK_ENV "MMAPD_TEST_FAIL_FDATASYNC"

/* A request answered when a flush ends: a flush op, or a changed op under "always". */
struct flush_waiter {
	struct flush_waiter *next;
	struct conn *conn;            /* referenced; its pending count covers the waiter */
	uint64_t id;
	bool changed;                 /* the reply carries seq */
	uint64_t seq;
};

struct flush_job {
	struct state_job job;
	struct region *region;        /* referenced */
	int fd;
	bool fail;                    /* the test hook names this region */
	uint64_t seq;                 /* the changes this flush makes durable */
	int result;
};

/* A flush of a range: one request, one msync (flush_range_request). */
struct flush_range_job {
	struct state_job job;
	struct region *region;        /* referenced */
	struct conn *conn;            /* referenced; its pending count covers the request */
	uint64_t id;
	int fd;
	bool fail;                    /* the test hook names this region */
	uint64_t offset, length;
	int result;
};

static const char *flush_fail_name;   /* the test hook's region, or NULL */


void flush_hook_init(void)
{
	flush_fail_name = getenv(FLUSH_HOOK_ENV);
	if (flush_fail_name && !*flush_fail_name)
		flush_fail_name = NULL;
	if (flush_fail_name)
		log_warn("test hook " FLUSH_HOOK_ENV " is set: every fdatasync of region '%s' fails "
		         "with EIO", flush_fail_name);
}

static void flush_queue_push(struct flush_queue *q, struct flush_waiter *w)
{
	w->next = NULL;
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
}

/* Adds request id of c to the waiters of the next flush. Returns 0 or -ENOMEM. */
static int flush_wait(struct region *r, struct conn *c, uint64_t id, bool changed, uint64_t seq)
{
	struct flush_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->conn = c;
	w->id = id;
	w->changed = changed;
	w->seq = seq;
	conn_ref(c);
	conn_pending_add(c);
	flush_queue_push(&r->flush.next_waiters, w);
	return 0;
}

/* Answers a changed request: {"seq"}. */
static void flush_reply_changed(struct conn *c, uint64_t id, uint64_t seq)
{
	cJSON *reply = msg_reply_ok(id);

	if (reply && !cJSON_AddNumberToObject(reply, PROTO_FIELD_SEQ, (double)seq)) {
		cJSON_Delete(reply);
		reply = NULL;
	}
	reply_send(c, id, reply);
}

/* Answers every waiter of q: ok (err 0) or err with message, and frees them. */
static void flush_answer(struct flush_queue *q, int err, const char *message)
{
	struct flush_waiter *w = q->head;

	q->head = q->tail = NULL;
	while (w) {
		struct flush_waiter *next = w->next;

		if (err)
			reply_error(w->conn, w->id, err, "%s", message);
		else if (w->changed)
			flush_reply_changed(w->conn, w->id, w->seq);
		else
			reply_ok(w->conn, w->id);
		conn_pending_done(w->conn);
		conn_unref(w->conn);
		free(w);
		w = next;
	}
}

/* Drops an armed interval: the flush about to start (or the deletion) covers its changes. */
static void flush_interval_stop(struct region *r)
{
	if (!r->flush.interval)
		return;
	timer_free(r->flush.interval);
	r->flush.interval = NULL;
	region_unref(r);
}

static void flush_run(struct state_job *sj)
{
	struct flush_job *job = (struct flush_job *)sj;

	if (job->fail) {
		job->result = -EIO;
		return;
	}
	do
		job->result = fdatasync(job->fd) < 0 ? -errno : 0;
	while (job->result == -EINTR);
}

static void flush_done(struct state_job *sj);

/* Starts an fdatasync of r for the waiters of the next flush (r is not running one). */
static void flush_start(struct region *r)
{
	struct flush_job *job;
	int ret;

	r->flush.running_waiters = r->flush.next_waiters;
	r->flush.next_waiters.head = r->flush.next_waiters.tail = NULL;
	r->flush.bytes = r->flush.writes = 0;
	r->flush.again = false;
	flush_interval_stop(r);

	job = calloc(1, sizeof(*job));
	if (!job) {
		ret = -ENOMEM;
		goto fail;
	}
	job->region = r;
	job->fd = r->fd;
	job->fail = flush_fail_name && strcmp(flush_fail_name, r->name) == 0;
	job->seq = r->seq;
	region_ref(r);
	r->flush.running = true;
	ret = state_job_start(r->srv, &job->job, flush_run, flush_done);
	if (ret == 0)
		return;
	r->flush.running = false;
	region_unref(r);
	free(job);
	log_error("cannot queue a flush of region '%s': %s", r->name, uv_strerror(ret));
fail:
	/* Nothing was attempted, so nothing is poisoned: the requests just fail. */
	flush_answer(&r->flush.running_waiters, ENOMEM, "the daemon cannot queue the flush");
}

/* A policy wants a flush: now, or after the one running. A poisoned region gets none. */
static void flush_want(struct region *r)
{
	if (r->flush.poisoned)
		return;
	if (r->flush.running)
		r->flush.again = true;
	else
		flush_start(r);
}

/* The fdatasync of r failed with err: the region is poisoned (see flush.h). */
static void flush_poison(struct region *r, int err)
{
	cJSON *event, *error;
	char *message = NULL;

	if (asprintf(&message, "fdatasync of region '%s' failed (%s); the region is poisoned "
	             "until clear-error", r->name, strerror(err)) < 0)
		message = NULL;
	log_error("fdatasync of region '%s' failed: %s; the region is poisoned until clear-error",
	          r->name, strerror(err));
	flush_answer(&r->flush.running_waiters, EIO, message ? message : "fdatasync failed");
	flush_answer(&r->flush.next_waiters, EIO, message ? message : "fdatasync failed");
	r->flush.again = false;
	if (r->flush.poisoned)
		goto out;
	r->flush.poisoned = true;
	event = notify_event_new(r, proto_event_name(PROTO_EVENT_FLUSH_FAILED));
	error = msg_error_object(EIO, message);
	if (event && error && cJSON_AddItemToObject(event, PROTO_FIELD_ERROR, error)) {
		error = NULL;
		notify_region(r, event, NOTIFY_HOLDERS | NOTIFY_SUBSCRIBERS, NULL);
	} else {
		log_error("out of memory telling the clients of region '%s' that it is poisoned",
		          r->name);
	}
	cJSON_Delete(error);
	cJSON_Delete(event);
	/* An adopted region has no metadata file (adopt.h). */
	if (!r->retired && !r->adopt && meta_save_region(r, NULL, NULL) < 0)
		log_error("out of memory saving the poison of region '%s'", r->name);
out:
	free(message);
}

static void flush_done(struct state_job *sj)
{
	struct flush_job *job = (struct flush_job *)sj;
	struct region *r = job->region;

	r->flush.running = false;
	if (job->result == 0) {
		r->srv->stats.flushes++;
		r->srv->stats.bytes_flushed += region_size(r);
		log_debug("flushed region '%s' up to change %" PRIu64, r->name, job->seq);
		notify_flushed(r, job->seq);
		flush_answer(&r->flush.running_waiters, 0, NULL);
		if (r->flush.next_waiters.head || r->flush.again)
			flush_start(r);
	} else {
		r->srv->stats.flush_failures++;
		flush_poison(r, -job->result);
	}
	region_check_idle(r);
	region_unref(r);
	free(job);
}

void flush_request(struct conn *c, uint64_t id, struct region *r)
{
	if (r->anonymous) {
		reply_ok(c, id);
		return;
	}
	if (r->flush.poisoned) {
		reply_error(c, id, EIO, "region '%s' is poisoned by a failed flush; "
		            "send clear-error first", r->name);
		return;
	}
	if (flush_wait(r, c, id, false, 0) < 0) {
		reply_nomem(c, id);
		return;
	}
	if (!r->flush.running)
		flush_start(r);
}

/*
 * On a pool thread: msync(MS_SYNC) of a shared mapping of the range. Linux turns it into
 * vfs_fsync_range(file, range, datasync): the range's dirty pages are written and waited for,
 * then the file system commits what is needed to read them back and flushes the device's
 * cache, as fdatasync does for the whole file. The mapping is never touched, so it faults
 * nothing in; the daemon's descriptor is read-write, so the mapping is VM_SHARED.
 */
static void flush_range_run(struct state_job *sj)
{
	struct flush_range_job *job = (struct flush_range_job *)sj;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = job->offset - job->offset % page;
	uint64_t len = job->offset + job->length - start;
	void *map;

	if (job->fail) {
		job->result = -EIO;
		return;
	}
	if (len > SIZE_MAX) {
		job->result = -EFBIG;
		return;
	}
	map = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, job->fd, (off_t)start);
	if (map == MAP_FAILED) {
		job->result = -errno;
		return;
	}
	job->result = msync(map, (size_t)len, MS_SYNC) < 0 ? -errno : 0;
	munmap(map, (size_t)len);
}

static void flush_range_done(struct state_job *sj)
{
	struct flush_range_job *job = (struct flush_range_job *)sj;
	struct region *r = job->region;

	r->flush.ranges--;
	if (job->result == 0) {
		r->srv->stats.flushes++;
		r->srv->stats.bytes_flushed += job->length;
		log_debug("flushed %" PRIu64 " bytes at %" PRIu64 " of region '%s'", job->length,
		          job->offset, r->name);
		reply_ok(job->conn, job->id);
	} else if (job->result == -EIO || job->result == -ENOSPC || job->result == -EDQUOT) {
		/* A write-back error: the dirty pages may be gone, as for a failed fdatasync. */
		r->srv->stats.flush_failures++;
		reply_error(job->conn, job->id, EIO, "flushing %" PRIu64 " bytes at %" PRIu64
		            " of region '%s' failed (%s); the region is poisoned until clear-error",
		            job->length, job->offset, r->name, strerror(-job->result));
		flush_poison(r, -job->result);
	} else {
		/* The mapping could not be made (ENOMEM, ...): nothing was written, nothing lost. */
		reply_error(job->conn, job->id, -job->result, "cannot flush %" PRIu64 " bytes at %"
		            PRIu64 " of region '%s': %s", job->length, job->offset, r->name,
		            strerror(-job->result));
	}
	conn_pending_done(job->conn);
	conn_unref(job->conn);
	region_check_idle(r);
	region_unref(r);
	free(job);
}

void flush_range_request(struct conn *c, uint64_t id, struct region *r, uint64_t offset,
                         uint64_t length)
{
	struct flush_range_job *job;
	int ret;

	if (r->anonymous || length == 0) {
		reply_ok(c, id);
		return;
	}
	if (r->flush.poisoned) {
		reply_error(c, id, EIO, "region '%s' is poisoned by a failed flush; "
		            "send clear-error first", r->name);
		return;
	}
	job = calloc(1, sizeof(*job));
	if (!job) {
		reply_nomem(c, id);
		return;
	}
	job->region = r;
	job->conn = c;
	job->id = id;
	job->fd = r->fd;
	job->fail = flush_fail_name && strcmp(flush_fail_name, r->name) == 0;
	job->offset = offset;
	job->length = length;
	region_ref(r);
	conn_ref(c);
	conn_pending_add(c);
	r->flush.ranges++;
	ret = state_job_start(r->srv, &job->job, flush_range_run, flush_range_done);
	if (ret == 0)
		return;
	r->flush.ranges--;
	log_error("cannot queue a flush of region '%s': %s", r->name, uv_strerror(ret));
	reply_error(c, id, ENOMEM, "the daemon cannot queue the flush");
	conn_pending_done(c);
	conn_unref(c);
	region_unref(r);
	free(job);
}

static void flush_on_interval(void *data)
{
	struct region *r = data;

	region_ref(r);
	flush_interval_stop(r);
	flush_want(r);
	region_check_idle(r);
	region_unref(r);
}

void flush_count_change(struct conn *c, uint64_t id, struct region *r, uint64_t seq,
                        uint64_t length)
{
	struct flush_state *f = &r->flush;

	if (r->anonymous || f->policy.kind == POLICY_MANUAL) {
		if (c)
			flush_reply_changed(c, id, seq);
		return;
	}
	switch (f->policy.kind) {
	case POLICY_ALWAYS:
		/* A change read from the change log (no request waits): flushed all the same. */
		if (!c) {
			flush_want(r);
			return;
		}
		if (flush_wait(r, c, id, true, seq) < 0) {
			reply_nomem(c, id);
			return;
		}
		if (!f->running)
			flush_start(r);
		return;
	case POLICY_EVERY_BYTES:
		f->bytes += length;
		if (f->bytes >= f->policy.value)
			flush_want(r);
		break;
	case POLICY_EVERY_WRITES:
		if (++f->writes >= f->policy.value)
			flush_want(r);
		break;
	case POLICY_INTERVAL:
		if (!f->interval) {
			f->interval = timer_start(r->srv->loop, f->policy.value, flush_on_interval, r);
			if (f->interval)
				region_ref(r);
			else
				flush_want(r);   /* no timer: flush at once rather than never */
		}
		break;
	case POLICY_MANUAL:
		break;
	}
	if (c)
		flush_reply_changed(c, id, seq);
}

void flush_set_policy(struct region *r, const struct policy *p)
{
	bool pending = r->flush.interval != NULL;

	region_ref(r);
	r->flush.policy = *p;
	r->flush.bytes = r->flush.writes = 0;
	flush_interval_stop(r);
	if (pending && !r->anonymous)
		flush_want(r);
	region_unref(r);
}

bool flush_busy(const struct region *r)
{
	return r->flush.running || r->flush.ranges || r->flush.interval ||
	       r->flush.next_waiters.head;
}

void flush_region_retire(struct region *r)
{
	flush_interval_stop(r);
}

void flush_server_stop(struct server *srv)
{
	struct htab_iter it;
	struct hnode *node;

	htab_iter_init(&srv->regions, &it);
	while ((node = htab_iter_next(&srv->regions, &it)) != NULL) {
		struct region *r = htab_entry(node, struct region, node);

		/* The flush started keeps the region in the table: the iteration stays valid. */
		if (r->flush.interval)
			flush_on_interval(r);
	}
}
