/* SPDX-License-Identifier: MIT */
/*
 * Framing of the mmapd wire protocol: every message is a 4-byte big-endian length followed by
 * that many bytes of one UTF-8 JSON object. A frame_reader accumulates bytes from a stream
 * socket and hands out complete frames; it never grows past the negotiated maximum, so a peer
 * cannot make the reader allocate more than max_frame + 4 bytes. No I/O happens here: the
 * caller receives into frame_reader_space() and commits what arrived.
 */
#ifndef MMAPD_PROTO_FRAME_H
#define MMAPD_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_SIZE 4
#define FRAME_MAX_DEFAULT 65536u          /* default largest payload, bytes */
#define FRAME_MAX_MIN     1024u           /* the smallest maximum a config may set */
#define FRAME_MAX_LIMIT   (16u << 20)     /* the largest maximum anyone may set */

struct frame_reader {
	uint8_t *buf;
	size_t start;      /* first unconsumed byte */
	size_t len;        /* bytes held, from buf[0] */
	size_t cap;
	uint32_t max_frame;
};

/* Sets up an empty reader accepting payloads of 1..max_frame bytes. Allocates nothing yet. */
void frame_reader_init(struct frame_reader *r, uint32_t max_frame);
/* Frees the buffer. Accepts a reader that was only initialised. */
void frame_reader_done(struct frame_reader *r);

/*
 * Returns where the next received bytes should go and how many fit (*ret_avail > 0).
 * Compacts or grows the buffer as needed, never beyond max_frame + FRAME_HEADER_SIZE.
 * Returns 0, -ENOMEM, or -ENOBUFS when the buffer is at its limit and full: it then holds a
 * complete frame (or a bad header) that frame_reader_next() must take first.
 */
int frame_reader_space(struct frame_reader *r, uint8_t **ret_ptr, size_t *ret_avail);
/* Records that n bytes were written at the pointer frame_reader_space() returned. */
void frame_reader_commit(struct frame_reader *r, size_t n);

/*
 * Takes the next complete frame. Returns 1 with *ret_payload and *ret_len set (the payload is
 * NOT NUL-terminated and stays valid until the next call on this reader), 0 when no complete
 * frame is buffered yet, -EMSGSIZE when the header declares more than max_frame bytes, and
 * -EPROTO when it declares zero bytes. After a negative return the stream is unusable.
 */
int frame_reader_next(struct frame_reader *r, const char **ret_payload, size_t *ret_len);

/* Number of bytes buffered but not yet returned as frames (partial frame included). */
size_t frame_reader_pending(const struct frame_reader *r);

/*
 * Builds header + payload in one malloc'd buffer the caller frees. Returns 0, -EMSGSIZE if
 * len is 0 or above FRAME_MAX_LIMIT, or -ENOMEM.
 */
int frame_encode(const char *payload, size_t len, uint8_t **ret_buf, size_t *ret_len);

#endif
