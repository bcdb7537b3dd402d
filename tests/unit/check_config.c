/* SPDX-License-Identifier: MIT */
/*
 * Unit suite of the daemon's settings (daemon/config.h): the defaults, reading a JSON config
 * file (written to a temporary directory per test), every kind of refusal with the reason it
 * logs, the access lists ("allow_connect", "allow_create") and who they allow, a reload that
 * moves what a SIGHUP may change and keeps what needs a restart, and socket mode strings.
 *
 * The refusals are asserted on the return value and on the error line the loader writes to
 * stderr (captured in a temporary file for the duration of the call), so a refusal for the
 * wrong reason fails too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <check.h>

#include "config.h"
#include "frame.h"
#include "harness.h"
#include "log.h"
#include "msg.h"

/* The temporary directory of the running test (made on first use). */
static char dir[TEST_PATH_MAX];
static char logbuf[8192];

/* Writes len bytes of text to <dir>/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text, size_t len)
{
	static char path[TEST_PATH_MAX + 32];
	FILE *f;

	if (dir[0] == '\0')
		test_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

/* Redirects stderr (the log) to a temporary file until capture_end() reads it into logbuf. */
static int capture_fd = -1, capture_saved = -1;

static void capture_begin(void)
{
	if (dir[0] == '\0')
		test_mkdtemp(dir, sizeof(dir));
	fflush(stderr);
	capture_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	ck_assert_int_ge(capture_fd, 0);
	capture_saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
	ck_assert_int_ge(capture_saved, 0);
	ck_assert_int_eq(dup3(capture_fd, STDERR_FILENO, 0), STDERR_FILENO);
}

static void capture_end(void)
{
	ssize_t n;

	ck_assert_int_eq(dup3(capture_saved, STDERR_FILENO, 0), STDERR_FILENO);
	close(capture_saved);
	n = pread(capture_fd, logbuf, sizeof(logbuf) - 1, 0);
	close(capture_fd);
	logbuf[n > 0 ? n : 0] = '\0';
}

/* Loads the file path over c, with what the loader logs in logbuf. Returns its result. */
static int load_path(struct config *c, const char *path)
{
	int r;

	capture_begin();
	r = config_load_file(c, path);
	capture_end();
	return r;
}

/* Loads json (written to a file) over c, as load_path. */
static int load(struct config *c, const char *json)
{
	return load_path(c, write_file("cfg.json", json, strlen(json)));
}

/* Asserts that json is refused with EINVAL and that the logged reason contains why. */
#define assert_refused(json, why)                                                              \
	do {                                                                                   \
		struct config c_;                                                              \
		ck_assert_int_eq(config_init(&c_), 0);                                         \
		ck_assert_msg(load(&c_, json) == -EINVAL, "accepted: %s", json);               \
		ck_assert_msg(strstr(logbuf, why) != NULL, "%s: logged \"%s\", expected \"%s\"", \
		              json, logbuf, why);                                              \
		config_done(&c_);                                                              \
	} while (0)

static void setup(void)
{
	test_fd_setup();
	dir[0] = '\0';
	log_init(LOG_LEVEL_INFO);
}

