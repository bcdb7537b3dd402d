/* SPDX-License-Identifier: MIT */
/*
 * The ops of docs/coordination.md: lock, unlock, locks, resize, shrink-ack, subscribe,
 * unsubscribe, changed, flush, clear-error and set-policy. Each checks its fields first
 * (naming the field in every EINVAL), then resolves the region with ops_get_region (a file
 * region nobody holds is opened and tracked for as long as the work needs it), and hands the
 * work to the module that owns it: lock.c, resize.c, notify.c, flush.c, meta.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "budget.h"
#include "conn.h"
#include "control.h"
#include "fdstore.h"
#include "flush.h"
#include "fsdir.h"
#include "lock.h"
#include "log.h"
#include "meta.h"
#include "msg.h"
#include "notify.h"
#include "ops.h"
#include "region.h"
#include "relay.h"
#include "resize.h"
#include "state.h"
#include "vocab.h"

/* A request answered once a metadata change is on disk (clear-error, set-policy, chown...). */
struct coord_saving {
	struct conn *conn;            /* referenced; its pending count covers us */
	uint64_t id;
	char *name;
	bool with_policy;             /* set-policy: the reply carries the policy */
	struct policy policy;
};

int ops_lock(struct conn *c, uint64_t id, cJSON *req)
{
	struct lock_args a = { .wait = true };
	const char *name, *mode;
	struct region *r;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name || ops_get_u64(c, id, req, PROTO_FIELD_OFFSET, false, &a.offset) < 0 ||
	    ops_get_u64(c, id, req, PROTO_FIELD_LENGTH, false, &a.length) < 0)
		return OPS_DONE;
	ret = msg_get_string(req, PROTO_FIELD_MODE, &mode);
	if (ret == 0)
		ret = proto_lock_mode_find(mode);
	if (ret < 0) {
		reply_error(c, id, EINVAL, ret == -ENOENT ? "field 'mode' is required"
		            : "field 'mode' must be \"shared\" or \"exclusive\"");
		return OPS_DONE;
	}
	a.exclusive = ret == PROTO_LOCK_EXCLUSIVE;
	if (ops_get_bool(c, id, req, PROTO_FIELD_WAIT, &a.wait) < 0)
		return OPS_DONE;
	ret = ops_get_u64(c, id, req, PROTO_FIELD_TIMEOUT_MS, false, &a.timeout_ms);
	if (ret < 0)
		return OPS_DONE;
	a.has_timeout = ret > 0;

	ret = ops_get_region(c, id, req, name, ACCESS_READ, &r);
	if (!r)
		return ret;
	lock_acquire(c, id, r, &a);
	ops_put_region(r);
	return OPS_DONE;
}

int ops_unlock(struct conn *c, uint64_t id, cJSON *req)
{
	uint64_t lock;

	if (ops_get_u64(c, id, req, PROTO_FIELD_LOCK, true, &lock) < 0)
		return OPS_DONE;
	lock_release(c, id, lock);
	return OPS_DONE;
}

/*
 * Whether c may be sent n more descriptors the daemon makes for it (a control page, a
 * doorbell, a page subscription's two): the connection's max_fds_in_flight, its uid's
 * max_fds_per_uid and the descriptor reserve. Each is charged to BUDGET_FDS until the
 * connection ends (coord_fds_handed): the daemon cannot see when the client closes one, and
 * a client that never reads would otherwise pile them up in its socket, where the kernel
 * counts them against the daemon's uid. Returns 0, or -1 after answering EAGAIN or EMFILE.
 */
static int coord_fds_admit(struct conn *c, uint64_t id, size_t n)
{
	const struct limits *l = c->srv->limits;

	if (c->out_fds + n > l->max_fds_in_flight) {
		conn_warn(c, "refused a request for a descriptor: %zu wait unread "
		          "(max_fds_in_flight %" PRIu64 ")", c->out_fds, l->max_fds_in_flight);
		reply_error(c, id, EAGAIN, "%zu descriptors wait in this connection's output queue "
		            "(max_fds_in_flight %" PRIu64 "); read your replies", c->out_fds,
		            l->max_fds_in_flight);
		return -1;
	}
	if (!budget_fits(c->budget, BUDGET_FDS, n)) {
		reply_budget(c, id, c->budget, BUDGET_FDS, n);
		return -1;
	}
	if (!budget_fd_headroom(c->srv, (uint32_t)c->uid)) {
		reply_fd_reserve(c, id);
		return -1;
	}
	return 0;
}

