/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for proto/msg.c: what msg_parse lets through and what it refuses, the strictness
 * of the field readers, the exact shape of replies, events and errors on the wire, the errno
 * table in both directions, and that text is valid UTF-8 both ways.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "msg.h"
#include "utf8.h"

/* Parses a NUL-terminated literal as a frame payload (without its terminator). */
static int parse_str(const char *text, cJSON **ret_obj)
{
	return msg_parse(text, strlen(text), ret_obj);
}

static void assert_rejected(const char *text)
{
	cJSON *obj = NULL;

	ck_assert_msg(parse_str(text, &obj) == -EBADMSG, "accepted: %s", text);
	ck_assert_ptr_null(obj);
}

/* Builds {"a":{"a":...{}...}} with depth nested objects, the outermost counting as one. */
static char *nested_objects(int depth)
{
	char *s = malloc((size_t)depth * 6 + 1);
	size_t n = 0;
	int i;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < depth - 1; i++) {
		memcpy(s + n, "{\"a\":", 5);
		n += 5;
	}
	s[n++] = '{';
	for (i = 0; i < depth; i++)
		s[n++] = '}';
	s[n] = '\0';
	return s;
}

/* Builds {"a":[[...[]...]]} with depth levels in all, the object included. */
static char *nested_arrays(int depth)
{
	char *s = malloc((size_t)depth * 2 + 8);
	size_t n = 0;
	int i;

	ck_assert_ptr_nonnull(s);
	memcpy(s, "{\"a\":", 5);
	n = 5;
	for (i = 0; i < depth - 1; i++)
		s[n++] = '[';
	for (i = 0; i < depth - 1; i++)
		s[n++] = ']';
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

/* Encodes obj and returns its payload as a NUL-terminated string the caller frees. */
static char *encode_text(const cJSON *obj)
{
	uint8_t *frame;
	size_t frame_len;
	char *text;

	ck_assert_int_eq(msg_encode(obj, FRAME_MAX_DEFAULT, &frame, &frame_len), 0);
	text = malloc(frame_len - FRAME_HEADER_SIZE + 1);
	ck_assert_ptr_nonnull(text);
	memcpy(text, frame + FRAME_HEADER_SIZE, frame_len - FRAME_HEADER_SIZE);
	text[frame_len - FRAME_HEADER_SIZE] = '\0';
	free(frame);
	return text;
}

START_TEST(test_msg_parses_request_object)
{
	static const char text[] = "{\"id\":7,\"op\":\"stat\",\"name\":\"cache\",\"create\":false}";
	cJSON *obj = NULL;
	const char *op, *name;
	uint64_t id;
	bool create = true;

	ck_assert_int_eq(msg_parse(text, strlen(text), &obj), 0);
	ck_assert_ptr_nonnull(obj);
	ck_assert_int_eq(msg_get_u64(obj, "id", &id), 0);
	ck_assert_uint_eq(id, 7);
	ck_assert_int_eq(msg_get_string(obj, "op", &op), 0);
	ck_assert_str_eq(op, "stat");
	ck_assert_int_eq(msg_get_string(obj, "name", &name), 0);
	ck_assert_str_eq(name, "cache");
	ck_assert_int_eq(msg_get_bool(obj, "create", &create), 0);
	ck_assert(!create);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_parse_reads_only_len_bytes)
{
	/* The payload is not NUL-terminated: the bytes after len belong to the next frame. */
	static const char text[] = "{\"id\":1}{\"id\":2}";
	cJSON *obj = NULL;
	uint64_t id;

	ck_assert_int_eq(msg_parse(text, 8, &obj), 0);
	ck_assert_int_eq(msg_get_u64(obj, "id", &id), 0);
	ck_assert_uint_eq(id, 1);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_parse_accepts_surrounding_whitespace)
{
	cJSON *obj = NULL;

	ck_assert_int_eq(parse_str(" \n{\"a\":1}\r\n\t ", &obj), 0);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_rejects_non_object)
{
	assert_rejected("[1,2]");
	assert_rejected("[]");
	assert_rejected("1");
	assert_rejected("\"str\"");
	assert_rejected("null");
	assert_rejected("true");
}
END_TEST

START_TEST(test_msg_rejects_malformed)
{
	cJSON *obj = NULL;

	assert_rejected("{");
	assert_rejected("}");
	assert_rejected("{\"a\":}");
	assert_rejected("{\"a\":1,}");
	assert_rejected("{'a':1}");
	assert_rejected("{a:1}");
	assert_rejected("{\"a\":\"unterminated}");
	assert_rejected("{\"a\":\"bad escape \\q\"}");
	assert_rejected("   ");
	ck_assert_int_eq(msg_parse("{}", 0, &obj), -EBADMSG);
}
END_TEST

START_TEST(test_msg_rejects_trailing_garbage)
{
	assert_rejected("{}x");
	assert_rejected("{}{}");
	assert_rejected("{\"a\":1} 1");
	assert_rejected("{\"a\":1}]");
}
END_TEST

START_TEST(test_msg_rejects_nul_bytes)
{
	static const char inside[] = "{\"name\":\"a\0b\"}";
	static const char after[] = "{}\0";
	cJSON *obj = NULL;

	ck_assert_int_eq(msg_parse(inside, sizeof(inside) - 1, &obj), -EBADMSG);
	ck_assert_int_eq(msg_parse(after, sizeof(after) - 1, &obj), -EBADMSG);
	ck_assert_ptr_null(obj);
}
END_TEST

START_TEST(test_msg_accepts_nesting_up_to_limit)
{
	char *objects = nested_objects(PROTO_JSON_DEPTH_MAX);
	char *arrays = nested_arrays(PROTO_JSON_DEPTH_MAX);
	cJSON *obj = NULL;

	ck_assert_int_eq(parse_str(objects, &obj), 0);
	cJSON_Delete(obj);
	ck_assert_int_eq(parse_str(arrays, &obj), 0);
	cJSON_Delete(obj);
	free(objects);
	free(arrays);
}
END_TEST

START_TEST(test_msg_rejects_deep_nesting)
{
	char *objects = nested_objects(PROTO_JSON_DEPTH_MAX + 1);
	char *arrays = nested_arrays(PROTO_JSON_DEPTH_MAX + 1);
	char *huge = nested_arrays(100000);

	assert_rejected(objects);
	assert_rejected(arrays);
	assert_rejected(huge);
	free(objects);
	free(arrays);
	free(huge);
}
END_TEST

/* Parses text and checks its string at key is want. */
static void check_string(const char *text, const char *key, const char *want)
{
	cJSON *obj = NULL;
	const char *s;

	ck_assert_int_eq(parse_str(text, &obj), 0);
	ck_assert_int_eq(msg_get_string(obj, key, &s), 0);
	ck_assert_str_eq(s, want);
	cJSON_Delete(obj);
}

START_TEST(test_msg_brackets_in_strings_do_not_count_as_nesting)
{
	check_string("{\"a\":\"[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{\\\"[[[[\"}", "a",
	             "[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{\"[[[[");
}
END_TEST

START_TEST(test_msg_rejects_escaped_nul)
{
	assert_rejected("{\"name\":\"a\\u0000b\"}");
	assert_rejected("{\"name\":\"\\u0000\"}");
	assert_rejected("{\"a\\u0000\":1}");
	assert_rejected("{\"a\":[\"x\",\"\\u0000\"]}");
	/* An escaped backslash and then a real \u0000 escape. */
	assert_rejected("{\"name\":\"\\\\\\u0000\"}");
	/* An escaped quote does not end the string, so the \u0000 after it is still inside. */
	assert_rejected("{\"name\":\"\\\"\\u0000\"}");
}
END_TEST

START_TEST(test_msg_rejects_repeated_keys)
{
	char big[4096];
	size_t n = 0;

	assert_rejected("{\"a\":1,\"a\":2}");
	assert_rejected("{\"x\":[{\"k\":1,\"k\":1}]}");
	/* Past the pairwise size the keys are sorted: the repeat at the end is still found. */
	n += (size_t)snprintf(big + n, sizeof(big) - n, "{");
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "\"k%d\":%d,", i, i);
	snprintf(big + n, sizeof(big) - n, "\"k0\":0}");
	assert_rejected(big);
	big[n - 1] = '}';
	big[n] = '\0';
	{
		cJSON *obj = NULL;

		ck_assert_int_eq(parse_str(big, &obj), 0);
		cJSON_Delete(obj);
	}
}
END_TEST