START_TEST(test_config_defaults)
{
	struct config c;

	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_str_eq(c.socket_path, CONFIG_DEFAULT_SOCKET);
	ck_assert_str_eq(c.data_dir, CONFIG_DEFAULT_DATA_DIR);
	ck_assert_int_eq(c.log_level, LOG_LEVEL_INFO);
	ck_assert_uint_eq(c.socket_mode, 0660);
	ck_assert(c.fdstore);
	ck_assert(!c.allow_exec);
	ck_assert(!c.allow_connect.set);
	ck_assert(!c.allow_create.set);
	ck_assert_uint_eq(c.limits.max_frame, FRAME_MAX_DEFAULT);
	ck_assert_uint_eq(c.limits.max_clients, 1024);
	ck_assert_uint_eq(c.limits.max_clients_per_uid, 256);
	ck_assert_uint_eq(c.limits.hello_timeout_ms, 10000);
	ck_assert_uint_eq(c.limits.max_fds_in_flight, 64);
	ck_assert_uint_eq(c.limits.max_queue_bytes, 4194304);
	ck_assert_uint_eq(c.limits.max_region_size, 1099511627776ULL);
	ck_assert_uint_eq(c.limits.shrink_timeout_ms, 5000);
	ck_assert_uint_eq(c.limits.event_backlog_bytes, 262144);
	ck_assert_uint_eq(c.limits.max_pending_ranges, 64);
	ck_assert_uint_eq(c.limits.max_bytes_granted_per_client, PROTO_ID_MAX);
	ck_assert_uint_eq(c.limits.reserved_clients, 16);
	ck_assert_uint_eq(c.limits.reserved_fds, 64);
	config_done(&c);
	/* config_done leaves a config that config_done accepts again. */
	config_done(&c);
}
END_TEST

START_TEST(test_config_load_sets_every_kind_of_key)
{
	struct config c;

	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(load(&c, "{\"socket\": \"/tmp/x.sock\", \"data_dir\": \"/srv/regions\","
	                          " \"log_level\": \"debug\", \"socket_mode\": \"0600\","
	                          " \"fdstore\": false, \"allow_exec\": true,"
	                          " \"max_clients\": 5, \"hello_timeout_ms\": 0,"
	                          " \"max_pending_ranges\": 4096, \"max_frame\": 1024}"), 0);
	ck_assert_str_eq(logbuf, "");
	ck_assert_str_eq(c.socket_path, "/tmp/x.sock");
	ck_assert_str_eq(c.data_dir, "/srv/regions");
	ck_assert_int_eq(c.log_level, LOG_LEVEL_DEBUG);
	ck_assert_uint_eq(c.socket_mode, 0600);
	ck_assert(!c.fdstore);
	ck_assert(c.allow_exec);
	ck_assert_uint_eq(c.limits.max_clients, 5);
	ck_assert_uint_eq(c.limits.hello_timeout_ms, 0);
	ck_assert_uint_eq(c.limits.max_pending_ranges, 4096);
	ck_assert_uint_eq(c.limits.max_frame, 1024);
	/* What the file does not name keeps its default. */
	ck_assert_uint_eq(c.limits.max_clients_per_uid, 256);
	ck_assert_uint_eq(c.limits.max_regions, 65536);
	ck_assert(!c.allow_connect.set);
	config_done(&c);
}
END_TEST

START_TEST(test_config_load_empty_object_keeps_defaults)
{
	struct config c, d;

	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(config_init(&d), 0);
	ck_assert_int_eq(load(&c, "{}"), 0);
	ck_assert_mem_eq(&c.limits, &d.limits, sizeof(c.limits));
	ck_assert_str_eq(c.socket_path, d.socket_path);
	ck_assert_uint_eq(c.socket_mode, d.socket_mode);
	config_done(&c);
	config_done(&d);
}
END_TEST

START_TEST(test_config_load_accepts_range_bounds)
{
	struct config c;

	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(load(&c, "{\"max_frame\": 16777216, \"max_clients\": 65536,"
	                          " \"max_region_size\": 9007199254740991,"
	                          " \"reserved_clients\": 0, \"size_check_ms\": 0}"), 0);
	ck_assert_uint_eq(c.limits.max_frame, FRAME_MAX_LIMIT);
	ck_assert_uint_eq(c.limits.max_clients, 65536);
	ck_assert_uint_eq(c.limits.max_region_size, PROTO_ID_MAX);
	ck_assert_uint_eq(c.limits.reserved_clients, 0);
	ck_assert_uint_eq(c.limits.size_check_ms, 0);
	config_done(&c);
}
END_TEST

START_TEST(test_config_refuses_unknown_key)
{
	assert_refused("{\"max_clientz\": 5}", "unknown key \"max_clientz\"");
	assert_refused("{\"Socket\": \"/tmp/s\"}", "unknown key \"Socket\"");
}
END_TEST

