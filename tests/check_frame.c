/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for proto/frame.c: the reader must hand out exactly the frames that were sent,
 * however the bytes are split across reads, reject bad lengths without consuming them, and
 * never hold more than max_frame plus the header.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* Copies len bytes into the reader the way a socket read would, in as many steps as needed. */
static void reader_feed(struct frame_reader *r, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		uint8_t *dst;
		size_t avail, n;

		ck_assert_int_eq(frame_reader_space(r, &dst, &avail), 0);
		ck_assert_uint_gt(avail, 0);
		n = len < avail ? len : avail;
		memcpy(dst, p, n);
		frame_reader_commit(r, n);
		p += n;
		len -= n;
	}
}

static void header_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

START_TEST(test_frame_reads_partial_input_byte_by_byte)
{
	static const char payload[] = "{\"id\":1,\"op\":\"ping\"}";
	struct frame_reader r;
	const char *out;
	size_t out_len, i, frame_len;
	uint8_t *frame;

	ck_assert_int_eq(frame_encode(payload, strlen(payload), &frame, &frame_len), 0);
	frame_reader_init(&r, FRAME_MAX_DEFAULT);
	for (i = 0; i < frame_len; i++) {
		ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 0);
		reader_feed(&r, frame + i, 1);
	}
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 1);
	ck_assert_uint_eq(out_len, strlen(payload));
	ck_assert_mem_eq(out, payload, out_len);
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 0);
	ck_assert_uint_eq(frame_reader_pending(&r), 0);
	frame_reader_done(&r);
	free(frame);
}
END_TEST

START_TEST(test_frame_reads_several_frames_from_one_buffer)
{
	static const char *const payloads[] = { "{}", "{\"a\":1}", "{\"b\":[1,2,3]}" };
	uint8_t stream[128];
	size_t stream_len = 0, i;
	struct frame_reader r;
	const char *out;
	size_t out_len;

	for (i = 0; i < 3; i++) {
		size_t n = strlen(payloads[i]);

		header_put(stream + stream_len, (uint32_t)n);
		memcpy(stream + stream_len + FRAME_HEADER_SIZE, payloads[i], n);
		stream_len += FRAME_HEADER_SIZE + n;
	}
	/* Half of a fourth frame follows the three whole ones. */
	header_put(stream + stream_len, 10);
	memcpy(stream + stream_len + FRAME_HEADER_SIZE, "{\"c\"", 4);
	stream_len += FRAME_HEADER_SIZE + 4;

	frame_reader_init(&r, FRAME_MAX_DEFAULT);
	reader_feed(&r, stream, stream_len);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 1);
		ck_assert_uint_eq(out_len, strlen(payloads[i]));
		ck_assert_mem_eq(out, payloads[i], out_len);
	}
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 0);
	ck_assert_uint_eq(frame_reader_pending(&r), FRAME_HEADER_SIZE + 4);

	reader_feed(&r, ":12}", 4);
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 0);
	reader_feed(&r, "}", 1);
	/* The header said 10 bytes; only 9 arrived so far, so one more is needed. */
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 0);
	reader_feed(&r, " ", 1);
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 1);
	ck_assert_uint_eq(out_len, 10);
	ck_assert_mem_eq(out, "{\"c\":12}} ", 10);
	ck_assert_uint_eq(frame_reader_pending(&r), 0);
	frame_reader_done(&r);
}
END_TEST

START_TEST(test_frame_rejects_oversize)
{
	struct frame_reader r;
	uint8_t hdr[FRAME_HEADER_SIZE];
	const char *out;
	size_t out_len;

	frame_reader_init(&r, 1024);
	header_put(hdr, 1025);
	reader_feed(&r, hdr, sizeof(hdr));
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), -EMSGSIZE);
	/* The bad header is not consumed: asking again gives the same answer. */
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), -EMSGSIZE);
	ck_assert_uint_eq(frame_reader_pending(&r), FRAME_HEADER_SIZE);
	frame_reader_done(&r);
}
END_TEST

