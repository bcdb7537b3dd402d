/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over mmapd's own parsing code: the frame reader (proto/frame.c), the message
 * codec (proto/msg.c), UTF-8 (proto/utf8.c), region names (shared/name.c) and strict numbers
 * (shared/num.c). cJSON is
 * the distribution's prebuilt library, so libFuzzer sees no coverage inside it; it is treated as
 * attack surface behind msg_parse, and the target checks what mmapd promises about its output.
 *
 * An input is a byte stream as a peer would send it. It goes through three frame_readers: all
 * at once, and twice in chunk sizes drawn from a generator seeded with a hash of the input (once
 * with the smallest max_frame a config allows), so headers and payloads split at every place.
 * Every answer of every reader is compared with an independent decoding of the same bytes.
 * Each complete frame, and the whole input taken as one payload (so that JSON mutations that
 * break a length header still reach the parser), goes through utf8_check and utf8_sanitize,
 * cross-checked against a decoder of our own, and through msg_parse, cross-checked against
 * plain cJSON and against its own rules (valid UTF-8, no NUL, no \u0000, depth); every object it
 * accepts goes through the field readers, name_check, num_parse_*, msg_error_parse, and a
 * msg_encode (and msg_print) round trip that must read back the same, in valid UTF-8. A broken invariant ends in
 * __builtin_trap() after one line on stderr naming the check, which libFuzzer reports as a crash.
 *
 * tests/fuzz/replay.c calls the same entry point without libFuzzer, to replay the corpus.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "frame.h"
#include "msg.h"
#include "name.h"
#include "num.h"
#include "utf8.h"

/* Small enough that libFuzzer's inputs (-max_len=8192) cross it; FRAME_MAX_MIN is tried too. */
#define FUZZ_MAX_FRAME 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *what, int line) __attribute__((noreturn));

static void fuzz_fail(const char *what, int line)
{
	fprintf(stderr, "fuzz_proto.c:%d: invariant violated: %s\n", line, what);
	__builtin_trap();
}

#define FUZZ_CHECK(cond)                                  \
	do {                                              \
		if (!(cond))                              \
			fuzz_fail(#cond, __LINE__);       \
	} while (0)

/*
 * The keys whose values are read with every field reader: the request fields of
 * docs/protocol.md and docs/coordination.md, then the reply and event fields libmmapd reads.
 */
static const char *const fuzz_fields[] = {
	"id", "op", "name", "size", "mode", "create", "exclusive", "anonymous", "sparse",
	"handle", "after", "limit", "version", "client", "offset", "length", "lock",
	"timeout_ms", "wait", "policy", "shrink", "kind", "value",
	"ok", "event", "fds", "error", "code", "errno", "message", "region", "created", "more",
	"regions", "grants", "clients", "max_frame", "seq", "first_seq", "generation",
	"old_size", "poisoned", "pid", "external", "truncated", "created_ms",
};

#define FUZZ_FIELD_COUNT (sizeof(fuzz_fields) / sizeof(fuzz_fields[0]))

/* Marks an output the readers must leave alone when the key is absent. */
#define FUZZ_UNSET 0x5a5a5a5a5a5a5a5aULL

/* One key's value as each of the three readers sees it. */
struct fuzz_field {
	int u64_r;
	uint64_t u64;
	int bool_r;
	bool b;
	int str_r;
	const char *str;
};

/* The big-endian frame header at p. */
static uint32_t fuzz_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* FNV-1a over the input: the seed of the chunk sizes, so a mutation also changes them. */
static uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ULL;
	return h ? h : 1;
}

/* xorshift64*: cheap, deterministic, never stuck at zero for a non-zero state. */
static uint64_t fuzz_rand(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dULL;
}

/*
 * How many bytes the next read delivers: with no generator, all that fits (a fast peer);
 * otherwise often 1 to 4 bytes (headers split), sometimes up to 64, sometimes all that fits.
 */
static size_t fuzz_chunk(uint64_t *state, size_t avail, size_t left)
{
	size_t n = avail < left ? avail : left;
	uint64_t x;

	if (!state)
		return n;
	x = fuzz_rand(state);
	switch (x & 3) {
	case 0:
		x = 1;
		break;
	case 1:
		x = 1 + (x >> 8) % 4;
		break;
	case 2:
		x = 1 + (x >> 8) % 64;
		break;
	default:
		x = n;
		break;
	}
	return x < n ? (size_t)x : n;
}

