/* SPDX-License-Identifier: MIT */
/*
 * Settings of mmapd (see config.h). The config file is one JSON object whose keys are the
 * limits of docs/protocol.md and docs/coordination.md plus "socket", "data_dir", "log_level",
 * "socket_mode", "fdstore", "allow_exec" and the access lists "allow_connect" and
 * "allow_create". It is read strictly: an operator who misspells a key or writes "64K" where
 * a number belongs gets a clear refusal at startup rather than a silently ignored setting.
 * Every problem of a file is reported, each as "PATH:LINE:COLUMN: what" where the text shows
 * it, so `mmapd --check-config` lists them all at once. Top-level keys that start with "//"
 * are comments (JSON has none) and are skipped whatever their value.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "fileio.h"
#include "frame.h"
#include "log.h"
#include "msg.h"
#include "utf8.h"

#define CONFIG_FILE_MAX (1u << 20)   /* a config file is a few hundred bytes; refuse nonsense */

#define CONFIG_LIMIT(key, def, min, max) { #key, offsetof(struct limits, key), def, min, max }

static const struct config_limit {
	const char *key;
	size_t offset;
	uint64_t def;
	uint64_t min;
	uint64_t max;
} config_limits[] = {
	CONFIG_LIMIT(max_frame, FRAME_MAX_DEFAULT, FRAME_MAX_MIN, FRAME_MAX_LIMIT),
	CONFIG_LIMIT(max_clients, 1024, 1, 65536),
	CONFIG_LIMIT(max_clients_per_uid, 256, 1, 65536),
	CONFIG_LIMIT(hello_timeout_ms, 10000, 0, 600000),
	CONFIG_LIMIT(max_grants_per_client, 1024, 1, 1048576),
	CONFIG_LIMIT(max_fds_in_flight, 64, 1, 4096),
	CONFIG_LIMIT(max_queue_bytes, 4194304, 65536, 1073741824),
	CONFIG_LIMIT(max_region_size, 1099511627776ULL, 4096, PROTO_ID_MAX),
	CONFIG_LIMIT(max_regions, 65536, 1, 1048576),
	CONFIG_LIMIT(max_locks_per_client, 1024, 1, 1048576),
	CONFIG_LIMIT(max_subscriptions_per_client, 1024, 1, 1048576),
	CONFIG_LIMIT(shrink_timeout_ms, 5000, 10, 600000),
	CONFIG_LIMIT(event_backlog_bytes, 262144, 4096, 67108864),
	CONFIG_LIMIT(max_pending_ranges, 64, 1, 4096),
	CONFIG_LIMIT(size_check_ms, 1000, 0, 3600000),
	CONFIG_LIMIT(max_control_slots_per_uid, 16, 1, 56),
	CONFIG_LIMIT(external_poll_ms, 100, 10, 3600000),
	CONFIG_LIMIT(max_bytes_granted_per_client, PROTO_ID_MAX, 4096, PROTO_ID_MAX),
	CONFIG_LIMIT(max_regions_created_per_client, 65536, 1, 1048576),
	CONFIG_LIMIT(max_fds_per_uid, 1024, 8, 1048576),
	CONFIG_LIMIT(max_queue_bytes_per_uid, 16777216, 65536, 4294967296ULL),
	CONFIG_LIMIT(max_lock_waiters_per_uid, 4096, 1, 1048576),
	CONFIG_LIMIT(max_anonymous_regions_per_uid, 256, 1, 1048576),
	CONFIG_LIMIT(max_anonymous_bytes_per_uid, 1073741824ULL, 4096, PROTO_ID_MAX),
	CONFIG_LIMIT(max_anonymous_bytes_all_users, 0, 0, PROTO_ID_MAX),
	CONFIG_LIMIT(max_watched_files_per_uid, 64, 1, 1048576),
	CONFIG_LIMIT(reserved_clients, 16, 0, 65536),
	CONFIG_LIMIT(reserved_fds, 64, 0, 65536),
};

#define CONFIG_NLIMITS (sizeof(config_limits) / sizeof(config_limits[0]))

static uint64_t *config_limit_slot(struct limits *l, const struct config_limit *cl)
{
	return (uint64_t *)(void *)((char *)l + cl->offset);
}

int config_set_string(char **slot, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

int config_init(struct config *c)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->log_level = LOG_LEVEL_INFO;
	c->socket_mode = CONFIG_DEFAULT_SOCKET_MODE;
	c->fdstore = true;
	for (i = 0; i < CONFIG_NLIMITS; i++)
		*config_limit_slot(&c->limits, &config_limits[i]) = config_limits[i].def;
	if (config_set_string(&c->socket_path, CONFIG_DEFAULT_SOCKET) < 0 ||
	    config_set_string(&c->data_dir, CONFIG_DEFAULT_DATA_DIR) < 0) {
		config_done(c);
		return -ENOMEM;
	}
	return 0;
}