START_TEST(test_frame_rejects_zero_length)
{
	static const uint8_t zero[FRAME_HEADER_SIZE] = { 0, 0, 0, 0 };
	struct frame_reader r;
	const char *out;
	size_t out_len;

	frame_reader_init(&r, FRAME_MAX_DEFAULT);
	reader_feed(&r, zero, sizeof(zero));
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), -EPROTO);
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), -EPROTO);
	ck_assert_uint_eq(frame_reader_pending(&r), FRAME_HEADER_SIZE);
	frame_reader_done(&r);
}
END_TEST

START_TEST(test_frame_rejects_garbage_header)
{
	static const char *const garbage[] = { "GET / HTTP/1.1\r\n", "{\"id\":1}", "\xff\xff\xff\xff" };
	size_t i;

	for (i = 0; i < 3; i++) {
		struct frame_reader r;
		const char *out;
		size_t out_len;

		frame_reader_init(&r, FRAME_MAX_DEFAULT);
		reader_feed(&r, garbage[i], strlen(garbage[i]));
		ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), -EMSGSIZE);
		frame_reader_done(&r);
	}
}
END_TEST

START_TEST(test_frame_accepts_exactly_max_frame)
{
	struct frame_reader r;
	uint8_t *frame, *payload;
	const char *out;
	size_t frame_len, out_len;

	payload = malloc(1024);
	ck_assert_ptr_nonnull(payload);
	memset(payload, 'x', 1024);
	ck_assert_int_eq(frame_encode((const char *)payload, 1024, &frame, &frame_len), 0);
	ck_assert_uint_eq(frame_len, 1024 + FRAME_HEADER_SIZE);

	frame_reader_init(&r, 1024);
	reader_feed(&r, frame, frame_len);
	ck_assert_uint_le(r.cap, 1024 + FRAME_HEADER_SIZE);
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 1);
	ck_assert_uint_eq(out_len, 1024);
	ck_assert_mem_eq(out, payload, 1024);
	frame_reader_done(&r);
	free(frame);
	free(payload);
}
END_TEST

START_TEST(test_frame_waits_for_complete_header)
{
	struct frame_reader r;
	const char *out;
	size_t out_len;

	frame_reader_init(&r, FRAME_MAX_DEFAULT);
	/* Three bytes of a header that would be oversize: no verdict until the fourth. */
	reader_feed(&r, "\xff\xff\xff", 3);
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 0);
	ck_assert_uint_eq(frame_reader_pending(&r), 3);
	frame_reader_done(&r);
}
END_TEST

START_TEST(test_frame_encode_round_trips)
{
	static const char payload[] = "{\"id\":42,\"ok\":true}";
	struct frame_reader r;
	uint8_t *frame;
	const char *out;
	size_t frame_len, out_len, n = strlen(payload);

	ck_assert_int_eq(frame_encode(payload, n, &frame, &frame_len), 0);
	ck_assert_uint_eq(frame_len, n + FRAME_HEADER_SIZE);
	ck_assert_uint_eq(frame[0], 0);
	ck_assert_uint_eq(frame[1], 0);
	ck_assert_uint_eq(frame[2], 0);
	ck_assert_uint_eq(frame[3], n);
	ck_assert_mem_eq(frame + FRAME_HEADER_SIZE, payload, n);

	frame_reader_init(&r, FRAME_MAX_DEFAULT);
	reader_feed(&r, frame, frame_len);
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 1);
	ck_assert_uint_eq(out_len, n);
	ck_assert_mem_eq(out, payload, n);
	frame_reader_done(&r);
	free(frame);
}
END_TEST

START_TEST(test_frame_encode_writes_big_endian_length)
{
	static char payload[0x010203];
	uint8_t *frame;
	size_t frame_len;

	memset(payload, 'y', sizeof(payload));
	ck_assert_int_eq(frame_encode(payload, sizeof(payload), &frame, &frame_len), 0);
	ck_assert_uint_eq(frame[0], 0x00);
	ck_assert_uint_eq(frame[1], 0x01);
	ck_assert_uint_eq(frame[2], 0x02);
	ck_assert_uint_eq(frame[3], 0x03);
	free(frame);
}
END_TEST

