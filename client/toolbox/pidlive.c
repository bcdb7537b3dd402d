/* SPDX-License-Identifier: MIT */
/*
 * pid_alive(): kill(pid, 0), then /proc/<pid>/stat's state letter, because a zombie (dead
 * but not reaped yet, e.g. by the very process that waits on it) still answers kill().
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pidlive.h"

bool pid_alive(uint32_t pid)
{
	char path[32], buf[512], *paren;
	ssize_t n;
	int fd;

	if (pid == 0 || pid > (uint32_t)INT32_MAX)
		return false;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)   /* gone since kill(), unless there is no /proc here to ask */
		return errno != ENOENT || access("/proc/self/stat", F_OK) < 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything, so the state follows the last ')'. */
	paren = strrchr(buf, ')');
	return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}
