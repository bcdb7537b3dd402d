/* SPDX-License-Identifier: MIT */
/*
 * The ops of access control and operations (docs/protocol.md, "Access control and
 * operations"): chown and chmod change a region's owner and mode and save them in its
 * metadata before answering; clients lists the connections with what each holds against
 * its quotas; stats reports the daemon's counters as JSON or in the Prometheus text format,
 * whose names follow Prometheus' conventions (the mmapd_ namespace, base units, _total on
 * counters) where the JSON keys are the protocol's. What a process usually reports about
 * itself as process_* is mmapd_* here too: the text reaches Prometheus through node_exporter's
 * textfile collector, and node_exporter refuses metrics named like its own process_* ones.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "conn.h"
#include "extwatch.h"
#include "fdcount.h"
#include "log.h"
#include "msg.h"
#include "ops.h"
#include "region.h"
#include "state.h"
#include "vocab.h"

#define CLIENTS_LIMIT_MAX 1000

/*
 * Checks that c may change the owner or mode of r: root or the owner. Returns 0, or -1
 * after answering EPERM (as chown(2) and chmod(2) do).
 */
static int admin_check_owner(struct conn *c, uint64_t id, const struct region *r, const char *op)
{
	if (c->uid == 0 || (uint32_t)c->uid == r->acc.uid)
		return 0;
	conn_warn(c, "denied %s of region '%s': not its owner (uid %" PRIu32 ")", op, r->name,
	          r->acc.uid);
	reply_error(c, id, EPERM, "operation not permitted: only root or the owner (uid %"
	            PRIu32 ") may %s region '%s'", r->acc.uid, op, r->name);
	return -1;
}

/* Applies a new owner and mode to r, logs it and answers once it is saved. */
static void admin_apply(struct conn *c, uint64_t id, struct region *r, const struct access *a)
{
	log_info("client %llu (pid %ld, uid %lu) set region '%s' to owner %" PRIu32 ":%" PRIu32
	         ", mode %04o", (unsigned long long)c->serial, (long)c->pid, (unsigned long)c->uid,
	         r->name, a->uid, a->gid, a->perm);
	r->acc = *a;
	ops_save_region(c, id, r, NULL);
}

int ops_chown(struct conn *c, uint64_t id, cJSON *req)
{
	const char *name;
	struct region *r;
	struct access a;
	uint64_t uid, gid;
	int has_uid, has_gid, ret;

	name = ops_get_name(c, id, req);
	if (!name)
		return OPS_DONE;
	has_uid = ops_get_u64(c, id, req, PROTO_FIELD_UID, false, &uid);
	if (has_uid < 0)
		return OPS_DONE;
	has_gid = ops_get_u64(c, id, req, PROTO_FIELD_GID, false, &gid);
	if (has_gid < 0)
		return OPS_DONE;
	if ((has_uid && uid >= UINT32_MAX) || (has_gid && gid >= UINT32_MAX)) {
		reply_error(c, id, EINVAL, "fields 'uid' and 'gid' must be below 4294967295");
		return OPS_DONE;
	}
	if (!has_uid && !has_gid) {
		reply_error(c, id, EINVAL, "field 'uid' or 'gid' is required");
		return OPS_DONE;
	}
	ret = ops_get_region(c, id, req, name, 0, &r);
	if (!r)
		return ret;
	if (admin_check_owner(c, id, r, "chown") < 0)
		goto out;
	a = r->acc;
	if (has_uid && (uint32_t)uid != a.uid && c->uid != 0) {
		conn_warn(c, "denied chown of region '%s' to uid %" PRIu64 ": only root gives regions "
		          "away", name, uid);
		reply_error(c, id, EPERM, "operation not permitted: only root may change the "
		            "owner of region '%s'", name);
		goto out;
	}
	if (has_gid && c->uid != 0 && !access_conn_in_group(c, (uint32_t)gid)) {
		conn_warn(c, "denied chown of region '%s' to gid %" PRIu64 ": not in that group",
		          name, gid);
		reply_error(c, id, EPERM, "operation not permitted: uid %lu is not in group %"
		            PRIu64, (unsigned long)c->uid, gid);
		goto out;
	}
	if (has_uid)
		a.uid = (uint32_t)uid;
	if (has_gid)
		a.gid = (uint32_t)gid;
	/* An anonymous region's memory is its owner's: the new owner is charged from now on. */
	if (region_budget_move(r, a.uid) < 0) {
		reply_nomem(c, id);
		goto out;
	}
	admin_apply(c, id, r, &a);
out:
	ops_put_region(r);
	return OPS_DONE;
}

