/* SPDX-License-Identifier: MIT */
/*
 * The config file as an operator meets it, through the mmapd binary: `mmapd --check-config`
 * on good and bad files (exit status, every problem with its line and column), the example
 * shipped in docs/examples/mmapd.json (valid, and naming every key the tables document), the
 * default file /etc/mmapd/mmapd.json (read when it exists: checked in a private mount
 * namespace with an overlay on /etc, as root), and --no-config, which keeps that file away
 * from `make run` and from these tests. The daemon's own parsing is unit-tested in
 * tests/unit/check_config.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define EXAMPLE "docs/examples/mmapd.json"

static char out[1 << 14];

/* Writes text to <dir>/name and returns the path (static buffer). */
static const char *file_write(const char *dir, const char *name, const char *text)
{
	static char path[TEST_PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

/* Runs mmapd with the arguments (NULL-terminated), stdout and stderr into out; exit status. */
static int mmapd_run(const char *first, ...)
{
	char *argv[12];
	va_list ap;
	int n = 0;

	argv[n++] = (char *)test_env_path("MMAPD_BIN");
	argv[n++] = (char *)first;
	va_start(ap, first);
	while (n < 11 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	return test_run_merged(NULL, out, sizeof(out), argv);
}

/* The example, copied as the operator would (the tree may belong to another user). */
START_TEST(check_config_accepts_the_example)
{
	char dir[TEST_PATH_MAX], want[TEST_PATH_MAX + 32], *text = NULL;
	const char *path;
	size_t len = 0;
	FILE *f = fopen(EXAMPLE, "re");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_gt((int)getdelim(&text, &len, '\0', f), 0);
	fclose(f);
	test_mkdtemp(dir, sizeof(dir));
	path = file_write(dir, "mmapd.json", text);
	free(text);
	ck_assert_int_eq(mmapd_run("--check-config", path, (char *)NULL), 0);
	snprintf(want, sizeof(want), "%s: valid", path);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	test_rmtree(dir);
}
END_TEST

/* The example shows every key that docs/operations.md's table documents. */
START_TEST(example_names_every_documented_key)
{
	char *text = NULL, line[512];
	size_t len = 0;
	FILE *f = fopen(EXAMPLE, "re"), *doc;
	int keys = 0;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_gt((int)getdelim(&text, &len, '\0', f), 0);
	fclose(f);
	doc = fopen("docs/operations.md", "re");
	ck_assert_ptr_nonnull(doc);
	while (fgets(line, sizeof(line), doc)) {
		char key[128], quoted[140];

		/* Rows of the Configure table: "| `key` | default | reload | meaning |". */
		if (sscanf(line, "| `%127[a-z_]` |", key) != 1 ||
		    (!strstr(line, "| yes |") && !strstr(line, "| restart |")))
			continue;
		/* "key": or, switched off, "//key": */
		snprintf(quoted, sizeof(quoted), "%s\":", key);
		ck_assert_msg(strstr(text, quoted) != NULL, "%s does not show \"%s\"", EXAMPLE, key);
		keys++;
	}
	fclose(doc);
	free(text);
	ck_assert_int_ge(keys, 25);
}
END_TEST

/* Every problem is listed, each with line and column; exit status 1. */
START_TEST(check_config_reports_every_problem)
{
	char dir[TEST_PATH_MAX], want[TEST_PATH_MAX + 128];
	const char *path;

	test_mkdtemp(dir, sizeof(dir));
	path = file_write(dir, "bad.json", "{\n  \"// note\": 1,\n  \"max_clientz\": 5,\n"
	                  "  \"log_level\": \"loud\",\n  \"max_frame\": 12\n}\n");
	ck_assert_int_eq(mmapd_run("--check-config", path, (char *)NULL), 1);
	snprintf(want, sizeof(want), "%s:3:3: unknown key \"max_clientz\"", path);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	snprintf(want, sizeof(want), "%s:4:3: \"log_level\" must be", path);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	snprintf(want, sizeof(want), "%s:5:3: \"max_frame\" must be an integer from", path);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	ck_assert_msg(strstr(out, "valid") == NULL, "%s", out);

	/* A syntax error says where the text breaks. */
	path = file_write(dir, "syntax.json", "{\n  \"max_clients\": 5\n  \"log_level\": \"info\"\n}\n");
	ck_assert_int_eq(mmapd_run("-t", path, (char *)NULL), 1);
	snprintf(want, sizeof(want), "%s:3:3: the file is not a JSON object: syntax error", path);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);

	/* --config FILE is what --check-config checks when no FILE follows it. */
	ck_assert_int_eq(mmapd_run("--config", path, "--check-config", (char *)NULL), 1);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);

	snprintf(want, sizeof(want), "%s/none.json", dir);
	ck_assert_int_eq(mmapd_run("--check-config", want, (char *)NULL), 1);
	ck_assert_msg(strstr(out, "cannot read config file") != NULL, "%s", out);
	/* Two files is a usage error. */
	ck_assert_int_eq(mmapd_run("--check-config", path, path, (char *)NULL), 2);
	test_rmtree(dir);
}
END_TEST

/* A start refuses the same file with exit status 2 and the same positioned lines. */
START_TEST(start_refuses_bad_config_saying_where)
{
	char dir[TEST_PATH_MAX], sock[TEST_PATH_MAX + 8], data[TEST_PATH_MAX + 8];
	char want[TEST_PATH_MAX + 64];
	const char *path;

	test_mkdtemp(dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/s", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	path = file_write(dir, "bad.json", "{\"max_clients\": 5,\n \"max_clientz\": 5}");
	ck_assert_int_eq(mmapd_run("--foreground", "--socket", sock, "--data-dir", data, "--config",
	                           path, (char *)NULL), 2);
	snprintf(want, sizeof(want), "%s:2:2: unknown key \"max_clientz\"", path);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	test_rmtree(dir);
}
END_TEST

/*
 * Runs `mmapd ARGS` in a private mount namespace in which /etc is an overlay holding
 * /etc/mmapd/mmapd.json with text (NULL: no such file), so the host's /etc stays untouched.
 * Returns the exit status, or -1 when the namespace cannot be made (then the test skips).
 */
static int mmapd_run_with_etc(const char *text, char *const args[])
{
	char dir[TEST_PATH_MAX], upper[TEST_PATH_MAX + 8], work[TEST_PATH_MAX + 8];
	char opts[3 * TEST_PATH_MAX + 64], *argv[8];
	int pipefd[2], st, n = 0;
	ssize_t len = 0, r;
	pid_t pid;

	test_mkdtemp(dir, sizeof(dir));
	argv[n++] = (char *)test_env_path("MMAPD_BIN");
	for (; args[n - 1] && n < 7; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		snprintf(upper, sizeof(upper), "%s/u", dir);
		snprintf(work, sizeof(work), "%s/w", dir);
		snprintf(opts, sizeof(opts), "lowerdir=/etc,upperdir=%s,workdir=%s", upper, work);
		/* The overlay's upper layer on a tmpfs: /tmp may itself be an overlay. */
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", dir, "tmpfs", 0, "mode=0700") < 0 || mkdir(upper, 0755) < 0 ||
		    mkdir(work, 0700) < 0 || mount("overlay", "/etc", "overlay", 0, opts) < 0)
			_exit(99);
		rmdir("/etc/mmapd/mmapd.json");
		unlink("/etc/mmapd/mmapd.json");
		if (text && ((mkdir("/etc/mmapd", 0755) < 0 && errno != EEXIST) ||
		             !file_write("/etc/mmapd", "mmapd.json", text)))
			_exit(99);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	while (len < (ssize_t)sizeof(out) - 1 &&
	       (r = read(pipefd[0], out + len, sizeof(out) - 1 - (size_t)len)) > 0)
		len += r;
	out[len] = '\0';
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	test_rmtree(dir);
	ck_assert(WIFEXITED(st));
	if (WEXITSTATUS(st) == 99) {
		fprintf(stderr, "skipped: cannot overlay /etc in a mount namespace\n");
		return -1;
	}
	return WEXITSTATUS(st);
}

/* With no --config, /etc/mmapd/mmapd.json is the file: checked, started with, or absent. */
START_TEST(default_config_file_is_read_when_it_exists)
{
	char *check[] = { (char *)"--check-config", NULL };
	char *nocfg[] = { (char *)"--no-config", (char *)"--check-config", NULL };
	int st;

	if (!test_is_root())
		return;
	st = mmapd_run_with_etc("{\n \"max_clientz\": 1}\n", check);
	if (st < 0)
		return;
	ck_assert_int_eq(st, 1);
	ck_assert_msg(strstr(out, "/etc/mmapd/mmapd.json:2:2: unknown key \"max_clientz\""), "%s", out);

	ck_assert_int_eq(mmapd_run_with_etc("{\"max_clients\": 1}", check), 0);
	ck_assert_msg(strstr(out, "/etc/mmapd/mmapd.json: valid"), "%s", out);

	ck_assert_int_eq(mmapd_run_with_etc(NULL, check), 0);
	ck_assert_msg(strstr(out, "the defaults apply"), "%s", out);

	/* --no-config: not even the default file. */
	ck_assert_int_eq(mmapd_run_with_etc("{\"max_clientz\": 1}", nocfg), 0);
	ck_assert_msg(strstr(out, "the defaults apply"), "%s", out);
}
END_TEST

/* A start reads the default file too: a bad one stops it (exit status 2). */
START_TEST(start_reads_default_config_file)
{
	char dir[TEST_PATH_MAX], sock[TEST_PATH_MAX + 8], data[TEST_PATH_MAX + 8];
	char *args[] = { (char *)"--foreground", (char *)"--socket", sock, (char *)"--data-dir",
	                 data, NULL };
	int st;

	if (!test_is_root())
		return;
	test_mkdtemp(dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/s", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	st = mmapd_run_with_etc("{\"max_frame\": 1}", args);
	if (st >= 0) {
		ck_assert_int_eq(st, 2);
		ck_assert_msg(strstr(out, "/etc/mmapd/mmapd.json:1:2: \"max_frame\" must be"), "%s",
		              out);
	}
	test_rmtree(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config_file");
	TCase *tc = tcase_create("config_file");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, check_config_accepts_the_example);
	tcase_add_test(tc, example_names_every_documented_key);
	tcase_add_test(tc, check_config_reports_every_problem);
	tcase_add_test(tc, start_refuses_bad_config_saying_where);
	tcase_add_test(tc, default_config_file_is_read_when_it_exists);
	tcase_add_test(tc, start_reads_default_config_file);
	suite_add_tcase(s, tc);
	return test_run_suite(s) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
