/* SPDX-License-Identifier: MIT */
/*
 * Descriptor passing over a Unix stream socket (SCM_RIGHTS), the way Wayland does it.
 * A sender attaches a frame's descriptors to the frame's first byte, one sendmsg per frame.
 * A receiver appends every descriptor it receives to a FIFO fd_queue; a frame that declares
 * "fds": n then claims the next n. Descriptors are received close-on-exec; a truncated
 * control message (MSG_CTRUNC) is a protocol error, never ignored. Nothing here logs.
 */
#ifndef MMAPD_PROTO_FDPASS_H
#define MMAPD_PROTO_FDPASS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define FDPASS_MAX_FDS 253   /* SCM_MAX_FD: the most one sendmsg may carry */
#define FD_QUEUE_CAP   256   /* received descriptors waiting to be claimed */

struct fd_queue {
	int fds[FD_QUEUE_CAP];
	size_t head;
	size_t count;
};

void fd_queue_init(struct fd_queue *q);
/* Closes every queued descriptor and empties the queue. */
void fd_queue_clear(struct fd_queue *q);
/*
 * Moves the next n descriptors into ret_fds (caller owns them afterwards).
 * Returns 0, or -EPROTO (taking nothing) if fewer than n are queued.
 */
int fd_queue_take(struct fd_queue *q, size_t n, int *ret_fds);

/*
 * Sends len bytes from buf with nfds descriptors (borrowed: still the caller's afterwards)
 * attached to the first byte. flags are extra send flags (MSG_DONTWAIT); MSG_NOSIGNAL is
 * always added. Returns bytes sent (possibly fewer than len: the descriptors went with the
 * first byte, so send the rest with nfds = 0), or -errno (-EINVAL if nfds > FDPASS_MAX_FDS,
 * or if nfds > 0 with len 0 or fds NULL: on a stream socket descriptors need a byte to ride on).
 */
ssize_t fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds, int flags);

/*
 * Receives up to len bytes into buf; descriptors that arrive are appended to q, close-on-exec.
 * flags are extra recv flags (MSG_DONTWAIT). Returns bytes received (0 at end of stream), or
 * -errno (-EINVAL if len is 0, which could not be told from the end of the stream). Returns
 * -EPROTO, after closing what did arrive, when the control data was truncated (MSG_CTRUNC) or
 * q has no room for what arrived; the bytes received with them are lost, so the stream is
 * unusable afterwards.
 */
ssize_t fdpass_recv(int sock, void *buf, size_t len, struct fd_queue *q, int flags);

/*
 * Receives up to len bytes from a peer that may send no descriptors (the daemon's clients):
 * no control buffer, so the kernel closes any descriptor the peer attached before we could
 * hold it. Returns as fdpass_recv; -EPROTO when descriptors came (MSG_CTRUNC), after which
 * the bytes that carried them are lost and the stream is unusable.
 */
ssize_t fdpass_recv_nofds(int sock, void *buf, size_t len, int flags);

/*
 * Receives up to len bytes from a peer that may send at most one descriptor with a frame
 * (the daemon's clients, op adopt): the control buffer holds exactly one, received
 * close-on-exec into *ret_fd (-1 when none came). When the peer attached more than one
 * (or MSG_CTRUNC: the kernel closed those that did not fit), those that came are closed too,
 * *ret_fd is -1 and *ret_extra is true; the bytes received are still good. Returns as
 * fdpass_recv_nofds, but never -EPROTO.
 */
ssize_t fdpass_recv_one(int sock, void *buf, size_t len, int *ret_fd, bool *ret_extra,
                        int flags);

#endif
