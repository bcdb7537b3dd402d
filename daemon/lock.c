/* SPDX-License-Identifier: MIT */
/*
 * The lock manager (see lock.h). A lock is in its region's held list or wait queue, and in
 * its connection's table by id (held and waiting alike, so that an id is found or refused
 * in one place); a waiting lock is also on its connection's list of waits.
 *
 * "Ahead of" a waiter means every held lock and every waiter queued before it. A waiter is
 * granted when nothing ahead of it conflicts; a request is granted at once when nothing in
 * the region conflicts. Connection A waits for B when a lock of B ahead of one of A's
 * waiters conflicts with it. Such edges appear only when a waiter joins the tail of a
 * queue (a lock granted at once conflicts with nothing, and granting a waiter only turns
 * its waiters' edges into edges to a holder), and the graph has no cycle before, so a
 * search from the new waiter's connection back to itself, once its edges are in, finds
 * every cycle before it forms; the waiter is taken out again if one would.
 *
 * The wait-for graph is kept, not recomputed: an edge record (struct lock_edge) per region
 * and ordered pair of connections counts the pairs of their locks behind it (a waiter of
 * "from" and a conflicting lock of "to" ahead of it), and is on both connections' lists.
 * A waiter joining adds its pairs, a lock leaving removes its own (both one pass over its
 * region's locks); a grant changes no pair (what a granted waiter conflicts with was all
 * behind it and stays behind). So the deadlock search is a depth-first search over
 * connections that follows each edge record once, whatever the number of waiters behind
 * it: one pass over the region plus O(connections + edge records) per queued request,
 * where rescanning every waiter's queue for every connection visited was quadratic in the
 * waiters (and worse as their connections multiplied).
 *
 * Removing a lock L can only unblock waiters behind it (all waiters when L was held) that
 * conflicted with it: a grant moves a waiter to the held list, still ahead of the rest. So a
 * release examines only those, in queue order, and stops once an exclusive waiter ahead
 * (granted or not) covers L's whole range, since every later one touching L conflicts with
 * it. A connection that goes away drops its edge records whole, takes all its locks out
 * first and then examines each region it had locks in once, in queue order: one pass per
 * region, not one per lock.
 */
#include "lock.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "control.h"
#include "ctlpage.h"
#include "log.h"
#include "msg.h"
#include "notify.h"
#include "reply.h"
#include "region.h"
#include "state.h"
#include "timer.h"
#include "vocab.h"

struct lock {
	struct lock *prev, *next;     /* the region's held list or wait queue */
	struct lock *wprev, *wnext;   /* conn->lock_waits, while waiting */
	struct hnode node;            /* conn->locks, by id */
	struct conn *conn;
	struct region *region;        /* referenced */
	uint64_t id;
	uint64_t offset;
	uint64_t length;              /* 0: to infinity */
	uint64_t end;                 /* offset + length, or UINT64_MAX */
	bool exclusive;
	bool waiting;
	uint64_t since_ms;            /* Unix epoch ms when queued, then when granted */
	uint64_t queued_ms;           /* loop clock when queued, for waited_ms */
	uint64_t req_id;              /* the lock request a waiter answers when granted */
	uv_timer_t *timeout;
	int fast_slot;                /* a shadow: the control page slot it stands for; else -1 */
};

/*
 * An edge of the wait-for graph: pairs locks of "from" in region wait behind conflicting
 * locks of "to". In the region's table by (from, to) and on from->lock_out and to->lock_in.
 */
struct lock_edge {
	struct hnode node;
	struct lock_edge *out_prev, *out_next;
	struct lock_edge *in_prev, *in_next;
	struct conn *from, *to;
	struct region *region;
	uint64_t pairs;
};

static bool lock_conflict(const struct lock *a, const struct lock *b)
{
	return (a->exclusive || b->exclusive) && a->offset < b->end && b->offset < a->end;
}