START_TEST(test_frame_encode_rejects_empty_and_over_limit)
{
	uint8_t *frame = NULL;
	size_t frame_len = 0;

	ck_assert_int_eq(frame_encode("x", 0, &frame, &frame_len), -EMSGSIZE);
	/* The length is checked before the payload is read, so a short buffer is fine here. */
	ck_assert_int_eq(frame_encode("x", (size_t)FRAME_MAX_LIMIT + 1, &frame, &frame_len), -EMSGSIZE);
	ck_assert_ptr_null(frame);
}
END_TEST

START_TEST(test_frame_buffer_never_exceeds_max_plus_header)
{
	enum { MAX = 1024, FRAMES = 2000 };
	uint32_t seed = 12345;
	struct frame_reader r;
	uint8_t *stream;
	size_t stream_len = 0, pos = 0, got = 0, i;

	/* A stream of frames of pseudo-random sizes, including the maximum, each byte telling its frame. */
	stream = malloc((size_t)FRAMES * (MAX + FRAME_HEADER_SIZE));
	ck_assert_ptr_nonnull(stream);
	for (i = 0; i < FRAMES; i++) {
		uint32_t n;

		seed = seed * 1103515245u + 12345u;
		n = i % 7 == 0 ? MAX : 1 + (seed >> 8) % MAX;
		header_put(stream + stream_len, n);
		memset(stream + stream_len + FRAME_HEADER_SIZE, (int)(i & 0xff), n);
		stream_len += FRAME_HEADER_SIZE + n;
	}

	frame_reader_init(&r, MAX);
	while (pos < stream_len) {
		const char *out;
		size_t out_len, avail, n;
		uint8_t *dst;
		int ret;

		ck_assert_int_eq(frame_reader_space(&r, &dst, &avail), 0);
		ck_assert_uint_gt(avail, 0);
		ck_assert_uint_le(r.cap, MAX + FRAME_HEADER_SIZE);
		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 8) % avail;
		if (n > stream_len - pos)
			n = stream_len - pos;
		memcpy(dst, stream + pos, n);
		frame_reader_commit(&r, n);
		pos += n;
		while ((ret = frame_reader_next(&r, &out, &out_len)) == 1) {
			ck_assert_uint_ge(out_len, 1);
			ck_assert_uint_le(out_len, MAX);
			ck_assert_int_eq((uint8_t)out[0], got & 0xff);
			ck_assert_int_eq((uint8_t)out[out_len - 1], got & 0xff);
			got++;
		}
		ck_assert_int_eq(ret, 0);
	}
	ck_assert_uint_eq(got, FRAMES);
	ck_assert_uint_eq(frame_reader_pending(&r), 0);
	ck_assert_uint_le(r.cap, MAX + FRAME_HEADER_SIZE);
	frame_reader_done(&r);
	free(stream);
}
END_TEST

START_TEST(test_frame_space_refuses_full_buffer_until_frame_taken)
{
	struct frame_reader r;
	uint8_t *frame, *dst;
	char payload[1024];
	const char *out;
	size_t frame_len, out_len, avail;

	memset(payload, 'z', sizeof(payload));
	ck_assert_int_eq(frame_encode(payload, sizeof(payload), &frame, &frame_len), 0);
	frame_reader_init(&r, 1024);
	reader_feed(&r, frame, frame_len);
	ck_assert_int_eq(frame_reader_space(&r, &dst, &avail), -ENOBUFS);
	ck_assert_int_eq(frame_reader_next(&r, &out, &out_len), 1);
	ck_assert_int_eq(frame_reader_space(&r, &dst, &avail), 0);
	ck_assert_uint_eq(avail, 1024 + FRAME_HEADER_SIZE);
	frame_reader_done(&r);
	free(frame);
}
END_TEST

