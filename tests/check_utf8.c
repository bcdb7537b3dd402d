/* SPDX-License-Identifier: MIT */
/*
 * Tests of the rule that every string mmapd sends is valid UTF-8. Unit tests of proto/utf8.c
 * (test case "utf8": tables of valid and invalid sequences, and the U+FFFD replacement), then
 * end-to-end tests against a real mmapd (test case "daemon"): a client running as uid 65534
 * sends invalid bytes in its hello name, in an op, in a region name and in a key, and files
 * whose names are not valid UTF-8 are put in the data directory. Every frame those clients
 * and a root client then receive is read raw and checked byte by byte with utf8_check before
 * anything parses it, so the tests see what a strict parser in another language would see.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "msg.h"
#include "utf8.h"

#define NOBODY 65534u   /* uid and gid of nobody/nogroup on Debian */

/* One case of the tables: bytes (not NUL-terminated: len), and the offset of the first bad byte. */
struct utf8_case {
	const char *bytes;
	size_t len;
	size_t bad;
};

#define UTF8_OK(s) { s, sizeof(s) - 1, 0 }
#define UTF8_BAD(s, at) { s, sizeof(s) - 1, at }

static const struct utf8_case utf8_valid[] = {
	UTF8_OK(""),
	UTF8_OK("plain ASCII {\"op\":\"ping\"}"),
	UTF8_OK("\x00"),                     /* U+0000 is valid UTF-8; msg_parse refuses it apart */
	UTF8_OK("\x7f"),
	UTF8_OK("\xc2\x80"),                 /* U+0080, the smallest 2-byte sequence */
	UTF8_OK("\xdf\xbf"),                 /* U+07FF */
	UTF8_OK("\xe0\xa0\x80"),             /* U+0800, the smallest 3-byte sequence */
	UTF8_OK("\xed\x9f\xbf"),             /* U+D7FF, just below the surrogates */
	UTF8_OK("\xee\x80\x80"),             /* U+E000, just above them */
	UTF8_OK("\xef\xbf\xbd"),             /* U+FFFD */
	UTF8_OK("\xef\xbf\xbf"),             /* U+FFFF */
	UTF8_OK("\xf0\x90\x80\x80"),         /* U+10000, the smallest 4-byte sequence */
	UTF8_OK("\xf0\x9f\x98\x80"),         /* U+1F600 */
	UTF8_OK("\xf4\x8f\xbf\xbf"),         /* U+10FFFF, the largest code point */
	UTF8_OK("caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80!"),
};

static const struct utf8_case utf8_invalid[] = {
	UTF8_BAD("\xc0\x80", 0),             /* overlong U+0000 */
	UTF8_BAD("\xc1\xbf", 0),             /* overlong U+007F */
	UTF8_BAD("\xe0\x80\x80", 0),         /* overlong U+0000 in 3 bytes */
	UTF8_BAD("\xe0\x9f\xbf", 0),         /* overlong U+07FF */
	UTF8_BAD("\xf0\x80\x80\x80", 0),     /* overlong U+0000 in 4 bytes */
	UTF8_BAD("\xf0\x8f\xbf\xbf", 0),     /* overlong U+FFFF */
	UTF8_BAD("\xed\xa0\x80", 0),         /* U+D800, a surrogate encoded directly */
	UTF8_BAD("\xed\xbf\xbf", 0),         /* U+DFFF */
	UTF8_BAD("\xed\xa0\xbd\xed\xb8\x80", 0), /* a surrogate pair in CESU-8 */
	UTF8_BAD("\xf4\x90\x80\x80", 0),     /* U+110000, above the largest code point */
	UTF8_BAD("\xf5\x80\x80\x80", 0),
	UTF8_BAD("\xf8\x88\x80\x80\x80", 0), /* the old 5-byte form */
	UTF8_BAD("\xfe", 0),
	UTF8_BAD("\xff", 0),
	UTF8_BAD("\x80", 0),                 /* a lone continuation byte */
	UTF8_BAD("ab\xbf", 2),
	UTF8_BAD("\xc3\xa9\x80", 2),         /* a continuation byte after a whole sequence */
	UTF8_BAD("\xc3", 0),                 /* truncated at the end */
	UTF8_BAD("ab\xe2\x82", 2),
	UTF8_BAD("\xf0\x9f\x98", 0),
	UTF8_BAD("\xc3(", 0),                /* truncated by an ASCII byte */
	UTF8_BAD("\xe2\x28\xa1", 0),
	UTF8_BAD("\xf0\x9f(\x80", 0),
	UTF8_BAD("ok \xc3\xa9 then \xff", 11),
};

