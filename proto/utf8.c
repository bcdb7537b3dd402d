/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 validation (see utf8.h), written from the table of well-formed byte sequences in the
 * Unicode Standard (chapter 3, table 3-7): the lead byte fixes the length of the sequence and
 * the range of its second byte, and every later byte is a plain continuation byte. The
 * narrowed second-byte ranges are what exclude overlongs (after E0 and F0), surrogates (after
 * ED) and code points above U+10FFFF (after F4); C0, C1 and F5..FF never lead.
 */
#include "utf8.h"

#include <errno.h>
#include <string.h>

static const char utf8_replacement[] = "\xef\xbf\xbd";   /* U+FFFD */

/* The length of the valid sequence that starts s[0..len) (len >= 1), or 0 if none does. */
static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

int utf8_check(const char *s, size_t len, size_t *ret_offset)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq_len(p + i, len - i);

		if (n == 0) {
			if (ret_offset)
				*ret_offset = i;
			return -EILSEQ;
		}
		i += n;
	}
	return 0;
}

size_t utf8_sanitize(const char *s, size_t len, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0;

	while (i < len) {
		size_t n = utf8_seq_len(p + i, len - i);
		const char *from = s + i;
		size_t m = n;

		/* A bad byte is replaced alone: the byte after it may start a valid sequence. */
		if (n == 0) {
			from = utf8_replacement;
			m = sizeof(utf8_replacement) - 1;
			n = 1;
		}
		if (out)
			memcpy(out + o, from, m);
		o += m;
		i += n;
	}
	return o;
}
