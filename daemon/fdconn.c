/* SPDX-License-Identifier: MIT */
/*
 * Client connections across restarts (see fdconn.h). What one daemon hands over is the
 * stored state's "handover" object:
 *   {"conns": [{"fdname", "uid", "gid", "pid", "client", "version", "connected_ms",
 *               "next_handle", "regions_created", "grants": [{"handle", "region",
 *               "anonymous", "mode", "size"}], "locks": [<lock objects of the locks op,
 *               with "anonymous">],
 *               "subs": [{"region", "anonymous"}]}],
 *    "lock_serial": N, "regions": {"<name>": {"seq": N, "generation": N}}}
 * It is read back by the next daemon only, from a memfd sealed by this one, but checked as
 * if it came from anyone: a value out of range refuses the connection it describes.
 */
#include "fdconn.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "access.h"
#include "conn.h"
#include "control.h"
#include "fdstore.h"
#include "fsdir.h"
#include "lock.h"
#include "log.h"
#include "msg.h"
#include "name.h"
#include "notify.h"
#include "ops.h"
#include "region.h"
#include "server.h"
#include "vocab.h"
#include "why.h"

#define FDCONN_DRAIN_MS 500      /* for all connections together, to write out their replies */

/* ---- storing ------------------------------------------------------------------------------ */

/* Adds g's object to the array grants. Returns false on ENOMEM. */
static bool fdconn_grant_json(cJSON *grants, const struct grant *g)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj || !cJSON_AddItemToArray(grants, obj)) {
		cJSON_Delete(obj);
		return false;
	}
	return cJSON_AddNumberToObject(obj, "handle", (double)g->handle) &&
	       cJSON_AddStringToObject(obj, "region", g->region->name) &&
	       cJSON_AddBoolToObject(obj, "anonymous", g->region->anonymous) &&
	       cJSON_AddStringToObject(obj, "mode", region_mode_name(g->mode)) &&
	       cJSON_AddNumberToObject(obj, "size", (double)g->size);
}

/* c's entry of the handover, stored as fdname. NULL on ENOMEM. */
static cJSON *fdconn_to_json(const struct conn *c, const char *fdname)
{
	cJSON *obj = cJSON_CreateObject(), *grants, *locks, *subs;
	struct htab_iter it;
	struct hnode *node;

	if (!obj)
		return NULL;
	grants = cJSON_AddArrayToObject(obj, "grants");
	locks = lock_conn_held_json(c);
	if (!cJSON_AddItemToObject(obj, "locks", locks)) {
		cJSON_Delete(locks);
		goto fail;
	}
	subs = notify_conn_subs_json(c);
	if (!cJSON_AddItemToObject(obj, "subs", subs)) {
		cJSON_Delete(subs);
		goto fail;
	}
	if (!grants || !cJSON_AddStringToObject(obj, "fdname", fdname) ||
	    !cJSON_AddNumberToObject(obj, "uid", c->uid) ||
	    !cJSON_AddNumberToObject(obj, "gid", c->gid) ||
	    !cJSON_AddNumberToObject(obj, "pid", c->pid) ||
	    !cJSON_AddStringToObject(obj, "client", c->client_name ? c->client_name : "") ||
	    !cJSON_AddNumberToObject(obj, "version", c->version) ||
	    !cJSON_AddNumberToObject(obj, "connected_ms", (double)c->connected_ms) ||
	    !cJSON_AddNumberToObject(obj, "next_handle", (double)c->next_handle) ||
	    !cJSON_AddNumberToObject(obj, "regions_created", (double)c->regions_created))
		goto fail;
	htab_iter_init(&c->grants, &it);
	while ((node = htab_iter_next(&c->grants, &it)) != NULL)
		if (!fdconn_grant_json(grants, htab_entry(node, struct grant, node)))
			goto fail;
	return obj;
fail:
	cJSON_Delete(obj);
	return NULL;
}

