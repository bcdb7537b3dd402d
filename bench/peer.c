/* SPDX-License-Identifier: MIT */
/*
 * Peer processes (see peer.h): the baselines' far ends, and through peer_start() the cases'
 * own client processes (subscribers, pingers). The child serves in a blocking loop until our
 * end of the socketpair closes, then _exits: it never returns into the benchmark. Its descriptor
 * passing uses proto/fdpass.c, the same sendmsg/recvmsg code mmapd and libmmapd use, so the
 * SCM_RIGHTS baseline differs from mmapd only by what mmapd adds around it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpu.h"
#include "fdpass.h"
#include "peer.h"
#include "stats.h"

#define ECHO_MAX 4096

int peer_start(struct peer *p, int cpu, void (*serve)(int sock, const void *arg), const void *arg)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	p->pid = fork();
	if (p->pid < 0) {
		int r = -errno;

		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (p->pid == 0) {
		/*
		 * The peer ends when our end closes. A Ctrl-C meant for the benchmark (the whole
		 * process group gets it) must not kill it in the middle of an exchange.
		 */
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGTERM, SIG_DFL);
		if (cpu_pin(cpu) < 0)
			_exit(1);
		close(sv[0]);
		serve(sv[1], arg);
		_exit(0);
	} else {
		close(sv[1]);
		p->sock = sv[0];
	}
	return 0;
}

static void echo_loop(int sock, const void *arg)
{
	size_t msg_len = *(const size_t *)arg;
	uint8_t buf[ECHO_MAX];

	for (;;) {
		ssize_t n = recv(sock, buf, msg_len, MSG_WAITALL);

		if (n == 0)
			_exit(0);
		if (n != (ssize_t)msg_len || send(sock, buf, msg_len, MSG_NOSIGNAL) != n)
			_exit(1);
	}
}

int peer_start_echo(struct peer *p, size_t msg_len, int cpu)
{
	if (msg_len == 0 || msg_len > ECHO_MAX)
		return -EINVAL;
	return peer_start(p, cpu, echo_loop, &msg_len);
}

/* Blocks in poll() and read() like a subscriber would, and answers with the one-way delay. */
static void hop_loop(int sock, const void *arg)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	uint64_t sent, delay;

	(void)arg;
	for (;;) {
		ssize_t n;

		if (poll(&pfd, 1, -1) < 0)
			_exit(1);
		n = read(sock, &sent, sizeof(sent));
		delay = clock_ns() - sent;
		if (n == 0)
			_exit(0);
		if (n != (ssize_t)sizeof(sent) ||
		    send(sock, &delay, sizeof(delay), MSG_NOSIGNAL) != (ssize_t)sizeof(delay))
			_exit(1);
	}
}

int peer_start_hop(struct peer *p, int cpu)
{
	return peer_start(p, cpu, hop_loop, NULL);
}

struct fd_server_args {
	int dirfd;
	const char *name;
};

static void fd_server_loop(int sock, const void *arg)
{
	const struct fd_server_args *a = arg;
	char req;

	for (;;) {
		ssize_t n = recv(sock, &req, 1, 0);
		int fd;

		if (n == 0)
			_exit(0);
		if (n != 1)
			_exit(1);
		fd = openat(a->dirfd, a->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fdpass_send(sock, "f", 1, &fd, 1, 0) != 1)
			_exit(1);
		close(fd);
	}
}

int peer_start_fd_server(struct peer *p, int dirfd, const char *name, int cpu)
{
	struct fd_server_args a = { .dirfd = dirfd, .name = name };

	return peer_start(p, cpu, fd_server_loop, &a);
}

int peer_stop(struct peer *p)
{
	int status;

	close(p->sock);
	if (waitpid(p->pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "mmapd-bench: baseline peer failed (wait status %d)\n", status);
		return -EIO;
	}
	return 0;
}
