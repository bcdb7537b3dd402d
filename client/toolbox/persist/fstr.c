/* SPDX-License-Identifier: MIT */
/*
 * Fixed-capacity strings, for persistent structs: one 64-bit commit word and two buffers of
 * capacity + 1 bytes, each always NUL-terminated. The word holds a generation (bits 32-63), the
 * buffer in use (bit 31) and the length (bits 0-30). Nothing here points outside the string, so
 * it works in any process mapping it. A string that does not fit is refused (mmapd_fstr_set())
 * or cut on purpose (mmapd_fstr_set_trunc()), never cut silently.
 *
 * A set writes the new bytes and their NUL into the buffer not in use, then release-stores
 * the new word (generation + 1, the other buffer, the new length): that one aligned store is
 * the commit point. A process killed before it leaves the old string whole, after it the new
 * one; nothing needs replaying. Readers (len, copy, cmp) read as a seqlock does: load the word,
 * read its buffer, load the word again, and start over when the generation moved, so a reader
 * racing a writer also sees the old string or the new one. Two writers racing each other need
 * the caller's lock (both would write the same idle buffer). Durable: the struct writer's set
 * (mmapd_pwriter_fstr_set()) syncs the new bytes before the word store and the word after it,
 * when the writer is MMAPD_PERSIST_DURABLE.
 *
 * Strings are UTF-8: set and set_trunc refuse anything else (mmapd_fstr_set_raw() stores
 * bytes unchecked), and a cut never splits a code point. The check follows proto/utf8.c
 * (the Unicode Standard's table 3-7), which the toolbox cannot call: it is built on the
 * public API alone (Makefile include paths), and libmmapd exports no UTF-8 check.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "persist.h"
#include "toolbox.h"

#define FSTR_CAPACITY_MAX 0x7fffffffu   /* the length has 31 bits */
#define FSTR_LEN_MASK 0x7fffffffull
#define FSTR_BUF_BIT 0x80000000ull
#define FSTR_GEN_ONE 0x100000000ull

/* The public struct declares the word uint64_t (so that C++ can embed one); it is only ever
 * accessed as an atomic, which on the platforms libmmapd supports has the same size and
 * alignment and is lock-free, so it works across processes. */
_Static_assert(sizeof(_Atomic uint64_t) == sizeof(uint64_t) &&
               _Alignof(_Atomic uint64_t) == _Alignof(uint64_t),
               "an atomic 64-bit word must be laid out as a plain one");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

static _Atomic uint64_t *fstr_word(const struct mmapd_fstr *s)
{
	return (_Atomic uint64_t *)&((struct mmapd_fstr *)s)->word;
}

/* Buffer b (0 or 1) of a string of capacity bytes. */
static char *fstr_buf(const struct mmapd_fstr *s, size_t capacity, uint64_t b)
{
	return (char *)s->bytes + (size_t)b * (capacity + 1);
}

