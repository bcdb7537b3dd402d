/* SPDX-License-Identifier: MIT */
/*
 * Hostile clients against a real mmapd: malformed frames, malformed JSON, bad fields, names that
 * try to leave the data directory, descriptors sent to the daemon, and clients that exceed their
 * limits. Each test sends one kind of bad input and asserts the exact error that
 * docs/protocol.md documents for it (symbolic code and Linux errno number), then proves the
 * daemon still serves: a ping on a fresh connection must succeed.
 *
 * Two daemons: one with the default configuration for almost everything (test case
 * "protocol"), and one with small limits (test case "limits") for the tests of max_clients,
 * max_grants_per_client and max_queue_bytes. Both are started once per test case by an
 * unchecked fixture; every test runs in its own process with a descriptor-leak check.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdpass.h"
#include "harness.h"
#include "msg.h"

static struct test_daemon dmn;

/* The limits daemon's configuration: small enough to reach in a test. */
#define LIMIT_CLIENTS 4
#define LIMIT_GRANTS 3
#define LIMIT_QUEUE 65536
#define LIMITS_CONFIG "{\"max_clients\":4,\"max_grants_per_client\":3,\"max_queue_bytes\":65536}"

static void protocol_setup(void)
{
	test_daemon_start(&dmn, NULL);
}

static void limits_setup(void)
{
	test_daemon_start(&dmn, LIMITS_CONFIG);
}

static void daemon_teardown(void)
{
	test_daemon_stop(&dmn);
}

/* How the reply's id must look. */
enum want_id {
	ID_NULL,         /* "id": null: the id could not be read */
	ID_ECHO,         /* "id": 7, the id the request carried */
};

#define REQ_ID 7

/*
 * On a fresh connection (after hello unless no_hello), sends text as one frame and asserts the
 * reply is the error code/err with the wanted id. Then asserts that the same connection still
 * answers a ping (a bad request is not fatal) and that a fresh connection does too.
 */
static void check_refused_opt(const char *text, bool no_hello, enum want_id want,
                              const char *code, int err)
{
	struct test_conn c;
	cJSON *reply, *ping;

	if (no_hello)
		test_conn_open(&c, &dmn);
	else
		test_conn_open_hello(&c, &dmn);
	c.next_id = 1000;
	reply = test_conn_request_text(&c, text);
	test_assert_error(reply, code, err);
	switch (want) {
	case ID_NULL:
		test_assert_id_null(reply);
		break;
	case ID_ECHO:
		test_assert_id(reply, REQ_ID);
		break;
	}
	cJSON_Delete(reply);

	if (!no_hello) {
		ping = test_conn_request_op(&c, "ping");
		test_assert_ok(ping);
		cJSON_Delete(ping);
	}
	test_conn_close(&c);
	test_daemon_assert_alive(&dmn);
}

static void check_refused(const char *text, enum want_id want, const char *code, int err)
{
	check_refused_opt(text, false, want, code, err);
}

/* Sends raw bytes on a fresh hello'd connection and asserts the connection-fatal sequence:
 * one error event with code/err, then end of stream; then that the daemon lets go of the
 * connection (status "clients" back to 1) and still serves. */
static void check_fatal(const void *bytes, size_t len, const char *code, int err)
{
	struct test_conn c;
	cJSON *ev;

	test_conn_open_hello(&c, &dmn);
	ck_assert_int_eq(test_conn_send_raw(&c, bytes, len), 0);
	ev = test_conn_recv_frame(&c);
	test_assert_error_event(ev, code, err);
	cJSON_Delete(ev);
	test_conn_expect_eof(&c, TEST_WAIT_MS);
	test_conn_close(&c);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "clients", 1), 1);
	test_daemon_assert_alive(&dmn);
}

/* The daemon drops a connection whose frame is cut short by end of stream, sending nothing. */
static void check_cut_short(const void *bytes, size_t len)
{
	struct test_conn c;

	test_conn_open_hello(&c, &dmn);
	ck_assert_int_eq(test_conn_send_raw(&c, bytes, len), 0);
	ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
	test_conn_expect_eof(&c, TEST_WAIT_MS);
	test_conn_close(&c);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "clients", 1), 1);
	test_daemon_assert_alive(&dmn);
}

/* ---- framing: connection-fatal --------------------------------------------------------- */

START_TEST(test_hostile_zero_length_frame_gets_eproto_event_then_eof)
{
	static const unsigned char zero[4] = { 0, 0, 0, 0 };

	check_fatal(zero, sizeof(zero), "EPROTO", EPROTO);
}
END_TEST

START_TEST(test_hostile_oversize_frame_gets_emsgsize_event_then_eof)
{
	/* The default max_frame is 65536: a header declaring one byte more is refused on sight,
	 * before any payload arrives. */
	static const unsigned char hdr[4] = { 0x00, 0x01, 0x00, 0x01 };

	check_fatal(hdr, sizeof(hdr), "EMSGSIZE", EMSGSIZE);
}
END_TEST

START_TEST(test_hostile_huge_frame_length_gets_emsgsize_event_then_eof)
{
	static const unsigned char hdr[4] = { 0xff, 0xff, 0xff, 0xff };

	check_fatal(hdr, sizeof(hdr), "EMSGSIZE", EMSGSIZE);
}
END_TEST

START_TEST(test_hostile_header_cut_short_then_eof_is_dropped_silently)
{
	static const unsigned char half[2] = { 0, 0 };

	check_cut_short(half, sizeof(half));
}
END_TEST

START_TEST(test_hostile_payload_cut_short_then_eof_is_dropped_silently)
{
	static const unsigned char part[] = { 0, 0, 0, 100, '{', '"', 'i', 'd', '"', ':' };

	check_cut_short(part, sizeof(part));
}
END_TEST

