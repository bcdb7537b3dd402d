/* SPDX-License-Identifier: MIT */
/*
 * Region table, grants and thread-pool jobs (see region.h). All of it runs on the loop
 * thread except region_job_run, which touches only the job's own fields and the data
 * directory's descriptor; its results come back to the loop in the job's done callback.
 * The modules that hang work off a region are told of its retirement, and asked whether it
 * is busy, through the server's region listeners; a waiting request runs again through the
 * dispatcher's continuation (state.h): this file names neither.
 */
#include "region.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adopt.h"
#include "conn.h"
#include "control.h"
#include "dirindex.h"
#include "log.h"
#include "meta.h"
#include "msg.h"
#include "name.h"
#include "region_obj.h"
#include "state.h"
#include "timer.h"
#include "vocab.h"

/* The lookup cache: idle file regions kept at most, and how long one is kept unused. */
#define REGION_IDLE_MAX 64
#define REGION_IDLE_MS 1000

/* A request waiting for a busy region. */
struct region_waiter {
	struct region_waiter *next;
	struct conn *conn;   /* referenced; its pending count covers this waiter */
	uint64_t id;
	cJSON *req;
};

struct region *region_new(struct server *srv, const char *name, bool anonymous,
                          enum region_state state)
{
	size_t len = strlen(name);
	/* Room for any region name, so that region_rename never moves the struct. */
	struct region *r = calloc(1, sizeof(*r) + (len > NAME_MAX_LEN ? len : NAME_MAX_LEN) + 1);

	if (!r)
		return NULL;
	memcpy(r->name, name, len + 1);
	r->srv = srv;
	r->refs = 1;
	r->anonymous = anonymous;
	r->state = state;
	r->fd = -1;
	r->generation = 1;
	if (!anonymous) {
		const struct meta *m = meta_find(srv, name);

		if (m) {
			r->flush.policy = m->policy;
			r->flush.poisoned = m->poisoned;
			r->acc = m->acc;
		}
	}
	r->next = srv->all_regions;
	if (r->next)
		r->next->prev = r;
	srv->all_regions = r;
	return r;
}

int region_budget_attach(struct region *r, struct budget *b, uint64_t size, bool force,
                         enum budget_item *ret_item)
{
	uint64_t want[BUDGET_NITEMS] = {
		[BUDGET_ANON_REGIONS] = 1, [BUDGET_FDS] = 1, [BUDGET_ANON_BYTES] = size,
	};
	int i;

	assert(r->anonymous && !r->budget);
	if (!force) {
		int ret = budget_charge_all(b, want, ret_item);

		if (ret < 0)
			return ret;
	} else {
		for (i = 0; i < BUDGET_NITEMS; i++)
			budget_force(b, (enum budget_item)i, want[i]);
	}
	budget_ref(b);
	r->budget = b;
	r->charged = size;
	return 0;
}

/* Gives back what r was charged. */
static void region_budget_detach(struct region *r)
{
	struct budget *b = r->budget;

	if (!b)
		return;
	budget_release(b, BUDGET_ANON_REGIONS, 1);
	budget_release(b, BUDGET_FDS, 1);
	budget_release(b, BUDGET_ANON_BYTES, r->charged);
	r->budget = NULL;
	r->charged = 0;
	budget_unref(b);
}

void region_budget_resize(struct region *r, uint64_t size)
{
	if (!r->budget)
		return;
	if (size > r->charged)
		budget_force(r->budget, BUDGET_ANON_BYTES, size - r->charged);
	else
		budget_release(r->budget, BUDGET_ANON_BYTES, r->charged - size);
	r->charged = size;
}

int region_budget_move(struct region *r, uint32_t uid)
{
	struct budget *b;
	uint64_t size = r->charged;

	if (!r->budget || r->budget->uid == uid)
		return 0;
	b = budget_ref_uid(r->srv, uid);
	if (!b)
		return -ENOMEM;
	region_budget_detach(r);
	region_budget_attach(r, b, size, true, NULL);
	budget_unref(b);
	return 0;
}

void region_ref(struct region *r)
{
	r->refs++;
}

