/* SPDX-License-Identifier: MIT */
/*
 * Counting open descriptors (see fdcount.h) by listing /proc/self/fd. The directory is opened
 * close-on-exec like every other descriptor, and its own entry is left out of the count, so
 * the answer is the same whether or not the count itself holds a descriptor.
 */
#include "fdcount.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int fd_count(void)
{
	struct dirent *de;
	DIR *dir;
	int fd, self, count = 0, r;

	fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		r = -errno;
		close(fd);
		return r;
	}
	self = dirfd(dir);

	for (;;) {
		char *end;
		long n;

		errno = 0;
		de = readdir(dir);
		if (!de)
			break;
		n = strtol(de->d_name, &end, 10);
		/* Skip "." and "..", and the descriptor we are reading through. */
		if (end == de->d_name || *end != '\0' || n == self)
			continue;
		count++;
	}
	r = errno ? -errno : count;
	closedir(dir);
	return r;
}
