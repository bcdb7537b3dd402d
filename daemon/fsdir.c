/* SPDX-License-Identifier: MIT */
/*
 * Filesystem work in the data directory (see fsdir.h). Names reaching this file have been
 * checked by name_check(), so each is a single harmless component; resolution is still done
 * with openat2's RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, so that a symlink planted in the data
 * directory is refused by the kernel and not by our care alone. Where openat2 is missing
 * (ENOSYS, or EPERM from a seccomp filter that does not know it) a single-component
 * openat(O_NOFOLLOW) gives the same guarantee for such names.
 */
#include "fsdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "name.h"

int fsdir_open_beneath(int dirfd, const char *name, int flags)
{
	static int no_openat2;
	struct open_how how;
	int fd;

	flags |= O_CLOEXEC | O_NOFOLLOW;
	if (!no_openat2) {
		memset(&how, 0, sizeof(how));
		how.flags = (uint64_t)flags;
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
		do
			fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		while (fd < 0 && errno == EINTR);
		if (fd >= 0)
			return fd;
		if (errno != ENOSYS && errno != EPERM)
			return -errno;
		no_openat2 = 1;
	}
	do
		fd = openat(dirfd, name, flags);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

int fsdir_lookup(int dirfd, const char *name, struct stat *ret_st, int *ret_fd)
{
	int fd, r;

	/*
	 * O_PATH opens nothing: no FIFO blocks us, no device sees an open. With O_NOFOLLOW a
	 * final symlink yields a descriptor of the link itself, which fstat reports as such.
	 */
	fd = fsdir_open_beneath(dirfd, name, O_PATH);
	if (fd < 0)
		return fd;
	if (fstat(fd, ret_st) < 0) {
		r = -errno;
		goto fail;
	}
	if (S_ISLNK(ret_st->st_mode)) {
		r = -ELOOP;
		goto fail;
	}
	if (!S_ISREG(ret_st->st_mode)) {
		r = -EINVAL;
		goto fail;
	}
	if (ret_fd)
		*ret_fd = fd;
	else
		close(fd);
	return 0;
fail:
	close(fd);
	return r;
}

int fsdir_reopen(int fd, int flags)
{
	char path[32];
	int nfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	do
		nfd = open(path, flags | O_CLOEXEC | O_NOCTTY);
	while (nfd < 0 && errno == EINTR);
	return nfd < 0 ? -errno : nfd;
}

int fsdir_make_private(int fd, const struct stat *st)
{
	if (st->st_uid != geteuid() && fchown(fd, geteuid(), getegid()) < 0)
		return -errno;
	return fchmod(fd, FSDIR_FILE_MODE) < 0 ? -errno : 0;
}

void fsdir_tmp_name(char *buf, unsigned long counter)
{
	snprintf(buf, FSDIR_TMP_NAME_MAX, FSDIR_TMP_PREFIX "%ld-%lu", (long)getpid(), counter);
}

int fsdir_reserve(int fd, uint64_t size)
{
	int r;

	/*
	 * fallocate(2) rather than posix_fallocate(3): where the file system cannot reserve
	 * blocks, glibc would emulate it by writing a byte into every block, which reserves
	 * nothing on copy-on-write file systems and takes hours on a large region.
	 */
	do
		r = fallocate(fd, 0, 0, (off_t)size);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int fsdir_resize(int fd, uint64_t size, bool sparse, bool *ret_fell_back)
{
	int r;

	/* fallocate(2) of 0 bytes is EINVAL; a zero-length region has nothing to reserve. */
	if (!sparse && size > 0) {
		r = fsdir_reserve(fd, size);
		if (r != -EOPNOTSUPP)
			return r;
		*ret_fell_back = true;
	}
	do
		r = ftruncate(fd, (off_t)size);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* renameat2(RENAME_NOREPLACE), or link+unlink where the file system lacks it. */
static int fsdir_rename_noreplace(int dirfd, const char *from, const char *to)
{
	if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (linkat(dirfd, from, dirfd, to, 0) < 0)
		return -errno;
	unlinkat(dirfd, from, 0);
	return 0;
}

int fsdir_create_file(int dirfd, const char *tmpname, const char *name, uint64_t size,
                      bool sparse, bool *ret_fell_back)
{
	int fd, r;

	do
		fd = openat(dirfd, tmpname, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		            FSDIR_FILE_MODE);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	/* The umask can only take bits away, but it can take the owner's too. */
	if (fchmod(fd, FSDIR_FILE_MODE) < 0) {
		r = -errno;
		goto fail;
	}

	r = fsdir_resize(fd, size, sparse, ret_fell_back);
	if (r < 0)
		goto fail;
	if (fdatasync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	r = fsdir_rename_noreplace(dirfd, tmpname, name);
	if (r < 0)
		goto fail;
	/* The name is in place; only its durability is at stake now, and a failure is real. */
	if (fsync(dirfd) < 0) {
		r = -errno;
		unlinkat(dirfd, name, 0);
		close(fd);
		return r;
	}
	return fd;

fail:
	unlinkat(dirfd, tmpname, 0);
	close(fd);
	return r;
}

int fsdir_unlink(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) < 0)
		return -errno;
	if (fsync(dirfd) < 0)
		return -errno;
	return 0;
}

/* Opens a directory stream on dirfd without taking dirfd itself. */
static DIR *fsdir_opendir(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d) {
		int e = errno;

		close(fd);
		errno = e;
	}
	return d;
}

int fsdir_scan(int dirfd, int (*cb)(void *userdata, const char *name), void *userdata)
{
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = fsdir_opendir(dirfd);
	if (!d)
		return -errno;
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				r = -errno;
			break;
		}
		if (name_check(de->d_name, strlen(de->d_name)) < 0)
			continue;
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;

			if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
		} else if (de->d_type != DT_REG) {
			continue;
		}
		r = cb(userdata, de->d_name);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

int fsdir_clean_stale(int dirfd)
{
	struct dirent *de;
	int count = 0;
	DIR *d;

	d = fsdir_opendir(dirfd);
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, FSDIR_TMP_PREFIX, strlen(FSDIR_TMP_PREFIX)) != 0)
			continue;
		if (unlinkat(dirfd, de->d_name, 0) == 0)
			count++;
	}
	closedir(d);
	return count;
}
