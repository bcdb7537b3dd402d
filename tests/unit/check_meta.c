/* SPDX-License-Identifier: MIT */
/*
 * Unit suite of region metadata persistence (daemon/meta.h), through its functions on a
 * real server run in-process (tests/unit/inproc.h) over a temporary data directory: what
 * meta_save_created writes (one JSON file per region under .mmapd/meta/), that a restart
 * reads it back the same, meta_remove, the file name of a long region name, and how
 * meta_init treats what it finds at start: files that are not JSON, have another version,
 * name another region or hold bad fields are moved to .mmapd/quarantine/; files of regions
 * that no longer exist and leftover temporary files are removed; files of older versions
 * without owner or creation fields are read.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <check.h>

#include "harness.h"
#include "htab.h"
#include "inproc.h"
#include "meta.h"
#include "msg.h"

static struct inproc P;

static void setup(void)
{
	inproc_prime();
	test_fd_setup();
	inproc_config(&P);
}

static void teardown(void)
{
	if (P.started)
		inproc_stop(&P);
	else
		config_done(&P.cfg);
	test_fd_teardown();
}

/* <data>/<rel> into buf. */
static const char *data_path(char *buf, size_t size, const char *rel)
{
	int n = snprintf(buf, size, "%s/%s", P.data, rel);

	ck_assert((size_t)n < size);
	return buf;
}

static void make_dir(const char *rel)
{
	char path[512];

	ck_assert_int_eq(mkdir(data_path(path, sizeof(path), rel), 0750), 0);
}

/* Writes text to <data>/<rel>. */
static void put_file(const char *rel, const char *text)
{
	char path[512];
	FILE *f = fopen(data_path(path, sizeof(path), rel), "we");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fputs(text, f) < 0, 0);
	ck_assert_int_eq(fclose(f), 0);
}

static bool exists(const char *rel)
{
	char path[512];
	struct stat st;

	return lstat(data_path(path, sizeof(path), rel), &st) == 0;
}

/* The data directory with .mmapd/meta made, before the server starts. */
static void make_meta_dir(void)
{
	ck_assert_int_eq(mkdir(P.data, 0750), 0);
	make_dir(".mmapd");
	make_dir(".mmapd/meta");
}

/* A valid metadata file of region name (and the region file itself, unless orphan). */
static void put_meta(const char *name, bool with_region)
{
	char rel[512], text[1024];

	snprintf(rel, sizeof(rel), ".mmapd/meta/%s.json", name);
	snprintf(text, sizeof(text), "{\"version\": 1, \"name\": \"%s\", \"policy\": "
	         "{\"kind\": \"every-writes\", \"value\": 3}, \"poisoned\": false}", name);
	put_file(rel, text);
	if (with_region)
		put_file(name, "");
}