static void id_list_done(struct id_list *l)
{
	free(l->uids);
	free(l->gids);
	memset(l, 0, sizeof(*l));
}

void config_done(struct config *c)
{
	id_list_done(&c->allow_connect);
	id_list_done(&c->allow_create);
	free(c->socket_path);
	free(c->data_dir);
	c->socket_path = NULL;
	c->data_dir = NULL;
}

int config_parse_mode(const char *s, unsigned *ret)
{
	unsigned v = 0;
	size_t n;

	n = strlen(s);
	if (n == 0 || n > 4)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -EINVAL;
		v = v * 8 + (unsigned)(*s - '0');
	}
	if (v > 0777)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* A config file being read: its path and text, for messages that say where. */
struct config_src {
	const char *path;
	const char *text;      /* NUL-terminated; len bytes before the NUL */
	size_t len;
	FILE *out;             /* NULL: problems go to the log */
};

/*
 * Reports one problem: "PATH:LINE:COLUMN: what" when at points into the text (columns count
 * characters, from 1), "PATH: what" when it is NULL.
 */
static void config_problem(const struct config_src *src, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void config_problem(const struct config_src *src, const char *at, const char *fmt, ...)
{
	unsigned line = 1, column = 1;
	char where[32] = "";
	char *what = NULL;
	const char *p;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) < 0)
		what = NULL;
	va_end(ap);
	if (at) {
		for (p = src->text; p < at; p++) {
			if (*p == '\n') {
				line++;
				column = 1;
			} else if (((unsigned char)*p & 0xc0) != 0x80) {
				column++;
			}
		}
		snprintf(where, sizeof(where), ":%u:%u", line, column);
	}
	if (src->out)
		fprintf(src->out, "%s%s: %s\n", src->path, where, what ? what : "out of memory");
	else
		log_error("%s%s: %s", src->path, where, what ? what : "out of memory");
	free(what);
}

/*
 * The opening quote of a top-level key of the object in the text whose characters between
 * the quotes are key, skipping the first skip such keys; NULL when there is none (a key
 * written with escapes is not found). Reads only the string and bracket structure, so it
 * works on any text, valid JSON or not.
 */
static const char *config_key_at(const struct config_src *src, const char *key, unsigned skip)
{
	const char *p = src->text, *end = src->text + src->len, *s;
	size_t klen = strlen(key);
	bool expect_key = false;
	int depth = 0;

	for (; p < end; p++) {
		switch (*p) {
		case '{':
			expect_key = ++depth == 1;
			break;
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			depth--;
			break;
		case ',':
			expect_key = depth == 1;
			break;
		case '"':
			s = ++p;
			while (p < end && *p != '"')
				p += *p == '\\' ? 2 : 1;
			if (p >= end)
				return NULL;
			if (expect_key && (size_t)(p - s) == klen && memcmp(s, key, klen) == 0 &&
			    skip-- == 0)
				return s - 1;
			expect_key = false;
			break;
		default:
			break;
		}
	}
	return NULL;
}

/*
 * Reads the whole file into a NUL-terminated buffer. Whoever can write the file decides the
 * daemon's limits and access lists at the next reload, so, as sshd does with its files, it
 * must be a regular file owned by root or by the daemon's own user and writable by nobody
 * else (reported, -EPERM). Returns 0 or -errno.
 */
static int config_read_file(const struct config_src *src, char **ret_text, size_t *ret_len)
{
	struct stat st;
	int fd, r;

	fd = open(src->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		config_problem(src, NULL, "refusing the config file: %s (owner uid %lu, mode %04o); "
		               "it must be a regular file of root or of mmapd's own user that nobody "
		               "else may write", !S_ISREG(st.st_mode) ? "not a regular file" :
		               (st.st_mode & (S_IWGRP | S_IWOTH)) ? "writable by group or others" :
		               "owned by another user", (unsigned long)st.st_uid,
		               (unsigned)(st.st_mode & 07777));
		close(fd);
		return -EPERM;
	}
	r = fileio_read_file(fd, CONFIG_FILE_MAX, ret_text, ret_len);
	close(fd);
	if (r == 0)
		return 0;
fail:
	config_problem(src, NULL, "cannot read config file: %s", strerror(-r));
	return r;
}

#define CONFIG_ID_LIST_MAX 4096   /* ids per array: a list, not a user database */

