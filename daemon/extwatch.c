/* SPDX-License-Identifier: MIT */
/*
 * The external watch (see extwatch.h). Each watched region has one struct xwatch: the file's
 * last seen size, mtime and ctime, and its inotify watch descriptor, found by that number in a
 * table when the kernel reports. Two regions of one inode (the same file under two
 * descriptors) get the same watch descriptor from the kernel: both are in the table under it,
 * both hear its events, and the watch is removed with the last of them.
 *
 * Hearing the owner's hook can end watches (a subscriber whose connection breaks), so the
 * watches found changed are first collected, each held by a reference, and only then reported.
 */
#include "extwatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "htab.h"
#include "log.h"
#include "region.h"
#include "state.h"

#define EXTWATCH_MASK (IN_MODIFY | IN_ATTRIB)

struct xwatch {
	struct hnode node;            /* in x->by_wd, while wd >= 0 */
	struct xwatch *prev, *next;   /* x->all */
	struct xwatch *hit_next;      /* x's list of watches found changed, while hit */
	struct region *region;
	unsigned refs;
	int wd;                       /* inotify's, or -1: polled only */
	bool hit;
	bool written;                 /* inotify reported IN_MODIFY since the last report */
	uint64_t size;
	struct timespec mtime, ctime;
};

struct extwatch {
	struct server *srv;
	extwatch_fn *changed;
	struct xwatch *all;
	size_t count, inotified;
	struct htab by_wd;
	struct xwatch *hits;
	int ifd;                      /* the inotify descriptor, or -1 */
	uv_poll_t poll;
	bool poll_active;
	uv_timer_t timer;
	bool timer_init;
	uint64_t interval_ms;         /* the timer's period as started */
	bool stopped;                 /* extwatch_stop: no handle is made any more */
	int inotify_err;              /* inotify could not be set up: -errno, else 0 */
	unsigned closing;             /* handles whose close has not ended yet */
	bool done;                    /* extwatch_done: freed once nothing is closing */
};

int extwatch_init(struct server *srv, extwatch_fn *changed)
{
	struct extwatch *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->srv = srv;
	x->changed = changed;
	x->ifd = -1;
	htab_init(&x->by_wd);
	srv->extwatch = x;
	return 0;
}

/* Frees x once its handles are closed. */
static void extwatch_free(struct extwatch *x)
{
	if (x->ifd >= 0)
		close(x->ifd);
	htab_done(&x->by_wd);
	free(x);
}

static void extwatch_on_closed(uv_handle_t *handle)
{
	struct extwatch *x = handle->data;

	if (--x->closing == 0 && x->done)
		extwatch_free(x);
}

void extwatch_stop(struct server *srv)
{
	struct extwatch *x = srv->extwatch;

	if (!x)
		return;
	x->stopped = true;
	if (x->poll_active) {
		x->closing++;
		uv_close((uv_handle_t *)&x->poll, extwatch_on_closed);
		x->poll_active = false;
	}
	if (x->timer_init) {
		x->closing++;
		uv_close((uv_handle_t *)&x->timer, extwatch_on_closed);
		x->timer_init = false;
	}
}

void extwatch_done(struct server *srv)
{
	struct extwatch *x = srv->extwatch;

	if (!x)
		return;
	if (x->all)
		log_error("external watches still held at exit (first: '%s')", x->all->region->name);
	srv->extwatch = NULL;
	extwatch_stop(srv);
	/* Handles still closing free it from their close callback (the loop's next turn). */
	x->done = true;
	if (x->closing == 0)
		extwatch_free(x);
}

