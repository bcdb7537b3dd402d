/* SPDX-License-Identifier: MIT */
/*
 * A piece of a window as a stdio stream (fopencookie(3)), for code that wants fprintf,
 * fscanf, getline, fread and fwrite on a region, as fmmap's Reader and Writer and fmemopen(3)
 * over memory give.
 *
 * The stream covers window offsets off..off+len (len 0: from off to the end of the window,
 * following its length as the region grows or shrinks). Every read, write and seek is checked
 * against those bounds and against the part of the window a shrink left accessible, with the
 * client's lock held: so neither a remap (growth, set_mode) nor mmapd_region_close() can
 * happen during a copy. The stream never grows the region: reading at the end is end of file,
 * writing copies what fits and fails with ENOSPC for the rest, and seeking is allowed from 0 to
 * the stream's length (EINVAL beyond, as fmemopen).
 *
 * The stream holds a reference on the region's struct (region_put()) and on its client, so
 * that it stays safe after mmapd_region_close(): the mapping is gone then, and every read and
 * write fails with EBADF until fclose(), which drops the references. A write to a region that
 * mmapd_region_set_mode() made read-only fails with EACCES. With MMAPD_OPEN_REPORT_WRITES (a
 * read-write region) each write stdio hands down (a buffer's worth, at fflush, or at fclose)
 * is reported as mmapd_region_write() reports.
 *
 * In the domain layer (see internal.h): it calls region.c (region_put), mapping.c
 * (region_check_range) and coord.c (mmapd_region_report_changed).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

struct cursor {
	struct mmapd_region *region;  /* a reference, and one on its client */
	uint64_t start;               /* window offset of the stream's first byte */
	uint64_t len;                 /* the stream's length; 0: up to the end of the window */
	uint64_t pos;                 /* the stream's offset */
};

/*
 * The stream's length: len, or what the window holds past start for a following stream.
 * Bytes a shrink made inaccessible are not counted in *ret_room, the bytes from pos that may
 * be touched. Returns false with errno EBADF when the region was closed. Lock held.
 */
static bool cursor_bounds(const struct cursor *c, uint64_t *ret_length, uint64_t *ret_room)
{
	const struct mmapd_region *region = c->region;
	uint64_t usable = atomic_load(&region->usable);
	uint64_t avail = usable > c->start ? usable - c->start : 0;
	uint64_t end = c->len ? min_u64(c->len, avail) : avail;

	if (region->closed) {
		errno = EBADF;
		return false;
	}
	*ret_length = c->len ? c->len : avail;
	*ret_room = end > c->pos ? end - c->pos : 0;
	return true;
}

static ssize_t cursor_read(void *cookie, char *buf, size_t size)
{
	struct cursor *c = cookie;
	pthread_mutex_t *lock = &c->region->client->lock;
	uint64_t length, room;
	size_t n;

	pthread_mutex_lock(lock);
	if (!cursor_bounds(c, &length, &room)) {
		pthread_mutex_unlock(lock);
		return -1;
	}
	n = (size_t)min_u64(size, room);
	memcpy(buf, atomic_load(&c->region->data) + c->start + c->pos, n);
	c->pos += n;
	pthread_mutex_unlock(lock);
	return (ssize_t)n;
}

static ssize_t cursor_write(void *cookie, const char *buf, size_t size)
{
	struct cursor *c = cookie;
	struct mmapd_region *region = c->region;
	uint64_t length, room, at;
	bool report;
	size_t n;
	int r;

	pthread_mutex_lock(&region->client->lock);
	if (!cursor_bounds(c, &length, &room)) {
		pthread_mutex_unlock(&region->client->lock);
		return 0;
	}
	if (region->mode == MMAPD_MODE_RO) {
		pthread_mutex_unlock(&region->client->lock);
		errno = EACCES;
		return 0;
	}
	n = (size_t)min_u64(size, room);
	at = c->start + c->pos;
	memcpy(atomic_load(&region->data) + at, buf, n);
	c->pos += n;
	report = n > 0 && region->report_writes && region->mode == MMAPD_MODE_RW;
	pthread_mutex_unlock(&region->client->lock);

	/* The report is a call to the daemon: without the lock. The bytes are copied anyway. */
	if (report && (r = mmapd_region_report_changed(region, at, n, NULL)) < 0) {
		errno = -r;
		return 0;
	}
	/* stdio takes a short count as an error with errno: the window is full. */
	if (n < size)
		errno = ENOSPC;
	return (ssize_t)n;
}

