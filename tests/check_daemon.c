/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of mmapd with real client processes: one process writes through its mapping
 * and another sees the bytes; read-only grants cannot become writable; copy-on-write stays
 * private; anonymous regions are shared without a file; windows at odd offsets; mmapctl;
 * list pagination; clients that die in the middle of things; descriptor accounting; and the
 * daemon's own life cycle (SIGTERM, a socket already in use, a stale socket file).
 *
 * The test case "daemon" shares one mmapd (started by an unchecked fixture, with the
 * default configuration); the life-cycle tests start their own. Client processes are
 * $MMAPD_TESTCLIENT (tests/mmapd-testclient.c, built on libmmapd) and $MMAPCTL_BIN.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct test_daemon dmn;
/* The daemon's descriptor count (status "open_fds", seen from one fresh connection) once it is
 * warmed up: measured by the fixture, compared by the last test. */
static uint64_t suite_fd_baseline;

/* Runs the test client with the given arguments; asserts exit status 0 and exact output. */
#define CLIENT_OK(expect, ...)                                                                  \
	do {                                                                                    \
		char out_[8192];                                                                \
		int st_ = test_run_client(&dmn, out_, sizeof(out_), __VA_ARGS__, (char *)NULL); \
		ck_assert_msg(st_ == 0, "mmapd-testclient %s: exit status %d, output \"%s\"",   \
		              #__VA_ARGS__, st_, out_);                                         \
		ck_assert_str_eq(out_, expect);                                                 \
	} while (0)

/* Runs mmapctl against dmn; asserts the exit status; the output is left in out. */
#define CTL(want_status, out, ...) TEST_CTL(&dmn, want_status, out, __VA_ARGS__)

/* Creates a region through a raw connection, releasing the grant at once. */
static void conn_create(struct test_conn *c, const char *name, uint64_t size, bool anonymous)
{
	cJSON *req = cJSON_CreateObject(), *reply;
	char close_req[96];

	cJSON_AddStringToObject(req, "op", "open");
	cJSON_AddStringToObject(req, "name", name);
	cJSON_AddStringToObject(req, "mode", "ro");
	cJSON_AddBoolToObject(req, "create", true);
	cJSON_AddBoolToObject(req, "exclusive", true);
	cJSON_AddNumberToObject(req, "size", (double)size);
	if (anonymous)
		cJSON_AddBoolToObject(req, "anonymous", true);
	reply = test_conn_request(c, req);
	test_assert_ok(reply);
	ck_assert(test_json_bool(reply, "created"));
	close(test_conn_take_fd(c));
	snprintf(close_req, sizeof(close_req), "{\"id\":%llu,\"op\":\"close\",\"handle\":%llu}",
	         (unsigned long long)c->next_id++, (unsigned long long)test_json_u64(reply, "handle"));
	cJSON_Delete(reply);
	reply = test_conn_request_text(c, close_req);
	test_assert_ok(reply);
	cJSON_Delete(reply);
}

static void conn_delete(struct test_conn *c, const char *name)
{
	cJSON *req = cJSON_CreateObject(), *reply;

	cJSON_AddStringToObject(req, "op", "delete");
	cJSON_AddStringToObject(req, "name", name);
	reply = test_conn_request(c, req);
	test_assert_ok(reply);
	cJSON_Delete(reply);
}

/* One list page: the reply (caller frees). after may be NULL, limit 0 means none given. */
static cJSON *conn_list(struct test_conn *c, const char *after, uint64_t limit)
{
	cJSON *req = cJSON_CreateObject(), *reply;

	cJSON_AddStringToObject(req, "op", "list");
	if (after != NULL)
		cJSON_AddStringToObject(req, "after", after);
	if (limit != 0)
		cJSON_AddNumberToObject(req, "limit", (double)limit);
	reply = test_conn_request(c, req);
	test_assert_ok(reply);
	ck_assert_msg(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(reply, "regions")),
	              "list reply without a regions array");
	(void)test_json_bool(reply, "more");
	return reply;
}

struct name_list {
	char **names;
	size_t count;
	size_t pages;
};

static void name_list_free(struct name_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->names[i]);
	free(l->names);
	memset(l, 0, sizeof(*l));
}

/*
 * Lists every region page by page (limit 0: the daemon's default), asserting on the way that
 * each page holds at most limit entries, that every entry is a well-formed region object, that
 * names increase strictly across pages, and that only the last page says "more": false.
 */
static void list_all(struct test_conn *c, uint64_t limit, struct name_list *ret)
{
	char *after = NULL;

	memset(ret, 0, sizeof(*ret));
	for (;;) {
		cJSON *reply = conn_list(c, after, limit);
		const cJSON *regions = cJSON_GetObjectItemCaseSensitive(reply, "regions"), *r;
		bool more = test_json_bool(reply, "more");
		size_t n = (size_t)cJSON_GetArraySize(regions);

		ret->pages++;
		ck_assert_msg(n <= (limit ? limit : 1000), "a page of %zu entries", n);
		ck_assert_msg(n > 0 || !more, "an empty page that says more");
		ret->names = realloc(ret->names, (ret->count + n) * sizeof(char *));
		ck_assert(ret->names != NULL || ret->count + n == 0);
		cJSON_ArrayForEach(r, regions) {
			const char *name = test_json_str(r, "name");

			(void)test_json_u64(r, "size");
			(void)test_json_bool(r, "anonymous");
			(void)test_json_u64(r, "grants");
			(void)test_json_u64(r, "clients");
			if (ret->count > 0)
				ck_assert_msg(strcmp(ret->names[ret->count - 1], name) < 0,
				              "list is not sorted: \"%s\" came after \"%s\"", name,
				              ret->names[ret->count - 1]);
			ret->names[ret->count++] = strdup(name);
		}
		free(after);
		after = n > 0 ? strdup(ret->names[ret->count - 1]) : NULL;
		cJSON_Delete(reply);
		if (!more)
			break;
		ck_assert_msg(ret->pages < 100000, "list never ends");
	}
	free(after);
}

static bool name_list_has(const struct name_list *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->names[i], name) == 0)
			return true;
	return false;
}

/* Deletes every region the daemon lists. */
static void delete_all_regions(const struct test_daemon *d)
{
	struct test_conn c;
	struct name_list l;

	test_conn_open_hello(&c, d);
	list_all(&c, 0, &l);
	for (size_t i = 0; i < l.count; i++)
		conn_delete(&c, l.names[i]);
	name_list_free(&l);
	test_conn_close(&c);
}

static void suite_setup(void)
{
	struct test_conn c;

	test_daemon_start(&dmn, NULL);
	/* Warm the daemon up (thread pool, region table, memfd path) before the baseline, so
	 * that a one-time allocation is not taken for a leak. */
	test_conn_open_hello(&c, &dmn);
	conn_create(&c, "warm-up-file", 4096, false);
	conn_create(&c, "warm-up-anon", 4096, true);
	conn_delete(&c, "warm-up-file");
	conn_delete(&c, "warm-up-anon");
	test_conn_close(&c);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "clients", 1), 1);
	suite_fd_baseline = test_daemon_status_u64(&dmn, "open_fds");
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

static void data_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dmn.data, name);
}

