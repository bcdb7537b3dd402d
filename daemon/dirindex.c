/* SPDX-License-Identifier: MIT */
/*
 * The index of region names (see dirindex.h). Each set is a treap: a binary search tree by
 * name whose nodes also form a heap by a random priority, so it stays balanced whatever the
 * order names come in (clients choose region names, but not the priorities). Lookups, inserts
 * and removals cost O(log n) expected; "the smallest name above x" is one descent.
 *
 * The watch is our own inotify descriptor under a uv_poll_t, not libuv's uv_fs_event_t: list
 * and status must be able to read what the kernel has queued at the moment they answer, and
 * only the descriptor's owner can. IN_CLOSE_WRITE and IN_MODIFY are not asked for: they
 * never change which names exist, and every region the daemon writes would raise them.
 * IN_ATTRIB (chmod, chown, link counts, utimes) is, for the region table's lookup cache
 * alone: it stamps the name, so that an idle region whose file got a wider mode on disk is
 * looked up and taken over again (dirindex_unchanged).
 */
#include "dirindex.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "fsdir.h"
#include "log.h"
#include "name.h"
#include "state.h"

#define DIRINDEX_RESCAN_MS 1000     /* without a watch (or after a failed scan): scan this seldom */
#define DIRINDEX_TOUCHED_MAX 4096   /* names changed during a rescan, checked again after it */
#define DIRINDEX_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
                       IN_ONLYDIR)

/* ---- a sorted set of names --------------------------------------------------------------- */

struct name_node {
	struct name_node *left, *right;
	uint32_t prio;
	uint64_t stamp;   /* files: the index's epoch when the name was last checked, or 0 */
	char name[];
};

struct name_set {
	struct name_node *root;
	size_t count;
	uint32_t rng;   /* xorshift32 state for the priorities; never 0 */
};

static void name_set_init(struct name_set *set, uint32_t seed)
{
	set->root = NULL;
	set->count = 0;
	set->rng = seed ? seed : 0x9e3779b9u;
}

static uint32_t name_set_random(struct name_set *set)
{
	uint32_t x = set->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	set->rng = x;
	return x;
}

static void name_node_free_all(struct name_node *n)
{
	while (n) {
		struct name_node *right = n->right;

		name_node_free_all(n->left);
		free(n);
		n = right;
	}
}

static void name_set_clear(struct name_set *set)
{
	name_node_free_all(set->root);
	set->root = NULL;
	set->count = 0;
}

static struct name_node *name_set_find(const struct name_set *set, const char *name)
{
	struct name_node *n = set->root;

	while (n) {
		int c = strcmp(name, n->name);

		if (c == 0)
			return n;
		n = c < 0 ? n->left : n->right;
	}
	return NULL;
}

static struct name_node *name_rotate_right(struct name_node *n)
{
	struct name_node *l = n->left;

	n->left = l->right;
	l->right = n;
	return l;
}

static struct name_node *name_rotate_left(struct name_node *n)
{
	struct name_node *r = n->right;

	n->right = r->left;
	r->left = n;
	return r;
}

/* Puts node (whose name is not in the tree) beneath *link, rotating it up by priority. */
static void name_node_insert(struct name_node **link, struct name_node *node)
{
	struct name_node *n = *link;

	if (!n) {
		*link = node;
		return;
	}
	if (strcmp(node->name, n->name) < 0) {
		name_node_insert(&n->left, node);
		if (n->left->prio > n->prio)
			*link = name_rotate_right(n);
	} else {
		name_node_insert(&n->right, node);
		if (n->right->prio > n->prio)
			*link = name_rotate_left(n);
	}
}

/* Adds name, or finds it, and stamps it. Returns 0 or -ENOMEM. */
static int name_set_add(struct name_set *set, const char *name, uint64_t stamp)
{
	size_t len = strlen(name);
	struct name_node *node = name_set_find(set, name);

	if (node) {
		node->stamp = stamp;
		return 0;
	}
	node = malloc(sizeof(*node) + len + 1);
	if (!node)
		return -ENOMEM;
	node->left = node->right = NULL;
	node->prio = name_set_random(set);
	node->stamp = stamp;
	memcpy(node->name, name, len + 1);
	name_node_insert(&set->root, node);
	set->count++;
	return 0;
}

