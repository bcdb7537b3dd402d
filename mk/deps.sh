#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks the Debian packages a make goal needs, by set:
#   build  libuv1-dev libcjson-dev pkg-config, and a C compiler: every goal that compiles;
#   check  check (the test framework), python3 and python3-numpy (the Python package's tests):
#          make check, make soak, a test binary;
#   deb    debhelper, dpkg-dev, lintian, build-essential, dh-python: make deb, and make check's package
#          test (mk/debcheck.sh).
#   mk/deps.sh [--install] SET...
# With --install (the Makefile passes it for the developer's goals: run, check, bench, soak,
# fuzz, fuzz-replay, deb) and as root, it installs what is missing (apt-get update once, then
# apt-get install -y). Otherwise (plain make and make install, which packagers run in chroots
# where the build dependencies are theirs to provide) it never installs anything: it prints the
# exact command to run and fails.
set -u
install=no
if [ "${1:-}" = --install ]; then
	install=yes
	shift
fi
[ $# -gt 0 ] || set -- build
PKGS=""
for set in "$@"; do
	case $set in
	build) PKGS="$PKGS libuv1-dev libcjson-dev pkg-config" ;;
	check) PKGS="$PKGS check python3 python3-numpy" ;;
	deb) PKGS="$PKGS debhelper dpkg-dev lintian build-essential dh-python" ;;
	*) echo "mk/deps.sh: unknown set '$set' (build, check, deb)" >&2; exit 2 ;;
	esac
done
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# cc itself: build-essential brings gcc and make's companions.
case $missing in
*build-essential*) ;;
*) command -v "${CC:-cc}" >/dev/null 2>&1 || missing="$missing build-essential" ;;
esac
[ -z "$missing" ] && exit 0
if [ "$install" = yes ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "mk/deps.sh: installing missing packages:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null || {
		echo "mk/deps.sh: apt-get install failed for:$missing" >&2; exit 1; }
	exit 0
fi
echo "mk/deps.sh: missing packages:$missing" >&2
echo "run: sudo apt-get update && sudo apt-get install -y$missing" >&2
exit 1
