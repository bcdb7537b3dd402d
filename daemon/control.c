/* SPDX-License-Identifier: MIT */
/*
 * Control pages and their slots (see control.h). A struct control lives while its region
 * does or a connection has a slot in it; each connection lists its slots (struct
 * control_ref on conn->controls) so that its end clears them in one pass.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include "budget.h"
#include "config.h"
#include "conn.h"
#include "fsdir.h"
#include "state.h"
#include "ctlpage.h"
#include "log.h"
#include "memfd.h"

struct control {
	int fd;
	struct ctlpage *page;
	struct conn *slots[CTLPAGE_SLOTS];
	unsigned used;                /* slots taken */
	bool region_alive;            /* its region still points at it */
	bool managed;                 /* CTL_DAEMON set by us */
	bool frozen;                  /* managed for good (control_freeze) */
	bool log_ready;               /* control_log_init done */
	struct control_relay relay;
	int bell;                     /* the doorbell eventfd, or -1 */
	uv_poll_t *bell_poll;         /* watching it while the region lives */
	bool bell_idle;               /* not watched now: nobody rings it for the daemon
	                                 (control_bell_watch) */
	uv_timer_t *later;            /* control_bell_later's, with bell_poll */
	void (*on_bell)(void *ctx);
	void *bell_ctx;
};

struct control_ref {
	struct control_ref *next;     /* conn->controls */
	struct control *ctl;
	unsigned slot;
};

static int control_new(const char *label, struct control **ret)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	void *map;

	if (!ctl)
		return -ENOMEM;
	ctl->fd = memfd_page_create(label, CTLPAGE_SIZE);
	if (ctl->fd < 0) {
		int r = ctl->fd;

		free(ctl);
		return r;
	}
	map = mmap(NULL, CTLPAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ctl->fd, 0);
	if (map == MAP_FAILED) {
		int r = -errno;

		close(ctl->fd);
		free(ctl);
		return r;
	}
	ctl->page = map;
	ctl->bell = -1;
	ctlpage_format(ctl->page);
	ctl->region_alive = true;
	*ret = ctl;
	return 0;
}

static void control_free_if_unused(struct control *ctl)
{
	if (ctl->region_alive || ctl->used > 0)
		return;
	munmap(ctl->page, CTLPAGE_SIZE);
	close(ctl->fd);
	if (ctl->bell >= 0)
		close(ctl->bell);
	free(ctl);
}

static void control_on_bell_closed(uv_handle_t *h)
{
	free(h);
}

/* Stops watching the doorbell (the descriptor stays: holders may still ring it). */
static void control_bell_stop(struct control *ctl)
{
	if (!ctl->bell_poll)
		return;
	uv_close((uv_handle_t *)ctl->bell_poll, control_on_bell_closed);
	ctl->bell_poll = NULL;
	uv_close((uv_handle_t *)ctl->later, control_on_bell_closed);
	ctl->later = NULL;
}

/* Whether c's uid may take one more slot of ctl: max_control_slots_per_uid, root exempt. */
static bool control_uid_may_take(const struct control *ctl, const struct conn *c)
{
	uint64_t held = 0;
	unsigned i;

	if (budget_uid_exempt(c->srv, (uint32_t)c->uid))
		return true;
	for (i = 0; i < CTLPAGE_SLOTS; i++)
		if (ctl->slots[i] && ctl->slots[i]->uid == c->uid)
			held++;
	return held < c->srv->limits->max_control_slots_per_uid;
}

