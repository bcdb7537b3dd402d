/* SPDX-License-Identifier: MIT */
/*
 * mmapctl: the command line view of a running mmapd. It shows the daemon's figures, its
 * regions and their locks, the connections and the counters, creates, resizes and deletes
 * regions, changes their owners and modes, flushes them and sets their flush policies, watches
 * a region's events, and prints either aligned tables for people or
 * JSON (--json) for scripts: one value per command, one object per line for watch. It is
 * built only on what mmapd.h offers, which keeps the public API honest: anything mmapctl
 * needs, every other client can do too. The build holds it to that: it is compiled seeing
 * only the installed headers and linked with libmmapd alone, plus cJSON (a system library:
 * the --json output, and the counters mmapd_stats_json() returns), and mk/installcheck.sh
 * builds it against an installed tree. `mmapctl help [COMMAND]` and `mmapctl COMMAND --help`
 * explain each command from the one table below. Exit status: 0 on success, 1 when the
 * daemon or the system refused, 2 for a usage error, 3 when the daemon cannot be reached
 * (with a hint at the usual causes).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "mmapd.h"

#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

/* Longest "1023.9 KiB"-style size, with its NUL. */
#define SIZE_HUMAN_MAX 16

struct ctl {
	const char *socket;  /* NULL: $MMAPD_SOCKET or the default */
	bool json;
	bool anonymous;
	bool sparse;
	bool replace;        /* rename, copy --replace */
	bool external;       /* watch --external: also changes made outside mmapd */
	uint64_t size;       /* create's and resize's SIZE, checked before connecting */
	bool set_policy;     /* policy with a KIND: set it (checked before connecting) */
	struct mmapd_policy policy;
	bool prometheus;     /* stats --prometheus */
	int64_t uid, gid;    /* chown's UID and GID (-1: keep), checked before connecting */
	unsigned perm;       /* chmod's MODE, checked before connecting */
	const char *output;  /* --output FILE: replaced atomically once the output is complete */
	const char *offset_arg, *length_arg;  /* flush --offset N, --length N (NULL: not given) */
	uint64_t offset, length;              /* ...read before connecting (0: not given) */
	struct mmapd_client *client;
};


static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("mmapctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'mmapctl --help'.\n", stderr);
	return EXIT_USAGE;
}

/* Reports a failed libmmapd call as "mmapctl: <what>: <why>". Returns the exit status. */
static int fail(const char *what)
{
	fprintf(stderr, "mmapctl: %s: %s\n", what, mmapd_last_message());
	return EXIT_FAILURE;
}

/* fail() for "<command> <name>". */
static int fail_on(const char *command, const char *name)
{
	fprintf(stderr, "mmapctl: %s %s: %s\n", command, name, mmapd_last_message());
	return EXIT_FAILURE;
}

/* "512 B", "1.0 MiB": binary units, one decimal. Returns buf. */
static const char *size_human(uint64_t n, char buf[SIZE_HUMAN_MAX])
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	size_t u = 0;

	if (n < 1024) {
		snprintf(buf, SIZE_HUMAN_MAX, "%" PRIu64 " B", n);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, SIZE_HUMAN_MAX, "%.1f %s", v, units[u]);
	return buf;
}

/* "4s", "2m 03s", "1h 02m 03s", "3d 01h 02m 03s". */
static void uptime_format(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000, d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	s %= 60;
	if (d)
		snprintf(buf, len, "%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s",
		         d, h, m, s);
	else if (h)
		snprintf(buf, len, "%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", h, m, s);
	else if (m)
		snprintf(buf, len, "%" PRIu64 "m %02" PRIu64 "s", m, s);
	else
		snprintf(buf, len, "%" PRIu64 "s", s);
}

/* Prints obj as one line and frees it. Returns the exit status. */
static int json_print(cJSON *obj)
{
	char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;

	cJSON_Delete(obj);
	if (!text) {
		fputs("mmapctl: out of memory\n", stderr);
		return EXIT_FAILURE;
	}
	puts(text);
	free(text);
	return EXIT_SUCCESS;
}

/*
 * Adds numbers, NULL-terminated pairs of key and uint64_t value. The protocol keeps every value
 * below 2^53, so a JSON number (a double) holds it exactly. Returns false when out of memory.
 */
static bool json_add_numbers(cJSON *obj, ...)
{
	const char *key;
	bool ok = true;
	va_list ap;

	va_start(ap, obj);
	while ((key = va_arg(ap, const char *)))
		ok = cJSON_AddNumberToObject(obj, key, (double)va_arg(ap, uint64_t)) && ok;
	va_end(ap);
	return ok;
}

/* "manual", "every-writes 3": the words of the policy command (mmapd_policy_format()). */
static const char *policy_text(const struct mmapd_policy *policy, char *buf, size_t len)
{
	return mmapd_policy_format(policy, buf, len) < 0 ? "unknown" : buf;
}

/*
 * Adds {"policy": {"kind": ..., "value": ...}} to obj, as the protocol spells a policy: the
 * kind's name, and the value only for the kinds that have one (the text's second word).
 * Returns false when out of memory.
 */
static bool json_add_policy(cJSON *obj, const struct mmapd_policy *policy)
{
	char text[64], *value;
	cJSON *p = cJSON_CreateObject();

	policy_text(policy, text, sizeof(text));
	value = strchr(text, ' ');
	if (value)
		*value++ = '\0';
	if (!p || !cJSON_AddStringToObject(p, "kind", text) ||
	    (value && !cJSON_AddNumberToObject(p, "value", (double)policy->value)) ||
	    !cJSON_AddItemToObject(obj, "policy", p)) {
		cJSON_Delete(p);
		return false;
	}
	return true;
}

/* "none", "hugetlb" or "thp", as the protocol names a region's pages. */
static const char *huge_name(enum mmapd_huge huge)
{
	return huge == MMAPD_HUGE_HUGETLB ? "hugetlb" : huge == MMAPD_HUGE_THP ? "thp" : "none";
}

/*
 * The TYPE of a region in tables: "file", "adopted" (a file a client handed over; the daemon
 * knows no path for it), "anonymous", "anon/hugetlb" or "anon/thp".
 */
static const char *type_text(const struct mmapd_region_info *info)
{
	if (info->adopted)
		return "adopted";
	if (!info->anonymous)
		return "file";
	return info->huge == MMAPD_HUGE_HUGETLB ? "anon/hugetlb" :
	       info->huge == MMAPD_HUGE_THP ? "anon/thp" : "anonymous";
}

static cJSON *region_json(const struct mmapd_region_info *info)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj || !cJSON_AddStringToObject(obj, "name", info->name) ||
	    !cJSON_AddBoolToObject(obj, "anonymous", info->anonymous) ||
	    !cJSON_AddBoolToObject(obj, "adopted", info->adopted) ||
	    !cJSON_AddStringToObject(obj, "huge", huge_name(info->huge)) ||
	    !json_add_numbers(obj, "size", info->size, "grants", info->grants,
	                      "clients", info->clients, "generation", info->generation,
	                      "seq", info->seq, "locks", info->locks, "uid", (uint64_t)info->uid,
	                      "gid", (uint64_t)info->gid, "perm", (uint64_t)info->perm,
	                      (const char *)NULL) ||
	    !json_add_policy(obj, &info->policy) ||
	    !cJSON_AddBoolToObject(obj, "poisoned", info->poisoned) ||
	    (info->temporary && !cJSON_AddTrueToObject(obj, "temporary")) ||
	    (info->mtime_us && !json_add_numbers(obj, "mtime_us", info->mtime_us, "ctime_us",
	                                         info->ctime_us, (const char *)NULL))) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

/* {"name": name, what: true}: what create, delete and the like print with --json. */
static int json_print_done(const char *name, const char *what)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj || !cJSON_AddStringToObject(obj, "name", name) ||
	    !cJSON_AddTrueToObject(obj, what)) {
		cJSON_Delete(obj);
		obj = NULL;
	}
	return json_print(obj);
}

/* A time in microseconds since the epoch as "2026-12-08 00:11:35.123456 UTC". */
static const char *time_text(uint64_t us, char *buf, size_t size)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	char when[32];

	if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(when, sizeof(when), "%lld", (long long)t);
	snprintf(buf, size, "%s.%06u UTC", when, (unsigned)(us % 1000000));
	return buf;
}