START_TEST(test_config_refuses_wrong_types)
{
	assert_refused("{\"max_queue_bytes\": \"64K\"}", "\"max_queue_bytes\" must be an integer");
	assert_refused("{\"max_clients\": true}", "\"max_clients\" must be an integer");
	assert_refused("{\"max_clients\": 1.5}", "\"max_clients\" must be an integer");
	assert_refused("{\"fdstore\": 1}", "\"fdstore\" must be true or false");
	assert_refused("{\"allow_exec\": \"yes\"}", "\"allow_exec\" must be true or false");
	assert_refused("{\"socket\": 5}", "\"socket\" must be a string");
	assert_refused("{\"data_dir\": null}", "\"data_dir\" must be a string");
	assert_refused("{\"socket_mode\": 432}", "\"socket_mode\" must be a string");
	assert_refused("{\"log_level\": \"loud\"}", "\"log_level\" must be");
	assert_refused("{\"socket_mode\": \"0o660\"}", "\"socket_mode\" must be an octal string");
}
END_TEST

START_TEST(test_config_refuses_out_of_range)
{
	assert_refused("{\"max_clients\": 0}", "\"max_clients\" must be an integer from 1 to 65536");
	assert_refused("{\"max_clients\": 65537}", "from 1 to 65536");
	assert_refused("{\"max_frame\": 1023}", "\"max_frame\" must be an integer from 1024");
	assert_refused("{\"max_frame\": 16777217}", "\"max_frame\"");
	assert_refused("{\"max_queue_bytes\": -1}", "\"max_queue_bytes\"");
	assert_refused("{\"shrink_timeout_ms\": 9}", "\"shrink_timeout_ms\" must be an integer from 10");
	assert_refused("{\"max_region_size\": 9007199254740992}", "\"max_region_size\"");
}
END_TEST

START_TEST(test_config_refuses_empty_paths)
{
	assert_refused("{\"socket\": \"\"}", "\"socket\" must not be empty");
	assert_refused("{\"data_dir\": \"\"}", "\"data_dir\" must not be empty");
}
END_TEST

START_TEST(test_config_refuses_duplicate_key)
{
	assert_refused("{\"max_clients\": 5, \"max_clients\": 6}", "no key twice");
	/* Even when both say the same thing, and with other keys between them. */
	assert_refused("{\"fdstore\": true, \"max_clients\": 5, \"fdstore\": true}",
	               "no key twice");
}
END_TEST

START_TEST(test_config_refuses_malformed_json)
{
	assert_refused("{\"max_clients\": 5", "is not a JSON object");
	assert_refused("[1, 2]", "is not a JSON object");
	assert_refused("", "is not a JSON object");
	assert_refused("null", "is not a JSON object");
	assert_refused("{\"max_clients\": 5,}", "is not a JSON object");
}
END_TEST

