/* SPDX-License-Identifier: MIT */
/*
 * Message codec of the mmapd protocol (see msg.h). cJSON does the parsing, but it is lenient
 * in ways a daemon that trusts no client cannot be: it copies bytes that are not UTF-8 into
 * its strings as they are, its strings stop silently at an escaped NUL, it nests a thousand
 * levels deep, and it reads integers as doubles. So the raw text is checked first (valid
 * UTF-8, no NUL bytes, no \u0000 escapes, bounded depth), and the field readers check types
 * and ranges strictly. (cJSON's own \u escapes are safe: it refuses a lone surrogate, so
 * every string it decodes from valid UTF-8 is valid UTF-8.) On the way out, integers are
 * printed exactly, which cJSON alone does not do above 10^15, and text is valid UTF-8 whatever
 * a bug may have put in a string. The errno table below is the one mapping used both ways.
 */
#include "msg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "utf8.h"
#include "vocab.h"

#define MSG_ERRNO_ENTRY(e) { e, #e }

/*
 * Every code the protocol names. Linux aliases (EWOULDBLOCK, EDEADLOCK, ENOTSUP) share a value
 * with an entry here and are left out, so that each value has exactly one name.
 */
static const struct {
	int err;
	const char *name;
} msg_errno_table[] = {
	MSG_ERRNO_ENTRY(EPERM),
	MSG_ERRNO_ENTRY(ENOENT),
	MSG_ERRNO_ENTRY(ESRCH),
	MSG_ERRNO_ENTRY(EINTR),
	MSG_ERRNO_ENTRY(EIO),
	MSG_ERRNO_ENTRY(ENXIO),
	MSG_ERRNO_ENTRY(E2BIG),
	MSG_ERRNO_ENTRY(EBADF),
	MSG_ERRNO_ENTRY(EAGAIN),
	MSG_ERRNO_ENTRY(ENOMEM),
	MSG_ERRNO_ENTRY(EACCES),
	MSG_ERRNO_ENTRY(EFAULT),
	MSG_ERRNO_ENTRY(EBUSY),
	MSG_ERRNO_ENTRY(EEXIST),
	MSG_ERRNO_ENTRY(EXDEV),
	MSG_ERRNO_ENTRY(ENODEV),
	MSG_ERRNO_ENTRY(ENOTDIR),
	MSG_ERRNO_ENTRY(EISDIR),
	MSG_ERRNO_ENTRY(EINVAL),
	MSG_ERRNO_ENTRY(ENFILE),
	MSG_ERRNO_ENTRY(EMFILE),
	MSG_ERRNO_ENTRY(ENOTTY),
	MSG_ERRNO_ENTRY(ETXTBSY),
	MSG_ERRNO_ENTRY(EFBIG),
	MSG_ERRNO_ENTRY(ENOSPC),
	MSG_ERRNO_ENTRY(ESPIPE),
	MSG_ERRNO_ENTRY(EROFS),
	MSG_ERRNO_ENTRY(EMLINK),
	MSG_ERRNO_ENTRY(EPIPE),
	MSG_ERRNO_ENTRY(ERANGE),
	MSG_ERRNO_ENTRY(EDEADLK),
	MSG_ERRNO_ENTRY(ENAMETOOLONG),
	MSG_ERRNO_ENTRY(ENOLCK),
	MSG_ERRNO_ENTRY(ENOSYS),
	MSG_ERRNO_ENTRY(ENOTEMPTY),
	MSG_ERRNO_ENTRY(ELOOP),
	MSG_ERRNO_ENTRY(ENODATA),
	MSG_ERRNO_ENTRY(EPROTO),
	MSG_ERRNO_ENTRY(EBADMSG),
	MSG_ERRNO_ENTRY(EOVERFLOW),
	MSG_ERRNO_ENTRY(EILSEQ),
	MSG_ERRNO_ENTRY(EUSERS),
	MSG_ERRNO_ENTRY(ENOTSOCK),
	MSG_ERRNO_ENTRY(EMSGSIZE),
	MSG_ERRNO_ENTRY(EPROTONOSUPPORT),
	MSG_ERRNO_ENTRY(EOPNOTSUPP),
	MSG_ERRNO_ENTRY(ENOBUFS),
	MSG_ERRNO_ENTRY(ECONNRESET),
	MSG_ERRNO_ENTRY(ENOTCONN),
	MSG_ERRNO_ENTRY(ESHUTDOWN),
	MSG_ERRNO_ENTRY(ETIMEDOUT),
	MSG_ERRNO_ENTRY(ECONNREFUSED),
	MSG_ERRNO_ENTRY(EALREADY),
	MSG_ERRNO_ENTRY(EINPROGRESS),
	MSG_ERRNO_ENTRY(ESTALE),
	MSG_ERRNO_ENTRY(EDQUOT),
	MSG_ERRNO_ENTRY(ECANCELED),
	MSG_ERRNO_ENTRY(EOWNERDEAD),
	MSG_ERRNO_ENTRY(ENOTRECOVERABLE),
};

