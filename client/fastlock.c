/* SPDX-License-Identifier: MIT */
/*
 * The fast path of whole-region locks in libmmapd (docs/coordination.md, "The control page";
 * shared/ctlpage.h): a lock of a whole region this client holds open read-write is taken and
 * dropped with one atomic operation on the region's control page, which the daemon passes once
 * per connection and region (the "control" request). coord.c calls here first and goes to
 * the daemon when this says so: for ranges, for regions without a page, when the daemon
 * manages the page's locks, and when the lock stays busy longer than MMAPD_FAST_WAIT_US.
 *
 * Lock ids made here are at or above CTL_FAST_ID_BASE, so an unlock knows where it goes; bits
 * 40-51 hold the page's index among this client's pages. An exclusive lock is its page's
 * excl_id; a slot's shared locks are one bit in the page, counted and listed here, and known
 * to the daemon (if it takes them over) by one id written in the slot before the bit is set.
 *
 * Pages are found by region name under client->fast_mu alone: one mutex, a short list, one
 * compare-and-swap and no system call per uncontended lock. A page stays usable while its
 * connection lasts, whether the region is still open here or not: the daemon marks it retired
 * when the region is deleted, so a name taken by a new region is asked of the daemon again.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctlpage.h"
#include "domain.h"
#include "msg.h"

/* Lock ids: CTL_FAST_ID_BASE | page index << 40 | a counter. */
#define FAST_ID_INDEX_SHIFT 40
#define FAST_INDEX_MAX      4096u   /* pages per client with a fast path */
#define FAST_ID_COUNTER     ((1ull << FAST_ID_INDEX_SHIFT) - 1)

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

/*
 * client->fast_mu: held for a few dozen instructions at a time, never across a system call,
 * so a spin lock (yielding when it spins long) costs less than a mutex.
 */
static void fast_mu_lock(struct mmapd_client *client)
{
	unsigned spins = 0;

	while (atomic_flag_test_and_set_explicit(&client->fast_mu, memory_order_acquire)) {
		if (++spins % 64 == 0)
			sched_yield();
		else
			cpu_relax();
	}
}

static void fast_mu_unlock(struct mmapd_client *client)
{
	atomic_flag_clear_explicit(&client->fast_mu, memory_order_release);
}

/* The open read-write region called name on the working connection, or NULL. Lock held. */
static struct mmapd_region *fast_region(struct mmapd_client *client, const char *name)
{
	struct mmapd_region *r;