/*
 * A lock ahead of l (l queued, or a request not queued yet) that conflicts with it, or NULL:
 * the first held one, else the nearest waiter ahead (walking back from l or the tail finds
 * what blocks a waiter of a chain of overlapping ranges at once).
 */
static struct lock *lock_blocker(const struct lock *l)
{
	const struct region *r = l->region;
	struct lock *o;

	/* With no exclusive lock held, only an exclusive l can conflict with a held one. */
	if (l->exclusive || r->locks.nheld_exclusive > 0)
		for (o = r->locks.held_head; o; o = o->next)
			if (lock_conflict(o, l))
				return o;
	for (o = l->waiting ? l->prev : r->locks.wait_tail; o; o = o->prev)
		if (lock_conflict(o, l))
			return o;
	return NULL;
}

static void lock_list_append(struct lock **head, struct lock **tail, struct lock *l)
{
	l->next = NULL;
	l->prev = *tail;
	if (*tail)
		(*tail)->next = l;
	else
		*head = l;
	*tail = l;
}

static void lock_list_unlink(struct lock **head, struct lock **tail, struct lock *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		*head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	else
		*tail = l->prev;
	l->prev = l->next = NULL;
}

static void lock_waits_unlink(struct lock *l)
{
	struct conn *c = l->conn;

	if (l->wprev)
		l->wprev->wnext = l->wnext;
	else
		c->lock_waits = l->wnext;
	if (l->wnext)
		l->wnext->wprev = l->wprev;
	l->wprev = l->wnext = NULL;
}

static struct lock *lock_find(struct conn *c, uint64_t id)
{
	struct hnode *node;

	for (node = htab_find_first(&c->locks, htab_hash_u64(id)); node; node = htab_find_next(node)) {
		struct lock *l = htab_entry(node, struct lock, node);

		if (l->id == id)
			return l;
	}
	return NULL;
}

static const char *lock_mode_name(const struct lock *l)
{
	return proto_lock_mode_name(l->exclusive ? PROTO_LOCK_EXCLUSIVE : PROTO_LOCK_SHARED);
}

/* Answers the request of a lock just granted. */
static void lock_reply_granted(struct lock *l, uint64_t id, uint64_t waited_ms)
{
	cJSON *reply = msg_reply_ok(id);

	if (reply && (!cJSON_AddNumberToObject(reply, PROTO_FIELD_LOCK, (double)l->id) ||
	              !cJSON_AddNumberToObject(reply, "waited_ms", (double)waited_ms))) {
		cJSON_Delete(reply);
		reply = NULL;
	}
	reply_send(l->conn, id, reply);
}

/* Makes l held: at the end of its region's held list. */
static void lock_hold(struct lock *l)
{
	struct lock_queue *q = &l->region->locks;

	lock_list_append(&q->held_head, &q->held_tail, l);
	q->nheld++;
	q->nheld_exclusive += l->exclusive;
	l->conn->srv->nlocks++;
	l->since_ms = state_epoch_ms();
}

/* Grants the waiter l and answers its request. */
static void lock_grant(struct lock *l)
{
	struct lock_queue *q = &l->region->locks;
	struct conn *c = l->conn;

	lock_list_unlink(&q->wait_head, &q->wait_tail, l);
	q->nwaiting--;
	c->srv->nlock_waiters--;
	lock_waits_unlink(l);
	l->waiting = false;
	timer_free(l->timeout);
	l->timeout = NULL;
	lock_hold(l);
	lock_reply_granted(l, l->req_id, state_now_ms() - l->queued_ms);
	conn_parked_done(c);
}

/* What a removed lock was, for lock_process. */
struct lock_gone {
	uint64_t offset, end;
	bool exclusive;
	struct lock *next;            /* the first waiter behind it */
};

static bool lock_gone_touches(const struct lock_gone *g, const struct lock *w)
{
	return (g->exclusive || w->exclusive) && g->offset < w->end && w->offset < g->end;
}

/*
 * Grants, in queue order, every waiter of r that nothing ahead of it blocks any more once
 * the lock g describes is gone; g NULL: any waiter may have been freed (a closing
 * connection's locks were all taken out).
 */