static void row_print(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void row_print(const char *label, const char *fmt, ...)
{
	va_list ap;

	printf("%-18s ", label);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static int cmd_status(struct ctl *ctl, char **args)
{
	struct mmapd_status *st;
	char h1[SIZE_HUMAN_MAX], up[64];
	cJSON *obj, *limits;

	(void)args;
	if (mmapd_get_status(ctl->client, &st) < 0)
		return fail("status");

	if (ctl->json) {
		obj = cJSON_CreateObject();
		limits = cJSON_CreateObject();
		if (!obj || !limits || !cJSON_AddStringToObject(obj, "version", st->version) ||
		    !json_add_numbers(obj, "protocol", (uint64_t)st->protocol, "pid", (uint64_t)st->pid,
		                      "uptime_ms", st->uptime_ms, "clients", st->clients,
		                      "regions", st->regions, "anonymous_regions", st->anonymous_regions,
		                      "grants", st->grants, "bytes_granted", st->bytes_granted,
		                      "open_fds", st->open_fds, "locks", st->locks,
		                      "lock_waiters", st->lock_waiters, "subscriptions", st->subscriptions,
		                      (const char *)NULL) ||
		    !json_add_numbers(limits, "max_frame", st->max_frame, "max_clients", st->max_clients,
		                      "max_grants_per_client", st->max_grants_per_client,
		                      "max_fds_in_flight", st->max_fds_in_flight,
		                      "max_region_size", st->max_region_size, (const char *)NULL) ||
		    !cJSON_AddItemToObject(obj, "limits", limits)) {
			cJSON_Delete(limits);
			cJSON_Delete(obj);
			obj = NULL;
		}
		mmapd_status_free(st);
		return json_print(obj);
	}

	uptime_format(st->uptime_ms, up, sizeof(up));
	row_print("server", "mmapd %s, protocol %" PRIu32, st->version, st->protocol);
	row_print("pid", "%" PRId64, st->pid);
	row_print("uptime", "%s", up);
	row_print("clients", "%" PRIu64 " (max %" PRIu64 ")", st->clients, st->max_clients);
	row_print("regions", "%" PRIu64 " (%" PRIu64 " anonymous)", st->regions,
	          st->anonymous_regions);
	row_print("grants", "%" PRIu64 " (max %" PRIu64 " per client)", st->grants,
	          st->max_grants_per_client);
	row_print("bytes granted", "%" PRIu64 " (%s)", st->bytes_granted,
	          size_human(st->bytes_granted, h1));
	row_print("locks", "%" PRIu64 " held, %" PRIu64 " waiting", st->locks, st->lock_waiters);
	row_print("subscriptions", "%" PRIu64, st->subscriptions);
	row_print("descriptors", "%" PRIu64, st->open_fds);
	row_print("max fds in flight", "%" PRIu64, st->max_fds_in_flight);
	row_print("max frame", "%" PRIu64 " (%s)", st->max_frame, size_human(st->max_frame, h1));
	row_print("max region size", "%" PRIu64 " (%s)", st->max_region_size,
	          size_human(st->max_region_size, h1));
	mmapd_status_free(st);
	return EXIT_SUCCESS;
}

static int number_width(uint64_t n)
{
	int w = 1;

	while (n >= 10) {
		n /= 10;
		w++;
	}
	return w;
}

static int max_int(int a, int b)
{
	return a > b ? a : b;
}

/* "1000:1000": a region's owner and group. */
static const char *owner_text(const struct mmapd_region_info *info, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIu32 ":%" PRIu32, info->uid, info->gid);
	return buf;
}

static void list_print_table(const struct mmapd_region_list *list, size_t count)
{
	int wname = 4, wbytes = 5, whuman = 4, wgrants = 6, wowner = 5;
	char h[SIZE_HUMAN_MAX], o[32];

	if (count == 0) {
		puts("no regions");
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const struct mmapd_region_info *info = mmapd_region_list_at(list, i);

		wname = max_int(wname, (int)strlen(info->name));
		wbytes = max_int(wbytes, number_width(info->size));
		whuman = max_int(whuman, (int)strlen(size_human(info->size, h)));
		wgrants = max_int(wgrants, number_width(info->grants));
		wowner = max_int(wowner, (int)strlen(owner_text(info, o, sizeof(o))));
	}
	printf("%-*s  %*s  %*s  %-12s  %*s  %7s  %-*s  %s\n", wname, "NAME", wbytes, "BYTES", whuman,
	       "SIZE", "TYPE", wgrants, "GRANTS", "CLIENTS", wowner, "OWNER", "MODE");
	for (size_t i = 0; i < count; i++) {
		const struct mmapd_region_info *info = mmapd_region_list_at(list, i);

		printf("%-*s  %*" PRIu64 "  %*s  %-12s  %*" PRIu64 "  %7" PRIu64 "  %-*s  %04" PRIo32
		       "\n", wname, info->name, wbytes, info->size, whuman,
		       size_human(info->size, h), type_text(info),
		       wgrants, info->grants, info->clients, wowner,
		       owner_text(info, o, sizeof(o)), info->perm);
	}
}

static int cmd_list(struct ctl *ctl, char **args)
{
	struct mmapd_region_list *list;
	size_t count;
	cJSON *arr;

	(void)args;
	if (mmapd_list_regions(ctl->client, &list) < 0)
		return fail("list");
	count = mmapd_region_list_count(list);

	if (!ctl->json) {
		list_print_table(list, count);
		mmapd_region_list_free(list);
		return EXIT_SUCCESS;
	}
	arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < count; i++) {
		const struct mmapd_region_info *info = mmapd_region_list_at(list, i);
		cJSON *obj = region_json(info);

		if (!obj || !cJSON_AddItemToArray(arr, obj)) {
			cJSON_Delete(obj);
			cJSON_Delete(arr);
			arr = NULL;
		}
	}
	mmapd_region_list_free(list);
	return json_print(arr);
}

static int cmd_stat(struct ctl *ctl, char **args)
{
	struct mmapd_region_info *info;
	char h[SIZE_HUMAN_MAX], p[64];
	int r;

	if (mmapd_stat(ctl->client, args[0], &info) < 0)
		return fail_on("stat", args[0]);
	if (ctl->json)
		{
		r = json_print(region_json(info));
		mmapd_region_info_free(info);
		return r;
	}

	row_print("name", "%s", info->name);
	row_print("size", "%" PRIu64 " (%s)", info->size, size_human(info->size, h));
	row_print("type", "%s", type_text(info));
	row_print("grants", "%" PRIu64, info->grants);
	row_print("clients", "%" PRIu64, info->clients);
	row_print("generation", "%" PRIu64, info->generation);
	row_print("policy", "%s", policy_text(&info->policy, p, sizeof(p)));
	row_print("poisoned", "%s", info->poisoned ? "yes (flushes fail until clear-error)" : "no");
	row_print("seq", "%" PRIu64, info->seq);
	row_print("locks", "%" PRIu64, info->locks);
	row_print("owner", "%s", owner_text(info, p, sizeof(p)));
	row_print("mode", "%04" PRIo32, info->perm);
	if (info->temporary)
		row_print("temporary", "yes (deleted when its last grant goes)");
	if (info->mtime_us) {
		row_print("modified", "%s", time_text(info->mtime_us, p, sizeof(p)));
		row_print("changed", "%s", time_text(info->ctime_us, p, sizeof(p)));
	}
	mmapd_region_info_free(info);
	return EXIT_SUCCESS;
}

/*
 * Creates the region with an exclusive open and closes it again. mmapd_region_open() always
 * maps, so it maps the smallest window, one read-only byte: that needs no write access and
 * costs one page of address space whatever SIZE is.
 */