int control_attach(struct control **ctlp, const char *label, struct conn *c, int *ret_fd,
                   unsigned *ret_slot)
{
	struct control_ref *ref;
	struct control *ctl;
	unsigned slot;
	int r;

	if (!*ctlp) {
		r = control_new(label, ctlp);
		if (r < 0)
			return r;
	}
	ctl = *ctlp;
	for (ref = c->controls; ref; ref = ref->next)
		if (ref->ctl == ctl)
			break;
	if (!ref) {
		if (ctl->used == CTLPAGE_SLOTS)
			return -ENOSPC;
		if (!control_uid_may_take(ctl, c))
			return -EDQUOT;
		ref = malloc(sizeof(*ref));
		if (!ref)
			return -ENOMEM;
		for (slot = 0; ctl->slots[slot]; slot++)
			;
		/* Whatever a former holder or a scribbler left in the slot goes. */
		memset(&ctl->page->slots[slot], 0, sizeof(ctl->page->slots[slot]));
		atomic_store(&ctl->page->slots[slot].pid, (uint32_t)c->pid);
		ctlpage_drop(ctl->page, slot, 0);
		ctlpage_drop(ctl->page, slot, 1);
		ctl->slots[slot] = c;
		ctl->used++;
		ref->ctl = ctl;
		ref->slot = slot;
		ref->next = c->controls;
		c->controls = ref;
	}
	*ret_fd = dup(ctl->fd);
	if (*ret_fd < 0)
		return -errno;
	*ret_slot = ref->slot;
	return 0;
}

int control_listen(struct control **ctlp, const char *label, int *ret_fd)
{
	int r;

	if (!*ctlp) {
		r = control_new(label, ctlp);
		if (r < 0)
			return r;
	}
	/* A fresh open file description, read-only: a subscriber reads the log, nothing more. */
	*ret_fd = fsdir_reopen((*ctlp)->fd, O_RDONLY);
	return *ret_fd < 0 ? *ret_fd : 0;
}

void control_conn_release(struct conn *c)
{
	while (c->controls) {
		struct control_ref *ref = c->controls;
		struct control *ctl = ref->ctl;

		c->controls = ref->next;
		control_drop(ctl, ref->slot, false);
		control_drop(ctl, ref->slot, true);
		atomic_store(&ctl->page->slots[ref->slot].pid, 0);
		ctl->slots[ref->slot] = NULL;
		ctl->used--;
		free(ref);
		control_free_if_unused(ctl);
	}
}

void control_region_gone(struct control *ctl)
{
	if (!ctl)
		return;
	ctl->region_alive = false;
	control_bell_stop(ctl);
	control_free_if_unused(ctl);
}

struct ctlpage *control_page(const struct control *ctl)
{
	return ctl->page;
}

struct conn *control_slot_conn(const struct control *ctl, unsigned slot)
{
	return slot < CTLPAGE_SLOTS ? ctl->slots[slot] : NULL;
}

int control_manage(struct control *ctl, uint64_t *ret_word)
{
	int r;

	if (!ctl || ctl->managed)
		return 0;
	r = ctlpage_manage(ctl->page, ret_word);
	if (r < 0) {
		log_warn("a control page keeps changing under the daemon: its locks stay on the "
		         "fast path for now");
		return r;
	}
	ctl->managed = true;
	return 1;
}

void control_unmanage(struct control *ctl)
{
	if (!ctl || !ctl->managed || ctl->frozen)
		return;
	/* A page that keeps changing stays managed: slower, never wrong. */
	if (ctlpage_unmanage(ctl->page) == 0)
		ctl->managed = false;
}

void control_freeze(struct control *ctl)
{
	if (!ctl)
		return;
	ctl->frozen = true;
	/* Its change log is read by no daemon from now on: writers use the protocol. */
	changelog_close(control_log(ctl));
}

bool control_managed(const struct control *ctl)
{
	return ctl && ctl->managed;
}

void control_retire(struct control *ctl)
{
	if (ctl)
		ctlpage_retire(ctl->page);
}

void control_drop(struct control *ctl, unsigned slot, bool exclusive)
{
	if (slot < CTLPAGE_SLOTS)
		(void)ctlpage_drop(ctl->page, slot, exclusive);
}

struct changelog *control_log(const struct control *ctl)
{
	return ctlpage_log(ctl->page);
}

bool control_log_ready(const struct control *ctl)
{
	return ctl && ctl->log_ready;
}

