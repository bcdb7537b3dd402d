/* SPDX-License-Identifier: MIT */
/*
 * Flush policies as the protocol names them: {"kind": "every-bytes", "value": N}. The one
 * codec (names, checks, encoder, decoder) for the daemon (daemon/flush.h) and libmmapd
 * (client/coord.c, whose text form in client/policytext.c uses the names too), so the two
 * never disagree on a name or on what a valid policy is. The numbering is that of enum mmapd_policy_kind in client/mmapd.h and of
 * the daemon's enum policy_kind; both check it against this one at compile time.
 */
#ifndef MMAPD_PROTO_POLICY_H
#define MMAPD_PROTO_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

enum proto_policy {
	PROTO_POLICY_MANUAL,
	PROTO_POLICY_ALWAYS,
	PROTO_POLICY_EVERY_BYTES,
	PROTO_POLICY_EVERY_WRITES,
	PROTO_POLICY_INTERVAL,
	PROTO_POLICY_KINDS,       /* how many there are */
};

/* The wire name of kind, or NULL when kind is not below PROTO_POLICY_KINDS. */
const char *proto_policy_name(unsigned kind);
/* The kind called name, or -EINVAL when no kind has that name. */
int proto_policy_kind(const char *name);
/* True for the kinds that carry a value: every-bytes, every-writes and interval. */
bool proto_policy_has_value(unsigned kind);
/* True when kind is below PROTO_POLICY_KINDS and value fits it (1 to 2^53-1 for a kind that
 * carries one, anything for one that does not). */
bool proto_policy_valid(unsigned kind, uint64_t value);
/*
 * {"kind": name, "value": value} (value only for the kinds that carry one); kind must be
 * below PROTO_POLICY_KINDS. Returns NULL when out of memory.
 */
cJSON *proto_policy_json(unsigned kind, uint64_t value);

/*
 * Reads a policy object ({"kind": ..., "value": N}), the decoder of proto_policy_json, for
 * requests and the daemon's files as for replies and events. Returns 0 with *ret_kind and *ret_value set (value 0 for a kind without one), or -EINVAL
 * with *ret_problem set to a sentence that names the offending field.
 */
int proto_policy_parse(const cJSON *obj, unsigned *ret_kind, uint64_t *ret_value,
                       const char **ret_problem);

#endif