START_TEST(test_msg_parse_id_reads_the_id_of_a_refused_request)
{
	const char *nul = "{\"id\":42,\"op\":\"open\",\"name\":\"a\\u0000b\"}";
	const char *twice = "{\"id\":43,\"id\":44,\"op\":\"ping\"}";
	uint64_t id = 0;

	ck_assert_int_eq(msg_parse_id(nul, strlen(nul), &id), 0);
	ck_assert_uint_eq(id, 42);
	ck_assert_int_eq(msg_parse_id(twice, strlen(twice), &id), 0);
	ck_assert_uint_eq(id, 43);
	ck_assert_int_eq(msg_parse_id("{\"op\":1", strlen("{\"op\":1"), &id), -EBADMSG);
	ck_assert_int_eq(msg_parse_id("{\"op\":1}", strlen("{\"op\":1}"), &id), -ENOENT);
}
END_TEST

START_TEST(test_msg_accepts_escaped_backslash_before_u0000)
{
	check_string("{\"name\":\"a\\\\u0000\"}", "name", "a\\u0000");
}
END_TEST

START_TEST(test_msg_accepts_other_unicode_escapes)
{
	check_string("{\"s\":\"\\u0041\\u00e9\\u0001\"}", "s", "A\xc3\xa9\x01");
}
END_TEST

START_TEST(test_msg_rejects_invalid_utf8)
{
	static const char *const texts[] = {
		"{\"s\":\"\xff\"}",
		"{\"s\":\"\xc0\x80\"}",
		"{\"s\":\"\xed\xa0\x80\"}",
		"{\"k\xf4\x90\x80\x80\":1}",
		"{\"s\":\"\xe2\x82\"}",
		"{\"s\":1}\x80",
	};
	cJSON *obj = NULL;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		ck_assert_msg(parse_str(texts[i], &obj) == -EILSEQ, "text %zu not refused", i);
		ck_assert_ptr_null(obj);
	}
	check_string("{\"s\":\"caf\xc3\xa9 \xf4\x8f\xbf\xbf\"}", "s",
	             "caf\xc3\xa9 \xf4\x8f\xbf\xbf");
}
END_TEST

