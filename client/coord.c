/* SPDX-License-Identifier: MIT */
/*
 * The coordination requests of libmmapd (docs/coordination.md): locks, resize, subscriptions,
 * change reports, flush and flush policies, and the little state the library keeps about
 * them so that a reconnection can restore or report it: the ids of the locks held and the
 * names subscribed to. That state is changed by reply hooks (see struct call), which run in
 * the daemon's order with every event: a lock granted just before the connection broke is
 * counted among the locks lost, never forgotten.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctlpage.h"
#include "domain.h"
#include "msg.h"
#include "policy.h"

/* ---- what the library remembers ---- */

size_t locks_forget(struct mmapd_client *client)
{
	size_t n = 0;

	for (struct id_node *node = client->locks; node; node = node->next)
		n++;
	id_list_free(client->locks);
	client->locks = NULL;
	return n + fastlock_forget(client);
}

/* Forgets lock id. Lock held. */
static void locks_remove(struct mmapd_client *client, uint64_t id)
{
	for (struct id_node **p = &client->locks; *p; p = &(*p)->next) {
		if ((*p)->id == id) {
			struct id_node *node = *p;

			*p = node->next;
			free(node);
			return;
		}
	}
}

void subs_forget(struct mmapd_client *client, const char *name)
{
	for (struct name_node **p = &client->subs; *p; p = &(*p)->next) {
		if (strcmp((*p)->name, name) == 0) {
			struct name_node *node = *p;

			pagesub_forget(client, name);
			*p = node->next;
			free(node);
			return;
		}
	}
}

static struct name_node *name_node_new(const char *name, unsigned flags);

void subs_renamed(struct mmapd_client *client, const char *name, const char *to)
{
	for (struct name_node **p = &client->subs; *p; p = &(*p)->next) {
		if (strcmp((*p)->name, name) == 0) {
			struct name_node *old = *p, *node = name_node_new(to, old->flags);

			/* Without memory the subscription is not made again after a reconnection. */
			if (node)
				node->next = old->next;
			*p = node ? node : old->next;
			free(old);
			return;
		}
	}
}

static bool subs_have(const struct mmapd_client *client, const char *name)
{
	for (const struct name_node *node = client->subs; node; node = node->next)
		if (strcmp(node->name, name) == 0)
			return true;
	return false;
}

static struct name_node *name_node_new(const char *name, unsigned flags)
{
	size_t len = strlen(name) + 1;
	struct name_node *node = malloc(sizeof(*node) + len);

	if (node) {
		node->next = NULL;
		node->flags = flags;
		memcpy(node->name, name, len);
	}
	return node;
}

/* ---- requests ---- */

/*
 * Runs call, reads the integer key of its reply into *ret (key and ret may be NULL), then
 * frees request and reply. Returns 0 or a negative errno (message set).
 */
static int coord_run(struct mmapd_client *client, struct call *call, const char *key,
                     uint64_t *ret)
{
	uint64_t value = 0;
	int r = client_run(client, call);

	if (r == 0 && key && msg_get_u64(call->reply, key, &value) < 0)
		r = error_set(-EPROTO, "mmapd's reply has no valid \"%s\"", key);
	if (r == 0 && ret)
		*ret = value;
	cJSON_Delete(call->req);
	cJSON_Delete(call->reply);
	call->req = call->reply = NULL;
	return r;
}

/* The lock reply, in stream order: the lock is held from now on. */
int lock_reply_hook(struct mmapd_client *client, struct call *call, const cJSON *reply)
{
	struct id_node **node = call->ctx;

	if (msg_get_u64(reply, PROTO_FIELD_LOCK, &(*node)->id) < 0)
		return call_fail(call, -EPROTO, "mmapd's lock reply has no valid \"lock\"");
	(*node)->next = client->locks;
	client->locks = *node;
	*node = NULL;
	return 0;
}

/* Returns 0, or -EINVAL (message set) for flags that are not MMAPD_LOCK_*. */
static int lock_flags_check(unsigned flags)
{
	if (flags & ~(MMAPD_LOCK_EXCLUSIVE | MMAPD_LOCK_NOWAIT))
		return error_set(-EINVAL, "unknown lock flags 0x%x",
		                 flags & ~(MMAPD_LOCK_EXCLUSIVE | MMAPD_LOCK_NOWAIT));
	return 0;
}

