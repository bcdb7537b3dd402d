/* SPDX-License-Identifier: MIT */
/*
 * The flusher: making a region's data durable with fdatasync on the thread pool, and the
 * region's flush policy (docs/coordination.md, "Flush and flush policies").
 *
 * At most one fdatasync per region is on the thread pool at a time. A flush request that
 * arrives while one runs waits for the next one, which starts when the running one ends:
 * the running one may have begun before the requester's writes. A failed fdatasync poisons
 * the region: every waiter and every later flush gets EIO, every grant holder and subscriber
 * hears flush-failed, the poison is saved with the region's metadata, and nothing is retried
 * until clear-error. A flush of a range (flush_range_request) runs at once on its own, makes
 * only that range durable and poisons the region likewise when it fails. Anonymous regions have nothing to make durable: their flushes succeed at
 * once and their policies never start one.
 *
 * Test hook: with MMAPD_TEST_FAIL_FDATASYNC=<name> in the daemon's environment, every
 * fdatasync of region <name> fails with EIO (flush_hook_init logs this at warn level).
 */
#ifndef MMAPD_DAEMON_FLUSH_H
#define MMAPD_DAEMON_FLUSH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <cjson/cJSON.h>

#include "policy.h"
#include "why.h"

struct conn;
struct region;
struct server;

/* The policy kinds, numbered as the protocol's (proto/policy.h). */
enum policy_kind {
	POLICY_MANUAL = PROTO_POLICY_MANUAL,             /* only flush flushes */
	POLICY_ALWAYS = PROTO_POLICY_ALWAYS,             /* every changed flushed before its reply */
	POLICY_EVERY_BYTES = PROTO_POLICY_EVERY_BYTES,   /* flush once value bytes were changed */
	POLICY_EVERY_WRITES = PROTO_POLICY_EVERY_WRITES, /* ... once value changes were made */
	POLICY_INTERVAL = PROTO_POLICY_INTERVAL,         /* ... value ms after the first unflushed one */
};

struct policy {
	enum policy_kind kind;
	uint64_t value;       /* 0 for manual and always */
};

/*
 * The policy's codec is proto's (proto/policy.h); these two only carry a struct policy
 * through it, inline, so that every layer may read and write policies without calling the
 * flusher.
 *
 * Reads a policy object ({"kind": ..., "value": N}). Returns 0 with *ret set, or -EINVAL
 * with ret_why (why.h) set to a sentence that names the offending field.
 */
static inline int policy_parse(const cJSON *obj, struct policy *ret, struct why *ret_why)
{
	const char *problem = NULL;
	unsigned kind;
	uint64_t value;
	int r = proto_policy_parse(obj, &kind, &value, &problem);

	if (r < 0) {
		why_set(ret_why, "%s", problem);
		return r;
	}
	ret->kind = (enum policy_kind)kind;
	ret->value = value;
	return 0;
}

/* The policy as a JSON object. NULL on ENOMEM. */
static inline cJSON *policy_to_json(const struct policy *p)
{
	return proto_policy_json(p->kind, p->value);
}

struct flush_waiter;

struct flush_queue {
	struct flush_waiter *head, *tail;
};

/* A region's flushing state (in struct region). */
struct flush_state {
	struct policy policy;
	bool poisoned;
	bool running;                 /* an fdatasync is on the thread pool */
	bool again;                   /* a policy wants another one after it */
	struct flush_queue running_waiters;  /* answered when the running one ends */
	struct flush_queue next_waiters;     /* answered by the next one */
	uint64_t bytes, writes;       /* changes counted since the last flush started */
	uv_timer_t *interval;         /* armed by the first change under an interval policy */
	unsigned ranges;              /* flushes of a range on the thread pool */
};

/* Reads the test hook from the environment (and warns about it). Call once at start. */
void flush_hook_init(void);

/* The flush op: answers id once the region's data is durable, or with EIO. */
void flush_request(struct conn *c, uint64_t id, struct region *r);

/*
 * The flush op with a range (offset, length inside the region, checked by the caller):
 * answers id once the range's data is durable (msync(MS_SYNC) of it: its dirty pages only,
 * then the file system's commit and the device's cache flush), or with EIO (poisoning the
 * region as a failed fdatasync does). Not queued behind a running fdatasync, and no flushed
 * event: the changes outside the range are not made durable by it.
 */
void flush_range_request(struct conn *c, uint64_t id, struct region *r, uint64_t offset,
                         uint64_t length);

/*
 * Counts the change number seq of length bytes against r's policy and answers the changed
 * request id with {"seq"}: after the flush under "always", at once otherwise. c NULL: a change
 * read from the change log (relay.c), which no request waits for.
 */
void flush_count_change(struct conn *c, uint64_t id, struct region *r, uint64_t seq,
                        uint64_t length);

/*
 * Makes p r's policy. The counters start again; changes an armed interval was waiting to
 * flush are flushed now.
 */
void flush_set_policy(struct region *r, const struct policy *p);

/* True while r has flushing to do (an fdatasync, waiters, an armed interval). */
bool flush_busy(const struct region *r);

/* The region was deleted: drops an armed interval (its data is gone with it). */
void flush_region_retire(struct region *r);

/* The daemon is stopping: every armed interval fires now. */
void flush_server_stop(struct server *srv);

#endif