START_TEST(test_hostile_client_sending_fd_on_a_ping_gets_eproto_and_the_fd_is_closed)
{
	static const char ping[] = "\0\0\0\x14{\"id\":2,\"op\":\"ping\"}";
	struct test_conn c;
	cJSON *reply;
	int pfd[2];
	ssize_t n;

	ck_assert_int_eq(sizeof(ping) - 1, 4 + 0x14);
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	test_conn_open_hello(&c, &dmn);
	/* A well-formed ping, with a descriptor riding on its first byte: only adopt may. */
	n = fdpass_send(c.fd, ping, sizeof(ping) - 1, &pfd[0], 1, 0);
	ck_assert_int_eq(n, (ssize_t)(sizeof(ping) - 1));
	close(pfd[0]);
	reply = test_conn_recv_frame(&c);
	test_assert_error(reply, "EPROTO", EPROTO);
	test_assert_id(reply, 2);
	cJSON_Delete(reply);
	/* The daemon closed its copy of the descriptor: our write end sees no reader left. */
	ck_assert_int_eq(write(pfd[1], "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	close(pfd[1]);
	/* Nothing else was lost: the connection serves on. */
	reply = test_conn_callf(&c, "{'op':'ping'}");
	test_assert_ok(reply);
	cJSON_Delete(reply);
	test_conn_close(&c);
	test_daemon_assert_alive(&dmn);
}
END_TEST

/* ---- payloads that are not a JSON object ----------------------------------------------- */

START_TEST(test_hostile_garbage_bytes_get_ebadmsg_with_null_id)
{
	check_refused("\x01\x02garbage\xff\xfe not json at all", ID_NULL, "EBADMSG", EBADMSG);
}
END_TEST

START_TEST(test_hostile_top_level_array_gets_ebadmsg_with_null_id)
{
	check_refused("[{\"id\":7,\"op\":\"ping\"}]", ID_NULL, "EBADMSG", EBADMSG);
}
END_TEST

START_TEST(test_hostile_top_level_string_gets_ebadmsg_with_null_id)
{
	check_refused("\"ping\"", ID_NULL, "EBADMSG", EBADMSG);
}
END_TEST

START_TEST(test_hostile_top_level_number_gets_ebadmsg_with_null_id)
{
	check_refused("7", ID_NULL, "EBADMSG", EBADMSG);
}
END_TEST

START_TEST(test_hostile_trailing_garbage_gets_ebadmsg_with_null_id)
{
	check_refused("{\"id\":7,\"op\":\"ping\"} trailing", ID_NULL, "EBADMSG", EBADMSG);
}
END_TEST

START_TEST(test_hostile_two_objects_in_one_frame_get_ebadmsg_with_null_id)
{
	check_refused("{\"id\":7,\"op\":\"ping\"}{\"id\":8,\"op\":\"ping\"}", ID_NULL, "EBADMSG",
	              EBADMSG);
}
END_TEST

START_TEST(test_hostile_truncated_json_gets_ebadmsg_with_null_id)
{
	check_refused("{\"id\":7,\"op\":\"pi", ID_NULL, "EBADMSG", EBADMSG);
}
END_TEST

/* Builds {"id":7,"op":"ping","x":[[...]]} with `levels` levels of nesting in all, counting the
 * top object as the first. */
static char *nested_request(int levels)
{
	size_t cap = 64 + 2 * (size_t)levels;
	char *s = malloc(cap);
	size_t n;

	ck_assert(s != NULL);
	n = (size_t)snprintf(s, cap, "{\"id\":7,\"op\":\"ping\",\"x\":");
	for (int i = 1; i < levels; i++)
		s[n++] = '[';
	for (int i = 1; i < levels; i++)
		s[n++] = ']';
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

START_TEST(test_hostile_nesting_deeper_than_16_gets_ebadmsg)
{
	/* protocol.md: "nested at most 16 levels deep". 17 levels, the top object counted as
	 * the first, is one too many; such a request is never parsed, so its id is null. */
	char *s = nested_request(17);

	check_refused(s, ID_NULL, "EBADMSG", EBADMSG);
	free(s);
}
END_TEST

START_TEST(test_hostile_nesting_far_deeper_gets_ebadmsg)
{
	char *s = nested_request(10000);

	check_refused(s, ID_NULL, "EBADMSG", EBADMSG);
	free(s);
}
END_TEST

START_TEST(test_hostile_nesting_of_16_is_accepted)
{
	struct test_conn c;
	char *s = nested_request(16);
	cJSON *reply;

	test_conn_open_hello(&c, &dmn);
	reply = test_conn_request_text(&c, s);
	test_assert_ok(reply);
	test_assert_id(reply, REQ_ID);
	cJSON_Delete(reply);
	test_conn_close(&c);
	free(s);
}
END_TEST

/* ---- the id ---------------------------------------------------------------------------- */

START_TEST(test_hostile_id_missing_gets_einval_with_null_id)
{
	check_refused("{\"op\":\"ping\"}", ID_NULL, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_id_string_gets_einval_with_null_id)
{
	check_refused("{\"id\":\"7\",\"op\":\"ping\"}", ID_NULL, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_id_negative_gets_einval_with_null_id)
{
	check_refused("{\"id\":-7,\"op\":\"ping\"}", ID_NULL, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_id_fractional_gets_einval_with_null_id)
{
	check_refused("{\"id\":7.5,\"op\":\"ping\"}", ID_NULL, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_id_2_pow_53_gets_einval_with_null_id)
{
	check_refused("{\"id\":9007199254740992,\"op\":\"ping\"}", ID_NULL, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_id_bool_gets_einval_with_null_id)
{
	check_refused("{\"id\":true,\"op\":\"ping\"}", ID_NULL, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_id_null_gets_einval_with_null_id)
{
	check_refused("{\"id\":null,\"op\":\"ping\"}", ID_NULL, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_id_2_pow_53_minus_1_is_echoed)
{
	struct test_conn c;
	cJSON *reply;
	const cJSON *id;

	test_conn_open_hello(&c, &dmn);
	reply = test_conn_request_text(&c, "{\"id\":9007199254740991,\"op\":\"ping\"}");
	test_assert_ok(reply);
	id = cJSON_GetObjectItemCaseSensitive(reply, "id");
	ck_assert(cJSON_IsNumber(id));
	ck_assert(id->valuedouble == 9007199254740991.0);
	cJSON_Delete(reply);
	test_conn_close(&c);
}
END_TEST

/* ---- the op and the session ------------------------------------------------------------ */

START_TEST(test_hostile_op_missing_gets_einval)
{
	check_refused("{\"id\":7}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_op_number_gets_einval)
{
	check_refused("{\"id\":7,\"op\":3}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_unknown_op_gets_enosys)
{
	check_refused("{\"id\":7,\"op\":\"format-disk\"}", ID_ECHO, "ENOSYS", ENOSYS);
}
END_TEST

START_TEST(test_hostile_request_before_hello_gets_eproto)
{
	check_refused_opt("{\"id\":7,\"op\":\"ping\"}", true, ID_ECHO, "EPROTO", EPROTO);
}
END_TEST

START_TEST(test_hostile_open_before_hello_gets_eproto)
{
	check_refused_opt("{\"id\":7,\"op\":\"open\",\"name\":\"x\",\"mode\":\"rw\",\"create\":true,"
	                  "\"size\":4096}", true, ID_ECHO, "EPROTO", EPROTO);
}
END_TEST

START_TEST(test_hostile_second_hello_gets_eproto)
{
	check_refused("{\"id\":7,\"op\":\"hello\",\"version\":1}", ID_ECHO, "EPROTO", EPROTO);
}
END_TEST

START_TEST(test_hostile_hello_version_0_gets_eprotonosupport)
{
	check_refused_opt("{\"id\":7,\"op\":\"hello\",\"version\":0}", true, ID_ECHO,
	                  "EPROTONOSUPPORT", EPROTONOSUPPORT);
}
END_TEST

START_TEST(test_hostile_hello_version_string_gets_einval)
{
	check_refused_opt("{\"id\":7,\"op\":\"hello\",\"version\":\"1\"}", true, ID_ECHO, "EINVAL",
	                  EINVAL);
}
END_TEST

START_TEST(test_hostile_hello_version_missing_gets_einval)
{
	check_refused_opt("{\"id\":7,\"op\":\"hello\"}", true, ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_hello_client_name_over_64_bytes_gets_einval)
{
	char req[256];

	snprintf(req, sizeof(req), "{\"id\":7,\"op\":\"hello\",\"version\":1,\"client\":\"%065d\"}", 0);
	check_refused_opt(req, true, ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_refused_hello_leaves_session_without_hello)
{
	/* A hello that failed did not open the session: other ops still want hello first, and a
	 * good hello afterwards succeeds. */
	struct test_conn c;
	cJSON *reply;

	test_conn_open(&c, &dmn);
	reply = test_conn_hello_version(&c, 0);
	test_assert_error(reply, "EPROTONOSUPPORT", EPROTONOSUPPORT);
	cJSON_Delete(reply);
	reply = test_conn_request_op(&c, "ping");
	test_assert_error(reply, "EPROTO", EPROTO);
	cJSON_Delete(reply);
	reply = test_conn_hello_version(&c, 1);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	test_conn_close(&c);
	test_daemon_assert_alive(&dmn);
}
END_TEST

/* ---- names ----------------------------------------------------------------------------- */

/* An open request naming `json_name` (already a JSON value: quoted string, number...). */
static void check_open_name(const char *json_name, const char *code, int err)
{
	char *req;
	size_t cap = strlen(json_name) + 128;

	req = malloc(cap);
	ck_assert(req != NULL);
	snprintf(req, cap, "{\"id\":7,\"op\":\"open\",\"name\":%s,\"mode\":\"ro\"}", json_name);
	check_refused(req, ID_ECHO, code, err);
	free(req);
}

START_TEST(test_hostile_name_dotdot_gets_einval)
{
	check_open_name("\"..\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_dot_gets_einval)
{
	check_open_name("\".\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_with_slash_gets_einval)
{
	check_open_name("\"a/b\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_absolute_path_gets_einval)
{
	check_open_name("\"/etc/passwd\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_parent_traversal_gets_einval)
{
	check_open_name("\"../../etc/passwd\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_empty_gets_einval)
{
	check_open_name("\"\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_256_bytes_gets_enametoolong)
{
	char name[256 + 3];

	name[0] = '"';
	memset(name + 1, 'a', 256);
	name[257] = '"';
	name[258] = '\0';
	check_open_name(name, "ENAMETOOLONG", ENAMETOOLONG);
}
END_TEST

START_TEST(test_hostile_name_255_bytes_is_valid_and_absent)
{
	/* The longest valid name passes validation and reaches the lookup. */
	char name[255 + 3];

	name[0] = '"';
	memset(name + 1, 'b', 255);
	name[256] = '"';
	name[257] = '\0';
	check_open_name(name, "ENOENT", ENOENT);
}
END_TEST

START_TEST(test_hostile_name_with_escaped_nul_gets_ebadmsg)
{
	/* cJSON would stop the string at the NUL and see "ab": protocol.md makes the whole
	 * request EBADMSG, answered with its id, which could still be read. */
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"ab\\u0000cd\",\"mode\":\"rw\","
	              "\"create\":true,\"size\":4096}", ID_ECHO, "EBADMSG", EBADMSG);
}
END_TEST

START_TEST(test_hostile_repeated_key_gets_ebadmsg_with_its_id)
{
	/* Which of two values a parser keeps differs between parsers: refused, not guessed. */
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"a\",\"name\":\"b\"}", ID_ECHO,
	              "EBADMSG", EBADMSG);
	check_refused("{\"id\":7,\"op\":\"ping\",\"x\":{\"k\":1,\"k\":2}}", ID_ECHO, "EBADMSG",
	              EBADMSG);
}
END_TEST

START_TEST(test_hostile_name_with_control_char_gets_einval)
{
	check_open_name("\"a\\u0001b\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_with_newline_gets_einval)
{
	check_open_name("\"a\\nb\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_with_space_gets_einval)
{
	check_open_name("\"a b\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_non_ascii_gets_einval)
{
	check_open_name("\"caf\xc3\xa9\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_leading_dash_gets_einval)
{
	check_open_name("\"-rf\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_hidden_gets_einval)
{
	check_open_name("\".hidden\"", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_as_number_gets_einval)
{
	check_open_name("42", "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_name_missing_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"open\",\"mode\":\"ro\"}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_stat_name_dotdot_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"stat\",\"name\":\"..\"}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_delete_name_with_slash_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"delete\",\"name\":\"data/x\"}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

/* ---- what the data directory holds ----------------------------------------------------- */

static char *read_file(const char *path, size_t *ret_len)
{
	static char buf[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert(n >= 0);
	buf[n] = '\0';
	*ret_len = (size_t)n;
	return buf;
}

START_TEST(test_hostile_symlink_in_data_dir_gets_eloop_and_target_untouched)
{
	static const char *const reqs[] = {
		"{\"id\":7,\"op\":\"open\",\"name\":\"planted-link\",\"mode\":\"ro\"}",
		"{\"id\":7,\"op\":\"open\",\"name\":\"planted-link\",\"mode\":\"rw\"}",
		"{\"id\":7,\"op\":\"open\",\"name\":\"planted-link\",\"mode\":\"cow\"}",
		("{\"id\":7,\"op\":\"open\",\"name\":\"planted-link\",\"mode\":\"rw\",\"create\":true,"
		"\"size\":1048576}"),
		"{\"id\":7,\"op\":\"stat\",\"name\":\"planted-link\"}",
		"{\"id\":7,\"op\":\"delete\",\"name\":\"planted-link\"}",
	};
	char target[PATH_MAX], link[PATH_MAX];
	struct stat before, after, lst;
	size_t len;
	int fd;

	/* The target lies outside the data directory (a file of our own, not /etc/...: a daemon
	 * that followed the link with create would truncate or extend it). */
	snprintf(target, sizeof(target), "%s/outside-target", dmn.dir);
	snprintf(link, sizeof(link), "%s/planted-link", dmn.data);
	fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert(fd >= 0);
	ck_assert_int_eq(write(fd, "precious\n", 9), 9);
	close(fd);
	ck_assert_int_eq(stat(target, &before), 0);
	ck_assert_int_eq(symlink(target, link), 0);

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		check_refused(reqs[i], ID_ECHO, "ELOOP", ELOOP);

	ck_assert_int_eq(stat(target, &after), 0);
	ck_assert_int_eq(after.st_size, 9);
	ck_assert_int_eq(after.st_ino, before.st_ino);
	ck_assert(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
	          after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
	ck_assert_str_eq(read_file(target, &len), "precious\n");
	/* delete refused: the link itself is still there. */
	ck_assert_int_eq(lstat(link, &lst), 0);
	ck_assert(S_ISLNK(lst.st_mode));
	unlink(link);
	unlink(target);
}
END_TEST

START_TEST(test_hostile_symlink_to_etc_gets_eloop)
{
	char link[PATH_MAX];

	snprintf(link, sizeof(link), "%s/etc-passwd-link", dmn.data);
	ck_assert_int_eq(symlink("/etc/passwd", link), 0);
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"etc-passwd-link\",\"mode\":\"ro\"}", ID_ECHO,
	              "ELOOP", ELOOP);
	unlink(link);
}
END_TEST

START_TEST(test_hostile_directory_in_data_dir_gets_einval)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/planted-dir", dmn.data);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"planted-dir\",\"mode\":\"ro\"}", ID_ECHO,
	              "EINVAL", EINVAL);
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"planted-dir\",\"mode\":\"rw\",\"create\":true,"
	              "\"size\":4096}", ID_ECHO, "EINVAL", EINVAL);
	check_refused("{\"id\":7,\"op\":\"stat\",\"name\":\"planted-dir\"}", ID_ECHO, "EINVAL", EINVAL);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_hostile_fifo_in_data_dir_gets_einval)
{
	char path[PATH_MAX];

	/* Opening a FIFO would block the daemon if it did not check the type first. */
	snprintf(path, sizeof(path), "%s/planted-fifo", dmn.data);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"planted-fifo\",\"mode\":\"ro\"}", ID_ECHO,
	              "EINVAL", EINVAL);
	unlink(path);
}
END_TEST

/* ---- open's fields --------------------------------------------------------------------- */

START_TEST(test_hostile_size_above_max_region_size_gets_efbig)
{
	/* The default max_region_size is 1 TiB (2^40). */
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"size-huge\",\"mode\":\"rw\","
	              "\"create\":true,\"size\":1099511627777}", ID_ECHO, "EFBIG", EFBIG);
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"size-huge\",\"mode\":\"rw\","
	              "\"create\":true,\"size\":9007199254740991}", ID_ECHO, "EFBIG", EFBIG);
}
END_TEST

START_TEST(test_hostile_size_as_string_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"size-string\",\"mode\":\"rw\","
	              "\"create\":true,\"size\":\"4096\"}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_size_negative_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"size-negative\",\"mode\":\"rw\","
	              "\"create\":true,\"size\":-4096}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_size_missing_with_create_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"size-missing\",\"mode\":\"rw\","
	              "\"create\":true}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

/*
 * Creates region name, so that ENOENT cannot be the answer; checks text (an open of it) is
 * refused with EINVAL and its id echoed; deletes name.
 */
static void check_einval_on_existing(const char *name, const char *text)
{
	test_daemon_create(&dmn, name, 4096, false);
	check_refused(text, ID_ECHO, "EINVAL", EINVAL);
	test_daemon_delete(&dmn, name);
}

START_TEST(test_hostile_size_without_create_gets_einval)
{
	check_einval_on_existing("size-no-create",
	                         "{\"id\":7,\"op\":\"open\",\"name\":\"size-no-create\",\"mode\":\"ro\","
	                         "\"size\":4096}");
}
END_TEST

START_TEST(test_hostile_anonymous_without_create_gets_einval)
{
	check_einval_on_existing("anon-no-create",
	                         "{\"id\":7,\"op\":\"open\",\"name\":\"anon-no-create\",\"mode\":\"ro\","
	                         "\"anonymous\":true}");
}
END_TEST

START_TEST(test_hostile_exclusive_without_create_gets_einval)
{
	check_einval_on_existing("excl-no-create",
	                         "{\"id\":7,\"op\":\"open\",\"name\":\"excl-no-create\",\"mode\":\"ro\","
	                         "\"exclusive\":true}");
}
END_TEST

START_TEST(test_hostile_mode_rwx_gets_einval)
{
	check_einval_on_existing("mode-rwx",
	                         "{\"id\":7,\"op\":\"open\",\"name\":\"mode-rwx\",\"mode\":\"rwx\"}");
}
END_TEST

START_TEST(test_hostile_mode_number_gets_einval)
{
	check_einval_on_existing("mode-number",
	                         "{\"id\":7,\"op\":\"open\",\"name\":\"mode-number\",\"mode\":1}");
}
END_TEST

START_TEST(test_hostile_create_as_1_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"create-one\",\"mode\":\"rw\","
	              "\"create\":1,\"size\":4096}", ID_ECHO, "EINVAL", EINVAL);
	check_refused("{\"id\":7,\"op\":\"stat\",\"name\":\"create-one\"}", ID_ECHO, "ENOENT", ENOENT);
}
END_TEST

START_TEST(test_hostile_create_as_string_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"create-string\",\"mode\":\"rw\","
	              "\"create\":\"true\",\"size\":4096}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_open_nonexistent_gets_enoent)
{
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"no-such-region\",\"mode\":\"ro\"}", ID_ECHO,
	              "ENOENT", ENOENT);
	check_refused("{\"id\":7,\"op\":\"stat\",\"name\":\"no-such-region\"}", ID_ECHO, "ENOENT",
	              ENOENT);
	check_refused("{\"id\":7,\"op\":\"delete\",\"name\":\"no-such-region\"}", ID_ECHO, "ENOENT",
	              ENOENT);
}
END_TEST

START_TEST(test_hostile_exclusive_on_existing_gets_eexist)
{
	const cJSON *region;
	cJSON *st;

	test_daemon_create(&dmn, "excl-exists", 8192, false);
	check_refused("{\"id\":7,\"op\":\"open\",\"name\":\"excl-exists\",\"mode\":\"rw\","
	              "\"create\":true,\"exclusive\":true,\"size\":4096}", ID_ECHO, "EEXIST", EEXIST);
	/* The region was left as it was. */
	st = test_daemon_stat(&dmn, "excl-exists", &region);
	ck_assert_uint_eq(test_json_u64(region, "size"), 8192);
	cJSON_Delete(st);
	test_daemon_delete(&dmn, "excl-exists");
}
END_TEST

START_TEST(test_hostile_close_unknown_handle_gets_ebadf)
{
	check_refused("{\"id\":7,\"op\":\"close\",\"handle\":123456}", ID_ECHO, "EBADF", EBADF);
}
END_TEST

START_TEST(test_hostile_close_handle_as_string_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"close\",\"handle\":\"1\"}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_close_other_connections_handle_gets_ebadf)
{
	struct test_conn a, b;
	cJSON *req, *reply;
	uint64_t handle;
	char text[128];

	test_daemon_create(&dmn, "foreign-handle", 4096, false);
	test_conn_open_hello(&a, &dmn);
	test_conn_open_hello(&b, &dmn);
	req = cJSON_Parse("{\"op\":\"open\",\"name\":\"foreign-handle\",\"mode\":\"ro\"}");
	reply = test_conn_request(&a, req);
	test_assert_ok(reply);
	handle = test_json_u64(reply, "handle");
	close(test_conn_take_fd(&a));
	cJSON_Delete(reply);

	/* Handles name grants of one connection: b cannot release a's. */
	snprintf(text, sizeof(text), "{\"id\":7,\"op\":\"close\",\"handle\":%llu}",
	         (unsigned long long)handle);
	reply = test_conn_request_text(&b, text);
	test_assert_error(reply, "EBADF", EBADF);
	cJSON_Delete(reply);
	/* And a can, once; the second time the handle is gone. */
	snprintf(text, sizeof(text), "{\"id\":8,\"op\":\"close\",\"handle\":%llu}",
	         (unsigned long long)handle);
	reply = test_conn_request_text(&a, text);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	reply = test_conn_request_text(&a, text);
	test_assert_error(reply, "EBADF", EBADF);
	cJSON_Delete(reply);
	test_conn_close(&a);
	test_conn_close(&b);
	test_daemon_delete(&dmn, "foreign-handle");
	test_daemon_assert_alive(&dmn);
}
END_TEST

START_TEST(test_hostile_list_limit_0_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"list\",\"limit\":0}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_list_limit_1001_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"list\",\"limit\":1001}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

START_TEST(test_hostile_list_after_number_gets_einval)
{
	check_refused("{\"id\":7,\"op\":\"list\",\"after\":5}", ID_ECHO, "EINVAL", EINVAL);
}
END_TEST

/* ---- limits ------------------------------------------------------------------------------ */

static uint64_t conn_status_u64(struct test_conn *c, const char *key)
{
	cJSON *reply = test_conn_request_op(c, "status");
	uint64_t v;

	test_assert_ok(reply);
	v = test_json_u64(reply, key);
	cJSON_Delete(reply);
	return v;
}

/* Polls status on c until key equals want; returns the last value. */
static uint64_t conn_wait_status(struct test_conn *c, const char *key, uint64_t want)
{
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;

	for (;;) {
		uint64_t v = conn_status_u64(c, key);

		if (v == want || test_now_ms() >= deadline)
			return v;
		usleep(10000);
	}
}

static void conn_ping_ok(struct test_conn *c)
{
	cJSON *reply = test_conn_request_op(c, "ping");

	test_assert_ok(reply);
	cJSON_Delete(reply);
}

/* A connection that never says hello is cut off after hello_timeout_ms, with the reason. */
START_TEST(test_hostile_connection_without_hello_is_cut_off_after_hello_timeout)
{
	struct test_daemon d;
	struct test_conn idle, fine;
	cJSON *ev;

	test_daemon_start(&d, "{\"hello_timeout_ms\": 200}");
	test_conn_open(&idle, &d);
	test_conn_open_hello(&fine, &d);
	ev = test_conn_recv_frame(&idle);
	test_assert_error_event(ev, "ETIMEDOUT", ETIMEDOUT);
	cJSON_Delete(ev);
	test_conn_expect_eof(&idle, TEST_WAIT_MS);
	test_conn_close(&idle);
	/* The one that said hello in time stays, well past the timeout. */
	usleep(400 * 1000);
	conn_ping_ok(&fine);
	test_conn_close(&fine);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_hostile_too_many_connections_get_eusers_event_others_still_work)
{
	struct test_conn c[LIMIT_CLIENTS], extra, late;
	cJSON *ev;

	/* Start from a quiet daemon: the first connection watches the count settle. */
	test_conn_open_hello(&c[0], &dmn);
	ck_assert_uint_eq(conn_wait_status(&c[0], "clients", 1), 1);
	for (int i = 1; i < LIMIT_CLIENTS; i++)
		test_conn_open_hello(&c[i], &dmn);
	ck_assert_uint_eq(conn_status_u64(&c[0], "clients"), LIMIT_CLIENTS);

	/* The fifth is told why and closed, without having said anything. */
	test_conn_open(&extra, &dmn);
	ev = test_conn_recv_frame(&extra);
	test_assert_error_event(ev, "EUSERS", EUSERS);
	cJSON_Delete(ev);
	test_conn_expect_eof(&extra, TEST_WAIT_MS);
	test_conn_close(&extra);

	for (int i = 0; i < LIMIT_CLIENTS; i++)
		conn_ping_ok(&c[i]);
	ck_assert_uint_eq(conn_status_u64(&c[0], "clients"), LIMIT_CLIENTS);

	/* A slot that frees up can be taken again. */
	test_conn_close(&c[LIMIT_CLIENTS - 1]);
	ck_assert_uint_eq(conn_wait_status(&c[0], "clients", LIMIT_CLIENTS - 1), LIMIT_CLIENTS - 1);
	test_conn_open_hello(&late, &dmn);
	conn_ping_ok(&late);
	test_conn_close(&late);
	for (int i = 0; i < LIMIT_CLIENTS - 1; i++)
		test_conn_close(&c[i]);
	test_daemon_assert_alive(&dmn);
}
END_TEST

static cJSON *open_ro(struct test_conn *c, const char *name)
{
	cJSON *req = cJSON_CreateObject();

	cJSON_AddStringToObject(req, "op", "open");
	cJSON_AddStringToObject(req, "name", name);
	cJSON_AddStringToObject(req, "mode", "ro");
	return test_conn_request(c, req);
}

START_TEST(test_hostile_grants_over_max_grants_per_client_get_eagain)
{
	struct test_conn a, b;
	uint64_t handles[LIMIT_GRANTS];
	cJSON *reply;
	char text[128];

	test_daemon_create(&dmn, "grant-limit", 4096, false);
	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
	test_conn_open_hello(&a, &dmn);
	for (int i = 0; i < LIMIT_GRANTS; i++) {
		reply = open_ro(&a, "grant-limit");
		test_assert_ok(reply);
		handles[i] = test_json_u64(reply, "handle");
		close(test_conn_take_fd(&a));
		cJSON_Delete(reply);
	}
	reply = open_ro(&a, "grant-limit");
	test_assert_error(reply, "EAGAIN", EAGAIN);
	ck_assert_msg(!cJSON_HasObjectItem(reply, "fds"), "a refused open must carry no descriptor");
	cJSON_Delete(reply);
	ck_assert_uint_eq(test_daemon_status_u64(&dmn, "grants"), LIMIT_GRANTS);

	/* The limit is per client: another connection still gets a grant. */
	test_conn_open_hello(&b, &dmn);
	reply = open_ro(&b, "grant-limit");
	test_assert_ok(reply);
	close(test_conn_take_fd(&b));
	cJSON_Delete(reply);
	test_conn_close(&b);

	/* Releasing one grant makes room for one more. */
	snprintf(text, sizeof(text), "{\"id\":99,\"op\":\"close\",\"handle\":%llu}",
	         (unsigned long long)handles[0]);
	reply = test_conn_request_text(&a, text);
	test_assert_ok(reply);
	cJSON_Delete(reply);
	reply = open_ro(&a, "grant-limit");
	test_assert_ok(reply);
	close(test_conn_take_fd(&a));
	cJSON_Delete(reply);
	reply = open_ro(&a, "grant-limit");
	test_assert_error(reply, "EAGAIN", EAGAIN);
	cJSON_Delete(reply);
	test_conn_close(&a);

	ck_assert_uint_eq(test_daemon_wait_status(&dmn, "grants", 0), 0);
	test_daemon_delete(&dmn, "grant-limit");
	test_daemon_assert_alive(&dmn);
}
END_TEST

START_TEST(test_hostile_flooding_client_that_never_reads_is_cut_off_others_served)
{
	/* Requests whose replies are large (status: several hundred bytes), sent as fast as the
	 * daemon takes them, and no reply read: once more than max_queue_bytes wait for this
	 * client, the daemon must close it at once (no event), and keep serving the others. */
	enum { N = 20000 };
	static const char tmpl[] = "{\"id\":%d,\"op\":\"status\"}";
	struct test_conn flood, other;
	char *buf, one[64];
	size_t len = 0, cap = (size_t)N * 40;
	int r, frames = 0;
	cJSON *obj;

	test_conn_open_hello(&other, &dmn);
	ck_assert_uint_eq(conn_wait_status(&other, "clients", 1), 1);
	test_conn_open_hello(&flood, &dmn);

	buf = malloc(cap);
	ck_assert(buf != NULL);
	for (int i = 0; i < N; i++) {
		int n = snprintf(one, sizeof(one), tmpl, 100 + i);

		len += test_frame_put(buf + len, one, (size_t)n);
	}
	r = test_conn_send_raw(&flood, buf, len);
	free(buf);
	/* Either all went out and the daemon cut us off while working through them, or it cut
	 * us off first and the send failed; it must not simply stop reading (a timeout). */
	ck_assert_msg(r == 0 || r == -EPIPE || r == -ECONNRESET,
	              "sending the flood: %s (did the daemon stop reading without cutting the "
	              "client off?)", strerror(-r));

	/* The other client is served meanwhile, and sees the flooder go. */
	conn_ping_ok(&other);
	ck_assert_uint_eq(conn_wait_status(&other, "clients", 1), 1);

	/* What the flooder can still read is replies (no error event: closed at once), then
	 * the end of the stream, well before all N replies. */
	for (;;) {
		r = test_conn_recv(&flood, TEST_WAIT_MS, &obj);
		if (r != 1)
			break;
		ck_assert_msg(cJSON_HasObjectItem(obj, "id"),
		              "a client cut off for not reading gets no event, got %s",
		              cJSON_PrintUnformatted(obj));
		cJSON_Delete(obj);
		frames++;
	}
	ck_assert_msg(r == 0 || r == -ECONNRESET, "expected end of stream, got %s", strerror(-r));
	ck_assert_msg(frames < N, "all %d replies arrived: the client was not cut off", frames);
	test_conn_close(&flood);

	conn_ping_ok(&other);
	test_conn_close(&other);
	test_daemon_assert_alive(&dmn);
}
END_TEST

/* ---- half-closed clients (found by tests/fuzz/fuzz_ops.c) ------------------------------ */

/*
 * A client that sends its requests and then shuts down its sending side (SHUT_WR) gets every
 * reply, also to a request that waited behind a region another client is creating. The daemon
 * used to drop the last such request: run again once the region was ready, it no longer
 * counted as pending, so the half-closed connection looked idle and was closed first.
 */
START_TEST(test_hostile_half_closed_client_gets_the_reply_to_a_request_that_waited)
{
	int round;

	for (round = 0; round < 5; round++) {
		struct test_conn creator, c;
		bool got_stat = false;
		uint64_t open_id, id;
		cJSON *msg;

		test_conn_open_hello(&creator, &dmn);
		test_conn_open_hello(&c, &dmn);
		open_id = test_conn_sendf(&creator, "{'op':'open','name':'halfclosed-%d','mode':'rw',"
		                          "'create':true,'size':16777216}", round);
		/* Sent at once, so that it arrives while the creation runs. */
		test_conn_sendf(&c, "{'op':'stat','name':'halfclosed-%d'}", round);
		ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
		while (test_conn_recv(&c, TEST_WAIT_MS, &msg) == 1) {
			ck_assert_int_eq(msg_get_u64(msg, "id", &id), 0);
			got_stat = true;
			cJSON_Delete(msg);
		}
		ck_assert_msg(got_stat, "round %d: no reply to the stat before end of stream", round);
		test_conn_close(&c);
		msg = test_conn_reply(&creator, open_id, TEST_WAIT_MS);
		test_assert_ok(msg);
		cJSON_Delete(msg);
		test_conn_close(&creator);
	}
	test_daemon_assert_alive(&dmn);
}
END_TEST

static Suite *hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("protocol");
	TCase *lim = tcase_create("limits");

	tcase_add_unchecked_fixture(tc, protocol_setup, daemon_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);

	tcase_add_test(tc, test_hostile_zero_length_frame_gets_eproto_event_then_eof);
	tcase_add_test(tc, test_hostile_oversize_frame_gets_emsgsize_event_then_eof);
	tcase_add_test(tc, test_hostile_huge_frame_length_gets_emsgsize_event_then_eof);
	tcase_add_test(tc, test_hostile_header_cut_short_then_eof_is_dropped_silently);
	tcase_add_test(tc, test_hostile_payload_cut_short_then_eof_is_dropped_silently);
	tcase_add_test(tc, test_hostile_client_sending_fd_on_a_ping_gets_eproto_and_the_fd_is_closed);

	tcase_add_test(tc, test_hostile_garbage_bytes_get_ebadmsg_with_null_id);
	tcase_add_test(tc, test_hostile_top_level_array_gets_ebadmsg_with_null_id);
	tcase_add_test(tc, test_hostile_top_level_string_gets_ebadmsg_with_null_id);
	tcase_add_test(tc, test_hostile_top_level_number_gets_ebadmsg_with_null_id);
	tcase_add_test(tc, test_hostile_trailing_garbage_gets_ebadmsg_with_null_id);
	tcase_add_test(tc, test_hostile_two_objects_in_one_frame_get_ebadmsg_with_null_id);
	tcase_add_test(tc, test_hostile_truncated_json_gets_ebadmsg_with_null_id);
	tcase_add_test(tc, test_hostile_nesting_deeper_than_16_gets_ebadmsg);
	tcase_add_test(tc, test_hostile_nesting_far_deeper_gets_ebadmsg);
	tcase_add_test(tc, test_hostile_nesting_of_16_is_accepted);

	tcase_add_test(tc, test_hostile_id_missing_gets_einval_with_null_id);
	tcase_add_test(tc, test_hostile_id_string_gets_einval_with_null_id);
	tcase_add_test(tc, test_hostile_id_negative_gets_einval_with_null_id);
	tcase_add_test(tc, test_hostile_id_fractional_gets_einval_with_null_id);
	tcase_add_test(tc, test_hostile_id_2_pow_53_gets_einval_with_null_id);
	tcase_add_test(tc, test_hostile_id_bool_gets_einval_with_null_id);
	tcase_add_test(tc, test_hostile_id_null_gets_einval_with_null_id);
	tcase_add_test(tc, test_hostile_id_2_pow_53_minus_1_is_echoed);

	tcase_add_test(tc, test_hostile_op_missing_gets_einval);
	tcase_add_test(tc, test_hostile_op_number_gets_einval);
	tcase_add_test(tc, test_hostile_unknown_op_gets_enosys);
	tcase_add_test(tc, test_hostile_request_before_hello_gets_eproto);
	tcase_add_test(tc, test_hostile_open_before_hello_gets_eproto);
	tcase_add_test(tc, test_hostile_second_hello_gets_eproto);
	tcase_add_test(tc, test_hostile_hello_version_0_gets_eprotonosupport);
	tcase_add_test(tc, test_hostile_hello_version_string_gets_einval);
	tcase_add_test(tc, test_hostile_hello_version_missing_gets_einval);
	tcase_add_test(tc, test_hostile_hello_client_name_over_64_bytes_gets_einval);
	tcase_add_test(tc, test_hostile_refused_hello_leaves_session_without_hello);

	tcase_add_test(tc, test_hostile_name_dotdot_gets_einval);
	tcase_add_test(tc, test_hostile_name_dot_gets_einval);
	tcase_add_test(tc, test_hostile_name_with_slash_gets_einval);
	tcase_add_test(tc, test_hostile_name_absolute_path_gets_einval);
	tcase_add_test(tc, test_hostile_name_parent_traversal_gets_einval);
	tcase_add_test(tc, test_hostile_name_empty_gets_einval);
	tcase_add_test(tc, test_hostile_name_256_bytes_gets_enametoolong);
	tcase_add_test(tc, test_hostile_name_255_bytes_is_valid_and_absent);
	tcase_add_test(tc, test_hostile_name_with_escaped_nul_gets_ebadmsg);
	tcase_add_test(tc, test_hostile_repeated_key_gets_ebadmsg_with_its_id);
	tcase_add_test(tc, test_hostile_name_with_control_char_gets_einval);
	tcase_add_test(tc, test_hostile_name_with_newline_gets_einval);
	tcase_add_test(tc, test_hostile_name_with_space_gets_einval);
	tcase_add_test(tc, test_hostile_name_non_ascii_gets_einval);
	tcase_add_test(tc, test_hostile_name_leading_dash_gets_einval);
	tcase_add_test(tc, test_hostile_name_hidden_gets_einval);
	tcase_add_test(tc, test_hostile_name_as_number_gets_einval);
	tcase_add_test(tc, test_hostile_name_missing_gets_einval);
	tcase_add_test(tc, test_hostile_stat_name_dotdot_gets_einval);
	tcase_add_test(tc, test_hostile_delete_name_with_slash_gets_einval);

	tcase_add_test(tc, test_hostile_symlink_in_data_dir_gets_eloop_and_target_untouched);
	tcase_add_test(tc, test_hostile_symlink_to_etc_gets_eloop);
	tcase_add_test(tc, test_hostile_directory_in_data_dir_gets_einval);
	tcase_add_test(tc, test_hostile_fifo_in_data_dir_gets_einval);

	tcase_add_test(tc, test_hostile_size_above_max_region_size_gets_efbig);
	tcase_add_test(tc, test_hostile_size_as_string_gets_einval);
	tcase_add_test(tc, test_hostile_size_negative_gets_einval);
	tcase_add_test(tc, test_hostile_size_missing_with_create_gets_einval);
	tcase_add_test(tc, test_hostile_size_without_create_gets_einval);
	tcase_add_test(tc, test_hostile_anonymous_without_create_gets_einval);
	tcase_add_test(tc, test_hostile_exclusive_without_create_gets_einval);
	tcase_add_test(tc, test_hostile_mode_rwx_gets_einval);
	tcase_add_test(tc, test_hostile_mode_number_gets_einval);
	tcase_add_test(tc, test_hostile_create_as_1_gets_einval);
	tcase_add_test(tc, test_hostile_create_as_string_gets_einval);
	tcase_add_test(tc, test_hostile_open_nonexistent_gets_enoent);
	tcase_add_test(tc, test_hostile_exclusive_on_existing_gets_eexist);
	tcase_add_test(tc, test_hostile_close_unknown_handle_gets_ebadf);
	tcase_add_test(tc, test_hostile_close_handle_as_string_gets_einval);
	tcase_add_test(tc, test_hostile_close_other_connections_handle_gets_ebadf);
	tcase_add_test(tc, test_hostile_list_limit_0_gets_einval);
	tcase_add_test(tc, test_hostile_list_limit_1001_gets_einval);
	tcase_add_test(tc, test_hostile_list_after_number_gets_einval);
	tcase_add_test(tc, test_hostile_half_closed_client_gets_the_reply_to_a_request_that_waited);
	suite_add_tcase(s, tc);

	tcase_add_unchecked_fixture(lim, limits_setup, daemon_teardown);
	tcase_add_checked_fixture(lim, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(lim, 30);
	tcase_add_test(lim, test_hostile_too_many_connections_get_eusers_event_others_still_work);
	tcase_add_test(lim, test_hostile_connection_without_hello_is_cut_off_after_hello_timeout);
	tcase_add_test(lim, test_hostile_grants_over_max_grants_per_client_get_eagain);
	tcase_add_test(lim, test_hostile_flooding_client_that_never_reads_is_cut_off_others_served);
	suite_add_tcase(s, lim);
	return s;
}

int main(void)
{
	return test_run_suite(hostile_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