#define NCASES(t) (sizeof(t) / sizeof((t)[0]))

START_TEST(test_utf8_accepts_valid_sequences)
{
	const struct utf8_case *t = &utf8_valid[_i];
	size_t bad = 12345;

	ck_assert_msg(utf8_check(t->bytes, t->len, &bad) == 0, "case %d refused at byte %zu",
	              _i, bad);
	ck_assert_uint_eq(bad, 12345);
	ck_assert_int_eq(utf8_check(t->bytes, t->len, NULL), 0);
	ck_assert_uint_eq(utf8_sanitize(t->bytes, t->len, NULL), t->len);
}
END_TEST

START_TEST(test_utf8_rejects_invalid_sequences_at_first_bad_byte)
{
	const struct utf8_case *t = &utf8_invalid[_i];
	size_t bad = 12345;

	ck_assert_msg(utf8_check(t->bytes, t->len, &bad) == -EILSEQ, "case %d accepted", _i);
	ck_assert_msg(bad == t->bad, "case %d: bad byte at %zu, expected %zu", _i, bad, t->bad);
	ck_assert_int_eq(utf8_check(t->bytes, t->len, NULL), -EILSEQ);
	/* The prefix before the bad byte is itself valid. */
	ck_assert_int_eq(utf8_check(t->bytes, bad, NULL), 0);
}
END_TEST

START_TEST(test_utf8_sanitize_replaces_each_bad_byte)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "a\xff" "b", "a\xef\xbf\xbd" "b" },
		{ "\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd" },
		{ "x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xed\xa0\x80!", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!" },
		/* The byte after a bad one may start a valid sequence, which is kept. */
		{ "\xe2\xc3\xa9", "\xef\xbf\xbd\xc3\xa9" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
	};
	char out[64];

	for (size_t i = 0; i < NCASES(cases); i++) {
		size_t in_len = strlen(cases[i].in), n = utf8_sanitize(cases[i].in, in_len, NULL);

		ck_assert_uint_eq(n, strlen(cases[i].out));
		ck_assert_uint_le(n, 3 * in_len);
		memset(out, 0, sizeof(out));
		ck_assert_uint_eq(utf8_sanitize(cases[i].in, in_len, out), n);
		ck_assert_msg(memcmp(out, cases[i].out, n) == 0, "case %zu", i);
		ck_assert_int_eq(utf8_check(out, n, NULL), 0);
	}
}
END_TEST

/* ---- against a daemon ------------------------------------------------------------------ */

/* Reads exactly len bytes of c within TEST_WAIT_MS. */
static void utf8_read_exact(struct test_conn *c, void *buf, size_t len)
{
	int64_t deadline = test_now_ms() + TEST_WAIT_MS;
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int64_t left = deadline - test_now_ms();
		ssize_t n;

		ck_assert_msg(left > 0 && poll(&pfd, 1, (int)left) == 1,
		              "no frame from the daemon within %d ms", TEST_WAIT_MS);
		n = recv(c->fd, (char *)buf + got, len - got, 0);
		ck_assert_msg(n > 0, "the daemon closed the connection");
		got += (size_t)n;
	}
}

/*
 * Receives c's next frame raw (c was only ever read this way, or by a harness call that left
 * nothing buffered), asserts that every byte of it is valid UTF-8, and returns it parsed.
 */
