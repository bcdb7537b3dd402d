/*
 * Baseline peers (see peer.h). The child serves requests in a blocking loop until our end of
 * the socketpair closes, then _exits: it never returns into the benchmark. Its descriptor
 * passing uses proto/fdpass.c, the same sendmsg/recvmsg code mmapd and libmmapd use, so the
 * SCM_RIGHTS baseline differs from mmapd only by what mmapd adds around it.
 */
#include <errno.h>
#include <fcntl.h>
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

#define ECHO_MAX 4096

/* Forks; in the child (pinned to cpu) *ret_child_sock is its end, in the parent p->sock. */
static int peer_fork(struct peer *p, int cpu, int *ret_child_sock)
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
		*ret_child_sock = sv[1];
	} else {
		close(sv[1]);
		p->sock = sv[0];
	}
	return 0;
}

static void echo_loop(int sock, size_t msg_len)
{
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
	int child_sock = -1;
	int r;

	if (msg_len == 0 || msg_len > ECHO_MAX)
		return -EINVAL;
	r = peer_fork(p, cpu, &child_sock);
	if (r == 0 && p->pid == 0)
		echo_loop(child_sock, msg_len);
	return r;
}

static void fd_server_loop(int sock, int dirfd, const char *name)
{
	char req;

	for (;;) {
		ssize_t n = recv(sock, &req, 1, 0);
		int fd;

		if (n == 0)
			_exit(0);
		if (n != 1)
			_exit(1);
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fdpass_send(sock, "f", 1, &fd, 1, 0) != 1)
			_exit(1);
		close(fd);
	}
}

int peer_start_fd_server(struct peer *p, int dirfd, const char *name, int cpu)
{
	int child_sock = -1;
	int r = peer_fork(p, cpu, &child_sock);

	if (r == 0 && p->pid == 0)
		fd_server_loop(child_sock, dirfd, name);
	return r;
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