static bool ts_equal(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Remembers what st says of w's file. */
static void xwatch_take(struct xwatch *w, const struct stat *st)
{
	w->size = (uint64_t)st->st_size;
	w->mtime = st->st_mtim;
	w->ctime = st->st_ctim;
}

/*
 * Reads w's file again. Returns true when its size, mtime or ctime moved since last time (or
 * w->written is set), and remembers them. An fstat that fails reports nothing.
 */
static bool xwatch_check(struct xwatch *w)
{
	struct stat st;
	bool moved;

	if (fstat(w->region->fd, &st) < 0)
		return false;
	moved = w->written || (uint64_t)st.st_size != w->size || !ts_equal(&st.st_mtim, &w->mtime) ||
	        !ts_equal(&st.st_ctim, &w->ctime);
	w->written = false;
	xwatch_take(w, &st);
	return moved;
}

/* Marks w found changed (held until extwatch_report). */
static void xwatch_hit(struct extwatch *x, struct xwatch *w)
{
	if (w->hit)
		return;
	w->hit = true;
	w->refs++;
	w->hit_next = x->hits;
	x->hits = w;
}

static void xwatch_free(struct extwatch *x, struct xwatch *w)
{
	bool shared = false;

	if (w->wd >= 0) {
		struct hnode *node;

		htab_remove(&x->by_wd, &w->node);
		for (node = htab_find_first(&x->by_wd, (uint64_t)w->wd); node;
		     node = htab_find_next(node))
			shared |= htab_entry(node, struct xwatch, node)->wd == w->wd;
		if (!shared)
			inotify_rm_watch(x->ifd, w->wd);
		x->inotified--;
	}
	if (w->prev)
		w->prev->next = w->next;
	else
		x->all = w->next;
	if (w->next)
		w->next->prev = w->prev;
	x->count--;
	w->region->xwatch = NULL;
	if (x->count == 0 && x->timer_init)
		uv_timer_stop(&x->timer);
	region_unref(w->region);
	free(w);
}

static void xwatch_put(struct extwatch *x, struct xwatch *w)
{
	if (--w->refs == 0)
		xwatch_free(x, w);
}

/* Reports the watches found changed to the owner's hook. */
static void extwatch_report(struct extwatch *x)
{
	while (x->hits) {
		struct xwatch *w = x->hits;

		x->hits = w->hit_next;
		w->hit = false;
		/* The last of its watchers may have gone meanwhile: then nobody wants to know. */
		if (w->refs > 1 && !w->region->retired)
			x->changed(w->region);
		xwatch_put(x, w);
	}
}

/* Marks every watch of wd hit by inotify event mask. */
static void extwatch_event(struct extwatch *x, int wd, uint32_t mask)
{
	struct hnode *node;

	for (node = htab_find_first(&x->by_wd, (uint64_t)wd); node; node = htab_find_next(node)) {
		struct xwatch *w = htab_entry(node, struct xwatch, node);

		if (w->wd != wd)
			continue;
		if (mask & IN_MODIFY)
			w->written = true;
		/* IN_ATTRIB alone (chmod, utimes) counts when the size or mtime moved. */
		if (xwatch_check(w))
			xwatch_hit(x, w);
	}
}

/* Reads what inotify queued, marking the watches it names hit. */
static void extwatch_read_inotify(struct extwatch *x)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	if (x->ifd < 0)
		return;
	while ((n = read(x->ifd, buf, sizeof(buf))) > 0) {
		const char *p = buf;

		while (p + sizeof(struct inotify_event) <= buf + n) {
			const struct inotify_event *ev = (const struct inotify_event *)(const void *)p;

			/* IN_Q_OVERFLOW (wd -1): the next poll tick compares every file anyway. */
			if (ev->wd >= 0 && (ev->mask & EXTWATCH_MASK))
				extwatch_event(x, ev->wd, ev->mask);
			p += sizeof(*ev) + ev->len;
		}
	}
}

static void extwatch_on_inotify(uv_poll_t *handle, int status, int events)
{
	struct extwatch *x = handle->data;

	(void)events;
	if (status < 0)
		return;
	extwatch_read_inotify(x);
	extwatch_report(x);
}

static void extwatch_on_tick(uv_timer_t *timer)
{
	struct extwatch *x = timer->data;
	uint64_t ms = x->srv->limits->external_poll_ms;
	struct xwatch *w;

	/* A write inotify queued already and the fstat that sees it make one report, not two. */
	extwatch_read_inotify(x);
	for (w = x->all; w; w = w->next)
		if (!w->hit && xwatch_check(w))
			xwatch_hit(x, w);
	extwatch_report(x);
	/* A reload may have changed the interval. */
	if (x->timer_init && x->count > 0 && ms != x->interval_ms) {
		x->interval_ms = ms;
		uv_timer_start(&x->timer, extwatch_on_tick, ms, ms);
	}
}

