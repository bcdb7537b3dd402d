/* SPDX-License-Identifier: MIT */
/*
 * Message codec of the mmapd protocol: JSON parsing with the checks every request needs
 * (valid UTF-8, object at the top, no NUL hidden in strings, strict integer fields), the
 * envelope of replies, events and errors, and the table that turns errno values into the
 * symbolic codes sent on the wire ("ENOENT") and back. Shared by daemon and client; uses
 * cJSON, no I/O.
 */
#ifndef MMAPD_PROTO_MSG_H
#define MMAPD_PROTO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define PROTO_VERSION      1     /* the highest protocol version this build speaks */
#define PROTO_VERSION_MIN  1     /* the lowest it still accepts */
#define PROTO_ID_MAX       9007199254740991ULL  /* 2^53 - 1: exact in a JSON number */
#define PROTO_JSON_DEPTH_MAX 16  /* deeper requests are rejected as malformed */

/*
 * Parses one frame payload (len bytes, not NUL-terminated). Returns 0 with *ret_obj set
 * (caller frees with cJSON_Delete); -EILSEQ when the payload is not valid UTF-8 (utf8_check
 * says where); -EBADMSG when it is not valid JSON, not an object, nested deeper than
 * PROTO_JSON_DEPTH_MAX (objects and arrays both count), holds a \u0000 escape in any string,
 * or repeats a key within one object; or -ENOMEM. Every string of
 * an object it returns is valid UTF-8.
 */
int msg_parse(const char *payload, size_t len, cJSON **ret_obj);
/*
 * The "id" of a payload msg_parse refused with -EBADMSG, where it can still be read: the
 * payload is a JSON object within the depth limit whose only faults are \u0000 escapes or
 * a key repeated in some object (the first "id" counts). Returns 0 with *ret_id set, or the
 * error of msg_parse or msg_get_u64. So a pipelining client can tell which request failed.
 */
int msg_parse_id(const char *payload, size_t len, uint64_t *ret_id);

/*
 * Field readers. Each returns 0 with the value stored, -ENOENT when the key is absent
 * (the output is then left alone, so callers may preset a default), or -EINVAL when the
 * value has the wrong type (for integers: not a number, negative, fractional, or above 2^53-1).
 */
int msg_get_u64(const cJSON *obj, const char *key, uint64_t *ret);
int msg_get_bool(const cJSON *obj, const char *key, bool *ret);
/* The string is borrowed from obj. */
int msg_get_string(const cJSON *obj, const char *key, const char **ret);

/* Builds {"id": id, "ok": true}. Returns NULL on allocation failure. */
cJSON *msg_reply_ok(uint64_t id);
/*
 * Builds {"id": id, "ok": false, "error": {"code", "errno", "message"}}; has_id false writes
 * "id": null (for requests whose id could not be read). err is a positive errno value.
 */
cJSON *msg_reply_error(bool has_id, uint64_t id, int err, const char *message);
/* Builds {"event": name}. */
cJSON *msg_event(const char *name);
/*
 * Builds {"code", "errno", "message"} for an error object. An err outside the protocol's table
 * is sent as EIO (code and number always agree); a NULL message becomes strerror's sentence.
 */
cJSON *msg_error_object(int err, const char *message);

/*
 * Reads the "error" object of a failed reply (or an "error" event). Returns 0 with *ret_err a
 * positive errno value (mapped from "code"; EIO for an unknown code) and *ret_message borrowed
 * from obj (or "" if absent); -EBADMSG if there is no well-formed error object.
 */
int msg_error_parse(const cJSON *obj, int *ret_err, const char **ret_message);

/*
 * Serialises obj (compact, as msg_print) and frames it. Returns 0 with a malloc'd frame,
 * -EMSGSIZE if the payload exceeds max_frame, or -ENOMEM.
 */
int msg_encode(const cJSON *obj, uint32_t max_frame, uint8_t **ret_buf, size_t *ret_len);

/* A growable buffer that msg_encode_buf writes frames into, kept from one frame to the next. */
struct msg_buf {
	char *data;
	size_t len;    /* the frame's bytes, header included */
	size_t cap;
};

/*
 * msg_encode into buf, reusing its memory (a loop that sends many frames allocates nothing
 * once buf is large enough). Returns 0 with buf->data[0..buf->len) the frame; -EMSGSIZE or
 * -ENOMEM as msg_encode (buf keeps its memory either way).
 */
int msg_encode_buf(const cJSON *obj, uint32_t max_frame, struct msg_buf *buf);
/*
 * The frame of msg_reply_ok(id) into buf, byte for byte what msg_encode_buf makes of it, without
 * building the tree: the reply most requests get. Returns 0; -EINVAL for an id above
 * PROTO_ID_MAX, -ENOMEM.
 */
int msg_encode_ok_buf(uint64_t id, struct msg_buf *buf);
/* Frees buf's memory; it may be used again afterwards. */
void msg_buf_done(struct msg_buf *buf);

/*
 * Serialises obj like cJSON_Print (formatted) or cJSON_PrintUnformatted, except that numbers
 * are written exactly: whole numbers (below 2^64 in magnitude) as integers, without floating
 * point formatting, anything else with "%.17g" (cJSON alone rounds integers of 10^15 and above
 * to 15 significant digits: 2^53-1 would go out as 9.00719925474099e+15); and that the text is
 * always valid UTF-8: a byte of a string that is not part of a valid sequence is written as
 * U+FFFD. Use it instead of cJSON_Print* for anything that carries ids or sizes, or text from
 * outside. Returns text to free with cJSON_free, or NULL on allocation failure (or for an
 * item cJSON could not print either: an invalid one, a string or raw item without text).
 */
char *msg_print(const cJSON *obj, bool formatted);

/* "ENOENT" for ENOENT (positive errno); NULL for a value outside the protocol's table. */
const char *proto_errname(int err);
/* ENOENT for "ENOENT"; 0 for a name outside the table. */
int proto_errno(const char *name);

#endif
