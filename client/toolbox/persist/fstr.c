/* SPDX-License-Identifier: MIT */
/*
 * Fixed-capacity strings, for persistent structs: a 32-bit length and capacity + 1 bytes, the
 * last always NUL, so C code can read s->bytes as a string. Nothing here points outside the
 * string, so it works in any process mapping it. A string that does not fit is refused
 * (mmapd_fstr_set()) or cut on purpose (mmapd_fstr_set_trunc()), never cut silently.
 *
 * The mmapd_fstr_set*() calls store in place: a crash in the middle leaves a torn string.
 * mmapd_pwriter_fstr_set() builds the string's new image privately and writes it through a
 * struct journal (pwrite.c), so a crash leaves the old string or the new one.
 *
 * Strings are UTF-8: set and set_trunc refuse anything else (mmapd_fstr_set_raw() stores
 * bytes unchecked), and a cut never splits a code point. The check follows proto/utf8.c
 * (the Unicode Standard's table 3-7), which the toolbox cannot call: it is built on the
 * public API alone (Makefile include paths), and libmmapd exports no UTF-8 check.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mmapd-persist.h"
#include "toolbox.h"

#define FSTR_CAPACITY_MAX 0xfffffffeu

static int fstr_check(const struct mmapd_fstr *s, size_t capacity)
{
	if (!s)
		return tbx_error(-EINVAL, "the string is NULL");
	if (capacity > FSTR_CAPACITY_MAX)
		return tbx_error(-EINVAL, "capacity %zu is above %u", capacity, FSTR_CAPACITY_MAX);
	return 0;
}

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, surrogates or code points above
 * U+10FFFF; NUL allowed). */
static bool fstr_utf8(const unsigned char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n) {
		unsigned char lo = 0x80, hi = 0xbf, c = s[i];

		if (c < 0x80) {
			n = 1;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 2;
		else if (c >= 0xe0 && c <= 0xef)
			n = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 4;
		else
			return false;
		lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
		if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k < n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
	}
	return true;
}

static int fstr_not_utf8(void)
{
	return tbx_error(-EILSEQ, "the string is not valid UTF-8 (store bytes with "
	                 "mmapd_fstr_set_raw())");
}

enum fstr_mode { FSTR_RAW, FSTR_UTF8, FSTR_TRUNC };

/*
 * Checks a set of the len bytes at str into s (of capacity bytes) in mode: raw bytes, UTF-8
 * that must fit, or UTF-8 cut to fit between code points. Returns 0 (all of it fits) or 1 (cut)
 * with the length to store in *ret_len, or a negative errno (message set).
 */
static int fstr_fit(const struct mmapd_fstr *s, size_t capacity, const char *str, size_t len,
                    enum fstr_mode mode, size_t *ret_len)
{
	size_t cut = len;
	int r = fstr_check(s, capacity);

	if (r < 0)
		return r;
	if (!str && len > 0)
		return tbx_error(-EINVAL, "str is NULL");
	if (mode != FSTR_RAW && str && !fstr_utf8((const unsigned char *)str, len))
		return fstr_not_utf8();
	if (len > capacity && mode != FSTR_TRUNC)
		return tbx_error(-ENAMETOOLONG, "a string of %zu bytes does not fit a fixed string "
		                 "of %zu", len, capacity);
	if (len > capacity) {
		cut = capacity;
		/* Back up over continuation bytes to the start of the sequence cut through. */
		while (cut > 0 && ((unsigned char)str[cut] & 0xc0) == 0x80)
			cut--;
	}
	*ret_len = cut;
	return cut < len;
}

/* Stores len bytes that fit, in place: a crash in the middle leaves a torn string. */
static void fstr_store(struct mmapd_fstr *s, const char *str, size_t len)
{
	if (len)
		memmove(s->bytes, str, len);
	s->bytes[len] = '\0';
	s->length = (uint32_t)len;
}

