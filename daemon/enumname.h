/* SPDX-License-Identifier: MIT */
/*
 * Small enums spelled as words on the wire, in the config and in the metadata files (region
 * modes, huge-page kinds, log levels): each module keeps a table of its names indexed by value
 * and looks it up both ways here, so that a word and its value cannot drift apart.
 */
#ifndef MMAPD_DAEMON_ENUMNAME_H
#define MMAPD_DAEMON_ENUMNAME_H

#include <stddef.h>

#define ENUMNAME_COUNT(names) (sizeof(names) / sizeof((names)[0]))

/* names[value], or names[fallback] when value is not below n. */
const char *enumname_get(const char *const names[], size_t n, unsigned value, unsigned fallback);
/* The value whose name is s, or -EINVAL when none is. */
int enumname_parse(const char *const names[], size_t n, const char *s);

#endif
