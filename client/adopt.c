/* SPDX-License-Identifier: MIT */
/*
 * Adopting files the caller opened (mmapd_region_adopt(), mmapd_map_path()): the adopt
 * request carries a descriptor of the file (struct call's send_fd, sent with the frame's first
 * byte), and its reply is open's, so the region is made and mapped by region.c's
 * region_open_adopted(). The region keeps that descriptor (a copy of the caller's, or the one
 * mmapd_map_path() opened) to adopt the file again after a reconnection. The library never
 * opens a path for the daemon: mmapd_map_path() opens it here, with the caller's own
 * credentials, and only the descriptor travels.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domain.h"

/* What adopt takes of struct mmapd_open_opts' flags (the rest concern creating by name). */
#define ADOPT_FLAGS (MMAPD_OPEN_REPORT_WRITES | MMAPD_OPEN_POPULATE)

/* Checks opts (read already) for adopt. flags: what else the caller allows. */
static int adopt_opts_check(const struct mmapd_open_opts *opts, unsigned flags)
{
	if (opts->flags & ~(ADOPT_FLAGS | flags))
		return error_set(-EINVAL, "open flags 0x%x do not apply to an adopted file",
		                 opts->flags & ~(ADOPT_FLAGS | flags));
	if ((unsigned)opts->mode > MMAPD_MODE_COW)
		return error_set(-EINVAL, "unknown mode %d", (int)opts->mode);
	if (opts->policy)
		return error_set(-EINVAL, "an adopted region starts with the manual policy; use "
		                 "mmapd_set_policy()");
	return 0;
}

/* Adopts fd (consumed) with opts already read and checked. */
static int adopt_fd(struct mmapd_client *client, int fd, const char *name,
                    const struct mmapd_open_opts *opts, struct mmapd_region **ret_region)
{
	struct mmapd_open_opts plain = *opts;
	int r;

	if (name) {
		r = region_name_check(name);
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	/* Only the flags that concern the mapping go on. */
	plain.flags &= ADOPT_FLAGS;
	return region_open_adopted(client, name, &plain, fd, ret_region);
}

MMAPD_EXPORT int mmapd_region_adopt(struct mmapd_client *client, int fd, const char *name,
                                    const struct mmapd_open_opts *opts,
                                    struct mmapd_region **ret_region)
{
	struct mmapd_open_opts known;
	int r;

	if (!client || !ret_region)
		return error_set(-EINVAL, "client or ret_region is NULL");
	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return error_set(-EBADF, "fd %d is not an open descriptor", fd);
	r = open_opts_read(opts, &known);
	if (r < 0)
		return r;
	r = adopt_opts_check(&known, 0);
	if (r < 0)
		return r;
	/* The region's own copy: the caller may close fd at once. */
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		return error_set(r, "cannot copy the descriptor: %s", mmapd_strerror(r));
	}
	return adopt_fd(client, fd, name, &known, ret_region);
}

MMAPD_EXPORT int mmapd_map_path(struct mmapd_client *client, const char *path,
                                const struct mmapd_open_opts *opts,
                                struct mmapd_region **ret_region)
{
	struct mmapd_open_opts known;
	struct stat st;
	int flags, fd, r;

	if (!client || !path || !ret_region)
		return error_set(-EINVAL, "client, path or ret_region is NULL");
	r = open_opts_read(opts, &known);
	if (r < 0)
		return r;
	r = adopt_opts_check(&known, MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL);
	if (r < 0)
		return r;
	if ((known.flags & MMAPD_OPEN_EXCL) && !(known.flags & MMAPD_OPEN_CREATE))
		return error_set(-EINVAL, "MMAPD_OPEN_EXCL needs MMAPD_OPEN_CREATE");
	flags = (known.mode == MMAPD_MODE_RW ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY;
	/* A file this call may create is opened for writing too, to give it its size. */
	if (known.flags & MMAPD_OPEN_CREATE)
		flags = (flags & ~O_ACCMODE) | O_RDWR | O_CREAT |
		        (known.flags & MMAPD_OPEN_EXCL ? O_EXCL : 0);
	fd = open(path, flags, 0666);
	if (fd < 0) {
		r = -errno;
		return error_set(r, "cannot open '%s': %s", path, mmapd_strerror(r));
	}
	/* A file just made (or found empty) gets the size asked for, as a region created would. */
	if ((known.flags & MMAPD_OPEN_CREATE) && known.size > 0 && fstat(fd, &st) == 0 &&
	    st.st_size == 0 && S_ISREG(st.st_mode) && ftruncate(fd, (off_t)known.size) < 0) {
		r = -errno;
		error_set(r, "cannot size '%s': %s", path, mmapd_strerror(r));
		close(fd);
		return r;
	}
	return adopt_fd(client, fd, NULL, &known, ret_region);
}
