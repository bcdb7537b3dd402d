/* SPDX-License-Identifier: MIT */
/*
 * The systemd units pass `systemd-analyze verify`: mmapd.service (made from mmapd.service.in
 * the way `make install` makes it, with @SBINDIR@ pointing at the directory of the built
 * $MMAPD_BIN, so ExecStart= names a real executable) next to mmapd.socket, and
 * mmapd-metrics.service (@BINDIR@ the same directory, holding mmapctl) with its timer, in a
 * temporary directory. verify must exit 0 and print nothing about our units, except the lines filtered
 * below (each explained there). systemd-analyze comes with Debian's `systemd` package, which
 * mk/deps.sh does not install: without it the test passes after saying why it checked nothing.
 *
 * Run from the top of the source tree (as make check does): the units are read from systemd/.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* The path of prog found in $PATH (into buf), or NULL. */
static const char *find_in_path(const char *prog, char *buf, size_t size)
{
	const char *path = getenv("PATH");
	const char *p = path ? path : "/usr/bin:/bin";

	while (*p) {
		size_t n = strcspn(p, ":");

		if (n > 0) {
			snprintf(buf, size, "%.*s/%s", (int)n, p, prog);
			if (access(buf, X_OK) == 0)
				return buf;
		}
		p += n + (p[n] == ':');
	}
	return NULL;
}

/* Copies src to dst, replacing every "@SBINDIR@" and "@BINDIR@" with sbindir (the build
 * directory holds mmapd and mmapctl side by side). */
static void copy_unit(const char *src, const char *dst, const char *sbindir)
{
	FILE *in = fopen(src, "r"), *out;
	char line[4096];

	ck_assert_msg(in != NULL, "%s: %s (run from the source tree)", src, strerror(errno));
	out = fopen(dst, "w");
	ck_assert_msg(out != NULL, "%s: %s", dst, strerror(errno));
	while (fgets(line, sizeof(line), in)) {
		char *at, *p = line;

		while ((at = strstr(p, "@SBINDIR@")) != NULL || (at = strstr(p, "@BINDIR@")) != NULL) {
			size_t n = at[1] == 'S' ? strlen("@SBINDIR@") : strlen("@BINDIR@");

			fprintf(out, "%.*s%s", (int)(at - p), p, sbindir);
			p = at + n;
		}
		fputs(p, out);
	}
	ck_assert(!ferror(in));
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
}

/*
 * Lines of verify's output that say nothing about the units themselves:
 *  - "Command 'man mmapd(8)' failed": Documentation=man:mmapd(8) is checked against the man
 *    pages installed on this host, and the test runs before `make install` (--man=no turns
 *    the check off, but the line is still filtered in case a systemd ignores the option).
 *  - "... user mmapd ..." / "... group mmapd ..." not existing: User=/SocketUser= name the
 *    system user that mmapd.sysusers creates at installation, absent on a build host.
 * Any other line naming one of our units is a real complaint.
 */
static bool ignorable(const char *line)
{
	if (strstr(line, "'man mmapd(") != NULL || strstr(line, "man:mmapd(") != NULL ||
	    strstr(line, "'man mmapctl(") != NULL || strstr(line, "man:mmapctl(") != NULL)
		return true;
	if ((strstr(line, "user mmapd") || strstr(line, "group mmapd") ||
	     strstr(line, "User mmapd") || strstr(line, "Group mmapd") ||
	     strstr(line, "\"mmapd\"")) &&
	    (strstr(line, "not exist") || strstr(line, "not found") || strstr(line, "unknown") ||
	     strstr(line, "Failed to resolve")))
		return true;
	return false;
}

START_TEST(test_systemd_units_pass_systemd_analyze_verify)
{
	char analyze[PATH_MAX], bindir[PATH_MAX], dir[TEST_PATH_MAX];
	char service[TEST_PATH_MAX + 32], socket_unit[TEST_PATH_MAX + 32];
	char metrics[TEST_PATH_MAX + 32], timer[TEST_PATH_MAX + 32];
	char cmd[6 * PATH_MAX], line[4096];
	const char *bin = test_env_path("MMAPD_BIN");
	char *slash;
	size_t bad = 0, lines = 0;
	FILE *out;
	int status;

	if (!find_in_path("systemd-analyze", analyze, sizeof(analyze))) {
		printf("check_systemd: skipped: systemd-analyze not found in $PATH "
		       "(Debian: apt-get install systemd)\n");
		return;
	}
	ck_assert_msg(access(bin, X_OK) == 0, "MMAPD_BIN %s is not executable", bin);
	snprintf(bindir, sizeof(bindir), "%s", bin);
	slash = strrchr(bindir, '/');
	ck_assert(slash != NULL);
	*slash = '\0';
	/* ExecStart= runs @SBINDIR@/mmapd: the built binary must be called mmapd. */
	ck_assert_str_eq(slash + 1, "mmapd");

	test_mkdtemp(dir, sizeof(dir));
	snprintf(service, sizeof(service), "%s/mmapd.service", dir);
	snprintf(socket_unit, sizeof(socket_unit), "%s/mmapd.socket", dir);
	copy_unit("systemd/mmapd.service.in", service, bindir);
	copy_unit("systemd/mmapd.socket", socket_unit, bindir);
	snprintf(metrics, sizeof(metrics), "%s/mmapd-metrics.service", dir);
	snprintf(timer, sizeof(timer), "%s/mmapd-metrics.timer", dir);
	copy_unit("systemd/mmapd-metrics.service.in", metrics, bindir);
	copy_unit("systemd/mmapd-metrics.timer", timer, bindir);

	/* --man=no: see ignorable(). The unit files are named by absolute paths, so systemd loads
	 * them (and finds each other, mmapd.socket / Requires=, in the same directory) from dir. */
	snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' verify --man=no '%s' '%s' '%s' '%s' 2>&1", dir,
	         analyze, service, socket_unit, metrics, timer);
	out = popen(cmd, "r");
	ck_assert(out != NULL);
	while (fgets(line, sizeof(line), out)) {
		line[strcspn(line, "\n")] = '\0';
		lines++;
		if (ignorable(line)) {
			printf("check_systemd: ignored: %s\n", line);
		} else if (strstr(line, "mmapd") != NULL) {
			printf("check_systemd: COMPLAINT: %s\n", line);
			bad++;
		} else {
			/* About some other unit of this host (a dependency's own warnings). */
			printf("check_systemd: not ours: %s\n", line);
		}
	}
	status = pclose(out);
	ck_assert_msg(status != -1 && WIFEXITED(status), "systemd-analyze did not exit (status %d)",
	              status);
	ck_assert_msg(bad == 0, "systemd-analyze verify complained %zu time(s) about our units", bad);
	ck_assert_msg(WEXITSTATUS(status) == 0, "systemd-analyze verify exited with %d (%zu lines)",
	              WEXITSTATUS(status), lines);
	ck_assert_int_eq(test_rmtree(dir), 0);
}
END_TEST

static Suite *systemd_suite(void)
{
	Suite *s = suite_create("systemd");
	TCase *tc = tcase_create("systemd");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_systemd_units_pass_systemd_analyze_verify);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(systemd_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
