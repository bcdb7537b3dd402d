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
#include <inttypes.h>
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

/* msg_parse, where lenient also lets \u0000 escapes and repeated keys through. */
static int msg_parse_opts(const char *payload, size_t len, bool lenient, cJSON **ret_obj)
{
	char *text;
	cJSON *obj;
	int r;

	if (!payload || len == 0)
		return -EBADMSG;
	if (utf8_check(payload, len, NULL) < 0)
		return -EILSEQ;
	r = msg_scan(payload, len, lenient);
	if (r < 0)
		return r;

	/*
	 * cJSON's require_null_terminated check wants to find the terminator inside the length
	 * it was given, so parse a terminated copy: anything after the object but before the
	 * terminator (other than white space) then makes the parse fail.
	 */
	text = malloc(len + 1);
	if (!text)
		return -ENOMEM;
	memcpy(text, payload, len);
	text[len] = '\0';
	obj = cJSON_ParseWithLengthOpts(text, len + 1, NULL, true);
	free(text);
	if (!obj)
		return -EBADMSG;
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

cJSON *msg_reply_ok(uint64_t id)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj)
		return NULL;
	if (!cJSON_AddNumberToObject(obj, PROTO_FIELD_ID, (double)id) ||
	    !cJSON_AddTrueToObject(obj, PROTO_FIELD_OK)) {
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
	if (!cJSON_AddStringToObject(obj, PROTO_FIELD_CODE, name) ||
	    !cJSON_AddNumberToObject(obj, PROTO_FIELD_ERRNO, err) ||
	    !cJSON_AddStringToObject(obj, PROTO_FIELD_MESSAGE, message ? message : "")) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

cJSON *msg_reply_error(bool has_id, uint64_t id, int err, const char *message)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON *error;
	cJSON *idv;

	if (!obj)
		return NULL;
	idv = has_id ? cJSON_CreateNumber((double)id) : cJSON_CreateNull();
	if (!idv || !cJSON_AddItemToObject(obj, PROTO_FIELD_ID, idv)) {
		cJSON_Delete(idv);
		goto fail;
	}
	if (!cJSON_AddFalseToObject(obj, PROTO_FIELD_OK))
		goto fail;
	error = msg_error_object(err, message);
	if (!error || !cJSON_AddItemToObject(obj, PROTO_FIELD_ERROR, error)) {
		cJSON_Delete(error);
		goto fail;
	}
	return obj;

fail:
	cJSON_Delete(obj);
	return NULL;
}

cJSON *msg_event(const char *name)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj)
		return NULL;
	if (!cJSON_AddStringToObject(obj, PROTO_FIELD_EVENT, name)) {
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
 * cJSON prints a number that is not an int with "%1.15g" and keeps that text whenever reading
 * it back lands within a relative DBL_EPSILON, not only when it is exact: integers of 16 digits
 * or more (ids and sizes up to 2^53-1) come out rounded, and a fraction such as
 * 1.0000000000000002 comes out as the integer 1, which the strict readers would then accept.
 * Such numbers are written exactly instead: whole numbers below 2^63 as integers, anything
 * else with "%.17g", which always reads back to the same double.
 */
#define MSG_EXACT_MIN 1e15
#define MSG_EXACT_MAX 9223372036854775808.0
#define MSG_NUMBER_TEXT 32

static bool msg_number_whole(double d)
{
	double a = d < 0 ? -d : d;

	return a < MSG_EXACT_MAX && (double)(int64_t)d == d;
}

static bool msg_number_rounded(const cJSON *item)
{
	char text[MSG_NUMBER_TEXT];
	double d = item->valuedouble;

	if (!cJSON_IsNumber(item) || !isfinite(d))
		return false;
	/* Whole numbers below 10^15 have at most 15 digits: "%1.15g" is exact for them. */
	if (msg_number_whole(d))
		return (d < 0 ? -d : d) >= MSG_EXACT_MIN;
	snprintf(text, sizeof(text), "%1.15g", d);
	return strtod(text, NULL) != d;
}

static bool msg_list_rounded(const cJSON *item)
{
	for (; item; item = item->next)
		if (msg_number_rounded(item) || msg_list_rounded(item->child))
			return true;
	return false;
}

/*
 * Turns every number cJSON would round, in the list starting at item and beneath it, into a
 * raw item holding its exact decimal text. The text is allocated by cJSON_CreateRaw, so that
 * cJSON_Delete frees it with the allocator it expects.
 */
static int msg_list_make_exact(cJSON *item)
{
	for (; item; item = item->next) {
		if (msg_number_rounded(item)) {
			char text[MSG_NUMBER_TEXT];
			cJSON *raw;

			if (msg_number_whole(item->valuedouble))
				snprintf(text, sizeof(text), "%" PRId64, (int64_t)item->valuedouble);
			else
				snprintf(text, sizeof(text), "%.17g", item->valuedouble);
			raw = cJSON_CreateRaw(text);
			if (!raw)
				return -ENOMEM;
			item->type = cJSON_Raw | (item->type & cJSON_StringIsConst);
			item->valuestring = raw->valuestring;
			raw->valuestring = NULL;
			cJSON_Delete(raw);
		} else if (msg_list_make_exact(item->child) < 0) {
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * Belt and braces for the promise that every string sent is valid UTF-8. A string comes from
 * a table of ours, a region name (ASCII by name_check), or a request that msg_parse checked,
 * so text is valid already; should a bug let a bad byte through anyway (a string cut in the
 * middle of a character, say), it goes out as U+FFFD instead of making a strict parser at the
 * other end drop the frame. cJSON escapes every byte below 0x20 and writes bytes from 0x80 as
 * they are, so bad bytes can only be inside strings and replacing them keeps the JSON intact.
 * Takes text (from cJSON) and returns valid text to free with cJSON_free, or NULL on ENOMEM.
 */
static char *msg_text_valid(char *text)
{
	size_t len, n;
	char *valid;

	if (!text)
		return NULL;
	len = strlen(text);
	if (utf8_check(text, len, NULL) == 0)
		return text;
	n = utf8_sanitize(text, len, NULL);
	valid = cJSON_malloc(n + 1);
	if (valid) {
		utf8_sanitize(text, len, valid);
		valid[n] = '\0';
	}
	cJSON_free(text);
	return valid;
}

/* msg_print without msg_text_valid. */
static char *msg_print_exact(const cJSON *obj, bool formatted)
{
	cJSON *copy;
	char *text = NULL;

	/* The common case has no large integer and is printed as it is, without a copy. */
	if (!msg_number_rounded(obj) && !msg_list_rounded(obj->child))
		return formatted ? cJSON_Print(obj) : cJSON_PrintUnformatted(obj);
	copy = cJSON_Duplicate(obj, true);
	if (!copy)
		return NULL;
	/* The copy has no siblings, so the list that starts at it is the item alone. */
	if (msg_list_make_exact(copy) == 0)
		text = formatted ? cJSON_Print(copy) : cJSON_PrintUnformatted(copy);
	cJSON_Delete(copy);
	return text;
}

char *msg_print(const cJSON *obj, bool formatted)
{
	if (!obj)
		return NULL;
	return msg_text_valid(msg_print_exact(obj, formatted));
}

int msg_encode(const cJSON *obj, uint32_t max_frame, uint8_t **ret_buf, size_t *ret_len)
{
	char *text = msg_print(obj, false);
	size_t len;
	int r;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	if (len > max_frame)
		r = -EMSGSIZE;
	else
		r = frame_encode(text, len, ret_buf, ret_len);
	cJSON_free(text);
	return r;
}
