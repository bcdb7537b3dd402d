/*
 * Regions of libmmapd: a grant asked for with "open", the descriptor that came with the reply,
 * and the mapping of the window the caller wanted. mmap() needs a page-aligned offset, so the
 * mapping starts at the window's offset rounded down to the page size and the pointer the
 * caller sees is advanced to the exact byte asked for. A region holds a reference on its client,
 * so it stays usable (and closable) after mmapd_disconnect(); the daemon has then released the
 * grant already and closing only unmaps.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "msg.h"

struct mmapd_region {
	struct mmapd_client *client;  /* a reference */
	uint64_t handle;              /* the grant, for "close" */
	int fd;
	enum mmapd_mode mode;
	uint64_t size;                /* of the whole region, as the open reply said */
	uint64_t offset;              /* of the window in the region */
	size_t length;                /* of the window */
	void *map;                    /* the page-aligned mapping and its length */
	size_t map_len;
	uint8_t *data;                /* map advanced to the window's first byte */
	char name[MMAPD_NAME_MAX + 1];
};

static const char *const mode_names[] = {
	[MMAPD_MODE_RO] = "ro",
	[MMAPD_MODE_RW] = "rw",
	[MMAPD_MODE_COW] = "cow",
};

#define OPEN_FLAGS_ALL (MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL | MMAPD_OPEN_ANONYMOUS | \
                        MMAPD_OPEN_SPARSE)

/* Checks what can be checked before a round trip. Returns 0 or -EINVAL/-EFBIG (message set). */
static int open_opts_check(const struct mmapd_open_opts *opts)
{
	if (opts->flags & ~OPEN_FLAGS_ALL)
		return error_set(-EINVAL, "unknown open flags 0x%x", opts->flags & ~OPEN_FLAGS_ALL);
	if ((unsigned)opts->mode > MMAPD_MODE_COW)
		return error_set(-EINVAL, "unknown mode %d", (int)opts->mode);
	if (!(opts->flags & MMAPD_OPEN_CREATE)) {
		if (opts->flags & (MMAPD_OPEN_EXCL | MMAPD_OPEN_ANONYMOUS | MMAPD_OPEN_SPARSE))
			return error_set(-EINVAL, "EXCL, ANONYMOUS and SPARSE need MMAPD_OPEN_CREATE");
		return 0;
	}
	if (opts->size == 0)
		return error_set(-EINVAL, "a region cannot be created with size 0");
	if (opts->size > PROTO_ID_MAX)
		return error_set(-EFBIG, "size %llu is above what the protocol can carry",
		                 (unsigned long long)opts->size);
	return 0;
}

/* Builds the "open" request. Returns NULL on allocation failure (message set). */
static cJSON *open_request_new(const char *name, const struct mmapd_open_opts *opts)
{
	unsigned flags = opts->flags;
	cJSON *req = request_new("open");

	if (!req)
		return NULL;
	if (!cJSON_AddStringToObject(req, "name", name) ||
	    !cJSON_AddStringToObject(req, "mode", mode_names[opts->mode]))
		goto fail;
	/* The daemon refuses creation fields on a plain open, so they are sent only with create. */
	if ((flags & MMAPD_OPEN_CREATE) &&
	    (!cJSON_AddTrueToObject(req, "create") ||
	     !cJSON_AddNumberToObject(req, "size", (double)opts->size) ||
	     ((flags & MMAPD_OPEN_EXCL) && !cJSON_AddTrueToObject(req, "exclusive")) ||
	     ((flags & MMAPD_OPEN_ANONYMOUS) && !cJSON_AddTrueToObject(req, "anonymous")) ||
	     ((flags & MMAPD_OPEN_SPARSE) && !cJSON_AddTrueToObject(req, "sparse"))))
		goto fail;
	return req;

fail:
	cJSON_Delete(req);
	error_set(-ENOMEM, "out of memory building a request");
	return NULL;
}

/*
 * Reads the open reply into region (handle, size, mode check). Returns 0 or -EPROTO (message
 * set); *ret_has_handle says whether a grant handle was read, so it can be released.
 */
static int region_read_reply(struct mmapd_region *region, const cJSON *reply,
                             bool *ret_has_handle)
{
	struct mmapd_region_info info;
	const char *mode;
	int r;

	*ret_has_handle = msg_get_u64(reply, "handle", &region->handle) == 0;
	if (!*ret_has_handle)
		return error_set(-EPROTO, "mmapd's open reply has no valid \"handle\"");
	r = region_info_parse(cJSON_GetObjectItemCaseSensitive(reply, "region"), &info);
	if (r < 0)
		return r;
	if (msg_get_string(reply, "mode", &mode) < 0 || strcmp(mode, mode_names[region->mode]) != 0)
		return error_set(-EPROTO, "mmapd granted a different mode than \"%s\"",
		                 mode_names[region->mode]);
	region->size = info.size;
	return 0;
}

/*
 * Maps the window of opts over region->fd. Returns 0, -ERANGE when the window does not lie
 * inside the region, or mmap's error (-EACCES when the descriptor does not allow the mode).
 */