static int cmd_create(struct ctl *ctl, char **args)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL, .mode = MMAPD_MODE_RO,
		.length = ctl->size ? 1 : 0);
	struct mmapd_region *region;
	cJSON *obj;
	uint64_t size;

	opts.size = ctl->size;
	if (ctl->anonymous)
		opts.flags |= MMAPD_OPEN_ANONYMOUS;
	if (ctl->sparse)
		opts.flags |= MMAPD_OPEN_SPARSE;

	if (mmapd_region_open(ctl->client, args[0], &opts, &region) < 0)
		return fail_on("create", args[0]);
	size = mmapd_region_size(region);
	mmapd_region_close(region);

	if (!ctl->json)
		return EXIT_SUCCESS;
	obj = cJSON_CreateObject();
	if (!obj || !cJSON_AddStringToObject(obj, "name", args[0]) ||
	    !cJSON_AddBoolToObject(obj, "anonymous", ctl->anonymous) ||
	    !json_add_numbers(obj, "size", size, (const char *)NULL) ||
	    !cJSON_AddTrueToObject(obj, "created")) {
		cJSON_Delete(obj);
		obj = NULL;
	}
	return json_print(obj);
}

static int cmd_delete(struct ctl *ctl, char **args)
{
	if (mmapd_delete(ctl->client, args[0]) < 0)
		return fail_on("delete", args[0]);
	return ctl->json ? json_print_done(args[0], "deleted") : EXIT_SUCCESS;
}

static int cmd_rename(struct ctl *ctl, char **args)
{
	cJSON *obj;

	if (mmapd_rename(ctl->client, args[0], args[1], ctl->replace ? MMAPD_MANAGE_REPLACE : 0) < 0)
		return fail_on("rename", args[0]);
	if (!ctl->json)
		return EXIT_SUCCESS;
	obj = cJSON_CreateObject();
	if (!obj || !cJSON_AddStringToObject(obj, "name", args[0]) ||
	    !cJSON_AddStringToObject(obj, "to", args[1]) || !cJSON_AddTrueToObject(obj, "renamed")) {
		cJSON_Delete(obj);
		obj = NULL;
	}
	return json_print(obj);
}

static int cmd_copy(struct ctl *ctl, char **args)
{
	static const char *const methods[] = {
		[MMAPD_COPY_REFLINK] = "reflink",
		[MMAPD_COPY_FILE_RANGE] = "copy_file_range",
		[MMAPD_COPY_BYTES] = "bytes",
	};
	enum mmapd_copy_method method;
	cJSON *obj;

	if (mmapd_copy(ctl->client, args[0], args[1], ctl->replace ? MMAPD_MANAGE_REPLACE : 0,
	               &method) < 0)
		return fail_on("copy", args[0]);
	if (!ctl->json) {
		printf("copied '%s' to '%s' (%s)\n", args[0], args[1], methods[method]);
		return EXIT_SUCCESS;
	}
	obj = cJSON_CreateObject();
	if (!obj || !cJSON_AddStringToObject(obj, "name", args[0]) ||
	    !cJSON_AddStringToObject(obj, "to", args[1]) ||
	    !cJSON_AddStringToObject(obj, "method", methods[method])) {
		cJSON_Delete(obj);
		obj = NULL;
	}
	return json_print(obj);
}

static int cmd_resize(struct ctl *ctl, char **args)
{
	cJSON *obj;

	if (mmapd_resize(ctl->client, args[0], ctl->size, ctl->sparse ? MMAPD_RESIZE_SPARSE : 0) < 0)
		return fail_on("resize", args[0]);
	if (!ctl->json)
		return EXIT_SUCCESS;
	obj = cJSON_CreateObject();
	if (!obj || !cJSON_AddStringToObject(obj, "name", args[0]) ||
	    !json_add_numbers(obj, "size", ctl->size, (const char *)NULL) ||
	    !cJSON_AddTrueToObject(obj, "resized")) {
		cJSON_Delete(obj);
		obj = NULL;
	}
	return json_print(obj);
}

static int cmd_flush(struct ctl *ctl, char **args)
{
	if (mmapd_flush(ctl->client, args[0], ctl->offset, ctl->length) < 0)
		return fail_on("flush", args[0]);
	return ctl->json ? json_print_done(args[0], "flushed") : EXIT_SUCCESS;
}

static int cmd_clear_error(struct ctl *ctl, char **args)
{
	if (mmapd_clear_error(ctl->client, args[0]) < 0)
		return fail_on("clear-error", args[0]);
	return ctl->json ? json_print_done(args[0], "cleared") : EXIT_SUCCESS;
}

/* Shows the policy (from stat), or sets the one parsed into ctl->policy. */
static int cmd_policy(struct ctl *ctl, char **args)
{
	struct mmapd_region_info *info;
	struct mmapd_policy policy = ctl->policy;
	char p[64];
	cJSON *obj;

	if (ctl->set_policy) {
		if (mmapd_set_policy(ctl->client, args[0], &policy) < 0)
			return fail_on("policy", args[0]);
		if (!ctl->json)
			return EXIT_SUCCESS;
	} else {
		if (mmapd_stat(ctl->client, args[0], &info) < 0)
			return fail_on("policy", args[0]);
		policy = info->policy;
		mmapd_region_info_free(info);
		if (!ctl->json) {
			puts(policy_text(&policy, p, sizeof(p)));
			return EXIT_SUCCESS;
		}
	}
	obj = cJSON_CreateObject();
	if (!obj || !cJSON_AddStringToObject(obj, "name", args[0]) || !json_add_policy(obj, &policy)) {
		cJSON_Delete(obj);
		obj = NULL;
	}
	return json_print(obj);
}

/* "2026-11-23 20:38:59.123" in local time, or without the date: "20:38:59.123". */
static void time_format(uint64_t ms, bool date, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	if (!localtime_r(&t, &tm) ||
	    (n = strftime(buf, len, date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm)) == 0) {
		snprintf(buf, len, "%" PRIu64, ms);
		return;
	}
	snprintf(buf + n, len - n, ".%03u", (unsigned)(ms % 1000));
}

static cJSON *lock_json(const struct mmapd_lock_info *l)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj || !cJSON_AddStringToObject(obj, "region", l->region) ||
	    !cJSON_AddStringToObject(obj, "state", l->waiting ? "waiting" : "held") ||
	    !cJSON_AddStringToObject(obj, "mode", l->exclusive ? "exclusive" : "shared") ||
	    !cJSON_AddStringToObject(obj, "client", l->client) ||
	    !json_add_numbers(obj, "lock", l->lock, "offset", l->offset, "length", l->length,
	                      "pid", (uint64_t)l->pid, "uid", (uint64_t)l->uid,
	                      "since_ms", l->since_ms, (const char *)NULL)) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

/* The locks as a table; "no locks" (on name, when one was given) when there are none. */
static void locks_print_table(const struct mmapd_lock_list *list, size_t count, const char *name)
{
	int wregion = 6, wlock = 4, woff = 6, wlen = 6, wclient = 6;

	if (count == 0) {
		printf("no locks%s%s\n", name ? " on " : "", name ? name : "");
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const struct mmapd_lock_info *l = mmapd_lock_list_at(list, i);

		wregion = max_int(wregion, (int)strlen(l->region));
		wlock = max_int(wlock, number_width(l->lock));
		woff = max_int(woff, number_width(l->offset));
		wlen = max_int(wlen, number_width(l->length));
		wclient = max_int(wclient, (int)strlen(l->client));
	}
	printf("%-*s  %*s  %-7s  %-9s  %*s  %*s  %-*s  %7s  %6s  %s\n", wregion, "REGION", wlock,
	       "LOCK", "STATE", "MODE", woff, "OFFSET", wlen, "LENGTH", wclient, "CLIENT", "PID",
	       "UID", "SINCE");
	for (size_t i = 0; i < count; i++) {
		const struct mmapd_lock_info *l = mmapd_lock_list_at(list, i);
		char since[64], length[32];

		time_format(l->since_ms, true, since, sizeof(since));
		if (l->length)
			snprintf(length, sizeof(length), "%" PRIu64, l->length);
		else
			strcpy(length, "end");
		printf("%-*s  %*" PRIu64 "  %-7s  %-9s  %*" PRIu64 "  %*s  %-*s  %7" PRId64
		       "  %6" PRId64 "  %s\n", wregion, l->region, wlock, l->lock,
		       l->waiting ? "waiting" : "held",
		       l->exclusive ? "exclusive" : "shared", woff, l->offset, wlen,
		       length, wclient, l->client, l->pid, l->uid, since);
	}
}

