/*
 * Private plumbing of libmmapd, shared by client/conn.c (the socket, the request/reply exchange
 * and events), client/region.c (grants and their mappings), client/query.c (stat, list, status,
 * delete, ping) and client/error.c (the per-thread failure message). Nothing here is exported:
 * the shared library is built with -fvisibility=hidden and only MMAPD_EXPORT functions of
 * mmapd.h are visible.
 */
#ifndef MMAPD_CLIENT_INTERNAL_H
#define MMAPD_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "fdpass.h"
#include "frame.h"
#include "mmapd.h"

/*
 * One connection to the daemon. The mutex serialises every request with its reply and guards
 * everything below it; refs counts the owner (until mmapd_disconnect()) plus one per open
 * region, so a region may outlive the connection it came from.
 */
struct mmapd_client {
	atomic_uint refs;
	pthread_mutex_t lock;
	int sock;                   /* -1 once closed (by disconnect or because it died) */
	bool disconnected;          /* mmapd_disconnect() was called */
	int dead_err;               /* 0 while usable, else the negative errno every call returns */
	char *dead_message;         /* why it died, for mmapd_last_message() (may be NULL) */
	uint64_t next_id;
	uint32_t max_frame;         /* the largest payload we may send, from the hello reply */
	uint32_t protocol;          /* the version agreed in hello */
	struct frame_reader reader;
	struct fd_queue fds;        /* received descriptors not yet claimed by a frame */
};

/* Takes one more reference on client. */
void client_ref(struct mmapd_client *client);
/* Drops a reference; the last one frees the client (its socket is already closed by then). */
void client_unref(struct mmapd_client *client);

/*
 * Sends req (borrowed; its "id" is set here) and waits for the matching reply, handling any
 * events and stray replies that arrive first. nfds is the number of descriptors a successful
 * reply must carry; they are stored in ret_fds (owned by the caller), and any others that
 * arrive are closed. Returns 0 with *ret_reply (an "ok": true reply, freed with cJSON_Delete),
 * or a negative errno with the thread's message set: the daemon's error, -ECONNRESET when the
 * connection broke, -ESHUTDOWN after a shutdown event, -EPROTO when the daemon broke the
 * protocol, -ENOMEM. The caller must not hold client->lock.
 */
int client_call(struct mmapd_client *client, cJSON *req, size_t nfds, cJSON **ret_reply,
                int *ret_fds);

/*
 * Tells the daemon that grant handle is released, unless the connection is already closed (the
 * daemon then released it on hang-up). Returns 0, or the error that prevented telling it.
 */
int client_release_grant(struct mmapd_client *client, uint64_t handle);

/*
 * Builds {"op": op} for client_call(). Returns NULL on allocation failure (with the thread's
 * message set).
 */
cJSON *request_new(const char *op);

/*
 * Fills *ret_info from a region object of a reply ({"name", "size", "anonymous", "grants",
 * "clients"}). Returns 0, or -EPROTO (message set) when a field is missing or malformed.
 */
int region_info_parse(const cJSON *obj, struct mmapd_region_info *ret_info);

/*
 * Checks a region name before any round trip. Returns 0, -EINVAL or -ENAMETOOLONG with the
 * thread's message set to the reason.
 */
int region_name_check(const char *name);

/*
 * Records a failure for mmapd_last_message() of the calling thread and returns err (a negative
 * errno), so callers can write `return error_set(-EINVAL, "...", ...)`.
 */
int error_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A failure detached from the calling thread by error_save(). */
struct error_saved {
	int err;
	char *message;
};

/*
 * Detaches the calling thread's last failure, so that clean-up which may fail in its turn (and
 * record its own message) cannot replace the reason the caller is about to return.
 * error_restore() puts it back and frees whatever was recorded in between.
 */
void error_save(struct error_saved *ret_saved);
void error_restore(struct error_saved *saved);

#endif
