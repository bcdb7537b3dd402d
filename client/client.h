/* SPDX-License-Identifier: MIT */
/*
 * Layer 2 of libmmapd (see internal.h): the client object (client.c), its event queue
 * (evqueue.c) and its send queue (sendq.c). Included by those files and socket.h.
 */
#ifndef MMAPD_CLIENT_CLIENT_H
#define MMAPD_CLIENT_CLIENT_H

#include "internal.h"

/* ---- client.c ---- */

/* Takes one more reference on client. */
void client_ref(struct mmapd_client *client);
/* Drops a reference; the last one frees the client. */
void client_unref(struct mmapd_client *client);
/* Closes the descriptors behind mmapd_client_fd(). Lock held, or the client is not shared yet. */
void client_close_wake(struct mmapd_client *client);
/* Frees a list of id_node or name_node. */
void id_list_free(struct id_node *list);
void name_list_free(struct name_node *list);
/* Unmaps client's control pages and frees its fast locks (the client is being freed). */
void fast_free(struct mmapd_client *client);
/* Unmaps the pages of the page subscriptions and closes their doorbells. */
void page_subs_free(struct mmapd_client *client);
/* Whether the calling thread is the client's dispatch thread. Lock held. */
bool client_dispatch_is_self(const struct mmapd_client *client);
/* Whether a dispatch thread is started (mmapd_client_dispatch() is then refused). Lock held. */
bool client_dispatch_busy(const struct mmapd_client *client);
/*
 * Whether the calling thread is the client's dispatch thread and is told to stop: a
 * reconnection it makes gives up instead of waiting for its next attempt. Lock held.
 */
bool client_dispatch_stopping_self(const struct mmapd_client *client);

/* The error of a client that is not up, with its message set for the calling thread. */
int client_down_error(const struct mmapd_client *client);

/* ---- evqueue.c ---- */

void event_queue_init(struct event_queue *q);
/* Frees every queued event. */
void event_queue_clear(struct event_queue *q);
/* Unlinks node (whose predecessor is prev, NULL at the head). */
void event_queue_unlink(struct event_queue *q, struct event_node *prev, struct event_node *node);
/* Queues ev (deep-copied). Lock held. */
void event_push(struct mmapd_client *client, const struct mmapd_event *ev);
/* Makes client->evfd readable exactly while events wait or the connection is broken. */
void client_wake_update(struct mmapd_client *client);

/* ---- sendq.c ---- */

/* Queues frame buf (taken on success) for connection gen. Returns 0 or -ENOMEM. Lock held. */
int sendq_push(struct mmapd_client *client, uint64_t gen, uint8_t *buf, size_t len);
/*
 * Writes the queued frames of connection gen to sock, in order (older connections' frames are
 * dropped), waiting for room when block, else stopping when the socket is full. Returns 0
 * (nothing of gen left), -EAGAIN (the socket is full) or send's error. send_lock held, lock
 * not held.
 */
int sendq_write(struct mmapd_client *client, int sock, uint64_t gen, bool block);
/*
 * Watches the socket for EPOLLOUT in mmapd_client_fd()'s set exactly while frames of the
 * working connection wait. Lock held.
 */
void sendq_watch(struct mmapd_client *client);
/* Frees every queued frame (the client is being freed). */
void sendq_clear(struct mmapd_client *client);

#endif