static void name_set_remove(struct name_set *set, const char *name)
{
	struct name_node **link = &set->root, *n;
	int c;

	while (*link && (c = strcmp(name, (*link)->name)) != 0)
		link = c < 0 ? &(*link)->left : &(*link)->right;
	n = *link;
	if (!n)
		return;
	/* Rotated down below its children, it ends with at most one, which takes its place. */
	while (n->left && n->right) {
		if (n->left->prio > n->right->prio) {
			*link = name_rotate_right(n);
			link = &(*link)->right;
		} else {
			*link = name_rotate_left(n);
			link = &(*link)->left;
		}
	}
	*link = n->left ? n->left : n->right;
	free(n);
	set->count--;
}

/* The smallest name above after (NULL: the smallest), or NULL. */
static const char *name_set_next(const struct name_set *set, const char *after)
{
	const struct name_node *n = set->root;
	const char *best = NULL;

	while (n) {
		if (!after || strcmp(n->name, after) > 0) {
			best = n->name;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}

static int name_set_scan_add(void *userdata, const char *name)
{
	return name_set_add(userdata, name, 0);
}

/* ---- the index --------------------------------------------------------------------------- */

struct dirindex_job {
	struct state_job job;
	int dir_fd;
	struct name_set files;   /* built on the pool thread */
	int result;              /* of fsdir_scan */
};

struct dirindex {
	struct server *srv;
	struct name_set files;   /* region files in the data directory */
	struct name_set anon;    /* anonymous (ready or busy) and adopted regions in the table */
	int ifd;                 /* the inotify descriptor, or -1 */
	uv_poll_t poll;
	bool polling;            /* poll initialised and not yet closed */
	bool closing;            /* poll's close callback has not run yet */
	bool free_on_close;      /* dirindex_done ran meanwhile: the callback frees */
	bool watched;            /* the watch is live: files follows every change */
	bool stale;              /* events were lost: files needs a rescan */
	bool failed;             /* the last rescan failed: retry after DIRINDEX_RESCAN_MS */
	uint64_t scanned_ms;     /* when the last scan started */
	struct dirindex_job *job;/* the rescan under way, or NULL */
	char **touched;          /* names checked while job ran (DIRINDEX_TOUCHED_MAX) */
	size_t ntouched;
	bool touched_lost;       /* more than that, or ENOMEM: rescan again */
	uint64_t epoch;          /* +1 per check of a name: the stamps of the file set */
	uint64_t reset;          /* the epoch when events were last lost (no name is trusted) */
};

static uint32_t dirindex_seed(void)
{
	return (uint32_t)uv_hrtime() ^ ((uint32_t)getpid() << 16);
}

static void dirindex_touch(struct dirindex *x, const char *name)
{
	char *copy;

	if (x->touched_lost)
		return;
	if (!x->touched) {
		x->touched = calloc(DIRINDEX_TOUCHED_MAX, sizeof(*x->touched));
		if (!x->touched) {
			x->touched_lost = true;
			return;
		}
	}
	copy = x->ntouched < DIRINDEX_TOUCHED_MAX ? strdup(name) : NULL;
	if (!copy) {
		x->touched_lost = true;
		return;
	}
	x->touched[x->ntouched++] = copy;
}

static void dirindex_touched_clear(struct dirindex *x)
{
	for (size_t i = 0; i < x->ntouched; i++)
		free(x->touched[i]);
	free(x->touched);
	x->touched = NULL;
	x->ntouched = 0;
	x->touched_lost = false;
}

/* Events were lost (or a check failed): rescan, and trust no name checked before. */
static void dirindex_lost(struct dirindex *x)
{
	x->stale = true;
	x->reset = ++x->epoch;
}

/* Sets name's presence in the file set from the directory itself, and stamps it. */
static void dirindex_check(struct dirindex *x, const char *name)
{
	struct stat st;

	if (name_check(name, strlen(name)) < 0)
		return;
	if (x->job)
		dirindex_touch(x, name);
	if (fstatat(x->srv->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISREG(st.st_mode))
			name_set_remove(&x->files, name);
		else if (name_set_add(&x->files, name, ++x->epoch) < 0)
			dirindex_lost(x);
	} else if (errno == ENOENT) {
		name_set_remove(&x->files, name);
	} else {
		/* In doubt, the next scan decides. */
		dirindex_lost(x);
	}
}

static void dirindex_job_run(struct state_job *sj)
{
	struct dirindex_job *job = (struct dirindex_job *)sj;

	job->result = fsdir_scan(job->dir_fd, name_set_scan_add, &job->files);
}

static void dirindex_rescan_maybe(struct dirindex *x);

static void dirindex_job_done(struct state_job *sj)
{
	struct dirindex_job *job = (struct dirindex_job *)sj;
	struct dirindex *x = job->job.srv->dirindex;
	size_t i;

	x->job = NULL;
	if (job->result < 0) {
		log_error("cannot read the data directory: %s", strerror(-job->result));
		name_set_clear(&job->files);
		dirindex_lost(x);
		x->failed = true;
	} else {
		name_set_clear(&x->files);
		x->files = job->files;
		x->failed = false;
	}
	free(job);
	/* What changed while the scan ran may or may not be in it: the directory says. */
	for (i = 0; i < x->ntouched; i++)
		dirindex_check(x, x->touched[i]);
	/* The scanned names carry no stamp: none is trusted from before the scan ended. */
	x->reset = ++x->epoch;
	if (x->touched_lost)
		dirindex_lost(x);
	dirindex_touched_clear(x);
	dirindex_rescan_maybe(x);
}

/* Starts a rescan on the thread pool when the file set may be wrong and none is under way. */
static void dirindex_rescan_maybe(struct dirindex *x)
{
	struct server *s = x->srv;
	struct dirindex_job *job;
	uint64_t now;
	int r;

	if (x->job || s->stopping)
		return;
	now = state_now_ms();
	if (x->stale ? x->failed && now - x->scanned_ms < DIRINDEX_RESCAN_MS
	             : x->watched || now - x->scanned_ms < DIRINDEX_RESCAN_MS)
		return;
	job = calloc(1, sizeof(*job));
	if (!job)
		return;
	job->dir_fd = s->dir_fd;
	name_set_init(&job->files, dirindex_seed());
	r = state_job_start(s, &job->job, dirindex_job_run, dirindex_job_done);
	if (r < 0) {
		log_error("cannot queue a scan of the data directory: %s", uv_strerror(r));
		free(job);
		return;
	}
	x->job = job;
	x->stale = false;
	x->scanned_ms = now;
}

/* Applies every event the kernel has queued. */
static void dirindex_drain(struct dirindex *x)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	char *p;

	while (x->ifd >= 0) {
		n = read(x->ifd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			log_warn("cannot read the data directory's events: %s",
			         n < 0 ? strerror(errno) : "end of file");
			dirindex_lost(x);
			return;
		}
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(void *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				log_info("too many changes in the data directory at once: "
				         "scanning it again");
				dirindex_lost(x);
			} else if (ev->mask & IN_IGNORED) {
				/* The directory is gone or unmounted: nothing more will come. */
				if (x->watched)
					log_warn("the data directory is no longer watched "
					         "(removed or unmounted?)");
				x->watched = false;
			} else if (ev->len > 0) {
				dirindex_check(x, ev->name);
			}
		}
	}
}

