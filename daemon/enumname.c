/* SPDX-License-Identifier: MIT */
/*
 * Names of small enums, both ways (see enumname.h).
 */
#include "enumname.h"

#include <errno.h>
#include <string.h>

const char *enumname_get(const char *const names[], size_t n, unsigned value, unsigned fallback)
{
	return names[value < n ? value : fallback];
}

int enumname_parse(const char *const names[], size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}