/* Reads len bytes of the region's file at off, straight from the data directory. */
static void file_pread(const char *name, off_t off, char *buf, size_t len)
{
	char path[PATH_MAX];
	int fd;

	data_path(path, sizeof(path), name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

/* ---- sharing memory between processes ------------------------------------------------------ */

START_TEST(test_daemon_reader_process_sees_bytes_written_by_writer_process)
{
	char buf[32];
	struct stat st;
	char path[PATH_MAX];

	CLIENT_OK("size=65536\n", "create", "shared-file", "65536");
	CLIENT_OK("ok\n", "write", "shared-file", "40000", "hello-from-writer");
	CLIENT_OK("hello-from-writer\n", "read", "shared-file", "40000", "17");
	/* It is the region's file that holds them, at the same offset. */
	data_path(path, sizeof(path), "shared-file");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_size, 65536);
	file_pread("shared-file", 40000, buf, 17);
	ck_assert_int_eq(memcmp(buf, "hello-from-writer", 17), 0);
	test_daemon_delete(&dmn, "shared-file");
}
END_TEST

START_TEST(test_daemon_reader_mapping_sees_later_write_without_any_request)
{
	struct test_proc writer, watcher;
	const cJSON *region;
	cJSON *st;

	CLIENT_OK("size=4096\n", "create", "live", "4096");
	test_proc_spawn_client(&writer, &dmn, "writer", "live", (char *)NULL);
	test_proc_expect_line(&writer, "ready");
	test_proc_writeline(&writer, "100 first-value");
	test_proc_expect_line(&writer, "ok");

	/* The watcher maps the region once, then makes no library call while it waits. */
	test_proc_spawn_client(&watcher, &dmn, "watch", "live", "100", "second-value", "5000",
	                       (char *)NULL);
	test_proc_expect_line(&watcher, "ready first-value\\x00");
	st = test_daemon_stat(&dmn, "live", &region);
	ck_assert_uint_eq(test_json_u64(region, "grants"), 2);
	ck_assert_uint_eq(test_json_u64(region, "clients"), 2);
	cJSON_Delete(st);

	/* The writer, still holding its mapping from before, writes again. */
	test_proc_writeline(&writer, "100 second-value");
	test_proc_expect_line(&writer, "ok");
	test_proc_expect_line(&watcher, "seen");
	ck_assert_int_eq(test_proc_wait(&watcher), 0);
	ck_assert_int_eq(test_proc_wait(&writer), 0);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
	test_daemon_delete(&dmn, "live");
}
END_TEST

START_TEST(test_daemon_ro_grant_cannot_be_mapped_writable)
{
	CLIENT_OK("size=8192\n", "create", "ro-guard", "8192");
	CLIENT_OK("accmode=O_RDONLY\nEACCES\n", "map-ro-writable", "ro-guard");
	/* A copy-on-write grant is a read-only descriptor too: no shared writable mapping. */
	CLIENT_OK("accmode=O_RDONLY\nEACCES\n", "map-ro-writable", "ro-guard", "cow");
	test_daemon_delete(&dmn, "ro-guard");
}
END_TEST

START_TEST(test_daemon_cow_writes_stay_private)
{
	char buf[16];

	CLIENT_OK("size=4096\n", "create", "cow-region", "4096");
	CLIENT_OK("ok\n", "write", "cow-region", "10", "original-bytes");
	/* The cow process sees its own change; its read-only open of the same region, in the
	 * same process, does not. */
	CLIENT_OK("cow:private-copy!!\nro:original-bytes\n", "cow", "cow-region", "10",
	          "private-copy!!");
	/* Neither does another process, nor the file. */
	CLIENT_OK("original-bytes\n", "read", "cow-region", "10", "14");
	file_pread("cow-region", 10, buf, 14);
	ck_assert_int_eq(memcmp(buf, "original-bytes", 14), 0);
	test_daemon_delete(&dmn, "cow-region");
}
END_TEST

/* True if any entry of the data directory has needle in its name. */
static bool data_dir_mentions(const char *needle)
{
	DIR *dir = opendir(dmn.data);
	struct dirent *e;
	bool found = false;

	ck_assert_msg(dir != NULL, "opendir %s: %s", dmn.data, strerror(errno));
	while ((e = readdir(dir)) != NULL)
		if (strstr(e->d_name, needle) != NULL)
			found = true;
	closedir(dir);
	return found;
}

START_TEST(test_daemon_anonymous_region_is_shared_between_processes_without_a_file)
{
	uint64_t anon_before = test_daemon_status_u64(&dmn, "anonymous_regions");
	const cJSON *region;
	cJSON *st;

	CLIENT_OK("size=8192\n", "create", "anon-shared", "8192", "anon");
	CLIENT_OK("ok\n", "write", "anon-shared", "5000", "anonymous-bytes");
	CLIENT_OK("anonymous-bytes\n", "read", "anon-shared", "5000", "15");
	ck_assert_msg(!data_dir_mentions("anon-shared"),
	              "an anonymous region left a file in the data directory");
	st = test_daemon_stat(&dmn, "anon-shared", &region);
	ck_assert(test_json_bool(region, "anonymous"));
	ck_assert_uint_eq(test_json_u64(region, "size"), 8192);
	cJSON_Delete(st);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "anonymous_regions"), anon_before + 1);

	/* One namespace: a file region cannot take the name. */
	{
		char out[512];
		int rc = test_run_client(&dmn, out, sizeof(out), "create", "anon-shared", "4096", "excl",
		                         (char *)NULL);

		ck_assert_int_eq(rc, 1);
	}
	test_daemon_delete(&dmn, "anon-shared");
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "anonymous_regions"), anon_before);
}
END_TEST

START_TEST(test_daemon_window_at_odd_offset_reads_the_right_bytes)
{
	char out[256];

	CLIENT_OK("size=16384\n", "create", "windowed", "16384");
	/* Bytes that straddle the first page boundary, and more deep in the third page. */
	CLIENT_OK("ok\n", "write", "windowed", "4090", "ABCDEFGHIJKLMNOP");
	CLIENT_OK("ok\n", "write", "windowed", "12345", "odd-offset-text");
	CLIENT_OK("offset=4093 length=7\nDEFGHIJ\n", "window", "windowed", "4093", "7");
	CLIENT_OK("offset=12345 length=15\nodd-offset-text\n", "window", "windowed", "12345", "15");
	CLIENT_OK("offset=12347 length=3\nd-o\n", "window", "windowed", "12347", "3");
	/* Length 0: up to the end of the region. */
	CLIENT_OK("offset=16380 length=4\n\\x00\\x00\\x00\\x00\n", "window", "windowed", "16380", "0");
	/* A window past the end is refused. */
	ck_assert_int_eq(test_run_client(&dmn, out, sizeof(out), "window", "windowed", "16380", "8",
	                                 (char *)NULL), 1);
	test_daemon_delete(&dmn, "windowed");
}
END_TEST

/* ---- mmapctl ------------------------------------------------------------------------------- */

static cJSON *parse_json_output(const char *out)
{
	cJSON *obj = cJSON_Parse(out);

	ck_assert_msg(obj != NULL, "mmapctl --json printed something that is not JSON: \"%s\"", out);
	return obj;
}

