/* SPDX-License-Identifier: MIT */
/*
 * Safe number parsing for command lines and config values: whole strings only, no sign,
 * no overflow, optional binary size suffix. Used by mmapd (options, config, the service
 * manager's environment), the bench and the tests; mmapctl, built on the public API alone,
 * parses its few numbers itself.
 */
#ifndef MMAPD_SHARED_NUM_H
#define MMAPD_SHARED_NUM_H

#include <stdint.h>

/* Parses a decimal u64 ("4096"). Returns 0, -EINVAL (empty, junk, sign), -ERANGE (overflow). */
int num_parse_u64(const char *s, uint64_t *ret);
/*
 * Parses a size: decimal with an optional suffix K, M, G, T (powers of 1024; "KiB", "MiB"... and
 * lower case accepted too). Returns 0, -EINVAL, -ERANGE.
 */
int num_parse_size(const char *s, uint64_t *ret);

#endif
