#!/bin/sh
# Checks the Debian packages the build needs. As root it installs the missing ones
# (apt-get update once, then apt-get install -y); otherwise it prints the exact command
# and fails. Called by the Makefile before any target that builds.
set -u
PKGS="libuv1-dev libcjson-dev check pkg-config python3 python3-numpy"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# cc itself: build-essential brings gcc and make's companions.
command -v "${CC:-cc}" >/dev/null 2>&1 || missing="$missing build-essential"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "mk/deps.sh: installing missing packages:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null || {
		echo "mk/deps.sh: apt-get install failed for:$missing" >&2; exit 1; }
	exit 0
fi
echo "mk/deps.sh: missing packages:$missing" >&2
echo "run: sudo apt-get update && sudo apt-get install -y$missing" >&2
exit 1
