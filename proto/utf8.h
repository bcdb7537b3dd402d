/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 as the protocol uses it: every frame is UTF-8 text (RFC 3629), and the daemon promises
 * that every string it sends is valid UTF-8, so that a strict JSON parser in any language can
 * read every frame. The check is strict: overlong encodings, UTF-16 surrogates (U+D800..U+DFFF)
 * encoded directly, code points above U+10FFFF, truncated sequences and stray continuation
 * bytes are all invalid. Shared by daemon and client; no allocation, no I/O.
 */
#ifndef MMAPD_PROTO_UTF8_H
#define MMAPD_PROTO_UTF8_H

#include <stddef.h>

/*
 * Returns 0 if s[0..len) is valid UTF-8, or -EILSEQ with *ret_offset (when not NULL) set to
 * the offset of the first byte that does not start a valid sequence (the lead byte of a bad
 * or truncated sequence, or a stray continuation byte). NUL bytes are valid (U+0000).
 */
int utf8_check(const char *s, size_t len, size_t *ret_offset);

/*
 * Copies s[0..len) to out with every byte that is not part of a valid sequence replaced by
 * U+FFFD (EF BF BD), and returns the length of the result (not NUL-terminated). With out NULL
 * it only returns the length, so that the caller can size the buffer: at most 3 * len.
 */
size_t utf8_sanitize(const char *s, size_t len, char *out);

#endif