/* Each problem says where: line and column (in characters) of the key, or of the bad syntax. */
START_TEST(test_config_reports_every_problem_with_its_position)
{
	const char *path, *text;
	struct config c;
	char want[TEST_PATH_MAX + 96];

	ck_assert_int_eq(config_init(&c), 0);
	text = "{\n  \"max_clients\": 0,\n  \"log_level\": \"info\",\n"
	       "\t\"é\": 1, \"max_clientz\": 5\n}\n";
	path = write_file("cfg.json", text, strlen(text));
	ck_assert_int_eq(load_path(&c, path), -EINVAL);
	snprintf(want, sizeof(want), "%s:2:3: \"max_clients\" must be an integer", path);
	ck_assert_msg(strstr(logbuf, want) != NULL, "logged \"%s\", expected \"%s\"", logbuf, want);
	snprintf(want, sizeof(want), "%s:4:2: unknown key \"é\"", path);
	ck_assert_msg(strstr(logbuf, want) != NULL, "logged \"%s\", expected \"%s\"", logbuf, want);
	/* The column counts characters: "é" is two bytes, one column. */
	snprintf(want, sizeof(want), "%s:4:10: unknown key \"max_clientz\"", path);
	ck_assert_msg(strstr(logbuf, want) != NULL, "logged \"%s\", expected \"%s\"", logbuf, want);
	/* The valid key between them was applied all the same. */
	ck_assert_int_eq(c.log_level, LOG_LEVEL_INFO);
	config_done(&c);

	ck_assert_int_eq(config_init(&c), 0);
	text = "{\n  \"max_clients\": 5,\n  \"socket\" \"x\"\n}\n";
	path = write_file("cfg.json", text, strlen(text));
	ck_assert_int_eq(load_path(&c, path), -EINVAL);
	snprintf(want, sizeof(want), "%s:3:12: the file is not a JSON object: syntax error", path);
	ck_assert_msg(strstr(logbuf, want) != NULL, "logged \"%s\", expected \"%s\"", logbuf, want);
	config_done(&c);

	ck_assert_int_eq(config_init(&c), 0);
	text = "{\"fdstore\": true,\n \"fdstore\": true}";
	path = write_file("cfg.json", text, strlen(text));
	ck_assert_int_eq(load_path(&c, path), -EINVAL);
	snprintf(want, sizeof(want), "%s:2:2: the file is not a JSON object with no key twice: "
	         "\"fdstore\" again", path);
	ck_assert_msg(strstr(logbuf, want) != NULL, "logged \"%s\", expected \"%s\"", logbuf, want);
	config_done(&c);
}
END_TEST

/* Top-level keys that start with "//" are comments, whatever their value; nested ones are not. */
START_TEST(test_config_skips_comment_keys)
{
	struct config c;

	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(load(&c, "{\"//\": \"mmapd's settings\", \"// max_clients\": \"connections\","
	                          " \"//max_clients\": 7, \"max_clients\": 9}"), 0);
	ck_assert_uint_eq(c.limits.max_clients, 9);
	config_done(&c);
	assert_refused("{\"allow_connect\": {\"//\": \"x\", \"uids\": [1]}}",
	               "\"allow_connect\" must be an object");
	assert_refused("{\"/ max_clients\": 1}", "unknown key \"/ max_clients\"");
}
END_TEST

/*
 * Whoever can write the config file controls the daemon at the next reload: a file others may
 * write, or one a user other than root and the daemon's owns (nobody, 65534, as root), or
 * anything but a regular file, is refused without being read.
 */
START_TEST(test_config_refuses_file_others_may_write)
{
	const char *path = write_file("cfg.json", "{}", 2);
	struct config c;

	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(chmod(path, 0664), 0);
	ck_assert_int_eq(load_path(&c, path), -EPERM);
	ck_assert_msg(strstr(logbuf, "writable by group or others"), "%s", logbuf);
	ck_assert_int_eq(chmod(path, 0646), 0);
	ck_assert_int_eq(load_path(&c, path), -EPERM);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(load_path(&c, path), 0);
	ck_assert_int_eq(load_path(&c, "/dev/null"), -EPERM);
	ck_assert_msg(strstr(logbuf, "not a regular file"), "%s", logbuf);
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(path, TEST_NOBODY, TEST_NOBODY), 0);
		ck_assert_int_eq(load_path(&c, path), -EPERM);
		ck_assert_msg(strstr(logbuf, "owned by another user (owner uid 65534"), "%s", logbuf);
	}
	config_done(&c);
}
END_TEST

START_TEST(test_config_refuses_oversize_file)
{
	size_t len = (1u << 20) + 1;
	char *text = malloc(len);
	struct config c;
	const char *path;

	ck_assert_ptr_nonnull(text);
	/* A valid object padded with spaces: refused for its size alone. */
	memset(text, ' ', len);
	text[0] = '{';
	text[len - 1] = '}';
	path = write_file("big.json", text, len);
	free(text);
	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(load_path(&c, path), -EFBIG);
	ck_assert_ptr_nonnull(strstr(logbuf, "cannot read config file"));
	config_done(&c);

	/* One byte less is read (and is an empty object). */
	text = malloc(len - 1);
	ck_assert_ptr_nonnull(text);
	memset(text, ' ', len - 1);
	text[0] = '{';
	text[len - 2] = '}';
	path = write_file("fits.json", text, len - 1);
	free(text);
	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(load_path(&c, path), 0);
	config_done(&c);
}
END_TEST

