/* SPDX-License-Identifier: MIT */
/*
 * Regions of libmmapd: a grant asked for with "open", the descriptor that came with the reply,
 * and the mapping of the window the caller wanted: opening (the first mapping, with any
 * address reservation, is made here), closing (unmapping, releasing the grant), reopening
 * after a reconnection, and changing the mode in place. How a mapping then follows its
 * region's size and shrinks is mapping.c's, the layer below; what one does with a mapped
 * window (advice, mlock, iteration, flush_range) is advise.c's.
 *
 * mmapd_region_set_mode() changes an open region's mode in place: a new grant by name in the
 * new mode, the window made that mode at the same address (mprotect() to drop write access,
 * else the file mapped again with MAP_FIXED), then the old grant released. The mode, prot and
 * map_flags it leaves are what growth and a reconnection's reopen use afterwards.
 *
 * After a reconnection, regions_reopen() (called by reconnect.c, above) asks for a new grant
 * of every open region by name and keeps the mapping when the new descriptor opens the same
 * file (otherwise the region is given up: it stays mapped and follows nothing). An adopted
 * region is adopted again instead, under its name, with the descriptor it was adopted with,
 * which it keeps open for that until it is closed (the daemon keeps nothing of it).
 *
 * A region holds a reference on its client, so it stays usable (and closable) after
 * mmapd_disconnect(); the daemon has then released the grant already and closing only unmaps.
 *
 * struct mmapd_region lives in internal.h, where mapping.c, advise.c, atomic.c and guard.c
 * read its mapping; the open flags that shape the mapping (populate, stack, huge pages, exec)
 * are checked and applied here. PROT_EXEC is added only when the open reply says the daemon
 * granted an executable map ("exec": true), and asked again on a reopen.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "domain.h"
#include "msg.h"

static const char *const mode_names[] = {
	[MMAPD_MODE_RO] = "ro",
	[MMAPD_MODE_RW] = "rw",
	[MMAPD_MODE_COW] = "cow",
};

static const int mode_prot[] = {
	[MMAPD_MODE_RO] = PROT_READ,
	[MMAPD_MODE_RW] = PROT_READ | PROT_WRITE,
	[MMAPD_MODE_COW] = PROT_READ | PROT_WRITE,
};

static const int mode_flags[] = {
	[MMAPD_MODE_RO] = MAP_SHARED,
	[MMAPD_MODE_RW] = MAP_SHARED,
	[MMAPD_MODE_COW] = MAP_PRIVATE,
};

#define OPEN_FLAGS_ALL (MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL | MMAPD_OPEN_ANONYMOUS | \
                        MMAPD_OPEN_SPARSE | MMAPD_OPEN_REPORT_WRITES | MMAPD_OPEN_POPULATE | \
                        MMAPD_OPEN_STACK | MMAPD_OPEN_HUGETLB | MMAPD_OPEN_EXEC | \
                        MMAPD_OPEN_TEMPORARY | MMAPD_OPEN_TRUNCATE)


/* ---- the mapping ---- */

/*
 * Reserves len bytes of address space (PROT_NONE) at an address phase bytes past a multiple
 * of align: a power of two, which may be larger than the system's page (a hugetlb page, or a
 * transparent huge page: hugemap_align()); phase is a multiple of the system's page below
 * align. Returns the address or MAP_FAILED (errno set).
 */
static uint8_t *region_reserve(size_t len, size_t align, size_t phase)
{
	size_t sys = (size_t)sysconf(_SC_PAGESIZE), slack = align > sys ? align - sys : 0;
	size_t head;
	uint8_t *p;

	if (len > SIZE_MAX - slack) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	p = mmap(NULL, len + slack, PROT_NONE, RESERVE_NONE, -1, 0);
	if (p == MAP_FAILED || slack == 0)
		return p;
	/* Trim the head before the wanted address and whatever is left past the end. */
	head = (size_t)((phase - (uintptr_t)p) & (align - 1));
	if (head > 0)
		munmap(p, head);
	if (slack > head)
		munmap(p + head + len, slack - head);
	return p + head;
}

/*
 * Maps the window over region->fd, with reserve bytes of address space for a following window
 * to grow into. Returns 0, -ERANGE when the window does not lie inside the region, or mmap's
 * error (-EACCES when the descriptor does not allow the mode), message set. Lock held.
 */