/* The depth of the tree at item, counted as PROTO_JSON_DEPTH_MAX counts it (an object is 1). */
static unsigned fuzz_depth(const cJSON *item)
{
	const cJSON *c;
	unsigned max = 0;

	if (!cJSON_IsObject(item) && !cJSON_IsArray(item))
		return 0;
	for (c = item->child; c; c = c->next) {
		unsigned d = fuzz_depth(c);

		if (d > max)
			max = d;
	}
	return max + 1;
}

/*
 * Looks for a \u0000 escape without following string boundaries as msg.c does: a "u0000" is an
 * escape exactly when an odd run of backslashes stands before it (an even run is escaped
 * backslashes). Outside a string a backslash is not JSON at all, so a match there must be
 * rejected too.
 */
static bool fuzz_has_nul_escape(const char *p, size_t len)
{
	size_t i;

	for (i = 1; i + 5 <= len; i++) {
		size_t run = 0;

		if (p[i] != 'u' || memcmp(p + i + 1, "0000", 4) != 0)
			continue;
		while (run < i && p[i - 1 - run] == '\\')
			run++;
		if (run % 2 == 1)
			return true;
	}
	return false;
}

/*
 * The offset of the first byte of s[0..len) that does not start a valid UTF-8 sequence, or len
 * when it is all valid. Written from RFC 3629 alone, and unlike proto/utf8.c, which follows the
 * table of byte ranges: each sequence is decoded by the bit patterns of its bytes, and the code
 * point must then be in the shortest form, not a surrogate and at most U+10FFFF.
 */
static size_t fuzz_utf8_bad(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		uint32_t cp, min;
		size_t n, k;

		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 2, cp = p[i] & 0x1f, min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 3, cp = p[i] & 0x0f, min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 4, cp = p[i] & 0x07, min = 0x10000;
		} else {
			return i;
		}
		if (len - i < n)
			return i;
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n;
	}
	return len;
}

/* utf8_check's verdict and offset, and utf8_sanitize's output, against fuzz_utf8_bad. */
static void fuzz_utf8(const char *s, size_t len)
{
	size_t want = fuzz_utf8_bad(s, len), bad = len, n;
	int r = utf8_check(s, len, &bad);
	char *out;

	FUZZ_CHECK(want == len ? r == 0 && bad == len : r == -EILSEQ && bad == want);
	n = utf8_sanitize(s, len, NULL);
	FUZZ_CHECK(want == len ? n == len : n > len && n <= 3 * len);
	out = malloc(n ? n : 1);
	if (!out)
		return;
	FUZZ_CHECK(utf8_sanitize(s, len, out) == n);
	FUZZ_CHECK(fuzz_utf8_bad(out, n) == n);
	/* What was valid is kept: the valid prefix, or all of it. */
	FUZZ_CHECK(memcmp(out, s, want) == 0);
	free(out);
}

