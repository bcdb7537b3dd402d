/* SPDX-License-Identifier: MIT */
/*
 * Layer 6 of libmmapd (see internal.h), the top: reactions to events (react.c), reconnection
 * (reconnect.c), dispatching (event.c), the dispatch thread (dispatch_thread.c) and
 * connecting (connect.c), which sets the hooks by which call.c reaches this layer.
 */
#ifndef MMAPD_CLIENT_TOP_H
#define MMAPD_CLIENT_TOP_H

#include "domain.h"

/* ---- react.c ---- */

/*
 * Acts on an event read from the daemon (other than "shutdown" and "error") and queues it
 * for mmapd_client_dispatch(). Malformed and unknown events are ignored. Lock held.
 */
void event_handle(struct mmapd_client *client, const cJSON *msg, const char *name);

/* ---- reconnect.c ---- */

/*
 * Reconnects a broken client (lock held, state CLIENT_BROKEN, not reconnecting): backoff,
 * hello, then the grants of open regions and the subscriptions are renewed and LOCKS_LOST
 * and RECONNECTED queued. Returns 0, or a negative errno with the thread's message set.
 */
int client_reconnect(struct mmapd_client *client);

/* ---- event.c ---- */

/*
 * mmapd_client_dispatch() without its checks of who may dispatch: for the dispatch thread.
 * Lock not held.
 */
int event_dispatch(struct mmapd_client *client, int timeout_ms);

/* ---- dispatch_thread.c ---- */

/*
 * For mmapd_disconnect(), before it closes anything: stops and joins the dispatch thread, or,
 * called from a handler on that thread, detaches it so that it ends once the handler returns.
 * Lock not held.
 */
void dispatch_thread_end(struct mmapd_client *client);

#endif