void region_unref(struct region *r)
{
	assert(r->refs > 0);
	if (--r->refs > 0)
		return;
	assert(!r->in_table && r->grants == 0 && !r->wait_head && !r->holders);
	assert(r->locks.nheld == 0 && r->locks.nwaiting == 0 && r->nsubs == 0);
	assert(!region_busy(r));
	region_budget_detach(r);
	adopt_free(r);
	control_region_gone(r->ctl);
	if (r->fd >= 0)
		close(r->fd);
	if (r->prev)
		r->prev->next = r->next;
	else
		r->srv->all_regions = r->next;
	if (r->next)
		r->next->prev = r->prev;
	free(r);
}

/* Whether nothing holds r: no grant, lock, waiter, subscription, nor work under way. */
static bool region_unheld(const struct region *r)
{
	return r->grants == 0 && r->locks.nheld == 0 && r->locks.nwaiting == 0 && r->nsubs == 0 &&
	       !region_busy(r);
}

/* Takes r off the idle list (no-op when it is not on it). */
static void region_idle_unlink(struct region *r)
{
	struct server *srv = r->srv;

	if (!r->idle)
		return;
	if (r->iprev)
		r->iprev->inext = r->inext;
	else
		srv->idle_head = r->inext;
	if (r->inext)
		r->inext->iprev = r->iprev;
	else
		srv->idle_tail = r->iprev;
	r->iprev = r->inext = NULL;
	r->idle = false;
	if (--srv->nidle == 0 && srv->idle_timer) {
		timer_free(srv->idle_timer);
		srv->idle_timer = NULL;
	}
}

/*
 * Takes the oldest region off the idle list and out of the table, unless something holds it
 * again (it then only leaves the list: region_check_idle puts it back when it is let go).
 * Returns whether the list had one.
 */
static bool region_idle_pop(struct server *srv)
{
	struct region *r = srv->idle_head;
	bool unheld;

	if (!r)
		return false;
	unheld = region_unheld(r);
	region_idle_unlink(r);
	if (unheld)
		region_table_remove(r);
	return true;
}

static void region_idle_arm(struct server *srv, uint64_t timeout_ms);

/* Drops the regions idle for REGION_IDLE_MS, and waits for the next one. */
static void region_idle_expire(void *data)
{
	struct server *srv = data;
	uint64_t now = state_now_ms();

	timer_free(srv->idle_timer);
	srv->idle_timer = NULL;
	while (srv->idle_head && now - srv->idle_head->idle_since_ms >= REGION_IDLE_MS)
		region_idle_pop(srv);
	if (srv->idle_head)
		region_idle_arm(srv, srv->idle_head->idle_since_ms + REGION_IDLE_MS - now);
}

/*
 * Starts the expiry timer unless it runs. It does not keep the loop alive: at shutdown the
 * table is emptied (server_done), which frees it. Without memory for it the regions wait
 * for the next one to go idle.
 */
static void region_idle_arm(struct server *srv, uint64_t timeout_ms)
{
	if (srv->idle_timer)
		return;
	srv->idle_timer = timer_start(srv->loop, timeout_ms, region_idle_expire, srv);
	if (srv->idle_timer)
		uv_unref((uv_handle_t *)srv->idle_timer);
}

size_t region_idle_drop(struct server *srv)
{
	size_t n = srv->nidle;

	while (region_idle_pop(srv))
		;
	return n;
}

struct region *region_lookup(struct server *srv, const char *name)
{
	struct hnode *node;
	struct region *r = NULL;

	for (node = htab_find_first(&srv->regions, htab_hash_string(name)); node;
	     node = htab_find_next(node)) {
		r = htab_entry(node, struct region, node);
		if (strcmp(r->name, name) == 0)
			break;
		r = NULL;
	}
	/*
	 * An idle region is trusted only while inotify has seen no change of its name since the
	 * daemon looked its file up; otherwise it goes, and the caller looks on disk again.
	 */
	if (r && r->idle && !dirindex_unchanged(srv, name, r->seen)) {
		if (region_unheld(r)) {
			region_table_remove(r);
			return NULL;
		}
		region_idle_unlink(r);
	}
	return r;
}