void control_log_init(struct control *ctl, uint64_t seq, enum changelog_route route)
{
	if (ctl->log_ready)
		return;
	changelog_init(control_log(ctl), seq, route);
	ctl->relay.done = seq;
	ctl->log_ready = true;
}

uint64_t control_seq(const struct control *ctl, uint64_t seq)
{
	uint64_t h;

	if (!control_log_ready(ctl))
		return seq;
	h = changelog_head(control_log(ctl));
	return h > seq ? h : seq;
}

struct control_relay *control_relay(struct control *ctl)
{
	return &ctl->relay;
}

int control_conn_slot(const struct control *ctl, const struct conn *c)
{
	const struct control_ref *ref;

	for (ref = c->controls; ref; ref = ref->next)
		if (ref->ctl == ctl)
			return (int)ref->slot;
	return -1;
}

static void control_on_bell(uv_poll_t *h, int status, int events)
{
	struct control *ctl = h->data;
	uint64_t rings;

	(void)status;
	(void)events;
	/* Whatever the count, one relay reads every entry published so far. */
	if (read(ctl->bell, &rings, sizeof(rings)) < 0 && errno != EAGAIN)
		log_warn("reading a doorbell: %s", strerror(errno));
	ctl->on_bell(ctl->bell_ctx);
}

static void control_on_later(uv_timer_t *t)
{
	struct control *ctl = t->data;

	ctl->on_bell(ctl->bell_ctx);
}

void control_bell_later(struct control *ctl, uint64_t ms)
{
	if (ctl && ctl->later && !uv_is_active((uv_handle_t *)ctl->later))
		uv_timer_start(ctl->later, control_on_later, ms, 0);
}

int control_bell(struct control *ctl, uv_loop_t *loop, void (*on_bell)(void *ctx), void *ctx,
                 int *ret_fd)
{
	int r;

	if (!ctl->region_alive)
		return -ENOENT;
	if (ctl->bell < 0) {
		ctl->bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ctl->bell < 0)
			return -errno;
	}
	if (!ctl->bell_poll) {
		ctl->bell_poll = malloc(sizeof(*ctl->bell_poll));
		ctl->later = malloc(sizeof(*ctl->later));
		if (!ctl->bell_poll || !ctl->later) {
			free(ctl->bell_poll);
			free(ctl->later);
			ctl->bell_poll = NULL;
			ctl->later = NULL;
			return -ENOMEM;
		}
		r = uv_poll_init(loop, ctl->bell_poll, ctl->bell);
		if (r == 0 && !ctl->bell_idle)
			r = uv_poll_start(ctl->bell_poll, UV_READABLE, control_on_bell);
		if (r < 0) {
			free(ctl->bell_poll);
			free(ctl->later);
			ctl->bell_poll = NULL;
			ctl->later = NULL;
			return -ENOMEM;
		}
		uv_timer_init(loop, ctl->later);
		ctl->bell_poll->data = ctl;
		ctl->later->data = ctl;
	}
	ctl->on_bell = on_bell;
	ctl->bell_ctx = ctx;
	*ret_fd = dup(ctl->bell);
	return *ret_fd < 0 ? -errno : 0;
}

void control_bell_watch(struct control *ctl, bool on)
{
	if (!ctl || ctl->bell_idle == !on)
		return;
	ctl->bell_idle = !on;
	if (!ctl->bell_poll)
		return;
	if (on)
		uv_poll_start(ctl->bell_poll, UV_READABLE, control_on_bell);
	else
		uv_poll_stop(ctl->bell_poll);
}

void control_listeners(struct control *ctl, uint32_t n)
{
	if (control_log_ready(ctl))
		atomic_store_explicit(&control_log(ctl)->listeners, n, memory_order_seq_cst);
}

void control_ring(struct control *ctl)
{
	if (ctl && ctl->bell >= 0 && ctl->log_ready &&
	    atomic_load_explicit(&control_log(ctl)->listeners, memory_order_relaxed) != 0)
		(void)changelog_ring(ctl->bell);
}