	for (r = client->regions; r; r = r->next)
		if (r->mode == MMAPD_MODE_RW && r->granted && !r->gone && !r->closed &&
		    r->gen == client->gen && strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

/* Maps the page of descriptor fd (slot) as a fast_page of connection gen, reusing the one this
 * client has for the same page and slot. Returns it or NULL. fast_mu held. */
static struct fast_page *fast_page_add(struct mmapd_client *client, const char *name, int fd,
                                       unsigned slot, uint64_t gen)
{
	struct fast_page *fp;
	struct stat st;
	void *map;

	struct fast_page **index;

	if (slot >= CTLPAGE_SLOTS || fstat(fd, &st) < 0 || st.st_size < CTLPAGE_SIZE ||
	    client->fast_npages == FAST_INDEX_MAX)
		return NULL;
	for (fp = client->fast_pages; fp; fp = fp->next)
		if (!fp->dead && fp->gen == gen && fp->slot == slot && fp->dev == st.st_dev &&
		    fp->ino == st.st_ino) {
			fp->stale = false;
			fp->current = true;
			return fp;
		}
	index = realloc(client->fast_index, (client->fast_npages + 1) * sizeof(*index));
	if (!index)
		return NULL;
	client->fast_index = index;
	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return NULL;
	map = mmap(NULL, CTLPAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED || ctlpage_check(map) < 0) {
		if (map != MAP_FAILED)
			munmap(map, CTLPAGE_SIZE);
		free(fp);
		return NULL;
	}
	fp->page = map;
	snprintf(fp->name, sizeof(fp->name), "%s", name);
	fp->dev = st.st_dev;
	fp->ino = st.st_ino;
	fp->slot = slot;
	fp->gen = gen;
	fp->index = (unsigned)client->fast_npages;
	index[client->fast_npages++] = fp;
	fp->next = client->fast_pages;
	client->fast_pages = fp;
	return fp;
}

/* Whether fp can be used for new locks (fast_mu held). */
static bool fast_page_live(struct fast_page *fp)
{
	if (fp->dead || fp->stale)
		return false;
	if (atomic_load_explicit(&fp->page->retired, memory_order_relaxed)) {
		fp->dead = true;
		return false;
	}
	/*
	 * A daemon restarted through the fd store: the next one holds this page's locks as its
	 * own and does not know the page, so the region's next lock asks it for a page of its
	 * own (a control request) and goes back to the fast path there. (Such a page is managed
	 * for good: the log, on a line writers keep busy, is read only then.)
	 */
	if (!fp->current &&
	    (atomic_load_explicit(&fp->page->lock, memory_order_relaxed) & CTL_DAEMON) &&
	    atomic_load_explicit(&ctlpage_log(fp->page)->route, memory_order_relaxed) ==
	    CHANGELOG_ROUTE_GONE) {
		fp->stale = true;
		return false;
	}
	return true;
}

int fastlock_slot_of(struct mmapd_client *client, dev_t dev, ino_t ino)
{
	struct fast_page *fp;
	int slot = -1;

	fast_mu_lock(client);
	for (fp = client->fast_pages; fp && slot < 0; fp = fp->next)
		if (!fp->dead && fp->gen == client->gen && fp->dev == dev && fp->ino == ino)
			slot = (int)fp->slot;
	fast_mu_unlock(client);
	return slot;
}

void fastlock_renamed(struct mmapd_client *client, const char *name, const char *to)
{
	fast_mu_lock(client);
	for (struct fast_page *fp = client->fast_pages; fp; fp = fp->next)
		if (!fp->dead && strcmp(fp->name, name) == 0)
			snprintf(fp->name, sizeof(fp->name), "%s", to);
	fast_mu_unlock(client);
}

/* The live page of region name, or NULL. fast_mu held. */
static struct fast_page *fast_page_find(struct mmapd_client *client, const char *name)
{
	struct fast_page *fp;

	for (fp = client->fast_pages; fp; fp = fp->next)
		if (!fp->dead && strcmp(fp->name, name) == 0 && fast_page_live(fp))
			return fp;
	return NULL;
}

/*
 * Asks the daemon for the control page of region name, which this client holds open
 * read-write. Returns the page with fast_mu held, or NULL when there is none to use (no such
 * region here, the daemon refused, an older daemon).
 */
static struct fast_page *fast_page_ask(struct mmapd_client *client, const char *name)
{
	struct call call = { .flags = CALL_PINNED, .want_fd = true, .fd = -1 };
	struct mmapd_region *region;
	struct fast_page *fp;
	struct error_saved saved;
	uint64_t handle, slot = CTLPAGE_SLOTS;
	int r;

	pthread_mutex_lock(&client->lock);
	region = fast_region(client, name);
	if (!region || region->fast_refused == client->gen) {
		pthread_mutex_unlock(&client->lock);
		return NULL;
	}
	handle = region->handle;
	call.gen = region->gen;
	pthread_mutex_unlock(&client->lock);

	/* Whatever goes wrong here, the lock is asked of the daemon: its message stays. */
	error_save(&saved);
	r = request_start(client, proto_op_name(PROTO_OP_CONTROL), NULL, &call.req);
	if (r == 0)
		r = request_add_u64(call.req, PROTO_FIELD_HANDLE, handle);
	if (r == 0)
		r = client_run(client, &call);
	if (r == 0 && msg_get_u64(call.reply, PROTO_FIELD_SLOT, &slot) < 0)
		r = -EPROTO;
	pthread_mutex_lock(&client->lock);
	fast_mu_lock(client);
	fp = r == 0 ? fast_page_add(client, name, call.fd, (unsigned)(slot < CTLPAGE_SLOTS ? slot
	                                                                    : CTLPAGE_SLOTS),
	                            call.gen)
	            : NULL;
	if (!fp && region == fast_region(client, name) && region->handle == handle)
		region->fast_refused = call.gen;
	pthread_mutex_unlock(&client->lock);
	if (!fp)
		fast_mu_unlock(client);
	if (call.fd >= 0)
		close(call.fd);
	cJSON_Delete(call.req);
	cJSON_Delete(call.reply);
	error_restore(&saved);
	return fp;
}

/*
 * The control page of region (when not NULL: a handle of it, which remembers its page) or of
 * the region called name: as fast_page_find, else as fast_page_ask. With fast_mu held when
 * not NULL.
 */
static struct fast_page *fast_page_get(struct mmapd_client *client,
                                       struct mmapd_region *region, const char *name)
{
	struct fast_page *fp;

	fast_mu_lock(client);
	if (region && region->fast && fast_page_live(region->fast))
		return region->fast;
	fp = fast_page_find(client, name);
	if (!fp) {
		fast_mu_unlock(client);
		fp = fast_page_ask(client, name);
	}
	if (fp && region)
		region->fast = fp;
	return fp;
}

struct fast_page *fastlock_page(struct mmapd_client *client, struct mmapd_region *region,
                                const char *name)
{
	return fast_page_get(client, region, name);
}

void fastlock_page_done(struct mmapd_client *client)
{
	fast_mu_unlock(client);
}

/* The pid holding what blocks us, for a message. */
static long fast_blocker_pid(const struct fast_page *fp)
{
	uint64_t w = atomic_load_explicit(&fp->page->lock, memory_order_relaxed);
	unsigned s = (unsigned)((w & CTL_OWNER_MASK) >> CTL_OWNER_SHIFT);

	if (!(w & CTL_EXCL))
		for (s = 0; s < CTLPAGE_SLOTS && !(w & (1ull << s)); s++)
			;
	return s < CTLPAGE_SLOTS ? (long)atomic_load(&fp->page->slots[s].pid) : 0;
}

/* A fresh lock id of page fp. fast_mu held. */
static uint64_t fast_next_id(struct mmapd_client *client, const struct fast_page *fp)
{
	client->fast_next_id = (client->fast_next_id + 1) & FAST_ID_COUNTER;
	return CTL_FAST_ID_BASE | (uint64_t)fp->index << FAST_ID_INDEX_SHIFT | client->fast_next_id;
}

/* One try for the slot of fp. fast_mu held. */
static enum ctl_try fast_try(struct mmapd_client *client, struct fast_page *fp, bool exclusive,
                             uint64_t *ret_id)
{
	struct ctlpage_slot *slot = &fp->page->slots[fp->slot];
	uint64_t id;
	enum ctl_try t;

	if (fp->dead)
		return CTL_MANAGED;
	/* Nested shared locks count here; the page has one bit. */
	if (!exclusive && fp->shared_count > 0) {
		if (atomic_load_explicit(&fp->page->lock, memory_order_relaxed) & CTL_DAEMON)
			return CTL_MANAGED;
		id = fast_next_id(client, fp);
		fp->shared_count++;
		*ret_id = id;
		return CTL_TAKEN;
	}
	/* The slot holds one exclusive lock at a time: its id is not overwritten. */
	if (exclusive && fp->excl_id)
		return CTL_BUSY;
	id = fast_next_id(client, fp);
	/* Written before the lock is taken: the daemon reads it once it sees the bit. */
	atomic_store_explicit(exclusive ? &slot->excl_id : &slot->shared_id, id,
	                      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	t = ctlpage_try_lock(fp->page, fp->slot, exclusive);
	if (t != CTL_TAKEN)
		return t;
	if (exclusive) {
		fp->excl_id = id;
	} else {
		fp->shared_count = 1;
		fp->shared_id = id;
	}
	*ret_id = id;
	return CTL_TAKEN;
}

/* Records fast lock id. fast_mu held. Returns 0 or -ENOMEM (the lock is dropped again). */
static int fast_record(struct mmapd_client *client, struct fast_page *fp, uint64_t id)
{
	struct fast_lock *l = client->fast_spare;

	if (l)
		client->fast_spare = l->next;
	else if (!(l = malloc(sizeof(*l))))
		return -ENOMEM;
	l->id = id;
	l->fp = fp;
	l->next = client->fast_locks;
	client->fast_locks = l;
	return 0;
}

/* Drops fp's exclusive lock, or one of its shared ones. Returns the id to tell the daemon, or
 * 0 when it need not hear of it. fast_mu held. */
static uint64_t fast_drop(struct fast_page *fp, bool exclusive)
{
	uint64_t tell;

	if (fp->dead)
		return 0;
	if (exclusive) {
		tell = fp->excl_id;
		fp->excl_id = 0;
	} else {
		tell = fp->shared_id;
		if (--fp->shared_count > 0)
			return 0;
	}
	return ctlpage_unlock(fp->page, fp->slot, exclusive) == CTL_MANAGED ? tell : 0;
}

/* a <= b */
static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

int fastlock_try(struct mmapd_client *client, struct mmapd_region *region, const char *name,
                 unsigned flags, uint64_t *ret_lock)
{
	bool exclusive = flags & MMAPD_LOCK_EXCLUSIVE;
	struct fast_page *fp;
	uint64_t id = 0;

	fast_mu_lock(client);
	fp = region && region->fast && fast_page_live(region->fast) ? region->fast
	                                                             : fast_page_find(client, name);
	if (!fp || fast_try(client, fp, exclusive, &id) != CTL_TAKEN) {
		fast_mu_unlock(client);
		return FAST_FALLBACK;
	}
	if (!exclusive && fast_record(client, fp, id) < 0) {
		uint64_t tell = fast_drop(fp, false);

		fast_mu_unlock(client);
		/* Taken over meanwhile: the daemon's copy goes through the protocol. */
		return tell ? FAST_FALLBACK : error_set(-ENOMEM, "out of memory");
	}
	fast_mu_unlock(client);
	*ret_lock = id;
	return 0;
}

int fastlock_lock(struct mmapd_client *client, struct mmapd_region *region, const char *name,
                  unsigned flags, int timeout_ms, int *ret_timeout_ms, uint64_t *ret_lock)
{
	bool exclusive = flags & MMAPD_LOCK_EXCLUSIVE, waiting = false;
	struct timespec fast_end, user_end, now;
	struct fast_page *fp;
	uint64_t id = 0;
	enum ctl_try t;
	int spins = 0;

	*ret_timeout_ms = timeout_ms;
	fp = fast_page_get(client, region, name);
	if (!fp)
		return FAST_FALLBACK;
	for (;;) {
		uint32_t seen = atomic_load_explicit(&fp->page->wake, memory_order_acquire);

		t = fast_try(client, fp, exclusive, &id);
		if (t == CTL_TAKEN && !exclusive && fast_record(client, fp, id) < 0) {
			uint64_t tell = fast_drop(fp, false);

			fast_mu_unlock(client);
			/* Taken over meanwhile: the daemon's copy goes through the protocol. */
			return tell ? FAST_FALLBACK : error_set(-ENOMEM, "out of memory");
		}
		if (t == CTL_TAKEN) {
			fast_mu_unlock(client);
			*ret_lock = id;
			return 0;
		}
		if (t == CTL_MANAGED)
			break;
		if (flags & MMAPD_LOCK_NOWAIT) {
			long pid = fast_blocker_pid(fp);

			fast_mu_unlock(client);
			return error_set(-EAGAIN, "region '%s' is locked (held by pid %ld)", name, pid);
		}
		fast_mu_unlock(client);
		/* Busy: the clocks start now. */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!waiting) {
			waiting = true;
			fast_end = now;
			fast_end.tv_nsec += MMAPD_FAST_WAIT_US * 1000L;
			if (fast_end.tv_nsec >= 1000000000L) {
				fast_end.tv_sec++;
				fast_end.tv_nsec -= 1000000000L;
			}
			if (timeout_ms >= 0)
				deadline_after(&user_end, timeout_ms);
		}
		if (timeout_ms >= 0 && ts_before(&user_end, &now))
			return error_set(-ETIMEDOUT, "lock on region '%s' not granted within "
			                 "timeout_ms (%d)", name, timeout_ms);
		if (ts_before(&fast_end, &now)) {
			fast_mu_lock(client);
			break;
		}
		if (spins < MMAPD_FAST_SPIN) {
			spins++;
			cpu_relax();
		} else {
			bool user_first = timeout_ms >= 0 && ts_before(&user_end, &fast_end);

			(void)ctlpage_sleep(fp->page, seen, user_first ? &user_end : &fast_end);
		}
		fast_mu_lock(client);
	}
	fast_mu_unlock(client);
	if (timeout_ms >= 0 && waiting)
		*ret_timeout_ms = deadline_left_ms(&user_end);
	return FAST_FALLBACK;
}

int fastlock_unlock(struct mmapd_client *client, uint64_t id, uint64_t *ret_tell)
{
	struct fast_lock **p, *l;

	struct fast_page *fp;
	size_t index = (id >> FAST_ID_INDEX_SHIFT) & (FAST_INDEX_MAX - 1);

	*ret_tell = 0;
	if (id < CTL_FAST_ID_BASE || id > CTL_FAST_ID_MAX)
		return FAST_FALLBACK;
	fast_mu_lock(client);
	fp = index < client->fast_npages ? client->fast_index[index] : NULL;
	if (fp && fp->excl_id == id) {
		*ret_tell = fast_drop(fp, true);
		fast_mu_unlock(client);
		return 0;
	}
	for (p = &client->fast_locks; *p && (*p)->id != id; p = &(*p)->next)
		;
	l = *p;
	if (!l) {
		fast_mu_unlock(client);
		return FAST_FALLBACK;
	}
	*p = l->next;
	*ret_tell = fast_drop(l->fp, false);
	l->next = client->fast_spare;
	client->fast_spare = l;
	fast_mu_unlock(client);
	return 0;
}

size_t fastlock_forget(struct mmapd_client *client)
{
	struct fast_page *fp;
	size_t n = 0;

	fast_mu_lock(client);
	while (client->fast_locks) {
		struct fast_lock *l = client->fast_locks;

		client->fast_locks = l->next;
		l->next = client->fast_spare;
		client->fast_spare = l;
		n++;
	}
	for (fp = client->fast_pages; fp; fp = fp->next) {
		n += fp->excl_id != 0;
		fp->excl_id = 0;
		fp->dead = true;
	}
	fast_mu_unlock(client);
	return n;
}