#define MSG_ERRNO_COUNT (sizeof(msg_errno_table) / sizeof(msg_errno_table[0]))

const char *proto_errname(int err)
{
	size_t i;

	for (i = 0; i < MSG_ERRNO_COUNT; i++)
		if (msg_errno_table[i].err == err)
			return msg_errno_table[i].name;
	return NULL;
}

int proto_errno(const char *name)
{
	size_t i;

	if (!name)
		return 0;
	for (i = 0; i < MSG_ERRNO_COUNT; i++)
		if (strcmp(msg_errno_table[i].name, name) == 0)
			return msg_errno_table[i].err;
	return 0;
}

/*
 * Checks the raw text before cJSON sees it: no NUL byte anywhere, no \u0000 escape inside a
 * string, and no more than PROTO_JSON_DEPTH_MAX open objects and arrays at once. Brackets and
 * escapes count only where they mean something, so the scanner follows string boundaries and
 * backslash escapes ("\\u0000" is an escaped backslash followed by text, not a NUL).
 */
static int msg_scan(const char *p, size_t len, bool allow_nul_escape)
{
	bool in_string = false;
	unsigned depth = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\0')
			return -EBADMSG;
		if (in_string) {
			if (c == '"') {
				in_string = false;
			} else if (c == '\\') {
				if (i + 1 >= len)
					return -EBADMSG;
				if (!allow_nul_escape && p[i + 1] == 'u' && len - i >= 6 &&
				    memcmp(p + i + 2, "0000", 4) == 0)
					return -EBADMSG;
				/* Skip the escaped character, so \" and \\ cannot end the string. */
				i++;
				if (p[i] == '\0')
					return -EBADMSG;
			}
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > PROTO_JSON_DEPTH_MAX)
				return -EBADMSG;
		} else if (c == '}' || c == ']') {
			/* Unbalanced closers are cJSON's to reject; only keep the count sane. */
			if (depth > 0)
				depth--;
		}
	}
	return 0;
}

static int msg_key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * True when some object in the tree of item has a key twice. Small objects are compared
 * pairwise; larger ones sort their keys, so a frame of thousands of keys costs O(n log n).
 */
static bool msg_has_repeated_key(const cJSON *item)
{
	const cJSON *child;
	size_t n = 0, i;
	bool repeated = false;

	for (child = item->child; child; child = child->next) {
		if ((cJSON_IsObject(child) || cJSON_IsArray(child)) && msg_has_repeated_key(child))
			return true;
		n++;
	}
	if (!cJSON_IsObject(item) || n < 2)
		return false;
	if (n <= 8) {
		for (child = item->child; child && !repeated; child = child->next)
			for (const cJSON *o = child->next; o && !repeated; o = o->next)
				repeated = strcmp(child->string, o->string) == 0;
		return repeated;
	}
	{
		const char **keys = malloc(n * sizeof(*keys));

		/* Without memory to tell, say yes: the request is refused, never let through. */
		if (!keys)
			return true;
		for (i = 0, child = item->child; child; child = child->next)
			keys[i++] = child->string;
		qsort(keys, n, sizeof(*keys), msg_key_cmp);
		for (i = 1; i < n && !repeated; i++)
			repeated = strcmp(keys[i - 1], keys[i]) == 0;
		free(keys);
	}
	return repeated;
}