static int cmd_locks(struct ctl *ctl, char **args)
{
	struct mmapd_lock_list *list;
	size_t count;
	cJSON *arr;

	if (mmapd_list_locks(ctl->client, args[0], &list) < 0)
		return args[0] ? fail_on("locks", args[0]) : fail("locks");
	count = mmapd_lock_list_count(list);
	if (!ctl->json) {
		locks_print_table(list, count, args[0]);
		mmapd_lock_list_free(list);
		return EXIT_SUCCESS;
	}
	arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < count; i++) {
		const struct mmapd_lock_info *l = mmapd_lock_list_at(list, i);
		cJSON *obj = lock_json(l);

		if (!obj || !cJSON_AddItemToArray(arr, obj)) {
			cJSON_Delete(obj);
			cJSON_Delete(arr);
			arr = NULL;
		}
	}
	mmapd_lock_list_free(list);
	return json_print(arr);
}

/* ---- clients, stats, chown, chmod ---- */

static cJSON *client_json(const struct mmapd_client_info *k)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj || !json_add_numbers(obj, "id", k->id, (const char *)NULL) ||
	    !(k->name[0] ? cJSON_AddStringToObject(obj, "name", k->name)
	                 : cJSON_AddNullToObject(obj, "name")) ||
	    !json_add_numbers(obj, "pid", (uint64_t)k->pid, "uid", (uint64_t)k->uid,
	                      "gid", (uint64_t)k->gid, "connected_since_ms", k->connected_since_ms,
	                      "grants", k->grants, "bytes_granted", k->bytes_granted,
	                      "regions_created", k->regions_created, "locks_held", k->locks_held,
	                      "locks_waiting", k->locks_waiting, "subscriptions", k->subscriptions,
	                      "queued_bytes", k->queued_bytes, "queued_fds", k->queued_fds,
	                      (const char *)NULL)) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

static void clients_print_table(const struct mmapd_client_list *list, size_t count)
{
	int wid = 2, wname = 4, wpid = 3;

	for (size_t i = 0; i < count; i++) {
		const struct mmapd_client_info *k = mmapd_client_list_at(list, i);

		wid = max_int(wid, number_width(k->id));
		wname = max_int(wname, (int)strlen(k->name[0] ? k->name : "-"));
		wpid = max_int(wpid, number_width((uint64_t)k->pid));
	}
	printf("%*s  %-*s  %*s  %6s  %6s  %-23s  %6s  %10s  %7s  %5s  %7s  %4s  %s\n", wid, "ID",
	       wname, "NAME", wpid, "PID", "UID", "GID", "CONNECTED", "GRANTS", "BYTES", "CREATED",
	       "LOCKS", "WAITING", "SUBS", "QUEUED");
	for (size_t i = 0; i < count; i++) {
		const struct mmapd_client_info *k = mmapd_client_list_at(list, i);
		char since[64];

		time_format(k->connected_since_ms, true, since, sizeof(since));
		printf("%*" PRIu64 "  %-*s  %*" PRId64 "  %6" PRId64 "  %6" PRId64 "  %-23s  %6" PRIu64
		       "  %10" PRIu64 "  %7" PRIu64 "  %5" PRIu64 "  %7" PRIu64 "  %4" PRIu64 "  %" PRIu64
		       " B, %" PRIu64 " fds\n", wid, k->id, wname, k->name[0] ? k->name : "-",
		       wpid, k->pid, k->uid, k->gid, since, k->grants, k->bytes_granted,
		       k->regions_created, k->locks_held, k->locks_waiting,
		       k->subscriptions, k->queued_bytes, k->queued_fds);
	}
}

static int cmd_clients(struct ctl *ctl, char **args)
{
	struct mmapd_client_list *list;
	size_t count;
	cJSON *arr;

	(void)args;
	if (mmapd_list_clients(ctl->client, &list) < 0)
		return fail("clients");
	count = mmapd_client_list_count(list);
	if (!ctl->json) {
		clients_print_table(list, count);
		mmapd_client_list_free(list);
		return EXIT_SUCCESS;
	}
	arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < count; i++) {
		const struct mmapd_client_info *k = mmapd_client_list_at(list, i);
		cJSON *obj = client_json(k);

		if (!obj || !cJSON_AddItemToArray(arr, obj)) {
			cJSON_Delete(obj);
			cJSON_Delete(arr);
			arr = NULL;
		}
	}
	mmapd_client_list_free(list);
	return json_print(arr);
}

/* One "key  value" row of the stats table, indented under a section when indent. */
static void stats_row(const cJSON *item, bool indent)
{
	if (cJSON_IsNumber(item))
		printf("%s%-*s %.0f\n", indent ? "  " : "", indent ? 30 : 32, item->string,
		       item->valuedouble);
	else if (cJSON_IsString(item))
		printf("%s%-*s %s\n", indent ? "  " : "", indent ? 30 : 32, item->string,
		       item->valuestring);
}

/* A number field of obj, or 0. */
static double stats_field(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The "users" object (per-uid budgets in use) as a table, one uid a row. */
static void stats_print_users(const cJSON *users)
{
	static const char *const cols[] = {
		"connections", "descriptors", "queue_bytes", "lock_waiters", "anonymous_regions",
		"anonymous_bytes",
	};
	const cJSON *u;
	size_t i;

	printf("users:\n  %-10s", "uid");
	for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		printf(" %*s", (int)strlen(cols[i]), cols[i]);
	putchar('\n');
	cJSON_ArrayForEach(u, users) {
		printf("  %-10s", u->string);
		for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
			printf(" %*.0f", (int)strlen(cols[i]), stats_field(u, cols[i]));
		puts(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(u, "exempt")) ? "  (exempt)" : "");
	}
}

/*
 * The stats reply as a table: the figures, then each object ("requests", "errors", "users")
 * as a section of its own. The uptime reads as in status ("uptime  1h 02m 03s", from
 * "uptime_ms"); "uptime_seconds", kept in the reply for old clients, is not repeated.
 */
static void stats_print_table(const cJSON *stats)
{
	const cJSON *item, *sub;
	char up[64];

	cJSON_ArrayForEach(item, stats) {
		if (cJSON_IsObject(item) || strcmp(item->string, "uptime_seconds") == 0)
			continue;
		if (strcmp(item->string, "uptime_ms") == 0 && cJSON_IsNumber(item)) {
			uptime_format((uint64_t)item->valuedouble, up, sizeof(up));
			printf("%-32s %s\n", "uptime", up);
			continue;
		}
		stats_row(item, false);
	}
	cJSON_ArrayForEach(item, stats) {
		if (!cJSON_IsObject(item))
			continue;
		if (strcmp(item->string, "users") == 0) {
			stats_print_users(item);
			continue;
		}
		printf("%s:\n", item->string);
		cJSON_ArrayForEach(sub, item)
			stats_row(sub, true);
	}
}

static int cmd_stats(struct ctl *ctl, char **args)
{
	cJSON *stats;
	char *text;

	(void)args;
	if (ctl->prometheus) {
		if (mmapd_stats_prometheus(ctl->client, &text) < 0)
			return fail("stats");
		fputs(text, stdout);
		free(text);
		return EXIT_SUCCESS;
	}
	if (mmapd_stats_json(ctl->client, &text) < 0)
		return fail("stats");
	if (ctl->json) {
		puts(text);
		free(text);
		return EXIT_SUCCESS;
	}
	stats = cJSON_Parse(text);
	free(text);
	if (!stats) {
		fputs("mmapctl: stats: out of memory\n", stderr);
		return EXIT_FAILURE;
	}
	stats_print_table(stats);
	cJSON_Delete(stats);
	return EXIT_SUCCESS;
}

static int cmd_chown(struct ctl *ctl, char **args)
{
	if (mmapd_chown(ctl->client, args[0], ctl->uid, ctl->gid) < 0)
		return fail_on("chown", args[0]);
	return ctl->json ? json_print_done(args[0], "changed") : EXIT_SUCCESS;
}

static int cmd_chmod(struct ctl *ctl, char **args)
{
	if (mmapd_chmod(ctl->client, args[0], ctl->perm) < 0)
		return fail_on("chmod", args[0]);
	return ctl->json ? json_print_done(args[0], "changed") : EXIT_SUCCESS;
}

/* ---- watch ---- */