static int cursor_seek(void *cookie, off64_t *offset, int whence)
{
	struct cursor *c = cookie;
	pthread_mutex_t *lock = &c->region->client->lock;
	uint64_t length, room, base, pos;
	bool ok;

	pthread_mutex_lock(lock);
	ok = cursor_bounds(c, &length, &room);
	pthread_mutex_unlock(lock);
	if (!ok)
		return -1;
	if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) {
		errno = EINVAL;
		return -1;
	}
	base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? c->pos : length;
	/* base + *offset, which must lie in 0..length; -(*offset + 1) cannot overflow. */
	if (*offset < 0) {
		uint64_t back = (uint64_t)-(*offset + 1);

		ok = back < base;
		pos = ok ? base - back - 1 : 0;
	} else {
		pos = base + (uint64_t)*offset;
		ok = pos >= base;
	}
	if (!ok || pos > length) {
		errno = EINVAL;
		return -1;
	}
	c->pos = pos;
	*offset = (off64_t)c->pos;
	return 0;
}

static int cursor_close(void *cookie)
{
	struct cursor *c = cookie;
	struct mmapd_client *client = c->region->client;

	pthread_mutex_lock(&client->lock);
	region_put(c->region);
	pthread_mutex_unlock(&client->lock);
	client_unref(client);
	free(c);
	return 0;
}

/*
 * The mode fopencookie() gets for an fopen(3) mode of "r", "w" or both ("r+", "w+"; "b"
 * anywhere after the first letter is ignored), or NULL for any other.
 */
static const char *cursor_mode(const char *mode)
{
	bool plus = false;

	if (!mode || (mode[0] != 'r' && mode[0] != 'w'))
		return NULL;
	for (const char *p = mode + 1; *p; p++) {
		if (*p == '+' && !plus)
			plus = true;
		else if (*p != 'b')
			return NULL;
	}
	return mode[0] == 'r' ? (plus ? "r+" : "r") : (plus ? "w+" : "w");
}

MMAPD_EXPORT int mmapd_region_fopen(struct mmapd_region *region, uint64_t off, uint64_t len,
                                    const char *mode, FILE **ret_file)
{
	static const cookie_io_functions_t io = {
		.read = cursor_read, .write = cursor_write, .seek = cursor_seek,
		.close = cursor_close,
	};
	const char *fmode = cursor_mode(mode);
	struct cursor *c;
	FILE *f;
	int r;

	if (!region || !ret_file)
		return error_set(-EINVAL, "region or ret_file is NULL");
	if (!fmode)
		return error_set(-EINVAL, "stream mode \"%s\" is not one of r, r+, w, w+ (b "
		                 "allowed)", mode ? mode : "(null)");
	/* Every mode but "r" writes. */
	if (strcmp(fmode, "r") != 0 && region->mode == MMAPD_MODE_RO)
		return error_set(-EACCES, "region '%s' is mapped read-only: no stream in mode \"%s\"",
		                 region->name, mode);
	if (len > SIZE_MAX)
		return error_set(-ERANGE, "a stream of %llu bytes does not fit the address space",
		                 (unsigned long long)len);
	r = region_check_range(region, off, (size_t)len);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(-ENOMEM, "out of memory");
	*c = (struct cursor){ .region = region, .start = off, .len = len };
	pthread_mutex_lock(&region->client->lock);
	region->refs++;
	pthread_mutex_unlock(&region->client->lock);
	client_ref(region->client);
	f = fopencookie(c, fmode, io);
	if (!f) {
		cursor_close(c);
		return error_set(-ENOMEM, "out of memory");
	}
	*ret_file = f;
	return 0;
}
