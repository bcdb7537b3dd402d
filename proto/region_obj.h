/* SPDX-License-Identifier: MIT */
/*
 * The region object of docs/protocol.md ("stat", "list", "open"'s "region", "resize"'s
 * reply), encoded and decoded in one place: the daemon fills a struct proto_region and calls
 * proto_region_json; libmmapd reads replies with proto_region_parse. Field names are
 * vocab.h's, the policy goes through policy.h, and the huge-page names live here.
 */
#ifndef MMAPD_PROTO_REGION_OBJ_H
#define MMAPD_PROTO_REGION_OBJ_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

/* The region's huge pages ("huge"); numbered as enum mmapd_huge and the daemon's memfd_huge. */
enum proto_huge {
	PROTO_HUGE_NONE,      /* "none": normal pages */
	PROTO_HUGE_HUGETLB,   /* "hugetlb": a hugetlb memfd */
	PROTO_HUGE_THP,       /* "thp": a normal memfd mapped with MADV_HUGEPAGE */
	PROTO_HUGE_KINDS,     /* how many there are */
};

struct proto_region {
	const char *name;          /* borrowed (from the caller, or from the parsed object) */
	uint64_t size;
	bool anonymous;
	unsigned huge;             /* enum proto_huge */
	uint64_t grants;           /* open grants, all clients together */
	uint64_t clients;          /* distinct clients holding a grant */
	uint32_t uid, gid, perm;   /* owner, group and mode bits (0 .. 0777) */
	unsigned policy_kind;      /* enum proto_policy (policy.h) */
	uint64_t policy_value;
	uint64_t generation;
	bool poisoned;
	uint64_t seq;
	uint64_t locks;            /* locks held or waited for */
	uint64_t mtime_us;         /* last data change and last status change, microseconds since */
	uint64_t ctime_us;         /* the Unix epoch (0: not known, e.g. from an older daemon) */
	bool temporary;            /* deleted when its last grant goes (sent only when true) */
	bool adopted;              /* a file a client handed over (op adopt); sent only when true */
};

/* The wire name of huge ("none", "hugetlb", "thp"), or NULL when it is not below PROTO_HUGE_KINDS. */
const char *proto_huge_name(unsigned huge);

/*
 * The region object of r, with its fields in the order docs/protocol.md shows them. r's
 * huge and policy_kind must be valid. Returns NULL when out of memory.
 */
cJSON *proto_region_json(const struct proto_region *r);

/*
 * Reads a region object into *ret (ret->name borrowed from obj). Fields a daemon before
 * coordination, access control or huge pages did not send read as zero, manual and none; a
 * size past 2^53-1 (which older daemons could report) as the integer the number holds, at
 * most UINT64_MAX. Returns 0, or -EPROTO when obj is not a valid region object.
 */
int proto_region_parse(const cJSON *obj, struct proto_region *ret);

#endif