/*
 * The escapes cJSON decodes must not make invalid UTF-8 either: a lone surrogate (which would
 * come out as CESU-8) is refused, and a pair becomes one 4-byte sequence.
 */
START_TEST(test_msg_rejects_escaped_lone_surrogates)
{
	assert_rejected("{\"s\":\"\\ud800\"}");
	assert_rejected("{\"s\":\"\\udbff\"}");
	assert_rejected("{\"s\":\"\\udc00\"}");
	assert_rejected("{\"s\":\"\\udfff\\ud800\"}");
	assert_rejected("{\"s\":\"\\ud800x\"}");
	assert_rejected("{\"s\":\"\\ud800\\u0041\"}");
	assert_rejected("{\"s\":\"\\ud800\\ud800\"}");
}
END_TEST

START_TEST(test_msg_surrogate_pair_escapes_decode_to_valid_utf8)
{
	check_string("{\"s\":\"\\ud83d\\ude00\"}", "s", "\xf0\x9f\x98\x80");
	check_string("{\"s\":\"\\udbff\\udfff\"}", "s", "\xf4\x8f\xbf\xbf");
	check_string("{\"s\":\"\\ud7ff\\ue000\"}", "s", "\xed\x9f\xbf\xee\x80\x80");
}
END_TEST

START_TEST(test_msg_u64_accepts_range_edges)
{
	cJSON *obj = NULL;
	uint64_t v;

	ck_assert_int_eq(parse_str("{\"zero\":0,\"max\":9007199254740991,\"exp\":1e3,\"mid\":1099511627776}", &obj), 0);
	ck_assert_int_eq(msg_get_u64(obj, "zero", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(msg_get_u64(obj, "max", &v), 0);
	ck_assert_uint_eq(v, PROTO_ID_MAX);
	ck_assert_int_eq(msg_get_u64(obj, "exp", &v), 0);
	ck_assert_uint_eq(v, 1000);
	ck_assert_int_eq(msg_get_u64(obj, "mid", &v), 0);
	ck_assert_uint_eq(v, 1099511627776ULL);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_u64_rejects_bad_values)
{
	static const char *const bad[] = {
		"{\"v\":-1}", "{\"v\":1.5}", "{\"v\":0.5}", "{\"v\":9007199254740992}",
		"{\"v\":18446744073709551615}", "{\"v\":1e300}", "{\"v\":1e400}", "{\"v\":-1e400}",
		"{\"v\":\"5\"}", "{\"v\":true}", "{\"v\":null}", "{\"v\":[1]}", "{\"v\":{}}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *obj = NULL;
		uint64_t v = 77;

		ck_assert_int_eq(parse_str(bad[i], &obj), 0);
		ck_assert_msg(msg_get_u64(obj, "v", &v) == -EINVAL, "accepted %s", bad[i]);
		ck_assert_uint_eq(v, 77);
		cJSON_Delete(obj);
	}
}
END_TEST

START_TEST(test_msg_getters_leave_default_when_absent)
{
	cJSON *obj = NULL;
	uint64_t v = 77;
	bool b = true;
	const char *s = "default";

	ck_assert_int_eq(parse_str("{\"other\":1,\"ID\":5}", &obj), 0);
	ck_assert_int_eq(msg_get_u64(obj, "id", &v), -ENOENT);
	ck_assert_uint_eq(v, 77);
	ck_assert_int_eq(msg_get_bool(obj, "flag", &b), -ENOENT);
	ck_assert(b);
	ck_assert_int_eq(msg_get_string(obj, "name", &s), -ENOENT);
	ck_assert_str_eq(s, "default");
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_bool_accepts_only_true_and_false)
{
	static const char *const bad[] = {
		"{\"v\":0}", "{\"v\":1}", "{\"v\":\"true\"}", "{\"v\":null}", "{\"v\":[]}",
	};
	cJSON *obj = NULL;
	bool b;
	size_t i;

	ck_assert_int_eq(parse_str("{\"t\":true,\"f\":false}", &obj), 0);
	b = false;
	ck_assert_int_eq(msg_get_bool(obj, "t", &b), 0);
	ck_assert(b);
	ck_assert_int_eq(msg_get_bool(obj, "f", &b), 0);
	ck_assert(!b);
	cJSON_Delete(obj);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(parse_str(bad[i], &obj), 0);
		b = true;
		ck_assert_msg(msg_get_bool(obj, "v", &b) == -EINVAL, "accepted %s", bad[i]);
		ck_assert(b);
		cJSON_Delete(obj);
	}
}
END_TEST

START_TEST(test_msg_string_accepts_only_strings)
{
	static const char *const bad[] = { "{\"v\":1}", "{\"v\":null}", "{\"v\":false}", "{\"v\":[\"x\"]}" };
	cJSON *obj = NULL;
	const char *s;
	size_t i;

	ck_assert_int_eq(parse_str("{\"v\":\"\"}", &obj), 0);
	ck_assert_int_eq(msg_get_string(obj, "v", &s), 0);
	ck_assert_str_eq(s, "");
	cJSON_Delete(obj);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(parse_str(bad[i], &obj), 0);
		s = NULL;
		ck_assert_msg(msg_get_string(obj, "v", &s) == -EINVAL, "accepted %s", bad[i]);
		ck_assert_ptr_null(s);
		cJSON_Delete(obj);
	}
}
END_TEST