static int region_map(struct mmapd_region *region, const struct mmapd_open_opts *opts)
{
	static const int prot[] = {
		[MMAPD_MODE_RO] = PROT_READ,
		[MMAPD_MODE_RW] = PROT_READ | PROT_WRITE,
		[MMAPD_MODE_COW] = PROT_READ | PROT_WRITE,
	};
	static const int flags[] = {
		[MMAPD_MODE_RO] = MAP_SHARED,
		[MMAPD_MODE_RW] = MAP_SHARED,
		[MMAPD_MODE_COW] = MAP_PRIVATE,
	};
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t length, delta;
	void *map;
	int r;

	/* A window holds at least one byte, so a region of size 0 has no window at all. */
	if (opts->offset >= region->size ||
	    (opts->length && opts->length > region->size - opts->offset))
		return error_set(-ERANGE, "window %llu+%llu lies outside region '%s' of %llu bytes",
		                 (unsigned long long)opts->offset,
		                 (unsigned long long)opts->length, region->name,
		                 (unsigned long long)region->size);
	length = opts->length ? opts->length : region->size - opts->offset;
	delta = opts->offset % page;
#if SIZE_MAX < UINT64_MAX
	if (length + delta > SIZE_MAX)
		return error_set(-ERANGE, "window of %llu bytes does not fit the address space",
		                 (unsigned long long)length);
#endif

	map = mmap(NULL, (size_t)(length + delta), prot[region->mode], flags[region->mode],
	           region->fd, (off_t)(opts->offset - delta));
	if (map == MAP_FAILED) {
		r = -errno;
		return error_set(r, "cannot map region '%s' %s: %s", region->name,
		                 mode_names[region->mode], mmapd_strerror(r));
	}
	region->map = map;
	region->map_len = (size_t)(length + delta);
	region->data = (uint8_t *)map + delta;
	region->offset = opts->offset;
	region->length = (size_t)length;
	return 0;
}

MMAPD_EXPORT int mmapd_region_open(struct mmapd_client *client, const char *name,
                                   const struct mmapd_open_opts *opts,
                                   struct mmapd_region **ret_region)
{
	static const struct mmapd_open_opts defaults;
	struct mmapd_region *region = NULL;
	struct error_saved saved;
	cJSON *req = NULL, *reply = NULL;
	bool has_handle = false;
	int fd = -1, r;

	if (!client || !ret_region)
		return error_set(-EINVAL, "client or ret_region is NULL");
	if (!opts)
		opts = &defaults;
	r = region_name_check(name);
	if (r < 0)
		return r;
	r = open_opts_check(opts);
	if (r < 0)
		return r;

	region = calloc(1, sizeof(*region));
	if (!region)
		return error_set(-ENOMEM, "out of memory");
	region->fd = -1;
	region->mode = opts->mode;
	strcpy(region->name, name);

	req = open_request_new(name, opts);
	if (!req) {
		r = -ENOMEM;
		goto fail;
	}
	r = client_call(client, req, 1, &reply, &fd);
	if (r < 0)
		goto fail;
	region->fd = fd;

	r = region_read_reply(region, reply, &has_handle);
	if (r < 0)
		goto fail;
	r = region_map(region, opts);
	if (r < 0)
		goto fail;

	client_ref(client);
	region->client = client;
	cJSON_Delete(req);
	cJSON_Delete(reply);
	*ret_region = region;
	return 0;

fail:
	if (region->fd >= 0)
		close(region->fd);
	/* Releasing the grant may fail too; the caller must still learn why the open failed. */
	if (has_handle) {
		error_save(&saved);
		client_release_grant(client, region->handle);
		error_restore(&saved);
	}
	free(region);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	return r;
}

MMAPD_EXPORT int mmapd_region_close(struct mmapd_region *region)
{
	int r;

	if (!region)
		return 0;
	/* Unmap first: once the grant is released, the daemon may count on nobody using it. */
	munmap(region->map, region->map_len);
	close(region->fd);
	r = client_release_grant(region->client, region->handle);
	client_unref(region->client);
	free(region);
	return r;
}

MMAPD_EXPORT void *mmapd_region_data(const struct mmapd_region *region)
{
	return region ? region->data : NULL;
}

MMAPD_EXPORT size_t mmapd_region_length(const struct mmapd_region *region)
{
	return region ? region->length : 0;
}

MMAPD_EXPORT uint64_t mmapd_region_offset(const struct mmapd_region *region)
{
	return region ? region->offset : 0;
}

MMAPD_EXPORT uint64_t mmapd_region_size(const struct mmapd_region *region)
{
	return region ? region->size : 0;
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

/* Checks that off..off+len lies in the window. Returns 0 or -ERANGE (message set). */
static int region_check_range(const struct mmapd_region *region, uint64_t off, size_t len)
{
	if (off > region->length || len > region->length - off)
		return error_set(-ERANGE, "%llu+%zu lies outside the %zu-byte window of '%s'",
		                 (unsigned long long)off, len, region->length, region->name);
	return 0;
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
		memcpy(buf, region->data + off, len);
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
	if (r < 0)
		return r;
	if (len > 0)
		memcpy(region->data + off, buf, len);
	return 0;
}