/*
 * The fast reader, for the shape nearly every request has: objects and arrays of plain
 * strings (no escape, no control character), integers (-?(0|[1-9][0-9]{0,14}): below 10^15,
 * so exact in a double), true, false and null, between spaces, tabs and line ends. It builds
 * the tree cJSON would build of that text (the same nodes, keys and values, in the same
 * memory), but reads integers without floating point (cJSON reads every number with strtod,
 * after a localeconv, and tries "null", "false" and "true" before anything else) and checks
 * NUL bytes, depth and repeated keys as it goes, in one pass. Anything else (an escape, a
 * fraction or exponent, a longer number, other white space, a repeated key, too deep, no
 * memory) makes it give up, and the text goes the way it always went: msg_scan, cJSON,
 * msg_has_repeated_key, which accept or refuse it exactly as before.
 */
#define MSG_FAST_GIVE_UP (-EAGAIN)
#define MSG_FAST_KEYS_MAX 16   /* keys per object it compares pairwise; more: give up */

struct msg_fast {
	const char *p, *end;
	unsigned depth;
};

static void msg_fast_space(struct msg_fast *f)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\t' || *f->p == '\r'))
		f->p++;
}

/* A plain string at f->p (after its opening quote): a copy in cJSON's memory, or NULL. */
static char *msg_fast_string(struct msg_fast *f, size_t *ret_len)
{
	const char *start = f->p, *q;
	char *copy;

	for (q = start; q < f->end && *q != '"'; q++)
		if ((unsigned char)*q < 0x20 || *q == '\\')
			return NULL;
	if (q == f->end)
		return NULL;
	copy = cJSON_malloc((size_t)(q - start) + 1);
	if (!copy)
		return NULL;
	memcpy(copy, start, (size_t)(q - start));
	copy[q - start] = '\0';
	*ret_len = (size_t)(q - start);
	f->p = q + 1;
	return copy;
}

static cJSON *msg_fast_value(struct msg_fast *f);

/* An object or array at f->p (after its opening bracket), or NULL. */
static cJSON *msg_fast_container(struct msg_fast *f, bool object)
{
	const char *keys[MSG_FAST_KEYS_MAX];
	size_t nkeys = 0, i;
	cJSON *c = object ? cJSON_CreateObject() : cJSON_CreateArray();

	if (!c || ++f->depth > PROTO_JSON_DEPTH_MAX)
		goto fail;
	msg_fast_space(f);
	if (f->p < f->end && *f->p == (object ? '}' : ']')) {
		f->p++;
		f->depth--;
		return c;
	}
	for (;;) {
		char *key = NULL;
		size_t klen;
		cJSON *item;

		if (object) {
			if (f->p == f->end || *f->p != '"' || nkeys == MSG_FAST_KEYS_MAX)
				goto fail;
			f->p++;
			key = msg_fast_string(f, &klen);
			if (!key)
				goto fail;
			for (i = 0; i < nkeys; i++)
				if (strcmp(keys[i], key) == 0)
					break;
			msg_fast_space(f);
			if (i < nkeys || f->p == f->end || *f->p != ':') {
				cJSON_free(key);
				goto fail;
			}
			f->p++;
		}
		item = msg_fast_value(f);
		if (!item) {
			cJSON_free(key);
			goto fail;
		}
		if (object) {
			/* The key is ours, in cJSON's memory: cJSON_Delete frees it with the item. */
			cJSON_AddItemToObjectCS(c, key, item);
			item->type &= ~cJSON_StringIsConst;
			keys[nkeys++] = key;
		} else {
			cJSON_AddItemToArray(c, item);
		}
		msg_fast_space(f);
		if (f->p == f->end)
			goto fail;
		if (*f->p == ',') {
			f->p++;
			msg_fast_space(f);
			continue;
		}
		if (*f->p != (object ? '}' : ']'))
			goto fail;
		f->p++;
		f->depth--;
		return c;
	}
fail:
	cJSON_Delete(c);
	return NULL;
}

