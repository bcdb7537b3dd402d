#!/bin/sh
# SPDX-License-Identifier: MIT
# `make check` step: the documentation against the code. Lists every public function, protocol
# op, event, config key and mmapctl command the code has, and prints each one a document that
# must describe it does not, with the place it was looked for:
#   - every MMAPD_EXPORT function of a public header (client/mmapd.h, the toolbox's
#     client/toolbox/*/mmapd-*.h): declared in a ```c block of docs/client-api.md and in the
#     SYNOPSIS of docs/libmmapd.3, which also shows the #include of each such header;
#   - every op of proto/vocab.h's PROTO_OPS (the list the daemon's OPS_TABLE must cover and
#     libmmapd builds its requests from): a heading of its own in docs/protocol.md;
#   - every event of proto/vocab.h's PROTO_EVENTS: a row of the table under "## Events" in
#     docs/protocol.md; and the daemon sends no event by a name spelled outside that list
#     (msg_event, notify_event_new, sub_send_seq_event with a string literal in daemon/);
#   - every field of proto/vocab.h's PROTO_FIELDS, and every value of its PROTO_MODES,
#     PROTO_LOCK_MODES and PROTO_LOCK_STATES: named, as `name` or "name", in
#     docs/protocol.md or docs/coordination.md;
#   - every config key daemon/config.c accepts: named in docs/mmapd.8 and docs/operations.md;
#   - every command of client/mmapctl/mmapctl.c's commands[]: a .TP entry under COMMANDS in
#     docs/mmapctl.1.
# Exit status 1 when anything is missing (or when a list came out empty: a parser that stopped
# matching the code must not pass silently). Run from the top of the tree.
set -u
LC_ALL=C
export LC_ALL

missing=0
checked=0
miss() {
	echo "doccheck: MISSING: $1"
	missing=$((missing + 1))
}
# A word of [A-Za-z0-9_-] equal to $1 somewhere in standard input.
has_word() {
	grep -Eq "(^|[^A-Za-z0-9_-])$1([^A-Za-z0-9_-]|\$)"
}
# Roff source without font changes, \- and \&, so that words read as in the rendered page.
roff_plain() {
	sed -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\f\[[^]]*\]//g' -e 's/\\-/-/g' -e 's/\\&//g' "$1"
}
# The lines of a roff section: from ".SH $2" to the next .SH.
roff_section() {
	roff_plain "$1" | awk -v s="$2" '/^\.SH/ { on = ($0 ~ "^\\.SH \"?" s "\"?$") ; next } on'
}
nonempty() {
	[ -n "$2" ] || { echo "doccheck: FAIL: found no $1 in the code (has the code's form changed?)"; exit 1; }
}

# ---- public functions ----
headers="client/mmapd.h $(find client/toolbox -name 'mmapd-*.h' | sort)"
funcs=$(cat $headers | grep -E '^MMAPD_EXPORT ' | sed -E 's/\(.*//; s/.*[ *]//' | sort -u)
nonempty "MMAPD_EXPORT functions in $headers" "$funcs"
api_decls=$(awk '/^```c/ { on = 1; next } /^```/ { on = 0 } on' docs/client-api.md)
man_synopsis=$(roff_section docs/libmmapd.3 SYNOPSIS)
for h in $headers; do
	checked=$((checked + 1))
	printf '%s\n' "$man_synopsis" | grep -Fq "#include <${h##*/}>" ||
		miss "header ${h##*/}: no #include <${h##*/}> in the SYNOPSIS of docs/libmmapd.3"
done
for f in $funcs; do
	checked=$((checked + 1))
	printf '%s\n' "$api_decls" | grep -Eq "(^|[ *])$f\(" ||
		miss "function $f: no declaration in a \`\`\`c block of docs/client-api.md"
	printf '%s\n' "$man_synopsis" | grep -Eq "(^|[ *\"])$f\(" ||
		miss "function $f: not in the SYNOPSIS of docs/libmmapd.3"
done