START_TEST(test_frame_reader_done_accepts_unused_reader)
{
	struct frame_reader r;

	frame_reader_init(&r, FRAME_MAX_DEFAULT);
	frame_reader_done(&r);
	ck_assert_ptr_null(r.buf);
	ck_assert_uint_eq(frame_reader_pending(&r), 0);
	frame_reader_done(&r);
}
END_TEST

/* Receives len bytes into r as the daemon does: into scratch while r holds nothing. */
static size_t reader_feed_in(struct frame_reader *r, uint8_t *scratch, size_t cap,
                             const void *data, size_t len)
{
	uint8_t *dst;
	size_t avail, n;

	ck_assert_int_eq(frame_reader_space_in(r, scratch, cap, &dst, &avail), 0);
	n = len < avail ? len : avail;
	memcpy(dst, data, n);
	frame_reader_commit(r, n);
	return n;
}

/* Whole frames run from the lent scratch buffer; an idle reader holds no memory. */
START_TEST(test_frame_scratch_whole_frames_allocate_nothing)
{
	uint8_t scratch[256], wire[64];
	struct frame_reader r;
	const char *payload;
	size_t len;

	header_put(wire, 3);
	memcpy(wire + 4, "abc", 3);
	header_put(wire + 7, 2);
	memcpy(wire + 11, "de", 2);
	frame_reader_init(&r, FRAME_MAX_DEFAULT);
	ck_assert_uint_eq(reader_feed_in(&r, scratch, sizeof(scratch), wire, 13), 13);
	ck_assert_ptr_eq(r.buf, scratch);
	ck_assert_int_eq(frame_reader_next(&r, &payload, &len), 1);
	ck_assert_ptr_eq(payload, (const char *)scratch + 4);
	ck_assert_int_eq(frame_reader_next(&r, &payload, &len), 1);
	ck_assert_mem_eq(payload, "de", 2);
	ck_assert_int_eq(frame_reader_next(&r, &payload, &len), 0);
	ck_assert_int_eq(frame_reader_settle(&r), 0);
	ck_assert_ptr_null(r.buf);
	ck_assert_uint_eq(r.cap, 0);
	frame_reader_done(&r);
}
END_TEST

/*
 * A frame cut by the read: the part that came is copied out of the scratch buffer (which the
 * next reader may overwrite), completed in the reader's own memory, and that memory is freed
 * once the frame was taken.
 */
START_TEST(test_frame_scratch_partial_frame_is_kept_then_freed)
{
	uint8_t scratch[64], wire[16];
	struct frame_reader r;
	const char *payload;
	size_t len;

	header_put(wire, 6);
	memcpy(wire + 4, "abcdef", 6);
	frame_reader_init(&r, FRAME_MAX_DEFAULT);
	reader_feed_in(&r, scratch, sizeof(scratch), wire, 7);
	ck_assert_int_eq(frame_reader_next(&r, &payload, &len), 0);
	ck_assert_int_eq(frame_reader_settle(&r), 0);
	ck_assert_ptr_nonnull(r.buf);
	ck_assert_ptr_ne(r.buf, scratch);
	memset(scratch, 'x', sizeof(scratch));
	ck_assert_uint_eq(frame_reader_pending(&r), 7);
	/* With bytes held, input goes to the reader's own memory, not to scratch. */
	reader_feed_in(&r, scratch, sizeof(scratch), wire + 7, 3);
	ck_assert_int_eq(frame_reader_next(&r, &payload, &len), 1);
	ck_assert_uint_eq(len, 6);
	ck_assert_mem_eq(payload, "abcdef", 6);
	ck_assert_int_eq(frame_reader_settle(&r), 0);
	ck_assert_ptr_null(r.buf);
	frame_reader_done(&r);
}
END_TEST

