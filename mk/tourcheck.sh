#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the README's 5-minute tour as printed: the mmapctl block ("In another:") and the
# examples block, in a scratch directory whose run/ holds a fresh mmapd (as `make run` makes
# it) and whose build/ is this tree's. Fails on any command that fails, and when the reader
# does not print what the writer wrote. Called by make check.
#   mk/tourcheck.sh BUILD_DIR
set -eu
build=$(cd "$1" && pwd)
tree=$(pwd)
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "tourcheck: FAIL: $*"; [ -f "$tmp/out" ] && cat "$tmp/out"; exit 1; }
block() {  # the sh block after the line $1 of README.md
	awk -v start="$1" '$0 == start { f = 1 } f && /^```sh/ { g = 1; next } g && /^```/ { exit } g { print }' \
		"$tree/README.md"
}
block "In another:" > "$tmp/ctl.sh"
block "The tree builds both as any program would be built, seeing only the public headers:" \
	> "$tmp/examples.sh"
[ -s "$tmp/ctl.sh" ] && [ -s "$tmp/examples.sh" ] || fail "README.md has no tour blocks where expected"
mkdir "$tmp/run" "$tmp/examples"
ln -s "$build" "$tmp/build"
"$build/mmapd" --foreground --no-config --socket "$tmp/run/mmapd.sock" --data-dir "$tmp/run/data" \
	--log-level warn > "$tmp/daemon.log" 2>&1 &
pid=$!
i=0
while [ ! -S "$tmp/run/mmapd.sock" ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "mmapd did not start: $(cat "$tmp/daemon.log")"
	sleep 0.05
done
# The examples block's make line is make check's own dependency (the examples are built, in
# BUILD_DIR whatever SAN says): here it only checks they are there. A script has no job
# control: the tour's `kill %1` (an interactive shell's) becomes `kill $!`.
sed -i 's|^make \(build/examples/[a-z]*\) \(build/examples/[a-z]*\)|test -x \1 \&\& test -x \2|' \
	"$tmp/examples.sh"
grep -q '^make ' "$tmp/examples.sh" && fail "the examples block has a make line this check does not know"
sed -i 's|^kill %1|kill $!|' "$tmp/ctl.sh"
(cd "$tmp" && sh -e ctl.sh) > "$tmp/out" 2>&1 || fail "the mmapctl tour failed"
(cd "$tmp" && MMAPD_SOCKET="$tmp/run/mmapd.sock" sh -e examples.sh) > "$tmp/out" 2>&1 ||
	fail "the examples tour failed"
grep -q "written through a shared mapping" "$tmp/out" || fail "the reader did not print the writer's words"
echo "tourcheck: the README's tour runs as printed"
