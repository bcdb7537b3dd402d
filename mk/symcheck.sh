#!/bin/sh
# SPDX-License-Identifier: MIT
# `make check` step: the symbols of the two libraries an application links.
#   mk/symcheck.sh build/libmmapd.a build/libmmapd.so.0.1.0
# An application linking libmmapd must see nothing but the public prefix (STYLE.md, "Internals
# that cannot collide"), so this fails, listing each one, on:
#   - a global symbol either library defines whose name does not start with mmapd_;
#   - an MMAPD_EXPORT function of a public header (client/mmapd.h and the toolbox's
#     client/toolbox/*/mmapd-*.h) that a library does not define, or an mmapd_ symbol a
#     library defines that no public header declares MMAPD_EXPORT;
#   - a symbol of libmmapd.so that carries no version node of client/libmmapd.sym.
# Undefined symbols (libc, cJSON, the sanitizers' runtime) are the library's needs, not its
# exports, and are not looked at. Run from the top of the tree.
set -u
LC_ALL=C
export LC_ALL

[ $# -eq 2 ] || { echo "usage: $0 libmmapd.a libmmapd.so" >&2; exit 2; }
liba=$1
libso=$2
failed=0
fail() {
	echo "symcheck: FAIL: $*"
	failed=1
}

# The public headers, as make install installs them.
headers="client/mmapd.h $(find client/toolbox -name 'mmapd-*.h' | sort)"
exported=$(cat $headers | grep -E '^MMAPD_EXPORT ' | sed -E 's/\(.*//; s/.*[ *]//' | sort -u)
nodes=$(sed -nE 's/^(MMAPD_[0-9.]+)[[:space:]]*\{.*/\1/p' client/libmmapd.sym)
[ -n "$exported" ] || { echo "symcheck: FAIL: found no MMAPD_EXPORT function in $headers"; exit 1; }
[ -n "$nodes" ] || { echo "symcheck: FAIL: found no version node in client/libmmapd.sym"; exit 1; }

# $1 (a library) and its defined global names, one a line, against the public headers.
compare() {
	lib=$1
	names=$2
	[ -n "$names" ] || { fail "$lib defines no global symbol at all (did nm fail?)"; return; }
	for s in $(printf '%s\n' "$names" | grep -v '^mmapd_'); do
		fail "$lib exports $s, which is not mmapd_*"
	done
	for s in $(printf '%s\n' "$names" | grep '^mmapd_' | grep -vxF "$exported"); do
		fail "$lib exports $s, which no public header declares MMAPD_EXPORT"
	done
	for s in $(printf '%s\n' "$exported" | grep -vxF "$names"); do
		fail "$lib does not define $s, declared MMAPD_EXPORT in a public header"
	done
}

# The static archive: every defined global (T, D, B, R, W, V, ...) of every member.
a_names=$(nm -g --defined-only "$liba" | awk 'NF == 3 { print $3 }' | sort -u)
compare "$liba" "$a_names"

# The shared library's dynamic symbols. The linker itself defines an absolute symbol named
# after each version node, and on some linkers _init, _fini, __bss_start, _edata and _end;
# those are the linker's, not ours, and are left out. nm -D may print name@@VERSION.
so_names=$(nm -D --defined-only "$libso" | awk 'NF == 3 { sub(/@.*/, "", $3); print $3 }' |
	grep -vxF "$nodes" | grep -vxE '_init|_fini|__bss_start|_edata|_end' | sort -u)
compare "$libso" "$so_names"

# Every mmapd_ symbol of the shared library carries one of the nodes of the version script
# (objdump -T: the version is the field before the name, in parentheses when hidden).
unversioned=$(objdump -T "$libso" | awk '$NF ~ /^mmapd_/ && $0 !~ /\*UND\*/ {
		v = $(NF - 1); gsub(/[()]/, "", v); print v " " $NF }' |
	while read -r v s; do
		printf '%s\n' "$nodes" | grep -qxF "$v" || echo "$s($v)"
	done)
for s in $unversioned; do
	fail "$libso: $s has no version node of client/libmmapd.sym"
done

if [ "$failed" -ne 0 ]; then
	exit 1
fi
n=$(printf '%s\n' "$exported" | wc -l)
echo "symcheck: libmmapd.a and libmmapd.so export only the $n mmapd_* functions of" \
	"$(echo $headers | sed 's|[^ ]*/||g; s/ /, /g')," \
	"versioned $(echo $nodes | tr ' ' ',') in the .so"
