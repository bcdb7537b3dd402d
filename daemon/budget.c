/* SPDX-License-Identifier: MIT */
/*
 * Per-user budgets (see budget.h). A small table by uid on the server; the items are plain
 * counters that the modules owning each resource charge and release (conn.c for connections,
 * queued bytes and descriptors, lock waiters; region.c for anonymous regions), so the table
 * itself knows nothing of them beyond their limits and names.
 */
#include "budget.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "state.h"
#include "why.h"

static const char *const budget_keys[BUDGET_NITEMS] = {
	[BUDGET_CONNECTIONS] = "max_clients_per_uid",
	[BUDGET_FDS] = "max_fds_per_uid",
	[BUDGET_QUEUE_BYTES] = "max_queue_bytes_per_uid",
	[BUDGET_LOCK_WAITERS] = "max_lock_waiters_per_uid",
	[BUDGET_ANON_REGIONS] = "max_anonymous_regions_per_uid",
	[BUDGET_ANON_BYTES] = "max_anonymous_bytes_per_uid",
	[BUDGET_WATCHED_FILES] = "max_watched_files_per_uid",
};

/* The names of the items in the stats reply. */
static const char *const budget_stat_names[BUDGET_NITEMS] = {
	[BUDGET_CONNECTIONS] = "connections",
	[BUDGET_FDS] = "descriptors",
	[BUDGET_QUEUE_BYTES] = "queue_bytes",
	[BUDGET_LOCK_WAITERS] = "lock_waiters",
	[BUDGET_ANON_REGIONS] = "anonymous_regions",
	[BUDGET_ANON_BYTES] = "anonymous_bytes",
	[BUDGET_WATCHED_FILES] = "watched_files",
};

const char *budget_key(enum budget_item item)
{
	assert(item < BUDGET_NITEMS);
	return budget_keys[item];
}

const char *budget_stat_name(enum budget_item item)
{
	assert(item < BUDGET_NITEMS);
	return budget_stat_names[item];
}

uint64_t budget_limit(const struct server *srv, enum budget_item item)
{
	const struct limits *l = srv->limits;

	switch (item) {
	case BUDGET_CONNECTIONS:  return l->max_clients_per_uid;
	case BUDGET_FDS:          return l->max_fds_per_uid;
	case BUDGET_QUEUE_BYTES:  return l->max_queue_bytes_per_uid;
	case BUDGET_LOCK_WAITERS: return l->max_lock_waiters_per_uid;
	case BUDGET_ANON_REGIONS: return l->max_anonymous_regions_per_uid;
	case BUDGET_ANON_BYTES:   return l->max_anonymous_bytes_per_uid;
	case BUDGET_WATCHED_FILES: return l->max_watched_files_per_uid;
	case BUDGET_NITEMS:       break;
	}
	assert(0);
	return 0;
}

bool budget_uid_exempt(const struct server *srv, uint32_t uid)
{
	return uid == 0 || uid == srv->self_uid;
}

struct budget *budget_find(const struct server *srv, uint32_t uid)
{
	struct hnode *node;

	for (node = htab_find_first(&srv->budgets, htab_hash_u64(uid)); node;
	     node = htab_find_next(node)) {
		struct budget *b = htab_entry(node, struct budget, node);

		if (b->uid == uid)
			return b;
	}
	return NULL;
}

struct budget *budget_ref_uid(struct server *srv, uint32_t uid)
{
	struct budget *b = budget_find(srv, uid);

	if (b) {
		b->refs++;
		return b;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->srv = srv;
	b->uid = uid;
	b->exempt = budget_uid_exempt(srv, uid);
	b->refs = 1;
	if (htab_insert(&srv->budgets, &b->node, htab_hash_u64(uid)) < 0) {
		free(b);
		return NULL;
	}
	return b;
}

void budget_ref(struct budget *b)
{
	b->refs++;
}

void budget_unref(struct budget *b)
{
	if (!b)
		return;
	assert(b->refs > 0);
	if (--b->refs > 0)
		return;
	for (int i = 0; i < BUDGET_NITEMS; i++)
		assert(b->used[i] == 0);
	htab_remove(&b->srv->budgets, &b->node);
	free(b);
}

int budget_charge(struct budget *b, enum budget_item item, uint64_t n)
{
	uint64_t want[BUDGET_NITEMS] = { 0 };
	enum budget_item failed;

	want[item] = n;
	return budget_charge_all(b, want, &failed);
}

uint64_t budget_all_users_limit(const struct server *srv)
{
	uint64_t max = srv->limits->max_anonymous_bytes_all_users;

	return max ? max : srv->mem_half;
}

/* True when used + n stays within max. */
static bool budget_within(uint64_t used, uint64_t n, uint64_t max)
{
	return n <= max && used <= max - n;
}

bool budget_fits(const struct budget *b, enum budget_item item, uint64_t n)
{
	const struct server *srv = b->srv;

	if (b->exempt || n == 0)
		return true;
	if (item == BUDGET_ANON_BYTES &&
	    !budget_within(srv->anon_bytes_users, n, budget_all_users_limit(srv)))
		return false;
	return budget_within(b->used[item], n, budget_limit(srv, item));
}

void budget_explain(const struct budget *b, enum budget_item item, uint64_t n,
                    struct budget_refusal *ret)
{
	const struct server *srv = b->srv;