static int region_map(struct mmapd_region *region, uint64_t reserve)
{
	uint64_t size = atomic_load(&region->size), length, pages, held, span;
	size_t page = region->page, align, phase;
	uint8_t *map;
	int r;

	/*
	 * A window holds at least one byte, except the whole-region window of a region of size
	 * 0: it maps no file page, only reserved address space to grow into (one page at least,
	 * so that the data pointer is valid), and follows the region's growth.
	 */
	bool empty = size == 0 && region->offset == 0 && region->want_length == 0;

	if ((region->offset >= size && !empty) ||
	    (region->want_length && region->want_length > size - region->offset))
		return error_set(-ERANGE, "window %llu+%llu lies outside region '%s' of %llu bytes",
		                 (unsigned long long)region->offset,
		                 (unsigned long long)region->want_length, region->name,
		                 (unsigned long long)size);
	length = region->want_length ? region->want_length : size - region->offset;
	pages = region_pages_before(region, region->offset + length);
	held = region->want_length == 0 && reserve > length
	       ? region_pages_before(region, region->offset + min_u64(reserve, PROTO_ID_MAX)) : 0;
	if (empty && held == 0)
		held = 1;
	if (pages > SIZE_MAX / page || held > SIZE_MAX / page)
		return error_set(-ERANGE, "window of %llu bytes does not fit the address space",
		                 (unsigned long long)(held > length ? reserve : length));

	span = held > pages ? held : pages;
	align = hugemap_align(region, span * page, &phase);
	if (held <= pages)
		held = 0;
	/* A reservation is made to grow into, or to place the mapping where huge pages fit. */
	if (held == 0 && align == page) {
		map = mmap(NULL, (size_t)pages * page, region->prot,
		           region->map_flags, region->fd, (off_t)region_start(region));
		r = map == MAP_FAILED ? -errno : 0;
	} else {
		map = region_reserve((size_t)span * page, align, phase);
		r = map == MAP_FAILED ? -errno : 0;
		if (r == 0 && pages > 0 && mmap(map, (size_t)pages * page, region->prot,
		                   region->map_flags | MAP_FIXED, region->fd,
		                   (off_t)region_start(region)) == MAP_FAILED) {
			r = -errno;
			munmap(map, (size_t)span * page);
		}
	}
	if (r < 0)
		return error_set(r, "cannot map region '%s' %s%s: %s%s", region->name,
		                 mode_names[region->mode], region->prot & PROT_EXEC ? "+exec" : "",
		                 mmapd_strerror(r), r == -EPERM && (region->prot & PROT_EXEC)
		                 ? " (is the file system mounted noexec?)" : "");
	region->reserve_pages = (size_t)held;
	region->map_pages = (size_t)pages;
	region->access_pages = (size_t)pages;
	region_set_map(region, map);
	region_apply(region);
	return 0;
}

static void region_unmap(struct mmapd_region *region)
{
	size_t pages = region->reserve_pages > region->map_pages ? region->reserve_pages
	                                                           : region->map_pages;

	if (region->map)
		munmap(region->map, pages * region->page);
	region->map = NULL;
}

/* ---- reactions to events (lock held) ---- */

/* ---- opening and closing ---- */

/*
 * Copies the caller's options into *ret, laid out as this library knows them: the bytes the
 * caller's struct_size covers, zero beyond (every field's default). opts NULL: all defaults.
 * Returns 0, -EINVAL (struct_size 0: not made by MMAPD_OPEN_OPTS()), -E2BIG (a newer caller
 * set a field this library does not know). The message is set.
 */
int open_opts_read(const struct mmapd_open_opts *opts, struct mmapd_open_opts *ret)
{
	size_t n;

	memset(ret, 0, sizeof(*ret));
	ret->struct_size = sizeof(*ret);
	if (!opts)
		return 0;
	if (opts->struct_size < sizeof(opts->struct_size))
		return error_set(-EINVAL, "opts->struct_size is %zu: make the options with "
		                 "MMAPD_OPEN_OPTS()", opts->struct_size);
	n = opts->struct_size < sizeof(*ret) ? opts->struct_size : sizeof(*ret);
	for (size_t i = sizeof(*ret); i < opts->struct_size; i++) {
		if (((const unsigned char *)opts)[i] != 0)
			return error_set(-E2BIG, "opts sets a field at byte %zu that this libmmapd "
			                 "(%s) does not know", i, mmapd_version());
	}
	memcpy(ret, opts, n);
	ret->struct_size = sizeof(*ret);
	return 0;
}

/* Checks what can be checked before a round trip. Returns 0 or -EINVAL/-EFBIG (message set). */
static int open_opts_check(const struct mmapd_open_opts *opts)
{
	if (opts->flags & ~OPEN_FLAGS_ALL)
		return error_set(-EINVAL, "unknown open flags 0x%x", opts->flags & ~OPEN_FLAGS_ALL);
	if ((unsigned)opts->mode > MMAPD_MODE_COW)
		return error_set(-EINVAL, "unknown mode %d", (int)opts->mode);
	if (!(opts->flags & MMAPD_OPEN_CREATE)) {
		if (opts->flags & (MMAPD_OPEN_EXCL | MMAPD_OPEN_ANONYMOUS | MMAPD_OPEN_SPARSE |
		                   MMAPD_OPEN_TEMPORARY | MMAPD_OPEN_TRUNCATE))
			return error_set(-EINVAL, "EXCL, ANONYMOUS, SPARSE, TEMPORARY and TRUNCATE need "
			                 "MMAPD_OPEN_CREATE");
		if (opts->policy)
			return error_set(-EINVAL, "an initial policy needs MMAPD_OPEN_CREATE; use "
			                 "mmapd_set_policy() for an existing region");
		return 0;
	}
	if (opts->size > PROTO_ID_MAX)
		return error_set(-EFBIG, "size %llu is above what the protocol can carry",
		                 (unsigned long long)opts->size);
	return opts->policy ? policy_check(opts->policy) : 0;
}

