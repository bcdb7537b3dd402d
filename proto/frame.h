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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FRAME_HEADER_SIZE 4
#define FRAME_MAX_DEFAULT 65536u          /* default largest payload, bytes */
#define FRAME_MAX_MIN     1024u           /* the smallest maximum a config may set */
#define FRAME_MAX_LIMIT   (16u << 20)     /* the largest maximum anyone may set */

struct frame_reader {
	uint8_t *buf;      /* the reader's own, or a caller's scratch lent until settled */
	size_t start;      /* first unconsumed byte */
	size_t len;        /* bytes held, from buf[0] */
	size_t cap;
	uint32_t max_frame;
	bool lent;         /* buf is frame_reader_space_in's scratch */
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
/*
 * frame_reader_space for a caller with scratch memory it lends to its readers in turn (the
 * daemon's connections share one buffer): a reader that holds no bytes receives into
 * scratch (cap bytes) instead of memory of its own, until frame_reader_settle. So a reader
 * that is handed whole frames never allocates, and an idle one holds no buffer. Otherwise,
 * and returning, as frame_reader_space.
 */
int frame_reader_space_in(struct frame_reader *r, uint8_t *scratch, size_t cap,
                          uint8_t **ret_ptr, size_t *ret_avail);
/*
 * After the frames were taken: copies the bytes not yet taken out of a lent scratch buffer
 * into memory of r's own, and frees r's own buffer when it holds nothing. Returns 0, or
 * -ENOMEM (the stream is then unusable: bytes were lost).
 */
int frame_reader_settle(struct frame_reader *r);

/* Records that n bytes were written at the pointer frame_reader_space() returned. */
void frame_reader_commit(struct frame_reader *r, size_t n);

/*
 * The frame at the start of the len bytes at p: returns the bytes it takes, header included
 * (> 0), with *ret_payload and *ret_len set; 0 when p holds no complete frame yet; -EMSGSIZE
 * when the header declares more than max_frame bytes; -EPROTO when it declares zero.
 */
ssize_t frame_parse(const uint8_t *p, size_t len, uint32_t max_frame,
                    const char **ret_payload, size_t *ret_len);

/*
 * Takes the next complete frame. Returns 1 with *ret_payload and *ret_len set (the payload is
 * NOT NUL-terminated and stays valid until the next call on this reader), 0 when no complete
 * frame is buffered yet, -EMSGSIZE when the header declares more than max_frame bytes, and
 * -EPROTO when it declares zero bytes. After a negative return the stream is unusable.
 */
int frame_reader_next(struct frame_reader *r, const char **ret_payload, size_t *ret_len);

/* Number of bytes buffered but not yet returned as frames (partial frame included). */
size_t frame_reader_pending(const struct frame_reader *r);

/* Writes the header of a len-byte payload at p (FRAME_HEADER_SIZE bytes). */
void frame_header_put(uint8_t *p, uint32_t len);

/*
 * Builds header + payload in one malloc'd buffer the caller frees. Returns 0, -EMSGSIZE if
 * len is 0 or above FRAME_MAX_LIMIT, or -ENOMEM.
 */
int frame_encode(const char *payload, size_t len, uint8_t **ret_buf, size_t *ret_len);

#endif