int lock_request_new(struct mmapd_client *client, const char *name, uint64_t offset,
                     uint64_t length, unsigned flags, int timeout_ms, cJSON **ret_req)
{
	cJSON *req;
	int r;

	r = lock_flags_check(flags);
	if (r < 0)
		return r;
	r = request_start_region(client, proto_op_name(PROTO_OP_LOCK), name, &req);
	if (r < 0)
		return r;
	if ((r = request_add_u64(req, PROTO_FIELD_OFFSET, offset)) < 0 ||
	    (r = request_add_u64(req, PROTO_FIELD_LENGTH, length)) < 0)
		goto fail;
	if (!cJSON_AddStringToObject(req, PROTO_FIELD_MODE,
	                             proto_lock_mode_name(flags & MMAPD_LOCK_EXCLUSIVE
	                                                  ? PROTO_LOCK_EXCLUSIVE
	                                                  : PROTO_LOCK_SHARED)) ||
	    ((flags & MMAPD_LOCK_NOWAIT) && !cJSON_AddFalseToObject(req, PROTO_FIELD_WAIT))) {
		r = request_nomem();
		goto fail;
	}
	if (!(flags & MMAPD_LOCK_NOWAIT) && timeout_ms >= 0 &&
	    (r = request_add_u64(req, PROTO_FIELD_TIMEOUT_MS, (uint64_t)timeout_ms)) < 0)
		goto fail;
	*ret_req = req;
	return 0;

fail:
	cJSON_Delete(req);
	return r;
}

/* The lock request of mmapd_lock(), flags checked. */
static int lock_request(struct mmapd_client *client, const char *name, uint64_t offset,
                        uint64_t length, unsigned flags, int timeout_ms, uint64_t *ret_lock)
{
	struct id_node *node = NULL;
	struct call call = { .on_reply = lock_reply_hook, .ctx = &node };
	int r;

	r = lock_request_new(client, name, offset, length, flags, timeout_ms, &call.req);
	if (r < 0)
		return r;
	node = malloc(sizeof(*node));
	if (!node) {
		cJSON_Delete(call.req);
		return error_set(-ENOMEM, "out of memory");
	}
	/* The hook has validated "lock" and taken node. */
	r = coord_run(client, &call, PROTO_FIELD_LOCK, ret_lock);
	free(node);
	return r;
}

/* mmapd_lock(), and mmapd_region_lock() with its region (else NULL). */
static int lock_any(struct mmapd_client *client, struct mmapd_region *region, const char *name,
                    uint64_t offset, uint64_t length, unsigned flags, int timeout_ms,
                    uint64_t *ret_lock)
{
	int r;

	if (!ret_lock)
		return error_set(-EINVAL, "ret_lock is NULL");
	r = lock_flags_check(flags);
	if (r < 0)
		return r;
	/* A whole-region lock goes through the control page when there is one. */
	if (client && name && offset == 0 && length == 0) {
		r = fastlock_lock(client, region, name, flags, timeout_ms, &timeout_ms, ret_lock);
		if (r != FAST_FALLBACK)
			return r;
	}
	return lock_request(client, name, offset, length, flags, timeout_ms, ret_lock);
}

MMAPD_EXPORT int mmapd_lock(struct mmapd_client *client, const char *name, uint64_t offset,
                            uint64_t length, unsigned flags, int timeout_ms, uint64_t *ret_lock)
{
	return lock_any(client, NULL, name, offset, length, flags, timeout_ms, ret_lock);
}

/* The unlock reply, in stream order: the lock is no longer held. */
static int unlock_hook(struct mmapd_client *client, struct call *call, const cJSON *reply)
{
	(void)reply;
	locks_remove(client, *(const uint64_t *)call->ctx);
	return 0;
}

/* The unlock request of mmapd_unlock(); tell: the lock is a fast lock the daemon took over. */
static int unlock_request(struct mmapd_client *client, uint64_t lock, bool tell)
{
	struct call call = { .on_reply = unlock_hook, .ctx = &lock };
	int r;

	r = request_start(client, proto_op_name(PROTO_OP_UNLOCK), NULL, &call.req);
	if (r < 0)
		return r;
	r = request_add_u64(call.req, PROTO_FIELD_LOCK, lock);
	if (r < 0) {
		cJSON_Delete(call.req);
		return r;
	}
	r = coord_run(client, &call, NULL, NULL);
	if (r == -EBADF) {
		/* The daemon does not know it: nothing to remember either. */
		pthread_mutex_lock(&client->lock);
		locks_remove(client, lock);
		pthread_mutex_unlock(&client->lock);
		/* A fast lock's copy it had handed back to the page already: released. */
		if (tell)
			r = 0;
	}
	return r;
}