/* Adds the lock serial and every region's seq and generation to handover. */
static bool fdconn_server_json(struct server *srv, cJSON *handover)
{
	cJSON *regions = cJSON_AddObjectToObject(handover, "regions");
	struct htab_iter it;
	struct hnode *node;

	if (!regions || !cJSON_AddNumberToObject(handover, "lock_serial", (double)srv->lock_serial))
		return false;
	htab_iter_init(&srv->regions, &it);
	while ((node = htab_iter_next(&srv->regions, &it)) != NULL) {
		const struct region *r = htab_entry(node, struct region, node);
		cJSON *entry;

		if (r->state != REGION_READY)
			continue;
		entry = cJSON_AddObjectToObject(regions, r->name);
		if (!entry || !cJSON_AddNumberToObject(entry, "seq", (double)control_seq(r->ctl, r->seq)) ||
		    !cJSON_AddNumberToObject(entry, "generation", (double)r->generation))
			return false;
	}
	return true;
}

/*
 * Hands c over: writes out its output, stores its socket and adds its entry to conns.
 * Returns false (logged) when it stays for the "shutdown" event instead.
 */
static bool fdconn_store_one(struct conn *c, cJSON *conns, uint64_t deadline_ms)
{
	char fdname[32];
	cJSON *entry;
	int r;

	snprintf(fdname, sizeof(fdname), FDSTORE_CONN_PREFIX "%llu", (unsigned long long)c->serial);
	/* Answering its lock waits may have cut it off (a full queue). */
	r = conn_keepable(c) ? conn_drain(c, deadline_ms) : -ECONNRESET;
	if (r < 0) {
		log_debug("client %llu (pid %ld): not handed over: %s", (unsigned long long)c->serial,
		          (long)c->pid, r == -ETIMEDOUT ? "its replies were not read in time" :
		          strerror(-r));
		return false;
	}
	entry = fdconn_to_json(c, fdname);
	if (!entry || !cJSON_AddItemToArray(conns, entry)) {
		cJSON_Delete(entry);
		log_error("out of memory: client %llu is not handed over", (unsigned long long)c->serial);
		return false;
	}
	if (fdstore_send("FDSTORE=1", fdname, c->fd) < 0) {
		cJSON_DeleteItemFromArray(conns, cJSON_GetArraySize(conns) - 1);
		return false;
	}
	return true;
}

/*
 * Whether c holds a grant of an adopted region: the next daemon would not have its file (it
 * knows regions by name, and that name is no file of its data directory), so c is not handed
 * over but sent "shutdown" like a busy connection.
 */
static bool fdconn_holds_adopted(const struct conn *c)
{
	struct htab_iter it;
	struct hnode *node;

	htab_iter_init(&c->holders, &it);
	while ((node = htab_iter_next(&c->holders, &it)) != NULL)
		if (htab_entry(node, struct holder, node)->region->adopt)
			return true;
	return false;
}

void fdconn_store(struct server *srv)
{
	struct conn *c, **keep = NULL;
	cJSON *handover = NULL, *conns;
	size_t n = 0, i, stored = 0;
	uint64_t deadline;

	if (!srv->fdstore || srv->nconns == 0)
		return;
	keep = calloc(srv->nconns, sizeof(*keep));
	handover = cJSON_CreateObject();
	conns = cJSON_AddArrayToObject(handover, "conns");
	if (!keep || !conns) {
		log_error("out of memory: no client connection is handed over to the next daemon");
		goto out;
	}
	for (c = srv->conns; c; c = c->next) {
		if (!conn_keepable(c) || fdconn_holds_adopted(c))
			continue;
		conn_ref(c);
		keep[n++] = c;
	}
	/* A wait is not carried over: answered now, the client may ask the next daemon again. */
	for (i = 0; i < n; i++)
		lock_conn_cancel_waits(keep[i], "mmapd is restarting; ask again");
	/* The fast path's holders become locks the next daemon adopts. */
	if (lock_manage_all(srv) < 0)
		log_warn("some control pages kept changing: their fast locks are not handed over");
	deadline = state_now_ms() + FDCONN_DRAIN_MS;
	for (i = 0; i < n; i++) {
		if (fdconn_store_one(keep[i], conns, deadline)) {
			stored++;
			continue;
		}
		conn_unref(keep[i]);
		keep[i] = NULL;
	}
	if (stored == 0)
		goto out;
	if (!fdconn_server_json(srv, handover)) {
		log_error("out of memory: the handed over connections lose their state");
		goto out;
	}
	/* Kept for every state written later (fdstore_state_changed): a creation or deletion
	 * of an anonymous region that ends after this must not write the handover out. */
	srv->handover = handover;
	handover = NULL;
	fdstore_state_write(srv, srv->handover);
	log_info("handed %zu client connection%s over to the next daemon through the fd store",
	         stored, stored == 1 ? "" : "s");
out:
	for (i = 0; i < n; i++) {
		if (!keep[i])
			continue;
		conn_close_kept(keep[i]);
		conn_unref(keep[i]);
	}
	free(keep);
	cJSON_Delete(handover);
}

