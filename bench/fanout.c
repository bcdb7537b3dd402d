/* SPDX-License-Identifier: MIT */
/*
 * The fan-out baseline (see fanout.h). The relay's sockets to the readers are socketpairs
 * made before any of them is forked, so every child inherits every end: each uses only its
 * own, and none waits for end of stream on them (the relay and the readers end when their
 * socket to the benchmark closes).
 */
#include "fanout.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stats.h"

struct relay_args {
	const int *fds;  /* the relay's ends, one per reader */
	size_t n;
};

/* mmapd's place: each timestamp from the benchmark goes to every reader in turn. */
static void relay_loop(int sock, const void *arg)
{
	const struct relay_args *a = arg;
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	uint64_t stamp;
	size_t i;

	for (;;) {
		ssize_t n;

		if (poll(&pfd, 1, -1) < 0)
			_exit(1);
		n = read(sock, &stamp, sizeof(stamp));
		if (n == 0)
			_exit(0);
		if (n != (ssize_t)sizeof(stamp))
			_exit(1);
		for (i = 0; i < a->n; i++)
			if (send(a->fds[i], &stamp, sizeof(stamp), MSG_NOSIGNAL) != (ssize_t)sizeof(stamp))
				_exit(1);
	}
}

/* A subscriber's place: the delay of each timestamp from the relay goes to the benchmark. */
static void reader_loop(int sock, const void *arg)
{
	int from = *(const int *)arg;
	struct pollfd pfd[2] = { { .fd = from, .events = POLLIN }, { .fd = sock, .events = POLLIN } };
	uint64_t stamp, delay;

	for (;;) {
		if (poll(pfd, 2, -1) < 0)
			_exit(1);
		if (pfd[1].revents)
			return;  /* the benchmark closed our socket: done */
		if (!pfd[0].revents)
			continue;
		if (read(from, &stamp, sizeof(stamp)) != (ssize_t)sizeof(stamp))
			_exit(1);
		delay = clock_ns() - stamp;
		if (send(sock, &delay, sizeof(delay), MSG_NOSIGNAL) != (ssize_t)sizeof(delay))
			_exit(1);
	}
}

static void close_pairs(int (*pairs)[2], size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		close(pairs[i][0]);
		close(pairs[i][1]);
	}
}

int fanout_start(struct fanout *f, size_t n, int cpu)
{
	int pairs[FANOUT_MAX][2], relay_fds[FANOUT_MAX];
	struct relay_args a = { .fds = relay_fds, .n = n };
	size_t i, made;
	int r = 0;

	f->n = 0;
	f->relay_started = false;
	if (n > FANOUT_MAX)
		return -EINVAL;
	for (made = 0; made < n; made++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[made]) < 0) {
			r = -errno;
			close_pairs(pairs, made);
			return r;
		}
		relay_fds[made] = pairs[made][0];
	}
	for (i = 0; i < n && r == 0; i++) {
		r = peer_start(&f->readers[i], cpu, reader_loop, &pairs[i][1]);
		if (r == 0)
			f->n++;
	}
	if (r == 0) {
		r = peer_start(&f->relay, cpu, relay_loop, &a);
		f->relay_started = r == 0;
	}
	/* The children have their copies; the benchmark needs none. */
	close_pairs(pairs, n);
	return r;
}

int fanout_round(struct fanout *f, uint64_t stamp, uint64_t *delays)
{
	size_t i;

	if (send(f->relay.sock, &stamp, sizeof(stamp), MSG_NOSIGNAL) != (ssize_t)sizeof(stamp))
		return -errno;
	for (i = 0; i < f->n; i++) {
		ssize_t got = recv(f->readers[i].sock, &delays[i], sizeof(delays[i]), MSG_WAITALL);

		if (got != (ssize_t)sizeof(delays[i]))
			return got < 0 ? -errno : -ECONNRESET;
	}
	return 0;
}

int fanout_stop(struct fanout *f)
{
	int r = 0, r2;

	/* Newest first: each child holds copies of the sockets of those started before it. */
	if (f->relay_started)
		r = peer_stop(&f->relay);
	f->relay_started = false;
	while (f->n > 0) {
		r2 = peer_stop(&f->readers[--f->n]);
		if (r == 0)
			r = r2;
	}
	return r;
}
