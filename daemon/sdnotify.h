/* SPDX-License-Identifier: MIT */
/*
 * systemd's side of a service, without libsystemd: readiness and status notification (one
 * datagram to $NOTIFY_SOCKET, as sd_notify(3) documents: "READY=1", "STATUS=...",
 * "RELOADING=1", "STOPPING=1", "WATCHDOG=1"), the watchdog interval ($WATCHDOG_USEC,
 * $WATCHDOG_PID), the file descriptor store ("FDSTORE=1" with descriptors attached,
 * "FDSTOREREMOVE=1") and socket activation ($LISTEN_PID, $LISTEN_FDS, $LISTEN_FDNAMES, with
 * the descriptors from 3 on, as sd_listen_fds(3) documents). Under a service manager with a
 * file descriptor store, what it passes at start is the listening socket (if any) followed by
 * whatever the previous run stored, each with its FDNAME in $LISTEN_FDNAMES.
 */
#ifndef MMAPD_DAEMON_SDNOTIFY_H
#define MMAPD_DAEMON_SDNOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returns 1 when $NOTIFY_SOCKET is set (we run under a service manager that wants to hear). */
int sdnotify_wanted(void);

/*
 * Sends state (newline-separated "KEY=value" assignments) to $NOTIFY_SOCKET. Returns 1 when
 * sent, 0 when $NOTIFY_SOCKET is unset, or -errno (-EINVAL for an address we cannot use).
 */
int sdnotify_send(const char *state);

/*
 * Like sdnotify_send, with descriptor fd (borrowed) attached with SCM_RIGHTS ("FDSTORE=1").
 * fd < 0 attaches nothing.
 */
int sdnotify_send_fd(const char *state, int fd);

/*
 * $WATCHDOG_USEC when it is set for this process ($WATCHDOG_PID unset or our pid), else 0.
 * The service manager wants "WATCHDOG=1" at least that often.
 */
uint64_t sdnotify_watchdog_usec(void);

/* A descriptor passed at start that is not the listening socket, with its $LISTEN_FDNAMES name. */
struct sdlisten_fd {
	int fd;
	char *name;               /* malloc'd */
};

/* What the service manager passed. */
struct sdlisten {
	int listen_fd;            /* the listening socket, or -1 */
	struct sdlisten_fd *kept; /* descriptors whose name keep() accepted (malloc'd) */
	size_t nkept;
};

/*
 * Takes what the service manager passed and unsets the variables so that no child inherits
 * them. The first descriptor that is a listening AF_UNIX stream socket becomes listen_fd
 * (close-on-exec, non-blocking); descriptors whose name keep (may be NULL) accepts go to kept
 * (close-on-exec; never taken for the listening socket); the rest are closed (logged).
 * Returns 0 with *ret filled (listen_fd -1 and nothing kept when nothing was passed, that is
 * when $LISTEN_PID is not our pid), or -errno after logging why what was passed cannot be
 * used (a bad $LISTEN_FDS; descriptors passed but neither a listening socket nor kept).
 */
int sdlisten_take(bool (*keep)(const char *name), struct sdlisten *ret);

/* Closes and frees what is still in l (kept entries whose fd is -1 were taken). */
void sdlisten_done(struct sdlisten *l);

#endif