START_TEST(test_daemon_mmapctl_creates_stats_lists_and_deletes)
{
	char out[65536], path[PATH_MAX];
	cJSON *obj;
	const cJSON *e;
	bool seen_file = false, seen_anon = false;
	struct stat st;

	CTL(0, out, "create", "ctl-region", "64K");
	data_path(path, sizeof(path), "ctl-region");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 65536);

	CTL(0, out, "--json", "stat", "ctl-region");
	obj = parse_json_output(out);
	ck_assert_str_eq(test_json_str(obj, "name"), "ctl-region");
	ck_assert_uint_eq(test_json_u64(obj, "size"), 65536);
	ck_assert(!test_json_bool(obj, "anonymous"));
	ck_assert_uint_eq(test_json_u64(obj, "grants"), 0);
	ck_assert_uint_eq(test_json_u64(obj, "clients"), 0);
	cJSON_Delete(obj);

	CTL(0, out, "--json", "create", "ctl-anon", "4K", "--anonymous");
	obj = parse_json_output(out);
	ck_assert_str_eq(test_json_str(obj, "name"), "ctl-anon");
	ck_assert_uint_eq(test_json_u64(obj, "size"), 4096);
	ck_assert(test_json_bool(obj, "anonymous"));
	cJSON_Delete(obj);

	CTL(0, out, "--json", "list");
	obj = parse_json_output(out);
	ck_assert(cJSON_IsArray(obj));
	cJSON_ArrayForEach(e, obj) {
		const char *name = test_json_str(e, "name");

		if (strcmp(name, "ctl-region") == 0) {
			seen_file = true;
			ck_assert(!test_json_bool(e, "anonymous"));
			ck_assert_uint_eq(test_json_u64(e, "size"), 65536);
		} else if (strcmp(name, "ctl-anon") == 0) {
			seen_anon = true;
			ck_assert(test_json_bool(e, "anonymous"));
		}
	}
	ck_assert(seen_file && seen_anon);
	cJSON_Delete(obj);

	/* The human table names both too. */
	CTL(0, out, "list");
	ck_assert_ptr_nonnull(strstr(out, "ctl-region"));
	ck_assert_ptr_nonnull(strstr(out, "ctl-anon"));

	CTL(0, out, "--json", "status");
	obj = parse_json_output(out);
	ck_assert_uint_eq(test_json_u64(obj, "pid"), (uint64_t)dmn.pid);
	ck_assert_uint_eq(test_json_u64(obj, "protocol"), 1);
	cJSON_Delete(obj);

	/* Refusals: exit status 1. Usage errors: 2. */
	CTL(1, out, "create", "ctl-region", "64K");
	CTL(1, out, "stat", "no-such-region");
	CTL(1, out, "delete", "no-such-region");
	CTL(1, out, "stat", "../etc");
	CTL(2, out, "resize", "ctl-region", "0");
	CTL(2, out, "no-such-command");

	CTL(0, out, "delete", "ctl-region");
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	CTL(1, out, "stat", "ctl-region");
	CTL(0, out, "--json", "delete", "ctl-anon");
	obj = parse_json_output(out);
	ck_assert_str_eq(test_json_str(obj, "name"), "ctl-anon");
	cJSON_Delete(obj);
	CTL(1, out, "stat", "ctl-anon");
}
END_TEST

/* ---- list pagination ----------------------------------------------------------------------- */

START_TEST(test_daemon_list_pages_with_limit_and_after)
{
	struct test_conn c;
	struct name_list l;
	char name[32];
	size_t found = 0;

	test_conn_open_hello(&c, &dmn);
	for (int i = 0; i < 25; i++) {
		snprintf(name, sizeof(name), "page-%02d", i);
		conn_create(&c, name, 4096, i % 5 == 0);
	}
	list_all(&c, 10, &l);
	ck_assert_uint_ge(l.pages, 3);
	for (int i = 0; i < 25; i++) {
		snprintf(name, sizeof(name), "page-%02d", i);
		ck_assert_msg(name_list_has(&l, name), "%s missing from the paged list", name);
		found++;
	}
	ck_assert_uint_eq(found, 25);
	name_list_free(&l);

	/* "after" is exclusive and need not be an existing name. */
	{
		cJSON *reply = conn_list(&c, "page-09", 3);
		const cJSON *regions = cJSON_GetObjectItemCaseSensitive(reply, "regions");

		ck_assert_int_eq(cJSON_GetArraySize(regions), 3);
		ck_assert_str_eq(test_json_str(cJSON_GetArrayItem(regions, 0), "name"), "page-10");
		ck_assert_str_eq(test_json_str(cJSON_GetArrayItem(regions, 2), "name"), "page-12");
		ck_assert(test_json_bool(reply, "more"));
		cJSON_Delete(reply);
		reply = conn_list(&c, "page-09x", 1);
		regions = cJSON_GetObjectItemCaseSensitive(reply, "regions");
		ck_assert_str_eq(test_json_str(cJSON_GetArrayItem(regions, 0), "name"), "page-10");
		cJSON_Delete(reply);
	}
	for (int i = 0; i < 25; i++) {
		snprintf(name, sizeof(name), "page-%02d", i);
		conn_delete(&c, name);
	}
	test_conn_close(&c);
}
END_TEST

START_TEST(test_daemon_list_of_more_regions_than_one_page_spans_pages)
{
	/* More regions than the largest page (1000), with long names so that a full page would
	 * not fit max_frame either: the daemon must end pages early and say "more". */
	enum { N = 1100 };
	struct test_conn c;
	struct name_list l;
	char name[128], *out;
	size_t ours = 0;
	cJSON *arr;
	int rc;

	test_conn_open_hello(&c, &dmn);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "bulk-%04d-padding-padding-padding-padding-padding", i);
		conn_create(&c, name, 1, false);
	}
	list_all(&c, 0, &l);
	ck_assert_uint_ge(l.pages, 2);
	for (size_t i = 0; i < l.count; i++)
		if (strncmp(l.names[i], "bulk-", 5) == 0)
			ours++;
	ck_assert_uint_eq(ours, N);
	name_list_free(&l);

	/* The client library follows the pages: mmapctl lists them all. */
	out = malloc(1 << 20);
	ck_assert(out != NULL);
	rc = test_run_ctl(&dmn, out, 1 << 20, "--json", "list", (char *)NULL);
	ck_assert_int_eq(rc, 0);
	arr = cJSON_Parse(out);
	ck_assert(cJSON_IsArray(arr));
	ck_assert_int_ge(cJSON_GetArraySize(arr), N);
	cJSON_Delete(arr);
	free(out);

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "bulk-%04d-padding-padding-padding-padding-padding", i);
		conn_delete(&c, name);
	}
	test_conn_close(&c);
}
END_TEST

/* ---- clients that die ---------------------------------------------------------------------- */

START_TEST(test_daemon_client_killed_mid_request_leaves_daemon_serving)
{
	struct test_proc p;
	struct test_conn other;
	cJSON *reply;

	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "clients", 1), 1);
	test_conn_open_hello(&other, &dmn);
	test_proc_spawn_client(&p, &dmn, "hang-mid-request", (char *)NULL);
	test_proc_expect_line(&p, "ready");
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "clients"), 3);
	test_proc_kill(&p, SIGKILL);
	ck_assert_int_eq(test_proc_wait(&p), 128 + SIGKILL);
	/* The client that was connected all along is served, and the dead one is gone. */
	reply = test_conn_request_op(&other, "ping");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "clients", 2), 2);
	test_conn_close(&other);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "clients", 1), 1);
	test_daemon_assert_alive(&dmn);
}
END_TEST

START_TEST(test_daemon_client_killed_before_reading_its_create_reply_leaves_no_grant)
{
	struct test_proc p;
	const cJSON *region;
	cJSON *st;

	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
	test_proc_spawn_client(&p, &dmn, "hang-after-create", "orphan-create", "1048576", (char *)NULL);
	test_proc_expect_line(&p, "ready");
	test_proc_kill(&p, SIGKILL);
	ck_assert_int_eq(test_proc_wait(&p), 128 + SIGKILL);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "clients", 1), 1);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
	/* Whether the creation finished before the daemon saw the hang-up is a race; if the
	 * region exists, it is whole and nobody holds it. */
	{
		struct test_conn c;
		cJSON *req = cJSON_CreateObject(), *reply;

		test_conn_open_hello(&c, &dmn);
		cJSON_AddStringToObject(req, "op", "stat");
		cJSON_AddStringToObject(req, "name", "orphan-create");
		reply = test_conn_request(&c, req);
		test_conn_close(&c);
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok"))) {
			cJSON_Delete(reply);
			st = test_daemon_stat(&dmn, "orphan-create", &region);
			ck_assert_uint_eq(test_json_u64(region, "size"), 1048576);
			ck_assert_uint_eq(test_json_u64(region, "grants"), 0);
			cJSON_Delete(st);
			test_daemon_delete(&dmn, "orphan-create");
		} else {
			test_assert_error(reply, "ENOENT", ENOENT);
			cJSON_Delete(reply);
		}
	}
	test_daemon_assert_alive(&dmn);
}
END_TEST