START_TEST(test_msg_reply_ok_builds_envelope)
{
	cJSON *obj = msg_reply_ok(7);
	char *text;

	ck_assert_ptr_nonnull(obj);
	text = encode_text(obj);
	ck_assert_str_eq(text, "{\"id\":7,\"ok\":true}");
	free(text);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_reply_ok_keeps_largest_id)
{
	cJSON *obj = msg_reply_ok(PROTO_ID_MAX);
	cJSON *back = NULL;
	char *text;
	uint64_t id;

	ck_assert_ptr_nonnull(obj);
	text = encode_text(obj);
	ck_assert_str_eq(text, "{\"id\":9007199254740991,\"ok\":true}");
	ck_assert_int_eq(parse_str(text, &back), 0);
	ck_assert_int_eq(msg_get_u64(back, "id", &id), 0);
	ck_assert_uint_eq(id, PROTO_ID_MAX);
	cJSON_Delete(back);
	free(text);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_reply_error_builds_envelope)
{
	cJSON *obj = msg_reply_error(true, 3, ENOENT, "region 'cache' does not exist");
	char *text;

	ck_assert_ptr_nonnull(obj);
	text = encode_text(obj);
	ck_assert_str_eq(text, "{\"id\":3,\"ok\":false,\"error\":{\"code\":\"ENOENT\",\"errno\":2,"
			       "\"message\":\"region 'cache' does not exist\"}}");
	free(text);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_reply_error_without_id_writes_null)
{
	cJSON *obj = msg_reply_error(false, 99, EBADMSG, "payload is not JSON");
	char *text;

	ck_assert_ptr_nonnull(obj);
	text = encode_text(obj);
	ck_assert_str_eq(text, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"EBADMSG\",\"errno\":74,"
			       "\"message\":\"payload is not JSON\"}}");
	free(text);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_error_object_sends_unknown_errno_as_eio)
{
	cJSON *obj = msg_error_object(4000, "odd");
	char *text;

	ck_assert_ptr_nonnull(obj);
	text = encode_text(obj);
	ck_assert_str_eq(text, "{\"code\":\"EIO\",\"errno\":5,\"message\":\"odd\"}");
	free(text);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_error_object_fills_missing_message)
{
	cJSON *obj = msg_error_object(ENOSPC, NULL);
	const char *message;

	ck_assert_ptr_nonnull(obj);
	ck_assert_int_eq(msg_get_string(obj, "message", &message), 0);
	ck_assert_str_eq(message, "No space left on device");
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_event_builds_envelope)
{
	cJSON *obj = msg_event("shutdown");
	char *text;

	ck_assert_ptr_nonnull(obj);
	text = encode_text(obj);
	ck_assert_str_eq(text, "{\"event\":\"shutdown\"}");
	free(text);
	cJSON_Delete(obj);
}
END_TEST

/* Parses the error reply text and checks msg_error_parse() reads want_err and want_message. */
static void check_error_parse(const char *text, int want_err, const char *want_message)
{
	cJSON *obj = NULL;
	const char *message = NULL;
	int err = 0;

	ck_assert_int_eq(parse_str(text, &obj), 0);
	ck_assert_int_eq(msg_error_parse(obj, &err, &message), 0);
	ck_assert_int_eq(err, want_err);
	ck_assert_str_eq(message, want_message);
	cJSON_Delete(obj);
}

START_TEST(test_msg_error_parse_reads_code_and_message)
{
	check_error_parse("{\"id\":1,\"ok\":false,\"error\":{\"code\":\"EEXIST\",\"errno\":17,"
			  "\"message\":\"region exists\"}}", EEXIST, "region exists");
}
END_TEST

START_TEST(test_msg_error_parse_trusts_code_over_number)
{
	check_error_parse("{\"error\":{\"code\":\"EUSERS\",\"errno\":1}}", EUSERS, "");
}
END_TEST

START_TEST(test_msg_error_parse_maps_unknown_code_to_eio)
{
	check_error_parse("{\"error\":{\"code\":\"EWHATEVER\",\"errno\":9999,\"message\":\"m\"}}", EIO, "m");
}
END_TEST

START_TEST(test_msg_error_parse_rejects_malformed_error)
{
	static const char *const bad[] = {
		"{\"ok\":false}", "{\"error\":\"ENOENT\"}", "{\"error\":{}}", "{\"error\":{\"code\":2}}",
		"{\"error\":{\"code\":\"ENOENT\",\"message\":7}}", "{\"error\":[\"ENOENT\"]}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *obj = NULL;
		const char *message = NULL;
		int err = 0;

		ck_assert_int_eq(parse_str(bad[i], &obj), 0);
		ck_assert_msg(msg_error_parse(obj, &err, &message) == -EBADMSG, "accepted %s", bad[i]);
		ck_assert_int_eq(err, 0);
		cJSON_Delete(obj);
	}
}
END_TEST