/*
 * Checks that the daemon knows what opts ask that an older one would ignore without a word.
 * Returns 0 or -EOPNOTSUPP (message set).
 */
static int open_check_daemon(struct mmapd_client *client, const struct mmapd_open_opts *opts)
{
	bool manage;

	if (!(opts->flags & (MMAPD_OPEN_TEMPORARY | MMAPD_OPEN_TRUNCATE)))
		return 0;
	pthread_mutex_lock(&client->lock);
	manage = client->manage;
	pthread_mutex_unlock(&client->lock);
	return manage ? 0 : error_set(-EOPNOTSUPP, "this mmapd does not offer temporary regions "
	                              "or truncation at open (no \"manage\" feature)");
}

/* Builds the "open" request. Returns NULL on allocation failure (message set). */
static cJSON *open_request_new(const char *name, const struct mmapd_open_opts *opts)
{
	unsigned flags = opts->flags;
	cJSON *req = request_new(proto_op_name(PROTO_OP_OPEN), name), *policy = NULL;

	if (!req)
		return NULL;
	if (!cJSON_AddStringToObject(req, PROTO_FIELD_MODE, mode_names[opts->mode]) ||
	    ((flags & MMAPD_OPEN_EXEC) && !cJSON_AddTrueToObject(req, PROTO_FIELD_EXEC)))
		goto fail;
	/* The daemon refuses creation fields on a plain open, so they are sent only with create. */
	if (!(flags & MMAPD_OPEN_CREATE))
		return req;
	if (!cJSON_AddTrueToObject(req, PROTO_FIELD_CREATE) ||
	    !cJSON_AddNumberToObject(req, PROTO_FIELD_SIZE, (double)opts->size) ||
	    ((flags & MMAPD_OPEN_EXCL) && !cJSON_AddTrueToObject(req, PROTO_FIELD_EXCLUSIVE)) ||
	    ((flags & MMAPD_OPEN_ANONYMOUS) &&
	     !cJSON_AddTrueToObject(req, PROTO_FIELD_ANONYMOUS)) ||
	    ((flags & MMAPD_OPEN_SPARSE) && !cJSON_AddTrueToObject(req, PROTO_FIELD_SPARSE)) ||
	    ((flags & MMAPD_OPEN_TEMPORARY) &&
	     !cJSON_AddTrueToObject(req, PROTO_FIELD_TEMPORARY)) ||
	    ((flags & MMAPD_OPEN_TRUNCATE) && !cJSON_AddTrueToObject(req, PROTO_FIELD_TRUNCATE)) ||
	    ((flags & MMAPD_OPEN_HUGETLB) && (flags & MMAPD_OPEN_ANONYMOUS) &&
	     !cJSON_AddTrueToObject(req, PROTO_FIELD_HUGE)))
		goto fail;
	if (opts->policy && (!(policy = policy_json(opts->policy)) ||
	                     !cJSON_AddItemToObject(req, PROTO_FIELD_POLICY, policy)))
		goto fail;
	return req;

fail:
	cJSON_Delete(policy);
	cJSON_Delete(req);
	request_nomem();
	return NULL;
}

/*
 * Reads the region object of an open reply and checks the granted mode (mode), and exec when
 * region asked for it. Returns 0, -EPROTO or -EPERM (a daemon that did not grant exec: one
 * that predates it ignores the field), set as call's result.
 */
static int open_reply_read(struct call *call, const cJSON *reply,
                           const struct mmapd_region *region, enum mmapd_mode mode,
                           struct region_entry *ret_info)
{
	const char *granted;
	bool exec = false;

	if (region_info_parse(cJSON_GetObjectItemCaseSensitive(reply, "region"), ret_info) < 0)
		return call_fail(call, -EPROTO, "mmapd's open reply has a malformed region object");
	if (msg_get_string(reply, "mode", &granted) < 0 ||
	    strcmp(granted, mode_names[mode]) != 0)
		return call_fail(call, -EPROTO, "mmapd granted a different mode than \"%s\"",
		                 mode_names[mode]);
	if (msg_get_bool(reply, "exec", &exec) == -EINVAL)
		return call_fail(call, -EPROTO, "mmapd's open reply has a malformed \"exec\"");
	if ((region->open_flags & MMAPD_OPEN_EXEC) && !exec)
		return call_fail(call, -EPERM, "mmapd did not grant an executable map of '%s' (a "
		                 "daemon without exec consent)", region->name);
	return 0;
}

/*
 * The open reply, read in stream order: the region takes the grant, the descriptor and the
 * size, so that events after it (a resize, a shrink) already apply to it.
 */
