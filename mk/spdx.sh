#!/bin/sh
# SPDX-License-Identifier: MIT
# SPDX licence headers: every source file of the tree says, in its first line, that it is under
# the MIT licence of LICENSE, so that a file copied out alone still says so.
#   C and the linker script (*.c, *.h, *.sym):  /* SPDX-License-Identifier: MIT */
#   scripts, makefiles, systemd units and snippets (*.sh, *.py, *.bash, *.zsh, Makefile, *.mk,
#   *.pc.in, systemd/*, and any file whose first line is "#!" or "#compdef"):
#                                               # SPDX-License-Identifier: MIT
#   (after the "#!" or "#compdef" line, which must stay first).
# Documents, data and files whose format has no comments (JSON, Markdown, man pages, debian/
# control files, test corpora) are left alone; debian/copyright covers them.
#   mk/spdx.sh           adds the header where it is missing; running it again changes nothing,
#                        so it can be rerun after merging branches that add files
#   mk/spdx.sh --check   lists the files without it and fails (make check)
# The files are those git knows (tracked, and new ones not ignored), or outside a git checkout
# every file but build output. Run from the top of the tree.
set -eu
LC_ALL=C
export LC_ALL
TAG='SPDX-License-Identifier: MIT'
C_LINE="/* $TAG */"
HASH_LINE="# $TAG"

mode=add
case ${1:-} in
--check) mode=check ;;
'') ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

list_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard
	else
		find . \( -path ./.git -o -path ./build -o -path './build-*' -o -path ./run \) -prune \
			-o -type f -print | sed 's|^\./||'
	fi
}

# The comment style of file $1: c, hash, or nothing when it takes no header.
style() {
	case $1 in
	*.c | *.h | *.sym) echo c; return ;;
	*.sh | *.py | *.bash | *.zsh | Makefile | */Makefile | *.mk | *.pc.in | systemd/*) echo hash; return ;;
	esac
	case $(head -n 1 "$1" 2>/dev/null | cut -c 1-8) in
	'#!'* | '#compdef') echo hash ;;
	esac
}

# Whether the first line of file $1 must stay first (an interpreter or zsh's #compdef).
keeps_first() {
	case $(head -n 1 "$1" | cut -c 1-8) in
	'#!'* | '#compdef') return 0 ;;
	esac
	return 1
}

# Whether file $1 of style $2 has its header where it belongs.
has_header() {
	if [ "$2" = c ]; then
		[ "$(head -n 1 "$1")" = "$C_LINE" ]
	elif keeps_first "$1"; then
		[ "$(sed -n 2p "$1")" = "$HASH_LINE" ]
	else
		[ "$(head -n 1 "$1")" = "$HASH_LINE" ]
	fi
}

# Adds the header to file $1 of style $2, keeping its mode.
add_header() {
	if [ "$2" = c ]; then
		sed -i "1i\\
$C_LINE" "$1"
	elif keeps_first "$1"; then
		sed -i "1a\\
$HASH_LINE" "$1"
	else
		sed -i "1i\\
$HASH_LINE" "$1"
	fi
}

checked=0
missing=""
for f in $(list_files); do
	[ -f "$f" ] && [ -s "$f" ] || continue
	s=$(style "$f")
	[ -n "$s" ] || continue
	checked=$((checked + 1))
	has_header "$f" "$s" && continue
	if [ "$mode" = check ]; then
		missing="$missing $f"
	else
		add_header "$f" "$s"
		has_header "$f" "$s" || { echo "spdx: could not add the header to $f" >&2; exit 1; }
		echo "spdx: added the header to $f"
	fi
done
[ "$checked" -gt 0 ] || { echo "spdx: FAIL: found no source file (run from the top of the tree)"; exit 1; }
if [ -n "$missing" ]; then
	for f in $missing; do
		echo "spdx: MISSING: $f has no \"$TAG\" header line (mk/spdx.sh adds it)"
	done
	exit 1
fi
[ "$mode" = add ] || echo "spdx: $checked source files, each with its SPDX header"