MMAPD_EXPORT int mmapd_unlock(struct mmapd_client *client, uint64_t lock)
{
	uint64_t tell = 0;

	if (client && fastlock_unlock(client, lock, &tell) == 0) {
		if (!tell)
			return 0;
		/* The daemon took the page's locks over: it releases its copy too. */
		return unlock_request(client, tell, true);
	}
	return unlock_request(client, lock, false);
}

/* Copies string key of obj into dst (room for cap bytes, truncated). Returns 0 or -EPROTO. */
static int lock_info_string(const cJSON *obj, const char *key, char *dst, size_t cap)
{
	const char *s;
	size_t len;

	if (msg_get_string(obj, key, &s) < 0)
		return -EPROTO;
	len = strnlen(s, cap - 1);
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* Reads one lock object of a locks reply. Returns 0 or -EPROTO (message not set). */
static int lock_info_parse(const cJSON *obj, struct lock_entry *e)
{
	struct mmapd_lock_info *ret = &e->info;
	const char *state, *mode;
	int held_or_waiting, shared_or_exclusive;
	uint64_t pid, uid;

	ret->region = e->region;
	ret->client = e->client;
	if (!cJSON_IsObject(obj) ||
	    lock_info_string(obj, PROTO_FIELD_REGION, e->region, sizeof(e->region)) < 0 ||
	    lock_info_string(obj, PROTO_FIELD_CLIENT, e->client, sizeof(e->client)) < 0 ||
	    msg_get_u64(obj, PROTO_FIELD_LOCK, &ret->lock) < 0 ||
	    msg_get_string(obj, PROTO_FIELD_STATE, &state) < 0 ||
	    msg_get_string(obj, PROTO_FIELD_MODE, &mode) < 0 ||
	    msg_get_u64(obj, PROTO_FIELD_OFFSET, &ret->offset) < 0 ||
	    msg_get_u64(obj, PROTO_FIELD_LENGTH, &ret->length) < 0 ||
	    msg_get_u64(obj, PROTO_FIELD_PID, &pid) < 0 ||
	    msg_get_u64(obj, PROTO_FIELD_UID, &uid) < 0 ||
	    msg_get_u64(obj, PROTO_FIELD_SINCE_MS, &ret->since_ms) < 0)
		return -EPROTO;
	held_or_waiting = proto_lock_state_find(state);
	shared_or_exclusive = proto_lock_mode_find(mode);
	if (held_or_waiting < 0 || shared_or_exclusive < 0)
		return -EPROTO;
	ret->waiting = held_or_waiting == PROTO_LOCK_WAITING;
	ret->exclusive = shared_or_exclusive == PROTO_LOCK_EXCLUSIVE;
	ret->pid = (int64_t)pid;
	ret->uid = (int64_t)uid;
	return 0;
}

MMAPD_EXPORT int mmapd_list_locks(struct mmapd_client *client, const char *name,
                                  struct mmapd_lock_list **ret_list)
{
	struct lock_entry *infos = NULL;
	struct mmapd_lock_list *list = NULL;
	struct call call = { 0 };
	const cJSON *arr, *item;
	size_t n = 0;
	int r;

	if (!ret_list)
		return error_set(-EINVAL, "ret_list is NULL");
	r = request_start(client, proto_op_name(PROTO_OP_LOCKS), name, &call.req);
	if (r < 0)
		return r;
	r = client_run(client, &call);
	if (r < 0)
		goto out;
	arr = cJSON_GetObjectItemCaseSensitive(call.reply, PROTO_FIELD_LOCKS);
	if (!cJSON_IsArray(arr)) {
		r = error_set(-EPROTO, "mmapd's locks reply has no \"locks\" array");
		goto out;
	}
	if (cJSON_GetArraySize(arr) > 0) {
		infos = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*infos));
		if (!infos) {
			r = error_set(-ENOMEM, "out of memory listing locks");
			goto out;
		}
	}
	cJSON_ArrayForEach(item, arr) {
		if (lock_info_parse(item, &infos[n]) < 0) {
			r = error_set(-EPROTO, "mmapd sent a malformed lock object");
			goto out;
		}
		n++;
	}
	list = malloc(sizeof(*list));
	if (!list) {
		r = error_set(-ENOMEM, "out of memory listing locks");
		goto out;
	}
	list->entries = infos;
	list->count = n;
	*ret_list = list;
	infos = NULL;