int region_open_hook(struct mmapd_client *client, struct call *call, const cJSON *reply)
{
	struct mmapd_region *region = call->ctx;
	struct region_entry e;

	if (msg_get_u64(reply, "handle", &region->handle) < 0)
		return call_fail(call, -EPROTO, "mmapd's open reply has no valid \"handle\"");
	region->granted = true;
	region->gen = client->gen;
	region->fd = call->fd;
	call->fd = -1;
	if (open_reply_read(call, reply, region, region->mode, &e) < 0)
		return call->err;
	/* An adopted region the caller did not name is named by the daemon. */
	if (!region->name[0])
		strcpy(region->name, e.name);
	atomic_store(&region->size, e.info.size);
	atomic_store(&region->generation, e.info.generation);
	region->anonymous = e.info.anonymous;
	region->huge = e.info.huge;
	if (region->open_flags & MMAPD_OPEN_EXEC)
		region->prot |= PROT_EXEC;
	return 0;
}

/*
 * Takes region off its client's list and marks it closed, so that a reconnection reopening
 * it at this moment leaves it alone. Returns whether it held a grant, with the grant in
 * *ret_handle and *ret_gen.
 */
static bool region_detach(struct mmapd_region *region, uint64_t *ret_handle, uint64_t *ret_gen)
{
	struct mmapd_client *client = region->client;
	bool granted;

	pthread_mutex_lock(&client->lock);
	if (region->prev)
		region->prev->next = region->next;
	else
		client->regions = region->next;
	if (region->next)
		region->next->prev = region->prev;
	region->closed = true;
	granted = region->granted;
	*ret_handle = region->handle;
	*ret_gen = region->gen;
	pthread_mutex_unlock(&client->lock);
	return granted;
}

void region_put(struct mmapd_region *region)
{
	if (--region->refs == 0)
		free(region);
}

/*
 * Detaches, unmaps and closes region and releases its grant, without waiting for the daemon
 * (a refusal becomes an MMAPD_EVENT_RELEASE_FAILED: client_release_grant).
 */
void region_free(struct mmapd_region *region)
{
	struct mmapd_client *client = region->client;
	uint64_t handle, gen;
	bool granted = region_detach(region, &handle, &gen);

	/* Unmap first: once the grant is released, the daemon may count on nobody using it. */
	region_unmap(region);
	if (region->fd >= 0)
		close(region->fd);
	region->fd = -1;
	if (region->adopt_fd >= 0)
		close(region->adopt_fd);
	region->adopt_fd = -1;
	if (granted)
		client_release_grant(client, region->name, handle, gen);
	pthread_mutex_lock(&client->lock);
	region_put(region);
	pthread_mutex_unlock(&client->lock);
	client_unref(client);
}

/*
 * A hugetlb region is mapped in its huge pages, whose size its descriptor's file system tells.
 * (MMAPD_OPEN_STACK and MMAPD_OPEN_HUGETLB suit file regions as well: MAP_STACK is a hint,
 * and a file region asking for huge pages gets an aligned mapping and MADV_HUGEPAGE.)
 */
static void region_page_check(struct mmapd_region *region)
{
	struct statfs sf;

	if (fstatfs(region->fd, &sf) == 0 && sf.f_type == HUGETLBFS_MAGIC && sf.f_bsize > 0 &&
	    (size_t)sf.f_bsize > region->page) {
		region->page = (size_t)sf.f_bsize;
		region->delta = (size_t)(region->offset % region->page);
	}
}

/*
 * Advises transparent huge pages on a new mapping (region_wants_thp); only a caller that asked
 * with MMAPD_OPEN_HUGETLB gets the kernel's refusal. Returns 0 or the advice's error.
 */
static int region_advise_huge(struct mmapd_region *region)
{
	int r;

	if (!region_wants_thp(region))
		return 0;
	r = mmapd_region_advise(region, 0, 0, MMAPD_ADVICE_HUGEPAGE);
	return region->open_flags & MMAPD_OPEN_HUGETLB ? r : 0;
}

/*
 * Makes the region of an open request already built (req, consumed) and puts it on the
 * client's list; fills *ret_call to be run. name may be NULL (adopt: the daemon's reply names
 * the region). Returns 0 or -ENOMEM (message set).
 */
static int region_open_prepare(struct mmapd_client *client, const char *name,
                               const struct mmapd_open_opts *opts, cJSON *req,
                               struct call *ret_call)
{
	struct mmapd_region *region;

	region = calloc(1, sizeof(*region));
	if (!region) {
		cJSON_Delete(req);
		return error_set(-ENOMEM, "out of memory");
	}
	if (name)
		strcpy(region->name, name);
	region->fd = -1;
	region->adopt_fd = -1;
	region->mode = opts->mode;
	region->report_writes = opts->flags & MMAPD_OPEN_REPORT_WRITES;
	region->open_flags = opts->flags;
	region->prot = mode_prot[opts->mode];
	region->map_flags = mode_flags[opts->mode] |
	                    (opts->flags & MMAPD_OPEN_POPULATE ? MAP_POPULATE : 0) |
	                    (opts->flags & MMAPD_OPEN_STACK ? MAP_STACK : 0);
	region->offset = opts->offset;
	region->want_length = opts->length;
	region->reserve = opts->reserve;
	region->page = (size_t)sysconf(_SC_PAGESIZE);
	region->delta = (size_t)(opts->offset % region->page);
	region->refs = 1;
	client_ref(client);
	region->client = client;