int ops_chmod(struct conn *c, uint64_t id, cJSON *req)
{
	const char *name;
	struct region *r;
	struct access a;
	uint64_t perm;
	int ret;

	name = ops_get_name(c, id, req);
	if (!name || ops_get_u64(c, id, req, PROTO_FIELD_PERM, true, &perm) < 0)
		return OPS_DONE;
	if (perm > ACCESS_PERM_MAX) {
		reply_error(c, id, EINVAL, "field 'perm' must be a mode from 0 to 0777 (511)");
		return OPS_DONE;
	}
	ret = ops_get_region(c, id, req, name, 0, &r);
	if (!r)
		return ret;
	if (r->anonymous && !r->exec && (perm & ACCESS_PERM_EXEC)) {
		conn_warn(c, "denied chmod of anonymous region '%s' to %04o: it was created without "
		          "exec", name, (unsigned)perm);
		reply_error(c, id, EPERM, "operation not permitted: anonymous region '%s' was "
		            "created without \"exec\" and cannot get execute bits", name);
	} else if (admin_check_owner(c, id, r, "chmod") == 0) {
		a = r->acc;
		a.perm = (unsigned)perm;
		admin_apply(c, id, r, &a);
	}
	ops_put_region(r);
	return OPS_DONE;
}

/* The object of one connection in the clients reply. NULL on ENOMEM. */
static cJSON *clients_json(const struct conn *k)
{
	cJSON *obj = cJSON_CreateObject();
	uint64_t waiting = k->parked;

	if (!obj)
		return NULL;
	if (!cJSON_AddNumberToObject(obj, PROTO_FIELD_ID, (double)k->serial) ||
	    !(k->client_name ? cJSON_AddStringToObject(obj, PROTO_FIELD_NAME, k->client_name)
	                     : cJSON_AddNullToObject(obj, PROTO_FIELD_NAME)) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_PID, k->pid) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_UID, k->uid) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_GID, k->gid) ||
	    !cJSON_AddNumberToObject(obj, "connected_since_ms", (double)k->connected_ms) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_GRANTS, (double)k->ngrants) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_BYTES_GRANTED, (double)k->bytes_granted) ||
	    !cJSON_AddNumberToObject(obj, "regions_created", (double)k->regions_created) ||
	    !cJSON_AddNumberToObject(obj, "locks_held", (double)(k->nlocks - waiting)) ||
	    !cJSON_AddNumberToObject(obj, "locks_waiting", (double)waiting) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_SUBSCRIPTIONS, (double)k->nsubs) ||
	    !cJSON_AddNumberToObject(obj, "queued_bytes", (double)k->out_bytes) ||
	    !cJSON_AddNumberToObject(obj, "queued_fds", (double)k->out_fds)) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

static int clients_cmp(const void *a, const void *b)
{
	const struct conn *x = *(struct conn *const *)a, *y = *(struct conn *const *)b;

	return x->serial < y->serial ? -1 : x->serial > y->serial;
}

