/*
 * systemd readiness notification without libsystemd: one datagram to $NOTIFY_SOCKET, as
 * sd_notify(3) documents the protocol ("READY=1", "STATUS=...", "STOPPING=1").
 */
#ifndef MMAPD_DAEMON_SDNOTIFY_H
#define MMAPD_DAEMON_SDNOTIFY_H

/* Returns 1 when $NOTIFY_SOCKET is set (we run under a service manager that wants to hear). */
int sdnotify_wanted(void);

/*
 * Sends state (newline-separated "KEY=value" assignments) to $NOTIFY_SOCKET. Returns 1 when
 * sent, 0 when $NOTIFY_SOCKET is unset, or -errno (-EINVAL for an address we cannot use).
 */
int sdnotify_send(const char *state);

#endif