static const char *const event_names[] = {
	[MMAPD_EVENT_CHANGED] = "changed",
	[MMAPD_EVENT_OVERFLOW] = "overflow",
	[MMAPD_EVENT_RESIZED] = "resized",
	[MMAPD_EVENT_SHRINKING] = "shrinking",
	[MMAPD_EVENT_SHRINK_CANCELLED] = "shrink-cancelled",
	[MMAPD_EVENT_POLICY] = "policy",
	[MMAPD_EVENT_FLUSHED] = "flushed",
	[MMAPD_EVENT_FLUSH_FAILED] = "flush-failed",
	[MMAPD_EVENT_DELETED] = "deleted",
	[MMAPD_EVENT_UNLOCKED] = "unlocked",
	[MMAPD_EVENT_RECONNECTED] = "reconnected",
	[MMAPD_EVENT_LOCKS_LOST] = "locks-lost",
	[MMAPD_EVENT_FLUSH_DONE] = "flush-done",
	[MMAPD_EVENT_RELEASE_FAILED] = "release-failed",
	[MMAPD_EVENT_RENAMED] = "renamed",
};

/* The JSON line of an event: its wire form ("event", "region" and the type's fields). */
static cJSON *event_json(const struct mmapd_event *ev)
{
	cJSON *obj = cJSON_CreateObject(), *arr, *item;
	bool ok = obj && cJSON_AddStringToObject(obj, "event", event_names[ev->type]) &&
	          (!ev->region || cJSON_AddStringToObject(obj, "region", ev->region));

	switch (ev->type) {
	case MMAPD_EVENT_CHANGED:
		ok = ok && json_add_numbers(obj, "seq", ev->seq, "first_seq", ev->first_seq,
		                            (const char *)NULL);
		/* A change made outside mmapd: "ranges": null, "external": true, "size". */
		if (ev->external) {
			ok = ok && cJSON_AddNullToObject(obj, "ranges") &&
			     cJSON_AddTrueToObject(obj, "external") &&
			     json_add_numbers(obj, "size", ev->size, (const char *)NULL);
			break;
		}
		arr = ok ? cJSON_AddArrayToObject(obj, "ranges") : NULL;
		ok = arr != NULL;
		for (size_t i = 0; ok && i < ev->nranges; i++) {
			item = cJSON_CreateArray();
			ok = item && cJSON_AddItemToArray(arr, item) &&
			     cJSON_AddItemToArray(item, cJSON_CreateNumber((double)ev->ranges[i].offset)) &&
			     cJSON_AddItemToArray(item, cJSON_CreateNumber((double)ev->ranges[i].length));
		}
		if (ok && ev->writer_client) {
			item = cJSON_AddObjectToObject(obj, "writer");
			ok = item && cJSON_AddStringToObject(item, "client", ev->writer_client) &&
			     json_add_numbers(item, "pid", (uint64_t)ev->writer_pid, (const char *)NULL);
		}
		break;
	case MMAPD_EVENT_OVERFLOW:
	case MMAPD_EVENT_FLUSHED:
		ok = ok && json_add_numbers(obj, "seq", ev->seq, (const char *)NULL);
		break;
	case MMAPD_EVENT_RESIZED:
		ok = ok && json_add_numbers(obj, "size", ev->size, "old_size", ev->old_size,
		                            "generation", ev->generation, (const char *)NULL) &&
		     cJSON_AddBoolToObject(obj, "external", ev->external);
		break;
	case MMAPD_EVENT_SHRINKING:
		ok = ok && json_add_numbers(obj, "size", ev->size, "generation", ev->generation,
		                            (const char *)NULL);
		break;
	case MMAPD_EVENT_SHRINK_CANCELLED:
	case MMAPD_EVENT_FLUSH_FAILED:
		ok = ok && json_add_numbers(obj, "errno", (uint64_t)-ev->error, (const char *)NULL) &&
		     cJSON_AddStringToObject(obj, "message",
		                             ev->message ? ev->message : mmapd_strerror(ev->error));
		break;
	case MMAPD_EVENT_POLICY:
		ok = ok && json_add_policy(obj, &ev->policy);
		break;
	case MMAPD_EVENT_UNLOCKED:
		ok = ok && json_add_numbers(obj, "offset", ev->offset, "length", ev->length,
		                            (const char *)NULL);
		break;
	case MMAPD_EVENT_RENAMED:
		ok = ok && cJSON_AddStringToObject(obj, "to", ev->to);
		break;
	case MMAPD_EVENT_LOCKS_LOST:
		ok = ok && json_add_numbers(obj, "locks", (uint64_t)ev->nlocks, (const char *)NULL);
		break;
	default:
		break;
	}
	if (!ok) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

/* The human line of an event: a timestamp, the event, the region, its fields. */
static void event_print(const struct mmapd_event *ev)
{
	struct timespec now;
	char when[64], p[64];

	clock_gettime(CLOCK_REALTIME, &now);
	time_format((uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000, false, when,
	            sizeof(when));
	printf("%s %s", when, event_names[ev->type]);
	if (ev->region)
		printf(" %s", ev->region);
	switch (ev->type) {
	case MMAPD_EVENT_CHANGED:
		printf(" seq=%" PRIu64 " first_seq=%" PRIu64 " ranges=", ev->seq, ev->first_seq);
		if (ev->external)
			printf("unknown external size=%" PRIu64, ev->size);
		for (size_t i = 0; i < ev->nranges; i++)
			printf("%s%" PRIu64 "+%" PRIu64, i ? "," : "", ev->ranges[i].offset,
			       ev->ranges[i].length);
		if (ev->writer_client)
			printf(" writer=%s pid=%" PRId64, ev->writer_client, ev->writer_pid);
		break;
	case MMAPD_EVENT_OVERFLOW:
	case MMAPD_EVENT_FLUSHED:
		printf(" seq=%" PRIu64, ev->seq);
		break;
	case MMAPD_EVENT_RESIZED:
		printf(" size=%" PRIu64 " old_size=%" PRIu64 " generation=%" PRIu64 "%s", ev->size,
		       ev->old_size, ev->generation, ev->external ? " external" : "");
		break;
	case MMAPD_EVENT_SHRINKING:
		printf(" size=%" PRIu64 " generation=%" PRIu64, ev->size, ev->generation);
		break;
	case MMAPD_EVENT_RELEASE_FAILED:
		printf(" grant=%" PRIu64, ev->seq);
		/* fall through */
	case MMAPD_EVENT_SHRINK_CANCELLED:
	case MMAPD_EVENT_FLUSH_FAILED:
		printf(": %s", ev->message ? ev->message : mmapd_strerror(ev->error));
		break;
	case MMAPD_EVENT_POLICY:
		printf(" %s", policy_text(&ev->policy, p, sizeof(p)));
		break;
	case MMAPD_EVENT_UNLOCKED:
		printf(" offset=%" PRIu64 " length=%" PRIu64, ev->offset, ev->length);
		break;
	case MMAPD_EVENT_RENAMED:
		printf(" to=%s", ev->to);
		break;
	case MMAPD_EVENT_LOCKS_LOST:
		printf(" %zu", ev->nlocks);
		break;
	default:
		break;
	}
	putchar('\n');
}

/*
 * SIGINT and SIGTERM end watch with status 0 at once, also while mmapd_client_dispatch() waits for a
 * daemon that went away, except in the middle of printing an event: then the line is finished
 * first. Every printed line is flushed already, so _exit() loses nothing.
 */
static volatile sig_atomic_t watch_printing, watch_stopped;

static void watch_stop(int sig)
{
	(void)sig;
	if (!watch_printing)
		_exit(EXIT_SUCCESS);
	watch_stopped = 1;
}

static void watch_event(struct mmapd_client *client, const struct mmapd_event *ev, void *userdata)
{
	const struct ctl *ctl = userdata;

	(void)client;
	if ((unsigned)ev->type >= sizeof(event_names) / sizeof(event_names[0]) ||
	    !event_names[ev->type])
		return;
	watch_printing = 1;
	if (ctl->json)
		json_print(event_json(ev));
	else
		event_print(ev);
	/* One line as each event comes, also into a pipe. */
	fflush(stdout);
	watch_printing = 0;
	if (watch_stopped)
		_exit(EXIT_SUCCESS);
}

/* How long watch tries to reconnect once the connection is lost (libmmapd's default). */
#define WATCH_RECONNECT_MS 30000

/*
 * After the connection was lost: says so, then lets libmmapd reconnect (it renews the
 * subscription and delivers "reconnected", which watch prints). Returns 0 once reconnected,
 * or EXIT_UNREACHABLE after reporting why not.
 */
static int watch_reconnect(struct ctl *ctl, const char *name)
{
	int r;

	fprintf(stderr, "mmapctl: watch %s: lost the connection to mmapd (%s); reconnecting for "
	        "up to %d s\n", name, mmapd_last_message(), WATCH_RECONNECT_MS / 1000);
	mmapd_client_set_reconnect(ctl->client, WATCH_RECONNECT_MS);
	do
		r = mmapd_client_dispatch(ctl->client, -1);
	while (r == 0 || r == -EINTR);
	/* Reconnection by libmmapd only here, where it is announced first. */
	mmapd_client_set_reconnect(ctl->client, 0);
	if (r > 0)
		return 0;
	fprintf(stderr, "mmapctl: watch %s: %s\n", name, mmapd_last_message());
	return EXIT_UNREACHABLE;
}

/*
 * Subscribes, then prints events as mmapd_client_fd() says they come, until a signal ends it.
 * libmmapd's own reconnection is off while waiting, so that a lost connection comes back here
 * as an error and watch can say that it reconnects (watch_reconnect) before it does.
 */
static int cmd_watch(struct ctl *ctl, char **args)
{
	struct sigaction sa = { .sa_handler = watch_stop };
	struct pollfd pfd = { .events = POLLIN };
	int r;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
		fprintf(stderr, "mmapctl: watch %s: cannot catch signals: %s\n", args[0],
		        mmapd_strerror(errno));
		return EXIT_FAILURE;
	}
	mmapd_client_set_event_handler(ctl->client, watch_event, ctl);
	if (mmapd_subscribe_flags(ctl->client, args[0],
	                          ctl->external ? MMAPD_SUBSCRIBE_EXTERNAL : 0, NULL) < 0)
		return fail_on("watch", args[0]);
	mmapd_client_set_reconnect(ctl->client, 0);
	for (;;) {
		/* The descriptor stays the same, but asking each time costs nothing. */
		pfd.fd = mmapd_client_fd(ctl->client);
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			fprintf(stderr, "mmapctl: watch %s: %s\n", args[0], mmapd_strerror(errno));
			return EXIT_FAILURE;
		}
		if (!pfd.revents)
			continue;
		r = mmapd_client_dispatch(ctl->client, 0);
		if (r < 0 && r != -EINTR) {
			r = watch_reconnect(ctl, args[0]);
			if (r)
				return r;
		}
	}
}