int ops_clients(struct conn *c, uint64_t id, cJSON *req)
{
	struct server *srv = c->srv;
	struct conn **all = NULL, *k;
	uint64_t after = 0, limit = CLIENTS_LIMIT_MAX;
	cJSON *reply = NULL, *array, *obj;
	size_t n = 0, i, used, sent = 0;
	int r;

	if (ops_get_u64(c, id, req, PROTO_FIELD_AFTER, false, &after) < 0)
		return OPS_DONE;
	r = ops_get_u64(c, id, req, "limit", false, &limit);
	if (r < 0)
		return OPS_DONE;
	if (limit < 1 || limit > CLIENTS_LIMIT_MAX) {
		reply_error(c, id, EINVAL, "field 'limit' must be an integer from 1 to %d",
		            CLIENTS_LIMIT_MAX);
		return OPS_DONE;
	}
	all = malloc((srv->nconns + 1) * sizeof(*all));
	if (!all)
		goto nomem;
	for (k = srv->conns; k; k = k->next)
		if (k->serial > after)
			all[n++] = k;
	qsort(all, n, sizeof(*all), clients_cmp);

	reply = msg_reply_ok(id);
	if (!reply || !cJSON_AddFalseToObject(reply, PROTO_FIELD_MORE))
		goto nomem;
	array = cJSON_AddArrayToObject(reply, PROTO_FIELD_CLIENTS);
	used = array ? ops_json_len(reply) : 0;
	if (used == 0)
		goto nomem;
	for (i = 0; i < n && sent < limit; i++) {
		size_t len;

		obj = clients_json(all[i]);
		len = obj ? ops_json_len(obj) + (sent ? 1 : 0) : 0;
		if (len == 0 || used + len > srv->limits->max_frame) {
			cJSON_Delete(obj);
			if (len == 0)
				goto nomem;
			break;
		}
		if (!cJSON_AddItemToArray(array, obj)) {
			cJSON_Delete(obj);
			goto nomem;
		}
		used += len;
		sent++;
	}
	if (i < n && ops_json_set_true(reply, PROTO_FIELD_MORE) < 0)
		goto nomem;
	free(all);
	reply_send(c, id, reply);
	return OPS_DONE;
nomem:
	free(all);
	cJSON_Delete(reply);
	reply_nomem(c, id);
	return OPS_DONE;
}

/* Name of op i in table order (enum proto_op, the index of the request counters), or NULL
 * past the last one. */
static const char *ops_stat_name(size_t i)
{
	return i < PROTO_OP_COUNT ? proto_op_name((enum proto_op)i) : NULL;
}

/* The daemon's resident set size in bytes (/proc/self/statm), or 0 if unknown. */
static uint64_t stats_rss_bytes(void)
{
	unsigned long long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	long page = sysconf(_SC_PAGESIZE);

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return page > 0 ? resident * (uint64_t)page : 0;
}

/* The soft RLIMIT_NOFILE (the daemon raises it to the hard limit at start), or 0. */
static uint64_t stats_max_fds(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	return (uint64_t)rl.rlim_cur;
}

/* When the daemon started, in milliseconds since the Unix epoch. */
static uint64_t stats_start_ms(const struct server *srv)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000 - state_uptime_ms(srv);
}

/*
 * One figure of the stats: its JSON key (NULL: Prometheus only) and its Prometheus name
 * (NULL: "mmapd_" and the key; "": JSON only). A value in milliseconds is exported in
 * seconds, with three decimals.
 */
struct stats_figure {
	const char *key;
	const char *metric;
	const char *type;     /* "counter" or "gauge" */
	const char *help;
	uint64_t value;
	bool ms;
};

/* Appends to *text (malloc'd, grown); returns false on ENOMEM (then *text is freed). */
static bool stats_append(char **text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool stats_append(char **text, const char *fmt, ...)
{
	char *more = NULL, *joined = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&more, fmt, ap);
	va_end(ap);
	if (r >= 0 && asprintf(&joined, "%s%s", *text ? *text : "", more) < 0)
		joined = NULL;
	free(more);
	free(*text);
	*text = joined;
	return joined != NULL;
}

/*
 * Appends the per-uid budget gauges to *text: one metric per budget, mmapd_user_<budget>
 * ({uid="..."}), since each has its own unit. Returns false on ENOMEM (*text freed).
 */