/* n descriptors made for c went out: charged until c ends. */
static void coord_fds_handed(struct conn *c, size_t n)
{
	budget_force(c->budget, BUDGET_FDS, n);
	c->handed_fds += n;
}

int ops_control(struct conn *c, uint64_t id, cJSON *req)
{
	struct grant *g = ops_get_grant(c, id, req);
	unsigned slot;
	cJSON *reply;
	int fd, ret;

	if (!g)
		return OPS_DONE;
	/* The page lets its holders take locks others obey: only for those who may write. */
	if (g->mode != REGION_MODE_RW) {
		reply_error(c, id, EACCES, "the control page of region '%s' is for read-write "
		            "grants; grant %" PRIu64 " is %s", g->region->name, g->handle,
		            region_mode_name(g->mode));
		return OPS_DONE;
	}
	if (coord_fds_admit(c, id, 1) < 0)
		return OPS_DONE;
	ret = control_attach(&g->region->ctl, "mmapd-control", c, &fd, &slot);
	if (ret == 0)
		relay_page_ready(g->region);
	if (ret == 0) {
		ret = lock_control_attached(g->region);
		if (ret < 0)
			close(fd);
	}
	if (ret == -EDQUOT) {
		conn_warn(c, "refused a control page slot: max_control_slots_per_uid (%" PRIu64 ")",
		          c->srv->limits->max_control_slots_per_uid);
		reply_error(c, id, EAGAIN, "uid %lu holds max_control_slots_per_uid (%" PRIu64 ") "
		            "slots of the control page of region '%s' already: use lock requests",
		            (unsigned long)c->uid, c->srv->limits->max_control_slots_per_uid,
		            g->region->name);
		return OPS_DONE;
	}
	if (ret < 0) {
		reply_error(c, id, -ret, ret == -ENOSPC ? "the control page of region '%s' has no "
		            "free slot: use lock requests" : "no control page for region '%s'",
		            g->region->name);
		return OPS_DONE;
	}
	reply = msg_reply_ok(id);
	if (!reply || !cJSON_AddNumberToObject(reply, PROTO_FIELD_FDS, 1) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_SLOT, slot)) {
		cJSON_Delete(reply);
		close(fd);
		reply_nomem(c, id);
		return OPS_DONE;
	}
	/* A connection closed by the send is gone with its slot. */
	if (conn_send(c, reply, &fd, 1) < 0) {
		if (conn_alive(c))
			reply_nomem(c, id);
	} else {
		coord_fds_handed(c, 1);
	}
	cJSON_Delete(reply);
	return OPS_DONE;
}

/* Gathers the locks reply: as many objects as fit max_frame. */
struct locks_page {
	cJSON *array;
	size_t used;                  /* bytes of the reply so far */
	size_t max;
	bool truncated;
};

static int locks_add(void *userdata, cJSON *obj)
{
	struct locks_page *p = userdata;
	size_t len = ops_json_len(obj) + 1;

	if (len == 1 || p->used + len > p->max) {
		cJSON_Delete(obj);
		p->truncated = true;
		return -ENOBUFS;
	}
	if (!cJSON_AddItemToArray(p->array, obj)) {
		cJSON_Delete(obj);
		return -ENOMEM;
	}
	p->used += len;
	return 0;
}

