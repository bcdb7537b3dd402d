/* SPDX-License-Identifier: MIT */
/*
 * Framing of the mmapd wire protocol (see frame.h). The reader keeps one buffer that holds at
 * most one partial frame after the frames already handed out; it compacts the consumed bytes
 * away before asking for more input and grows by doubling, never past max_frame plus the
 * header, so the memory a peer can make us hold is bounded by the negotiated maximum. A
 * reader may also receive into a caller's scratch buffer while it holds nothing
 * (frame_reader_space_in); settling it afterwards keeps only a partial frame, copied, and
 * frees an empty buffer, so readers that see whole frames hold no memory between them.
 */
#include "frame.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation; small frames are the common case, so start small and grow. */
#define FRAME_READER_INITIAL 4096u

static uint32_t frame_header_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void frame_header_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void frame_reader_init(struct frame_reader *r, uint32_t max_frame)
{
	r->buf = NULL;
	r->start = 0;
	r->len = 0;
	r->cap = 0;
	r->max_frame = max_frame;
	r->lent = false;
}

void frame_reader_done(struct frame_reader *r)
{
	if (!r->lent)
		free(r->buf);
	r->buf = NULL;
	r->start = 0;
	r->len = 0;
	r->cap = 0;
	r->lent = false;
}

int frame_reader_space(struct frame_reader *r, uint8_t **ret_ptr, size_t *ret_avail)
{
	size_t limit = (size_t)r->max_frame + FRAME_HEADER_SIZE;

	/*
	 * Everything before start has been handed out already. Moving the rest (at most one
	 * partial frame) to the front costs each byte at most one copy, because no frame is
	 * consumed ahead of a partial one.
	 */
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}

	if (r->len == r->cap) {
		size_t ncap;
		uint8_t *nbuf;

		/* A full scratch buffer: the bytes move into memory of the reader's own. */
		if (r->lent && frame_reader_settle(r) < 0)
			return -ENOMEM;
		if (r->len < r->cap)
			goto space;

		/*
		 * A full buffer at the limit holds a complete frame (or a header that
		 * frame_reader_next rejects): the caller must take it before reading on.
		 */
		if (r->cap >= limit)
			return -ENOBUFS;
		ncap = r->cap ? r->cap * 2 : FRAME_READER_INITIAL;
		if (ncap > limit)
			ncap = limit;
		nbuf = realloc(r->buf, ncap);
		if (!nbuf)
			return -ENOMEM;
		r->buf = nbuf;
		r->cap = ncap;
	}
space:
	*ret_ptr = r->buf + r->len;
	*ret_avail = r->cap - r->len;
	return 0;
}

int frame_reader_space_in(struct frame_reader *r, uint8_t *scratch, size_t cap,
                          uint8_t **ret_ptr, size_t *ret_avail)
{
	size_t limit = (size_t)r->max_frame + FRAME_HEADER_SIZE;

	if (r->len == r->start && !r->lent) {
		frame_reader_done(r);
		r->buf = scratch;
		r->cap = cap < limit ? cap : limit;
		r->lent = true;
	}
	return frame_reader_space(r, ret_ptr, ret_avail);
}

int frame_reader_settle(struct frame_reader *r)
{
	size_t limit = (size_t)r->max_frame + FRAME_HEADER_SIZE;
	size_t pending = r->len - r->start;
	size_t cap = FRAME_READER_INITIAL < limit ? FRAME_READER_INITIAL : limit;
	uint8_t *own;

	if (pending == 0) {
		frame_reader_done(r);
		return 0;
	}
	if (!r->lent)
		return 0;
	/* Room for the partial frame (which fits the limit) and, at the usual size, what follows. */
	if (cap < pending)
		cap = pending;
	own = malloc(cap);
	if (!own) {
		frame_reader_done(r);
		return -ENOMEM;
	}
	memcpy(own, r->buf + r->start, pending);
	r->buf = own;
	r->cap = cap;
	r->start = 0;
	r->len = pending;
	r->lent = false;
	return 0;
}

void frame_reader_commit(struct frame_reader *r, size_t n)
{
	/* Committing more than frame_reader_space() offered is a bug in the caller. */
	assert(n <= r->cap - r->len);
	r->len += n;
}

ssize_t frame_parse(const uint8_t *p, size_t len, uint32_t max_frame,
                    const char **ret_payload, size_t *ret_len)
{
	uint32_t n;

	if (len < FRAME_HEADER_SIZE)
		return 0;
	n = frame_header_get(p);
	if (n == 0)
		return -EPROTO;
	if (n > max_frame)
		return -EMSGSIZE;
	if (len - FRAME_HEADER_SIZE < n)
		return 0;
	*ret_payload = (const char *)p + FRAME_HEADER_SIZE;
	*ret_len = n;
	return FRAME_HEADER_SIZE + (ssize_t)n;
}

int frame_reader_next(struct frame_reader *r, const char **ret_payload, size_t *ret_len)
{
	ssize_t n = r->buf ? frame_parse(r->buf + r->start, r->len - r->start, r->max_frame,
	                                 ret_payload, ret_len) : 0;

	/* Errors leave start alone: a frame that cannot be returned is never consumed. */
	if (n <= 0)
		return (int)n;
	r->start += (size_t)n;
	return 1;
}

size_t frame_reader_pending(const struct frame_reader *r)
{
	return r->len - r->start;
}

int frame_encode(const char *payload, size_t len, uint8_t **ret_buf, size_t *ret_len)
{
	uint8_t *buf;

	if (len == 0 || len > FRAME_MAX_LIMIT)
		return -EMSGSIZE;
	buf = malloc(FRAME_HEADER_SIZE + len);
	if (!buf)
		return -ENOMEM;
	frame_header_put(buf, (uint32_t)len);
	memcpy(buf + FRAME_HEADER_SIZE, payload, len);
	*ret_buf = buf;
	*ret_len = FRAME_HEADER_SIZE + len;
	return 0;
}