/* An integer at f->p, or NULL. */
static cJSON *msg_fast_integer(struct msg_fast *f)
{
	bool negative = *f->p == '-';
	const char *q = f->p + negative, *digits = q;
	uint64_t v = 0;

	while (q < f->end && *q >= '0' && *q <= '9' && q - digits < 16)
		v = v * 10 + (uint64_t)(*q++ - '0');
	/* No digit, a leading zero, 16 digits or more, or a fraction or exponent: cJSON's. */
	if (q == digits || (*digits == '0' && q - digits > 1) || q - digits > 15 ||
	    (q < f->end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))))
		return NULL;
	f->p = q;
	return cJSON_CreateNumber(negative ? -(double)v : (double)v);
}

static cJSON *msg_fast_value(struct msg_fast *f)
{
	size_t len;
	char *s;
	cJSON *item;

	msg_fast_space(f);
	if (f->p == f->end)
		return NULL;
	switch (*f->p) {
	case '"':
		f->p++;
		s = msg_fast_string(f, &len);
		if (!s)
			return NULL;
		/* The copy becomes the value: cJSON_Delete frees it with the item. */
		item = cJSON_CreateStringReference(s);
		if (!item) {
			cJSON_free(s);
			return NULL;
		}
		item->type &= ~cJSON_IsReference;
		return item;
	case '{':
	case '[':
		return msg_fast_container(f, *f->p++ == '{');
	case 't':
		if (f->end - f->p < 4 || memcmp(f->p, "true", 4) != 0)
			return NULL;
		f->p += 4;
		item = cJSON_CreateTrue();
		/* As cJSON's parser leaves it. */
		if (item)
			item->valueint = 1;
		return item;
	case 'f':
		if (f->end - f->p < 5 || memcmp(f->p, "false", 5) != 0)
			return NULL;
		f->p += 5;
		return cJSON_CreateFalse();
	case 'n':
		if (f->end - f->p < 4 || memcmp(f->p, "null", 4) != 0)
			return NULL;
		f->p += 4;
		return cJSON_CreateNull();
	default:
		return *f->p == '-' || (*f->p >= '0' && *f->p <= '9') ? msg_fast_integer(f) : NULL;
	}
}

/* The object of payload read the fast way (valid UTF-8 already): 0, or MSG_FAST_GIVE_UP. */
static int msg_parse_fast(const char *payload, size_t len, cJSON **ret_obj)
{
	struct msg_fast f = { .p = payload, .end = payload + len, .depth = 0 };
	cJSON *obj;

	msg_fast_space(&f);
	if (f.p == f.end || *f.p != '{')
		return MSG_FAST_GIVE_UP;
	f.p++;
	obj = msg_fast_container(&f, true);
	if (!obj)
		return MSG_FAST_GIVE_UP;
	msg_fast_space(&f);
	if (f.p != f.end) {
		cJSON_Delete(obj);
		return MSG_FAST_GIVE_UP;
	}
	*ret_obj = obj;
	return 0;
}

/* msg_parse, where lenient also lets \u0000 escapes and repeated keys through. */
static int msg_parse_opts(const char *payload, size_t len, bool lenient, cJSON **ret_obj)
{
	const char *end = NULL;
	cJSON *obj;
	int r;

	if (!payload || len == 0)
		return -EBADMSG;
	if (utf8_check(payload, len, NULL) < 0)
		return -EILSEQ;
	if (msg_parse_fast(payload, len, ret_obj) == 0)
		return 0;
	r = msg_scan(payload, len, lenient);
	if (r < 0)
		return r;

	/*
	 * Parsed in place, within len (no copy to terminate it): msg_scan made sure no NUL byte
	 * ends the text early. What follows the object must be what cJSON skips as white space
	 * (any byte up to 0x20), as when it checked for the terminator itself.
	 */
	obj = cJSON_ParseWithLengthOpts(payload, len, &end, false);
	if (!obj)
		return -EBADMSG;
	while (end < payload + len && (unsigned char)*end <= 0x20)
		end++;
	if (end != payload + len) {
		cJSON_Delete(obj);
		return -EBADMSG;
	}
	if (!cJSON_IsObject(obj) || (!lenient && msg_has_repeated_key(obj))) {
		cJSON_Delete(obj);
		return -EBADMSG;
	}
	*ret_obj = obj;
	return 0;
}

int msg_parse(const char *payload, size_t len, cJSON **ret_obj)
{
	return msg_parse_opts(payload, len, false, ret_obj);
}