int ops_locks(struct conn *c, uint64_t id, cJSON *req)
{
	struct server *srv = c->srv;
	struct locks_page p = { .max = srv->limits->max_frame };
	struct region *r = NULL;
	const char *name = NULL;
	cJSON *reply;
	struct stat st;
	int ret = 0;

	if (cJSON_GetObjectItemCaseSensitive(req, PROTO_FIELD_NAME)) {
		name = ops_get_name(c, id, req);
		if (!name)
			return OPS_DONE;
		r = region_lookup(srv, name);
		if (r && r->state == REGION_BUSY)
			return ops_defer(c, id, req, r);
		/* A region the daemon does not hold has no locks. */
		if (!r && (ret = fsdir_lookup(srv->dir_fd, name, &st, NULL)) < 0) {
			reply_lookup_error(c, id, name, -ret);
			return OPS_DONE;
		}
	}
	reply = msg_reply_ok(id);
	if (!reply || !cJSON_AddFalseToObject(reply, PROTO_FIELD_TRUNCATED))
		goto nomem;
	p.array = cJSON_AddArrayToObject(reply, PROTO_FIELD_LOCKS);
	/* "false" is the longer value of "truncated": the page measured with it fits either way. */
	p.used = p.array ? ops_json_len(reply) : 0;
	if (p.used == 0)
		goto nomem;
	if (name) {
		if (r)
			ret = lock_region_list(r, locks_add, &p);
	} else {
		struct htab_iter it;
		struct hnode *node;

		htab_iter_init(&srv->regions, &it);
		while (ret == 0 && (node = htab_iter_next(&srv->regions, &it)) != NULL)
			ret = lock_region_list(htab_entry(node, struct region, node), locks_add, &p);
	}
	if (ret == -ENOMEM)
		goto nomem;
	if (p.truncated && ops_json_set_true(reply, PROTO_FIELD_TRUNCATED) < 0)
		goto nomem;
	reply_send(c, id, reply);
	return OPS_DONE;
nomem:
	cJSON_Delete(reply);
	reply_nomem(c, id);
	return OPS_DONE;
}

int ops_resize(struct conn *c, uint64_t id, cJSON *req)
{
	uint64_t max = c->srv->limits->max_region_size, size;
	const char *name;
	struct region *r;
	bool sparse = false, grow_only = false;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name || ops_get_u64(c, id, req, PROTO_FIELD_SIZE, true, &size) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_SPARSE, &sparse) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_GROW_ONLY, &grow_only) < 0)
		return OPS_DONE;
	if (size == 0) {
		reply_error(c, id, EINVAL, "field 'size' must be at least 1");
		return OPS_DONE;
	}
	if (size > max) {
		reply_error(c, id, EFBIG, "field 'size' (%" PRIu64 ") is above max_region_size "
		            "(%" PRIu64 ")", size, max);
		return OPS_DONE;
	}
	ret = ops_get_region(c, id, req, name, ACCESS_WRITE, &r);
	if (!r)
		return ret;
	resize_request(c, id, r, size, sparse, grow_only);
	ops_put_region(r);
	return OPS_DONE;
}

int ops_shrink_ack(struct conn *c, uint64_t id, cJSON *req)
{
	uint64_t shrink;

	if (ops_get_u64(c, id, req, PROTO_FIELD_SHRINK, true, &shrink) < 0)
		return OPS_DONE;
	if (resize_ack(c, shrink) < 0)
		reply_error(c, id, ESRCH, "no shrink %" PRIu64 " waits for this connection's "
		            "acknowledgement (unknown or finished)", shrink);
	else
		reply_ok(c, id);
	return OPS_DONE;
}

/*
 * Makes c's new subscription to r a page subscription (coordination.md): the read-only page
 * and the doorbell into fds, its tag into *ret_tag. Returns 0, or -1 after answering (the
 * subscription is undone).
 */
static int subscribe_page(struct conn *c, uint64_t id, struct region *r, int fds[2],
                          unsigned *ret_tag)
{
	int ret;

	if (coord_fds_admit(c, id, 2) < 0) {
		(void)notify_unsubscribe(c, r);
		return -1;
	}
	ret = relay_listen(r, &fds[0], &fds[1]);
	if (ret == 0) {
		*ret_tag = notify_subscribe_page(c, r);
		return 0;
	}
	(void)notify_unsubscribe(c, r);
	reply_error(c, id, -ret, "no control page for region '%s': %s", r->name, strerror(-ret));
	return -1;
}