/*
 * The commands, in the order help lists them. args of run() hold max_args entries; those not
 * given are NULL. synopsis and summary make the line of `mmapctl help`; details, the rest of
 * `mmapctl help COMMAND` (mmapctl(1) says the same at more length).
 */
static const struct command {
	const char *name;
	int min_args, max_args;
	int (*run)(struct ctl *ctl, char **args);
	const char *synopsis;
	const char *summary;
	const char *details;
} commands[] = {
	{ "status", 0, 0, cmd_status, "", "show the daemon's figures and limits",
	  "Version, pid, uptime, clients, regions, grants, locks, subscriptions, descriptors and\n"
	  "the main limits. --json: one object, with \"uptime_ms\" as in the protocol.\n" },
	{ "list", 0, 0, cmd_list, "", "list every region with its owner and mode",
	  "One row per region: name, size, type (file, adopted, anonymous, anon/hugetlb,\n"
	  "anon/thp), grants, clients, owner and mode; \"no regions\" when there are none.\n"
	  "An adopted region is a file a client handed over (mmapd_map_path()): the daemon\n"
	  "knows no path for it, and it is gone once its last holder is.\n"
	  "--json: an array of objects (empty when there are none).\n" },
	{ "regions", 0, 0, cmd_list, "", "the same as list", NULL },
	{ "stat", 1, 1, cmd_stat, "NAME", "show one region",
	  "Size, type, grants, clients, generation, flush policy, poison, change seq, locks,\n"
	  "owner and mode of region NAME.\n" },
	{ "clients", 0, 0, cmd_clients, "", "list the connections to the daemon",
	  "One row per connection: id, name, pid, uid, gid, since when, and what it holds\n"
	  "against its quotas (grants, bytes, creations, locks, subscriptions, queued output).\n" },
	{ "stats", 0, 0, cmd_stats, "[--prometheus]", "show the daemon's counters",
	  "Per-op request counts, errors by code, flushes, descriptors, memory, and what each uid\n"
	  "uses of its budgets. --prometheus: the Prometheus text format (metric names in\n"
	  "docs/operations.md), for node_exporter's textfile collector with --output FILE.\n" },
	{ "create", 2, 2, cmd_create, "NAME SIZE [--anonymous] [--sparse]",
	  "create a region of SIZE bytes",
	  "SIZE takes the suffixes K, M, G and T (powers of 1024; KiB... too). --anonymous: a\n"
	  "memfd region held by the daemon, no file. --sparse: reserve no disk blocks.\n"
	  "SIZE 0 makes an empty region, to be grown with resize.\n" },
	{ "delete", 1, 1, cmd_delete, "NAME", "delete a region", NULL },
	{ "rename", 2, 2, cmd_rename, "NAME TO [--replace]", "rename a region",
	  "Atomic. Processes holding it keep their mappings and locks and hear \"renamed\".\n"
	  "Without --replace an existing TO is an error; with it, TO is deleted (its holders\n"
	  "hear \"deleted\"). Needs write permission on NAME (and on TO with --replace).\n" },
	{ "copy", 2, 2, cmd_copy, "NAME TO [--replace]", "copy a region into a new file region",
	  "A reflink where the file system can, else copy_file_range, else read and write;\n"
	  "holes stay holes. Prints how it was copied. The copy is yours (mode 0660). Needs\n"
	  "read permission on NAME (and write on an existing TO with --replace).\n" },
	{ "resize", 2, 2, cmd_resize, "NAME SIZE [--sparse]", "grow or shrink a region",
	  "Growing reserves disk blocks unless --sparse. Shrinking waits until every mapper has\n"
	  "let go of the tail (or fails after shrink_timeout_ms).\n" },
	{ "locks", 0, 1, cmd_locks, "[NAME]", "list the locks held and waited for",
	  "Holders first, then waiters in queue order, of region NAME or of all regions; \"no\n"
	  "locks\" when there are none.\n" },
	{ "watch", 1, 1, cmd_watch, "NAME [--external]", "print the region's events as they come",
	  "One line per event until SIGINT or SIGTERM (exit status 0). When the connection is\n"
	  "lost, says so on standard error and reconnects for up to 30 s (exit status 3 if it\n"
	  "cannot); then prints the \"reconnected\" event and goes on. --external: also changes\n"
	  "made outside mmapd (write(2), truncate, stores through mappings of processes that do\n"
	  "not report), as changed events with ranges=unknown external.\n" },
	{ "flush", 1, 1, cmd_flush, "NAME [--offset N] [--length N]", "make the region durable",
	  "Returns once the region's data is on stable storage (fdatasync by the daemon).\n"
	  "--offset and --length (suffixes as for SIZE): only that range, whose dirty pages\n"
	  "are written and committed (--length 0 or none: to the end of the region); a range\n"
	  "not inside the region is an error.\n" },
	{ "policy", 1, 3, cmd_policy, "NAME [KIND [N]]", "show or set the flush policy",
	  "KIND: manual, always, every-bytes N, every-writes N or interval MS.\n" },
	{ "clear-error", 1, 1, cmd_clear_error, "NAME", "clear the poison of a failed flush",
	  NULL },
	{ "chown", 2, 2, cmd_chown, "NAME [USER][:GROUP]", "change the region's owner or group",
	  "USER and GROUP are names or numbers.\n" },
	{ "chmod", 2, 2, cmd_chmod, "NAME MODE", "set the region's mode",
	  "MODE is octal, e.g. 0640, read like a file's: r to open read-only, w read-write,\n"
	  "x executable (with allow_exec).\n" },
	{ "help", 0, 1, NULL, "[COMMAND]", "show this help, or a command's", NULL },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

static const char options_help[] =
	"Options:\n"
	"  -s, --socket PATH   the daemon's socket (default: $MMAPD_SOCKET, else %s)\n"
	"  -j, --json          print JSON instead of a table\n"
	"  -o, --output FILE   write the output to FILE, replaced at once when complete\n"
	"      --anonymous     create: a memfd region held by the daemon, no file\n"
	"      --sparse        create, resize: do not reserve disk blocks\n"
	"      --replace       rename, copy: replace an existing TO\n"
	"      --external      watch: also changes made outside mmapd\n"
	"      --prometheus    stats: print the Prometheus text format\n"
	"      --offset N      flush: the range's start (bytes; K, M, G, T suffixes)\n"
	"      --length N      flush: the range's length (0: to the end of the region)\n"
	"  -h, --help          show this help (after a command: that command's)\n"
	"  -V, --version       show the version\n"
	"\n"
	"Exit status: 0 success, 1 refused or failed, 2 usage error, 3 daemon unreachable.\n";

static void usage(FILE *out)
{
	fputs("Usage: mmapctl [OPTION]... COMMAND [ARG]...\n\nCommands:\n", out);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char line[64];

		snprintf(line, sizeof(line), "%s%s%s", commands[i].name,
		         commands[i].synopsis[0] ? " " : "", commands[i].synopsis);
		if (strlen(line) > 22)
			fprintf(out, "  %s\n  %-22s  %s\n", line, "", commands[i].summary);
		else
			fprintf(out, "  %-22s  %s\n", line, commands[i].summary);
	}
	fputs("\nmmapctl help COMMAND (or mmapctl COMMAND --help) tells more of one.\n\n", out);
	fprintf(out, options_help, MMAPD_DEFAULT_SOCKET);
}

