/*
 * mmapctl: the command line view of a running mmapd. It shows the daemon's figures and its
 * regions, creates and deletes regions, and prints either aligned tables for people or one JSON
 * value (--json) for scripts. It is built only on what mmapd.h offers, which keeps the public
 * API honest: anything mmapctl needs, every other client can do too. Exit status: 0 on
 * success, 1 when the daemon or the system refused, 2 for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "mmapd.h"
#include "num.h"

#define EXIT_USAGE 2

/* Longest "1023.9 KiB"-style size, with its NUL. */
#define SIZE_HUMAN_MAX 16

struct ctl {
	const char *socket;  /* NULL: $MMAPD_SOCKET or the default */
	bool json;
	bool anonymous;
	bool sparse;
	uint64_t size;       /* create's SIZE, checked before connecting */
	struct mmapd_client *client;
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: mmapctl [--socket PATH] [--json] COMMAND\n"
	        "\n"
	        "Commands:\n"
	        "  status                                 show the daemon's figures and limits\n"
	        "  list                                   list every region\n"
	        "  stat NAME                              show one region\n"
	        "  create NAME SIZE [--anonymous] [--sparse]\n"
	        "                                         create a region of SIZE bytes (K, M, G, T\n"
	        "                                         suffixes are powers of 1024)\n"
	        "  delete NAME                            delete a region\n"
	        "\n"
	        "Options:\n"
	        "  -s, --socket PATH   the daemon's socket (default: $MMAPD_SOCKET, else %s)\n"
	        "  -j, --json          print one JSON value instead of a table\n"
	        "      --anonymous     create: a memfd region held by the daemon, no file\n"
	        "      --sparse        create: do not reserve disk blocks\n"
	        "  -h, --help          show this help\n"
	        "  -V, --version       show the version\n",
	        MMAPD_DEFAULT_SOCKET);
}

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

static cJSON *region_json(const struct mmapd_region_info *info)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj || !cJSON_AddStringToObject(obj, "name", info->name) ||
	    !cJSON_AddBoolToObject(obj, "anonymous", info->anonymous) ||
	    !json_add_numbers(obj, "size", info->size, "grants", info->grants,
	                      "clients", info->clients, (const char *)NULL)) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
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
	struct mmapd_status st;
	char h1[SIZE_HUMAN_MAX], up[64];
	cJSON *obj, *limits;

	(void)args;
	if (mmapd_status(ctl->client, &st) < 0)
		return fail("status");

	if (ctl->json) {
		obj = cJSON_CreateObject();
		limits = cJSON_CreateObject();
		if (!obj || !limits || !cJSON_AddStringToObject(obj, "version", st.version) ||
		    !json_add_numbers(obj, "protocol", (uint64_t)st.protocol, "pid", (uint64_t)st.pid,
		                      "uptime_ms", st.uptime_ms, "clients", st.clients,
		                      "regions", st.regions, "anonymous_regions", st.anonymous_regions,
		                      "grants", st.grants, "bytes_granted", st.bytes_granted,
		                      "open_fds", st.open_fds, (const char *)NULL) ||
		    !json_add_numbers(limits, "max_frame", st.max_frame, "max_clients", st.max_clients,
		                      "max_grants_per_client", st.max_grants_per_client,
		                      "max_fds_in_flight", st.max_fds_in_flight,
		                      "max_region_size", st.max_region_size, (const char *)NULL) ||
		    !cJSON_AddItemToObject(obj, "limits", limits)) {
			cJSON_Delete(limits);
			cJSON_Delete(obj);
			obj = NULL;
		}
		return json_print(obj);
	}

	uptime_format(st.uptime_ms, up, sizeof(up));
	row_print("server", "mmapd %s, protocol %" PRIu32, st.version, st.protocol);
	row_print("pid", "%" PRId64, st.pid);
	row_print("uptime", "%s", up);
	row_print("clients", "%" PRIu64 " (max %" PRIu64 ")", st.clients, st.max_clients);
	row_print("regions", "%" PRIu64 " (%" PRIu64 " anonymous)", st.regions,
	          st.anonymous_regions);
	row_print("grants", "%" PRIu64 " (max %" PRIu64 " per client)", st.grants,
	          st.max_grants_per_client);
	row_print("bytes granted", "%" PRIu64 " (%s)", st.bytes_granted,
	          size_human(st.bytes_granted, h1));
	row_print("descriptors", "%" PRIu64, st.open_fds);
	row_print("max fds in flight", "%" PRIu64, st.max_fds_in_flight);
	row_print("max frame", "%" PRIu64 " (%s)", st.max_frame, size_human(st.max_frame, h1));
	row_print("max region size", "%" PRIu64 " (%s)", st.max_region_size,
	          size_human(st.max_region_size, h1));
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

static void list_print_table(const struct mmapd_region_info *infos, size_t count)
{
	int wname = 4, wbytes = 5, whuman = 4, wgrants = 6;
	char h[SIZE_HUMAN_MAX];

	for (size_t i = 0; i < count; i++) {
		wname = max_int(wname, (int)strlen(infos[i].name));
		wbytes = max_int(wbytes, number_width(infos[i].size));
		whuman = max_int(whuman, (int)strlen(size_human(infos[i].size, h)));
		wgrants = max_int(wgrants, number_width(infos[i].grants));
	}
	printf("%-*s  %*s  %*s  %-9s  %*s  %s\n", wname, "NAME", wbytes, "BYTES", whuman, "SIZE",
	       "TYPE", wgrants, "GRANTS", "CLIENTS");
	for (size_t i = 0; i < count; i++)
		printf("%-*s  %*" PRIu64 "  %*s  %-9s  %*" PRIu64 "  %7" PRIu64 "\n",
		       wname, infos[i].name, wbytes, infos[i].size, whuman,
		       size_human(infos[i].size, h), infos[i].anonymous ? "anonymous" : "file",
		       wgrants, infos[i].grants, infos[i].clients);
}

