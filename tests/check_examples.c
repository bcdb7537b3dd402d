/* SPDX-License-Identifier: MIT */
/*
 * The programs in examples/ are part of the documentation, so they must keep working: each is
 * built by `make check` and run here against a real daemon, as a separate process, and must
 * see its asynchronous flush complete through its event loop or dispatch thread (exit status 0)
 * and leave the bytes it wrote in the region, where another client reads them. The README's
 * tour, writer then reader, must print what the writer wrote; the Python client of
 * docs/protocol.md ("Writing a client in another language") must run as printed, find the
 * daemon through $MMAPD_SOCKET and stop at end of stream.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct test_daemon dmn;

static void suite_setup(void)
{
	test_daemon_start(&dmn, NULL);
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

/* Runs $MMAPD_EXAMPLES_DIR/<prog> <region> and checks its exit status and the bytes it wrote. */
static void run_example(const char *prog, const char *region)
{
	const char *dir = getenv("MMAPD_EXAMPLES_DIR");
	char path[TEST_PATH_MAX], out[4096], bytes[64];
	char *argv[] = { path, (char *)region, NULL };
	int status;

	ck_assert_msg(dir != NULL, "MMAPD_EXAMPLES_DIR is not set (run the suite with make check)");
	snprintf(path, sizeof(path), "%s/%s", dir, prog);
	status = test_run(&dmn, out, sizeof(out), argv);
	ck_assert_msg(status == 0, "%s exited with %d; it printed:\n%s", prog, status, out);
	ck_assert_msg(strstr(out, "event") != NULL, "%s delivered no event through its loop:\n%s",
	              prog, out);
	status = test_run_client(&dmn, bytes, sizeof(bytes), "read", region, "0", "5", (char *)NULL);
	ck_assert_int_eq(status, 0);
	ck_assert_msg(strncmp(bytes, "hello", 5) == 0, "%s left \"%s\" in the region", prog, bytes);
}

START_TEST(test_examples_poll_loop_sees_its_flush_complete)
{
	run_example("poll_loop", "example-poll");
}
END_TEST

START_TEST(test_examples_uv_loop_sees_its_flush_complete)
{
	run_example("uv_loop", "example-uv");
}
END_TEST

START_TEST(test_examples_thread_events_sees_its_flush_complete)
{
	run_example("thread_events", "example-thread");
}
END_TEST

/* Runs $MMAPD_EXAMPLES_DIR/<prog> [arg] against the daemon; asserts exit status 0. */
static void run_plain(const char *prog, const char *arg, char *out, size_t outsize)
{
	const char *dir = getenv("MMAPD_EXAMPLES_DIR");
	char path[TEST_PATH_MAX];
	char *argv[] = { path, (char *)arg, NULL };
	int status;

	ck_assert_msg(dir != NULL, "MMAPD_EXAMPLES_DIR is not set (run the suite with make check)");
	snprintf(path, sizeof(path), "%s/%s", dir, prog);
	status = test_run(&dmn, out, outsize, argv);
	ck_assert_msg(status == 0, "%s exited with %d; it printed:\n%s", prog, status, out);
}

/* The README's tour: writer creates "hello" and writes; reader, read-only, prints it. */
START_TEST(test_examples_reader_prints_what_writer_wrote)
{
	char out[4096];

	run_plain("writer", NULL, out, sizeof(out));
	ck_assert_str_eq(out, "wrote 33 bytes into region hello\n");
	run_plain("reader", NULL, out, sizeof(out));
	ck_assert_str_eq(out, "written through a shared mapping\n");
	run_plain("reader", "hello", out, sizeof(out));
	ck_assert_str_eq(out, "written through a shared mapping\n");
}
END_TEST

/*
 * The Python client of docs/protocol.md, cut out of the document as it is, then a few lines
 * that use what it made: the mapping, and end of stream once the daemon hangs up.
 */
START_TEST(test_examples_protocol_python_client_runs_as_printed)
{
	static const char script[] =
		"command -v python3 >/dev/null || exit 77\n"
		"d=$(mktemp -d) || exit 1\n"
		"sed -n '/^## Writing a client in another language/,/^## /p' docs/protocol.md |\n"
		"  sed -n '/^```python$/,/^```$/p' | sed '1d;$d' > \"$d/client.py\"\n"
		"cat >> \"$d/client.py\" <<'EOF'\n"
		"m[:5] = b'hello'\n"
		"print('mapped', bytes(m[:5]).decode())\n"
		"s.shutdown(socket.SHUT_WR)\n"
		"try:\n"
		"    recv_frame()\n"
		"except EOFError as e:\n"
		"    print('end of stream:', e)\n"
		"EOF\n"
		"python3 \"$d/client.py\"; st=$?\n"
		"rm -rf \"$d\"\n"
		"exit $st\n";
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)script, NULL };
	char out[4096], bytes[64];
	int status = test_run(&dmn, out, sizeof(out), argv);

	if (status == 77) {
		fprintf(stderr, "skipped: python3 is not installed\n");
		return;
	}
	ck_assert_msg(status == 0, "the Python client exited with %d:\n%s", status, out);
	ck_assert_msg(strstr(out, "'ok': True") && strstr(out, "mapped hello\n") &&
	              strstr(out, "end of stream: mmapd closed the connection\n"), "%s", out);
	ck_assert_int_eq(test_run_client(&dmn, bytes, sizeof(bytes), "read", "demo", "0", "5",
	                                 (char *)NULL), 0);
	ck_assert_msg(strncmp(bytes, "hello", 5) == 0, "the region holds \"%s\"", bytes);
}
END_TEST

static Suite *examples_suite(void)
{
	Suite *s = suite_create("examples");
	TCase *tc = tcase_create("examples");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_examples_poll_loop_sees_its_flush_complete);
	tcase_add_test(tc, test_examples_uv_loop_sees_its_flush_complete);
	tcase_add_test(tc, test_examples_thread_events_sees_its_flush_complete);
	tcase_add_test(tc, test_examples_reader_prints_what_writer_wrote);
	tcase_add_test(tc, test_examples_protocol_python_client_runs_as_printed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(examples_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
