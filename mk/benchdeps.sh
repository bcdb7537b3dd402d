#!/bin/sh
# SPDX-License-Identifier: MIT
# Makes redis-server and redis-benchmark available for `make bench`, whose throughput line
# compares mmapd with redis PING over a Unix socket. As root it installs the missing packages
# (apt-get update once, then apt-get install -y); otherwise it says what to run. It never fails
# the benchmark: without redis, mmapd-bench prints the mmapd figure and skips the redis one.
set -u
PKGS="redis-server redis-tools"

have() { command -v redis-server >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1; }

have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "mk/benchdeps.sh: redis-server/redis-benchmark missing; installing: $PKGS"
	export DEBIAN_FRONTEND=noninteractive
	if apt-get update -q >/dev/null && apt-get install -y -q $PKGS >/dev/null; then
		# The benchmark starts a private redis-server; the package's service is not used.
		have && exit 0
	fi
	echo "mk/benchdeps.sh: installing $PKGS failed; the redis comparison will be skipped" >&2
	exit 0
fi
echo "mk/benchdeps.sh: redis missing; the redis comparison will be skipped" >&2
echo "run: sudo apt-get update && sudo apt-get install -y $PKGS" >&2
exit 0