/* How many entries of <data>/.mmapd/quarantine end in "-<file>". */
static size_t quarantined(const char *file)
{
	char path[512], suffix[300];
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(data_path(path, sizeof(path), ".mmapd/quarantine"));

	ck_assert_ptr_nonnull(d);
	snprintf(suffix, sizeof(suffix), "-%s", file);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len > strlen(suffix) && strcmp(de->d_name + len - strlen(suffix), suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* How many entries <data>/.mmapd/meta holds (temporary files included). */
static size_t meta_entries(void)
{
	char path[512];
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(data_path(path, sizeof(path), ".mmapd/meta"));

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* The JSON object in <data>/<rel> (caller frees). */
static cJSON *read_json(const char *rel)
{
	char path[512], buf[65536];
	cJSON *obj = NULL;
	ssize_t n;
	int fd = open(data_path(path, sizeof(path), rel), O_RDONLY | O_CLOEXEC);

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_int_gt(n, 0);
	ck_assert_msg(msg_parse(buf, (size_t)n, &obj) == 0, "%s is not a JSON object", path);
	return obj;
}

struct saved {
	bool done;
	int result;
};

static void on_saved(void *arg, int result)
{
	struct saved *s = arg;

	ck_assert(!s->done);
	s->done = true;
	s->result = result;
}

/* Runs the loop until the change's callback ran; asserts it succeeded. */
static void wait_saved(struct saved *s)
{
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;

	while (!s->done && test_now_ms() < deadline)
		uv_run(&P.loop, UV_RUN_ONCE);
	ck_assert_msg(s->done, "the metadata write did not complete");
	ck_assert_int_eq(s->result, 0);
}

static void save_created(const char *name, const struct policy *p, const struct access *acc,
                         uint64_t size, bool sparse)
{
	struct saved s = { false, 0 };

	ck_assert_int_eq(meta_save_created(&P.srv, name, p, acc, size, sparse, on_saved, &s), 0);
	wait_saved(&s);
}

START_TEST(test_meta_save_created_writes_the_file)
{
	struct policy pol = { POLICY_INTERVAL, 250 };
	struct access acc = { 1000, 100, 0640 };
	const struct meta *m;
	cJSON *obj, *policy;
	uint64_t before, created;

	inproc_start(&P);
	before = (uint64_t)state_epoch_ms();
	save_created("alpha", &pol, &acc, 8192, true);

	m = meta_find(&P.srv, "alpha");
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->name, "alpha");
	ck_assert_int_eq(m->policy.kind, POLICY_INTERVAL);
	ck_assert_uint_eq(m->policy.value, 250);
	ck_assert(m->created && m->owned && m->sparse && !m->poisoned);

	obj = read_json(".mmapd/meta/alpha.json");
	ck_assert_uint_eq(test_json_u64(obj, "version"), 1);
	ck_assert_str_eq(test_json_str(obj, "name"), "alpha");
	ck_assert(!test_json_bool(obj, "poisoned"));
	ck_assert_uint_eq(test_json_u64(obj, "uid"), 1000);
	ck_assert_uint_eq(test_json_u64(obj, "gid"), 100);
	ck_assert_uint_eq(test_json_u64(obj, "perm"), 0640);
	ck_assert_uint_eq(test_json_u64(obj, "size"), 8192);
	ck_assert(test_json_bool(obj, "sparse"));
	created = test_json_u64(obj, "created_ms");
	ck_assert_uint_ge(created, before);
	ck_assert_uint_le(created, (uint64_t)state_epoch_ms());
	policy = cJSON_GetObjectItemCaseSensitive(obj, "policy");
	ck_assert_ptr_nonnull(policy);
	ck_assert_str_eq(test_json_str(policy, "kind"), "interval");
	ck_assert_uint_eq(test_json_u64(policy, "value"), 250);
	cJSON_Delete(obj);
	/* No temporary file is left beside it. */
	ck_assert_uint_eq(meta_entries(), 1);
}
END_TEST

START_TEST(test_meta_round_trips_through_restart)
{
	struct policy pol = { POLICY_EVERY_BYTES, 1 << 20 };
	struct access acc = { 4242, 4343, 0604 };
	const struct meta *m;
	uint64_t created;

	inproc_start(&P);
	save_created("beta", &pol, &acc, 12345, false);
	created = meta_find(&P.srv, "beta")->created_ms;
	/* The region file exists, or the restart would drop its metadata as stale. */
	put_file("beta", "");
	inproc_restart(&P);

	m = meta_find(&P.srv, "beta");
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->policy.kind, POLICY_EVERY_BYTES);
	ck_assert_uint_eq(m->policy.value, 1 << 20);
	ck_assert(!m->poisoned);
	ck_assert(m->owned);
	ck_assert_uint_eq(m->acc.uid, 4242);
	ck_assert_uint_eq(m->acc.gid, 4343);
	ck_assert_uint_eq(m->acc.perm, 0604);
	ck_assert(m->created);
	ck_assert_uint_eq(m->created_ms, created);
	ck_assert_uint_eq(m->size, 12345);
	ck_assert(!m->sparse);
	ck_assert_ptr_null(meta_find(&P.srv, "gamma"));
}
END_TEST

START_TEST(test_meta_remove_deletes_the_file)
{
	struct policy pol = { POLICY_MANUAL, 0 };
	struct access acc = { 0, 0, 0600 };

	inproc_start(&P);
	save_created("gone", &pol, &acc, 4096, false);
	ck_assert(exists(".mmapd/meta/gone.json"));
	meta_remove(&P.srv, "gone");
	ck_assert_ptr_null(meta_find(&P.srv, "gone"));
	inproc_run(&P);
	ck_assert(!exists(".mmapd/meta/gone.json"));
	/* Removing what has no metadata is a no-op. */
	meta_remove(&P.srv, "never");
	inproc_run(&P);
}
END_TEST

START_TEST(test_meta_save_again_replaces_the_record)
{
	struct policy pol = { POLICY_ALWAYS, 0 };
	struct access acc = { 1, 2, 0600 };
	const struct meta *m;
	cJSON *obj;

	inproc_start(&P);
	save_created("again", &pol, &acc, 4096, false);
	pol.kind = POLICY_EVERY_WRITES;
	pol.value = 9;
	acc.perm = 0644;
	save_created("again", &pol, &acc, 8192, true);
	ck_assert_uint_eq(P.srv.meta.count, 1);
	m = meta_find(&P.srv, "again");
	ck_assert_int_eq(m->policy.kind, POLICY_EVERY_WRITES);
	ck_assert_uint_eq(m->size, 8192);
	obj = read_json(".mmapd/meta/again.json");
	ck_assert_uint_eq(test_json_u64(obj, "perm"), 0644);
	ck_assert_uint_eq(test_json_u64(obj, "size"), 8192);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_meta_long_name_uses_hashed_file_name)
{
	struct policy pol = { POLICY_MANUAL, 0 };
	struct access acc = { 0, 0, 0600 };
	char name[256], file[300], rel[400];

	memset(name, 'n', 255);
	name[255] = '\0';
	inproc_start(&P);
	save_created(name, &pol, &acc, 4096, false);
	/* 255 + ".json" does not fit NAME_MAX: 233 bytes of it, '~', 16 hex digits. */
	snprintf(file, sizeof(file), "%.233s~%016" PRIx64 ".json", name, htab_hash_string(name));
	snprintf(rel, sizeof(rel), ".mmapd/meta/%s", file);
	ck_assert_msg(exists(rel), "no %s", rel);
	ck_assert_uint_eq(meta_entries(), 1);
	/* And it is read back under the full name. */
	put_file(name, "");
	inproc_restart(&P);
	ck_assert_ptr_nonnull(meta_find(&P.srv, name));
}
END_TEST

START_TEST(test_meta_loads_valid_files_at_start)
{
	const struct meta *m;

	make_meta_dir();
	put_meta("good", true);
	inproc_start(&P);
	m = meta_find(&P.srv, "good");
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->policy.kind, POLICY_EVERY_WRITES);
	ck_assert_uint_eq(m->policy.value, 3);
	/* An older file without owner or creation fields: nothing of them is known. */
	ck_assert(!m->owned);
	ck_assert(!m->created);
	ck_assert(exists(".mmapd/meta/good.json"));
	ck_assert_uint_eq(quarantined("good.json"), 0);
}
END_TEST

