/* SPDX-License-Identifier: MIT */
/*
 * sd_notify(3), sd_pid_notify_with_fds(3) and sd_listen_fds_with_names(3) re-implemented
 * (see sdnotify.h). $NOTIFY_SOCKET is a filesystem path or, with a leading '@', a name in the
 * abstract namespace. A fresh close-on-exec datagram socket is used per message:
 * notifications are rare (ready, status, a region stored or removed) and this keeps no state.
 * Datagrams to one receiver are queued in the order they were sent, whatever socket sent them.
 */
#include "sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "num.h"

#define SDLISTEN_FDS_START 3
#define SDLISTEN_FDS_MAX   1024   /* more than any unit passes; bounds a bad $LISTEN_FDS */

int sdnotify_wanted(void)
{
	const char *path = getenv("NOTIFY_SOCKET");

	return path && *path;
}

int sdnotify_send_fd(const char *state, int fd)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = (void *)state, .iov_len = strlen(state) };
	struct msghdr mh = { .msg_name = &sa, .msg_iov = &iov, .msg_iovlen = 1 };
	size_t len;
	ssize_t n;
	int sock, r;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	/* An abstract address is exactly as long as its name; a path includes its terminator. */
	mh.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}

	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	r = n < 0 ? -errno : 1;
	close(sock);
	return r;
}

int sdnotify_send(const char *state)
{
	return sdnotify_send_fd(state, -1);
}

/* True when the variable name holds our pid (or, with unset_ok, is unset). */
static int sd_pid_is_ours(const char *name, int unset_ok)
{
	const char *value = getenv(name);
	uint64_t pid;

	if (!value)
		return unset_ok;
	return num_parse_u64(value, &pid) == 0 && pid == (uint64_t)getpid();
}

uint64_t sdnotify_watchdog_usec(void)
{
	uint64_t usec;

	if (!sd_pid_is_ours("WATCHDOG_PID", 1) ||
	    num_parse_u64(getenv("WATCHDOG_USEC"), &usec) < 0)
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

/* The index-th colon-separated name of $LISTEN_FDNAMES (malloc'd; "" when absent), or NULL. */
static char *sdlisten_name(const char *names, size_t index)
{
	const char *p = names ? names : "";
	size_t len;

	for (; index > 0 && *p; index--) {
		p = strchr(p, ':');
		if (!p)
			return strdup("");
		p++;
	}
	len = index > 0 ? 0 : strcspn(p, ":");
	return strndup(p, len);
}

/* Makes fd close-on-exec (and non-blocking if asked). Returns 0 or -errno. */
static int sdlisten_setup(int fd, bool nonblock)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || (nonblock && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

int sdlisten_take(bool (*keep)(const char *name), struct sdlisten *ret)
{
	char *names = NULL, *name = NULL;
	struct sdlisten l = { .listen_fd = -1 };
	bool counted = false;
	uint64_t n = 0;
	int fd = SDLISTEN_FDS_START, r;

	*ret = l;
	if (!sd_pid_is_ours("LISTEN_PID", 0))
		return 0;
	r = num_parse_u64(getenv("LISTEN_FDS"), &n);
	if (getenv("LISTEN_FDNAMES") && !(names = strdup(getenv("LISTEN_FDNAMES"))))
		r = -ENOMEM;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (r == -ENOMEM)
		goto fail;
	if (r < 0 || n == 0 || n > SDLISTEN_FDS_MAX) {
		log_error("socket activation: $LISTEN_FDS must be a number from 1 to %d",
		          SDLISTEN_FDS_MAX);
		r = -EINVAL;
		goto fail;
	}
	counted = true;
	l.kept = calloc(n, sizeof(*l.kept));
	if (!l.kept) {
		r = -ENOMEM;
		goto fail;
	}
	for (fd = SDLISTEN_FDS_START; fd < SDLISTEN_FDS_START + (int)n; fd++) {
		name = sdlisten_name(names, (size_t)(fd - SDLISTEN_FDS_START));
		if (!name) {
			r = -ENOMEM;
			goto fail;
		}
		if (keep && keep(name)) {
			r = sdlisten_setup(fd, false);
			if (r < 0)
				goto fail;
			l.kept[l.nkept].fd = fd;
			l.kept[l.nkept++].name = name;
			name = NULL;
			continue;
		}
		/* The first usable socket is ours; the rest are not meant for this daemon. */
		if (l.listen_fd < 0 && (r = sdlisten_check(fd)) == 0) {
			r = sdlisten_setup(fd, true);
			if (r < 0)
				goto fail;
			l.listen_fd = fd;
		} else {
			if (l.listen_fd < 0)
				log_warn("socket activation: descriptor %d (\"%s\") is not a listening Unix "
				         "stream socket (%s); closing it", fd, name, strerror(-r));
			else
				log_warn("socket activation: closing extra descriptor %d (\"%s\")", fd, name);
			close(fd);
		}
		free(name);
		name = NULL;
	}
	if (l.listen_fd < 0 && l.nkept == 0) {
		log_error("socket activation: no listening Unix stream socket was passed");
		r = -EINVAL;
		goto fail;
	}
	free(names);
	*ret = l;
	return 0;
fail:
	if (r == -ENOMEM)
		log_error("socket activation: out of memory");
	else if (r != -EINVAL)
		log_error("socket activation: cannot set up descriptor %d: %s", fd, strerror(-r));
	free(name);
	free(names);
	/* What was passed and not looked at yet goes with what was taken. */
	for (; counted && fd < SDLISTEN_FDS_START + (int)n; fd++)
		close(fd);
	sdlisten_done(&l);
	return r;
}

void sdlisten_done(struct sdlisten *l)
{
	if (l->listen_fd >= 0)
		close(l->listen_fd);
	for (size_t i = 0; i < l->nkept; i++) {
		if (l->kept[i].fd >= 0)
			close(l->kept[i].fd);
		free(l->kept[i].name);
	}
	free(l->kept);
	l->listen_fd = -1;
	l->kept = NULL;
	l->nkept = 0;
}