out:
	free(infos);
	cJSON_Delete(call.req);
	cJSON_Delete(call.reply);
	return r;
}

MMAPD_EXPORT size_t mmapd_lock_list_count(const struct mmapd_lock_list *list)
{
	return list ? list->count : 0;
}

MMAPD_EXPORT const struct mmapd_lock_info *mmapd_lock_list_at(const struct mmapd_lock_list *list,
                                                              size_t i)
{
	return list && i < list->count ? &list->entries[i].info : NULL;
}

MMAPD_EXPORT void mmapd_lock_list_free(struct mmapd_lock_list *list)
{
	if (!list)
		return;
	free(list->entries);
	free(list);
}

/* The resize reply, in stream order: mappings of the region follow its new size now. */
int resize_reply_hook(struct mmapd_client *client, struct call *call, const cJSON *reply)
{
	struct region_entry e;

	if (region_info_parse(cJSON_GetObjectItemCaseSensitive(reply, PROTO_FIELD_REGION), &e) < 0)
		return call_fail(call, -EPROTO, "mmapd's resize reply has a malformed region object");
	regions_resized(client, e.name, e.info.size, e.info.generation);
	return 0;
}

int resize_request_new(struct mmapd_client *client, const char *name, uint64_t size,
                       unsigned flags, cJSON **ret_req)
{
	const unsigned known = MMAPD_RESIZE_SPARSE | MMAPD_RESIZE_GROW_ONLY;
	cJSON *req;
	int r;

	if (flags & ~known)
		return error_set(-EINVAL, "unknown resize flags 0x%x", flags & ~known);
	if (size == 0)
		return error_set(-EINVAL, "a region cannot be resized to 0 bytes");
	r = request_start_region(client, proto_op_name(PROTO_OP_RESIZE), name, &req);
	if (r < 0)
		return r;
	r = request_add_u64(req, PROTO_FIELD_SIZE, size);
	if (r == 0 && (flags & MMAPD_RESIZE_SPARSE) &&
	    !cJSON_AddTrueToObject(req, PROTO_FIELD_SPARSE))
		r = request_nomem();
	if (r == 0 && (flags & MMAPD_RESIZE_GROW_ONLY) &&
	    !cJSON_AddTrueToObject(req, PROTO_FIELD_GROW_ONLY))
		r = request_nomem();
	if (r < 0) {
		cJSON_Delete(req);
		return r;
	}
	*ret_req = req;
	return 0;
}

MMAPD_EXPORT int mmapd_resize(struct mmapd_client *client, const char *name, uint64_t size,
                              unsigned flags)
{
	struct call call = { .on_reply = resize_reply_hook };
	int r = resize_request_new(client, name, size, flags, &call.req);

	return r < 0 ? r : coord_run(client, &call, NULL, NULL);
}

/* The subscribe reply, in stream order: a reconnection subscribes again from now on. */
static int subscribe_hook(struct mmapd_client *client, struct call *call, const cJSON *reply)
{
	struct name_node **node = call->ctx;
	uint64_t seq;

	if (msg_get_u64(reply, PROTO_FIELD_SEQ, &seq) < 0)
		return call_fail(call, -EPROTO, "mmapd's subscribe reply has no valid \"seq\"");
	if (!subs_have(client, (*node)->name)) {
		(*node)->next = client->subs;
		client->subs = *node;
		*node = NULL;
	}
	return 0;
}