int region_table_add(struct region *r, bool force)
{
	struct server *srv = r->srv;
	int ret;

	assert(!r->in_table);
	if (region_lookup(srv, r->name))
		return -EEXIST;
	/* Idle regions make room: the cache never refuses anyone a region. */
	while (!force && srv->regions.count >= srv->limits->max_regions && region_idle_pop(srv))
		;
	if (!force && srv->regions.count >= srv->limits->max_regions)
		return -EAGAIN;
	ret = htab_insert(&srv->regions, &r->node, htab_hash_string(r->name));
	if (ret < 0)
		return ret;
	/* Adopted regions are listed as anonymous ones are: by name, without a file. */
	ret = r->anonymous || r->adopt ? dirindex_anon_add(srv, r->name) : 0;
	if (ret == 0 && adopt_index(r) < 0) {
		if (r->adopt)
			dirindex_anon_remove(srv, r->name);
		ret = -ENOMEM;
	}
	if (ret < 0) {
		htab_remove(&srv->regions, &r->node);
		return ret;
	}
	r->in_table = true;
	if (r->anonymous && r->state == REGION_READY)
		srv->nanonymous++;
	region_ref(r);
	return 0;
}

void region_table_remove(struct region *r)
{
	if (!r->in_table)
		return;
	region_idle_unlink(r);
	htab_remove(&r->srv->regions, &r->node);
	if (r->anonymous || r->adopt)
		dirindex_anon_remove(r->srv, r->name);
	adopt_unindex(r);
	r->in_table = false;
	if (r->anonymous && r->state == REGION_READY)
		r->srv->nanonymous--;
	region_unref(r);
}

int region_rename(struct region *r, const char *to)
{
	size_t len = strlen(to);
	int ret;

	assert(r->in_table && len <= NAME_MAX_LEN);
	region_ref(r);
	region_table_remove(r);
	memcpy(r->name, to, len + 1);
	ret = region_table_add(r, true);
	if (ret == 0 && !r->anonymous)
		r->seen = dirindex_epoch(r->srv);
	region_unref(r);
	return ret;
}

void region_set_ready(struct region *r, int fd, uint64_t size)
{
	assert(r->state == REGION_BUSY && r->fd < 0);
	r->fd = fd;
	r->size = size;
	r->rdonly = false;
	r->state = REGION_READY;
	r->seen = dirindex_epoch(r->srv);
	if (r->anonymous && r->in_table)
		r->srv->nanonymous++;
}

/*
 * Makes the file of region r, just opened with stat st and before anything of it is granted,
 * owned by the daemon's user with mode FSDIR_FILE_MODE (fsdir.h says why). The access the
 * file's owner and mode gave (r->acc) is recorded in the region's metadata first, so that it
 * keeps meaning the same once the inode says 0600. Returns 0, or -EPERM when the daemon may
 * not chown or chmod the file (a daemon not running as root is not even tried on another
 * user's file, so nothing is recorded for it), or another -errno.
 */
static int region_take_over(struct region *r, const struct stat *st)
{
	uid_t uid = geteuid();
	int ret;

	if (st->st_uid == uid && (st->st_mode & 07777) == FSDIR_FILE_MODE)
		return 0;
	if (st->st_uid != uid && uid != 0)
		return -EPERM;
	if (meta_save_region(r, NULL, NULL) < 0)
		return -ENOMEM;
	ret = fsdir_make_private(r->fd, st);
	/* Nobody opens a file of a read-only file system for writing, through /proc or not. */
	if (ret == -EROFS)
		return 0;
	if (ret < 0)
		return ret;
	log_info("region '%s': its file, owner %lu:%lu mode %04o on disk, now belongs to the "
	         "daemon's user (uid %lu) with mode %04o; its access (owner %lu:%lu, mode %04o) is "
	         "kept in its metadata", r->name, (unsigned long)st->st_uid,
	         (unsigned long)st->st_gid, (unsigned)(st->st_mode & 07777), (unsigned long)uid,
	         FSDIR_FILE_MODE, (unsigned long)r->acc.uid, (unsigned long)r->acc.gid,
	         r->acc.perm);
	return 0;
}

int region_open_file(struct server *srv, const char *name, int pathfd, const struct stat *st,
                     struct region **ret_region)
{
	struct region *r;
	bool rdonly = false;
	int fd, ret;

	/* A size nobody may have made (resize.h): the last size the daemon accepted is not
	 * known for a file it did not hold, so it is not guessed. */
	if ((uint64_t)st->st_size > srv->limits->max_region_size) {
		close(pathfd);
		return -EFBIG;
	}
	/* The daemon's own descriptor is read-write if it can be, so rw grants are possible. */
	fd = fsdir_reopen(pathfd, O_RDWR);
	if (fd == -EACCES || fd == -EPERM || fd == -EROFS || fd == -ETXTBSY) {
		fd = fsdir_reopen(pathfd, O_RDONLY);
		rdonly = true;
	}
	close(pathfd);
	if (fd < 0)
		return fd;
	r = region_new(srv, name, false, REGION_READY);
	if (!r) {
		close(fd);
		return -ENOMEM;
	}
	r->fd = fd;
	r->rdonly = rdonly;
	r->size = (uint64_t)st->st_size;
	r->seen = dirindex_epoch(srv);
	region_file_access(srv, name, st, &r->acc);
	ret = region_take_over(r, st);
	if (ret == 0)
		ret = region_table_add(r, false);
	if (ret < 0) {
		region_unref(r);
		return ret;
	}
	*ret_region = r;
	return 0;
}

