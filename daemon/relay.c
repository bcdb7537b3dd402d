/* SPDX-License-Identifier: MIT */
/*
 * The relay of the change log (see relay.h). Its cursor (what was relayed) lives with the page
 * in struct control_relay; an entry found reserved but not published stops a run, until a run
 * RELAY_STUCK_MS later still finds it so and reports it lost (its writer died, or scribbles).
 *
 * Order. Events of changes go out in seq order, whichever path reported them: a `changed`
 * request is published in the log and waits in the pending table until the relay reaches it.
 * When the table is full (CONTROL_RELAY_PENDING requests behind an entry not published), the
 * entries that stop it are reported lost at once instead of after RELAY_STUCK_MS, and the run
 * goes on. The one exception is a log whose head was scribbled up to CHANGELOG_SEQ_MAX (only a
 * holder of that region's page can do that): changes then go out at once with the last seq.
 */
#include "relay.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "conn.h"
#include "control.h"
#include "ctlpage.h"
#include "flush.h"
#include "notify.h"
#include "region.h"
#include "state.h"

/* Reads of an entry reserved but not published before a protocol change goes ahead of it. */
#define RELAY_SPINS 4096
/* How long an entry may stay reserved but not published before it is reported lost. */
#define RELAY_STUCK_MS 100

/* The seq after r's, saturating at the last one JSON carries (a head scribbled that far). */
static uint64_t relay_next_seq(struct region *r)
{
	return r->seq < CHANGELOG_SEQ_MAX ? r->seq + 1 : r->seq;
}

/* Who needs to hear of r's changes besides the readers of the page. */
static enum changelog_route relay_route_of(const struct region *r)
{
	enum policy_kind kind = r->anonymous ? POLICY_MANUAL : r->flush.policy.kind;

	/* "always" answers the change once it is durable: only a request can wait for that. */
	if (kind == POLICY_ALWAYS)
		return CHANGELOG_ROUTE_PROTOCOL;
	/* Page subscribers read the log themselves: only the others need the daemon. */
	return r->nsubs > r->npage_subs || kind != POLICY_MANUAL ? CHANGELOG_ROUTE_DOORBELL
	                                              : CHANGELOG_ROUTE_NONE;
}

void relay_page_ready(struct region *r)
{
	control_log_init(r->ctl, r->seq, relay_route_of(r));
}

void relay_route(struct region *r)
{
	enum changelog_route route = relay_route_of(r);
	struct changelog *log;
	uint32_t old;

	if (!control_log_ready(r->ctl))
		return;
	log = control_log(r->ctl);
	old = atomic_load_explicit(&log->route, memory_order_relaxed);
	/* A log closed at a handover stays so (control_freeze). */
	do {
		if (old == CHANGELOG_ROUTE_GONE)
			return;
	} while (!atomic_compare_exchange_weak_explicit(&log->route, &old, route,
	                                                memory_order_seq_cst,
	                                                memory_order_relaxed));
	/*
	 * Nobody needed the changes published so far: the relay starts at the head, read after the
	 * new route is visible (writers read the route after reserving their seq, so every change
	 * past this head sees it and rings).
	 */
	if (old == CHANGELOG_ROUTE_NONE && route != CHANGELOG_ROUTE_NONE) {
		struct control_relay *rl = control_relay(r->ctl);

		rl->done = changelog_head(log);
		rl->stuck = 0;
		atomic_store_explicit(&log->relayed, rl->done, memory_order_release);
	}
	/* Rings meant for page subscribers alone do not wake the daemon. */
	control_bell_watch(r->ctl, route == CHANGELOG_ROUTE_DOORBELL);
}

uint64_t relay_seq(struct region *r)
{
	r->seq = control_seq(r->ctl, r->seq);
	return r->seq;
}