START_TEST(test_config_refuses_missing_file)
{
	struct config c;
	char path[TEST_PATH_MAX + 16];

	test_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/none.json", dir);
	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(load_path(&c, path), -ENOENT);
	ck_assert_ptr_nonnull(strstr(logbuf, "cannot read config file"));
	/* A directory is no config file either. */
	ck_assert_int_lt(load_path(&c, dir), 0);
	config_done(&c);
}
END_TEST

START_TEST(test_config_id_lists_parse)
{
	struct config c;

	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(load(&c, "{\"allow_connect\": {\"uids\": [1000, 4294967294], \"gids\": [50]},"
	                          " \"allow_create\": {\"gids\": []}}"), 0);
	ck_assert(c.allow_connect.set);
	ck_assert_uint_eq(c.allow_connect.nuids, 2);
	ck_assert_uint_eq(c.allow_connect.uids[0], 1000);
	ck_assert_uint_eq(c.allow_connect.uids[1], 4294967294u);
	ck_assert_uint_eq(c.allow_connect.ngids, 1);
	ck_assert_uint_eq(c.allow_connect.gids[0], 50);
	/* An empty list is set: only root passes it. */
	ck_assert(c.allow_create.set);
	ck_assert_uint_eq(c.allow_create.nuids, 0);
	ck_assert_uint_eq(c.allow_create.ngids, 0);
	config_done(&c);
}
END_TEST

START_TEST(test_config_id_list_allows)
{
	struct config c;
	uint32_t groups[] = { 7, 50 };
	uint32_t other[] = { 7, 8 };

	ck_assert_int_eq(config_init(&c), 0);
	/* Unset: everyone. */
	ck_assert(id_list_allows(&c.allow_connect, 1234, 1234, NULL, 0));
	ck_assert_int_eq(load(&c, "{\"allow_connect\": {\"uids\": [1000], \"gids\": [50]},"
	                          " \"allow_create\": {}}"), 0);
	ck_assert(id_list_allows(&c.allow_connect, 1000, 1000, NULL, 0));     /* by uid */
	ck_assert(id_list_allows(&c.allow_connect, 1001, 50, NULL, 0));       /* primary group */
	ck_assert(id_list_allows(&c.allow_connect, 1001, 1001, groups, 2));   /* supplementary */
	ck_assert(!id_list_allows(&c.allow_connect, 1001, 1001, other, 2));
	ck_assert(!id_list_allows(&c.allow_connect, 1001, 1001, NULL, 0));
	ck_assert(id_list_allows(&c.allow_connect, 0, 0, NULL, 0));           /* root always */
	ck_assert(!id_list_allows(&c.allow_create, 1000, 50, groups, 2));
	ck_assert(id_list_allows(&c.allow_create, 0, 1, NULL, 0));
	config_done(&c);
}
END_TEST