bool region_busy(const struct region *r)
{
	for (const struct region_listener *const *l = r->srv->region_listeners; l && *l; l++)
		if ((*l)->busy && (*l)->busy(r))
			return true;
	return false;
}

/* r has no grant left: tells the listeners. Returns true when r left the table. */
static bool region_released(struct region *r)
{
	for (const struct region_listener *const *l = r->srv->region_listeners; l && *l; l++)
		if ((*l)->released && (*l)->released(r))
			return true;
	return false;
}

void region_check_idle(struct region *r)
{
	struct server *srv = r->srv;

	if (r->in_table && r->state == REGION_READY && r->grants == 0 && region_released(r))
		return;
	if (!r->in_table || r->anonymous || r->state != REGION_READY || !region_unheld(r))
		return;
	/* An adopted file is not cached: it goes with its last holder, and so does its inode. */
	if (r->adopt) {
		region_table_remove(r);
		return;
	}
	/* Kept for the next lookup, newest at the tail. */
	region_idle_unlink(r);
	r->idle = true;
	r->idle_since_ms = state_now_ms();
	r->iprev = srv->idle_tail;
	if (srv->idle_tail)
		srv->idle_tail->inext = r;
	else
		srv->idle_head = r;
	srv->idle_tail = r;
	srv->nidle++;
	if (srv->nidle > REGION_IDLE_MAX)
		region_idle_pop(srv);
	region_idle_arm(srv, REGION_IDLE_MS);
}

void region_retire(struct region *r, const struct conn *by)
{
	assert(!r->in_table);
	region_ref(r);
	r->retired = true;
	for (const struct region_listener *const *l = r->srv->region_listeners; l && *l; l++)
		if ((*l)->retire)
			(*l)->retire(r, by);
	region_unref(r);
}

/*
 * A holder of a read-write descriptor made r's file size bytes, above max_region_size (or,
 * anonymous, past its owner's budget): the size is never adopted. A file region is truncated back to the last size the daemon
 * accepted (no client was told of the larger one); while a resize is under way that waits
 * for the next look. An anonymous region is sealed against shrinking (and a file the daemon
 * holds read-only cannot be truncated by it): its descriptor keeps the size, every reply
 * keeps r->size, and it is logged once.
 */
static void region_refuse_size(struct region *r, uint64_t size)
{
	uint64_t max = r->srv->limits->max_region_size;
	const char *why = r->anonymous ? "it cannot shrink (it is sealed)" :
	                  "the daemon holds it read-only";
	int ret;

	if (r->resizes.active || r->resizes.head)   /* resize_busy */
		return;
	if (r->adopt)
		why = "it is an adopted file, which the daemon never cuts";
	else if (!r->anonymous && !r->rdonly) {
		do
			ret = ftruncate(r->fd, (off_t)r->size);
		while (ret < 0 && errno == EINTR);
		if (ret == 0) {
			log_warn("region '%s' was made %" PRIu64 " bytes behind the daemon's back, above "
			         "max_region_size (%" PRIu64 "); truncated back to %" PRIu64 " bytes",
			         r->name, size, max, r->size);
			return;
		}
		why = strerror(errno);
	}
	if (r->size_refused)
		return;
	r->size_refused = true;
	log_warn("region '%s' was made %" PRIu64 " bytes behind the daemon's back, above "
	         "max_region_size (%" PRIu64 ")%s, and is not truncated back (%s): the daemon keeps "
	         "reporting and granting %" PRIu64 " bytes", r->name, size, max,
	         r->budget ? " or its owner's max_anonymous_bytes_per_uid" : "", why, r->size);
}

/*
 * Whether a size r's file was given behind the daemon's back may be adopted: within
 * max_region_size, and for an anonymous region within its owner's budget (a writer must not
 * spend another user's max_anonymous_bytes_per_uid).
 */
