/* SPDX-License-Identifier: MIT */
/*
 * Client connections across restarts, through the service manager's file descriptor store
 * (fdstore.h). When the daemon stops with the store in use, each connection that can be
 * handed over as it stands (conn_keepable) has its lock waits answered (ECANCELED: waiting
 * is not carried over), its output written out (for a short bounded time), its socket given
 * to the store as "conn/<serial>" and its state written into the stored state: peer
 * credentials, client name, protocol version, grants {handle, region, mode, size at grant},
 * the next handle, held locks, subscriptions and the creations it counts against its quota;
 * with them, each region's change seq and generation, so that neither goes backwards. It is
 * then closed without a word and without reading what the client sent meanwhile: the client
 * sees a pause, not a "shutdown" event. Every other connection gets "shutdown" as before.
 *
 * At the next start each "conn/..." descriptor is checked before anything is trusted (a
 * connected AF_UNIX stream socket whose peer's uid is the stored one, described by the
 * stored state, admitted by max_clients, max_clients_per_uid and allow_connect as a new
 * connection would be), made a connection again (conn_new) and given back its grants (no
 * descriptor is sent: the client has its own), locks and subscriptions; reading resumes with
 * what the client sent during the pause. A connection whose state cannot be restored whole
 * (a region gone, a lock now taken, access now denied; locks and subscriptions need read
 * access; more grants, locks or granted bytes than the limits allow) is closed: the client sees end of
 * stream and reconnects, as after any lost connection.
 */
#ifndef MMAPD_DAEMON_FDCONN_H
#define MMAPD_DAEMON_FDCONN_H

#include <stdbool.h>
#include <cjson/cJSON.h>

struct server;

/*
 * At shutdown, with the store in use: hands over every connection it can (see above),
 * stores the state with them, and closes them. The others stay for the "shutdown" event.
 */
void fdconn_store(struct server *srv);

/*
 * At startup, once the anonymous regions are adopted: makes a connection again of the
 * descriptor stored as fdname (consumed, adopted or closed) from what handover (the stored
 * state's "handover" object, or NULL) says of it.
 */
void fdconn_adopt(struct server *srv, const cJSON *handover, const char *fdname, int fd);

#endif