/* ---- adopting ----------------------------------------------------------------------------- */

/* The handover entry stored as fdname, or NULL. */
static const cJSON *fdconn_entry(const cJSON *handover, const char *fdname)
{
	const cJSON *entry;
	const char *name;

	cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(handover, "conns"))
		if (msg_get_string(entry, "fdname", &name) == 0 && strcmp(name, fdname) == 0)
			return entry;
	return NULL;
}

/* Checks that fd is a connected AF_UNIX stream socket. Returns 0, or -errno with ret_why set. */
static int fdconn_check_socket(int fd, struct ucred *cred, struct why *ret_why)
{
	struct sockaddr_un peer;
	socklen_t len = sizeof(int);
	int val;

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &val, &len) < 0) {
		val = errno;
		why_set(ret_why, val == ENOTSOCK ? "not a socket" : "its socket options cannot be read");
		return -val;
	}
	if (val != AF_UNIX) {
		why_set(ret_why, "not a Unix socket");
		return -EAFNOSUPPORT;
	}
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &len) < 0 || val != SOCK_STREAM) {
		why_set(ret_why, "not a stream socket");
		return -EPROTOTYPE;
	}
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) < 0 || val != 0) {
		why_set(ret_why, "a listening socket");
		return -EINVAL;
	}
	len = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &len) < 0) {
		why_set(ret_why, "not connected");
		return -ENOTCONN;
	}
	len = sizeof(*cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0) {
		val = errno;
		why_set(ret_why, "its peer's credentials cannot be read");
		return -val;
	}
	return 0;
}

/* Takes the larger of the stored seq and generation of r's name (they never go back). */
static void fdconn_region_counters(struct region *r, const cJSON *handover)
{
	const cJSON *entry = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(handover, "regions"), r->name);
	uint64_t v;

	if (msg_get_u64(entry, "seq", &v) == 0 && v > r->seq)
		r->seq = v;
	if (msg_get_u64(entry, "generation", &v) == 0 && v > r->generation)
		r->generation = v;
}

/*
 * The region name (referenced), opening a file region from the data directory when it is
 * not in the table. NULL when it is gone (an anonymous one is never looked for on disk).
 */
static struct region *fdconn_region(struct server *srv, const char *name, bool anonymous,
                                    const cJSON *handover)
{
	struct region *r = region_lookup(srv, name);
	struct stat st;
	int pathfd;

	if (r && r->state == REGION_READY && r->anonymous == anonymous) {
		region_ref(r);
	} else if (r || anonymous || name_check(name, strlen(name)) < 0 ||
	           fsdir_lookup(srv->dir_fd, name, &st, &pathfd) < 0 ||
	           region_open_file(srv, name, pathfd, &st, &r) < 0) {
		return NULL;
	}
	fdconn_region_counters(r, handover);
	return r;
}

/*
 * The region named by obj's field key, as fdconn_region finds it, in *ret_region
 * (referenced). Returns 0, or -EINVAL (a bad entry) or -ENOENT (no such region) with
 * ret_why set.
 */
static int fdconn_region_of(struct conn *c, const cJSON *obj, const char *key,
                            const cJSON *handover, struct region **ret_region,
                            struct why *ret_why)
{
	const char *name;
	bool anonymous = false;