/* name_check's verdict, written from name.h alone. */
static int fuzz_ref_name(const char *s, size_t len)
{
	static const char allowed[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
	size_t i;

	if (len == 0)
		return -EINVAL;
	if (len > NAME_MAX_LEN)
		return -ENAMETOOLONG;
	if (s[0] == '.' || s[0] == '-')
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (s[i] == '\0' || !strchr(allowed, s[i]))
			return -EINVAL;
	return 0;
}

static void fuzz_name(const char *s, size_t len)
{
	int r = name_check(s, len);

	FUZZ_CHECK(r == fuzz_ref_name(s, len));
	FUZZ_CHECK((r == 0) == (strcmp(name_problem(s, len), "the name is valid") == 0));
}

/*
 * num_parse_u64 (units false) and num_parse_size (units true), written from num.h alone: digits,
 * then nothing or (for sizes) a unit; junk is -EINVAL even after an overlong number.
 */
static int fuzz_ref_num(const char *s, bool units, uint64_t *ret)
{
	static const struct {
		const char *suffix;
		int shift;
	} unit[] = {
		{ "", 0 }, { "K", 10 }, { "KiB", 10 }, { "M", 20 }, { "MiB", 20 },
		{ "G", 30 }, { "GiB", 30 }, { "T", 40 }, { "TiB", 40 },
	};
	size_t n = strspn(s, "0123456789"), count = units ? sizeof(unit) / sizeof(unit[0]) : 1, i;
	unsigned __int128 v = 0;
	bool overflow = false;
	int shift = -1;

	if (n == 0)
		return -EINVAL;
	for (i = 0; i < n && !overflow; i++) {
		v = v * 10 + (unsigned)(s[i] - '0');
		overflow = v > UINT64_MAX;
	}
	for (i = 0; i < count; i++)
		if (strcasecmp(s + n, unit[i].suffix) == 0)
			shift = unit[i].shift;
	if (shift < 0)
		return -EINVAL;
	if (overflow || (v << shift) > UINT64_MAX)
		return -ERANGE;
	*ret = (uint64_t)(v << shift);
	return 0;
}

/* Every string field read is also tried as a number, and a "name" as a region name. */
static void fuzz_string(const char *key, const char *s)
{
	uint64_t got = 0, want = 0;
	int r;

	r = num_parse_u64(s, &got);
	FUZZ_CHECK(r == fuzz_ref_num(s, false, &want));
	FUZZ_CHECK(r < 0 || got == want);
	r = num_parse_size(s, &got);
	FUZZ_CHECK(r == fuzz_ref_num(s, true, &want));
	FUZZ_CHECK(r < 0 || got == want);
	if (strcmp(key, "name") == 0)
		fuzz_name(s, strlen(s));
}

/* Whether msg_get_u64 must accept item: a number, whole, 0 .. 2^53-1. */
static bool fuzz_u64_ok(const cJSON *item)
{
	double d = item->valuedouble;

	return cJSON_IsNumber(item) && d >= 0.0 && d <= (double)PROTO_ID_MAX && floor(d) == d;
}

/* Reads key with all three readers and checks each verdict against item's cJSON type. */
static void fuzz_read_field(const cJSON *obj, const char *key, struct fuzz_field *f)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	f->u64 = FUZZ_UNSET;
	f->b = true;
	f->str = NULL;
	f->u64_r = msg_get_u64(obj, key, &f->u64);
	f->bool_r = msg_get_bool(obj, key, &f->b);
	f->str_r = msg_get_string(obj, key, &f->str);
	if (!item) {
		FUZZ_CHECK(f->u64_r == -ENOENT && f->bool_r == -ENOENT && f->str_r == -ENOENT);
		FUZZ_CHECK(f->u64 == FUZZ_UNSET && f->b && !f->str);
		return;
	}
	FUZZ_CHECK(f->u64_r == (fuzz_u64_ok(item) ? 0 : -EINVAL));
	FUZZ_CHECK(f->u64_r < 0 || (double)f->u64 == item->valuedouble);
	FUZZ_CHECK(f->bool_r == (cJSON_IsBool(item) ? 0 : -EINVAL));
	FUZZ_CHECK(f->bool_r < 0 || f->b == (bool)cJSON_IsTrue(item));
	FUZZ_CHECK(f->str_r == (cJSON_IsString(item) ? 0 : -EINVAL));
	FUZZ_CHECK(f->str_r < 0 || f->str == item->valuestring);
}

static void fuzz_tree(const cJSON *item);

/* Reads every known field of obj, then visits the objects beneath it. */
static void fuzz_object(const cJSON *obj)
{
	size_t i;

	for (i = 0; i < FUZZ_FIELD_COUNT; i++) {
		struct fuzz_field f;

		fuzz_read_field(obj, fuzz_fields[i], &f);
		if (f.str_r == 0)
			fuzz_string(fuzz_fields[i], f.str);
	}
	fuzz_tree(obj->child);
}

/* Visits every object in the list that starts at item, inside arrays too. */
static void fuzz_tree(const cJSON *item)
{
	for (; item; item = item->next) {
		if (cJSON_IsObject(item))
			fuzz_object(item);
		else if (cJSON_IsArray(item))
			fuzz_tree(item->child);
	}
}

/*
 * Parses what a peer would read: msg_parse must accept text that mmapd printed itself. Returns
 * the object, or NULL on ENOMEM (the only excuse).
 */
static cJSON *fuzz_reparse(const char *text, size_t len)
{
	cJSON *obj = NULL;
	int r = msg_parse(text, len, &obj);

	if (r == -ENOMEM)
		return NULL;
	FUZZ_CHECK(r == 0);
	return obj;
}

/*
 * Encodes obj as mmapd sends it and parses the frame back. msg_encode must frame exactly
 * msg_print's text, and refuse it as -EMSGSIZE exactly when it is longer than max_frame.
 * Returns NULL on ENOMEM.
 */
