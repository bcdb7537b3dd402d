/* SPDX-License-Identifier: MIT */
/*
 * Anonymous regions across restarts, through the service manager's file descriptor store
 * (sd_pid_notify_with_fds(3), "FDSTORE=1"). File regions need none of this: their data and
 * metadata are on disk. An anonymous region lives only in its memfd, so under a service
 * manager (when $NOTIFY_SOCKET is set and the config's "fdstore" is true) the daemon gives a
 * copy of each one's memfd to the store as "anon/<name>" when the region is created, and
 * takes it out ("FDSTOREREMOVE=1") when the region is deleted. What the memfd cannot tell
 * (owner, mode, flush policy) is kept in a small sealed memfd stored as "state", replaced
 * whenever it changes. systemd's FDNAME= allows no ':' and at most 255 bytes, hence the '/'
 * separator; a region whose name is too long for "anon/<name>" (over 250 bytes) cannot be
 * stored, which its creation logs.
 *
 * At the next start the service manager passes the stored descriptors back with
 * $LISTEN_FDS/$LISTEN_FDNAMES (sdlisten_take keeps those fdstore_name_is_ours accepts), and
 * fdstore_adopt puts each valid memfd back in the region table before the daemon is ready;
 * a descriptor that is not one of our memfds is refused (logged, closed, removed from the
 * store) and the daemon carries on; then the client connections handed over at shutdown
 * ("conn/<serial>", fdconn.h) are taken over, and every "conn/..." leaves the store. Outside
 * a service manager, anonymous regions end with the daemon, and its shutdown says how many.
 */
#ifndef MMAPD_DAEMON_FDSTORE_H
#define MMAPD_DAEMON_FDSTORE_H

#include <stdbool.h>
#include <cjson/cJSON.h>

struct region;
#define FDSTORE_CONN_PREFIX "conn/"   /* the names of stored connections (fdconn.c) */

struct sdlisten;
struct server;

/* True for the $LISTEN_FDNAMES names the store holds for us: "state", "anon/...", "conn/...". */
bool fdstore_name_is_ours(const char *fdname);

/* True for the $LISTEN_FDNAMES names of stored connections ("conn/...", fdconn.c). */
bool fdstore_name_is_conn(const char *fdname);

/*
 * Decides whether the store is used (config "fdstore" and $NOTIFY_SOCKET) and adopts the
 * stored descriptors in passed (every kept one is taken: adopted or closed), then stores the
 * state as it now is. Call it once the region table is ready, before the daemon is ready.
 */
void fdstore_init(struct server *srv, struct sdlisten *passed);

/* Anonymous region r (ready, in the table) was created: stores its memfd and the state. */
void fdstore_region_added(struct region *r);
/* Anonymous region name was deleted: removes its memfd from the store, stores the state. */
void fdstore_region_removed(struct server *srv, const char *name);
/*
 * The owner, mode or policy of an anonymous region changed: stores the state again (with the
 * connections handed over, once the stop handed some over).
 */
void fdstore_state_changed(struct server *srv);

/*
 * Stores the state as it now is, with handover (borrowed; NULL: none), the connections
 * handed over at shutdown (fdconn.h).
 */
void fdstore_state_write(struct server *srv, const cJSON *handover);
/* Sends "<verb>\nFDNAME=<fdname>" with fd (or none, fd < 0). Returns 0 or -errno (logged). */
int fdstore_send(const char *verb, const char *fdname, int fd);

/* At shutdown: logs the anonymous regions that end with this daemon (no store), if any. */
void fdstore_report_loss(struct server *srv);

#endif