	if (msg_get_string(obj, key, &name) < 0) {
		why_set(ret_why, "an entry without \"%s\"", key);
		return -EINVAL;
	}
	if (cJSON_GetObjectItemCaseSensitive(obj, "anonymous") &&
	    msg_get_bool(obj, "anonymous", &anonymous) < 0) {
		why_set(ret_why, "a bad \"anonymous\"");
		return -EINVAL;
	}
	*ret_region = fdconn_region(c->srv, name, anonymous, handover);
	if (!*ret_region) {
		why_set(ret_why, "region '%.64s' is gone or cannot be opened", name);
		return -ENOENT;
	}
	return 0;
}

/*
 * Gives c back one grant. Returns 0, or -errno with ret_why set: -EINVAL (a bad entry),
 * -ENOENT (the region is gone), -EACCES (no longer allowed), -EAGAIN (past
 * max_bytes_granted_per_client), -ENOMEM.
 */
static int fdconn_grant(struct conn *c, const cJSON *obj, uint64_t next_handle,
                        const cJSON *handover, struct why *ret_why)
{
	uint64_t max_bytes = c->srv->limits->max_bytes_granted_per_client, handle, size;
	const char *mode_name;
	struct region *r;
	struct grant *g;
	int mode, ret;

	if (msg_get_u64(obj, "handle", &handle) < 0 || handle == 0 || handle > next_handle ||
	    grant_find(c, handle) || msg_get_u64(obj, "size", &size) < 0 ||
	    msg_get_string(obj, "mode", &mode_name) < 0 ||
	    (mode = region_mode_parse(mode_name)) < 0) {
		why_set(ret_why, "a grant with a bad handle, size or mode");
		return -EINVAL;
	}
	ret = fdconn_region_of(c, obj, "region", handover, &r, ret_why);
	if (ret < 0)
		return ret;
	if ((mode == REGION_MODE_RW && r->rdonly) ||
	    access_check(&r->acc, c, mode == REGION_MODE_RW ? ACCESS_WRITE : ACCESS_READ) < 0) {
		why_set(ret_why, "its %s grant of region '%.64s' is no longer allowed", mode_name,
		        r->name);
		ret = -EACCES;
		goto fail;
	}
	if (size > max_bytes || c->bytes_granted > max_bytes - size) {
		why_set(ret_why, "its grants pass max_bytes_granted_per_client (%" PRIu64 ")",
		        max_bytes);
		ret = -EAGAIN;
		goto fail;
	}
	/* grant_new numbers the grant next_handle + 1: this makes it the stored handle. */
	c->next_handle = handle - 1;
	ret = grant_new(c, r, (enum region_mode)mode, &g);
	if (ret < 0) {
		why_set(ret_why, "out of memory");
		goto fail;
	}
	/* The size it was granted at, not the size now, is what max_bytes_granted counts. */
	c->bytes_granted += size - g->size;
	g->size = size;
	region_unref(r);
	return 0;
fail:
	region_check_idle(r);
	region_unref(r);
	return ret;
}

/* Whether c may still read r, as locking and subscribing need: 0, or -EACCES with ret_why set. */
static int fdconn_may_read(struct conn *c, const struct region *r, const char *what,
                           struct why *ret_why)
{
	if (access_check(&r->acc, c, ACCESS_READ) == 0)
		return 0;
	why_set(ret_why, "its %s on region '%.64s' is no longer allowed (no read access)", what,
	        r->name);
	return -EACCES;
}

/* Makes c hold one lock again. Returns 0, or -errno with ret_why set. */
static int fdconn_lock(struct conn *c, const cJSON *obj, const cJSON *handover,
                       struct why *ret_why)
{
	uint64_t id, offset, length, since_ms = 0;
	const char *mode;
	struct region *r;
	int ret;