START_TEST(test_daemon_client_killed_holding_grants_releases_them)
{
	struct test_proc a, b;
	const cJSON *region;
	cJSON *st;
	uint64_t grants0 = test_daemon_wait_status(&dmn, "grants", 0);

	ck_assert_uint_eq(grants0, 0);
	CLIENT_OK("size=65536\n", "create", "held", "65536");
	test_proc_spawn_client(&a, &dmn, "hold", "held", "rw", "3", (char *)NULL);
	test_proc_spawn_client(&b, &dmn, "hold", "held", "ro", "2", (char *)NULL);
	test_proc_expect_line(&a, "ready");
	test_proc_expect_line(&b, "ready");

	st = test_daemon_stat(&dmn, "held", &region);
	ck_assert_uint_eq(test_json_u64(region, "grants"), 5);
	ck_assert_uint_eq(test_json_u64(region, "clients"), 2);
	cJSON_Delete(st);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "grants"), 5);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "bytes_granted"), 5 * 65536);

	test_proc_kill(&a, SIGKILL);
	ck_assert_int_eq(test_proc_wait(&a), 128 + SIGKILL);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 2), 2);
	st = test_daemon_stat(&dmn, "held", &region);
	ck_assert_uint_eq(test_json_u64(region, "grants"), 2);
	ck_assert_uint_eq(test_json_u64(region, "clients"), 1);
	cJSON_Delete(st);

	test_proc_kill(&b, SIGKILL);
	ck_assert_int_eq(test_proc_wait(&b), 128 + SIGKILL);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "bytes_granted"), 0);
	st = test_daemon_stat(&dmn, "held", &region);
	ck_assert_uint_eq(test_json_u64(region, "grants"), 0);
	ck_assert_uint_eq(test_json_u64(region, "clients"), 0);
	cJSON_Delete(st);

	/* The region outlives its holders, and the daemon serves the next client. */
	CLIENT_OK("\\x00\\x00\\x00\\x00\n", "read", "held", "0", "4");
	test_daemon_delete(&dmn, "held");
}
END_TEST

START_TEST(test_daemon_delete_keeps_existing_mappings)
{
	struct test_proc writer;
	char out[512];

	CLIENT_OK("size=4096\n", "create", "doomed", "4096");
	test_proc_spawn_client(&writer, &dmn, "writer", "doomed", (char *)NULL);
	test_proc_expect_line(&writer, "ready");
	test_daemon_delete(&dmn, "doomed");
	/* The name is gone at once... */
	ck_assert_int_eq(test_run_client(&dmn, out, sizeof(out), "read", "doomed", "0", "1",
	                                 (char *)NULL), 1);
	/* ...but the holder's mapping still works, and its grant still counts until it goes. */
	test_proc_writeline(&writer, "0 still-mapped");
	test_proc_expect_line(&writer, "ok");
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "grants"), 1);
	ck_assert_int_eq(test_proc_wait(&writer), 0);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
}
END_TEST

/* ---- grants and descriptors ---------------------------------------------------------------- */

START_TEST(test_daemon_open_existing_with_create_reports_real_size)
{
	struct test_conn c;
	cJSON *req, *reply;
	const cJSON *region;

	test_conn_open_hello(&c, &dmn);
	conn_create(&c, "sized", 8192, false);
	req = cJSON_Parse("{\"op\":\"open\",\"name\":\"sized\",\"mode\":\"rw\",\"create\":true,"
	                  "\"size\":4096}");
	reply = test_conn_request(&c, req);
	test_assert_ok(reply);
	ck_assert(!test_json_bool(reply, "created"));
	ck_assert_str_eq(test_json_str(reply, "mode"), "rw");
	region = cJSON_GetObjectItemCaseSensitive(reply, "region");
	ck_assert_str_eq(test_json_str(region, "name"), "sized");
	ck_assert_uint_eq(test_json_u64(region, "size"), 8192);
	ck_assert(!test_json_bool(region, "anonymous"));
	{
		int fd = test_conn_take_fd(&c);
		struct stat st;

		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert_int_eq(st.st_size, 8192);
		close(fd);
	}
	cJSON_Delete(reply);
	conn_delete(&c, "sized");
	test_conn_close(&c);
}
END_TEST

static int open_fd(struct test_conn *c, const char *name, const char *mode, uint64_t *ret_handle)
{
	cJSON *req = cJSON_CreateObject(), *reply;
	int fd;

	cJSON_AddStringToObject(req, "op", "open");
	cJSON_AddStringToObject(req, "name", name);
	cJSON_AddStringToObject(req, "mode", mode);
	reply = test_conn_request(c, req);
	test_assert_ok(reply);
	ck_assert_uint_eq(test_json_u64(reply, "fds"), 1);
	ck_assert_str_eq(test_json_str(reply, "mode"), mode);
	ck_assert(!test_json_bool(reply, "created"));
	*ret_handle = test_json_u64(reply, "handle");
	fd = test_conn_take_fd(c);
	cJSON_Delete(reply);
	return fd;
}

START_TEST(test_daemon_grants_are_separate_opens_with_the_right_access)
{
	struct test_conn c;
	uint64_t h[3];
	int ro, rw, cow;

	test_conn_open_hello(&c, &dmn);
	conn_create(&c, "modes", 4096, false);
	ro = open_fd(&c, "modes", "ro", &h[0]);
	rw = open_fd(&c, "modes", "rw", &h[1]);
	cow = open_fd(&c, "modes", "cow", &h[2]);
	ck_assert(h[0] != h[1] && h[1] != h[2] && h[0] != h[2]);
	ck_assert_int_eq(fcntl(ro, F_GETFL) & O_ACCMODE, O_RDONLY);
	ck_assert_int_eq(fcntl(rw, F_GETFL) & O_ACCMODE, O_RDWR);
	ck_assert_int_eq(fcntl(cow, F_GETFL) & O_ACCMODE, O_RDONLY);
	/* Received close-on-exec. */
	ck_assert(fcntl(ro, F_GETFD) & FD_CLOEXEC);
	/* Each its own open file description: moving one offset moves no other. */
	ck_assert_int_eq(lseek(rw, 1000, SEEK_SET), 1000);
	ck_assert_int_eq(lseek(ro, 0, SEEK_CUR), 0);
	ck_assert_int_eq(lseek(cow, 0, SEEK_CUR), 0);
	close(ro);
	close(rw);
	close(cow);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "grants"), 3);
	test_conn_close(&c);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
	test_daemon_delete(&dmn, "modes");
}
END_TEST