START_TEST(test_msg_errno_table_round_trips)
{
	static const int required[] = {
		EPERM, ENOENT, EINTR, EIO, EBADF, EAGAIN, ENOMEM, EACCES, EBUSY, EEXIST, ENODEV,
		ENOTDIR, EISDIR, EINVAL, ENFILE, EMFILE, EFBIG, ENOSPC, EROFS, ERANGE, EDEADLK,
		ENAMETOOLONG, ENOSYS, ELOOP, EBADMSG, EPROTO, EOVERFLOW, EUSERS, EMSGSIZE,
		EPROTONOSUPPORT, EOPNOTSUPP, ECONNRESET, ESHUTDOWN, ETIMEDOUT, ECANCELED, EDQUOT,
		ENOTCONN, ESPIPE, ENXIO,
	};
	size_t i, entries = 0;
	int e;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		ck_assert_msg(proto_errname(required[i]) != NULL, "errno %d missing", required[i]);

	/* Every value in the table maps to its Linux name and back to itself. */
	for (e = 1; e < 4096; e++) {
		const char *name = proto_errname(e);

		if (!name)
			continue;
		entries++;
		ck_assert_str_eq(name, strerrorname_np(e));
		ck_assert_int_eq(proto_errno(name), e);
	}
	ck_assert_uint_ge(entries, sizeof(required) / sizeof(required[0]));

	ck_assert_str_eq(proto_errname(ENOENT), "ENOENT");
	ck_assert_int_eq(proto_errno("ENOENT"), ENOENT);
	ck_assert_int_eq(proto_errno("EWOULDBLOCK"), 0);
	ck_assert_int_eq(proto_errno("enoent"), 0);
	ck_assert_int_eq(proto_errno(""), 0);
	ck_assert_int_eq(proto_errno(NULL), 0);
	ck_assert_ptr_null(proto_errname(0));
	ck_assert_ptr_null(proto_errname(-ENOENT));
	ck_assert_ptr_null(proto_errname(4000));
}
END_TEST

/* Belt and braces: a bad byte that got into a string anyway goes out as U+FFFD. */
START_TEST(test_msg_print_replaces_invalid_utf8)
{
	cJSON *obj = cJSON_CreateObject();
	uint8_t *frame = NULL;
	size_t len = 0;
	char *text;

	ck_assert_ptr_nonnull(obj);
	ck_assert_ptr_nonnull(cJSON_AddStringToObject(obj, "s", "a\xff\xc3"));
	ck_assert_ptr_nonnull(cJSON_AddStringToObject(obj, "k\xe2\x82", "caf\xc3\xa9"));
	text = msg_print(obj, false);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, "{\"s\":\"a\xef\xbf\xbd\xef\xbf\xbd\","
	                 "\"k\xef\xbf\xbd\xef\xbf\xbd\":\"caf\xc3\xa9\"}");
	cJSON_free(text);
	ck_assert_int_eq(msg_encode(obj, FRAME_MAX_LIMIT, &frame, &len), 0);
	ck_assert_int_eq(utf8_check((const char *)frame + FRAME_HEADER_SIZE,
	                            len - FRAME_HEADER_SIZE, NULL), 0);
	free(frame);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_print_writes_large_integers_exactly)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON *arr, *inner;
	char *text;

	ck_assert_ptr_nonnull(obj);
	ck_assert_ptr_nonnull(cJSON_AddNumberToObject(obj, "size", 9007199254740991.0));
	ck_assert_ptr_nonnull(cJSON_AddNumberToObject(obj, "neg", -1000000000000001.0));
	ck_assert_ptr_nonnull(cJSON_AddNumberToObject(obj, "small", 42));
	ck_assert_ptr_nonnull(cJSON_AddNumberToObject(obj, "frac", 0.5));
	arr = cJSON_AddArrayToObject(obj, "list");
	ck_assert_ptr_nonnull(arr);
	ck_assert(cJSON_AddItemToArray(arr, cJSON_CreateNumber(1234567890123456.0)));
	inner = cJSON_AddObjectToObject(obj, "limits");
	ck_assert_ptr_nonnull(inner);
	ck_assert_ptr_nonnull(cJSON_AddNumberToObject(inner, "max", 4503599627370497.0));

	text = msg_print(obj, false);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, "{\"size\":9007199254740991,\"neg\":-1000000000000001,\"small\":42,"
			       "\"frac\":0.5,\"list\":[1234567890123456],\"limits\":{\"max\":4503599627370497}}");
	cJSON_free(text);
	text = msg_print(obj, true);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "9007199254740991"));
	cJSON_free(text);
	/* The caller's object is left as it was. */
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(obj, "size")));
	cJSON_Delete(obj);
}
END_TEST

/* cJSON would print 1.0000000000000002 as "1", turning a fraction the readers refuse into an
 * integer they accept; msg_encode must keep it a fraction. */
START_TEST(test_msg_encode_keeps_fractions_fractional)
{
	cJSON *obj = cJSON_CreateObject(), *back = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t v = 0;

	ck_assert_ptr_nonnull(cJSON_AddNumberToObject(obj, "size", 1.0000000000000002));
	ck_assert_ptr_nonnull(cJSON_AddNumberToObject(obj, "big", 4000000000000000.5));
	ck_assert_int_eq(msg_encode(obj, FRAME_MAX_DEFAULT, &buf, &len), 0);
	ck_assert_int_eq(msg_parse((const char *)buf + FRAME_HEADER_SIZE, len - FRAME_HEADER_SIZE, &back), 0);
	ck_assert_int_eq(msg_get_u64(back, "size", &v), -EINVAL);
	ck_assert(cJSON_GetObjectItem(back, "size")->valuedouble == 1.0000000000000002);
	ck_assert_int_eq(msg_get_u64(back, "big", &v), -EINVAL);
	cJSON_Delete(back);
	cJSON_Delete(obj);
	free(buf);
}
END_TEST