static void dirindex_on_event(uv_poll_t *handle, int status, int events)
{
	struct dirindex *x = handle->data;

	(void)events;
	if (status < 0) {
		log_warn("cannot watch the data directory: %s", uv_strerror(status));
		dirindex_stop(x->srv);
		return;
	}
	dirindex_drain(x);
	dirindex_rescan_maybe(x);
}

/* Sets up the watch; on failure the index falls back to periodic rescans. */
static void dirindex_watch(struct dirindex *x)
{
	struct server *s = x->srv;
	char path[32];
	int r;

	x->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (x->ifd < 0) {
		r = -errno;
		goto fail;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->dir_fd);
	if (inotify_add_watch(x->ifd, path, DIRINDEX_MASK) < 0) {
		r = -errno;
		goto fail;
	}
	r = uv_poll_init(s->loop, &x->poll, x->ifd);
	if (r < 0)
		goto fail;
	x->polling = true;
	x->poll.data = x;
	r = uv_poll_start(&x->poll, UV_READABLE, dirindex_on_event);
	if (r < 0)
		goto fail;
	x->watched = true;
	return;
fail:
	log_warn("cannot watch the data directory (%s): list and status will see changes made "
	         "by others within about a second", strerror(-r));
	dirindex_stop(s);
}

int dirindex_init(struct server *s)
{
	struct dirindex *x;
	int r;

	x = calloc(1, sizeof(*x));
	if (!x) {
		log_error("out of memory for the index of the data directory");
		return -ENOMEM;
	}
	s->dirindex = x;
	x->srv = s;
	x->ifd = -1;
	name_set_init(&x->files, dirindex_seed());
	name_set_init(&x->anon, dirindex_seed() * 2654435761u);
	/* Watch first: a change between the scan and the watch would be missed. */
	dirindex_watch(x);
	x->scanned_ms = state_now_ms();
	r = fsdir_scan(s->dir_fd, name_set_scan_add, &x->files);
	if (r < 0) {
		log_error("cannot read the data directory: %s", strerror(-r));
		return r;
	}
	/* Events of the files scanned just now are checked again: harmless. */
	log_debug("%zu region files in the data directory", x->files.count);
	return 0;
}