	ret->key = budget_key(item);
	ret->used = b->used[item];
	ret->limit = budget_limit(srv, item);
	if (item == BUDGET_ANON_BYTES && budget_within(ret->used, n, ret->limit)) {
		ret->key = "max_anonymous_bytes_all_users";
		ret->used = srv->anon_bytes_users;
		ret->limit = budget_all_users_limit(srv);
	}
}

/* Adds delta (positive or negative) to item, and to the all-users total it belongs to. */
static void budget_add(struct budget *b, enum budget_item item, int64_t delta)
{
	b->used[item] += (uint64_t)delta;
	if (item == BUDGET_ANON_BYTES && !b->exempt)
		b->srv->anon_bytes_users += (uint64_t)delta;
}

int budget_charge_all(struct budget *b, const uint64_t n[BUDGET_NITEMS],
                      enum budget_item *ret_item)
{
	int i;

	for (i = 0; i < BUDGET_NITEMS; i++) {
		if (!budget_fits(b, (enum budget_item)i, n[i])) {
			*ret_item = (enum budget_item)i;
			return -EAGAIN;
		}
	}
	for (i = 0; i < BUDGET_NITEMS; i++)
		budget_add(b, (enum budget_item)i, (int64_t)n[i]);
	return 0;
}

void budget_force(struct budget *b, enum budget_item item, uint64_t n)
{
	budget_add(b, item, (int64_t)n);
}

void budget_release(struct budget *b, enum budget_item item, uint64_t n)
{
	assert(b->used[item] >= n);
	budget_add(b, item, -(int64_t)n);
}

/* The lowest descriptor number below which a non-exempt user may still make one. */
static int budget_fd_ceiling(const struct server *srv)
{
	uint64_t reserve = srv->limits->reserved_fds;

	return srv->fd_limit > reserve ? (int)(srv->fd_limit - reserve) : 0;
}

bool budget_fd_allowed(const struct server *srv, uint32_t uid, int fd)
{
	return budget_uid_exempt(srv, uid) || fd < budget_fd_ceiling(srv);
}

bool budget_fd_headroom(const struct server *srv, uint32_t uid)
{
	int fd;
	bool ok;

	if (budget_uid_exempt(srv, uid))
		return true;
	/* F_DUPFD takes the lowest free number at or above 0: where the next open would land. */
	fd = fcntl(srv->dir_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ok = fd < budget_fd_ceiling(srv);
	close(fd);
	return ok;
}

uint64_t budget_max_unprivileged_clients(const struct server *srv)
{
	uint64_t max = srv->limits->max_clients, reserve = srv->limits->reserved_clients;

	/* A small max_clients keeps at least half of its slots for everyone. */
	if (reserve > max / 2)
		reserve = max / 2;
	return max - reserve;
}

cJSON *budget_table_json(const struct server *srv)
{
	cJSON *users = cJSON_CreateObject();
	struct htab_iter it;
	struct hnode *node;

	if (!users)
		return NULL;
	htab_iter_init(&srv->budgets, &it);
	while ((node = htab_iter_next(&srv->budgets, &it)) != NULL) {
		const struct budget *b = htab_entry(node, struct budget, node);
		cJSON *u;
		char key[16];

		snprintf(key, sizeof(key), "%lu", (unsigned long)b->uid);
		u = cJSON_AddObjectToObject(users, key);
		if (!u || !cJSON_AddBoolToObject(u, "exempt", b->exempt))
			goto fail;
		for (int i = 0; i < BUDGET_NITEMS; i++)
			if (!cJSON_AddNumberToObject(u, budget_stat_names[i], (double)b->used[i]))
				goto fail;
	}
	return users;
fail:
	cJSON_Delete(users);
	return NULL;
}

int budget_admit_uid(const struct server *s, uid_t uid, struct why *ret_why)
{
	const struct budget *b = budget_find(s, (uint32_t)uid);
	bool exempt = budget_uid_exempt(s, (uint32_t)uid);

	if (s->nconns >= s->limits->max_clients) {
		why_set(ret_why, "too many connections (max_clients is %llu)",
		        (unsigned long long)s->limits->max_clients);
		return -EUSERS;
	}
	if (exempt)
		return 0;
	if (s->nconns_unprivileged >= budget_max_unprivileged_clients(s)) {
		why_set(ret_why, "too many connections (max_clients is %llu, of which %llu are "
		        "reserved for root and the daemon's user: reserved_clients)",
		        (unsigned long long)s->limits->max_clients,
		        (unsigned long long)(s->limits->max_clients - budget_max_unprivileged_clients(s)));
		return -EUSERS;
	}
	if (b && b->used[BUDGET_CONNECTIONS] >= s->limits->max_clients_per_uid) {
		why_set(ret_why, "too many connections from uid %lu (max_clients_per_uid is %llu)",
		        (unsigned long)uid, (unsigned long long)s->limits->max_clients_per_uid);
		return -EUSERS;
	}
	if (b && b->used[BUDGET_FDS] >= s->limits->max_fds_per_uid) {
		why_set(ret_why, "uid %lu makes the daemon hold %llu descriptors "
		        "(max_fds_per_uid is %llu)", (unsigned long)uid,
		        (unsigned long long)b->used[BUDGET_FDS],
		        (unsigned long long)s->limits->max_fds_per_uid);
		return -EMFILE;
	}
	return 0;
}