START_TEST(test_msg_encode_rejects_over_max)
{
	cJSON *obj = msg_event("x");
	uint8_t *frame = NULL;
	size_t frame_len, n;
	char *text;

	ck_assert_ptr_nonnull(obj);
	text = encode_text(obj);
	n = strlen(text);
	ck_assert_int_eq(msg_encode(obj, (uint32_t)n, &frame, &frame_len), 0);
	ck_assert_uint_eq(frame_len, n + FRAME_HEADER_SIZE);
	ck_assert_uint_eq(frame[3], n);
	ck_assert_mem_eq(frame + FRAME_HEADER_SIZE, text, n);
	free(frame);
	frame = NULL;
	ck_assert_int_eq(msg_encode(obj, (uint32_t)n - 1, &frame, &frame_len), -EMSGSIZE);
	ck_assert_ptr_null(frame);
	free(text);
	cJSON_Delete(obj);
}
END_TEST

START_TEST(test_msg_encode_rejects_large_message)
{
	cJSON *obj = msg_event("big");
	char *blob = malloc(2000);
	uint8_t *frame = NULL;
	size_t frame_len;

	ck_assert_ptr_nonnull(obj);
	ck_assert_ptr_nonnull(blob);
	memset(blob, 'b', 1999);
	blob[1999] = '\0';
	ck_assert_ptr_nonnull(cJSON_AddStringToObject(obj, "message", blob));
	ck_assert_int_eq(msg_encode(obj, 1024, &frame, &frame_len), -EMSGSIZE);
	ck_assert_int_eq(msg_encode(obj, 4096, &frame, &frame_len), 0);
	ck_assert_uint_gt(frame_len, 2000);
	free(frame);
	free(blob);
	cJSON_Delete(obj);
}
END_TEST

/*
 * msg_print writes what cJSON's printers write wherever those are exact: the same layout,
 * formatted or not, the same escapes.
 */
START_TEST(test_msg_print_matches_cjson_layout)
{
	cJSON *obj = cJSON_CreateObject(), *arr, *inner;
	char *ours, *theirs;

	ck_assert_ptr_nonnull(obj);
	ck_assert_ptr_nonnull(cJSON_AddNumberToObject(obj, "id", 7));
	ck_assert_ptr_nonnull(cJSON_AddNumberToObject(obj, "neg", -42));
	ck_assert_ptr_nonnull(cJSON_AddStringToObject(obj, "s", "q\"b\\s/\b\f\n\r\t\x01\x1f caf\xc3\xa9"));
	ck_assert_ptr_nonnull(cJSON_AddTrueToObject(obj, "t"));
	ck_assert_ptr_nonnull(cJSON_AddFalseToObject(obj, "f"));
	ck_assert_ptr_nonnull(cJSON_AddNullToObject(obj, "n"));
	arr = cJSON_AddArrayToObject(obj, "a");
	ck_assert(cJSON_AddItemToArray(arr, cJSON_CreateNumber(1)));
	ck_assert(cJSON_AddItemToArray(arr, cJSON_CreateString("x")));
	ck_assert(cJSON_AddItemToArray(arr, cJSON_CreateObject()));
	ck_assert(cJSON_AddItemToArray(arr, cJSON_CreateArray()));
	inner = cJSON_AddObjectToObject(obj, "o");
	ck_assert_ptr_nonnull(cJSON_AddNumberToObject(inner, "zero", 0));
	ck_assert_ptr_nonnull(cJSON_AddObjectToObject(inner, "empty"));
	for (int formatted = 0; formatted < 2; formatted++) {
		ours = msg_print(obj, formatted);
		theirs = formatted ? cJSON_Print(obj) : cJSON_PrintUnformatted(obj);
		ck_assert_ptr_nonnull(ours);
		ck_assert_ptr_nonnull(theirs);
		ck_assert_str_eq(ours, theirs);
		cJSON_free(ours);
		cJSON_free(theirs);
	}
	cJSON_Delete(obj);
}
END_TEST

