/* SPDX-License-Identifier: MIT */
/*
 * The floor server (see floor.h). Requests are counted by bytes, as the driver sends them
 * whole and one at a time per connection; the replies to all the whole requests one read
 * brought go out in one write. A connection that ends is closed and forgotten.
 */
#include "floor.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FLOOR_CONNS  1024    /* connections it serves at once */
#define FLOOR_EVENTS 64

/* Serves until sock (the benchmark's end) closes. */
static void floor_loop(int sock, const void *arg)
{
	const struct floor_args *a = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN }, evs[FLOOR_EVENTS];
	static size_t partial[FLOOR_CONNS];   /* bytes of an unfinished request, per descriptor */
	uint8_t out[FLOOR_MSG_MAX * 16], in[4096];
	int lfd, ep;
	char ready = 'r';

	memcpy(sa.sun_path, a->path, sizeof(sa.sun_path));
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 128) < 0)
		_exit(1);
	ev.data.fd = lfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		_exit(1);
	ev.data.fd = sock;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sock, &ev) < 0 ||
	    send(sock, &ready, 1, MSG_NOSIGNAL) != 1)
		_exit(1);
	for (;;) {
		int n = epoll_wait(ep, evs, FLOOR_EVENTS, -1), k;

		if (n < 0 && errno != EINTR)
			_exit(1);
		for (k = 0; k < n; k++) {
			int fd = evs[k].data.fd;
			size_t whole, room, i;
			ssize_t got;

			if (fd == sock) {
				unlink(a->path);
				return;
			}
			if (fd == lfd) {
				int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

				ev.data.fd = cfd;
				if (cfd >= FLOOR_CONNS || (cfd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0))
					_exit(1);
				continue;
			}
			/* No more whole requests than out has replies for. */
			room = (sizeof(out) / a->reply_len) * a->req_len - partial[fd];
			got = read(fd, in, room < sizeof(in) ? room : sizeof(in));
			if (got <= 0) {
				if (got < 0 && errno == EAGAIN)
					continue;
				close(fd);
				partial[fd] = 0;
				continue;
			}
			partial[fd] += (size_t)got;
			whole = partial[fd] / a->req_len;
			partial[fd] %= a->req_len;
			for (i = 0; i < whole; i++)
				memcpy(out + i * a->reply_len, a->reply, a->reply_len);
			if (whole > 0 && write(fd, out, whole * a->reply_len) != (ssize_t)(whole * a->reply_len))
				_exit(1);
		}
	}
}

int floor_start(struct peer *p, const struct floor_args *a, int cpu)
{
	char ready;
	int r;

	if (a->req_len == 0 || a->reply_len == 0 || a->reply_len > FLOOR_MSG_MAX)
		return -EINVAL;
	r = peer_start(p, cpu, floor_loop, a);
	if (r < 0)
		return r;
	if (recv(p->sock, &ready, 1, 0) != 1) {
		peer_stop(p);
		return -EIO;
	}
	return 0;
}