static int fstr_check(const struct mmapd_fstr *s, size_t capacity)
{
	if (!s)
		return tbx_error(-EINVAL, "the string is NULL");
	if ((uintptr_t)s % _Alignof(uint64_t))
		return tbx_error(-EINVAL, "the string is not aligned to %zu bytes (declare it with "
		                 "MMAPD_FSTR())", _Alignof(uint64_t));
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

/*
 * The first half of a set of len bytes that fit: writes them and a NUL into the buffer not in
 * use, where no reader looks, and returns the word that will publish them. Only ever one set
 * at a time per string (the caller's lock).
 */
static uint64_t fstr_stage(struct mmapd_fstr *s, size_t capacity, const char *str, size_t len)
{
	uint64_t old = atomic_load_explicit(fstr_word(s), memory_order_relaxed);
	uint64_t next = (old & FSTR_BUF_BIT) ^ FSTR_BUF_BIT;
	char *buf = fstr_buf(s, capacity, next >> 31);

	/* Orders the previous set's word store before these bytes: a reader that sees one of
	 * them then sees the generation moved when it loads the word again. */
	atomic_thread_fence(memory_order_release);
	if (len)
		memmove(buf, str, len);
	buf[len] = '\0';
	return ((old & ~(FSTR_BUF_BIT | FSTR_LEN_MASK)) + FSTR_GEN_ONE) | next | len;
}

/* The commit point: from this store on, readers (and the next process) see the new string. */
static void fstr_publish(struct mmapd_fstr *s, uint64_t word)
{
	atomic_store_explicit(fstr_word(s), word, memory_order_release);
}

/* fstr_fit() in mode, then the two halves of the store. */
static int fstr_set(struct mmapd_fstr *s, size_t capacity, const char *str, size_t len,
                    enum fstr_mode mode)
{
	size_t n;
	int r = fstr_fit(s, capacity, str, len, mode, &n);

	if (r >= 0)
		fstr_publish(s, fstr_stage(s, capacity, str, n));
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
 * The struct writer's set: the same two halves, once any write of a dead writer is finished
 * (it might be one of this string), and, when the writer is durable, the new bytes synced
 * before the word is stored and the word synced after it, so that the word on disk never
 * names a buffer whose bytes are not there.
 */
MMAPD_EXPORT int mmapd_pwriter_fstr_set(struct mmapd_pwriter *w, struct mmapd_fstr *s,
                                        size_t capacity, const char *str, size_t len)
{
	uint64_t word;
	size_t n;
	int r = fstr_fit(s, capacity, str, len, FSTR_UTF8, &n);

	if (r < 0 || (r = pwrite_prepare(w, s, sizeof(*s) + 2 * (capacity + 1))) < 0)
		return r;
	word = fstr_stage(s, capacity, str, n);
	if ((r = pwrite_sync(w, fstr_buf(s, capacity, (word & FSTR_BUF_BIT) >> 31), n + 1)) < 0)
		return r;
	fstr_publish(s, word);
	return pwrite_sync(w, &s->word, sizeof(s->word));
}

/*
 * A consistent snapshot of s: its length (checked against capacity) in *ret_len and a pointer
 * to its buffer, to be read and then confirmed with fstr_read_done(word). Returns the word, or
 * sets *ret_len to -EBADMSG (message not set) for a length above capacity.
 */
static uint64_t fstr_read_begin(const struct mmapd_fstr *s, size_t capacity, int64_t *ret_len,
                                const char **ret_buf)
{
	uint64_t word = atomic_load_explicit(fstr_word(s), memory_order_acquire);
	uint64_t len = word & FSTR_LEN_MASK;

	*ret_len = len > capacity ? -EBADMSG : (int64_t)len;
	*ret_buf = fstr_buf(s, capacity, (word & FSTR_BUF_BIT) >> 31);
	return word;
}

/* Whether what was read since fstr_read_begin() returned word is the string: false when a
 * set has committed since (the bytes read may be a later set's, half written). */
static bool fstr_read_done(const struct mmapd_fstr *s, uint64_t word)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(fstr_word(s), memory_order_relaxed) == word;
}

static int fstr_corrupt(size_t capacity, uint64_t word)
{
	return tbx_error(-EBADMSG, "fixed string of capacity %zu holds length %llu", capacity,
	                 (unsigned long long)(word & FSTR_LEN_MASK));
}

MMAPD_EXPORT int64_t mmapd_fstr_len(const struct mmapd_fstr *s, size_t capacity)
{
	const char *buf;
	int64_t len;
	uint64_t word;
	int r = fstr_check(s, capacity);

	if (r < 0)
		return r;
	word = fstr_read_begin(s, capacity, &len, &buf);
	return len < 0 ? fstr_corrupt(capacity, word) : len;
}

MMAPD_EXPORT int64_t mmapd_fstr_copy(const struct mmapd_fstr *s, size_t capacity, char *buf,
                                     size_t size)
{
	const char *from;
	int64_t len;
	uint64_t word;
	int r = fstr_check(s, capacity);

	if (r < 0)
		return r;
	if (!buf)
		return tbx_error(-EINVAL, "buf is NULL");
	do {
		word = fstr_read_begin(s, capacity, &len, &from);
		if (len < 0)
			return fstr_corrupt(capacity, word);
		if ((uint64_t)len >= size)
			return tbx_error(-ERANGE, "a buffer of %zu bytes cannot hold %lld bytes and "
			                 "a NUL", size, (long long)len);
		memcpy(buf, from, (size_t)len);
	} while (!fstr_read_done(s, word));
	buf[len] = '\0';
	return len;
}

MMAPD_EXPORT int mmapd_fstr_cmp(const struct mmapd_fstr *s, size_t capacity, const char *str,
                                size_t len)
{
	/* What fstr_check() refuses compares as empty (no message: cmp has no errors). */
	bool readable = s && (uintptr_t)s % _Alignof(uint64_t) == 0 &&
	                capacity <= FSTR_CAPACITY_MAX;
	const char *have_buf = NULL;
	int64_t have = 0;
	uint64_t word = 0;
	int c;

	if (!str)
		len = 0;
	do {
		if (readable)
			word = fstr_read_begin(s, capacity, &have, &have_buf);
		if (have < 0)
			have = 0;
		c = have && len ? memcmp(have_buf, str, (size_t)have < len ? (size_t)have : len)
		                : 0;
	} while (have_buf && !fstr_read_done(s, word));
	if (c != 0)
		return c;
	return (size_t)have < len ? -1 : (size_t)have > len;
}