# ---- protocol ops ----
# The X(ID, "name") lines of a list macro of proto/vocab.h: $1 is PROTO_OPS or PROTO_EVENTS.
vocab_list() {
	sed -n "/^#define $1(X)/,/^\$/p" proto/vocab.h | sed -nE 's/^[[:space:]]*X\([A-Z_]+, "([a-z_-]+)"\).*/\1/p'
}
ops=$(vocab_list PROTO_OPS)
nonempty "ops in proto/vocab.h's PROTO_OPS" "$ops"
proto_heads=$(grep -E '^#{2,4} ' docs/protocol.md)
for op in $ops; do
	checked=$((checked + 1))
	printf '%s\n' "$proto_heads" | has_word "$op" ||
		miss "op $op: no section (heading) in docs/protocol.md"
done

# ---- events ----
events=$(vocab_list PROTO_EVENTS)
nonempty "events in proto/vocab.h's PROTO_EVENTS" "$events"
event_rows=$(awk '/^## / { on = ($0 == "## Events"); next } on' docs/protocol.md | grep -E '^\|')
for ev in $events; do
	checked=$((checked + 1))
	printf '%s\n' "$event_rows" | grep -Fq "| \`$ev\` |" ||
		miss "event $ev: no row in the table under \"## Events\" of docs/protocol.md"
done
literal_events=$(grep -nE '(msg_event|notify_event_new|sub_send_seq_event)\([^")]*"' daemon/*.c)
[ -z "$literal_events" ] ||
	miss "events sent by a literal name, not one of proto/vocab.h's PROTO_EVENTS: $literal_events"

# ---- protocol fields ----
fields=$(vocab_list PROTO_FIELDS)
nonempty "fields in proto/vocab.h's PROTO_FIELDS" "$fields"
for f in $fields; do
	checked=$((checked + 1))
	cat docs/protocol.md docs/coordination.md | grep -Eq "[\`\"]$f[\`\"]" ||
		miss "field $f: not named in docs/protocol.md or docs/coordination.md"
done
values=$(for l in PROTO_MODES PROTO_LOCK_MODES PROTO_LOCK_STATES; do vocab_list $l; done)
nonempty "values in proto/vocab.h's PROTO_MODES, PROTO_LOCK_MODES, PROTO_LOCK_STATES" "$values"
for v in $values; do
	checked=$((checked + 1))
	cat docs/protocol.md docs/coordination.md | grep -Eq "[\`\"]$v[\`\"]" ||
		miss "value $v: not named in docs/protocol.md or docs/coordination.md"
done

# ---- config keys ----
keys=$( (sed -nE 's/^[[:space:]]*CONFIG_LIMIT\(([a-z_]+),.*/\1/p' daemon/config.c
	grep -oE 'strcmp\(key, "[a-z_]+"\)' daemon/config.c | sed -E 's/.*"([a-z_]+)".*/\1/') | sort -u)
nonempty "config keys in daemon/config.c" "$keys"
man8=$(roff_plain docs/mmapd.8)
for k in $keys; do
	checked=$((checked + 1))
	printf '%s\n' "$man8" | has_word "$k" || miss "config key $k: not in docs/mmapd.8"
	has_word "$k" < docs/operations.md || miss "config key $k: not in docs/operations.md"
done

# ---- mmapctl commands ----
cmds=$(sed -n '/commands\[\] = {/,/^};/p' client/mmapctl/mmapctl.c | sed -nE 's/^[[:space:]]*\{ "([a-z-]+)",.*/\1/p')
nonempty "commands in client/mmapctl/mmapctl.c's commands[]" "$cmds"
cmd_entries=$(roff_section docs/mmapctl.1 COMMANDS | awk 'tp { print } { tp = ($0 == ".TP") }' |
	sed -E 's/^\.[A-Z]+ +//; s/"//g')
for c in $cmds; do
	checked=$((checked + 1))
	printf '%s\n' "$cmd_entries" | has_word "$c" ||
		miss "mmapctl command $c: no .TP entry under COMMANDS in docs/mmapctl.1"
done

if [ "$missing" -ne 0 ]; then
	echo "doccheck: FAIL: $missing missing of $checked names checked"
	exit 1
fi
echo "doccheck: $checked names (functions, ops, events, fields, values, config keys, mmapctl commands) all documented"
