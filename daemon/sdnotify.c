/*
 * sd_notify(3) and sd_listen_fds(3) re-implemented (see sdnotify.h). $NOTIFY_SOCKET is a filesystem path or, with
 * a leading '@', a name in the abstract namespace. A fresh close-on-exec datagram socket is
 * used per message: notifications are rare (ready, stopping) and this keeps no state.
 */
#include "sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define SDLISTEN_FDS_START 3
#define SDLISTEN_FDS_MAX   1024   /* more than any unit passes; bounds a bad $LISTEN_FDS */

int sdnotify_wanted(void)
{
	const char *path = getenv("NOTIFY_SOCKET");

	return path && *path;
}

int sdnotify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t salen;
	size_t len;
	ssize_t n;
	int fd, r;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	/* An abstract address is exactly as long as its name; a path includes its terminator. */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	while (n < 0 && errno == EINTR);
	r = n < 0 ? -errno : 1;
	close(fd);
	return r;
}

/* Parses a decimal number that fills the whole string. Returns 0 or -EINVAL. */
static int sd_parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* True when the variable name holds our pid (or, with unset_ok, is unset). */
static int sd_pid_is_ours(const char *name, int unset_ok)
{
	const char *value = getenv(name);
	uint64_t pid;

	if (!value)
		return unset_ok;
	return sd_parse_u64(value, &pid) == 0 && pid == (uint64_t)getpid();
}

uint64_t sdnotify_watchdog_usec(void)
{
	uint64_t usec;

	if (!sd_pid_is_ours("WATCHDOG_PID", 1) ||
	    sd_parse_u64(getenv("WATCHDOG_USEC"), &usec) < 0)
		return 0;
	return usec;
}

/* Returns 0 when fd is a listening AF_UNIX stream socket, or -errno. */
static int sdlisten_check(int fd)
{
	int domain = 0, type = 0, listening = 0;
	socklen_t len;

	len = sizeof(domain);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return -errno;
	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	len = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
		return -errno;
	return domain == AF_UNIX && type == SOCK_STREAM && listening ? 0 : -EINVAL;
}

int sdlisten_take(void)
{
	uint64_t n;
	int fd = -1, i, r, flags;

	if (!sd_pid_is_ours("LISTEN_PID", 0))
		return 0;
	r = sd_parse_u64(getenv("LISTEN_FDS"), &n);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (r < 0 || n == 0 || n > SDLISTEN_FDS_MAX) {
		log_error("socket activation: $LISTEN_FDS must be a number from 1 to %d",
		          SDLISTEN_FDS_MAX);
		return -EINVAL;
	}
	/* The first usable socket is ours; the rest are not meant for this daemon. */
	for (i = SDLISTEN_FDS_START; i < SDLISTEN_FDS_START + (int)n; i++) {
		if (fd < 0 && (r = sdlisten_check(i)) == 0) {
			fd = i;
			continue;
		}
		if (fd < 0)
			log_warn("socket activation: descriptor %d is not a listening Unix stream "
			         "socket (%s); closing it", i, strerror(-r));
		else
			log_warn("socket activation: closing extra descriptor %d", i);
		close(i);
	}
	if (fd < 0) {
		log_error("socket activation: no listening Unix stream socket was passed");
		return -EINVAL;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		r = -errno;
		log_error("socket activation: cannot set up descriptor %d: %s", fd, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}