/* `mmapctl help COMMAND`: its synopsis, summary and details. */
static void command_usage(const struct command *cmd, FILE *out)
{
	fprintf(out, "Usage: mmapctl [OPTION]... %s%s%s\n\n%c%s.\n", cmd->name,
	        cmd->synopsis[0] ? " " : "", cmd->synopsis, cmd->summary[0] - 'a' + 'A',
	        cmd->summary + 1);
	if (cmd->details)
		fprintf(out, "\n%s", cmd->details);
	fprintf(out, "\nSee mmapctl(1); mmapctl help lists every command and option.\n");
}

/* `mmapctl help [COMMAND]`. Returns the exit status. */
static int help_show(const char *name)
{
	const struct command *cmd;

	if (!name) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	cmd = command_find(name);
	if (!cmd)
		return usage_error("unknown command '%s'", name);
	command_usage(cmd, stdout);
	return EXIT_SUCCESS;
}

/*
 * Strict number parsing for the command line: strtoull() would take leading blanks, a sign
 * (negating "-1" into a huge value) and junk after the digits, none of which an argument
 * should get away with. Reads the leading decimal digits of s into *ret and returns how many
 * there were; *ret_overflow says whether the value did not fit (the digits are consumed all
 * the same, so junk after an overlong number is reported as junk).
 */
static size_t digits_parse(const char *s, uint64_t *ret, bool *ret_overflow)
{
	uint64_t v = 0;
	size_t i;

	*ret_overflow = false;
	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			*ret_overflow = true;
		else
			v = v * 10 + d;
	}
	*ret = v;
	return i;
}

/* A decimal u64, the whole string. Returns 0, -EINVAL (empty, sign, junk), -ERANGE. */
static int u64_parse(const char *s, uint64_t *ret)
{
	bool overflow;
	uint64_t v;
	size_t n = digits_parse(s, &v, &overflow);

	if (n == 0 || s[n] != '\0')
		return -EINVAL;
	if (overflow)
		return -ERANGE;
	*ret = v;
	return 0;
}

/*
 * A size: decimal with an optional suffix K, M, G or T (powers of 1024; "KiB", "MiB"... and
 * lower case too). Returns 0, -EINVAL, -ERANGE.
 */
static int size_parse(const char *s, uint64_t *ret)
{
	static const char units[] = "kmgt";
	const char *unit;
	bool overflow;
	uint64_t v;
	size_t n = digits_parse(s, &v, &overflow);
	int shift = 0;

	if (n == 0)
		return -EINVAL;
	if (s[n]) {
		unit = strchr(units, s[n] | 0x20);
		if (!unit || (s[n + 1] && strcasecmp(s + n + 1, "iB") != 0))
			return -EINVAL;
		shift = 10 * (int)(unit - units + 1);
	}
	if (overflow || (shift > 0 && v > (UINT64_MAX >> shift)))
		return -ERANGE;
	*ret = v << shift;
	return 0;
}

/*
 * Reads SIZE of create or resize into ctl->size (0 only for create: an empty region). Returns
 * 0 or the usage error's status.
 */
static int size_arg(struct ctl *ctl, const char *arg, bool zero_ok)
{
	int r = size_parse(arg, &ctl->size);

	if (r < 0 || (ctl->size == 0 && !zero_ok))
		return usage_error("invalid size '%s'%s", arg, r == -ERANGE ? ": too large" : "");
	return 0;
}

/* Reads flush's --offset and --length, when given. Returns 0 or the usage error's status. */
static int range_args(struct ctl *ctl)
{
	int r;

	if (ctl->offset_arg && (r = size_parse(ctl->offset_arg, &ctl->offset)) < 0)
		return usage_error("invalid offset '%s'%s", ctl->offset_arg,
		                   r == -ERANGE ? ": too large" : "");
	if (ctl->length_arg && (r = size_parse(ctl->length_arg, &ctl->length)) < 0)
		return usage_error("invalid length '%s'%s", ctl->length_arg,
		                   r == -ERANGE ? ": too large" : "");
	return 0;
}

/*
 * Reads KIND [N] of policy into ctl->policy: the words joined are the text
 * mmapd_policy_parse() reads, and its message is the usage error. Returns 0 or the usage
 * error's status.
 */
static int policy_args(struct ctl *ctl, char **args, int nargs)
{
	char *text;
	int r;

	ctl->set_policy = nargs > 1;
	if (!ctl->set_policy)
		return 0;
	if (asprintf(&text, "%s%s%s", args[1], nargs > 2 ? " " : "", nargs > 2 ? args[2] : "") < 0) {
		fputs("mmapctl: out of memory\n", stderr);
		return EXIT_FAILURE;
	}
	r = mmapd_policy_parse(text, &ctl->policy);
	free(text);
	if (r < 0)
		return usage_error("%s", mmapd_last_message());
	return 0;
}

/*
 * Reads one side of chown's USER:GROUP: a number below 2^32-1, or a name looked up with
 * getpwnam() (group: getgrnam()); empty keeps the current value (-1). Returns 0 or the usage
 * error's status.
 */
static int chown_id(const char *s, bool group, int64_t *ret)
{
	uint64_t v;

	*ret = -1;
	if (!*s)
		return 0;
	if (s[0] >= '0' && s[0] <= '9') {
		if (u64_parse(s, &v) < 0 || v >= UINT32_MAX)
			return usage_error("invalid %s '%s'", group ? "group" : "user", s);
		*ret = (int64_t)v;
		return 0;
	}
	if (group) {
		struct group *gr = getgrnam(s);

		if (!gr)
			return usage_error("unknown group '%s'", s);
		*ret = gr->gr_gid;
	} else {
		struct passwd *pw = getpwnam(s);

		if (!pw)
			return usage_error("unknown user '%s'", s);
		*ret = pw->pw_uid;
	}
	return 0;
}

/* Reads chown's [USER][:GROUP] into ctl->uid and ctl->gid. Returns 0 or the usage error's status. */
static int chown_arg(struct ctl *ctl, const char *arg)
{
	char user[256];
	const char *colon = strchr(arg, ':');
	size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
	int r;

	if (len >= sizeof(user))
		return usage_error("invalid user '%.*s'", (int)len, arg);
	memcpy(user, arg, len);
	user[len] = '\0';
	r = chown_id(user, false, &ctl->uid);
	if (r)
		return r;
	r = chown_id(colon ? colon + 1 : "", true, &ctl->gid);
	if (r)
		return r;
	if (ctl->uid < 0 && ctl->gid < 0)
		return usage_error("chown needs a user, a group or both: [USER][:GROUP]");
	return 0;
}