START_TEST(test_meta_quarantines_corrupt_files)
{
	static const struct {
		const char *name;
		const char *text;
	} bad[] = {
		{ "notjson", "{\"version\": 1, \"name\": \"notjson\"" },
		{ "empty", "" },
		{ "array", "[1]" },
		{ "version2", "{\"version\": 2, \"name\": \"version2\"}" },
		{ "noversion", "{\"name\": \"noversion\"}" },
		{ "noname", "{\"version\": 1}" },
		{ "badname", "{\"version\": 1, \"name\": \"bad/name\"}" },
		{ "policy", "{\"version\": 1, \"name\": \"policy\", \"policy\": {\"kind\": \"often\"}}" },
		{ "poison", "{\"version\": 1, \"name\": \"poison\", \"poisoned\": \"yes\"}" },
		{ "owner", "{\"version\": 1, \"name\": \"owner\", \"uid\": 1, \"gid\": 1}" },
		{ "perm", "{\"version\": 1, \"name\": \"perm\", \"uid\": 1, \"gid\": 1, \"perm\": 4096}" },
		{ "created", "{\"version\": 1, \"name\": \"created\", \"created_ms\": \"today\"}" },
		{ "size", "{\"version\": 1, \"name\": \"size\", \"created_ms\": 1, \"size\": -1}" },
	};
	size_t i;

	make_meta_dir();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char rel[300];

		snprintf(rel, sizeof(rel), ".mmapd/meta/%s.json", bad[i].name);
		put_file(rel, bad[i].text);
		put_file(bad[i].name, "");
	}
	put_meta("good", true);
	inproc_start(&P);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char rel[320], file[300];

		snprintf(file, sizeof(file), "%s.json", bad[i].name);
		snprintf(rel, sizeof(rel), ".mmapd/meta/%s", file);
		ck_assert_msg(!exists(rel), "%s stayed in meta/", file);
		ck_assert_msg(quarantined(file) == 1, "%s is not in quarantine/", file);
		ck_assert_msg(meta_find(&P.srv, bad[i].name) == NULL, "%s was loaded", file);
	}
	/* A good file beside them is loaded all the same. */
	ck_assert_ptr_nonnull(meta_find(&P.srv, "good"));
	ck_assert_uint_eq(P.srv.meta.count, 1);
}
END_TEST

