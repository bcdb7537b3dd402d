/* SPDX-License-Identifier: MIT */
/* The protocol's names of ops, events, fields and values, from the lists of vocab.h. */
#include "vocab.h"

#include <errno.h>
#include <string.h>

#define PROTO_NAME_(id, name) name,
static const char *const op_names[PROTO_OP_COUNT] = { PROTO_OPS(PROTO_NAME_) };
static const char *const event_names[PROTO_EVENT_COUNT] = { PROTO_EVENTS(PROTO_NAME_) };
static const char *const mode_names[PROTO_MODE_COUNT] = { PROTO_MODES(PROTO_NAME_) };
static const char *const lock_mode_names[PROTO_LOCK_MODE_COUNT] = { PROTO_LOCK_MODES(PROTO_NAME_) };
static const char *const lock_state_names[PROTO_LOCK_STATE_COUNT] = {
	PROTO_LOCK_STATES(PROTO_NAME_)
};
#undef PROTO_NAME_

#define PROTO_FIELD_DEF_(id, name) const char PROTO_FIELD_##id[] = name;
PROTO_FIELDS(PROTO_FIELD_DEF_)
#undef PROTO_FIELD_DEF_

const char *proto_op_name(enum proto_op op)
{
	return (unsigned)op < PROTO_OP_COUNT ? op_names[op] : NULL;
}

enum proto_op proto_op_find(const char *name)
{
	unsigned op;

	for (op = 0; op < PROTO_OP_COUNT; op++)
		if (strcmp(name, op_names[op]) == 0)
			break;
	return (enum proto_op)op;
}

const char *proto_event_name(enum proto_event event)
{
	return (unsigned)event < PROTO_EVENT_COUNT ? event_names[event] : NULL;
}

/* The index of name in names[n], or -EINVAL. */
static int name_find(const char *const *names, unsigned n, const char *name)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *proto_mode_name(enum proto_mode mode)
{
	return (unsigned)mode < PROTO_MODE_COUNT ? mode_names[mode] : NULL;
}

int proto_mode_find(const char *name)
{
	return name_find(mode_names, PROTO_MODE_COUNT, name);
}

const char *proto_lock_mode_name(enum proto_lock_mode mode)
{
	return (unsigned)mode < PROTO_LOCK_MODE_COUNT ? lock_mode_names[mode] : NULL;
}

int proto_lock_mode_find(const char *name)
{
	return name_find(lock_mode_names, PROTO_LOCK_MODE_COUNT, name);
}

const char *proto_lock_state_name(enum proto_lock_state state)
{
	return (unsigned)state < PROTO_LOCK_STATE_COUNT ? lock_state_names[state] : NULL;
}

int proto_lock_state_find(const char *name)
{
	return name_find(lock_state_names, PROTO_LOCK_STATE_COUNT, name);
}