int ops_subscribe(struct conn *c, uint64_t id, cJSON *req)
{
	int fds[2] = { -1, -1 };
	unsigned tag = 0;
	bool external = false;
	const char *name;
	struct region *r;
	bool page = false;
	cJSON *reply;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name || ops_get_bool(c, id, req, PROTO_FIELD_PAGE, &page) < 0 ||
	    ops_get_bool(c, id, req, PROTO_FIELD_EXTERNAL, &external) < 0)
		return OPS_DONE;
	ret = ops_get_region(c, id, req, name, ACCESS_READ, &r);
	if (!r)
		return ret;
	/* Changes published before the subscription go to the subscribers before it. */
	relay_run(r);
	ret = external ? notify_subscribe_external(c, r) : notify_subscribe(c, r);
	if (ret == -EALREADY) {
		reply_error(c, id, EALREADY, "this connection is subscribed to region '%s' already",
		            name);
	} else if (ret == -EAGAIN) {
		conn_warn(c, "refused a subscription: max_subscriptions_per_client (%" PRIu64 ")",
		          c->srv->limits->max_subscriptions_per_client);
		reply_error(c, id, EAGAIN, "this connection has max_subscriptions_per_client (%"
		            PRIu64 ") subscriptions", c->srv->limits->max_subscriptions_per_client);
	} else if (ret == -EDQUOT) {
		reply_budget(c, id, c->budget, BUDGET_WATCHED_FILES, 1);
	} else if (ret == -ENOMEM) {
		reply_nomem(c, id);
	} else if (ret < 0) {
		reply_error(c, id, -ret, "cannot watch region '%s' for external changes: %s", name,
		            strerror(-ret));
	} else if (!page || subscribe_page(c, id, r, fds, &tag) == 0) {
		/* The seq is read after the listeners word is set: every later change rings. */
		relay_route(r);
		reply = msg_reply_ok(id);
		if (reply && (!cJSON_AddNumberToObject(reply, PROTO_FIELD_SEQ, (double)relay_seq(r)) ||
		              (page && (!cJSON_AddNumberToObject(reply, PROTO_FIELD_FDS, 2) ||
		                        !cJSON_AddNumberToObject(reply, PROTO_FIELD_SLOT, tag))))) {
			cJSON_Delete(reply);
			reply = NULL;
		}
		if (!page) {
			reply_send(c, id, reply);
		} else if (!reply) {
			close(fds[0]);
			close(fds[1]);
			reply_nomem(c, id);
		} else if (conn_send(c, reply, fds, 2) < 0) {
			if (conn_alive(c))
				reply_nomem(c, id);
		} else {
			coord_fds_handed(c, 2);
		}
		if (page)
			cJSON_Delete(reply);
	}
	ops_put_region(r);
	return OPS_DONE;
}

int ops_unsubscribe(struct conn *c, uint64_t id, cJSON *req)
{
	const char *name;
	struct region *r;

	name = ops_get_name(c, id, req);
	if (!name)
		return OPS_DONE;
	r = region_lookup(c->srv, name);
	if (r && r->state == REGION_BUSY)
		return ops_defer(c, id, req, r);
	/* A subscription keeps its region in the table: one that is not there has none. */
	if (!r || notify_unsubscribe(c, r) < 0) {
		reply_error(c, id, ENOENT, "this connection is not subscribed to region '%s'", name);
	} else {
		relay_route(r);
		reply_ok(c, id);
	}
	return OPS_DONE;
}

/*
 * The doorbell form of changed: a holder of r's control page asks for the descriptor it rings
 * after publishing changes in the page (relay.h). Reports nothing; relays what the log holds.
 */