	/* On the list before the request goes out, so that no event about it is missed. */
	pthread_mutex_lock(&client->lock);
	region->next = client->regions;
	if (client->regions)
		client->regions->prev = region;
	client->regions = region;
	pthread_mutex_unlock(&client->lock);

	ret_call->req = req;
	ret_call->want_fd = true;
	ret_call->on_reply = region_open_hook;
	ret_call->ctx = region;
	return 0;
}

int region_open_begin(struct mmapd_client *client, const char *name,
                      const struct mmapd_open_opts *opts, struct call *ret_call)
{
	struct mmapd_open_opts known;
	cJSON *req;
	int r;

	if (!client)
		return error_set(-EINVAL, "client is NULL");
	r = open_opts_read(opts, &known);
	if (r < 0)
		return r;
	opts = &known;
	r = region_name_check(name);
	if (r < 0)
		return r;
	r = open_opts_check(opts);
	if (r < 0)
		return r;
	r = open_check_daemon(client, opts);
	if (r < 0)
		return r;
	req = open_request_new(name, opts);
	if (!req)
		return -ENOMEM;
	return region_open_prepare(client, name, opts, req, ret_call);
}

int region_open_finish(struct mmapd_region *region)
{
	int r;

	region_page_check(region);
	pthread_mutex_lock(&region->client->lock);
	r = region_map(region, region->reserve);
	pthread_mutex_unlock(&region->client->lock);
	return r < 0 ? r : region_advise_huge(region);
}

/* Runs the call region_open_prepare() made and maps the region. Returns as mmapd_region_open(). */
static int region_open_run(struct mmapd_client *client, struct call *call,
                           struct mmapd_region **ret_region)
{
	struct mmapd_region *region = call->ctx;
	struct error_saved saved;
	int r;

	r = client_run(client, call);
	cJSON_Delete(call->req);
	cJSON_Delete(call->reply);
	if (r == 0)
		r = region_open_finish(region);
	if (r < 0) {
		/* Releasing the grant may set the message too; the caller must learn why it failed. */
		error_save(&saved);
		region_free(region);
		error_restore(&saved);
		return r;
	}
	*ret_region = region;
	return 0;
}

/*
 * Builds the adopt request for a descriptor sent along, in mode, under name (NULL: the daemon
 * names the region). Returns NULL on allocation failure (message set).
 */
static cJSON *adopt_request_new(const char *name, enum mmapd_mode mode)
{
	cJSON *req = cJSON_CreateObject();

	if (!req || !cJSON_AddStringToObject(req, PROTO_FIELD_OP, proto_op_name(PROTO_OP_ADOPT)) ||
	    (name && !cJSON_AddStringToObject(req, PROTO_FIELD_NAME, name)) ||
	    !cJSON_AddStringToObject(req, PROTO_FIELD_MODE, mode_names[mode]) ||
	    !cJSON_AddNumberToObject(req, PROTO_FIELD_FDS, 1)) {
		cJSON_Delete(req);
		request_nomem();
		return NULL;
	}
	return req;
}

int region_open_adopted(struct mmapd_client *client, const char *name,
                        const struct mmapd_open_opts *opts, int adopt_fd,
                        struct mmapd_region **ret_region)
{
	struct call call = { 0 };
	struct mmapd_region *region;
	cJSON *req = adopt_request_new(name, opts->mode);
	int r;

	if (!req) {
		close(adopt_fd);
		return -ENOMEM;
	}
	r = region_open_prepare(client, name, opts, req, &call);
	if (r < 0) {
		close(adopt_fd);
		return r;
	}
	region = call.ctx;
	region->adopt_fd = adopt_fd;
	call.send_fd = &region->adopt_fd;
	return region_open_run(client, &call, ret_region);
}

MMAPD_EXPORT int mmapd_region_open(struct mmapd_client *client, const char *name,
                                   const struct mmapd_open_opts *opts,
                                   struct mmapd_region **ret_region)
{
	struct call call = { 0 };
	int r;

	if (!ret_region)
		return error_set(-EINVAL, "ret_region is NULL");
	r = region_open_begin(client, name, opts, &call);
	if (r < 0)
		return r;
	return region_open_run(client, &call, ret_region);
}

/*
 * The close request goes out and the call returns: its reply is read with the next one
 * (region_free). What the daemon refuses is an MMAPD_EVENT_RELEASE_FAILED.
 */
MMAPD_EXPORT void mmapd_region_close(struct mmapd_region *region)
{
	if (region)
		region_free(region);
}

/* ---- asking again for a grant of an open region ---- */

/*
 * Builds the "open" request for a new grant of region by name in mode (exec again if it was
 * granted). Returns NULL on allocation failure (message set).
 */
