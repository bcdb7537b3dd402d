/* SPDX-License-Identifier: MIT */
/*
 * Strict number parsing (see num.h). strtoull accepts leading white space, a sign (and
 * negates "-1" into a huge value) and stops quietly at junk, none of which a config value or
 * command-line option should get away with, so digits are read by hand with an overflow check.
 */
#include "num.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

/*
 * Reads the leading decimal digits of s into *ret. Returns how many digits there were, and
 * sets *ret_overflow when the value does not fit (the digits are still all consumed, so that
 * junk after an overlong number is reported as junk, not as overflow).
 */
static size_t num_digits(const char *s, uint64_t *ret, bool *ret_overflow)
{
	uint64_t v = 0;
	bool overflow = false;
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}
	*ret = v;
	*ret_overflow = overflow;
	return i;
}

int num_parse_u64(const char *s, uint64_t *ret)
{
	uint64_t v;
	bool overflow;
	size_t n;

	if (!s)
		return -EINVAL;
	n = num_digits(s, &v, &overflow);
	if (n == 0 || s[n] != '\0')
		return -EINVAL;
	if (overflow)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* Returns the power of 1024 a suffix stands for, or -1 if it is not one we accept. */
static int num_suffix_shift(const char *s)
{
	static const char units[] = "kmgt";
	char c;
	int i;

	if (s[0] == '\0')
		return 0;
	c = s[0] | 0x20;
	for (i = 0; units[i]; i++) {
		if (c != units[i])
			continue;
		if (s[1] == '\0' || strcasecmp(s + 1, "iB") == 0)
			return 10 * (i + 1);
		return -1;
	}
	return -1;
}

int num_parse_size(const char *s, uint64_t *ret)
{
	uint64_t v;
	bool overflow;
	size_t n;
	int shift;

	if (!s)
		return -EINVAL;
	n = num_digits(s, &v, &overflow);
	if (n == 0)
		return -EINVAL;
	shift = num_suffix_shift(s + n);
	if (shift < 0)
		return -EINVAL;
	if (overflow || (shift > 0 && v > (UINT64_MAX >> shift)))
		return -ERANGE;
	*ret = v << shift;
	return 0;
}