static bool stats_prometheus_users(const struct server *srv, char **text)
{
	struct htab_iter it;
	struct hnode *node;

	for (int k = 0; k < BUDGET_NITEMS; k++) {
		const char *name = budget_stat_name((enum budget_item)k);

		if (!stats_append(text, "# HELP mmapd_user_%s What each uid uses of its %s budget.\n"
		                  "# TYPE mmapd_user_%s gauge\n", name, name, name))
			return false;
		htab_iter_init(&srv->budgets, &it);
		while ((node = htab_iter_next(&srv->budgets, &it)) != NULL) {
			const struct budget *b = htab_entry(node, struct budget, node);

			if (!stats_append(text, "mmapd_user_%s{uid=\"%lu\"} %" PRIu64 "\n", name,
			                  (unsigned long)b->uid, b->used[k]))
				return false;
		}
	}
	return true;
}

/* The Prometheus text exposition of the figures and the per-op and per-error counters. */
static char *stats_prometheus(const struct server *srv, const struct stats_figure *f, size_t n)
{
	char *text = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		char name[96], value[32];

		if (f[i].metric && !f[i].metric[0])
			continue;
		snprintf(name, sizeof(name), "%s%s", f[i].metric ? "" : "mmapd_",
		         f[i].metric ? f[i].metric : f[i].key);
		if (f[i].ms)
			snprintf(value, sizeof(value), "%" PRIu64 ".%03u", f[i].value / 1000,
			         (unsigned)(f[i].value % 1000));
		else
			snprintf(value, sizeof(value), "%" PRIu64, f[i].value);
		if (!stats_append(&text, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, f[i].help, name,
		                  f[i].type, name, value))
			return NULL;
	}
	if (!stats_append(&text, "# HELP mmapd_requests_total Requests received, by op.\n"
	                  "# TYPE mmapd_requests_total counter\n"))
		return NULL;
	for (i = 0; ops_stat_name(i); i++)
		if (!stats_append(&text, "mmapd_requests_total{op=\"%s\"} %" PRIu64 "\n", ops_stat_name(i),
		                  srv->stats.requests[i]))
			return NULL;
	if (!stats_append(&text, "mmapd_requests_total{op=\"unknown\"} %" PRIu64 "\n"
	                  "# HELP mmapd_errors_total Error replies sent, by error code.\n"
	                  "# TYPE mmapd_errors_total counter\n", srv->stats.requests[i]))
		return NULL;
	for (i = 1; i < SERVER_STAT_ERRNO_MAX; i++)
		if (srv->stats.errors[i] && proto_errname((int)i) &&
		    !stats_append(&text, "mmapd_errors_total{code=\"%s\"} %" PRIu64 "\n",
		                  proto_errname((int)i), srv->stats.errors[i]))
			return NULL;
	return stats_prometheus_users(srv, &text) ? text : NULL;
}

/* The per-op request counts and per-code error counts as JSON objects, added to reply. */
static bool stats_json_counters(const struct server *srv, cJSON *reply)
{
	cJSON *ops = cJSON_AddObjectToObject(reply, "requests");
	cJSON *errors = cJSON_AddObjectToObject(reply, "errors");
	size_t i;

	if (!ops || !errors)
		return false;
	for (i = 0; ops_stat_name(i); i++)
		if (!cJSON_AddNumberToObject(ops, ops_stat_name(i), (double)srv->stats.requests[i]))
			return false;
	if (!cJSON_AddNumberToObject(ops, "unknown", (double)srv->stats.requests[i]))
		return false;
	for (i = 1; i < SERVER_STAT_ERRNO_MAX; i++)
		if (srv->stats.errors[i] && proto_errname((int)i) &&
		    !cJSON_AddNumberToObject(errors, proto_errname((int)i), (double)srv->stats.errors[i]))
			return false;
	return true;
}

