/* SPDX-License-Identifier: MIT */
/*
 * The shell completion of mmapctl (completions/): the bash script is sourced by a real bash
 * and asked to complete command names, options, policy kinds and region names (which it asks
 * of a real mmapd, through $MMAPD_SOCKET or --socket); its command list is the one of
 * `mmapctl help`, so a new command cannot be left out. The zsh function is parsed by zsh
 * (`zsh -n`) where zsh is installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define BASH_SCRIPT "completions/mmapctl.bash"
#define ZSH_SCRIPT "completions/_mmapctl"

static char out[1 << 14];

/*
 * Completes the words (one string, split by bash) with the cursor on the last one, "" for a
 * new word, with mmapctl as the program; COMPREPLY, sorted, one a line, lands in out.
 */
static void complete(const struct test_daemon *d, const char *words, bool new_word)
{
	char script[2048];
	char *argv[] = { (char *)"/bin/bash", (char *)"--norc", (char *)"-c", script, NULL };

	snprintf(script, sizeof(script),
	         "source %s || exit 9; complete -p mmapctl >/dev/null || exit 8; "
	         "COMP_WORDS=(\"$CTL\" %s%s); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _mmapctl; "
	         "printf '%%s\\n' \"${COMPREPLY[@]}\" | sort", BASH_SCRIPT, words,
	         new_word ? " ''" : "");
	ck_assert_int_eq(setenv("CTL", test_env_path("MMAPCTL_BIN"), 1), 0);
	ck_assert_int_eq(test_run(d, out, sizeof(out), argv), 0);
}

START_TEST(bash_completes_commands_and_options)
{
	complete(NULL, "st", false);
	ck_assert_str_eq(out, "stat\nstats\nstatus\n");
	complete(NULL, "--j", false);
	ck_assert_str_eq(out, "--json\n");
	complete(NULL, "--json cl", false);
	ck_assert_str_eq(out, "clear-error\nclients\n");
	complete(NULL, "policy r every-", false);
	ck_assert_str_eq(out, "every-bytes\nevery-writes\n");
	complete(NULL, "help wa", false);
	ck_assert_str_eq(out, "watch\n");
	complete(NULL, "flush --le", false);
	ck_assert_str_eq(out, "--length\n");
}
END_TEST

/* The completion offers exactly the commands `mmapctl help` lists. */
START_TEST(bash_command_list_is_mmapctl_help)
{
	char want[4096] = "", help[1 << 14], *line, *save = NULL;
	char *argv[] = { (char *)test_env_path("MMAPCTL_BIN"), (char *)"help", NULL };
	bool in_commands = false;

	ck_assert_int_eq(test_run(NULL, help, sizeof(help), argv), 0);
	for (line = strtok_r(help, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];

		if (strcmp(line, "Commands:") == 0) {
			in_commands = true;
			continue;
		}
		if (in_commands && line[0] != ' ')
			break;
		/* "  name ARGS  summary"; continuation lines start with more blanks. */
		if (in_commands && line[2] != ' ' && sscanf(line, "%63s", name) == 1) {
			strcat(want, name);
			strcat(want, "\n");
		}
	}
	ck_assert_uint_gt(strlen(want), 0);
	complete(NULL, "", true);
	/* Both sorted the same way: compare as sets by sorting want through sort(1) too. */
	{
		char script[4200], sorted[4096];
		char *sargv[] = { (char *)"/bin/sh", (char *)"-c", script, NULL };

		snprintf(script, sizeof(script), "printf '%%s' '%s' | sort", want);
		ck_assert_int_eq(test_run(NULL, sorted, sizeof(sorted), sargv), 0);
		ck_assert_str_eq(out, sorted);
	}
}
END_TEST

/* Region names come from the daemon, through $MMAPD_SOCKET or the --socket on the line. */
START_TEST(bash_completes_region_names_from_the_daemon)
{
	struct test_daemon d;
	char words[TEST_PATH_MAX + 64];

	test_daemon_start(&d, NULL);
	test_daemon_create(&d, "alpha", 4096, false);
	test_daemon_create(&d, "alps", 4096, true);
	test_daemon_create(&d, "beta", 4096, false);
	complete(&d, "stat al", false);
	ck_assert_str_eq(out, "alpha\nalps\n");
	complete(&d, "--json watch", true);
	ck_assert_str_eq(out, "alpha\nalps\nbeta\n");
	/* A second argument is no region. */
	complete(&d, "resize alpha", true);
	ck_assert_str_eq(out, "\n");
	/* The value of flush's --offset is no argument, and gets no completion. */
	complete(&d, "flush --offset 4K be", false);
	ck_assert_str_eq(out, "beta\n");
	complete(&d, "flush --offset", true);
	ck_assert_str_eq(out, "\n");
	/* --socket wins over $MMAPD_SOCKET (which names nothing here). */
	snprintf(words, sizeof(words), "--socket %s delete b", d.sock);
	complete(NULL, words, false);
	ck_assert_str_eq(out, "beta\n");
	test_daemon_stop(&d);
}
END_TEST

START_TEST(zsh_function_parses)
{
	char *argv[] = { (char *)"/bin/sh", (char *)"-c",
	                 (char *)"command -v zsh >/dev/null || exit 77; zsh -n " ZSH_SCRIPT, NULL };
	int st = test_run(NULL, out, sizeof(out), argv);

	if (st == 77) {
		fprintf(stderr, "skipped: zsh is not installed\n");
		return;
	}
	ck_assert_int_eq(st, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("completion");
	TCase *tc = tcase_create("completion");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, bash_completes_commands_and_options);
	tcase_add_test(tc, bash_command_list_is_mmapctl_help);
	tcase_add_test(tc, bash_completes_region_names_from_the_daemon);
	tcase_add_test(tc, zsh_function_parses);
	suite_add_tcase(s, tc);
	return test_run_suite(s) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