int msg_parse_id(const char *payload, size_t len, uint64_t *ret_id)
{
	cJSON *obj;
	int r = msg_parse_opts(payload, len, true, &obj);

	if (r < 0)
		return r;
	r = msg_get_u64(obj, PROTO_FIELD_ID, ret_id);
	cJSON_Delete(obj);
	return r;
}

int msg_get_u64(const cJSON *obj, const char *key, uint64_t *ret)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	double d;

	if (!item)
		return -ENOENT;
	if (!cJSON_IsNumber(item))
		return -EINVAL;
	d = item->valuedouble;
	/*
	 * The comparisons are false for NaN, and every double up to 2^53-1 converts to an integer
	 * exactly, so the round trip through uint64_t tells whether d had a fraction.
	 */
	if (!(d >= 0.0 && d <= (double)PROTO_ID_MAX))
		return -EINVAL;
	if ((double)(uint64_t)d != d)
		return -EINVAL;
	*ret = (uint64_t)d;
	return 0;
}

int msg_get_bool(const cJSON *obj, const char *key, bool *ret)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!item)
		return -ENOENT;
	if (!cJSON_IsBool(item))
		return -EINVAL;
	*ret = cJSON_IsTrue(item);
	return 0;
}

int msg_get_string(const cJSON *obj, const char *key, const char **ret)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!item)
		return -ENOENT;
	if (!cJSON_IsString(item) || !item->valuestring)
		return -EINVAL;
	*ret = item->valuestring;
	return 0;
}

/*
 * Adds item (consumed, may be NULL) under key, one of proto's field names: static text, so
 * the key is not copied (cJSON's const-key mode). Returns false without memory.
 */
static bool msg_add(cJSON *obj, const char *key, cJSON *item)
{
	if (item && cJSON_AddItemToObjectCS(obj, key, item))
		return true;
	cJSON_Delete(item);
	return false;
}

cJSON *msg_reply_ok(uint64_t id)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj)
		return NULL;
	if (!msg_add(obj, PROTO_FIELD_ID, cJSON_CreateNumber((double)id)) ||
	    !msg_add(obj, PROTO_FIELD_OK, cJSON_CreateTrue())) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

cJSON *msg_error_object(int err, const char *message)
{
	const char *name = proto_errname(err);
	cJSON *obj;

	/* The receiver trusts the code, so code and number must agree and come from the table. */
	if (!name) {
		err = EIO;
		name = "EIO";
	}
	if (!message)
		message = strerrordesc_np(err);
	obj = cJSON_CreateObject();
	if (!obj)
		return NULL;
	if (!msg_add(obj, PROTO_FIELD_CODE, cJSON_CreateString(name)) ||
	    !msg_add(obj, PROTO_FIELD_ERRNO, cJSON_CreateNumber(err)) ||
	    !msg_add(obj, PROTO_FIELD_MESSAGE, cJSON_CreateString(message ? message : ""))) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

cJSON *msg_reply_error(bool has_id, uint64_t id, int err, const char *message)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj)
		return NULL;
	if (!msg_add(obj, PROTO_FIELD_ID, has_id ? cJSON_CreateNumber((double)id)
	                                         : cJSON_CreateNull()) ||
	    !msg_add(obj, PROTO_FIELD_OK, cJSON_CreateFalse()) ||
	    !msg_add(obj, PROTO_FIELD_ERROR, msg_error_object(err, message))) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

cJSON *msg_event(const char *name)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj)
		return NULL;
	if (!msg_add(obj, PROTO_FIELD_EVENT, cJSON_CreateString(name))) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

int msg_error_parse(const cJSON *obj, int *ret_err, const char **ret_message)
{
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(obj, PROTO_FIELD_ERROR);
	const char *code;
	const char *message = "";
	int err;

	if (!cJSON_IsObject(error))
		return -EBADMSG;
	if (msg_get_string(error, PROTO_FIELD_CODE, &code) < 0)
		return -EBADMSG;
	if (msg_get_string(error, PROTO_FIELD_MESSAGE, &message) == -EINVAL)
		return -EBADMSG;
	err = proto_errno(code);
	*ret_err = err ? err : EIO;
	*ret_message = message;
	return 0;
}