static void lock_process(struct region *r, const struct lock_gone *g)
{
	struct lock *l = g ? g->next : r->locks.wait_head;

	while (l) {
		struct lock *next = l->next;
		bool covers = g && l->exclusive && l->offset <= g->offset && l->end >= g->end;

		if ((!g || lock_gone_touches(g, l)) && !lock_blocker(l))
			lock_grant(l);
		if (covers)
			break;
		l = next;
	}
}

/* ---- the wait-for graph ------------------------------------------------------------------ */

static uint64_t lock_edge_hash(const struct conn *from, const struct conn *to)
{
	return htab_hash_u64((uint64_t)(uintptr_t)from * 31 + (uint64_t)(uintptr_t)to);
}

static struct lock_edge *lock_edge_find(struct region *r, struct conn *from, struct conn *to)
{
	struct hnode *node;

	for (node = htab_find_first(&r->locks.edges, lock_edge_hash(from, to)); node;
	     node = htab_find_next(node)) {
		struct lock_edge *e = htab_entry(node, struct lock_edge, node);

		if (e->from == from && e->to == to)
			return e;
	}
	return NULL;
}

/* A new edge record with no pairs yet, or NULL on ENOMEM. */
static struct lock_edge *lock_edge_new(struct region *r, struct conn *from, struct conn *to)
{
	struct lock_edge *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	if (htab_insert(&r->locks.edges, &e->node, lock_edge_hash(from, to)) < 0) {
		free(e);
		return NULL;
	}
	e->from = from;
	e->to = to;
	e->region = r;
	e->out_next = from->lock_out;
	if (e->out_next)
		e->out_next->out_prev = e;
	from->lock_out = e;
	e->in_next = to->lock_in;
	if (e->in_next)
		e->in_next->in_prev = e;
	to->lock_in = e;
	return e;
}

static void lock_edge_free(struct lock_edge *e)
{
	struct lock_queue *q = &e->region->locks;

	if (e->out_prev)
		e->out_prev->out_next = e->out_next;
	else
		e->from->lock_out = e->out_next;
	if (e->out_next)
		e->out_next->out_prev = e->out_prev;
	if (e->in_prev)
		e->in_prev->in_next = e->in_next;
	else
		e->to->lock_in = e->in_next;
	if (e->in_next)
		e->in_next->in_prev = e->in_prev;
	htab_remove(&q->edges, &e->node);
	/* A region whose waiters are all gone gives its bucket array back. */
	if (q->edges.count == 0)
		htab_done(&q->edges);
	free(e);
}

/*
 * Adds delta (+1 or -1) to the pairs between l and the locks of its region it conflicts
 * with: those ahead of l when it waits (l's connection waits for theirs) and the waiters
 * behind it (theirs wait for l's). Locks of l's own connection form no pair. Stops before
 * the lock stop (NULL: goes through the region). Returns 0, or -ENOMEM when a new edge
 * record could not be made (delta +1 only) with *ret_at the lock it stopped at.
 */
static int lock_pairs_add(struct lock *l, int delta, const struct lock *stop,
                          const struct lock **ret_at)
{
	struct region *r = l->region;
	struct lock *list[2] = { r->locks.held_head, r->locks.wait_head };
	struct lock_edge *e = NULL;
	bool behind = !l->waiting;
	struct lock *o;
	int k;

	/* A held l has no pair with another held lock: only the waiters, all behind it. */
	for (k = behind ? 1 : 0; k < 2; k++) {
		for (o = list[k]; o && o != stop; o = o->next) {
			struct conn *from = behind ? o->conn : l->conn;
			struct conn *to = behind ? l->conn : o->conn;

			if (o == l) {
				behind = true;
				continue;
			}
			if (o->conn == l->conn || !lock_conflict(o, l))
				continue;
			/* Runs of one connection's locks share a record: look it up once a run. */
			if (!e || e->from != from || e->to != to)
				e = lock_edge_find(r, from, to);
			if (!e) {
				assert(delta > 0);
				e = lock_edge_new(r, from, to);
				if (!e) {
					*ret_at = o;
					return -ENOMEM;
				}
			}
			assert(delta > 0 || e->pairs > 0);
			e->pairs += (uint64_t)(int64_t)delta;
			if (e->pairs == 0) {
				lock_edge_free(e);
				e = NULL;
			}
		}
	}
	return 0;
}

