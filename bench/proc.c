/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's other processes (see proc.h). Reading /proc/PID of a process of ours needs
 * no privilege; the times in /proc/PID/stat are in clock ticks (10 ms on most systems), so
 * callers measure over windows of a second or more.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"
#include "proc.h"

#define PROC_POLL_MS 10

int proc_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char dir[4096], file[4096 + 64];

	while (path && *path) {
		size_t len = strcspn(path, ":");

		snprintf(dir, sizeof(dir), "%.*s", (int)len, path);
		snprintf(file, sizeof(file), "%s/%s", len ? dir : ".", prog);
		if (access(file, X_OK) == 0)
			return 1;
		path += len + (path[len] == ':');
	}
	return 0;
}

pid_t proc_spawn(char *const argv[], int cpu, int out_fd)
{
	pid_t pid = fork();
	int null;

	if (pid != 0)
		return pid < 0 ? -errno : pid;
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(out_fd >= 0 ? out_fd : null, 1) < 0 || dup2(null, 2) < 0 ||
	    setpgid(0, 0) < 0 || cpu_pin(cpu) < 0)
		_exit(127);
	execvp(argv[0], argv);
	_exit(127);
}

int proc_wait_listening(const char *path, pid_t pid, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timespec pause = { .tv_nsec = PROC_POLL_MS * 1000000L };
	int waited;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (waited = 0; waited < timeout_ms; waited += PROC_POLL_MS) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -ECHILD;
		nanosleep(&pause, NULL);
	}
	return -ETIMEDOUT;
}

void proc_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* Reads /proc/pid/name into buf (NUL-terminated). Returns 0 or -errno. */
static int proc_read(pid_t pid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	return 0;
}

int proc_cpu_ns(pid_t pid, uint64_t *ret_ns)
{
	unsigned long long utime, stime;
	char buf[1024], *p;
	int r = proc_read(pid, "stat", buf, sizeof(buf));

	if (r < 0)
		return r;
	/* After the command name in parentheses: state is field 3, utime 14, stime 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	                 &utime, &stime) != 2)
		return -EIO;
	*ret_ns = (utime + stime) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
	return 0;
}

int proc_rss_kib(pid_t pid, uint64_t *ret_kib)
{
	unsigned long long kib;
	char buf[4096], *p;
	int r = proc_read(pid, "status", buf, sizeof(buf));

	if (r < 0)
		return r;
	p = strstr(buf, "\nVmRSS:");
	if (!p || sscanf(p + 7, "%llu", &kib) != 1)
		return -EIO;
	*ret_kib = kib;
	return 0;
}

int proc_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}