static void changed_doorbell(struct conn *c, uint64_t id, struct region *r)
{
	cJSON *reply;
	int fd, ret;

	relay_run(r);
	if (coord_fds_admit(c, id, 1) < 0)
		return;
	ret = relay_bell(r, c, &fd);
	if (ret < 0) {
		reply_error(c, id, -ret, ret == -EACCES || ret == -ENOENT
		            ? "this connection holds no slot in the control page of region '%s'"
		            : "no doorbell for region '%s'", r->name);
		return;
	}
	reply = msg_reply_ok(id);
	if (!reply || !cJSON_AddNumberToObject(reply, PROTO_FIELD_SEQ, (double)relay_seq(r)) ||
	    !cJSON_AddNumberToObject(reply, PROTO_FIELD_FDS, 1)) {
		cJSON_Delete(reply);
		close(fd);
		reply_nomem(c, id);
		return;
	}
	if (conn_send(c, reply, &fd, 1) < 0) {
		if (conn_alive(c))
			reply_nomem(c, id);
	} else {
		coord_fds_handed(c, 1);
	}
	cJSON_Delete(reply);
}

int ops_changed(struct conn *c, uint64_t id, cJSON *req)
{
	uint64_t offset, length, size, seq;
	bool doorbell = false;
	const char *name;
	struct region *r;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name || ops_get_bool(c, id, req, PROTO_FIELD_DOORBELL, &doorbell) < 0)
		return OPS_DONE;
	if (doorbell) {
		if (cJSON_GetObjectItemCaseSensitive(req, PROTO_FIELD_OFFSET) ||
		    cJSON_GetObjectItemCaseSensitive(req, PROTO_FIELD_LENGTH)) {
			reply_error(c, id, EINVAL, "fields 'offset' and 'length' do not go with "
			            "'doorbell'");
			return OPS_DONE;
		}
		ret = ops_get_region(c, id, req, name, ACCESS_WRITE, &r);
		if (!r)
			return ret;
		changed_doorbell(c, id, r);
		ops_put_region(r);
		return OPS_DONE;
	}
	if (ops_get_u64(c, id, req, PROTO_FIELD_OFFSET, true, &offset) < 0 ||
	    ops_get_u64(c, id, req, PROTO_FIELD_LENGTH, true, &length) < 0)
		return OPS_DONE;
	if (length == 0) {
		reply_error(c, id, EINVAL, "field 'length' must be at least 1");
		return OPS_DONE;
	}
	ret = ops_get_region(c, id, req, name, ACCESS_WRITE, &r);
	if (!r)
		return ret;
	size = region_size(r);
	if (offset > size || length > size - offset) {
		reply_error(c, id, ERANGE, "the range %" PRIu64 "+%" PRIu64 " does not lie inside "
		            "region '%s' (%" PRIu64 " bytes)", offset, length, name, size);
	} else if (r->flush.poisoned && r->flush.policy.kind != POLICY_MANUAL) {
		reply_error(c, id, EIO, "region '%s' is poisoned by a failed flush, so its policy "
		            "cannot flush the change; send clear-error first", name);
	} else {
		if (!relay_publish(r, c, offset, length, &seq))
			notify_changed(r, c, seq, offset, length);
		flush_count_change(c, id, r, seq, length);
	}
	ops_put_region(r);
	return OPS_DONE;
}

int ops_flush(struct conn *c, uint64_t id, cJSON *req)
{
	uint64_t offset = 0, length = 0, size;
	const char *name;
	struct region *r;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name || ops_get_u64(c, id, req, PROTO_FIELD_OFFSET, false, &offset) < 0 ||
	    ops_get_u64(c, id, req, PROTO_FIELD_LENGTH, false, &length) < 0)
		return OPS_DONE;
	ret = ops_get_region(c, id, req, name, ACCESS_READ, &r);
	if (!r)
		return ret;
	/* Neither (or both 0): the whole file, with fdatasync. Else the range; length 0: to the end. */
	size = region_size(r);
	if (offset == 0 && length == 0)
		flush_request(c, id, r);
	else if (offset > size || length > size - offset)
		reply_error(c, id, ERANGE, "the range %" PRIu64 "+%" PRIu64 " does not lie inside "
		            "region '%s' (%" PRIu64 " bytes)", offset, length, name, size);
	else
		flush_range_request(c, id, r, offset, length ? length : size - offset);
	ops_put_region(r);
	return OPS_DONE;
}