static cJSON *utf8_recv(struct test_conn *c)
{
	uint8_t header[FRAME_HEADER_SIZE];
	cJSON *obj = NULL;
	size_t len, bad = 0;
	char *payload;

	ck_assert_uint_eq(c->reader.len - c->reader.start, 0);
	utf8_read_exact(c, header, sizeof(header));
	len = (size_t)header[0] << 24 | (size_t)header[1] << 16 | (size_t)header[2] << 8 | header[3];
	ck_assert_uint_ge(len, 1);
	ck_assert_uint_le(len, FRAME_MAX_LIMIT);
	payload = malloc(len);
	ck_assert_ptr_nonnull(payload);
	utf8_read_exact(c, payload, len);
	ck_assert_msg(utf8_check(payload, len, &bad) == 0,
	              "the daemon sent invalid UTF-8: byte %zu is 0x%02x after \"%.*s\"", bad,
	              (unsigned char)payload[bad], (int)bad, payload);
	ck_assert_int_eq(msg_parse(payload, len, &obj), 0);
	free(payload);
	return obj;
}

/* Sends text (len bytes, NUL-terminated) as one frame and returns the next frame, checked. */
static cJSON *utf8_call(struct test_conn *c, const char *text, size_t len)
{
	ck_assert_int_eq(test_conn_send_frame(c, text, len), 0);
	return utf8_recv(c);
}

#define UTF8_CALL(c, literal) utf8_call(c, literal, sizeof(literal) - 1)

/* The offset of the first byte of text from 0x80 up (asserted present). */
static size_t utf8_first_high(const char *text)
{
	for (size_t i = 0; text[i]; i++)
		if ((unsigned char)text[i] >= 0x80)
			return i;
	ck_abort_msg("no byte from 0x80 in \"%s\"", text);
	return 0;
}

/*
 * Asserts that reply refuses the request text as invalid UTF-8: EBADMSG with "id": null (the
 * id cannot be trusted) and a message that names the first bad byte but does not echo it.
 */
static void utf8_assert_refused(cJSON *reply, const char *text)
{
	char want[64];

	snprintf(want, sizeof(want), "not valid UTF-8 at byte %zu", utf8_first_high(text));
	test_assert_id_null(reply);
	test_reply_error(reply, "EBADMSG", EBADMSG, want);
}

static const char cfg_shared[] = "{\"socket_mode\": \"0666\"}";

#define EVIL_HELLO "{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"evil\xff\xfe\xc0\x80\"}"

START_TEST(test_utf8_hello_name_with_invalid_bytes_never_reaches_clients)
{
	struct test_daemon d;
	struct test_conn root, evil;
	const cJSON *list, *entry;
	cJSON *hello, *reply;
	bool seen_valid = false;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, cfg_shared);
	test_conn_open_hello(&root, &d);
	test_conn_open_as(&evil, &d, NOBODY, NOBODY);

	hello = UTF8_CALL(&evil, EVIL_HELLO);
	reply = UTF8_CALL(&root, "{\"id\":2,\"op\":\"clients\"}");
	/* The frames were valid; now what they said. The name was refused with the hello. */
	utf8_assert_refused(hello, EVIL_HELLO);
	test_assert_ok(reply);
	cJSON_Delete(reply);

	/* A name that is valid UTF-8 (not ASCII) is taken and shown as it was sent. */
	test_reply_ok(UTF8_CALL(&evil, "{\"id\":3,\"op\":\"hello\",\"version\":1,"
	                        "\"client\":\"caf\xc3\xa9 \xe2\x98\x83\"}"));
	reply = UTF8_CALL(&root, "{\"id\":4,\"op\":\"clients\"}");
	test_assert_ok(reply);
	list = cJSON_GetObjectItemCaseSensitive(reply, "clients");
	cJSON_ArrayForEach(entry, list) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "name");

		if (cJSON_IsString(name) && strcmp(name->valuestring, "caf\xc3\xa9 \xe2\x98\x83") == 0)
			seen_valid = true;
	}
	ck_assert_msg(seen_valid, "clients: %s", test_describe(reply));
	cJSON_Delete(reply);

	test_conn_close(&evil);
	test_conn_close(&root);
	test_daemon_stop(&d);
}
END_TEST

