/* SPDX-License-Identifier: MIT */
/*
 * Layer 3 of libmmapd (see internal.h): the socket (socket.c). Included by socket.c and call.h.
 */
#ifndef MMAPD_CLIENT_SOCKET_H
#define MMAPD_CLIENT_SOCKET_H

#include "client.h"

/* ---- socket.c ---- */

/* Connects a new socket to path. Returns the descriptor or a negative errno (message set). */
int socket_open(const char *path);
/* Makes sock the working connection. Returns 0 or a negative errno (message set). Lock held. */
int socket_install(struct mmapd_client *client, int sock);
/*
 * Closes the socket of a connection that is no longer up and forgets what was read from it.
 * Lock held; released and taken again to respect the lock order.
 */
void socket_teardown(struct mmapd_client *client);

#endif