static cJSON *regrant_request_new(const struct mmapd_region *region, enum mmapd_mode mode)
{
	cJSON *req = request_new(proto_op_name(PROTO_OP_OPEN), region->name);

	if (!req)
		return NULL;
	if (!cJSON_AddStringToObject(req, PROTO_FIELD_MODE, mode_names[mode]) ||
	    ((region->open_flags & MMAPD_OPEN_EXEC) &&
	     !cJSON_AddTrueToObject(req, PROTO_FIELD_EXEC))) {
		cJSON_Delete(req);
		request_nomem();
		return NULL;
	}
	return req;
}

/* Whether descriptor fd opens the file region has mapped. */
static bool region_same_file(const struct mmapd_region *region, int fd)
{
	struct stat old, now;

	return fstat(region->fd, &old) == 0 && fstat(fd, &now) == 0 &&
	       old.st_dev == now.st_dev && old.st_ino == now.st_ino;
}

/* ---- reopening after a reconnection ---- */

struct reopen {
	struct mmapd_region *region;
	bool has_handle;
	uint64_t handle;
	bool same;                    /* the new descriptor opens the file we have mapped */
};

/* The reopen reply, in stream order: the region takes the new grant if it is the same file. */
static int region_reopen_hook(struct mmapd_client *client, struct call *call, const cJSON *reply)
{
	struct reopen *ro = call->ctx;
	struct mmapd_region *region = ro->region;
	struct region_entry e;

	if (msg_get_u64(reply, "handle", &ro->handle) < 0)
		return call_fail(call, -EPROTO, "mmapd's open reply has no valid \"handle\"");
	ro->has_handle = true;
	if (open_reply_read(call, reply, region, region->mode, &e) < 0)
		return call->err;
	/* Closed meanwhile: its descriptor is gone, and the new grant goes back. */
	ro->same = !region->closed && region_same_file(region, call->fd);
	if (!ro->same)
		return 0;
	region->handle = ro->handle;
	region->gen = client->gen;
	/* A new daemon counts generations afresh. */
	atomic_store(&region->generation, 0);
	region_resized(region, e.info.size, e.info.generation);
	return 0;
}

/* Gives region up after a reconnection: it keeps its mapping and follows nothing. Lock held. */
static void region_give_up(struct mmapd_client *client, struct mmapd_region *region, int err,
                           const char *message)
{
	struct mmapd_event ev = {
		.type = MMAPD_EVENT_DELETED, .region = region->name,
		.error = err, .message = message,
	};

	region->granted = false;
	region->gone = true;
	region->shrinking = false;
	region_apply(region);
	event_push(client, &ev);
}

/*
 * Opens region again on the current connection. Returns 0 when it was re-granted or given
 * up, or a negative errno (message set) when the connection failed.
 */