static bool region_size_acceptable(const struct region *r, uint64_t size)
{
	if (size > r->srv->limits->max_region_size)
		return false;
	return !r->budget || size <= r->charged ||
	       budget_fits(r->budget, BUDGET_ANON_BYTES, size - r->charged);
}

uint64_t region_size(struct region *r)
{
	struct stat st;
	uint64_t size;

	region_size_stat(r, &size, &st);
	return size;
}

bool region_size_stat(struct region *r, uint64_t *ret_size, struct stat *ret_st)
{
	uint64_t size;

	*ret_size = r->size;
	if (r->fd < 0 || fstat(r->fd, ret_st) < 0)
		return false;
	if (ret_st->st_size < 0)
		return true;
	size = (uint64_t)ret_st->st_size;
	/* r->size itself may be above a max_region_size lowered since it was accepted. */
	if (size != r->size && !region_size_acceptable(r, size)) {
		region_refuse_size(r, size);
		return true;
	}
	r->size_refused = false;
	*ret_size = size;
	return true;
}

_Static_assert((int)MEMFD_HUGE_NONE == (int)PROTO_HUGE_NONE &&
               (int)MEMFD_HUGE_HUGETLB == (int)PROTO_HUGE_HUGETLB &&
               (int)MEMFD_HUGE_THP == (int)PROTO_HUGE_THP,
               "enum memfd_huge numbers huge pages as proto/region_obj.h does");

void region_file_access(struct server *srv, const char *name, const struct stat *st,
                        struct access *ret)
{
	const struct meta *m = meta_find(srv, name);

	if (m && m->owned)
		*ret = m->acc;
	else
		access_from_stat(st, ret);
}

/* The file's mtime and ctime in microseconds since the epoch (docs/protocol.md). */
static void region_times(const struct stat *st, struct proto_region *obj)
{
	obj->mtime_us = (uint64_t)st->st_mtim.tv_sec * 1000000u + (uint64_t)st->st_mtim.tv_nsec / 1000u;
	obj->ctime_us = (uint64_t)st->st_ctim.tv_sec * 1000000u + (uint64_t)st->st_ctim.tv_nsec / 1000u;
}

cJSON *region_to_json(struct region *r)
{
	struct stat st;
	uint64_t size;
	bool have_st = region_size_stat(r, &size, &st);

	return region_to_json_sized(r, size, have_st ? &st : NULL);
}

cJSON *region_to_json_sized(const struct region *r, uint64_t size, const struct stat *st)
{
	struct proto_region obj = {
		.name = r->name, .size = size, .anonymous = r->anonymous, .huge = r->huge,
		.grants = r->grants, .clients = r->clients,
		.uid = r->acc.uid, .gid = r->acc.gid, .perm = r->acc.perm,
		.policy_kind = r->flush.policy.kind, .policy_value = r->flush.policy.value,
		.generation = r->generation, .poisoned = r->flush.poisoned,
		.seq = control_seq(r->ctl, r->seq),
		.locks = r->locks.nheld + r->locks.nwaiting, .temporary = r->temporary,
		.adopted = r->adopt != NULL,
	};

	if (st)
		region_times(st, &obj);
	return proto_region_json(&obj);
}

bool region_anon_to_json(const struct region *r, cJSON *entry)
{
	return cJSON_AddBoolToObject(entry, "exec", r->exec) &&
	       cJSON_AddStringToObject(entry, "huge", proto_huge_name(r->huge));
}

void region_anon_from_json(struct region *r, const cJSON *entry)
{
	const char *huge = NULL;
	bool exec = false;

	msg_get_bool(entry, "exec", &exec);
	/* A memfd made without exec says so itself, whatever the state claims. */
	r->exec = exec && !memfd_is_noexec_sealed(r->fd);
	if (!r->exec)
		r->acc.perm &= ~ACCESS_PERM_EXEC;
	if (memfd_is_hugetlb(r->fd))
		r->huge = MEMFD_HUGE_HUGETLB;
	else if (msg_get_string(entry, "huge", &huge) == 0 &&
	         strcmp(huge, proto_huge_name(PROTO_HUGE_THP)) == 0)
		r->huge = MEMFD_HUGE_THP;
	else
		r->huge = MEMFD_HUGE_NONE;
}

/*
 * The size reported for a file nobody holds: a file above max_region_size cannot be opened
 * (region_open_file) and is reported at the limit, so that no reply carries a size the
 * daemon would refuse (nor one past 2^53-1, which a JSON number does not hold exactly).
 */