static int cmd_list(struct ctl *ctl, char **args)
{
	struct mmapd_region_info *infos;
	size_t count;
	cJSON *arr;

	(void)args;
	if (mmapd_list(ctl->client, &infos, &count) < 0)
		return fail("list");

	if (!ctl->json) {
		list_print_table(infos, count);
		free(infos);
		return EXIT_SUCCESS;
	}
	arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < count; i++) {
		cJSON *obj = region_json(&infos[i]);

		if (!obj || !cJSON_AddItemToArray(arr, obj)) {
			cJSON_Delete(obj);
			cJSON_Delete(arr);
			arr = NULL;
		}
	}
	free(infos);
	return json_print(arr);
}

static int cmd_stat(struct ctl *ctl, char **args)
{
	struct mmapd_region_info info;
	char h[SIZE_HUMAN_MAX], what[300];

	if (mmapd_stat(ctl->client, args[0], &info) < 0) {
		snprintf(what, sizeof(what), "stat %s", args[0]);
		return fail(what);
	}
	if (ctl->json)
		return json_print(region_json(&info));

	row_print("name", "%s", info.name);
	row_print("size", "%" PRIu64 " (%s)", info.size, size_human(info.size, h));
	row_print("type", "%s", info.anonymous ? "anonymous" : "file");
	row_print("grants", "%" PRIu64, info.grants);
	row_print("clients", "%" PRIu64, info.clients);
	return EXIT_SUCCESS;
}

/*
 * Creates the region with an exclusive open and closes it again. mmapd_region_open() always
 * maps, so it maps the smallest window, one read-only byte: that needs no write access and
 * costs one page of address space whatever SIZE is.
 */
static int cmd_create(struct ctl *ctl, char **args)
{
	struct mmapd_open_opts opts = {
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL,
		.mode = MMAPD_MODE_RO,
		.length = 1,
	};
	struct mmapd_region *region;
	char what[300];
	cJSON *obj;
	uint64_t size;

	opts.size = ctl->size;
	if (ctl->anonymous)
		opts.flags |= MMAPD_OPEN_ANONYMOUS;
	if (ctl->sparse)
		opts.flags |= MMAPD_OPEN_SPARSE;

	snprintf(what, sizeof(what), "create %s", args[0]);
	if (mmapd_region_open(ctl->client, args[0], &opts, &region) < 0)
		return fail(what);
	size = mmapd_region_size(region);
	if (mmapd_region_close(region) < 0)
		return fail(what);

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
	char what[300];
	cJSON *obj;

	if (mmapd_delete(ctl->client, args[0]) < 0) {
		snprintf(what, sizeof(what), "delete %s", args[0]);
		return fail(what);
	}
	if (!ctl->json)
		return EXIT_SUCCESS;
	obj = cJSON_CreateObject();
	if (!obj || !cJSON_AddStringToObject(obj, "name", args[0]) ||
	    !cJSON_AddTrueToObject(obj, "deleted")) {
		cJSON_Delete(obj);
		obj = NULL;
	}
	return json_print(obj);
}

static const struct command {
	const char *name;
	int nargs;
	int (*run)(struct ctl *ctl, char **args);
} commands[] = {
	{ "status", 0, cmd_status },
	{ "list", 0, cmd_list },
	{ "stat", 1, cmd_stat },
	{ "create", 2, cmd_create },
	{ "delete", 1, cmd_delete },
};

enum { OPT_ANONYMOUS = 256, OPT_SPARSE };

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "anonymous", no_argument, NULL, OPT_ANONYMOUS },
		{ "sparse", no_argument, NULL, OPT_SPARSE },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { 0 };
	const struct command *cmd = NULL;
	int c, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:jhV", options, NULL)) != -1) {
		switch (c) {
		case 's':
			ctl.socket = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
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
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}

	if (optind >= argc)
		return usage_error("no command given");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd)
		return usage_error("unknown command '%s'", argv[optind]);
	if (argc - optind - 1 != cmd->nargs)
		return usage_error("'%s' takes %d argument%s", cmd->name, cmd->nargs,
		                   cmd->nargs == 1 ? "" : "s");
	if ((ctl.anonymous || ctl.sparse) && cmd->run != cmd_create)
		return usage_error("--anonymous and --sparse go with 'create' only");
	if (cmd->run == cmd_create) {
		const char *arg = argv[optind + 2];
		int r = num_parse_size(arg, &ctl.size);

		if (r < 0 || ctl.size == 0)
			return usage_error("invalid size '%s'%s", arg, r == -ERANGE ? ": too large" : "");
	}

	if (mmapd_connect(ctl.socket, "mmapctl", &ctl.client) < 0)
		return fail("cannot connect to mmapd");
	status = cmd->run(&ctl, argv + optind + 1);
	mmapd_disconnect(ctl.client);

	/* A table cut short by a full disk or a closed pipe must not exit 0. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "mmapctl: cannot write the output: %s\n", mmapd_strerror(errno));
		return EXIT_FAILURE;
	}
	return status;
}
