/* SPDX-License-Identifier: MIT */
/*
 * Backup and restore as docs/operations.md tells an operator to do them, with the script it
 * ships (docs/examples/mmapd-backup.sh) run against a real mmapd: the backup flushes and
 * copies every file region with its metadata (owner, mode, flush policy) and names the
 * anonymous regions it cannot keep; the restore refuses while a daemon answers, and after it
 * a new daemon serves the regions with their data and metadata as they were.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define SCRIPT "docs/examples/mmapd-backup.sh"

static char out[1 << 14];

/* Runs the script with mode and dir against d (its socket and data directory). */
static int script_run(const struct test_daemon *d, const char *mode, const char *dir)
{
	char *argv[] = { (char *)"/bin/sh", (char *)SCRIPT, (char *)mode, (char *)dir, NULL };

	ck_assert_int_eq(setenv("MMAPD_DATA_DIR", d->data, 1), 0);
	ck_assert_int_eq(setenv("MMAPCTL", test_env_path("MMAPCTL_BIN"), 1), 0);
	return test_run_merged(d, out, sizeof(out), argv);
}

START_TEST(backup_then_restore_brings_regions_back)
{
	struct test_daemon d;
	char bk[TEST_PATH_MAX + 8], path[TEST_PATH_MAX + 32];
	cJSON *obj;

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "data", 8192, false);
	test_daemon_create(&d, "anon", 4096, true);
	ck_assert_int_eq(test_run_client(&d, out, sizeof(out), "write", "data", "100", "hello",
	                                 (char *)NULL), 0);
	TEST_CTL(&d, 0, out, "chmod", "data", "0640");
	TEST_CTL(&d, 0, out, "policy", "data", "every-writes", "3");
	snprintf(bk, sizeof(bk), "%s/bk", d.dir);

	ck_assert_int_eq(script_run(&d, "backup", bk), 0);
	ck_assert_msg(strstr(out, "backed up data\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "not backed up: anonymous region anon") != NULL, "%s", out);
	/* A second backup into the same directory is refused: nothing is mixed. */
	ck_assert_int_eq(script_run(&d, "backup", bk), 1);
	/* Files under a running daemon are not replaced. */
	ck_assert_int_eq(script_run(&d, "restore", bk), 1);
	ck_assert_msg(strstr(out, "stop it first") != NULL, "%s", out);

	/* The region is lost (file and metadata) while the daemon is stopped, then restored. */
	test_daemon_kill(&d);
	snprintf(path, sizeof(path), "%s/data", d.data);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/.mmapd/meta/data.json", d.data);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(script_run(&d, "restore", bk), 0);
	ck_assert_msg(strstr(out, "restored data\n") != NULL, "%s", out);

	test_daemon_restart(&d);
	ck_assert_int_eq(test_run_client(&d, out, sizeof(out), "read", "data", "100", "5",
	                                 (char *)NULL), 0);
	ck_assert_msg(strncmp(out, "hello", 5) == 0, "restored data: \"%s\"", out);
	TEST_CTL(&d, 0, out, "--json", "stat", "data");
	obj = cJSON_Parse(out);
	ck_assert_ptr_nonnull(obj);
	ck_assert_uint_eq(test_json_u64(obj, "perm"), 0640);
	ck_assert_uint_eq(test_json_u64(obj, "size"), 8192);
	ck_assert_msg(strstr(out, "\"kind\":\"every-writes\",\"value\":3") != NULL, "%s", out);
	cJSON_Delete(obj);
	test_daemon_stop(&d);
}
END_TEST

/* With no daemon to ask, a backup fails instead of copying nothing. */
START_TEST(backup_without_daemon_fails)
{
	struct test_daemon d;
	char bk[TEST_PATH_MAX + 8];

	test_daemon_start(&d, NULL);
	test_daemon_kill(&d);
	snprintf(bk, sizeof(bk), "%s/bk", d.dir);
	ck_assert_int_eq(script_run(&d, "backup", bk), 1);
	ck_assert_msg(strstr(out, "cannot list the regions") != NULL, "%s", out);
	ck_assert_int_ne(access(bk, F_OK), 0);
	test_daemon_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("backup");
	TCase *tc = tcase_create("backup");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, backup_then_restore_brings_regions_back);
	tcase_add_test(tc, backup_without_daemon_fails);
	suite_add_tcase(s, tc);
	return test_run_suite(s) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
