#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the Debian packages of debian/ (dpkg-buildpackage -us -uc -b) in a copy of the tree,
# so that the package build's own `make clean` and build leave the caller's build/ alone and
# nothing is written beside the tree, then moves the .deb, .changes and .buildinfo files into
# OUTDIR (replacing those of an earlier build), with build.log and installed.list: the files
# and links make install put into debian/tmp, which mk/debcheck.sh finds in the packages.
#   mk/deb.sh OUTDIR
# The copy holds the files git knows (tracked, and new ones not ignored), or, outside a git
# checkout, everything but build output. make deb and mk/debcheck.sh (make check) call it.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/mmapd"
mkdir "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files --cached --others --exclude-standard |
		while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done > "$work/files"
	tar -cf - -T "$work/files" | tar -xf - -C "$src"
else
	tar -cf - --exclude=./build --exclude='./build-*' --exclude=./run . | tar -xf - -C "$src"
fi
# The package is built as the Makefile is told by debian/rules, not by the make that may have
# called this (make check SAN=1 must not make the packages a sanitizer build).
unset MAKEFLAGS MFLAGS MAKELEVEL BUILD SAN V
# debian/tmp outlives the build (dh_clean runs only before it), so the list is made after it.
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") > "$work/build.log" 2>&1; then
	tail -n 40 "$work/build.log"
	echo "mk/deb.sh: dpkg-buildpackage failed (the last 40 lines of its output are above)" >&2
	exit 1
fi
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
cp "$work/build.log" "$out/build.log"
(cd "$src/debian/tmp" && find . ! -type d | sed 's|^\./||' | sort) > "$out/installed.list"