START_TEST(test_meta_quarantines_file_naming_another_region)
{
	make_meta_dir();
	/* A valid record of "real", stored under the file name of "fake". */
	put_file(".mmapd/meta/fake.json", "{\"version\": 1, \"name\": \"real\"}");
	put_file("real", "");
	put_file("fake", "");
	inproc_start(&P);
	ck_assert_ptr_null(meta_find(&P.srv, "real"));
	ck_assert_ptr_null(meta_find(&P.srv, "fake"));
	ck_assert(!exists(".mmapd/meta/fake.json"));
	ck_assert_uint_eq(quarantined("fake.json"), 1);
}
END_TEST

START_TEST(test_meta_quarantines_oversize_and_irregular_files)
{
	size_t len = 65537, i;
	char *big = malloc(len + 1);

	ck_assert_ptr_nonnull(big);
	make_meta_dir();
	/* A valid object padded past 64 KiB. */
	for (i = 0; i < len; i++)
		big[i] = ' ';
	memcpy(big, "{\"version\": 1, \"name\": \"big\"}", 29);
	big[len] = '\0';
	put_file(".mmapd/meta/big.json", big);
	free(big);
	put_file("big", "");
	make_dir(".mmapd/meta/dir.json");
	put_file("dir", "");
	inproc_start(&P);
	ck_assert_ptr_null(meta_find(&P.srv, "big"));
	ck_assert_uint_eq(quarantined("big.json"), 1);
	ck_assert_ptr_null(meta_find(&P.srv, "dir"));
	ck_assert_uint_eq(quarantined("dir.json"), 1);
}
END_TEST

START_TEST(test_meta_removes_stale_and_temporary_files)
{
	make_meta_dir();
	put_meta("orphan", false);
	put_file(".mmapd/meta/.tmp-123-1", "{\"version\": 1, \"name\": \"half\"}");
	inproc_start(&P);
	/* The region is gone: its metadata is removed, not quarantined. */
	ck_assert_ptr_null(meta_find(&P.srv, "orphan"));
	ck_assert(!exists(".mmapd/meta/orphan.json"));
	ck_assert_uint_eq(quarantined("orphan.json"), 0);
	/* A write a crash interrupted is dropped. */
	ck_assert(!exists(".mmapd/meta/.tmp-123-1"));
	ck_assert_uint_eq(quarantined(".tmp-123-1"), 0);
	ck_assert_uint_eq(P.srv.meta.count, 0);
}
END_TEST

START_TEST(test_meta_find_unknown_is_null)
{
	inproc_start(&P);
	ck_assert(exists(".mmapd/meta"));
	ck_assert(exists(".mmapd/quarantine"));
	ck_assert_ptr_null(meta_find(&P.srv, "nothing"));
	ck_assert_uint_eq(P.srv.meta.count, 0);
}
END_TEST

static Suite *meta_suite(void)
{
	Suite *s = suite_create("meta");
	TCase *tc = tcase_create("meta");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_meta_save_created_writes_the_file);
	tcase_add_test(tc, test_meta_round_trips_through_restart);
	tcase_add_test(tc, test_meta_remove_deletes_the_file);
	tcase_add_test(tc, test_meta_save_again_replaces_the_record);
	tcase_add_test(tc, test_meta_long_name_uses_hashed_file_name);
	tcase_add_test(tc, test_meta_loads_valid_files_at_start);
	tcase_add_test(tc, test_meta_quarantines_corrupt_files);
	tcase_add_test(tc, test_meta_quarantines_file_naming_another_region);
	tcase_add_test(tc, test_meta_quarantines_oversize_and_irregular_files);
	tcase_add_test(tc, test_meta_removes_stale_and_temporary_files);
	tcase_add_test(tc, test_meta_find_unknown_is_null);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(meta_suite()) == 0 ? 0 : 1;
}
