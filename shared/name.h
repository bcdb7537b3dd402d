/* SPDX-License-Identifier: MIT */
/*
 * Region names, checked the same way by the daemon (which must never trust them) and by
 * libmmapd (which reports a bad name before a round trip). A name is 1..255 bytes of
 * [A-Za-z0-9._-], does not start with '.' or '-': so no "..", no '/', no control characters,
 * no NUL, nothing hidden, and it is always a single path component under the data directory.
 */
#ifndef MMAPD_SHARED_NAME_H
#define MMAPD_SHARED_NAME_H

#include <stddef.h>

#define NAME_MAX_LEN 255

/*
 * Returns 0 if name[0..len) is a valid region name; -ENAMETOOLONG if len > NAME_MAX_LEN;
 * -EINVAL otherwise (empty, bad first byte, byte outside the set, embedded NUL).
 */
int name_check(const char *name, size_t len);
/* A one-sentence reason for name_check's verdict, for error messages ("..." in English). */
const char *name_problem(const char *name, size_t len);

#endif