static cJSON *fuzz_reencode(const cJSON *obj)
{
	char *text = msg_print(obj, false);
	uint8_t *frame = NULL;
	size_t text_len, frame_len = 0;
	cJSON *back = NULL;
	int r;

	if (!text)
		return NULL;
	text_len = strlen(text);
	FUZZ_CHECK(fuzz_utf8_bad(text, text_len) == text_len);
	r = msg_encode(obj, FUZZ_MAX_FRAME, &frame, &frame_len);
	FUZZ_CHECK(r == (text_len > FUZZ_MAX_FRAME ? -EMSGSIZE : 0) || r == -ENOMEM);
	free(frame);
	frame = NULL;
	r = msg_encode(obj, FRAME_MAX_LIMIT, &frame, &frame_len);
	if (r == 0) {
		FUZZ_CHECK(frame_len == FRAME_HEADER_SIZE + text_len);
		FUZZ_CHECK(fuzz_be32(frame) == text_len);
		FUZZ_CHECK(memcmp(frame + FRAME_HEADER_SIZE, text, text_len) == 0);
		back = fuzz_reparse((const char *)frame + FRAME_HEADER_SIZE, text_len);
	} else {
		FUZZ_CHECK(r == -ENOMEM);
	}
	free(frame);
	cJSON_free(text);
	return back;
}

/* The readers must see the same in a and b (the same object before and after a round trip). */
static void fuzz_compare_fields(const cJSON *a, const cJSON *b)
{
	size_t i;

	for (i = 0; i < FUZZ_FIELD_COUNT; i++) {
		struct fuzz_field fa, fb;

		fuzz_read_field(a, fuzz_fields[i], &fa);
		fuzz_read_field(b, fuzz_fields[i], &fb);
		FUZZ_CHECK(fa.u64_r == fb.u64_r && (fa.u64_r < 0 || fa.u64 == fb.u64));
		FUZZ_CHECK(fa.bool_r == fb.bool_r && (fa.bool_r < 0 || fa.b == fb.b));
		FUZZ_CHECK(fa.str_r == fb.str_r && (fa.str_r < 0 || strcmp(fa.str, fb.str) == 0));
	}
}

/*
 * Walks two lists in step: same keys in the same order, same types (cJSON writes an infinite
 * number as null, the one change printing may make), same strings, and the same field values
 * in every object.
 */
static void fuzz_compare(const cJSON *a, const cJSON *b)
{
	for (; a || b; a = a->next, b = b->next) {
		FUZZ_CHECK(a && b);
		FUZZ_CHECK(!a->string == !b->string);
		FUZZ_CHECK(!a->string || strcmp(a->string, b->string) == 0);
		if (cJSON_IsNumber(a) && !isfinite(a->valuedouble))
			FUZZ_CHECK(cJSON_IsNull(b));
		else
			FUZZ_CHECK((a->type & 0xff) == (b->type & 0xff));
		FUZZ_CHECK(!cJSON_IsString(a) || strcmp(a->valuestring, b->valuestring) == 0);
		if (cJSON_IsObject(a))
			fuzz_compare_fields(a, b);
		fuzz_compare(a->child, b->child);
	}
}

/* msg_encode's frame and msg_print's formatted text must both read back as obj. */
static void fuzz_round_trip(const cJSON *obj)
{
	cJSON *back = fuzz_reencode(obj);
	char *text;

	if (back)
		fuzz_compare(obj, back);
	cJSON_Delete(back);

	text = msg_print(obj, true);
	if (!text)
		return;
	back = fuzz_reparse(text, strlen(text));
	if (back)
		fuzz_compare(obj, back);
	cJSON_Delete(back);
	cJSON_free(text);
}

/*
 * Sends err and message in an error reply (msg_reply_error) and checks what a peer reads back:
 * want_err and want_message, a "code" and an "errno" that agree, and the id as it was sent.
 */
static void fuzz_error_reply(bool has_id, uint64_t id, int err, const char *message, int want_err,
                             const char *want_message)
{
	cJSON *reply = msg_reply_error(has_id, id, err, message);
	const char *back_message = NULL;
	uint64_t back_id = 0, back_errno = 0;
	int back_err = 0, r;
	cJSON *back;

	if (!reply)
		return;
	back = fuzz_reencode(reply);
	if (back) {
		FUZZ_CHECK(msg_error_parse(back, &back_err, &back_message) == 0);
		FUZZ_CHECK(back_err == want_err && strcmp(back_message, want_message) == 0);
		r = msg_get_u64(cJSON_GetObjectItemCaseSensitive(back, "error"), "errno", &back_errno);
		FUZZ_CHECK(r == 0 && back_errno == (uint64_t)want_err);
		r = msg_get_u64(back, "id", &back_id);
		FUZZ_CHECK(has_id ? r == 0 && back_id == id : r == -EINVAL);
		FUZZ_CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(back, "ok")));
	}
	cJSON_Delete(back);
	cJSON_Delete(reply);
}