	if (msg_get_u64(obj, "lock", &id) < 0 || msg_get_u64(obj, "offset", &offset) < 0 ||
	    msg_get_u64(obj, "length", &length) < 0 || msg_get_string(obj, "mode", &mode) < 0 ||
	    proto_lock_mode_find(mode) < 0) {
		why_set(ret_why, "a lock with a bad id, range or mode");
		return -EINVAL;
	}
	ret = fdconn_region_of(c, obj, "region", handover, &r, ret_why);
	if (ret < 0)
		return ret;
	msg_get_u64(obj, "since_ms", &since_ms);
	ret = fdconn_may_read(c, r, "lock", ret_why);
	if (ret == 0) {
		ret = lock_adopt(c, r, id, offset, length,
		                 proto_lock_mode_find(mode) == PROTO_LOCK_EXCLUSIVE, since_ms);
		if (ret < 0)
			why_set(ret_why, "lock %" PRIu64 " on region '%.64s' cannot be held again: %s",
			        id, r->name, strerror(-ret));
	}
	region_check_idle(r);
	region_unref(r);
	return ret < 0 ? ret : 0;
}

/* Subscribes c again to the region obj names. Returns 0, or -errno with ret_why set. */
static int fdconn_sub(struct conn *c, const cJSON *obj, const cJSON *handover,
                      struct why *ret_why)
{
	const cJSON *external = cJSON_GetObjectItemCaseSensitive(obj, PROTO_FIELD_EXTERNAL);
	struct region *r;
	int ret;

	ret = fdconn_region_of(c, obj, "region", handover, &r, ret_why);
	if (ret < 0)
		return ret;
	ret = fdconn_may_read(c, r, "subscription", ret_why);
	if (ret == 0) {
		/* A state stored before external subscriptions existed has none. */
		ret = cJSON_IsTrue(external) ? notify_subscribe_external(c, r)
		                             : notify_subscribe(c, r);
		if (ret < 0)
			why_set(ret_why, "cannot subscribe again to region '%.64s': %s", r->name,
			        strerror(-ret));
	}
	region_check_idle(r);
	region_unref(r);
	return ret < 0 ? ret : 0;
}

/*
 * Gives c (just made) back what entry says it had. Returns 0, or -errno with ret_why set:
 * -EINVAL (the stored state is incomplete), -EAGAIN (past a limit of the configuration),
 * -ENOMEM, or the error of a grant, lock or subscription that cannot be made again.
 */
static int fdconn_restore(struct conn *c, const cJSON *entry, const cJSON *handover,
                          struct why *ret_why)
{
	const struct limits *l = c->srv->limits;
	const char *client;
	uint64_t version, next_handle, created, connected;
	const cJSON *item;
	int ret;

	if (msg_get_string(entry, "client", &client) < 0 || strlen(client) > OPS_CLIENT_NAME_MAX ||
	    msg_get_u64(entry, "version", &version) < 0 || version < PROTO_VERSION_MIN ||
	    version > PROTO_VERSION || msg_get_u64(entry, "next_handle", &next_handle) < 0 ||
	    msg_get_u64(entry, "regions_created", &created) < 0 ||
	    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(entry, "grants")) ||
	    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(entry, "locks")) ||
	    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(entry, "subs"))) {
		why_set(ret_why, "its stored state is incomplete or out of range");
		return -EINVAL;
	}
	/* A configuration lowered by the restart: the limits hold for what is taken over too. */
	if ((uint64_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(entry, "grants")) >
	    l->max_grants_per_client ||
	    (uint64_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(entry, "locks")) >
	    l->max_locks_per_client) {
		why_set(ret_why, "it holds more grants or locks than max_grants_per_client (%" PRIu64
		        ") or max_locks_per_client (%" PRIu64 ") allow", l->max_grants_per_client,
		        l->max_locks_per_client);
		return -EAGAIN;
	}
	c->client_name = *client ? strdup(client) : NULL;
	if (*client && !c->client_name) {
		why_set(ret_why, "out of memory");
		return -ENOMEM;
	}
	c->version = (unsigned)version;
	/* The connection is as old as its socket, whatever the daemon. */
	if (msg_get_u64(entry, "connected_ms", &connected) == 0 && connected <= c->connected_ms)
		c->connected_ms = connected;
	c->regions_created = created;
	conn_hello_done(c);
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(entry, "grants"))
		if ((ret = fdconn_grant(c, item, next_handle, handover, ret_why)) < 0)
			return ret;
	c->next_handle = next_handle;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(entry, "locks"))
		if ((ret = fdconn_lock(c, item, handover, ret_why)) < 0)
			return ret;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(entry, "subs"))
		if ((ret = fdconn_sub(c, item, handover, ret_why)) < 0)
			return ret;
	return 0;
}