/*
 * Makes the inotify descriptor and its poll handle (once: after a failure every watch is
 * polled only). Returns 0 or -errno.
 */
static int extwatch_inotify_open(struct extwatch *x)
{
	int r;

	if (x->ifd >= 0)
		return 0;
	if (x->stopped || x->inotify_err)
		return x->stopped ? -ESHUTDOWN : x->inotify_err;
	x->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (x->ifd < 0) {
		x->inotify_err = -errno;
		return x->inotify_err;
	}
	r = uv_poll_init(x->srv->loop, &x->poll, x->ifd);
	if (r == 0) {
		x->poll.data = x;
		x->poll_active = true;
		r = uv_poll_start(&x->poll, UV_READABLE, extwatch_on_inotify);
		if (r < 0) {
			/* Closing stops the poll at once; the descriptor can go. */
			x->closing++;
			uv_close((uv_handle_t *)&x->poll, extwatch_on_closed);
			x->poll_active = false;
		}
	}
	if (r < 0) {
		close(x->ifd);
		x->ifd = -1;
		x->inotify_err = r;
	}
	return r;
}

/* Asks inotify to watch w's file too; a refusal leaves w polled only (logged). */
static void xwatch_inotify(struct extwatch *x, struct xwatch *w)
{
	char path[64];
	int r;

	/* A memfd is a pseudo file: the kernel never reports its changes to inotify. */
	if (w->region->anonymous)
		return;
	r = extwatch_inotify_open(x);

	if (r == 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", w->region->fd);
		w->wd = inotify_add_watch(x->ifd, path, EXTWATCH_MASK | IN_MASK_ADD);
		if (w->wd < 0)
			r = -errno;
	}
	if (r == 0 && htab_insert(&x->by_wd, &w->node, (uint64_t)w->wd) < 0)
		r = -ENOMEM;
	if (r < 0) {
		if (w->wd >= 0)
			inotify_rm_watch(x->ifd, w->wd);
		w->wd = -1;
		log_warn("region '%s' is watched for external changes by polling only (every %llu "
		         "ms): inotify refused it: %s%s", w->region->name,
		         (unsigned long long)x->srv->limits->external_poll_ms, strerror(-r),
		         r == -ENOSPC ? " (fs.inotify.max_user_watches)" : "");
		return;
	}
	x->inotified++;
}

int extwatch_ref(struct region *r)
{
	struct extwatch *x = r->srv->extwatch;
	struct xwatch *w = r->xwatch;
	struct stat st;

	if (w) {
		w->refs++;
		return 0;
	}
	if (x->stopped)
		return -ESHUTDOWN;
	if (r->fd < 0)
		return -EBADF;
	if (fstat(r->fd, &st) < 0)
		return -errno;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->region = r;
	w->wd = -1;
	w->refs = 1;
	xwatch_take(w, &st);
	region_ref(r);
	r->xwatch = w;
	w->next = x->all;
	if (w->next)
		w->next->prev = w;
	x->all = w;
	x->count++;
	xwatch_inotify(x, w);
	if (!x->timer_init) {
		uv_timer_init(x->srv->loop, &x->timer);
		x->timer.data = x;
		x->timer_init = true;
	}
	if (!uv_is_active((uv_handle_t *)&x->timer)) {
		x->interval_ms = x->srv->limits->external_poll_ms;
		uv_timer_start(&x->timer, extwatch_on_tick, x->interval_ms, x->interval_ms);
	}
	return 0;
}

void extwatch_unref(struct region *r)
{
	if (r->xwatch)
		xwatch_put(r->srv->extwatch, r->xwatch);
}

size_t extwatch_count(const struct server *srv)
{
	return srv->extwatch ? srv->extwatch->count : 0;
}

size_t extwatch_inotify_count(const struct server *srv)
{
	return srv->extwatch ? srv->extwatch->inotified : 0;
}