int ops_stats(struct conn *c, uint64_t id, cJSON *req)
{
	struct server *srv = c->srv;
	const char *format = "json";
	int fds = fd_count(), r;
	const uint64_t uptime_ms = state_uptime_ms(srv);
	const struct stats_figure figures[] = {
		/* uptime_ms as in status; uptime_seconds stays for libmmapd 0.1, which checks it. */
		{ "uptime_ms", "mmapd_uptime_seconds", "gauge", "Seconds since the daemon started.",
		  uptime_ms, true },
		{ "uptime_seconds", "", "gauge", NULL, uptime_ms / 1000, false },
		{ NULL, "mmapd_start_time_seconds", "gauge",
		  "Start time of the daemon since the Unix epoch in seconds.", stats_start_ms(srv), true },
		{ "connections_accepted_total", NULL, "counter", "Connections accepted.",
		  srv->stats.accepted, false },
		{ "connections_refused_total", NULL, "counter",
		  "Connections refused (max_clients, allow_connect).", srv->stats.refused, false },
		{ "clients", NULL, "gauge", "Connections open now.", srv->nconns, false },
		{ "regions_tracked", NULL, "gauge",
		  "Regions in the daemon's table (in use or anonymous).", srv->regions.count, false },
		{ "grants", NULL, "gauge", "Open grants over all clients.", srv->ngrants, false },
		{ "locks", NULL, "gauge", "Locks held.", srv->nlocks, false },
		{ "lock_waiters", NULL, "gauge", "Locks waited for.", srv->nlock_waiters, false },
		{ "subscriptions", NULL, "gauge", "Change subscriptions.", srv->nsubscriptions, false },
		{ "watched_files", NULL, "gauge",
		  "Region files watched for changes made outside mmapd.", extwatch_count(srv), false },
		{ "watched_files_inotify", NULL, "gauge",
		  "Of those, the ones inotify watches too (the others are only polled).",
		  extwatch_inotify_count(srv), false },
		{ "anonymous_bytes_users", "mmapd_users_anonymous_bytes", "gauge",
		  "Bytes of anonymous regions owned by users other than root and the daemon's.",
		  srv->anon_bytes_users, false },
		{ "flushes_total", NULL, "counter", "fdatasync calls that succeeded.",
		  srv->stats.flushes, false },
		{ "flush_failures_total", NULL, "counter",
		  "fdatasync calls that failed (region poisoned).", srv->stats.flush_failures, false },
		{ "flushed_bytes_total", NULL, "counter",
		  "Bytes covered by successful fdatasync calls (the region's size each time).",
		  srv->stats.bytes_flushed, false },
		{ "open_fds", NULL, "gauge", "Number of open file descriptors.",
		  fds > 0 ? (uint64_t)fds : 0, false },
		{ NULL, "mmapd_max_fds", "gauge", "Maximum number of open file descriptors.",
		  stats_max_fds(), false },
		{ "resident_bytes", "mmapd_resident_memory_bytes", "gauge",
		  "Resident memory size in bytes.", stats_rss_bytes(), false },
	};
	const size_t nfigures = sizeof(figures) / sizeof(figures[0]);
	cJSON *reply, *users;
	char *text;
	size_t i;

	r = msg_get_string(req, PROTO_FIELD_FORMAT, &format);
	if (r == -EINVAL || (strcmp(format, "json") != 0 && strcmp(format, "prometheus") != 0)) {
		reply_error(c, id, EINVAL, "field 'format' must be \"json\" or \"prometheus\"");
		return OPS_DONE;
	}
	reply = msg_reply_ok(id);
	if (!reply)
		goto nomem;
	if (strcmp(format, "prometheus") == 0) {
		text = stats_prometheus(srv, figures, nfigures);
		if (!text || !cJSON_AddStringToObject(reply, PROTO_FIELD_TEXT, text)) {
			free(text);
			goto nomem;
		}
		free(text);
	} else {
		for (i = 0; i < nfigures; i++)
			if (figures[i].key &&
			    !cJSON_AddNumberToObject(reply, figures[i].key, (double)figures[i].value))
				goto nomem;
		if (!stats_json_counters(srv, reply))
			goto nomem;
		users = budget_table_json(srv);
		if (!users || !cJSON_AddItemToObject(reply, "users", users)) {
			cJSON_Delete(users);
			goto nomem;
		}
	}
	reply_send(c, id, reply);
	return OPS_DONE;
nomem:
	cJSON_Delete(reply);
	reply_nomem(c, id);
	return OPS_DONE;
}
