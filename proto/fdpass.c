/* SPDX-License-Identifier: MIT */
/*
 * Descriptor passing with SCM_RIGHTS over a Unix stream socket (see fdpass.h). Sending puts a
 * frame's descriptors on its first byte in one sendmsg. Receiving appends whatever descriptors
 * arrive to a FIFO queue that frames later claim in order; anything we cannot account for
 * (truncated control data, a full queue) is closed at once and reported as -EPROTO, so a peer
 * can never make us hold descriptors we do not know about. A receiver that accepts no
 * descriptors at all passes no control buffer (fdpass_recv_nofds): the kernel then drops them
 * itself and only says so with MSG_CTRUNC, and the 1 KiB control buffer is not set up for each
 * read.
 */
#include "fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A control buffer for the largest SCM_RIGHTS message, aligned for struct cmsghdr. */
union fdpass_control {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
};

void fd_queue_init(struct fd_queue *q)
{
	q->head = 0;
	q->count = 0;
}

void fd_queue_clear(struct fd_queue *q)
{
	while (q->count > 0) {
		close(q->fds[q->head]);
		q->head = (q->head + 1) % FD_QUEUE_CAP;
		q->count--;
	}
	q->head = 0;
}

int fd_queue_take(struct fd_queue *q, size_t n, int *ret_fds)
{
	size_t i;

	if (n > q->count)
		return -EPROTO;
	for (i = 0; i < n; i++)
		ret_fds[i] = q->fds[(q->head + i) % FD_QUEUE_CAP];
	q->head = (q->head + n) % FD_QUEUE_CAP;
	q->count -= n;
	return 0;
}

static void fd_queue_push(struct fd_queue *q, int fd)
{
	q->fds[(q->head + q->count) % FD_QUEUE_CAP] = fd;
	q->count++;
}

ssize_t fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds, int flags)
{
	union fdpass_control control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cmsg;
	ssize_t n;

	if (nfds > FDPASS_MAX_FDS)
		return -EINVAL;
	/* Without descriptors, send: no msghdr to copy in (some 75 ns a call here). */
	if (nfds == 0) {
		do
			n = send(sock, buf, len, flags | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		return n < 0 ? -errno : n;
	}
	/* On a stream socket, descriptors without a byte to ride on are never delivered. */
	if (len == 0 || !fds)
		return -EINVAL;
	memset(&control, 0, sizeof(control));
	msg.msg_control = control.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);

	do
		n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n;
}

/* Closes every descriptor carried by the SCM_RIGHTS messages in msg. */
static void fdpass_close_received(struct msghdr *msg)
{
	struct cmsghdr *cmsg;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg; cmsg = CMSG_NXTHDR(msg, cmsg)) {
		size_t i, n;

		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			close(fd);
		}
	}
}

/*
 * One recvmsg of up to len bytes (len > 0) into buf, with controllen bytes of control (may be
 * 0) for descriptors, which arrive close-on-exec; retried on EINTR. msg and iov are the
 * caller's, filled here. Returns the bytes read or -errno.
 */
static ssize_t fdpass_recvmsg(int sock, void *buf, size_t len, void *control, size_t controllen,
                              int flags, struct msghdr *msg, struct iovec *iov)
{
	ssize_t n;

	/* A zero-byte read would look like the end of the stream. */
	if (len == 0)
		return -EINVAL;
	*iov = (struct iovec){ .iov_base = buf, .iov_len = len };
	do {
		*msg = (struct msghdr){ .msg_iov = iov, .msg_iovlen = 1,
		                        .msg_control = controllen ? control : NULL,
		                        .msg_controllen = controllen };
		n = recvmsg(sock, msg, flags | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* How many descriptors the SCM_RIGHTS messages in msg carry. */
static size_t fdpass_count(struct msghdr *msg)
{
	struct cmsghdr *cmsg;
	size_t arrived = 0;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg; cmsg = CMSG_NXTHDR(msg, cmsg))
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
			arrived += (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	return arrived;
}

ssize_t fdpass_recv(int sock, void *buf, size_t len, struct fd_queue *q, int flags)
{
	union fdpass_control control;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cmsg;
	ssize_t n;

	n = fdpass_recvmsg(sock, buf, len, control.buf, sizeof(control.buf), flags, &msg, &iov);
	if (n < 0)
		return n;

	/*
	 * With MSG_CTRUNC the kernel has already closed the descriptors that did not fit; the
	 * ones that did are ours now, and a frame would claim the wrong ones, so drop them all.
	 * So for more than the queue has room for.
	 */
	if ((msg.msg_flags & MSG_CTRUNC) || fdpass_count(&msg) > FD_QUEUE_CAP - q->count) {
		fdpass_close_received(&msg);
		return -EPROTO;
	}

	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		size_t i, nfd;

		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			fd_queue_push(q, fd);
		}
	}
	return n;
}

ssize_t fdpass_recv_nofds(int sock, void *buf, size_t len, int flags)
{
	struct iovec iov;
	struct msghdr msg;
	ssize_t n;

	n = fdpass_recvmsg(sock, buf, len, NULL, 0, flags, &msg, &iov);
	/* Without a control buffer, descriptors that came show only as MSG_CTRUNC. */
	if (n >= 0 && (msg.msg_flags & MSG_CTRUNC))
		return -EPROTO;
	return n;
}

ssize_t fdpass_recv_one(int sock, void *buf, size_t len, int *ret_fd, bool *ret_extra,
                        int flags)
{
	/* Room for two: CMSG_SPACE(sizeof(int)) would hold two anyway, by its padding. */
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cmsg;
	ssize_t n;

	*ret_fd = -1;
	*ret_extra = false;
	n = fdpass_recvmsg(sock, buf, len, control.buf, sizeof(control.buf), flags, &msg, &iov);
	if (n < 0)
		return n;
	/* More than one, or some the kernel had to close (MSG_CTRUNC): none is kept. */
	if (fdpass_count(&msg) > 1 || (msg.msg_flags & MSG_CTRUNC)) {
		fdpass_close_received(&msg);
		*ret_extra = true;
		return n;
	}
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
		    cmsg->cmsg_len > CMSG_LEN(0))
			memcpy(ret_fd, CMSG_DATA(cmsg), sizeof(int));
	return n;
}