static void dirindex_on_closed(uv_handle_t *handle)
{
	struct dirindex *x = handle->data;

	x->closing = false;
	if (x->free_on_close)
		free(x);
}

void dirindex_stop(struct server *s)
{
	struct dirindex *x = s->dirindex;

	if (!x)
		return;
	x->watched = false;
	if (x->polling) {
		x->poll.data = x;
		x->closing = true;
		uv_close((uv_handle_t *)&x->poll, dirindex_on_closed);
		x->polling = false;
	}
	if (x->ifd >= 0) {
		close(x->ifd);
		x->ifd = -1;
	}
}

void dirindex_done(struct server *s)
{
	struct dirindex *x = s->dirindex;

	if (!x)
		return;
	dirindex_stop(s);
	/* The shutdown waits for thread-pool work, so no rescan is under way. */
	name_set_clear(&x->files);
	name_set_clear(&x->anon);
	dirindex_touched_clear(x);
	s->dirindex = NULL;
	if (x->closing)
		x->free_on_close = true;
	else
		free(x);
}

void dirindex_sync(struct server *s)
{
	struct dirindex *x = s->dirindex;

	if (!x)
		return;
	dirindex_drain(x);
	dirindex_rescan_maybe(x);
}

void dirindex_file_changed(struct server *s, const char *name)
{
	if (s->dirindex)
		dirindex_check(s->dirindex, name);
}

int dirindex_anon_add(struct server *s, const char *name)
{
	return s->dirindex ? name_set_add(&s->dirindex->anon, name, 0) : 0;
}

uint64_t dirindex_epoch(const struct server *s)
{
	return s->dirindex ? s->dirindex->epoch : 0;
}

bool dirindex_unchanged(struct server *s, const char *name, uint64_t since)
{
	struct dirindex *x = s->dirindex;
	const struct name_node *n;

	if (!x || !x->watched)
		return false;
	dirindex_drain(x);
	dirindex_rescan_maybe(x);
	if (!x->watched || x->stale || x->job || x->reset > since)
		return false;
	n = name_set_find(&x->files, name);
	return n && n->stamp <= since;
}

void dirindex_anon_remove(struct server *s, const char *name)
{
	if (s->dirindex)
		name_set_remove(&s->dirindex->anon, name);
}

const char *dirindex_next(struct server *s, const char *after)
{
	const char *f, *a;

	if (!s->dirindex)
		return NULL;
	f = name_set_next(&s->dirindex->files, after);
	a = name_set_next(&s->dirindex->anon, after);
	if (!f || (a && strcmp(a, f) < 0))
		return a;
	return f;
}

uint64_t dirindex_files(const struct server *s)
{
	return s->dirindex ? s->dirindex->files.count : 0;
}