START_TEST(test_daemon_hello_and_status_report_the_documented_fields)
{
	struct test_conn c;
	cJSON *reply;
	const cJSON *limits, *features, *f;
	static const char *const want[] = { "file", "anonymous", "cow", "window", "sparse" };

	test_conn_open(&c, &dmn);
	reply = test_conn_hello_version(&c, 5);
	test_assert_ok(reply);
	/* The lower of the two versions. */
	ck_assert_uint_eq(test_json_u64(reply, "version"), 1);
	ck_assert_str_eq(test_json_str(reply, "server"), "mmapd 0.1.0");
	features = cJSON_GetObjectItemCaseSensitive(reply, "features");
	ck_assert(cJSON_IsArray(features));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		bool found = false;

		cJSON_ArrayForEach(f, features)
			if (cJSON_IsString(f) && strcmp(f->valuestring, want[i]) == 0)
				found = true;
		ck_assert_msg(found, "feature \"%s\" missing from hello", want[i]);
	}
	limits = cJSON_GetObjectItemCaseSensitive(reply, "limits");
	ck_assert_uint_eq(test_json_u64(limits, "max_frame"), 65536);
	ck_assert_uint_eq(test_json_u64(limits, "max_clients"), 1024);
	ck_assert_uint_eq(test_json_u64(limits, "max_grants_per_client"), 1024);
	ck_assert_uint_eq(test_json_u64(limits, "max_fds_in_flight"), 64);
	ck_assert_uint_eq(test_json_u64(limits, "max_region_size"), 1099511627776ULL);
	ck_assert_uint_eq(test_json_u64(limits, "max_name"), 255);
	cJSON_Delete(reply);

	reply = test_conn_request_op(&c, "status");
	test_assert_ok(reply);
	ck_assert_str_eq(test_json_str(reply, "version"), "0.1.0");
	ck_assert_uint_eq(test_json_u64(reply, "protocol"), 1);
	ck_assert_uint_eq(test_json_u64(reply, "pid"), (uint64_t)dmn.pid);
	ck_assert_uint_ge(test_json_u64(reply, "clients"), 1);
	ck_assert_uint_ge(test_json_u64(reply, "open_fds"), 3);
	ck_assert(!cJSON_HasObjectItem(reply, "fds"));
	(void)test_json_u64(reply, "uptime_ms");
	(void)test_json_u64(reply, "regions");
	(void)test_json_u64(reply, "anonymous_regions");
	(void)test_json_u64(reply, "grants");
	(void)test_json_u64(reply, "bytes_granted");
	limits = cJSON_GetObjectItemCaseSensitive(reply, "limits");
	ck_assert_uint_eq(test_json_u64(limits, "max_frame"), 65536);
	cJSON_Delete(reply);
	test_conn_close(&c);
}
END_TEST

/* Receives frames until the replies to both ids are in (any order); no event may come. */
static void recv_two(struct test_conn *c, uint64_t id1, cJSON **ret1, uint64_t id2, cJSON **ret2)
{
	*ret1 = *ret2 = NULL;
	while (*ret1 == NULL || *ret2 == NULL) {
		cJSON *obj = test_conn_recv_frame(c);
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");

		ck_assert_msg(cJSON_IsNumber(id), "expected a reply, got %s", cJSON_PrintUnformatted(obj));
		if (id->valuedouble == (double)id1 && *ret1 == NULL)
			*ret1 = obj;
		else if (id->valuedouble == (double)id2 && *ret2 == NULL)
			*ret2 = obj;
		else
			ck_abort_msg("unexpected reply %s", cJSON_PrintUnformatted(obj));
	}
}

START_TEST(test_daemon_stat_sent_during_creation_waits_for_it)
{
	/* A create and a stat of the same name in one write: the stat must see the region the
	 * create made (protocol.md: requests naming a region being created wait for it). */
	struct test_conn c;
	cJSON *create, *statr;
	const cJSON *region;
	char path[PATH_MAX];

	test_conn_open_hello(&c, &dmn);
	{
		static const char a[] = "{\"id\":10,\"op\":\"open\",\"name\":\"in-the-making\",\"mode\":\"rw\","
		                        "\"create\":true,\"size\":33554432}";
		static const char b[] = "{\"id\":11,\"op\":\"stat\",\"name\":\"in-the-making\"}";
		uint8_t buf[256];
		size_t la = sizeof(a) - 1, lb = sizeof(b) - 1;

		buf[0] = 0; buf[1] = 0; buf[2] = (uint8_t)(la >> 8); buf[3] = (uint8_t)la;
		memcpy(buf + 4, a, la);
		buf[4 + la] = 0; buf[5 + la] = 0; buf[6 + la] = (uint8_t)(lb >> 8); buf[7 + la] = (uint8_t)lb;
		memcpy(buf + 8 + la, b, lb);
		ck_assert_int_eq(test_conn_send_raw(&c, buf, 8 + la + lb), 0);
	}
	recv_two(&c, 10, &create, 11, &statr);
	test_assert_ok(create);
	ck_assert(test_json_bool(create, "created"));
	test_assert_ok(statr);
	region = cJSON_GetObjectItemCaseSensitive(statr, "region");
	ck_assert_str_eq(test_json_str(region, "name"), "in-the-making");
	ck_assert_uint_eq(test_json_u64(region, "size"), 33554432);
	cJSON_Delete(create);
	cJSON_Delete(statr);
	/* The descriptor rode with the create reply, whenever it came. */
	test_conn_close(&c);
	/* Created whole: the file is in place at its full size, no temporary left beside it. */
	data_path(path, sizeof(path), "in-the-making");
	{
		struct stat st;

		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_int_eq(st.st_size, 33554432);
	}
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
	test_daemon_delete(&dmn, "in-the-making");
}
END_TEST

START_TEST(test_daemon_sparse_region_reserves_no_blocks_and_others_do)
{
	char path[PATH_MAX];
	struct stat st;

	CLIENT_OK("size=4194304\n", "create", "reserved", "4194304");
	CLIENT_OK("size=4194304\n", "create", "sparse-one", "4194304", "sparse");
	data_path(path, sizeof(path), "reserved");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 4194304);
	ck_assert_msg((uint64_t)st.st_blocks * 512 >= 4194304,
	              "a non-sparse region must have its blocks reserved (posix_fallocate): %lld "
	              "blocks of 512", (long long)st.st_blocks);
	data_path(path, sizeof(path), "sparse-one");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 4194304);
	ck_assert_msg((uint64_t)st.st_blocks * 512 < 4194304,
	              "a sparse region must not reserve its blocks: %lld blocks of 512",
	              (long long)st.st_blocks);
	test_daemon_delete(&dmn, "reserved");
	test_daemon_delete(&dmn, "sparse-one");
}
END_TEST