static int region_reopen(struct mmapd_client *client, struct mmapd_region *region)
{
	struct reopen ro = { .region = region };
	struct call call = { .flags = CALL_INTERNAL, .want_fd = true,
	                     .on_reply = region_reopen_hook, .ctx = &ro };
	uint64_t gen;
	bool closed, adopted;
	int adopt_fd = -1, r;

	/* A copy of the adopted descriptor: mmapd_region_close() may close the region's meanwhile. */
	pthread_mutex_lock(&client->lock);
	gen = client->gen;
	closed = region->closed;
	adopted = region->adopt_fd >= 0;
	if (!closed && adopted && (adopt_fd = fcntl(region->adopt_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		r = -errno;
		region_give_up(client, region, r, "cannot copy the descriptor of the adopted file to "
		               "adopt it again after mmapd restarted");
	}
	pthread_mutex_unlock(&client->lock);
	if (closed || (adopted && adopt_fd < 0))
		return 0;
	call.req = adopted ? adopt_request_new(region->name, region->mode)
	                   : regrant_request_new(region, region->mode);
	if (!call.req) {
		if (adopt_fd >= 0)
			close(adopt_fd);
		return -ENOMEM;
	}
	call.send_fd = adopt_fd >= 0 ? &adopt_fd : NULL;
	r = client_run(client, &call);
	cJSON_Delete(call.req);
	cJSON_Delete(call.reply);
	if (call.fd >= 0)
		close(call.fd);
	if (adopt_fd >= 0)
		close(adopt_fd);
	/* Not the grant we want: hand it back. */
	if (ro.has_handle && !ro.same)
		client_release_grant(client, region->name, ro.handle, gen);

	pthread_mutex_lock(&client->lock);
	if (client->state != CLIENT_UP || client->gen != gen) {
		pthread_mutex_unlock(&client->lock);
		return r < 0 ? r : client_down_error(client);
	}
	/* The daemon refused, or the name is another file now. */
	if (!region->closed && (r < 0 || !ro.same))
		region_give_up(client, region, r < 0 ? r : -ESTALE,
		               r == 0 ? "the region's name refers to another file since mmapd "
		                        "restarted; this mapping is of the old one"
		               : r == -ENOENT ? "the region no longer exists after mmapd restarted"
		               : mmapd_last_message());
	pthread_mutex_unlock(&client->lock);
	return 0;
}

int regions_reopen(struct mmapd_client *client)
{
	struct mmapd_region **list = NULL, *region;
	size_t n = 0, i;
	int r = 0;

	/* Each region is held with a reference: mmapd_region_close() may run meanwhile. */
	pthread_mutex_lock(&client->lock);
	for (region = client->regions; region; region = region->next)
		n += region->granted && !region->gone;
	if (n > 0 && !(list = calloc(n, sizeof(*list)))) {
		pthread_mutex_unlock(&client->lock);
		return error_set(-ENOMEM, "out of memory reopening %zu regions", n);
	}
	i = 0;
	for (region = client->regions; region; region = region->next) {
		if (region->granted && !region->gone) {
			region->refs++;
			list[i++] = region;
		}
	}
	pthread_mutex_unlock(&client->lock);

	for (i = 0; i < n; i++) {
		if (r == 0)
			r = region_reopen(client, list[i]);
		pthread_mutex_lock(&client->lock);
		region_put(list[i]);
		pthread_mutex_unlock(&client->lock);
	}
	free(list);
	return r;
}

/* ---- changing the mode in place ---- */

/* A new grant of an open region in another mode, asked for by mmapd_region_set_mode(). */
struct regrant {
	struct mmapd_region *region;
	enum mmapd_mode mode;
	bool has_handle;
	uint64_t handle;
	uint64_t gen;                 /* the connection the grant belongs to */
};

/* The open reply: only read here; the region changes once the new mapping is made. */
static int region_regrant_hook(struct mmapd_client *client, struct call *call,
                               const cJSON *reply)
{
	struct regrant *rg = call->ctx;
	struct region_entry e;

	if (msg_get_u64(reply, "handle", &rg->handle) < 0)
		return call_fail(call, -EPROTO, "mmapd's open reply has no valid \"handle\"");
	rg->has_handle = true;
	rg->gen = client->gen;
	return open_reply_read(call, reply, rg->region, rg->mode, &e);
}

/*
 * Makes region's mapping one of fd in mode, protection prot and flags map_flags, at the same
 * address. Read-write to read-only only takes write access away (the pages, their advice and
 * memory locks stay); any other change maps the file pages again over the old ones with
 * MAP_FIXED (the pages a shrink cut off stay PROT_NONE, and pages of the reservation past them
 * stay reserved). The kernel checks the descriptor's access before it unmaps anything, so a
 * refused mapping leaves the old one. Returns 0 or a negative errno (message set). Lock held.
 */
static int region_remap(struct mmapd_region *region, enum mmapd_mode mode, int fd, int prot,
                        int map_flags)
{
	size_t page = region->page, acc = region->access_pages, pages = region->map_pages;
	off_t start = (off_t)region_start(region);
	int r;

	if (!region->map || pages == 0)
		return 0;
	if (region->mode == MMAPD_MODE_RW && !(prot & PROT_WRITE)) {
		if (acc > 0 && mprotect(region->map, acc * page, prot) < 0)
			goto fail;
		return 0;
	}
	if (acc > 0 && mmap(region->map, acc * page, prot, map_flags | MAP_FIXED, fd,
	                    start) == MAP_FAILED)
		goto fail;
	if (pages > acc && mmap(region->map + acc * page, (pages - acc) * page, PROT_NONE,
	                        map_flags | MAP_FIXED, fd,
	                        start + (off_t)(acc * page)) == MAP_FAILED) {
		r = -errno;
		/* Put the old file back over the part already replaced (its descriptor allows it). */
		if (acc > 0)
			mmap(region->map, acc * page, region->prot, region->map_flags | MAP_FIXED,
			     region->fd, start);
		errno = -r;
		goto fail;
	}
	if (region_wants_thp(region))
		madvise(region->map, pages * page, MADV_HUGEPAGE);
	return 0;

fail:
	r = -errno;
	return error_set(r, "cannot map region '%s' %s again: %s", region->name,
	                 mode_names[mode], mmapd_strerror(r));
}

/*
 * Swaps region over to the grant of rg with descriptor fd, when it is still the file mapped
 * on the live connection. On success the old grant is left in *ret_old (to close and release)
 * and fd belongs to the region. Returns 0 or a negative errno (message set). Lock held.
 */
static int region_regrant(struct mmapd_region *region, const struct regrant *rg, int fd,
                          struct regrant *ret_old, int *ret_old_fd)
{
	struct mmapd_client *client = region->client;
	int prot = mode_prot[rg->mode] | (region->prot & PROT_EXEC);
	int map_flags = mode_flags[rg->mode] | (region->map_flags & ~(MAP_SHARED | MAP_PRIVATE));
	int r;

	if (client->state != CLIENT_UP || client->gen != rg->gen)
		return error_set(-ECONNRESET, "the connection to mmapd was lost while '%s' was "
		                 "opened again; its mode is unchanged", region->name);
	if (region->gone || !region_same_file(region, fd))
		return error_set(-ESTALE, "the name '%s' no longer refers to the mapped file",
		                 region->name);
	r = region_remap(region, rg->mode, fd, prot, map_flags);
	if (r < 0)
		return r;
	*ret_old = (struct regrant){ .has_handle = region->granted, .handle = region->handle,
	                             .gen = region->gen };
	*ret_old_fd = region->fd;
	region->fd = fd;
	region->granted = true;
	region->handle = rg->handle;
	region->gen = rg->gen;
	region->mode = rg->mode;
	region->prot = prot;
	region->map_flags = map_flags;
	return 0;
}

MMAPD_EXPORT int mmapd_region_set_mode(struct mmapd_region *region, enum mmapd_mode mode)
{
	struct regrant rg = { .region = region, .mode = mode }, old = { 0 };
	struct call call = { .want_fd = true, .on_reply = region_regrant_hook, .ctx = &rg };
	struct mmapd_client *client;
	struct error_saved saved;
	int old_fd = -1, r;

	if (!region)
		return error_set(-EINVAL, "region is NULL");
	if ((unsigned)mode > MMAPD_MODE_COW)
		return error_set(-EINVAL, "unknown mode %d", (int)mode);
	client = region->client;
	pthread_mutex_lock(&client->lock);
	r = region->mode == mode ? 1
	    : region->gone ? error_set(-ESTALE, "region '%s' no longer follows its name",
	                               region->name) : 0;
	pthread_mutex_unlock(&client->lock);
	if (r != 0)
		return r < 0 ? r : 0;

	call.req = regrant_request_new(region, mode);
	if (!call.req)
		return -ENOMEM;
	r = client_run(client, &call);
	cJSON_Delete(call.req);
	cJSON_Delete(call.reply);
	if (r == 0) {
		pthread_mutex_lock(&client->lock);
		r = region_regrant(region, &rg, call.fd, &old, &old_fd);
		pthread_mutex_unlock(&client->lock);
	}
	if (r < 0) {
		/* Hand the new grant back; the caller must still learn why it failed. */
		error_save(&saved);
		if (call.fd >= 0)
			close(call.fd);
		if (rg.has_handle)
			client_release_grant(client, region->name, rg.handle, rg.gen);
		error_restore(&saved);
		return r;
	}
	close(old_fd);
	/* The mode has changed; a refused release of the old grant is an event. */
	if (old.has_handle)
		client_release_grant(client, region->name, old.handle, old.gen);
	return 0;
}

/* ---- accessors ---- */

MMAPD_EXPORT void *mmapd_region_data(const struct mmapd_region *region)
{
	return region ? atomic_load(&region->data) : NULL;
}

MMAPD_EXPORT size_t mmapd_region_length(const struct mmapd_region *region)
{
	return region ? atomic_load(&region->length) : 0;
}

MMAPD_EXPORT uint64_t mmapd_region_offset(const struct mmapd_region *region)
{
	return region ? region->offset : 0;
}

MMAPD_EXPORT uint64_t mmapd_region_size(const struct mmapd_region *region)
{
	return region ? atomic_load(&region->size) : 0;
}

MMAPD_EXPORT uint64_t mmapd_region_generation(const struct mmapd_region *region)
{
	return region ? atomic_load(&region->generation) : 0;
}

MMAPD_EXPORT enum mmapd_mode mmapd_region_mode(const struct mmapd_region *region)
{
	return region ? region->mode : MMAPD_MODE_RO;
}

MMAPD_EXPORT const char *mmapd_region_name(const struct mmapd_region *region)
{
	return region ? region->name : NULL;
}

MMAPD_EXPORT int mmapd_region_fd(const struct mmapd_region *region)
{
	return region ? region->fd : -EBADF;
}

MMAPD_EXPORT struct mmapd_client *mmapd_region_client(const struct mmapd_region *region)
{
	return region ? region->client : NULL;
}

MMAPD_EXPORT int mmapd_region_read(const struct mmapd_region *region, uint64_t off,
                                   void *buf, size_t len)
{
	int r;

	if (!region || (!buf && len > 0))
		return error_set(-EINVAL, "region or buf is NULL");
	r = region_check_range(region, off, len);
	if (r < 0)
		return r;
	if (len > 0)
		memcpy(buf, atomic_load(&region->data) + off, len);
	return 0;
}

MMAPD_EXPORT int mmapd_region_write(struct mmapd_region *region, uint64_t off,
                                    const void *buf, size_t len)
{
	int r;

	if (!region || (!buf && len > 0))
		return error_set(-EINVAL, "region or buf is NULL");
	if (region->mode == MMAPD_MODE_RO)
		return error_set(-EACCES, "region '%s' is mapped read-only", region->name);
	r = region_check_range(region, off, len);
	if (r < 0 || len == 0)
		return r;
	memcpy(atomic_load(&region->data) + off, buf, len);
	/* Copy-on-write changes stay in this process: there is nothing to tell. */
	if (region->report_writes && region->mode == MMAPD_MODE_RW)
		return mmapd_region_report_changed(region, off, len, NULL);
	return 0;
}
