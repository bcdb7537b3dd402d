/*
 * systemd's side of a service, without libsystemd: readiness and status notification (one
 * datagram to $NOTIFY_SOCKET, as sd_notify(3) documents: "READY=1", "STATUS=...",
 * "RELOADING=1", "STOPPING=1", "WATCHDOG=1"), the watchdog interval ($WATCHDOG_USEC,
 * $WATCHDOG_PID) and socket activation ($LISTEN_PID, $LISTEN_FDS, $LISTEN_FDNAMES, with the
 * descriptors from 3 on, as sd_listen_fds(3) documents).
 */
#ifndef MMAPD_DAEMON_SDNOTIFY_H
#define MMAPD_DAEMON_SDNOTIFY_H

#include <stdint.h>

/* Returns 1 when $NOTIFY_SOCKET is set (we run under a service manager that wants to hear). */
int sdnotify_wanted(void);

/*
 * Sends state (newline-separated "KEY=value" assignments) to $NOTIFY_SOCKET. Returns 1 when
 * sent, 0 when $NOTIFY_SOCKET is unset, or -errno (-EINVAL for an address we cannot use).
 */
int sdnotify_send(const char *state);

/*
 * $WATCHDOG_USEC when it is set for this process ($WATCHDOG_PID unset or our pid), else 0.
 * The service manager wants "WATCHDOG=1" at least that often.
 */
uint64_t sdnotify_watchdog_usec(void);

/*
 * Takes the listening socket the service manager passed (socket activation), and unsets the
 * variables so that no child inherits them. Returns the descriptor (close-on-exec,
 * non-blocking; verified to be a listening AF_UNIX stream socket), 0 when none was passed
 * ($LISTEN_PID is not our pid), or -errno after logging why the passed one cannot be used.
 * Other descriptors passed with it are closed (logged).
 */
int sdlisten_take(void);

#endif