/*
 * msg_error_parse against the rules in msg.h. The error it read then goes out again in a reply
 * (with obj's id, if it has one) and must come back the same; and the input's "errno", sent
 * without a message, must come back as itself (or EIO outside the table) with strerror's text.
 */
static void fuzz_error(const cJSON *obj)
{
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(obj, "error");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
	const cJSON *message = cJSON_GetObjectItemCaseSensitive(error, "message");
	const char *got_message = NULL;
	int err = 0, known, want, r;
	uint64_t id = 0, num = 0;
	bool has_id;

	want = 0;
	if (!cJSON_IsObject(error) || !cJSON_IsString(code) || (message && !cJSON_IsString(message)))
		want = -EBADMSG;
	r = msg_error_parse(obj, &err, &got_message);
	FUZZ_CHECK(r == want);
	if (r < 0)
		return;
	known = proto_errno(code->valuestring);
	FUZZ_CHECK(err == (known ? known : EIO));
	FUZZ_CHECK(proto_errname(err) && (!known || strcmp(proto_errname(err), code->valuestring) == 0));
	FUZZ_CHECK(strcmp(got_message, message ? message->valuestring : "") == 0);

	has_id = msg_get_u64(obj, "id", &id) == 0;
	fuzz_error_reply(has_id, id, err, got_message, err, got_message);
	if (msg_get_u64(error, "errno", &num) == 0 && num <= INT_MAX) {
		int sent = (int)num, sent_as = proto_errname(sent) ? sent : EIO;

		fuzz_error_reply(false, 0, sent, NULL, sent_as, strerrordesc_np(sent_as));
	}
}

/* An ok reply to obj's id, and an event named after its op, must read back as built. */
static void fuzz_replies(const cJSON *obj)
{
	const char *op;
	uint64_t id, back_id = 0;
	cJSON *msg, *back;

	if (msg_get_u64(obj, "id", &id) == 0 && (msg = msg_reply_ok(id))) {
		back = fuzz_reencode(msg);
		FUZZ_CHECK(!back || (msg_get_u64(back, "id", &back_id) == 0 && back_id == id));
		FUZZ_CHECK(!back || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(back, "ok")));
		cJSON_Delete(back);
		cJSON_Delete(msg);
	}
	if (msg_get_string(obj, "op", &op) == 0 && (msg = msg_event(op))) {
		const char *name = NULL;

		back = fuzz_reencode(msg);
		FUZZ_CHECK(!back || (msg_get_string(back, "event", &name) == 0 && strcmp(name, op) == 0));
		cJSON_Delete(back);
		cJSON_Delete(msg);
	}
}

/*
 * msg_parse against its contract: it must reject invalid UTF-8 (as -EILSEQ), a NUL byte, a
 * \u0000 escape and anything deeper than PROTO_JSON_DEPTH_MAX, accept nothing cJSON rejects or
 * that is not an object, and accept every object cJSON parses that breaks none of its rules.
 * Returns the object or NULL.
 */
static cJSON *fuzz_parse(const char *p, size_t len)
{
	bool utf8 = fuzz_utf8_bad(p, len) == len;
	bool nul = memchr(p, '\0', len) || fuzz_has_nul_escape(p, len);
	cJSON *obj = NULL, *plain;
	char *text;
	int r;

	text = malloc(len + 1);
	if (!text)
		return NULL;
	memcpy(text, p, len);
	text[len] = '\0';
	plain = cJSON_ParseWithLengthOpts(text, len + 1, NULL, true);
	free(text);

	r = msg_parse(p, len, &obj);
	FUZZ_CHECK(r == 0 || r == -EILSEQ || r == -EBADMSG || r == -ENOMEM);
	FUZZ_CHECK((r == -EILSEQ) == !utf8);
	if (r == 0) {
		FUZZ_CHECK(!nul);
		FUZZ_CHECK(plain && cJSON_IsObject(obj));
		FUZZ_CHECK(fuzz_depth(obj) <= PROTO_JSON_DEPTH_MAX);
	} else if (r == -EBADMSG) {
		FUZZ_CHECK(nul || !cJSON_IsObject(plain) || fuzz_depth(plain) > PROTO_JSON_DEPTH_MAX);
	}
	cJSON_Delete(plain);
	return obj;
}