/* Requests from uid 65534 with invalid bytes where the daemon used to echo them. */
#define EVIL_OP "{\"id\":2,\"op\":\"st\xff" "at\",\"name\":\"a\xfe\"}"
#define EVIL_NAME "{\"id\":3,\"op\":\"stat\",\"name\":\"x\xc0\x80\"}"
#define EVIL_KEY "{\"id\":4,\"op\":\"ping\",\"k\xed\xa0\x80\":1}"
#define EVIL_ESCAPE "{\"id\":5,\"op\":\"ping\\ud800\"}"
#define EVIL_CESU "{\"id\":6,\"op\":\"ping\",\"s\":\"\xed\xa0\xbd\xed\xb8\x80\"}"
/* 63 ASCII bytes and an e-acute: the unknown op's message keeps only 64 bytes of it. */
#define LONG_OP "{\"id\":7,\"op\":\"" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\"}"

START_TEST(test_utf8_requests_with_invalid_bytes_get_ebadmsg_without_echo)
{
	struct test_daemon d;
	struct test_conn evil;
	cJSON *reply;

	if (!test_is_root())
		return;
	test_daemon_start_shared(&d, cfg_shared);
	test_conn_open_as(&evil, &d, NOBODY, NOBODY);
	test_reply_ok(UTF8_CALL(&evil, "{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"e\"}"));

	utf8_assert_refused(UTF8_CALL(&evil, EVIL_OP), EVIL_OP);
	utf8_assert_refused(UTF8_CALL(&evil, EVIL_NAME), EVIL_NAME);
	utf8_assert_refused(UTF8_CALL(&evil, EVIL_KEY), EVIL_KEY);
	utf8_assert_refused(UTF8_CALL(&evil, EVIL_CESU), EVIL_CESU);

	/* An escaped lone surrogate is malformed JSON: cJSON refuses to decode it. */
	reply = UTF8_CALL(&evil, EVIL_ESCAPE);
	test_assert_id_null(reply);
	test_reply_error(reply, "EBADMSG", EBADMSG, NULL);

	/* A valid op cut short in the error message must not be cut inside a character. */
	reply = UTF8_CALL(&evil, LONG_OP);
	test_assert_id(reply, 7);
	test_reply_error(reply, "ENOSYS", ENOSYS, "aaaa'");

	test_reply_ok(UTF8_CALL(&evil, "{\"id\":8,\"op\":\"ping\"}"));
	test_conn_close(&evil);
	test_daemon_stop(&d);
}
END_TEST

START_TEST(test_utf8_data_dir_names_that_are_not_utf8_are_not_listed)
{
	static const char *const planted[] = { "bad\xff", "\xc0\xae\xc0\xae", "caf\xc3\xa9", "good" };
	struct test_daemon d;
	struct test_conn c;
	const cJSON *regions, *entry;
	cJSON *reply;
	char path[TEST_PATH_MAX * 2];
	int n = 0;

	test_daemon_start(&d, NULL);
	for (size_t i = 0; i < NCASES(planted); i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", d.data, planted[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, 4096), 0);
		close(fd);
	}
	test_conn_open_hello(&c, &d);
	reply = UTF8_CALL(&c, "{\"id\":2,\"op\":\"list\"}");
	test_assert_ok(reply);
	regions = cJSON_GetObjectItemCaseSensitive(reply, "regions");
	cJSON_ArrayForEach(entry, regions) {
		ck_assert_str_eq(test_json_str(entry, "name"), "good");
		n++;
	}
	ck_assert_int_eq(n, 1);
	cJSON_Delete(reply);
	test_conn_close(&c);
	test_daemon_stop(&d);
}
END_TEST

static Suite *utf8_suite(void)
{
	Suite *s = suite_create("utf8");
	TCase *tc = tcase_create("utf8");

	tcase_add_loop_test(tc, test_utf8_accepts_valid_sequences, 0, (int)NCASES(utf8_valid));
	tcase_add_loop_test(tc, test_utf8_rejects_invalid_sequences_at_first_bad_byte, 0,
	                    (int)NCASES(utf8_invalid));
	tcase_add_test(tc, test_utf8_sanitize_replaces_each_bad_byte);
	suite_add_tcase(s, tc);

	tc = tcase_create("daemon");
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_utf8_hello_name_with_invalid_bytes_never_reaches_clients);
	tcase_add_test(tc, test_utf8_requests_with_invalid_bytes_get_ebadmsg_without_echo);
	tcase_add_test(tc, test_utf8_data_dir_names_that_are_not_utf8_are_not_listed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(utf8_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
