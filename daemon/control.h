/* SPDX-License-Identifier: MIT */
/*
 * The daemon's side of the control pages (shared/ctlpage.h, docs/coordination.md "The control
 * page"): a region's page is made the first time a connection holding a read-write grant asks
 * for it, and each such connection gets a slot, kept until the connection ends. The lock
 * manager (lock.c) decides when the daemon takes the region's locks over (CTL_DAEMON) and
 * back; this module keeps the page, the slots and who holds them, and clears a slot's locks
 * when its connection goes. Nothing here waits for what a client writes into the page. It also
 * keeps the change log's doorbell (an eventfd the daemon watches) for relay.c.
 */
#ifndef MMAPD_DAEMON_CONTROL_H
#define MMAPD_DAEMON_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "changelog.h"

struct conn;
struct control;
struct ctlpage;

/*
 * Gives c a slot in the control page *ctlp (made, labelled label, when *ctlp is NULL) and a
 * descriptor of the page (ret_fd, the caller's). c keeps the slot it has. Returns 0,
 * -ENOSPC (every slot taken), -EDQUOT (c's uid holds max_control_slots_per_uid slots of it
 * already: one user cannot take a page's slots from the others), or -errno.
 */
int control_attach(struct control **ctlp, const char *label, struct conn *c, int *ret_fd,
                   unsigned *ret_slot);

/*
 * A read-only descriptor of the control page *ctlp (made, labelled label, when *ctlp is NULL)
 * for a page subscriber (ret_fd, the caller's): no slot. Returns 0 or -errno.
 */
int control_listen(struct control **ctlp, const char *label, int *ret_fd);
/* c is going away: clears the locks of each of its slots, wakes sleepers, frees the slots. */
void control_conn_release(struct conn *c);

/* The region of ctl is freed: the page goes with the last slot. ctl may be NULL. */
void control_region_gone(struct control *ctl);

struct ctlpage *control_page(const struct control *ctl);
/* The connection holding slot, or NULL (free, or out of range). */
struct conn *control_slot_conn(const struct control *ctl, unsigned slot);

/*
 * The take-over (lock.c): control_manage sets CTL_DAEMON and returns 1 with the word as it was
 * (its holders are the daemon's to keep from now on), 0 when ctl is NULL or already managed,
 * -EAGAIN when the page kept changing; control_unmanage hands the locks back.
 */
int control_manage(struct control *ctl, uint64_t *ret_word);
void control_unmanage(struct control *ctl);
/* Keeps ctl managed for good: the locks were handed over to the next daemon, which does not
 * know this page (its clients ask that daemon for every lock and unlock). */
void control_freeze(struct control *ctl);
bool control_managed(const struct control *ctl);

/* The region of ctl was deleted: its fast path is closed (clients ask by name again). ctl may
 * be NULL. */
void control_retire(struct control *ctl);

/* Clears slot's exclusive lock or shared bit in the page and wakes sleepers. */
void control_drop(struct control *ctl, unsigned slot, bool exclusive);

/*
 * The change log (changelog.h) in the page's later pages. control_log_init sets it up once,
 * before the page is first passed (later calls do nothing); until then the region's seq is the
 * daemon's alone.
 */
struct changelog *control_log(const struct control *ctl);
bool control_log_ready(const struct control *ctl);
void control_log_init(struct control *ctl, uint64_t seq, enum changelog_route route);

/* The later of seq (the region's, as the daemon counted) and the head of ctl's log (may be NULL). */
uint64_t control_seq(const struct control *ctl, uint64_t seq);

/* A change reported through the protocol, published in the log and not relayed yet. */
#define CONTROL_RELAY_PENDING 16
#define CONTROL_WRITER_NAME_MAX 64   /* hello's client name is at most this long */
struct control_pending {
	uint64_t seq;
	uint64_t serial;              /* its connection */
	long pid;
	char name[CONTROL_WRITER_NAME_MAX + 1];
};

/* What the relay (relay.c) read of the log so far: its state, kept with the page. */
struct control_relay {
	struct control_pending pending[CONTROL_RELAY_PENDING];
	unsigned npending;
	uint64_t done;                /* every change up to this seq was relayed or reported lost */
	uint64_t stuck;               /* a seq found reserved but not published (0: none) */
	uint64_t stuck_ms;            /* since when (the loop's clock) */
};
struct control_relay *control_relay(struct control *ctl);

/* c's slot in ctl's page, or -1 (c has none). */
int control_conn_slot(const struct control *ctl, const struct conn *c);

/*
 * The doorbell of ctl: an eventfd that writers of the log ring (write 1) when the daemon must
 * read it. Made on first use and watched on loop while the region lives: on_bell(ctx) runs when
 * it rang. Returns a descriptor of it (ret_fd, the caller's), or -ENOENT (the region is gone),
 * -errno.
 */
int control_bell(struct control *ctl, uv_loop_t *loop, void (*on_bell)(void *ctx), void *ctx,
                 int *ret_fd);
/* Runs the doorbell's on_bell in ms, once, unless it is armed already (or there is no doorbell
 * yet: then nobody rang). ctl may be NULL. */
void control_bell_later(struct control *ctl, uint64_t ms);

/*
 * Whether the daemon watches the doorbell (made or not yet): off while nobody rings it for the
 * daemon (route none: only page subscribers listen), so their rings do not wake it.
 */
void control_bell_watch(struct control *ctl, bool on);
/* Sets the log's listeners word (page subscriptions) to n, once the log is set up. */
void control_listeners(struct control *ctl, uint32_t n);
/* Rings the doorbell for the page subscribers (after the daemon published a change), when
 * there are any. ctl may be NULL. */
void control_ring(struct control *ctl);

#endif