/*
 * Admits the peer of fd (credentials cred) as a new connection would be (server.c): the
 * configuration may have changed with the restart, and what it refuses now is refused, the
 * client then reconnecting to be told why. Stores the peer's groups in *ret_groups (to free).
 * Returns 0, or -errno (as budget_admit_uid, or -EACCES for allow_connect) with ret_why set.
 */
static int fdconn_check_admission(struct server *srv, int fd, const struct ucred *cred,
                                  uint32_t **ret_groups, size_t *ret_n, struct why *ret_why)
{
	int r = access_peer_groups(fd, ret_groups, ret_n);

	if (r < 0)
		log_debug("SO_PEERGROUPS failed: %s", strerror(-r));
	r = budget_admit_uid(srv, cred->uid, ret_why);
	if (r < 0)
		return r;
	if (!id_list_allows(&srv->cfg->allow_connect, cred->uid, cred->gid, *ret_groups, *ret_n)) {
		why_set(ret_why, "uid %lu may not connect (allow_connect)", (unsigned long)cred->uid);
		return -EACCES;
	}
	return 0;
}

void fdconn_adopt(struct server *srv, const cJSON *handover, const char *fdname, int fd)
{
	const cJSON *entry = handover ? fdconn_entry(handover, fdname) : NULL;
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	struct why why;
	uint64_t uid, lock_serial;
	uint32_t *groups = NULL;
	size_t ngroups = 0;
	struct conn *c;
	int r;

	r = 0;
	if (!entry) {
		why_set(&why, "the stored state does not describe it");
		r = -ENOENT;
	}
	if (r == 0)
		r = fdconn_check_socket(fd, &cred, &why);
	if (r == 0 && (msg_get_u64(entry, "uid", &uid) < 0 || uid != cred.uid)) {
		why_set(&why, "its peer is uid %lu, not the uid the stored state names",
		        (unsigned long)cred.uid);
		r = -EPERM;
	}
	if (r == 0)
		r = fdconn_check_admission(srv, fd, &cred, &groups, &ngroups, &why);
	if (r < 0) {
		log_warn("fd store: refusing the descriptor stored as \"%s\": %s", fdname, why.text);
		free(groups);
		close(fd);
		return;
	}
	if (msg_get_u64(handover, "lock_serial", &lock_serial) == 0 && lock_serial > srv->lock_serial)
		srv->lock_serial = lock_serial;
	/* Lost on the way through the store: what accept4 gave the previous daemon's socket. */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK) < 0)
		log_debug("fd store: cannot set the flags of \"%s\": %s", fdname, strerror(errno));
	r = conn_new(srv, fd, cred.pid, cred.uid, cred.gid, &c);
	if (r < 0) {
		log_error("fd store: cannot set up the connection stored as \"%s\": %s", fdname,
		          strerror(-r));
		free(groups);
		return;
	}
	c->groups = groups;
	c->ngroups = ngroups;
	if (fdconn_restore(c, entry, handover, &why) < 0) {
		log_warn("fd store: closing the connection stored as \"%s\" (pid %ld): %s; the client "
		         "will reconnect", fdname, (long)cred.pid, why.text);
		conn_close(c);
		return;
	}
	log_info("client %llu (pid %ld) taken over from the previous daemon: %zu grant%s, %" PRIu64
	         " lock%s, %" PRIu64 " subscription%s", (unsigned long long)c->serial,
	         (long)c->pid, c->ngrants, c->ngrants == 1 ? "" : "s", c->nlocks,
	         c->nlocks == 1 ? "" : "s", c->nsubs, c->nsubs == 1 ? "" : "s");
}