/* A subscribe request for name with flags (MMAPD_SUBSCRIBE_*, checked) in *ret_req. */
static int subscribe_request(struct mmapd_client *client, const char *name, unsigned flags,
                             cJSON **ret_req)
{
	int r;

	if (flags & ~MMAPD_SUBSCRIBE_EXTERNAL)
		return error_set(-EINVAL, "unknown subscribe flags 0x%x",
		                 flags & ~MMAPD_SUBSCRIBE_EXTERNAL);
	r = request_start_region(client, proto_op_name(PROTO_OP_SUBSCRIBE), name, ret_req);
	if (r == 0 && (flags & MMAPD_SUBSCRIBE_EXTERNAL) &&
	    !cJSON_AddTrueToObject(*ret_req, PROTO_FIELD_EXTERNAL)) {
		cJSON_Delete(*ret_req);
		r = request_nomem();
	}
	return r;
}

MMAPD_EXPORT int mmapd_subscribe_flags(struct mmapd_client *client, const char *name,
                                       unsigned flags, uint64_t *ret_seq)
{
	struct name_node *node = NULL;
	struct call call = { .on_reply = subscribe_hook, .ctx = &node };
	int r;

	r = subscribe_request(client, name, flags, &call.req);
	if (r < 0)
		return r;
	node = name_node_new(name, flags);
	if (!node) {
		cJSON_Delete(call.req);
		return error_set(-ENOMEM, "out of memory");
	}
	r = coord_run(client, &call, PROTO_FIELD_SEQ, ret_seq);
	free(node);
	return r;
}

/* The subscribe reply with "page": recorded as subscribe_hook does, and read from the page. */
static int subscribe_page_hook(struct mmapd_client *client, struct call *call,
                               const cJSON *reply)
{
	struct name_node **node = call->ctx;
	const char *name = (*node)->name;
	uint64_t seq, tag;
	int r;

	if (call->fd2 < 0 || msg_get_u64(reply, PROTO_FIELD_SLOT, &tag) < 0 ||
	    tag > CHANGELOG_DAEMON)
		return call_fail(call, -EPROTO, "mmapd's page subscribe reply has no page, "
		                 "doorbell or slot");
	r = subscribe_hook(client, call, reply);
	if (r < 0)
		return r;
	(void)msg_get_u64(reply, PROTO_FIELD_SEQ, &seq);
	r = pagesub_add(client, name, call->fd, call->fd2, (unsigned)tag, seq);
	call->fd = call->fd2 = -1;
	if (r < 0)
		return call_fail(call, r, "cannot watch the control page of region '%s': %s", name,
		                 mmapd_strerror(r));
	return 0;
}

MMAPD_EXPORT int mmapd_subscribe_page(struct mmapd_client *client, const char *name,
                                      uint64_t *ret_seq)
{
	struct name_node *node = NULL;
	struct call call = {
		.on_reply = subscribe_page_hook, .ctx = &node, .want_fd = true, .want_fd2 = true,
	};
	bool subscribed;
	int r;

	r = request_start_region(client, proto_op_name(PROTO_OP_SUBSCRIBE), name, &call.req);
	if (r < 0)
		return r;
	node = name_node_new(name, 0);
	if (!node || !cJSON_AddBoolToObject(call.req, PROTO_FIELD_PAGE, 1)) {
		free(node);
		cJSON_Delete(call.req);
		return error_set(-ENOMEM, "out of memory");
	}
	r = coord_run(client, &call, PROTO_FIELD_SEQ, ret_seq);
	free(node);
	if (r < 0 && r != -EALREADY) {
		/* Subscribed without a page to read it from: undone, so that nothing half works. */
		pthread_mutex_lock(&client->lock);
		subscribed = subs_have(client, name);
		pthread_mutex_unlock(&client->lock);
		if (subscribed) {
			struct error_saved saved;

			error_save(&saved);
			(void)mmapd_unsubscribe(client, name);
			error_restore(&saved);
		}
	}
	return r;
}

MMAPD_EXPORT int mmapd_subscribe(struct mmapd_client *client, const char *name,
                                 uint64_t *ret_seq)
{
	return mmapd_subscribe_flags(client, name, 0, ret_seq);
}

/* The unsubscribe reply, in stream order. */
static int unsubscribe_hook(struct mmapd_client *client, struct call *call, const cJSON *reply)
{
	(void)reply;
	subs_forget(client, call->ctx);
	return 0;
}