/* A growable stack of connections for the deadlock search. */
struct lock_stack {
	struct conn **items;
	size_t n, cap;
};

/* Marks x and pushes it. Returns 0 or -ENOMEM. */
static int lock_stack_push(struct lock_stack *st, struct conn *x, uint64_t mark)
{
	x->wait_mark = mark;
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		struct conn **items = realloc(st->items, cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		st->items = items;
		st->cap = cap;
	}
	st->items[st->n++] = x;
	return 0;
}

/*
 * Searches the wait-for graph for a cycle through c, whose new waiter was just queued with
 * its edges: each connection reachable from c once (wait_mark), each edge record once. The
 * graph had no cycle before, so any cycle found goes through the new edges. Returns 1 (with
 * *ret_via: a connection on the cycle that waits for c), 0, or -ENOMEM.
 */
static int lock_would_deadlock(struct conn *c, struct conn **ret_via)
{
	uint64_t mark = ++c->srv->wait_mark;
	struct lock_stack st = { NULL, 0, 0 };
	const struct lock_edge *e;
	int ret = lock_stack_push(&st, c, mark);

	while (ret == 0 && st.n > 0) {
		struct conn *x = st.items[--st.n];

		for (e = x->lock_out; e && ret == 0; e = e->out_next) {
			if (e->to == c) {
				*ret_via = x;
				ret = 1;
			} else if (e->to->wait_mark != mark) {
				ret = lock_stack_push(&st, e->to, mark);
			}
		}
	}
	free(st.items);
	return ret;
}

/* ---- taking locks out -------------------------------------------------------------------- */

/* Takes l out of everything (but the wait-for graph) and frees it; the caller processes and
 * unreferences region. */
/*
 * Frees l. A shadow's bits in the control page are cleared too, unless keep_bits: the page
 * holds its lock again.
 */
static void lock_free_keep(struct lock *l, bool keep_bits)
{
	struct lock_queue *q = &l->region->locks;
	struct conn *c = l->conn;

	if (l->fast_slot >= 0) {
		q->nshadow--;
		if (!keep_bits)
			control_drop(l->region->ctl, (unsigned)l->fast_slot, l->exclusive);
	}
	if (l->waiting) {
		lock_list_unlink(&q->wait_head, &q->wait_tail, l);
		q->nwaiting--;
		c->srv->nlock_waiters--;
		lock_waits_unlink(l);
		conn_parked_done(c);
	} else {
		lock_list_unlink(&q->held_head, &q->held_tail, l);
		q->nheld--;
		q->nheld_exclusive -= l->exclusive;
		c->srv->nlocks--;
	}
	htab_remove(&c->locks, &l->node);
	c->nlocks--;
	timer_free(l->timeout);
	free(l);
}

static void lock_free(struct lock *l)
{
	lock_free_keep(l, false);
}

/* ---- the control page ---------------------------------------------------------------------- */

/* An id for a shadow of c: the one the holder wrote, unless unusable. */
static uint64_t lock_shadow_id(struct conn *c, uint64_t wanted)
{
	uint64_t id = wanted;

	if (id >= CTL_FAST_ID_BASE && id <= CTL_FAST_ID_MAX && !lock_find(c, id))
		return id;
	/* A scribbled or reused id: one of the top ids, which a client makes last. */
	for (id = CTL_FAST_ID_MAX; lock_find(c, id); id--)
		;
	return id;
}

/* Makes the fast-path lock of slot (exclusive or its shared ones) a held lock of its
 * connection. A slot nobody holds has its bits cleared instead. Returns 0 or -ENOMEM. */