/* Whole numbers are written by the integer writer, exactly, up to 2^64 in magnitude. */
START_TEST(test_msg_print_integers_exact_to_2_64)
{
	static const struct {
		double value;
		const char *text;
	} cases[] = {
		{ 0, "{\"v\":0}" },
		{ -0.0, "{\"v\":0}" },
		{ 9007199254740991.0, "{\"v\":9007199254740991}" },
		{ 9007199254740992.0, "{\"v\":9007199254740992}" },
		{ 9223372036854775808.0, "{\"v\":9223372036854775808}" },
		{ 18446744073709549568.0, "{\"v\":18446744073709549568}" },
		{ -9223372036854775808.0, "{\"v\":-9223372036854775808}" },
		{ 18446744073709551616.0, "{\"v\":1.8446744073709552e+19}" },
		{ 0.1, "{\"v\":0.10000000000000001}" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *obj = cJSON_CreateObject();
		char *text;

		ck_assert_ptr_nonnull(cJSON_AddNumberToObject(obj, "v", cases[i].value));
		text = msg_print(obj, false);
		ck_assert_ptr_nonnull(text);
		ck_assert_str_eq(text, cases[i].text);
		cJSON_free(text);
		cJSON_Delete(obj);
	}
}
END_TEST

/* One buffer carries frame after frame: header and payload, reused, nothing left behind. */
START_TEST(test_msg_encode_buf_reuses_its_memory)
{
	struct msg_buf buf = { NULL, 0, 0 };
	cJSON *big = cJSON_CreateObject(), *small = msg_reply_ok(5);
	char *data;

	ck_assert_ptr_nonnull(cJSON_AddStringToObject(big, "pad", "0123456789012345678901234567"));
	ck_assert_int_eq(msg_encode_buf(big, FRAME_MAX_DEFAULT, &buf), 0);
	ck_assert_uint_eq(buf.len, 4 + strlen("{\"pad\":\"0123456789012345678901234567\"}"));
	data = buf.data;
	ck_assert_int_eq(msg_encode_buf(small, FRAME_MAX_DEFAULT, &buf), 0);
	ck_assert_ptr_eq(buf.data, data);
	ck_assert_uint_eq(buf.len, 4 + 18);
	ck_assert_mem_eq(buf.data, "\0\0\0\x12{\"id\":5,\"ok\":true}", 22);
	ck_assert_int_eq(msg_encode_buf(big, 10, &buf), -EMSGSIZE);
	msg_buf_done(&buf);
	ck_assert_ptr_null(buf.data);
	cJSON_Delete(big);
	cJSON_Delete(small);
}
END_TEST

/* A frame is parsed in place: white space may follow the object, nothing else. */
START_TEST(test_msg_parse_in_place_checks_the_tail)
{
	cJSON *obj = NULL;

	ck_assert_int_eq(msg_parse("{\"id\":1} \n\t", 11, &obj), 0);
	cJSON_Delete(obj);
	ck_assert_int_eq(msg_parse("{\"id\":1}x", 9, &obj), -EBADMSG);
	ck_assert_int_eq(msg_parse("{\"id\":1}{}", 10, &obj), -EBADMSG);
	/* The length counts, not a terminator beyond it. */
	ck_assert_int_eq(msg_parse("{\"id\":1}}", 8, &obj), 0);
	cJSON_Delete(obj);
	ck_assert_int_eq(msg_parse("{\"id\":12}", 7, &obj), -EBADMSG);
}
END_TEST

/* The ok reply written without a tree is, byte for byte, the one written from msg_reply_ok. */
START_TEST(test_msg_encode_ok_matches_reply_ok)
{
	static const uint64_t ids[] = { 0, 1, 9, 10, 12345, 4294967296ULL, PROTO_ID_MAX };
	struct msg_buf tree = { NULL, 0, 0 }, direct = { NULL, 0, 0 };
	size_t i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		cJSON *ok = msg_reply_ok(ids[i]);

		ck_assert_int_eq(msg_encode_buf(ok, FRAME_MAX_DEFAULT, &tree), 0);
		ck_assert_int_eq(msg_encode_ok_buf(ids[i], &direct), 0);
		ck_assert_uint_eq(direct.len, tree.len);
		ck_assert_mem_eq(direct.data, tree.data, tree.len);
		cJSON_Delete(ok);
	}
	ck_assert_int_eq(msg_encode_ok_buf(PROTO_ID_MAX + 1, &direct), -EINVAL);
	msg_buf_done(&tree);
	msg_buf_done(&direct);
}
END_TEST

/* Whether a and b are the same tree: types, keys, values (numbers bit for bit), order. */
static bool same_tree(const cJSON *a, const cJSON *b)
{
	for (; a && b; a = a->next, b = b->next) {
		if ((a->type & 0xff) != (b->type & 0xff) || !a->string != !b->string ||
		    (a->string && strcmp(a->string, b->string) != 0) ||
		    !a->valuestring != !b->valuestring ||
		    (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0) ||
		    memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0 ||
		    a->valueint != b->valueint || !same_tree(a->child, b->child))
			return false;
	}
	return !a && !b;
}

/*
 * msg_parse reads the usual requests without cJSON's parser (plain strings, integers below
 * 10^15, literals) and hands the rest to it: either way the tree is the one cJSON makes of the
 * text, and what it refuses it still refuses.
 */