/* A frame larger than the scratch buffer moves into the reader's own memory as it grows. */
START_TEST(test_frame_scratch_frame_larger_than_scratch)
{
	uint8_t scratch[16], *wire = malloc(1004);
	struct frame_reader r;
	const char *payload;
	size_t len, off = 0;

	ck_assert_ptr_nonnull(wire);
	header_put(wire, 1000);
	for (size_t i = 0; i < 1000; i++)
		wire[4 + i] = (uint8_t)i;
	frame_reader_init(&r, FRAME_MAX_DEFAULT);
	while (off < 1004) {
		off += reader_feed_in(&r, scratch, sizeof(scratch), wire + off, 1004 - off);
		if (off < 1004) {
			ck_assert_int_eq(frame_reader_next(&r, &payload, &len), 0);
			ck_assert_int_eq(frame_reader_settle(&r), 0);
		}
	}
	ck_assert_int_eq(frame_reader_next(&r, &payload, &len), 1);
	ck_assert_uint_eq(len, 1000);
	ck_assert_mem_eq(payload, wire + 4, 1000);
	ck_assert_int_eq(frame_reader_settle(&r), 0);
	ck_assert_ptr_null(r.buf);
	frame_reader_done(&r);
	free(wire);
}
END_TEST

/* What a reader keeps of a lent buffer stays within max_frame plus the header. */
START_TEST(test_frame_scratch_keeps_the_limit)
{
	static uint8_t scratch[65536];
	uint8_t wire[FRAME_MAX_MIN + FRAME_HEADER_SIZE] = { 0 };
	struct frame_reader r;

	header_put(wire, FRAME_MAX_MIN);
	frame_reader_init(&r, FRAME_MAX_MIN);
	ck_assert_uint_eq(reader_feed_in(&r, scratch, sizeof(scratch), wire, 100), 100);
	ck_assert_int_eq(frame_reader_settle(&r), 0);
	ck_assert_uint_le(r.cap, FRAME_MAX_MIN + FRAME_HEADER_SIZE);
	frame_reader_done(&r);
}
END_TEST

START_TEST(test_frame_parse_lengths)
{
	uint8_t wire[16];
	const char *payload;
	size_t len;

	header_put(wire, 2);
	memcpy(wire + 4, "hi", 2);
	ck_assert_int_eq(frame_parse(wire, 3, 100, &payload, &len), 0);
	ck_assert_int_eq(frame_parse(wire, 5, 100, &payload, &len), 0);
	ck_assert_int_eq(frame_parse(wire, 6, 100, &payload, &len), 6);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(frame_parse(wire, 6, 1, &payload, &len), -EMSGSIZE);
	header_put(wire, 0);
	ck_assert_int_eq(frame_parse(wire, 6, 100, &payload, &len), -EPROTO);
}
END_TEST

static Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("frame");

	tcase_add_test(tc, test_frame_reads_partial_input_byte_by_byte);
	tcase_add_test(tc, test_frame_reads_several_frames_from_one_buffer);
	tcase_add_test(tc, test_frame_rejects_oversize);
	tcase_add_test(tc, test_frame_rejects_zero_length);
	tcase_add_test(tc, test_frame_rejects_garbage_header);
	tcase_add_test(tc, test_frame_accepts_exactly_max_frame);
	tcase_add_test(tc, test_frame_waits_for_complete_header);
	tcase_add_test(tc, test_frame_encode_round_trips);
	tcase_add_test(tc, test_frame_encode_writes_big_endian_length);
	tcase_add_test(tc, test_frame_encode_rejects_empty_and_over_limit);
	tcase_add_test(tc, test_frame_buffer_never_exceeds_max_plus_header);
	tcase_add_test(tc, test_frame_space_refuses_full_buffer_until_frame_taken);
	tcase_add_test(tc, test_frame_reader_done_accepts_unused_reader);
	tcase_add_test(tc, test_frame_scratch_whole_frames_allocate_nothing);
	tcase_add_test(tc, test_frame_scratch_partial_frame_is_kept_then_freed);
	tcase_add_test(tc, test_frame_scratch_frame_larger_than_scratch);
	tcase_add_test(tc, test_frame_scratch_keeps_the_limit);
	tcase_add_test(tc, test_frame_parse_lengths);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(frame_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