START_TEST(test_config_refuses_bad_id_lists)
{
	static const char *const bad[] = {
		"{\"allow_connect\": [1000]}",
		"{\"allow_connect\": {\"uids\": [1000], \"users\": [1]}}",
		"{\"allow_connect\": {\"uids\": 1000}}",
		"{\"allow_connect\": {\"uids\": [-1]}}",
		"{\"allow_connect\": {\"uids\": [1.5]}}",
		"{\"allow_connect\": {\"uids\": [\"root\"]}}",
		"{\"allow_connect\": {\"uids\": [4294967295]}}",
		"{\"allow_create\": {\"gids\": [null]}}",
		"{\"allow_create\": true}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(bad[i], "must be an object {\"uids\": [...], \"gids\": [...]}");
}
END_TEST

START_TEST(test_config_refuses_id_list_over_4096)
{
	size_t cap = 4097 * 8 + 64, n = 0, i;
	char *json = malloc(cap);

	ck_assert_ptr_nonnull(json);
	n += (size_t)snprintf(json + n, cap - n, "{\"allow_connect\": {\"uids\": [");
	for (i = 0; i < 4097; i++)
		n += (size_t)snprintf(json + n, cap - n, "%s%zu", i ? "," : "", i + 1);
	snprintf(json + n, cap - n, "]}}");
	assert_refused(json, "\"allow_connect\" must be an object");
	/* 4096 ids are fine. */
	*strrchr(json, ',') = '\0';
	strcat(json, "]}}");
	{
		struct config c;

		ck_assert_int_eq(config_init(&c), 0);
		ck_assert_int_eq(load(&c, json), 0);
		ck_assert_uint_eq(c.allow_connect.nuids, 4096);
		config_done(&c);
	}
	free(json);
}
END_TEST

START_TEST(test_config_reload_moves_reloadable_settings)
{
	struct config c, next;

	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(load(&c, "{\"max_clients\": 10, \"allow_connect\": {\"uids\": [1]}}"), 0);
	ck_assert_int_eq(config_init(&next), 0);
	ck_assert_int_eq(load(&next, "{\"max_clients\": 20, \"max_regions\": 7,"
	                             " \"log_level\": \"error\", \"allow_exec\": true,"
	                             " \"allow_connect\": {\"uids\": [2, 3]},"
	                             " \"allow_create\": {\"gids\": [9]}}"), 0);
	config_reload_from(&c, &next);
	ck_assert_uint_eq(c.limits.max_clients, 20);
	ck_assert_uint_eq(c.limits.max_regions, 7);
	ck_assert_int_eq(c.log_level, LOG_LEVEL_ERROR);
	ck_assert(c.allow_exec);
	ck_assert(c.allow_connect.set);
	ck_assert_uint_eq(c.allow_connect.nuids, 2);
	ck_assert_uint_eq(c.allow_connect.uids[1], 3);
	ck_assert(c.allow_create.set);
	ck_assert_uint_eq(c.allow_create.gids[0], 9);
	/* next gave its lists away: it holds none, and freeing both frees each list once. */
	ck_assert(!next.allow_connect.set);
	ck_assert_ptr_null(next.allow_connect.uids);
	ck_assert_ptr_null(next.allow_create.gids);
	config_done(&next);
	config_done(&c);
}
END_TEST

START_TEST(test_config_reload_keeps_restart_only_settings)
{
	struct config c, next;

	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(load(&c, "{\"socket\": \"/tmp/a.sock\", \"data_dir\": \"/tmp/a\","
	                          " \"socket_mode\": \"0600\", \"fdstore\": true,"
	                          " \"max_frame\": 4096}"), 0);
	ck_assert_int_eq(config_init(&next), 0);
	ck_assert_int_eq(load(&next, "{\"socket\": \"/tmp/b.sock\", \"data_dir\": \"/tmp/b\","
	                             " \"socket_mode\": \"0666\", \"fdstore\": false,"
	                             " \"max_frame\": 8192, \"max_clients\": 3}"), 0);
	capture_begin();
	config_reload_from(&c, &next);
	capture_end();
	/* Each restart-only setting that differs is named in a warning. */
	ck_assert_ptr_nonnull(strstr(logbuf, "\"socket\" changed"));
	ck_assert_ptr_nonnull(strstr(logbuf, "\"data_dir\" changed"));
	ck_assert_ptr_nonnull(strstr(logbuf, "\"socket_mode\" changed"));
	ck_assert_ptr_nonnull(strstr(logbuf, "\"fdstore\" changed"));
	ck_assert_ptr_nonnull(strstr(logbuf, "\"max_frame\" changed"));
	ck_assert_str_eq(c.socket_path, "/tmp/a.sock");
	ck_assert_str_eq(c.data_dir, "/tmp/a");
	ck_assert_uint_eq(c.socket_mode, 0600);
	ck_assert(c.fdstore);
	ck_assert_uint_eq(c.limits.max_frame, 4096);
	/* The limits around max_frame did move. */
	ck_assert_uint_eq(c.limits.max_clients, 3);
	config_done(&next);
	config_done(&c);
}
END_TEST

START_TEST(test_config_reload_unsets_dropped_list)
{
	struct config c, next;

	ck_assert_int_eq(config_init(&c), 0);
	ck_assert_int_eq(load(&c, "{\"allow_create\": {\"uids\": [5]}}"), 0);
	ck_assert(c.allow_create.set);
	ck_assert_int_eq(config_init(&next), 0);
	capture_begin();
	config_reload_from(&c, &next);
	capture_end();
	/* Nothing restart-only differs: no warning. */
	ck_assert_str_eq(logbuf, "");
	ck_assert(!c.allow_create.set);
	ck_assert(id_list_allows(&c.allow_create, 1234, 1234, NULL, 0));
	config_done(&next);
	config_done(&c);
}
END_TEST

START_TEST(test_config_parse_mode)
{
	static const char *const bad[] = { "", "8", "0668", "01000", "1000", "-1", "66a", "0x1ff",
	                                   " 660", "00000" };
	unsigned v = 12345;
	size_t i;

	ck_assert_int_eq(config_parse_mode("0660", &v), 0);
	ck_assert_uint_eq(v, 0660);
	ck_assert_int_eq(config_parse_mode("0777", &v), 0);
	ck_assert_uint_eq(v, 0777);
	ck_assert_int_eq(config_parse_mode("600", &v), 0);
	ck_assert_uint_eq(v, 0600);
	ck_assert_int_eq(config_parse_mode("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		ck_assert_msg(config_parse_mode(bad[i], &v) == -EINVAL, "accepted \"%s\"", bad[i]);
		ck_assert_msg(v == 12345, "\"%s\" changed the result", bad[i]);
	}
}
END_TEST

START_TEST(test_config_set_string_replaces)
{
	char *s = NULL;

	ck_assert_int_eq(config_set_string(&s, "one"), 0);
	ck_assert_str_eq(s, "one");
	ck_assert_int_eq(config_set_string(&s, "two"), 0);
	ck_assert_str_eq(s, "two");
	free(s);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, test_fd_teardown);
	tcase_add_test(tc, test_config_defaults);
	tcase_add_test(tc, test_config_load_sets_every_kind_of_key);
	tcase_add_test(tc, test_config_load_empty_object_keeps_defaults);
	tcase_add_test(tc, test_config_load_accepts_range_bounds);
	tcase_add_test(tc, test_config_refuses_unknown_key);
	tcase_add_test(tc, test_config_refuses_wrong_types);
	tcase_add_test(tc, test_config_refuses_out_of_range);
	tcase_add_test(tc, test_config_refuses_empty_paths);
	tcase_add_test(tc, test_config_refuses_duplicate_key);
	tcase_add_test(tc, test_config_refuses_malformed_json);
	tcase_add_test(tc, test_config_reports_every_problem_with_its_position);
	tcase_add_test(tc, test_config_skips_comment_keys);
	tcase_add_test(tc, test_config_refuses_file_others_may_write);
	tcase_add_test(tc, test_config_refuses_oversize_file);
	tcase_add_test(tc, test_config_refuses_missing_file);
	tcase_add_test(tc, test_config_id_lists_parse);
	tcase_add_test(tc, test_config_id_list_allows);
	tcase_add_test(tc, test_config_refuses_bad_id_lists);
	tcase_add_test(tc, test_config_refuses_id_list_over_4096);
	tcase_add_test(tc, test_config_reload_moves_reloadable_settings);
	tcase_add_test(tc, test_config_reload_keeps_restart_only_settings);
	tcase_add_test(tc, test_config_reload_unsets_dropped_list);
	tcase_add_test(tc, test_config_parse_mode);
	tcase_add_test(tc, test_config_set_string_replaces);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(config_suite()) == 0 ? 0 : 1;
}