START_TEST(test_msg_parse_builds_cjson_tree)
{
	static const char *const texts[] = {
		"{\"id\":1,\"op\":\"ping\"}",
		"{\"id\":0,\"op\":\"hello\",\"version\":1,\"client\":\"b\u00e9nch\"}",
		" {\"id\" : 12 ,\n\t\"op\":\"lock\", \"offset\":-0, \"length\":999999999999999}\r\n",
		"{\"id\":9007199254740991,\"op\":\"open\",\"size\":1000000000000000}",
		"{\"id\":3,\"op\":\"open\",\"create\":true,\"sparse\":false,\"perm\":null}",
		"{\"id\":4,\"policy\":{\"kind\":\"interval\",\"value\":250},\"list\":[1,\"a\",[],{}]}",
		"{\"id\":5,\"size\":1.5,\"offset\":1e3,\"length\":-7,\"name\":\"\xc3\xa9t\xc3\xa9\"}",
		"{\"id\":6,\"name\":\"a\\\"b\",\"to\":\"\\u00e9\"}",
		("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,"
		 "\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16,\"q\":17}"),
		"{}", "{\"\":\"\"}", "{\"id\":01,\"offset\":1234567890123456789}",
		"{\"id\":\"a\x01\",\x0b\"op\":1}", "{\"x\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}",
	};
	static const char *const refused[] = {
		"{\"id\":1,\"id\":2}", "{\"id\":1,}", "{\"id\":-}", "{\"id\":tru}",
		"{\"id\":1} x", "[1]", "{\"x\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}", "{\"a\":{\"b\":1,\"b\":1}}",
		"{\"id\":1", "{\"id\" 1}",
		("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,"
		 "\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16,\"a\":17}"),
	};
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		cJSON *ours = NULL, *theirs = cJSON_ParseWithLength(texts[i], strlen(texts[i]));

		ck_assert_msg(msg_parse(texts[i], strlen(texts[i]), &ours) == 0, "refused %s", texts[i]);
		ck_assert_ptr_nonnull(theirs);
		ck_assert_msg(same_tree(ours, theirs), "another tree for %s", texts[i]);
		cJSON_Delete(ours);
		cJSON_Delete(theirs);
	}
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		cJSON *obj = NULL;

		ck_assert_msg(msg_parse(refused[i], strlen(refused[i]), &obj) == -EBADMSG,
		              "accepted %s", refused[i]);
	}
}
END_TEST

static Suite *msg_suite(void)
{
	Suite *s = suite_create("msg");
	TCase *tc = tcase_create("msg");

	tcase_add_test(tc, test_msg_parses_request_object);
	tcase_add_test(tc, test_msg_parse_reads_only_len_bytes);
	tcase_add_test(tc, test_msg_parse_accepts_surrounding_whitespace);
	tcase_add_test(tc, test_msg_rejects_non_object);
	tcase_add_test(tc, test_msg_rejects_malformed);
	tcase_add_test(tc, test_msg_rejects_trailing_garbage);
	tcase_add_test(tc, test_msg_rejects_nul_bytes);
	tcase_add_test(tc, test_msg_accepts_nesting_up_to_limit);
	tcase_add_test(tc, test_msg_rejects_deep_nesting);
	tcase_add_test(tc, test_msg_brackets_in_strings_do_not_count_as_nesting);
	tcase_add_test(tc, test_msg_rejects_escaped_nul);
	tcase_add_test(tc, test_msg_rejects_repeated_keys);
	tcase_add_test(tc, test_msg_parse_id_reads_the_id_of_a_refused_request);
	tcase_add_test(tc, test_msg_accepts_escaped_backslash_before_u0000);
	tcase_add_test(tc, test_msg_accepts_other_unicode_escapes);
	tcase_add_test(tc, test_msg_rejects_invalid_utf8);
	tcase_add_test(tc, test_msg_rejects_escaped_lone_surrogates);
	tcase_add_test(tc, test_msg_surrogate_pair_escapes_decode_to_valid_utf8);
	tcase_add_test(tc, test_msg_u64_accepts_range_edges);
	tcase_add_test(tc, test_msg_u64_rejects_bad_values);
	tcase_add_test(tc, test_msg_getters_leave_default_when_absent);
	tcase_add_test(tc, test_msg_bool_accepts_only_true_and_false);
	tcase_add_test(tc, test_msg_string_accepts_only_strings);
	tcase_add_test(tc, test_msg_reply_ok_builds_envelope);
	tcase_add_test(tc, test_msg_reply_ok_keeps_largest_id);
	tcase_add_test(tc, test_msg_reply_error_builds_envelope);
	tcase_add_test(tc, test_msg_reply_error_without_id_writes_null);
	tcase_add_test(tc, test_msg_error_object_sends_unknown_errno_as_eio);
	tcase_add_test(tc, test_msg_error_object_fills_missing_message);
	tcase_add_test(tc, test_msg_event_builds_envelope);
	tcase_add_test(tc, test_msg_error_parse_reads_code_and_message);
	tcase_add_test(tc, test_msg_error_parse_trusts_code_over_number);
	tcase_add_test(tc, test_msg_error_parse_maps_unknown_code_to_eio);
	tcase_add_test(tc, test_msg_error_parse_rejects_malformed_error);
	tcase_add_test(tc, test_msg_errno_table_round_trips);
	tcase_add_test(tc, test_msg_print_replaces_invalid_utf8);
	tcase_add_test(tc, test_msg_print_writes_large_integers_exactly);
	tcase_add_test(tc, test_msg_encode_keeps_fractions_fractional);
	tcase_add_test(tc, test_msg_encode_rejects_over_max);
	tcase_add_test(tc, test_msg_encode_rejects_large_message);
	tcase_add_test(tc, test_msg_print_matches_cjson_layout);
	tcase_add_test(tc, test_msg_print_integers_exact_to_2_64);
	tcase_add_test(tc, test_msg_encode_buf_reuses_its_memory);
	tcase_add_test(tc, test_msg_parse_in_place_checks_the_tail);
	tcase_add_test(tc, test_msg_encode_ok_matches_reply_ok);
	tcase_add_test(tc, test_msg_parse_builds_cjson_tree);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(msg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