MMAPD_EXPORT int mmapd_unsubscribe(struct mmapd_client *client, const char *name)
{
	struct call call = { .on_reply = unsubscribe_hook };
	int r;

	r = request_start_region(client, proto_op_name(PROTO_OP_UNSUBSCRIBE), name, &call.req);
	if (r < 0)
		return r;
	call.ctx = (void *)name;
	r = coord_run(client, &call, NULL, NULL);
	if (r == -ENOENT) {
		pthread_mutex_lock(&client->lock);
		subs_forget(client, name);
		pthread_mutex_unlock(&client->lock);
	}
	return r;
}

int subs_restore(struct mmapd_client *client)
{
	char **names = NULL;
	unsigned *flags = NULL;
	size_t n = 0, i;
	uint64_t gen;
	int r = 0;

	pthread_mutex_lock(&client->lock);
	gen = client->gen;
	for (struct name_node *node = client->subs; node; node = node->next)
		n++;
	names = n ? calloc(n, sizeof(*names)) : NULL;
	flags = n ? calloc(n, sizeof(*flags)) : NULL;
	i = 0;
	for (struct name_node *node = client->subs; names && flags && node; node = node->next) {
		flags[i] = node->flags;
		if (!(names[i++] = strdup(node->name)))
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&client->lock);
	if ((n && (!names || !flags)) || r < 0) {
		r = error_set(-ENOMEM, "out of memory subscribing again");
		goto out;
	}

	for (i = 0; i < n && r == 0; i++) {
		struct call call = { .flags = CALL_INTERNAL };

		r = subscribe_request(client, names[i], flags[i], &call.req);
		if (r == 0)
			r = coord_run(client, &call, NULL, NULL);
		if (r == 0 || r == -EALREADY) {
			r = 0;
			continue;
		}
		pthread_mutex_lock(&client->lock);
		if (client->state == CLIENT_UP && client->gen == gen) {
			/* Refused, not cut off: the region is gone (or out of reach). */
			struct mmapd_event ev = {
				.type = MMAPD_EVENT_DELETED, .region = names[i],
				.error = r, .message = mmapd_last_message(),
			};

			subs_forget(client, names[i]);
			if (!regions_have(client, names[i]))
				event_push(client, &ev);
			r = 0;
		}
		pthread_mutex_unlock(&client->lock);
	}
out:
	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	free(flags);
	return r;
}

/* A change of region (a handle, or NULL) or of the region called name: on its control page
 * when that may be, else by the changed request. */
static int report_changed(struct mmapd_client *client, struct mmapd_region *region,
                          const char *name, uint64_t offset, uint64_t length, uint64_t *ret_seq)
{
	struct call call = { 0 };
	int r;

	if (length == 0)
		return error_set(-EINVAL, "a change of 0 bytes cannot be reported");
	r = client && name ? fastnotify_report(client, region, name, offset, length, ret_seq)
	                   : FAST_FALLBACK;
	if (r != FAST_FALLBACK)
		return r;
	r = request_start_region(client, proto_op_name(PROTO_OP_CHANGED), name, &call.req);
	if (r < 0)
		return r;
	if ((r = request_add_u64(call.req, PROTO_FIELD_OFFSET, offset)) < 0 ||
	    (r = request_add_u64(call.req, PROTO_FIELD_LENGTH, length)) < 0) {
		cJSON_Delete(call.req);
		return r;
	}
	return coord_run(client, &call, PROTO_FIELD_SEQ, ret_seq);
}

MMAPD_EXPORT int mmapd_report_changed(struct mmapd_client *client, const char *name, uint64_t offset,
                               uint64_t length, uint64_t *ret_seq)
{
	return report_changed(client, NULL, name, offset, length, ret_seq);
}

int flush_request_new(struct mmapd_client *client, const char *name, uint64_t offset,
                      uint64_t length, cJSON **ret_req)
{
	cJSON *req;
	int r;

	r = request_start_region(client, proto_op_name(PROTO_OP_FLUSH), name, &req);
	if (r < 0)
		return r;
	/* Without offset and length the daemon flushes the whole file (fdatasync). */
	if ((offset || length) &&
	    ((r = request_add_u64(req, PROTO_FIELD_OFFSET, offset)) < 0 ||
	     (r = request_add_u64(req, PROTO_FIELD_LENGTH, length)) < 0)) {
		cJSON_Delete(req);
		return r;
	}
	*ret_req = req;
	return 0;
}

