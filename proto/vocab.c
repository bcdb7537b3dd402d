/* The protocol's names of ops, events and fields, from the lists of vocab.h. */
#include "vocab.h"

#include <string.h>

#define PROTO_NAME_(id, name) name,
static const char *const op_names[PROTO_OP_COUNT] = { PROTO_OPS(PROTO_NAME_) };
static const char *const event_names[PROTO_EVENT_COUNT] = { PROTO_EVENTS(PROTO_NAME_) };
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