/* Answers a clear-error or set-policy request. */
static void coord_reply_saved(struct conn *c, uint64_t id, const struct policy *p)
{
	cJSON *reply = msg_reply_ok(id);
	cJSON *obj = reply && p ? policy_to_json(p) : NULL;

	if (reply && p && (!obj || !cJSON_AddItemToObject(reply, PROTO_FIELD_POLICY, obj))) {
		cJSON_Delete(obj);
		cJSON_Delete(reply);
		reply = NULL;
	}
	reply_send(c, id, reply);
}

static void coord_saved(void *arg, int result)
{
	struct coord_saving *s = arg;

	if (result < 0)
		reply_error(s->conn, s->id, reply_wire_errno(-result), "the change to region '%s' is "
		            "in effect but could not be saved: %s", s->name, strerror(-result));
	else
		coord_reply_saved(s->conn, s->id, s->with_policy ? &s->policy : NULL);
	conn_pending_done(s->conn);
	conn_unref(s->conn);
	free(s->name);
	free(s);
}

void ops_save_region(struct conn *c, uint64_t id, struct region *r, const struct policy *p)
{
	struct coord_saving *s;

	if (r->anonymous) {
		fdstore_state_changed(c->srv);
		coord_reply_saved(c, id, p);
		return;
	}
	/* An adopted region keeps its owner, mode and policy in memory only (adopt.h). */
	if (r->adopt) {
		coord_reply_saved(c, id, p);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->name = strdup(r->name))) {
		free(s);
		reply_nomem(c, id);
		return;
	}
	s->conn = c;
	s->id = id;
	s->with_policy = p != NULL;
	if (p)
		s->policy = *p;
	conn_ref(c);
	conn_pending_add(c);
	if (meta_save_region(r, coord_saved, s) < 0) {
		reply_nomem(c, id);
		conn_pending_done(c);
		conn_unref(c);
		free(s->name);
		free(s);
	}
}

int ops_clear_error(struct conn *c, uint64_t id, cJSON *req)
{
	const char *name;
	struct region *r;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name)
		return OPS_DONE;
	ret = ops_get_region(c, id, req, name, ACCESS_WRITE, &r);
	if (!r)
		return ret;
	if (r->flush.poisoned) {
		log_warn("client %llu (pid %ld) cleared the poison of region '%s'",
		         (unsigned long long)c->serial, (long)c->pid, name);
		r->flush.poisoned = false;
		ops_save_region(c, id, r, NULL);
	} else {
		reply_ok(c, id);
	}
	ops_put_region(r);
	return OPS_DONE;
}

int ops_set_policy(struct conn *c, uint64_t id, cJSON *req)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(req, PROTO_FIELD_POLICY);
	const char *name;
	struct why why;
	struct policy p;
	struct region *r;
	cJSON *event, *obj;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name)
		return OPS_DONE;
	if (!item) {
		reply_error(c, id, EINVAL, "field 'policy' is required");
		return OPS_DONE;
	}
	if (policy_parse(item, &p, &why) < 0) {
		reply_error(c, id, EINVAL, "%s", why.text);
		return OPS_DONE;
	}
	ret = ops_get_region(c, id, req, name, ACCESS_WRITE, &r);
	if (!r)
		return ret;
	relay_run(r);                 /* changes published so far count under the old policy */
	flush_set_policy(r, &p);
	relay_route(r);
	log_info("client %llu (pid %ld) set the flush policy of region '%s'",
	         (unsigned long long)c->serial, (long)c->pid, name);
	event = notify_event_new(r, proto_event_name(PROTO_EVENT_POLICY));
	obj = event ? policy_to_json(&p) : NULL;
	if (obj && cJSON_AddItemToObject(event, PROTO_FIELD_POLICY, obj))
		notify_region(r, event, NOTIFY_HOLDERS | NOTIFY_SUBSCRIBERS, NULL);
	else
		cJSON_Delete(obj);
	cJSON_Delete(event);
	ops_save_region(c, id, r, &p);
	ops_put_region(r);
	return OPS_DONE;
}