START_TEST(test_daemon_anonymous_region_is_sealed_against_shrinking)
{
	struct test_conn c;
	uint64_t h1, h2;
	int a, b, seals;

	test_conn_open_hello(&c, &dmn);
	conn_create(&c, "anon-sealed", 65536, true);
	a = open_fd(&c, "anon-sealed", "rw", &h1);
	b = open_fd(&c, "anon-sealed", "rw", &h2);
	seals = fcntl(a, F_GET_SEALS);
	ck_assert_msg(seals >= 0, "F_GET_SEALS: %s (not a memfd?)", strerror(errno));
	ck_assert_msg(seals & F_SEAL_SHRINK, "anonymous region without F_SEAL_SHRINK (seals 0x%x)",
	              (unsigned)seals);
	ck_assert_int_eq(ftruncate(a, 4096), -1);
	ck_assert_int_eq(errno, EPERM);
	/* Two grants, two open file descriptions of the same memory. */
	ck_assert_int_eq(lseek(a, 777, SEEK_SET), 777);
	ck_assert_int_eq(lseek(b, 0, SEEK_CUR), 0);
	ck_assert_int_eq(pwrite(a, "memfd", 5, 60000), 5);
	{
		char buf[5];

		ck_assert_int_eq(pread(b, buf, 5, 60000), 5);
		ck_assert_int_eq(memcmp(buf, "memfd", 5), 0);
	}
	/* A client cannot seal it further: it would lock out the other writers. */
	ck_assert_msg(seals & F_SEAL_SEAL, "anonymous region without F_SEAL_SEAL (seals 0x%x)",
	              (unsigned)seals);
	ck_assert_int_eq(fcntl(a, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
	ck_assert_int_eq(errno, EPERM);
	close(a);
	close(b);
	conn_delete(&c, "anon-sealed");
	test_conn_close(&c);
}
END_TEST

START_TEST(test_daemon_list_shows_planted_files_with_valid_names_only)
{
	static const char *const planted[] = { "planted-valid", ".hidden-junk", "bad name", "-dash" };
	struct test_conn c;
	struct name_list l;
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(planted) / sizeof(planted[0]); i++) {
		int fd;

		data_path(path, sizeof(path), planted[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
		ck_assert_int_eq(ftruncate(fd, 12288), 0);
		close(fd);
	}
	test_conn_open_hello(&c, &dmn);
	list_all(&c, 0, &l);
	ck_assert(name_list_has(&l, "planted-valid"));
	ck_assert(!name_list_has(&l, ".hidden-junk"));
	ck_assert(!name_list_has(&l, "bad name"));
	ck_assert(!name_list_has(&l, "-dash"));
	name_list_free(&l);
	test_conn_close(&c);
	{
		const cJSON *region;
		cJSON *st = test_daemon_stat(&dmn, "planted-valid", &region);

		ck_assert_uint_eq(test_json_u64(region, "size"), 12288);
		ck_assert(!test_json_bool(region, "anonymous"));
		cJSON_Delete(st);
	}
	test_daemon_delete(&dmn, "planted-valid");
	for (size_t i = 1; i < sizeof(planted) / sizeof(planted[0]); i++) {
		data_path(path, sizeof(path), planted[i]);
		ck_assert_int_eq(unlink(path), 0);
	}
}
END_TEST

START_TEST(test_daemon_fd_count_returns_to_baseline_after_clients_exit)
{
	struct test_proc holders[3];
	uint64_t base;

	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "clients", 1), 1);
	base = test_daemon_status_u64(&dmn, "open_fds");

	CLIENT_OK("size=65536\n", "create", "fd-file", "65536");
	CLIENT_OK("size=65536\n", "create", "fd-anon", "65536", "anon");
	CLIENT_OK("ok\n", "write", "fd-file", "0", "x");
	CLIENT_OK("cow:y\nro:x\n", "cow", "fd-file", "0", "y");
	CLIENT_OK("offset=5 length=5\n\\x00\\x00\\x00\\x00\\x00\n", "window", "fd-anon", "5", "5");
	test_proc_spawn_client(&holders[0], &dmn, "hold", "fd-file", "rw", "4", (char *)NULL);
	test_proc_spawn_client(&holders[1], &dmn, "hold", "fd-anon", "ro", "4", (char *)NULL);
	test_proc_spawn_client(&holders[2], &dmn, "hang-mid-request", (char *)NULL);
	for (int i = 0; i < 3; i++)
		test_proc_expect_line(&holders[i], "ready");
	ck_assert_uint_gt(test_daemon_status_u64(&dmn, "open_fds"), base);
	for (int i = 0; i < 3; i++) {
		test_proc_kill(&holders[i], SIGKILL);
		ck_assert_int_eq(test_proc_wait(&holders[i]), 128 + SIGKILL);
	}
	test_daemon_delete(&dmn, "fd-file");
	test_daemon_delete(&dmn, "fd-anon");
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "clients", 1), 1);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "open_fds", base), base);
}
END_TEST

/* Runs last in the shared daemon's test case. */
START_TEST(test_daemon_fd_count_back_to_suite_baseline_once_everything_is_gone)
{
	delete_all_regions(&dmn);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "clients", 1), 1);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "regions"), 0);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "open_fds", suite_fd_baseline), suite_fd_baseline);
}
END_TEST

/* ---- the daemon's life cycle (each test starts its own) ------------------------------------- */

START_TEST(test_daemon_sigterm_exits_zero_and_clients_get_shutdown_event)
{
	struct test_daemon d;
	struct test_conn a, b, early;
	struct test_proc writer;
	cJSON *ev, *reply;
	int st, r;

	test_daemon_start(&d, NULL);
	test_conn_open_hello(&a, &d);
	test_conn_open_hello(&b, &d);
	test_conn_open(&early, &d);
	reply = test_conn_request_text(&b, "{\"id\":2,\"op\":\"open\",\"name\":\"busy\",\"mode\":\"rw\","
	                                   "\"create\":true,\"size\":4096}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	test_proc_spawn_client(&writer, &d, "writer", "busy", (char *)NULL);
	test_proc_expect_line(&writer, "ready");

	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	{
		struct test_conn *said_hello[] = { &a, &b };

		for (size_t i = 0; i < 2; i++) {
			const cJSON *msg;

			ev = test_conn_recv_frame(said_hello[i]);
			ck_assert_msg(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(ev, "event")) &&
			              strcmp(test_json_str(ev, "event"), "shutdown") == 0,
			              "expected the shutdown event, got %s", cJSON_PrintUnformatted(ev));
			ck_assert(!cJSON_HasObjectItem(ev, "id"));
			msg = cJSON_GetObjectItemCaseSensitive(ev, "message");
			ck_assert(cJSON_IsString(msg) && msg->valuestring[0] != '\0');
			cJSON_Delete(ev);
			test_conn_expect_eof(said_hello[i], TEST_WAIT_MS);
		}
	}
	/* A connection that never said hello is closed too (with the shutdown event, if any). */
	r = test_conn_recv(&early, TEST_WAIT_MS, &ev);
	if (r == 1) {
		ck_assert_str_eq(test_json_str(ev, "event"), "shutdown");
		cJSON_Delete(ev);
		test_conn_expect_eof(&early, TEST_WAIT_MS);
	} else {
		ck_assert_msg(r == 0 || r == -ECONNRESET, "pre-hello connection: %s", strerror(-r));
	}
	test_conn_close(&a);
	test_conn_close(&b);
	test_conn_close(&early);

	st = test_wait_pid(d.pid, TEST_WAIT_MS);
	ck_assert_msg(st != -1, "mmapd still running %d ms after SIGTERM", TEST_WAIT_MS);
	d.pid = 0;
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mmapd exit status 0x%x after SIGTERM",
	              (unsigned)st);

	/* A client keeps its mapping when the daemon is gone. */
	test_proc_writeline(&writer, "0 after-the-daemon");
	test_proc_expect_line(&writer, "ok");
	ck_assert_int_eq(test_proc_wait(&writer), 0);
	{
		char path[PATH_MAX], buf[18];
		int fd;

		snprintf(path, sizeof(path), "%s/busy", d.data);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		ck_assert(fd >= 0);
		ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
		ck_assert_int_eq(memcmp(buf, "after-the-daemon", 16), 0);
		close(fd);
	}
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_daemon_refuses_to_start_on_a_socket_another_daemon_listens_on)
{
	struct test_daemon d;
	char tmpl[TEST_PATH_MAX], data2[PATH_MAX];
	cJSON *status;
	pid_t second;
	int st;

	test_daemon_start(&d, NULL);
	test_mkdtemp(tmpl, sizeof(tmpl));
	snprintf(data2, sizeof(data2), "%s/data", tmpl);
	ck_assert_int_eq(mkdir(data2, 0700), 0);

	second = test_daemon_spawn(d.sock, data2, NULL);
	st = test_wait_pid(second, TEST_WAIT_MS);
	if (st == -1) {
		kill(second, SIGKILL);
		waitpid(second, NULL, 0);
	}
	test_rmtree(tmpl);
	ck_assert_msg(st != -1, "a second mmapd on a socket in use kept running");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0,
	              "a second mmapd on a socket in use must exit with a failure status (0x%x)",
	              (unsigned)st);

	/* The first one still owns the socket. */
	status = test_daemon_status(&d);
	ck_assert_uint_eq(test_json_u64(status, "pid"), (uint64_t)d.pid);
	cJSON_Delete(status);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_daemon_replaces_a_stale_socket_file)
{
	struct test_daemon d;
	struct stat st;
	cJSON *status;
	const cJSON *region;
	int fd, w;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "survivor", 4096, false);
	/* A daemon killed outright leaves its socket file behind, with nobody listening. */
	ck_assert_int_eq(kill(d.pid, SIGKILL), 0);
	w = test_wait_pid(d.pid, TEST_WAIT_MS);
	ck_assert(w != -1 && WIFSIGNALED(w));
	d.pid = 0;
	ck_assert_int_eq(stat(d.sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		strcpy(sa.sun_path, d.sock);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
		ck_assert_int_eq(errno, ECONNREFUSED);
		close(fd);
	}

	test_daemon_restart(&d);
	status = test_daemon_status(&d);
	ck_assert_uint_eq(test_json_u64(status, "pid"), (uint64_t)d.pid);
	cJSON_Delete(status);
	/* The file region outlived the daemon. */
	cJSON_Delete(test_daemon_stat(&d, "survivor", &region));
	test_daemon_stop(&d);
}
END_TEST