/* Relays change ch of r (read from the log, not relayed yet). */
static void relay_change(struct region *r, struct control_relay *rl,
                         const struct changelog_change *ch)
{
	struct conn *c = control_slot_conn(r->ctl, ch->slot);
	struct notify_writer w = { .pid = (long)ch->pid, .name = "" };
	unsigned i;

	/* A change of the protocol: its request counted it; its writer is known. */
	for (i = 0; i < rl->npending; i++) {
		struct control_pending *p = &rl->pending[i];

		if (p->seq == ch->seq) {
			w.serial = p->serial;
			w.pid = p->pid;
			w.name = p->name;
			notify_changed_by(r, &w, ch->seq, ch->offset, ch->length);
			*p = rl->pending[--rl->npending];
			return;
		}
	}
	/* The slot's connection is who wrote it as far as the daemon can tell (a holder of the
	 * page may write any slot and pid: that is its own region's business). */
	if (c) {
		w.serial = c->serial;
		w.pid = (long)c->pid;
		w.name = c->client_name ? c->client_name : "";
	}
	notify_changed_by(r, &w, ch->seq, ch->offset, ch->length);
	flush_count_change(NULL, 0, r, ch->seq, ch->length);
}

/* Forgets the protocol changes the relay passed over (reported lost). */
static void relay_forget_pending(struct control_relay *rl)
{
	unsigned i = 0;

	while (i < rl->npending)
		if (rl->pending[i].seq <= rl->done)
			rl->pending[i] = rl->pending[--rl->npending];
		else
			i++;
}

/*
 * Relays what the log holds up to its head. An entry reserved but not published stops the run
 * for RELAY_STUCK_MS, unless force: then it is reported lost at once.
 */
static void relay_run_to(struct region *r, bool force)
{
	struct control_relay *rl;
	struct changelog *log;
	uint64_t head, size, s, lost = 0;

	if (!control_log_ready(r->ctl))
		return;
	region_ref(r);
	log = control_log(r->ctl);
	rl = control_relay(r->ctl);
	head = changelog_head(log);
	if (head < rl->done) {
		/* Scribbled backwards: start again from there. */
		rl->done = head;
		rl->stuck = 0;
	}
	if (head - rl->done > CHANGELOG_ENTRIES) {
		/* The ring lapped the relay: what it cannot read any more is an overflow. */
		rl->done = head - CHANGELOG_ENTRIES;
		lost = rl->done;
	}
	size = region_size(r);
	for (s = rl->done + 1; s <= head; s++) {
		struct changelog_change ch;
		int ret = changelog_read(log, s, &ch);

		if (ret == -EAGAIN) {
			/* Its writer rings once it published it; one that never does (it died
			 * there, or scribbles) loses it after RELAY_STUCK_MS. */
			if (rl->stuck != s) {
				rl->stuck = s;
				rl->stuck_ms = uv_now(r->srv->loop);
			}
			if (!force && uv_now(r->srv->loop) - rl->stuck_ms < RELAY_STUCK_MS) {
				/* Not forgotten if nothing rings again. */
				control_bell_later(r->ctl, RELAY_STUCK_MS + 1);
				break;
			}
		}
		rl->done = s;
		if (ret < 0 || ch.length == 0 || ch.offset > size || ch.length > size - ch.offset) {
			lost = s;              /* unreadable, or a range no writer could report */
			continue;
		}
		if (ch.flags & CHANGELOG_RELAYED)
			continue;
		if (lost) {
			notify_lost(r, lost);
			lost = 0;
		}
		relay_change(r, rl, &ch);
	}
	if (lost)
		notify_lost(r, lost);
	relay_forget_pending(rl);
	atomic_store_explicit(&log->relayed, rl->done, memory_order_release);
	(void)relay_seq(r);
	relay_route(r);
	region_unref(r);
}

void relay_run(struct region *r)
{
	relay_run_to(r, false);
}