MMAPD_EXPORT int mmapd_flush(struct mmapd_client *client, const char *name, uint64_t offset,
                             uint64_t length)
{
	struct call call = { 0 };
	int r = flush_request_new(client, name, offset, length, &call.req);

	return r < 0 ? r : coord_run(client, &call, NULL, NULL);
}

MMAPD_EXPORT int mmapd_set_policy(struct mmapd_client *client, const char *name,
                                  const struct mmapd_policy *policy)
{
	struct call call = { 0 };
	cJSON *obj;
	int r;

	if (!policy)
		return error_set(-EINVAL, "policy is NULL");
	r = policy_check(policy);
	if (r < 0)
		return r;
	r = request_start_region(client, proto_op_name(PROTO_OP_SET_POLICY), name, &call.req);
	if (r < 0)
		return r;
	obj = policy_json(policy);
	if (!obj || !cJSON_AddItemToObject(call.req, PROTO_FIELD_POLICY, obj)) {
		cJSON_Delete(obj);
		cJSON_Delete(call.req);
		return request_nomem();
	}
	return coord_run(client, &call, NULL, NULL);
}

MMAPD_EXPORT int mmapd_clear_error(struct mmapd_client *client, const char *name)
{
	struct call call = { 0 };
	int r;

	r = request_start_region(client, proto_op_name(PROTO_OP_CLEAR_ERROR), name, &call.req);
	if (r < 0)
		return r;
	return coord_run(client, &call, NULL, NULL);
}

/*
 * ---- the same on an open region ----
 * The region's connection and name; window offsets become region offsets. A NULL region is
 * -EINVAL, as for every mmapd_region_* call.
 */

int region_coord_offset(const struct mmapd_region *region, uint64_t off, uint64_t *ret)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	if (off > UINT64_MAX - region->offset)
		return error_set(-ERANGE, "offset %llu past the end of any region",
		                 (unsigned long long)off);
	*ret = region->offset + off;
	return 0;
}

MMAPD_EXPORT int mmapd_region_lock(struct mmapd_region *region, uint64_t offset, uint64_t length,
                                   unsigned flags, int timeout_ms, uint64_t *ret_lock)
{
	int r = region_coord_offset(region, offset, &offset);

	return r < 0 ? r : lock_any(region->client, region, region->name, offset, length, flags,
	                            timeout_ms, ret_lock);
}

MMAPD_EXPORT int mmapd_region_unlock(struct mmapd_region *region, uint64_t lock)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	return mmapd_unlock(region->client, lock);
}

MMAPD_EXPORT int mmapd_region_resize(struct mmapd_region *region, uint64_t size, unsigned flags)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	return mmapd_resize(region->client, region->name, size, flags);
}

MMAPD_EXPORT int mmapd_region_subscribe(struct mmapd_region *region, uint64_t *ret_seq)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	return mmapd_subscribe(region->client, region->name, ret_seq);
}

MMAPD_EXPORT int mmapd_region_subscribe_flags(struct mmapd_region *region, unsigned flags,
                                              uint64_t *ret_seq)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	return mmapd_subscribe_flags(region->client, region->name, flags, ret_seq);
}

MMAPD_EXPORT int mmapd_region_unsubscribe(struct mmapd_region *region)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	return mmapd_unsubscribe(region->client, region->name);
}

MMAPD_EXPORT int mmapd_region_report_changed(struct mmapd_region *region, uint64_t offset,
                                             uint64_t length, uint64_t *ret_seq)
{
	int r = region_coord_offset(region, offset, &offset);

	return r < 0 ? r : report_changed(region->client, region, region->name, offset, length,
	                                  ret_seq);
}

MMAPD_EXPORT int mmapd_region_flush(struct mmapd_region *region, uint64_t offset, uint64_t length)
{
	int r = region_coord_offset(region, offset, &offset);

	return r < 0 ? r : mmapd_flush(region->client, region->name, offset, length);
}

MMAPD_EXPORT int mmapd_region_set_policy(struct mmapd_region *region,
                                         const struct mmapd_policy *policy)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	return mmapd_set_policy(region->client, region->name, policy);
}

MMAPD_EXPORT int mmapd_region_clear_error(struct mmapd_region *region)
{
	if (!region)
		return error_set(-EINVAL, "region is NULL");
	return mmapd_clear_error(region->client, region->name);
}