static uint64_t region_file_size(struct server *srv, const struct stat *st)
{
	uint64_t max = srv->limits->max_region_size;

	return (uint64_t)st->st_size > max ? max : (uint64_t)st->st_size;
}

cJSON *region_file_json(struct server *srv, const char *name, const struct stat *st)
{
	const struct meta *m = meta_find(srv, name);
	struct proto_region obj;
	struct access acc;

	region_file_access(srv, name, st, &acc);
	/* Not held: it would be at generation 1 with no change announced if opened now. */
	obj = (struct proto_region){
		.name = name, .size = region_file_size(srv, st), .anonymous = false,
		.huge = PROTO_HUGE_NONE, .grants = 0, .clients = 0,
		.uid = acc.uid, .gid = acc.gid, .perm = acc.perm,
		.policy_kind = m ? m->policy.kind : POLICY_MANUAL, .policy_value = m ? m->policy.value : 0,
		.generation = 1, .poisoned = m && m->poisoned, .seq = 0, .locks = 0,
	};

	region_times(st, &obj);
	return proto_region_json(&obj);
}

int region_defer(struct region *r, struct conn *c, uint64_t id, cJSON *req)
{
	struct region_waiter *w = malloc(sizeof(*w));

	if (!w) {
		cJSON_Delete(req);
		return -ENOMEM;
	}
	w->next = NULL;
	w->conn = c;
	w->id = id;
	w->req = r->srv->request_trim(req);
	conn_ref(c);
	conn_pending_add(c);
	if (r->wait_tail)
		r->wait_tail->next = w;
	else
		r->wait_head = w;
	r->wait_tail = w;
	return 0;
}

void region_wake(struct region *r)
{
	struct region_waiter *w = r->wait_head;

	/*
	 * Detach the whole queue first: a request run again may find the name busy once more
	 * (it starts a new creation) and must then queue on that new placeholder, behind
	 * nothing of this list.
	 */
	r->wait_head = r->wait_tail = NULL;
	region_ref(r);
	while (w) {
		struct region_waiter *next = w->next;
		struct conn *c = w->conn;

		/*
		 * Run before the request stops counting as pending: a half-closed client with
		 * nothing else pending would otherwise look done and be closed unanswered.
		 */
		r->srv->rerun(c, w->id, w->req);
		conn_pending_done(c);
		conn_unref(c);
		free(w);
		w = next;
	}
	region_unref(r);
}

_Static_assert((int)REGION_MODE_RO == (int)PROTO_MODE_RO &&
               (int)REGION_MODE_RW == (int)PROTO_MODE_RW &&
               (int)REGION_MODE_COW == (int)PROTO_MODE_COW,
               "enum region_mode numbers the modes as proto/vocab.h does");

const char *region_mode_name(enum region_mode mode)
{
	return proto_mode_name((unsigned)mode < PROTO_MODE_COUNT ? (enum proto_mode)mode
	                                                        : PROTO_MODE_RO);
}

int region_mode_parse(const char *s)
{
	return proto_mode_find(s);
}

static uint64_t holder_hash(const struct region *r)
{
	return htab_hash_u64((uint64_t)(uintptr_t)r);
}

static struct holder *holder_find(const struct conn *c, const struct region *r)
{
	struct hnode *node;

	for (node = htab_find_first(&c->holders, holder_hash(r)); node; node = htab_find_next(node)) {
		struct holder *h = htab_entry(node, struct holder, node);

		if (h->region == r)
			return h;
	}
	return NULL;
}

bool region_held_by(const struct region *r, const struct conn *c)
{
	return holder_find(c, r) != NULL;
}

static void holder_free(struct holder *h)
{
	struct region *r = h->region;

	htab_remove(&h->conn->holders, &h->node);
	if (h->rprev)
		h->rprev->rnext = h->rnext;
	else
		r->holders = h->rnext;
	if (h->rnext)
		h->rnext->rprev = h->rprev;
	r->clients--;
	free(h);
}

int grant_new(struct conn *c, struct region *r, enum region_mode mode, struct grant **ret_grant)
{
	return grant_new_sized(c, r, mode, region_size(r), ret_grant);
}