bool relay_publish(struct region *r, struct conn *c, uint64_t offset, uint64_t length,
                   uint64_t *ret_seq)
{
	struct control_relay *rl;
	struct control_pending *p;
	struct changelog *log;
	uint64_t seq;
	int slot, spins;

	if (!control_log_ready(r->ctl)) {
		*ret_seq = ++r->seq;
		return false;
	}
	log = control_log(r->ctl);
	rl = control_relay(r->ctl);
	/*
	 * Too many protocol changes wait behind a change reserved but not published: what stops
	 * them is reported lost now rather than after RELAY_STUCK_MS, so that they, and this one,
	 * go out in seq order (a change never goes ahead of an earlier one).
	 */
	/* Seqs never go back, whatever was scribbled into the head. */
	if (changelog_head(log) < r->seq)
		atomic_store_explicit(&log->head, r->seq, memory_order_seq_cst);
	if (rl->npending == CONTROL_RELAY_PENDING)
		relay_run_to(r, true);
	/* Only a head scribbled back below them keeps them waiting still: lost, then. */
	if (rl->npending == CONTROL_RELAY_PENDING) {
		notify_lost(r, r->seq);
		rl->npending = 0;
	}
	/* Its slot, or its page subscription's tag: what its page reader leaves out. */
	slot = control_conn_slot(r->ctl, c);
	seq = changelog_publish(log, offset, length, (uint32_t)c->pid,
	                        slot < 0 ? notify_page_tag(c, r) : (unsigned)slot, 0);
	if (seq == 0) {
		/* A head scribbled up to the end of the seqs. */
		r->seq = *ret_seq = relay_next_seq(r);
		return false;
	}
	control_ring(r->ctl);
	p = &rl->pending[rl->npending++];
	p->seq = seq;
	p->serial = c->serial;
	p->pid = (long)c->pid;
	snprintf(p->name, sizeof(p->name), "%s", c->client_name ? c->client_name : "");
	/*
	 * Its events go out in order, so the relay reads the log up to it now. A writer between
	 * reserving and publishing a change before it is a few stores away, unless it was
	 * preempted there (or died): a bounded spin, then the next ring of the doorbell.
	 */
	relay_run(r);
	for (spins = 0; rl->done < seq && spins < RELAY_SPINS; spins++) {
		struct changelog_change ch;

		if (changelog_read(log, rl->done + 1, &ch) != -EAGAIN) {
			relay_run(r);
			spins = 0;
		}
	}
	if (seq > r->seq)
		r->seq = seq;
	*ret_seq = seq;
	return true;
}

uint64_t relay_publish_external(struct region *r, uint64_t size)
{
	struct changelog *log;
	uint64_t seq;

	if (!control_log_ready(r->ctl))
		return r->seq = relay_next_seq(r);
	/* The changes published before it go out before it. */
	relay_run(r);
	log = control_log(r->ctl);
	if (changelog_head(log) < r->seq)
		atomic_store_explicit(&log->head, r->seq, memory_order_seq_cst);
	seq = changelog_publish(log, 0, size, 0, CHANGELOG_DAEMON,
	                        CHANGELOG_RELAYED | CHANGELOG_EXTERNAL);
	/* Page subscribers read it from the log: they hear of it at this ring. */
	control_ring(r->ctl);
	r->seq = seq > r->seq ? seq : relay_next_seq(r);
	return r->seq;
}

static void relay_on_bell(void *ctx)
{
	relay_run(ctx);
}

int relay_listen(struct region *r, int *ret_page_fd, int *ret_bell_fd)
{
	int ret = control_listen(&r->ctl, "mmapd-control", ret_page_fd);

	if (ret < 0)
		return ret;
	relay_page_ready(r);
	ret = control_bell(r->ctl, r->srv->loop, relay_on_bell, r, ret_bell_fd);
	if (ret < 0)
		close(*ret_page_fd);
	return ret;
}

int relay_bell(struct region *r, struct conn *c, int *ret_fd)
{
	if (!control_log_ready(r->ctl))
		return -ENOENT;
	if (control_conn_slot(r->ctl, c) < 0)
		return -EACCES;
	return control_bell(r->ctl, r->srv->loop, relay_on_bell, r, ret_fd);
}