/* Reads one array of ids ("uids" or "gids") of an access list. Returns 0 or -EINVAL/-ENOMEM. */
static int id_array_parse(const cJSON *obj, const char *key, uint32_t **ret, size_t *ret_n)
{
	const cJSON *array = cJSON_GetObjectItemCaseSensitive(obj, key), *item;
	uint32_t *ids;
	size_t n = 0;

	if (!array)
		return 0;
	if (!cJSON_IsArray(array) || cJSON_GetArraySize(array) > CONFIG_ID_LIST_MAX)
		return -EINVAL;
	ids = calloc((size_t)cJSON_GetArraySize(array) + 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	cJSON_ArrayForEach(item, array) {
		double v = cJSON_IsNumber(item) ? item->valuedouble : -1;

		if (v < 0 || v > 4294967294.0 || v != (double)(uint32_t)v) {
			free(ids);
			return -EINVAL;
		}
		ids[n++] = (uint32_t)v;
	}
	*ret = ids;
	*ret_n = n;
	return 0;
}

/* Reads an access list: {"uids": [...], "gids": [...]}, nothing else. */
static int id_list_parse(const struct config_src *src, const char *at, const char *key,
                         const cJSON *obj, struct id_list *l)
{
	const cJSON *item;
	int r;

	if (!cJSON_IsObject(obj))
		goto bad;
	cJSON_ArrayForEach(item, obj)
		if (strcmp(item->string, "uids") != 0 && strcmp(item->string, "gids") != 0)
			goto bad;
	id_list_done(l);
	r = id_array_parse(obj, "uids", &l->uids, &l->nuids);
	if (r == 0)
		r = id_array_parse(obj, "gids", &l->gids, &l->ngids);
	if (r == -ENOMEM) {
		config_problem(src, NULL, "out of memory");
		return r;
	}
	if (r < 0)
		goto bad;
	l->set = true;
	return 0;
bad:
	config_problem(src, at, "\"%s\" must be an object {\"uids\": [...], \"gids\": [...]} of "
	               "integer ids", key);
	return -EINVAL;
}

static bool id_in(const uint32_t *ids, size_t n, uint32_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

bool id_list_allows(const struct id_list *l, uint32_t uid, uint32_t gid, const uint32_t *groups,
                    size_t ngroups)
{
	size_t i;

	if (!l->set || uid == 0 || id_in(l->uids, l->nuids, uid) || id_in(l->gids, l->ngids, gid))
		return true;
	for (i = 0; i < ngroups; i++)
		if (id_in(l->gids, l->ngids, groups[i]))
			return true;
	return false;
}

/* Applies one key of the config object. Returns 0, -EINVAL after reporting why, or -ENOMEM. */
static int config_apply(struct config *c, const struct config_src *src, const cJSON *obj,
                        const cJSON *item)
{
	const char *key = item->string;
	const char *at = config_key_at(src, key, 0);
	const char *s;
	size_t i;
	int r;

	if (strncmp(key, "//", 2) == 0)
		return 0;
	for (i = 0; i < CONFIG_NLIMITS; i++) {
		const struct config_limit *cl = &config_limits[i];
		uint64_t v;

		if (strcmp(key, cl->key) != 0)
			continue;
		r = msg_get_u64(obj, key, &v);
		if (r < 0 || v < cl->min || v > cl->max) {
			config_problem(src, at, "\"%s\" must be an integer from %llu to %llu", key,
			               (unsigned long long)cl->min, (unsigned long long)cl->max);
			return -EINVAL;
		}
		*config_limit_slot(&c->limits, cl) = v;
		return 0;
	}

	if (strcmp(key, "fdstore") == 0 || strcmp(key, "allow_exec") == 0) {
		if (msg_get_bool(obj, key, strcmp(key, "fdstore") == 0 ? &c->fdstore
		                                                       : &c->allow_exec) < 0) {
			config_problem(src, at, "\"%s\" must be true or false", key);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "allow_connect") == 0)
		return id_list_parse(src, at, key, item, &c->allow_connect);
	if (strcmp(key, "allow_create") == 0)
		return id_list_parse(src, at, key, item, &c->allow_create);

	if (strcmp(key, "socket") == 0 || strcmp(key, "data_dir") == 0 ||
	    strcmp(key, "log_level") == 0 || strcmp(key, "socket_mode") == 0) {
		if (msg_get_string(obj, key, &s) < 0) {
			config_problem(src, at, "\"%s\" must be a string", key);
			return -EINVAL;
		}
		if (strcmp(key, "log_level") == 0) {
			r = log_level_parse(s);
			if (r < 0) {
				config_problem(src, at, "\"log_level\" must be \"error\", \"warn\", "
				               "\"info\" or \"debug\"");
				return -EINVAL;
			}
			c->log_level = r;
			return 0;
		}
		if (strcmp(key, "socket_mode") == 0) {
			if (config_parse_mode(s, &c->socket_mode) < 0) {
				config_problem(src, at, "\"socket_mode\" must be an octal string such as "
				               "\"0660\"");
				return -EINVAL;
			}
			return 0;
		}
		if (*s == '\0') {
			config_problem(src, at, "\"%s\" must not be empty", key);
			return -EINVAL;
		}
		r = config_set_string(strcmp(key, "socket") == 0 ? &c->socket_path : &c->data_dir, s);
		if (r < 0)
			config_problem(src, NULL, "out of memory");
		return r;
	}

	config_problem(src, at, "unknown key \"%s\"", key);
	return -EINVAL;
}

/*
 * Parses the text as msg_parse() does; when it refuses, reports why, and where when the text
 * shows it. Returns 0 with *ret_obj set, -EINVAL after reporting, or -ENOMEM.
 */
static int config_parse(const struct config_src *src, cJSON **ret_obj)
{
	const cJSON *item, *prev;
	const char *end = NULL;
	size_t offset = 0;
	cJSON *obj;
	int r;

	r = msg_parse(src->text, src->len, ret_obj);
	if (r == 0 || r == -ENOMEM)
		return r;
	if (r == -EILSEQ) {
		utf8_check(src->text, src->len, &offset);
		config_problem(src, src->text + offset, "the file is not valid UTF-8");
		return -EINVAL;
	}
	/* cJSON says where the syntax breaks; the text is NUL-terminated after len bytes. */
	obj = cJSON_ParseWithLengthOpts(src->text, src->len + 1, &end, true);
	if (!obj) {
		config_problem(src, end, "the file is not a JSON object: syntax error");
		return -EINVAL;
	}
	if (!cJSON_IsObject(obj)) {
		config_problem(src, NULL, "the file is not a JSON object {...}");
		goto out;
	}
	cJSON_ArrayForEach(item, obj)
		for (prev = obj->child; prev != item; prev = prev->next)
			if (strcmp(prev->string, item->string) == 0) {
				config_problem(src, config_key_at(src, item->string, 1),
				               "the file is not a JSON object with no key twice: \"%s\" "
				               "again", item->string);
				goto out;
			}
	config_problem(src, NULL, "the file is not a JSON object as mmapd reads one: no key "
	               "twice, no \\u0000 in a string, nesting at most %d deep",
	               PROTO_JSON_DEPTH_MAX);
out:
	cJSON_Delete(obj);
	return -EINVAL;
}

int config_load_file(struct config *c, const char *path)
{
	return config_load_file_report(c, path, NULL);
}

int config_load_file_report(struct config *c, const char *path, FILE *out)
{
	struct config_src src = { .path = path, .out = out };
	const cJSON *item;
	cJSON *obj = NULL;
	char *text = NULL;
	size_t len = 0;
	int r, bad = 0;

	r = config_read_file(&src, &text, &len);
	if (r < 0)
		return r;
	src.text = text;
	src.len = len;
	/* The same strict parser as requests: UTF-8, one object, no hidden NULs, bounded nesting. */
	r = config_parse(&src, &obj);
	if (r < 0)
		goto out;
	/* Every key is applied, so that one reading reports every problem of the file. */
	cJSON_ArrayForEach(item, obj) {
		r = config_apply(c, &src, obj, item);
		if (r == -ENOMEM)
			goto out;
		if (r < 0)
			bad = r;
	}
	r = bad;
out:
	cJSON_Delete(obj);
	free(text);
	return r;
}

/* Logs a setting that a reload cannot change. */
static void config_reload_refuse(const char *key)
{
	log_warn("configuration reload: \"%s\" changed; it takes effect only after a restart", key);
}

void config_reload_from(struct config *c, struct config *next)
{
	uint64_t max_frame = c->limits.max_frame;

	if (strcmp(c->socket_path, next->socket_path) != 0)
		config_reload_refuse("socket");
	if (strcmp(c->data_dir, next->data_dir) != 0)
		config_reload_refuse("data_dir");
	if (c->socket_mode != next->socket_mode)
		config_reload_refuse("socket_mode");
	if (c->fdstore != next->fdstore)
		config_reload_refuse("fdstore");
	/* Connections read with the frame size they started with; hello announced it. */
	if (max_frame != next->limits.max_frame)
		config_reload_refuse("max_frame");
	c->limits = next->limits;
	c->limits.max_frame = max_frame;
	c->log_level = next->log_level;
	c->allow_exec = next->allow_exec;
	id_list_done(&c->allow_connect);
	id_list_done(&c->allow_create);
	c->allow_connect = next->allow_connect;
	c->allow_create = next->allow_create;
	memset(&next->allow_connect, 0, sizeof(next->allow_connect));
	memset(&next->allow_create, 0, sizeof(next->allow_create));
}