int grant_new_sized(struct conn *c, struct region *r, enum region_mode mode, uint64_t size,
                    struct grant **ret_grant)
{
	struct grant *g;
	struct holder *h;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	h = holder_find(c, r);
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h || htab_insert(&c->holders, &h->node, holder_hash(r)) < 0) {
			free(h);
			free(g);
			return -ENOMEM;
		}
		h->conn = c;
		h->region = r;
		h->rnext = r->holders;
		if (h->rnext)
			h->rnext->rprev = h;
		r->holders = h;
		r->clients++;
	}
	g->handle = ++c->next_handle;
	g->conn = c;
	g->region = r;
	g->mode = mode;
	g->size = size;
	if (htab_insert(&c->grants, &g->node, htab_hash_u64(g->handle)) < 0) {
		/* Only the very first insertion can fail, and then the holder is new as well. */
		if (h->count == 0)
			holder_free(h);
		free(g);
		return -ENOMEM;
	}
	h->count++;
	region_ref(r);
	r->grants++;
	c->ngrants++;
	c->bytes_granted += g->size;
	c->srv->ngrants++;
	*ret_grant = g;
	return 0;
}

struct grant *grant_find(struct conn *c, uint64_t handle)
{
	struct hnode *node;

	for (node = htab_find_first(&c->grants, htab_hash_u64(handle)); node;
	     node = htab_find_next(node)) {
		struct grant *g = htab_entry(node, struct grant, node);

		if (g->handle == handle)
			return g;
	}
	return NULL;
}

void grant_free(struct grant *g)
{
	struct conn *c = g->conn;
	struct region *r = g->region;
	struct holder *h = holder_find(c, r);

	htab_remove(&c->grants, &g->node);
	assert(h && h->count > 0);
	if (--h->count == 0)
		holder_free(h);
	r->grants--;
	c->ngrants--;
	c->bytes_granted -= g->size;
	c->srv->ngrants--;
	free(g);
	/* The daemon holds a file region's descriptor only while someone needs it. */
	region_check_idle(r);
	region_unref(r);
}

void grant_free_all(struct conn *c)
{
	struct htab_iter it;
	struct hnode *node;

	htab_iter_init(&c->grants, &it);
	while ((node = htab_iter_next(&c->grants, &it)) != NULL)
		grant_free(htab_entry(node, struct grant, node));
}

struct region_job *region_job_new(struct region *r, enum region_job_kind kind, struct conn *c,
                                  uint64_t id, cJSON *req)
{
	struct region_job *job = calloc(1, sizeof(*job));

	if (!job) {
		cJSON_Delete(req);
		return NULL;
	}
	job->kind = kind;
	job->region = r;
	region_ref(r);
	job->dir_fd = r->srv->dir_fd;
	job->result = -ECANCELED;
	job->conn = c;
	conn_ref(c);
	conn_pending_add(c);
	job->id = id;
	job->req = r->srv->request_trim(req);
	return job;
}

void region_job_free(struct region_job *job)
{
	/* A descriptor the completion did not take is closed here. */
	if (job->result >= 0 && job->kind != REGION_JOB_UNLINK)
		close(job->result);
	conn_pending_done(job->conn);
	conn_unref(job->conn);
	region_unref(job->region);
	if (job->old)
		region_unref(job->old);
	cJSON_Delete(job->req);
	free(job);
}

/* On a thread-pool thread: only the job's own fields and the directory descriptor. */
static void region_job_run(struct state_job *sj)
{
	struct region_job *job = (struct region_job *)sj;

	switch (job->kind) {
	case REGION_JOB_CREATE_FILE:
		job->result = fsdir_create_file(job->dir_fd, job->tmpname, job->region->name,
		                                job->size, job->sparse, &job->fell_back);
		break;
	case REGION_JOB_CREATE_ANONYMOUS:
		job->result = memfd_region_create(job->region->name, job->size, job->sparse,
		                                  job->memfd_flags, &job->huge, &job->fell_back);
		break;
	case REGION_JOB_UNLINK:
		job->result = fsdir_unlink(job->dir_fd, job->region->name);
		break;
	}
}

static void region_job_after(struct state_job *sj)
{
	struct region_job *job = (struct region_job *)sj;

	/* A file region's name appeared or went (or the job failed): the index checks which. */
	if (job->kind != REGION_JOB_CREATE_ANONYMOUS)
		dirindex_file_changed(job->region->srv, job->region->name);
	job->done(job);
}

int region_job_start(struct region_job *job)
{
	return state_job_start(job->region->srv, &job->job, region_job_run, region_job_after);
}