/* Reads chmod's MODE (octal digits, at most 0777) into ctl->perm. Returns 0 or the usage
 * error's status. */
static int chmod_arg(struct ctl *ctl, const char *arg)
{
	unsigned perm = 0;
	size_t len = strlen(arg);

	if (len == 0 || len > 4 || strspn(arg, "01234567") != len)
		return usage_error("invalid mode '%s' (octal, 0 to 0777)", arg);
	for (size_t i = 0; i < len; i++)
		perm = perm * 8 + (unsigned)(arg[i] - '0');
	if (perm > 0777)
		return usage_error("invalid mode '%s' (octal, 0 to 0777)", arg);
	ctl->perm = perm;
	return 0;
}

/*
 * Reports that mmapd_connect() failed with err, with a hint at the usual causes: no daemon
 * (or no socket unit) behind the path, or a user outside group mmapd. Returns
 * EXIT_UNREACHABLE.
 */
static int unreachable(int err)
{
	fprintf(stderr, "mmapctl: cannot connect to mmapd: %s\n", mmapd_last_message());
	if (err == -EACCES || err == -EPERM)
		fputs("hint: are you in group mmapd? (sudo usermod -aG mmapd $USER, then log in "
		      "again)\n", stderr);
	else if (err == -ENOENT || err == -ECONNREFUSED)
		fputs("hint: is mmapd running? (systemctl status mmapd.socket mmapd.service; "
		      "MMAPD_SOCKET or --socket name another socket)\n", stderr);
	else
		fputs("hint: is mmapd.socket running, and are you in group mmapd?\n", stderr);
	return EXIT_UNREACHABLE;
}

/*
 * --output FILE: stdout goes to a new file beside FILE (FILE.XXXXXX: not *.prom, so
 * node_exporter's textfile collector skips it), renamed over FILE by output_finish() once
 * everything is written, so a reader sees the old file or the new one, never half of one.
 * Returns 0, or the exit status of the failure (reported).
 */
static int output_start(const char *path, char **ret_tmp)
{
	char *tmp;
	int fd;

	if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
		fputs("mmapctl: out of memory\n", stderr);
		return EXIT_FAILURE;
	}
	fflush(stdout);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0 || fchmod(fd, 0644) < 0 || dup2(fd, STDOUT_FILENO) < 0) {
		fprintf(stderr, "mmapctl: cannot write %s: %s\n", tmp, mmapd_strerror(-errno));
		if (fd >= 0) {
			unlink(tmp);
			close(fd);
		}
		free(tmp);
		return EXIT_FAILURE;
	}
	close(fd);
	*ret_tmp = tmp;
	return 0;
}

/* Renames the finished output over path (status 0), or removes it. Returns the status. */
static int output_finish(const char *path, char *tmp, int status)
{
	if (status == EXIT_SUCCESS && rename(tmp, path) < 0) {
		fprintf(stderr, "mmapctl: cannot replace %s: %s\n", path, mmapd_strerror(-errno));
		status = EXIT_FAILURE;
	}
	if (status != EXIT_SUCCESS)
		unlink(tmp);
	free(tmp);
	return status;
}

enum {
	OPT_ANONYMOUS = 256, OPT_SPARSE, OPT_PROMETHEUS, OPT_REPLACE, OPT_EXTERNAL, OPT_OFFSET, OPT_LENGTH,
};

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "anonymous", no_argument, NULL, OPT_ANONYMOUS },
		{ "sparse", no_argument, NULL, OPT_SPARSE },
		{ "prometheus", no_argument, NULL, OPT_PROMETHEUS },
		{ "replace", no_argument, NULL, OPT_REPLACE },
		{ "external", no_argument, NULL, OPT_EXTERNAL },
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "length", required_argument, NULL, OPT_LENGTH },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { 0 };
	const struct command *cmd = NULL;
	char *args[3] = { NULL, NULL, NULL };
	char *tmp = NULL;
	bool help = false;
	int c, nargs, r, status = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:jo:hV", options, NULL)) != -1) {
		switch (c) {
		case 's':
			ctl.socket = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'o':
			ctl.output = optarg;
			break;
		case 'h':
			help = true;
			break;
		case 'V':
			printf("mmapctl %d.%d.%d\n", MMAPD_VERSION_MAJOR, MMAPD_VERSION_MINOR,
			       MMAPD_VERSION_PATCH);
			return EXIT_SUCCESS;
		case OPT_ANONYMOUS:
			ctl.anonymous = true;
			break;
		case OPT_SPARSE:
			ctl.sparse = true;
			break;
		case OPT_PROMETHEUS:
			ctl.prometheus = true;
			break;
		case OPT_REPLACE:
			ctl.replace = true;
			break;
		case OPT_EXTERNAL:
			ctl.external = true;
			break;
		case OPT_OFFSET:
			ctl.offset_arg = optarg;
			break;
		case OPT_LENGTH:
			ctl.length_arg = optarg;
			break;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}

	/* --help alone, or with a command (COMMAND --help): the help of that command. */
	if (help)
		return help_show(optind < argc && strcmp(argv[optind], "help") != 0 ? argv[optind]
		                                                                    : NULL);
	if (optind >= argc)
		return usage_error("no command given");
	cmd = command_find(argv[optind]);
	if (!cmd)
		return usage_error("unknown command '%s'", argv[optind]);
	nargs = argc - optind - 1;
	if (nargs < cmd->min_args || nargs > cmd->max_args) {
		if (cmd->min_args == cmd->max_args)
			return usage_error("'%s' takes %d argument%s", cmd->name, cmd->min_args,
			                   cmd->min_args == 1 ? "" : "s");
		return usage_error("'%s' takes %d to %d arguments", cmd->name, cmd->min_args,
		                   cmd->max_args);
	}
	for (int i = 0; i < nargs; i++)
		args[i] = argv[optind + 1 + i];
	if (!cmd->run)
		return help_show(args[0]);
	if (ctl.anonymous && cmd->run != cmd_create)
		return usage_error("--anonymous goes with 'create' only");
	if (ctl.sparse && cmd->run != cmd_create && cmd->run != cmd_resize)
		return usage_error("--sparse goes with 'create' and 'resize' only");
	if (ctl.replace && cmd->run != cmd_rename && cmd->run != cmd_copy)
		return usage_error("--replace goes with 'rename' and 'copy' only");
	if (ctl.external && cmd->run != cmd_watch)
		return usage_error("--external goes with 'watch' only");
	if (ctl.prometheus && cmd->run != cmd_stats)
		return usage_error("--prometheus goes with 'stats' only");
	if ((ctl.offset_arg || ctl.length_arg) && cmd->run != cmd_flush)
		return usage_error("--offset and --length go with 'flush' only");
	if (ctl.prometheus && ctl.json)
		return usage_error("--prometheus and --json exclude each other");
	if (ctl.output && (cmd->run == cmd_watch || !*ctl.output))
		return usage_error(*ctl.output ? "--output does not go with 'watch'"
		                               : "--output needs a file name");
	if (cmd->run == cmd_create || cmd->run == cmd_resize)
		status = size_arg(&ctl, args[1], cmd->run == cmd_create);
	else if (cmd->run == cmd_chown)
		status = chown_arg(&ctl, args[1]);
	else if (cmd->run == cmd_chmod)
		status = chmod_arg(&ctl, args[1]);
	else if (cmd->run == cmd_policy)
		status = policy_args(&ctl, args, nargs);
	else if (cmd->run == cmd_flush)
		status = range_args(&ctl);
	if (status)
		return status;

	r = mmapd_connect(ctl.socket, "mmapctl", &ctl.client);
	if (r < 0)
		return unreachable(r);
	if (ctl.output) {
		status = output_start(ctl.output, &tmp);
		if (status) {
			mmapd_disconnect(ctl.client);
			return status;
		}
	}
	status = cmd->run(&ctl, args);
	mmapd_disconnect(ctl.client);

	/* A table cut short by a full disk or a closed pipe must not exit 0. */
	if (fflush(stdout) != 0 || ferror(stdout) || (tmp && fsync(STDOUT_FILENO) < 0)) {
		fprintf(stderr, "mmapctl: cannot write the output: %s\n", mmapd_strerror(-errno));
		status = EXIT_FAILURE;
	}
	return tmp ? output_finish(ctl.output, tmp, status) : status;
}