/*
 * The writer. cJSON's printer goes through floating point for every number ("%d" when the
 * double equals its int, else "%1.15g" and a read back), rounds integers of 16 digits and more
 * (2^53-1 would go out as 9.00719925474099e+15), writes a fraction such as 1.0000000000000002
 * as the integer 1 (which the strict readers would then accept), and copies its text twice
 * more on the way to a frame. So messages are written here, straight into the caller's
 * buffer behind the frame header: whole numbers below 2^64 in magnitude with an integer
 * writer, any other number with "%.17g" (which always reads back to the same double), and
 * every string as valid UTF-8 (a byte that is not part of a valid sequence goes out as U+FFFD:
 * belt and braces, since every string comes from a table of ours, a region name, ASCII by
 * name_check, or a request msg_parse checked). The formatted layout is cJSON_Print's.
 */
#define MSG_NUMBER_TEXT 32
#define MSG_TWO_POW_64  18446744073709551616.0

static int msg_buf_reserve(struct msg_buf *b, size_t more)
{
	size_t cap;
	char *data;

	if (b->cap - b->len > more)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len <= more) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	data = realloc(b->data, cap);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

static int msg_put(struct msg_buf *b, const char *p, size_t n)
{
	if (msg_buf_reserve(b, n) < 0)
		return -ENOMEM;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static int msg_put_char(struct msg_buf *b, char c)
{
	return msg_put(b, &c, 1);
}

/* v in decimal, with no floating point. */
static int msg_put_u64(struct msg_buf *b, uint64_t v)
{
	char text[MSG_NUMBER_TEXT];
	size_t i = sizeof(text);

	do {
		text[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return msg_put(b, text + i, sizeof(text) - i);
}

static int msg_put_number(struct msg_buf *b, double d)
{
	char text[MSG_NUMBER_TEXT];
	double a = d < 0 ? -d : d;
	int n;

	/* cJSON writes what JSON cannot say as null; so do we. */
	if (!isfinite(d))
		return msg_put(b, "null", 4);
	if (a < MSG_TWO_POW_64 && (double)(uint64_t)a == a) {
		if (d < 0 && msg_put_char(b, '-') < 0)
			return -ENOMEM;
		return msg_put_u64(b, (uint64_t)a);
	}
	n = snprintf(text, sizeof(text), "%.17g", d);
	return msg_put(b, text, (size_t)n);
}

/* s as a JSON string: quoted, escaped, and valid UTF-8 whatever it holds. */
static int msg_put_string(struct msg_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = strlen(s), i, start = 0;
	char *valid = NULL;
	int r = 0;

	if (utf8_check(s, len, NULL) < 0) {
		size_t n = utf8_sanitize(s, len, NULL);

		valid = malloc(n + 1);
		if (!valid)
			return -ENOMEM;
		utf8_sanitize(s, len, valid);
		valid[n] = '\0';
		s = valid;
		len = n;
	}
	if (msg_put_char(b, '"') < 0)
		r = -ENOMEM;
	for (i = 0; i < len && r == 0; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = { '\\', 0 };
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		if (msg_put(b, s + start, i - start) < 0 || msg_put(b, esc, n) < 0)
			r = -ENOMEM;
		start = i + 1;
	}
	if (r == 0 && (msg_put(b, s + start, len - start) < 0 || msg_put_char(b, '"') < 0))
		r = -ENOMEM;
	free(valid);
	return r;
}

static int msg_put_tabs(struct msg_buf *b, unsigned depth)
{
	while (depth-- > 0)
		if (msg_put_char(b, '\t') < 0)
			return -ENOMEM;
	return 0;
}

/* item at nesting depth (1 inside the top-level object); formatted as cJSON_Print. */
static int msg_put_item(struct msg_buf *b, const cJSON *item, unsigned depth, bool formatted)
{
	const cJSON *child;
	bool object;

	switch (item->type & 0xff) {
	case cJSON_NULL:
		return msg_put(b, "null", 4);
	case cJSON_False:
		return msg_put(b, "false", 5);
	case cJSON_True:
		return msg_put(b, "true", 4);
	case cJSON_Number:
		return msg_put_number(b, item->valuedouble);
	case cJSON_Raw:
		return item->valuestring ? msg_put(b, item->valuestring, strlen(item->valuestring))
		                         : -EINVAL;
	case cJSON_String:
		return item->valuestring ? msg_put_string(b, item->valuestring) : -EINVAL;
	case cJSON_Array:
	case cJSON_Object:
		break;
	default:
		return -EINVAL;
	}
	object = cJSON_IsObject(item);
	if (msg_put_char(b, object ? '{' : '[') < 0 ||
	    (object && formatted && msg_put_char(b, '\n') < 0))
		return -ENOMEM;
	for (child = item->child; child; child = child->next) {
		int r;

		if (object) {
			if (!child->string)
				return -EINVAL;
			if ((formatted && msg_put_tabs(b, depth + 1) < 0) ||
			    msg_put_string(b, child->string) < 0 || msg_put_char(b, ':') < 0 ||
			    (formatted && msg_put_char(b, '\t') < 0))
				return -ENOMEM;
		}
		r = msg_put_item(b, child, depth + 1, formatted);
		if (r < 0)
			return r;
		if (child->next && (msg_put_char(b, ',') < 0 ||
		                    (formatted && !object && msg_put_char(b, ' ') < 0)))
			return -ENOMEM;
		if (object && formatted && msg_put_char(b, '\n') < 0)
			return -ENOMEM;
	}
	if (object && formatted && msg_put_tabs(b, depth) < 0)
		return -ENOMEM;
	return msg_put_char(b, object ? '}' : ']');
}

char *msg_print(const cJSON *obj, bool formatted)
{
	struct msg_buf b = { NULL, 0, 0 };
	char *text;

	if (!obj)
		return NULL;
	if (msg_put_item(&b, obj, 0, formatted) < 0 || msg_put_char(&b, '\0') < 0) {
		free(b.data);
		return NULL;
	}
	/* Handed over in memory cJSON_free releases. */
	text = cJSON_malloc(b.len);
	if (text)
		memcpy(text, b.data, b.len);
	free(b.data);
	return text;
}

int msg_encode_buf(const cJSON *obj, uint32_t max_frame, struct msg_buf *buf)
{
	size_t payload;
	int r;

	buf->len = 0;
	if (msg_buf_reserve(buf, FRAME_HEADER_SIZE) < 0)
		return -ENOMEM;
	buf->len = FRAME_HEADER_SIZE;
	r = msg_put_item(buf, obj, 0, false);
	if (r < 0)
		return r == -EINVAL ? -ENOMEM : r;
	payload = buf->len - FRAME_HEADER_SIZE;
	if (payload == 0 || payload > max_frame || payload > FRAME_MAX_LIMIT)
		return -EMSGSIZE;
	frame_header_put((uint8_t *)buf->data, (uint32_t)payload);
	return 0;
}

int msg_encode_ok_buf(uint64_t id, struct msg_buf *buf)
{
	/* What msg_put_item writes for msg_reply_ok(id): the same calls, without the tree. */
	buf->len = 0;
	if (msg_buf_reserve(buf, FRAME_HEADER_SIZE) < 0)
		return -ENOMEM;
	buf->len = FRAME_HEADER_SIZE;
	if (id > PROTO_ID_MAX)
		return -EINVAL;
	if (msg_put_char(buf, '{') < 0 || msg_put_string(buf, PROTO_FIELD_ID) < 0 ||
	    msg_put_char(buf, ':') < 0 || msg_put_u64(buf, id) < 0 || msg_put_char(buf, ',') < 0 ||
	    msg_put_string(buf, PROTO_FIELD_OK) < 0 || msg_put_char(buf, ':') < 0 ||
	    msg_put(buf, "true", 4) < 0 || msg_put_char(buf, '}') < 0)
		return -ENOMEM;
	frame_header_put((uint8_t *)buf->data, (uint32_t)(buf->len - FRAME_HEADER_SIZE));
	return 0;
}

void msg_buf_done(struct msg_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

int msg_encode(const cJSON *obj, uint32_t max_frame, uint8_t **ret_buf, size_t *ret_len)
{
	struct msg_buf b = { NULL, 0, 0 };
	int r = msg_encode_buf(obj, max_frame, &b);

	if (r < 0) {
		msg_buf_done(&b);
		return r;
	}
	*ret_buf = (uint8_t *)b.data;
	*ret_len = b.len;
	return 0;
}