/* fstr_fit() in mode, then the store. */
static int fstr_set(struct mmapd_fstr *s, size_t capacity, const char *str, size_t len,
                    enum fstr_mode mode)
{
	size_t n;
	int r = fstr_fit(s, capacity, str, len, mode, &n);

	if (r >= 0)
		fstr_store(s, str, n);
	return r;
}

MMAPD_EXPORT int mmapd_fstr_set_raw(struct mmapd_fstr *s, size_t capacity, const char *str,
                                    size_t len)
{
	return fstr_set(s, capacity, str, len, FSTR_RAW);
}

MMAPD_EXPORT int mmapd_fstr_set(struct mmapd_fstr *s, size_t capacity, const char *str,
                                size_t len)
{
	return fstr_set(s, capacity, str, len, FSTR_UTF8);
}

MMAPD_EXPORT int mmapd_fstr_set_cstr(struct mmapd_fstr *s, size_t capacity, const char *str)
{
	if (!str)
		return tbx_error(-EINVAL, "str is NULL");
	return mmapd_fstr_set(s, capacity, str, strlen(str));
}

MMAPD_EXPORT int mmapd_fstr_set_trunc(struct mmapd_fstr *s, size_t capacity, const char *str,
                                      size_t len)
{
	return fstr_set(s, capacity, str, len, FSTR_TRUNC);
}

/*
 * The journalled set (pwrite.c): the string's new image, length word, bytes and NUL, built in
 * private memory and written in one mmapd_pwriter_write(), so that a crash leaves the old
 * string or the new one.
 */
MMAPD_EXPORT int mmapd_pwriter_fstr_set(struct mmapd_pwriter *w, struct mmapd_fstr *s,
                                        size_t capacity, const char *str, size_t len)
{
	size_t n, size;
	uint8_t *image;
	uint32_t n32;
	int r = fstr_fit(s, capacity, str, len, FSTR_UTF8, &n);

	if (r < 0)
		return r;
	size = offsetof(struct mmapd_fstr, bytes) + n + 1;
	image = malloc(size);
	if (!image)
		return tbx_error(-ENOMEM, "out of memory");
	n32 = (uint32_t)n;
	memcpy(image, &n32, sizeof(n32));
	if (n)
		memcpy(image + offsetof(struct mmapd_fstr, bytes), str, n);
	image[size - 1] = '\0';
	r = mmapd_pwriter_write(w, s, image, size);
	free(image);
	return r;
}

MMAPD_EXPORT int64_t mmapd_fstr_len(const struct mmapd_fstr *s, size_t capacity)
{
	int r = fstr_check(s, capacity);

	if (r < 0)
		return r;
	if (s->length > capacity)
		return tbx_error(-EBADMSG, "fixed string of capacity %zu holds length %u",
		                 capacity, s->length);
	return s->length;
}

MMAPD_EXPORT int64_t mmapd_fstr_copy(const struct mmapd_fstr *s, size_t capacity, char *buf,
                                     size_t size)
{
	int64_t len = mmapd_fstr_len(s, capacity);

	if (len < 0)
		return len;
	if (!buf)
		return tbx_error(-EINVAL, "buf is NULL");
	if ((uint64_t)len >= size)
		return tbx_error(-ERANGE, "a buffer of %zu bytes cannot hold %lld bytes and a NUL",
		                 size, (long long)len);
	memcpy(buf, s->bytes, (size_t)len);
	buf[len] = '\0';
	return len;
}

MMAPD_EXPORT int mmapd_fstr_cmp(const struct mmapd_fstr *s, size_t capacity, const char *str,
                                size_t len)
{
	size_t have = s ? s->length : 0;   /* read once: the check and the use see one value */
	int c;

	if (have > capacity)
		have = 0;

	if (!str)
		len = 0;
	c = have && len ? memcmp(s->bytes, str, have < len ? have : len) : 0;

	if (c != 0)
		return c;
	return have < len ? -1 : have > len;
}