/* Everything mmapd does with one frame payload (or, once, with the whole input). */
static void fuzz_payload(const char *p, size_t len)
{
	uint8_t *frame = NULL;
	size_t frame_len = 0;
	cJSON *obj;

	/* Raw bytes make the names with embedded NUL bytes that JSON strings cannot carry. */
	fuzz_name(p, len);
	fuzz_utf8(p, len);

	FUZZ_CHECK(frame_encode(p, 0, &frame, &frame_len) == -EMSGSIZE);
	if (frame_encode(p, len, &frame, &frame_len) == 0) {
		FUZZ_CHECK(frame_len == FRAME_HEADER_SIZE + len && fuzz_be32(frame) == len);
		FUZZ_CHECK(memcmp(frame + FRAME_HEADER_SIZE, p, len) == 0);
		free(frame);
	}

	obj = fuzz_parse(p, len);
	if (!obj)
		return;
	fuzz_object(obj);
	fuzz_error(obj);
	fuzz_replies(obj);
	fuzz_round_trip(obj);
	cJSON_Delete(obj);
}

/*
 * What frame_reader_next must answer when data[off..fed) is buffered: decoded straight from the
 * input, not from the reader's buffer. Sets *ret_len for a complete frame.
 */
static int fuzz_expect(const uint8_t *data, size_t fed, size_t off, uint32_t max_frame,
                       size_t *ret_len)
{
	uint32_t n;

	if (fed - off < FRAME_HEADER_SIZE)
		return 0;
	n = fuzz_be32(data + off);
	if (n == 0)
		return -EPROTO;
	if (n > max_frame)
		return -EMSGSIZE;
	if (fed - off - FRAME_HEADER_SIZE < n)
		return 0;
	*ret_len = n;
	return 1;
}

/*
 * Feeds data to a frame_reader in chunks (state NULL: as much as fits each time) and takes
 * every frame as soon as it is complete, as the daemon does. With parse set, each frame's
 * payload is checked as a message too.
 */
static void fuzz_frames(const uint8_t *data, size_t size, uint32_t max_frame, uint64_t *state,
                        bool parse)
{
	struct frame_reader r;
	size_t fed = 0, off = 0;

	frame_reader_init(&r, max_frame);
	for (;;) {
		uint8_t *space;
		size_t avail, n;
		int got;

		for (;;) {
			const char *payload = NULL;
			size_t len = 0, want_len = 0;
			int want = fuzz_expect(data, fed, off, max_frame, &want_len);

			got = frame_reader_next(&r, &payload, &len);
			FUZZ_CHECK(got == want);
			if (got <= 0)
				break;
			FUZZ_CHECK(len >= 1 && len <= max_frame && len == want_len);
			FUZZ_CHECK(memcmp(payload, data + off + FRAME_HEADER_SIZE, len) == 0);
			off += FRAME_HEADER_SIZE + len;
			if (parse)
				fuzz_payload(payload, len);
		}
		FUZZ_CHECK(r.start <= r.len && r.len <= r.cap);
		FUZZ_CHECK(r.cap <= (size_t)max_frame + FRAME_HEADER_SIZE);
		FUZZ_CHECK(frame_reader_pending(&r) == fed - off);
		if (got < 0) {
			/* A frame that cannot be returned is never consumed: the answer stays. */
			const char *payload;
			size_t len;

			FUZZ_CHECK(frame_reader_next(&r, &payload, &len) == got);
			break;
		}
		if (fed == size)
			break;
		got = frame_reader_space(&r, &space, &avail);
		if (got == -ENOMEM)
			break;
		/* -ENOBUFS means a complete frame waits, and every complete frame was taken. */
		FUZZ_CHECK(got == 0 && avail > 0);
		FUZZ_CHECK(r.cap <= (size_t)max_frame + FRAME_HEADER_SIZE);
		n = fuzz_chunk(state, avail, size - fed);
		memcpy(space, data + fed, n);
		frame_reader_commit(&r, n);
		fed += n;
	}
	frame_reader_done(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t state = fuzz_hash(data, size);

	fuzz_frames(data, size, FUZZ_MAX_FRAME, NULL, true);
	fuzz_frames(data, size, FUZZ_MAX_FRAME, &state, false);
	fuzz_frames(data, size, FRAME_MAX_MIN, &state, false);
	if (size > 0)
		fuzz_payload((const char *)data, size);
	return 0;
}
