/* SPDX-License-Identifier: MIT */
/*
 * Region name validation (see name.h). The daemon joins a name to its data directory, so the
 * rules are chosen to make every valid name one harmless path component: a small byte set,
 * no leading '.' (nothing hidden, no "." or "..") and no leading '-' (no option look-alikes).
 * name_problem() gives the same verdict as a sentence for error messages.
 */
#include "name.h"

#include <errno.h>
#include <stdbool.h>

static bool name_byte_ok(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

int name_check(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || !name)
		return -EINVAL;
	if (len > NAME_MAX_LEN)
		return -ENAMETOOLONG;
	if (name[0] == '.' || name[0] == '-')
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!name_byte_ok((unsigned char)name[i]))
			return -EINVAL;
	return 0;
}

const char *name_problem(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || !name)
		return "the name is empty";
	if (len > NAME_MAX_LEN)
		return "the name is longer than 255 bytes";
	if (name[0] == '.')
		return "the name starts with '.'";
	if (name[0] == '-')
		return "the name starts with '-'";
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '\0')
			return "the name contains a NUL byte";
		if (c == '/')
			return "the name contains '/'";
		if (!name_byte_ok(c))
			return "the name contains a byte outside A-Z, a-z, 0-9, '.', '_' and '-'";
	}
	return "the name is valid";
}