static int lock_shadow_add(struct region *r, unsigned slot, bool exclusive)
{
	struct ctlpage *p = control_page(r->ctl);
	struct conn *c = control_slot_conn(r->ctl, slot);
	struct lock *l;

	if (!c) {
		control_drop(r->ctl, slot, exclusive);
		return 0;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->conn = c;
	l->region = r;
	l->end = UINT64_MAX;
	l->exclusive = exclusive;
	l->fast_slot = (int)slot;
	l->id = lock_shadow_id(c, atomic_load_explicit(exclusive ? &p->slots[slot].excl_id
	                                                         : &p->slots[slot].shared_id,
	                                               memory_order_relaxed));
	if (htab_insert(&c->locks, &l->node, htab_hash_u64(l->id)) < 0) {
		free(l);
		return -ENOMEM;
	}
	c->nlocks++;
	region_ref(r);
	lock_hold(l);
	/* Held since the daemon took it over: the page keeps no clock. */
	r->locks.nshadow++;
	return 0;
}

/*
 * When r's daemon-managed locks are down to shadows and nobody waits, gives the page its
 * locks back: the shadows go (their bits stay) and CTL_DAEMON is cleared.
 */
static void lock_unmanage_if_idle(struct region *r)
{
	struct lock *l, *next;

	if (!control_managed(r->ctl) || r->locks.nwaiting > 0 ||
	    r->locks.nheld > r->locks.nshadow)
		return;
	region_ref(r);
	for (l = r->locks.held_head; l; l = next) {
		next = l->next;
		lock_free_keep(l, true);
		region_unref(r);
	}
	control_unmanage(r->ctl);
	region_unref(r);
}

/*
 * Takes r's locks over from its control page, if it has one and the daemon does not manage
 * them yet: the page's holders become shadows. Returns 0, or -EAGAIN (the page kept changing)
 * or -ENOMEM, and then nothing changed.
 */
static int lock_manage(struct region *r)
{
	uint64_t w;
	unsigned s;
	int ret = control_manage(r->ctl, &w);

	if (ret <= 0)
		return ret;
	ret = 0;
	if (w & CTL_EXCL)
		ret = lock_shadow_add(r, (unsigned)((w & CTL_OWNER_MASK) >> CTL_OWNER_SHIFT), true);
	for (s = 0; ret == 0 && s < CTLPAGE_SLOTS; s++)
		if (w & (1ull << s))
			ret = lock_shadow_add(r, s, false);
	if (ret < 0)
		lock_unmanage_if_idle(r);
	return ret;
}

int lock_control_attached(struct region *r)
{
	return r->locks.nheld > 0 || r->locks.nwaiting > 0 ? lock_manage(r) : 0;
}

/* True when a waiter of l's region conflicts with the held lock l. */
static bool lock_waited_for(const struct lock *l)
{
	const struct lock *w;

	for (w = l->region->locks.wait_head; w; w = w->next)
		if (lock_conflict(w, l))
			return true;
	return false;
}

/* Removes l (held or waiting), tells the region's subscribers when a waited-for lock went,
 * and grants whoever can go now. */
static void lock_drop(struct lock *l)
{
	struct region *r = l->region;
	bool announce = !l->waiting && lock_waited_for(l);
	uint64_t offset = l->offset, length = l->length;
	struct lock_gone gone = {
		l->offset, l->end, l->exclusive, l->waiting ? l->next : r->locks.wait_head
	};

	(void)lock_pairs_add(l, -1, NULL, NULL);
	lock_free(l);
	if (announce) {
		cJSON *event = notify_event_new(r, proto_event_name(PROTO_EVENT_UNLOCKED));

		if (event && cJSON_AddNumberToObject(event, PROTO_FIELD_OFFSET, (double)offset) &&
		    cJSON_AddNumberToObject(event, PROTO_FIELD_LENGTH, (double)length))
			notify_region(r, event, NOTIFY_SUBSCRIBERS, NULL);
		cJSON_Delete(event);
	}
	lock_process(r, &gone);
	lock_unmanage_if_idle(r);
	region_check_idle(r);
	region_unref(r);
}

static void lock_on_timeout(void *data)
{
	struct lock *l = data;

	reply_error(l->conn, l->req_id, ETIMEDOUT, "lock on region '%s' not granted within "
	            "timeout_ms (waited %" PRIu64 " ms)", l->region->name,
	            state_now_ms() - l->queued_ms);
	lock_drop(l);
}

void lock_acquire(struct conn *c, uint64_t id, struct region *r, const struct lock_args *a)
{
	struct server *srv = c->srv;
	struct conn *via = NULL;
	const struct lock *at;
	struct lock *l, *blocker;
	int ret;

	if (c->nlocks >= srv->limits->max_locks_per_client) {
		conn_warn(c, "refused a lock: it holds or waits for max_locks_per_client (%" PRIu64
		          ") locks", srv->limits->max_locks_per_client);
		reply_error(c, id, EAGAIN, "this connection holds or waits for "
		            "max_locks_per_client (%" PRIu64 ") locks", srv->limits->max_locks_per_client);
		return;
	}
	ret = lock_manage(r);
	if (ret < 0) {
		reply_error(c, id, -ret, ret == -EAGAIN ? "the control page of region '%s' keeps "
		            "changing: try again" : "out of memory taking over the locks of region "
		            "'%s'", r->name);
		return;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		reply_nomem(c, id);
		lock_unmanage_if_idle(r);
		return;
	}
	l->conn = c;
	l->region = r;
	l->fast_slot = -1;
	l->offset = a->offset;
	l->length = a->length;
	l->end = a->length ? a->offset + a->length : UINT64_MAX;
	l->exclusive = a->exclusive;
	l->req_id = id;

	blocker = lock_blocker(l);
	if (blocker && !a->wait) {
		reply_error(c, id, EAGAIN, "the range conflicts with lock %" PRIu64 " (%s, %s by "
		            "pid %ld) on region '%s'", blocker->id, lock_mode_name(blocker),
		            blocker->waiting ? "waited for" : "held", (long)blocker->conn->pid,
		            r->name);
		goto fail;
	}
	if (blocker) {
		/* Checked before it touches the graph: the budget bounds what one uid may queue. */
		if (!conn_may_park(c)) {
			reply_budget(c, id, c->budget, BUDGET_LOCK_WAITERS, 1);
			goto fail;
		}
		/* Queued (at the tail) with its edges, it is taken out again on any failure. */
		l->waiting = true;
		lock_list_append(&r->locks.wait_head, &r->locks.wait_tail, l);
		if (lock_pairs_add(l, 1, NULL, &at) < 0) {
			(void)lock_pairs_add(l, -1, at, NULL);
			lock_list_unlink(&r->locks.wait_head, &r->locks.wait_tail, l);
			reply_nomem(c, id);
			goto fail;
		}
		ret = lock_would_deadlock(c, &via);
		if (ret < 0) {
			reply_nomem(c, id);
			goto unqueue;
		}
		if (ret > 0) {
			log_debug("client %llu (pid %ld): lock on '%s' refused: deadlock through pid %ld",
			          (unsigned long long)c->serial, (long)c->pid, r->name, (long)via->pid);
			reply_error(c, id, EDEADLK, "waiting would deadlock: the range is blocked, "
			            "directly or through others, by pid %ld, which waits for a lock "
			            "this connection holds or waits for", (long)via->pid);
			goto unqueue;
		}
		if (a->has_timeout && a->timeout_ms == 0) {
			reply_error(c, id, ETIMEDOUT, "lock on region '%s' not granted within "
			            "timeout_ms (0)", r->name);
			goto unqueue;
		}
	}
	if (htab_insert(&c->locks, &l->node, htab_hash_u64(srv->lock_serial + 1)) < 0) {
		reply_nomem(c, id);
		goto unqueue;
	}
	l->id = ++srv->lock_serial;
	c->nlocks++;
	region_ref(r);
	if (!blocker) {
		lock_hold(l);
		lock_reply_granted(l, id, 0);
		return;
	}
	if (a->has_timeout) {
		l->timeout = timer_start(srv->loop, a->timeout_ms, lock_on_timeout, l);
		if (!l->timeout) {
			reply_nomem(c, id);
			goto unref;
		}
	}
	l->since_ms = state_epoch_ms();
	l->queued_ms = state_now_ms();
	r->locks.nwaiting++;
	srv->nlock_waiters++;
	l->wnext = c->lock_waits;
	if (l->wnext)
		l->wnext->wprev = l;
	c->lock_waits = l;
	conn_parked_add(c);
	return;
unref:
	htab_remove(&c->locks, &l->node);
	c->nlocks--;
	region_unref(r);
unqueue:
	if (l->waiting) {
		(void)lock_pairs_add(l, -1, NULL, NULL);
		lock_list_unlink(&r->locks.wait_head, &r->locks.wait_tail, l);
	}
fail:
	free(l);
	lock_unmanage_if_idle(r);
}

void lock_release(struct conn *c, uint64_t id, uint64_t lock_id)
{
	struct lock *l = lock_find(c, lock_id);

	if (!l || l->waiting) {
		reply_error(c, id, EBADF, "this connection holds no lock %" PRIu64, lock_id);
		return;
	}
	/* The unlock is answered before waiters hear they got the range. */
	reply_ok(c, id);
	lock_drop(l);
}

void lock_conn_release(struct conn *c)
{
	struct region *pending = NULL, **tail = &pending, *r;
	struct htab_iter it;
	struct hnode *node;

	/* Its locks block nobody from now on, and it waits for nobody. */
	while (c->lock_out)
		lock_edge_free(c->lock_out);
	while (c->lock_in)
		lock_edge_free(c->lock_in);
	/* All its locks go first (each region it had some in kept referenced and listed once, in
	 * the order its locks are met), then each such region's queue is examined once. */
	htab_iter_init(&c->locks, &it);
	while ((node = htab_iter_next(&c->locks, &it)) != NULL) {
		struct lock *l = htab_entry(node, struct lock, node);

		r = l->region;
		if (!r->locks.release_pending) {
			r->locks.release_pending = true;
			*tail = r;
			tail = &r->locks.release_next;
			region_ref(r);
		}
		lock_free(l);
		region_unref(r);
	}
	while ((r = pending) != NULL) {
		pending = r->locks.release_next;
		r->locks.release_next = NULL;
		r->locks.release_pending = false;
		lock_process(r, NULL);
		lock_unmanage_if_idle(r);
		region_check_idle(r);
		region_unref(r);
	}
	control_conn_release(c);
}

void lock_conn_cancel_waits(struct conn *c, const char *why)
{
	while (c->lock_waits) {
		struct lock *l = c->lock_waits;

		reply_error(c, l->req_id, ECANCELED, "lock on region '%s' not granted: %s",
		            l->region->name, why);
		lock_drop(l);
	}
}

int lock_manage_all(struct server *srv)
{
	struct region *r;
	int ret = 0;

	for (r = srv->all_regions; r; r = r->next) {
		int one;

		if (!r->ctl)
			continue;
		one = lock_manage(r);
		control_freeze(r->ctl);
		if (one < 0 && ret == 0)
			ret = one;
	}
	return ret;
}

int lock_adopt(struct conn *c, struct region *r, uint64_t id, uint64_t offset, uint64_t length,
               bool exclusive, uint64_t since_ms)
{
	struct server *srv = c->srv;
	struct lock *l;

	if (id == 0 || lock_find(c, id) || (length && offset > UINT64_MAX - length))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->conn = c;
	l->region = r;
	l->fast_slot = -1;
	l->id = id;
	l->offset = offset;
	l->length = length;
	l->end = length ? offset + length : UINT64_MAX;
	l->exclusive = exclusive;
	if (lock_blocker(l)) {
		free(l);
		return -EBUSY;
	}
	if (htab_insert(&c->locks, &l->node, htab_hash_u64(id)) < 0) {
		free(l);
		return -ENOMEM;
	}
	c->nlocks++;
	region_ref(r);
	lock_hold(l);
	/* Held since it was granted, not since this daemon took it over. */
	if (since_ms > 0 && since_ms < l->since_ms)
		l->since_ms = since_ms;
	/* The fast path's ids (the previous daemon's shadows) are the clients' own. */
	if (id > srv->lock_serial && id < CTL_FAST_ID_BASE)
		srv->lock_serial = id;
	return 0;
}

void lock_region_retire(struct region *r)
{
	struct htab_iter it;
	struct hnode *node;

	control_retire(r->ctl);
	/* Only waiters have pairs, and all of them go. */
	htab_iter_init(&r->locks.edges, &it);
	while ((node = htab_iter_next(&r->locks.edges, &it)) != NULL)
		lock_edge_free(htab_entry(node, struct lock_edge, node));
	while (r->locks.wait_head) {
		struct lock *l = r->locks.wait_head;

		reply_error(l->conn, l->req_id, ECANCELED, "region '%s' was deleted while this "
		            "lock waited", r->name);
		lock_free(l);
		region_unref(r);
	}
	lock_unmanage_if_idle(r);
}

/* The object of lock l for the locks op. NULL on ENOMEM. */
static cJSON *lock_to_json(const struct lock *l)
{
	cJSON *obj = cJSON_CreateObject();
	const struct conn *c = l->conn;

	if (!obj)
		return NULL;
	if (!cJSON_AddStringToObject(obj, PROTO_FIELD_REGION, l->region->name) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_LOCK, (double)l->id) ||
	    !cJSON_AddStringToObject(obj, PROTO_FIELD_STATE,
	                             proto_lock_state_name(l->waiting ? PROTO_LOCK_WAITING
	                                                              : PROTO_LOCK_HELD)) ||
	    !cJSON_AddStringToObject(obj, PROTO_FIELD_MODE, lock_mode_name(l)) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_OFFSET, (double)l->offset) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_LENGTH, (double)l->length) ||
	    !cJSON_AddStringToObject(obj, PROTO_FIELD_CLIENT,
	                             c->client_name ? c->client_name : "") ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_PID, (double)c->pid) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_UID, (double)c->uid) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_SINCE_MS, (double)l->since_ms)) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