/* ---- the index of the data directory: changes made by hand --------------------------------- */

/* Creates a file of 4096 bytes at dir/name, as an administrator would. */
static void place_file(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	close(fd);
}

/* The names of the first page above after, with limit 1000, as one string "a,b,c". */
static void list_page_names(struct test_conn *c, const char *after, char *buf, size_t size)
{
	cJSON *reply = conn_list(c, after, 1000);
	const cJSON *r;
	size_t len = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(reply, "regions"))
		len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "," : "",
		                        test_json_str(r, "name"));
	ck_assert_uint_lt(len, size);
	cJSON_Delete(reply);
}

/*
 * list and status answer from an index of the data directory kept by inotify; a change made
 * in the directory before the request was sent is in the answer, with no wait.
 */
START_TEST(test_daemon_list_sees_files_placed_renamed_and_removed_by_hand_at_once)
{
	struct test_daemon d;
	struct test_conn c;
	char names[4096], from[PATH_MAX], to[PATH_MAX];

	test_daemon_start(&d, NULL);
	test_conn_open_hello(&c, &d);
	list_page_names(&c, NULL, names, sizeof(names));
	ck_assert_str_eq(names, "");

	place_file(d.data, "hand-b");
	list_page_names(&c, NULL, names, sizeof(names));
	ck_assert_str_eq(names, "hand-b");
	ck_assert_uint_eq(test_daemon_status_u64(&d, "regions"), 1);

	/* Hidden names, directories and symlinks stay out, as with a scan of the directory. */
	place_file(d.data, ".hand-hidden");
	snprintf(from, sizeof(from), "%s/hand-dir", d.data);
	ck_assert_int_eq(mkdir(from, 0700), 0);
	snprintf(from, sizeof(from), "%s/hand-link", d.data);
	ck_assert_int_eq(symlink("hand-b", from), 0);
	conn_create(&c, "hand-c", 4096, false);
	conn_create(&c, "hand-anon", 4096, true);
	list_page_names(&c, NULL, names, sizeof(names));
	ck_assert_str_eq(names, "hand-anon,hand-b,hand-c");
	ck_assert_uint_eq(test_daemon_status_u64(&d, "regions"), 3);

	/* Renamed into place (the usual way to publish a file), and renamed away. */
	snprintf(from, sizeof(from), "%s/.hand-hidden", d.data);
	snprintf(to, sizeof(to), "%s/hand-a", d.data);
	ck_assert_int_eq(rename(from, to), 0);
	snprintf(from, sizeof(from), "%s/hand-b", d.data);
	snprintf(to, sizeof(to), "%s/hand-d", d.data);
	ck_assert_int_eq(rename(from, to), 0);
	list_page_names(&c, NULL, names, sizeof(names));
	ck_assert_str_eq(names, "hand-a,hand-anon,hand-c,hand-d");
	list_page_names(&c, "hand-anon", names, sizeof(names));
	ck_assert_str_eq(names, "hand-c,hand-d");

	/* Removed by hand, and by the daemon. */
	snprintf(to, sizeof(to), "%s/hand-d", d.data);
	ck_assert_int_eq(unlink(to), 0);
	conn_delete(&c, "hand-c");
	conn_delete(&c, "hand-anon");
	list_page_names(&c, NULL, names, sizeof(names));
	ck_assert_str_eq(names, "hand-a");
	ck_assert_uint_eq(test_daemon_status_u64(&d, "regions"), 1);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/* Places file name of size bytes with mode in dir, by way of a hidden name renamed over it. */
static void replace_file(const char *dir, const char *name, off_t size, mode_t mode)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/.%s-new", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	ck_assert_msg(fd >= 0, "create %s: %s", tmp, strerror(errno));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(ftruncate(fd, size), 0);
	close(fd);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/* Takes and releases an exclusive lock of name on c; asserts it. */
static void lock_unlock(struct test_conn *c, const char *name)
{
	cJSON *reply = test_conn_callf(c, "{'op':'lock','name':'%s','offset':0,'length':8,"
	                                  "'mode':'exclusive','wait':false}", name);
	uint64_t lock;

	test_assert_ok(reply);
	lock = test_json_u64(reply, "lock");
	cJSON_Delete(reply);
	test_reply_ok(test_conn_callf(c, "{'op':'unlock','lock':%llu}", (unsigned long long)lock));
}

/* Opens name read-only on c and asserts that the grant is of the file at dir/name now. */
static void open_is_file_on_disk(struct test_conn *c, const char *dir, const char *name,
                                 uint64_t size)
{
	cJSON *reply = test_conn_callf(c, "{'op':'open','name':'%s','mode':'ro'}", name);
	const cJSON *region = cJSON_GetObjectItemCaseSensitive(reply, "region");
	char path[PATH_MAX];
	struct stat disk, granted;
	int fd;

	test_assert_ok(reply);
	ck_assert_uint_eq(test_json_u64(region, "size"), size);
	fd = test_conn_take_fd(c);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(stat(path, &disk), 0);
	ck_assert_int_eq(fstat(fd, &granted), 0);
	ck_assert_msg(granted.st_ino == disk.st_ino, "the grant of '%s' is of inode %lu, the file "
	              "on disk is %lu", name, (unsigned long)granted.st_ino,
	              (unsigned long)disk.st_ino);
	close(fd);
	test_reply_ok(test_conn_callf(c, "{'op':'close','handle':%llu}",
	                              (unsigned long long)test_json_u64(reply, "handle")));
	cJSON_Delete(reply);
}

/*
 * A lock (or change report, flush...) of a region nobody holds keeps it in the daemon's
 * lookup cache, so the next one does not go to the disk; the cache follows what is done to
 * the file by hand between two requests, with no wait: a file renamed over it, the name
 * renamed away, the file deleted, its mode widened on disk (tightened again at the next open).
 */
START_TEST(test_daemon_lookup_cache_follows_files_replaced_renamed_and_deleted_between_locks)
{
	struct test_daemon d;
	struct test_conn c;
	char from[PATH_MAX], to[PATH_MAX];
	struct stat st;

	test_daemon_start(&d, NULL);
	test_conn_open_hello(&c, &d);
	conn_create(&c, "lc", 4096, false);

	/* Replaced: the next lock and open are of the new file. */
	lock_unlock(&c, "lc");
	replace_file(d.data, "lc", 8192, 0600);
	lock_unlock(&c, "lc");
	open_is_file_on_disk(&c, d.data, "lc", 8192);

	/* Renamed away: the name is gone, the new name works. */
	lock_unlock(&c, "lc");
	snprintf(from, sizeof(from), "%s/lc", d.data);
	snprintf(to, sizeof(to), "%s/lc2", d.data);
	ck_assert_int_eq(rename(from, to), 0);
	test_reply_error(test_conn_callf(&c, "{'op':'lock','name':'lc','offset':0,'length':8,"
	                                 "'mode':'exclusive','wait':false}"),
	                 "ENOENT", ENOENT, NULL);
	lock_unlock(&c, "lc2");

	/* Deleted. */
	ck_assert_int_eq(unlink(to), 0);
	test_reply_error(test_conn_callf(&c, "{'op':'lock','name':'lc2','offset':0,'length':8,"
	                                 "'mode':'exclusive','wait':false}"),
	                 "ENOENT", ENOENT, NULL);

	/* Widened on disk: taken over again at the next open, as if it had not been cached. */
	conn_create(&c, "lm", 4096, false);
	lock_unlock(&c, "lm");
	snprintf(from, sizeof(from), "%s/lm", d.data);
	ck_assert_int_eq(chmod(from, 0666), 0);
	open_is_file_on_disk(&c, d.data, "lm", 4096);
	ck_assert_int_eq(stat(from, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);

	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

/*
 * The attack on the cache: nobody locks a world-readable region (which the daemon then keeps
 * as an idle region with its descriptor), the administrator deletes the file, and nobody
 * tries to get at the deleted data through the daemon. It gets ENOENT at once.
 */
START_TEST(test_daemon_lookup_cache_gives_nobody_no_file_deleted_behind_its_back)
{
	struct test_daemon d;
	struct test_conn root, nobody;
	char path[PATH_MAX];

	if (!test_is_root())
		return;
	test_daemon_start(&d, "{\"socket_mode\": \"0666\"}");
	test_daemon_open_dirs(&d);
	replace_file(d.data, "pub", 4096, 0644);
	test_conn_open_hello_as(&nobody, &d, TEST_NOBODY, TEST_NOBODY);
	lock_unlock(&nobody, "pub");
	snprintf(path, sizeof(path), "%s/pub", d.data);
	ck_assert_int_eq(unlink(path), 0);
	test_reply_error(test_conn_callf(&nobody, "{'op':'open','name':'pub','mode':'ro'}"),
	                 "ENOENT", ENOENT, NULL);
	test_reply_error(test_conn_callf(&nobody, "{'op':'lock','name':'pub','offset':0,"
	                                 "'length':8,'mode':'shared','wait':false}"),
	                 "ENOENT", ENOENT, NULL);
	/* And a file put back under the name is the one granted. */
	replace_file(d.data, "pub", 12288, 0644);
	test_conn_open_hello(&root, &d);
	open_is_file_on_disk(&root, d.data, "pub", 12288);
	test_conn_close(&root);
	test_conn_close(&nobody);
	test_daemon_stop(&d);
}
END_TEST

/* Waits up to 30 s for status's regions to be want. */
static void wait_regions(const struct test_daemon *d, uint64_t want)
{
	int64_t deadline = test_now_ms() + 30000;
	uint64_t v;

	while ((v = test_daemon_status_u64(d, "regions")) != want && test_now_ms() < deadline)
		usleep(20000);
	ck_assert_uint_eq(v, want);
}

/*
 * More changes than the kernel queues for inotify (fs.inotify.max_queued_events, 16384 by
 * default) while the daemon is stopped: the queue overflows, the daemon rescans the directory
 * on its thread pool, and list and status are right again once the scan is in.
 */
START_TEST(test_daemon_list_is_right_again_after_the_directory_events_overflow)
{
	struct test_daemon d;
	struct test_conn c;
	struct name_list l;
	char name[32], path[PATH_MAX];
	long queued = 16384;
	int n, removed = 100;
	FILE *f;

	f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
	if (f) {
		if (fscanf(f, "%ld", &queued) != 1)
			queued = 16384;
		fclose(f);
	}
	if (queued > 100000)
		return;   /* too many files to make here */
	n = (int)queued + 1000;
	test_daemon_start(&d, NULL);
	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "ov%06d", i);
		place_file(d.data, name);
	}
	for (int i = 0; i < removed; i++) {
		snprintf(path, sizeof(path), "%s/ov%06d", d.data, i * 7);
		ck_assert_int_eq(unlink(path), 0);
	}
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	wait_regions(&d, (uint64_t)(n - removed));
	test_conn_open_hello(&c, &d);
	list_all(&c, 0, &l);
	ck_assert_uint_eq(l.count, (uint64_t)(n - removed));
	ck_assert_str_eq(l.names[0], "ov000001");
	name_list_free(&l);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

static Suite *daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("daemon");
	TCase *life = tcase_create("lifecycle");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_daemon_reader_process_sees_bytes_written_by_writer_process);
	tcase_add_test(tc, test_daemon_reader_mapping_sees_later_write_without_any_request);
	tcase_add_test(tc, test_daemon_ro_grant_cannot_be_mapped_writable);
	tcase_add_test(tc, test_daemon_cow_writes_stay_private);
	tcase_add_test(tc, test_daemon_anonymous_region_is_shared_between_processes_without_a_file);
	tcase_add_test(tc, test_daemon_window_at_odd_offset_reads_the_right_bytes);
	tcase_add_test(tc, test_daemon_mmapctl_creates_stats_lists_and_deletes);
	tcase_add_test(tc, test_daemon_list_pages_with_limit_and_after);
	tcase_add_test(tc, test_daemon_list_of_more_regions_than_one_page_spans_pages);
	tcase_add_test(tc, test_daemon_client_killed_mid_request_leaves_daemon_serving);
	tcase_add_test(tc, test_daemon_client_killed_before_reading_its_create_reply_leaves_no_grant);
	tcase_add_test(tc, test_daemon_client_killed_holding_grants_releases_them);
	tcase_add_test(tc, test_daemon_delete_keeps_existing_mappings);
	tcase_add_test(tc, test_daemon_open_existing_with_create_reports_real_size);
	tcase_add_test(tc, test_daemon_grants_are_separate_opens_with_the_right_access);
	tcase_add_test(tc, test_daemon_hello_and_status_report_the_documented_fields);
	tcase_add_test(tc, test_daemon_stat_sent_during_creation_waits_for_it);
	tcase_add_test(tc, test_daemon_sparse_region_reserves_no_blocks_and_others_do);
	tcase_add_test(tc, test_daemon_anonymous_region_is_sealed_against_shrinking);
	tcase_add_test(tc, test_daemon_list_shows_planted_files_with_valid_names_only);
	tcase_add_test(tc, test_daemon_fd_count_returns_to_baseline_after_clients_exit);
	tcase_add_test(tc, test_daemon_fd_count_back_to_suite_baseline_once_everything_is_gone);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(life, test_fd_setup, test_fd_teardown);
	tcase_add_test(life, test_daemon_lookup_cache_follows_files_replaced_renamed_and_deleted_between_locks);
	tcase_add_test(life, test_daemon_lookup_cache_gives_nobody_no_file_deleted_behind_its_back);
	tcase_set_timeout(life, 30);
	tcase_add_test(life, test_daemon_sigterm_exits_zero_and_clients_get_shutdown_event);
	tcase_add_test(life, test_daemon_refuses_to_start_on_a_socket_another_daemon_listens_on);
	tcase_add_test(life, test_daemon_replaces_a_stale_socket_file);
	tcase_add_test(life, test_daemon_list_sees_files_placed_renamed_and_removed_by_hand_at_once);
	tcase_add_test(life, test_daemon_list_is_right_again_after_the_directory_events_overflow);
	suite_add_tcase(s, life);
	return s;
}

int main(void)
{
	return test_run_suite(daemon_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