int lock_region_list(struct region *r, int (*cb)(void *userdata, cJSON *obj), void *userdata)
{
	struct lock *list[2];
	struct lock *l;
	int k, ret;

	/* The fast path's holders are listed as the shadows they become for a moment. */
	ret = lock_manage(r);
	if (ret < 0)
		return ret;
	list[0] = r->locks.held_head;
	list[1] = r->locks.wait_head;
	for (k = 0; k < 2 && ret == 0; k++) {
		for (l = list[k]; l && ret == 0; l = l->next) {
			cJSON *obj = lock_to_json(l);

			ret = obj ? cb(userdata, obj) : -ENOMEM;
		}
	}
	lock_unmanage_if_idle(r);
	return ret;
}

cJSON *lock_conn_held_json(const struct conn *c)
{
	cJSON *arr = cJSON_CreateArray();
	struct htab_iter it;
	struct hnode *node;

	if (!arr)
		return NULL;
	htab_iter_init(&c->locks, &it);
	while ((node = htab_iter_next(&c->locks, &it)) != NULL) {
		const struct lock *l = htab_entry(node, struct lock, node);
		cJSON *obj;

		if (l->waiting)
			continue;
		obj = lock_to_json(l);
		if (!obj ||
		    !cJSON_AddBoolToObject(obj, PROTO_FIELD_ANONYMOUS, l->region->anonymous) ||
		    !cJSON_AddItemToArray(arr, obj)) {
			cJSON_Delete(obj);
			cJSON_Delete(arr);
			return NULL;
		}
	}
	return arr;
}
