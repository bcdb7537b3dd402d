#!/bin/sh
# SPDX-License-Identifier: MIT
# mmapd-backup: backs up and restores the file regions of mmapd (docs/operations.md, "Back up
# and restore"). Run it as root (or as the daemon's user).
#
# Installed, not executable, in /usr/share/doc/mmapd/examples: run it with sh.
#
#   mmapd-backup backup DIR    while mmapd runs: flushes every file region, then copies each
#                              region's file and metadata into DIR (a new directory)
#   mmapd-backup restore DIR   while mmapd is stopped: copies them back into the data directory
#
# Environment: MMAPD_DATA_DIR (default /var/lib/mmapd), MMAPD_SOCKET (mmapctl's default
# otherwise), MMAPCTL (default mmapctl).
#
# A copy is what the file held when cp read it: flushing first puts everything written
# before on disk, but a writer that goes on writing during the copy can leave a region
# half old, half new. For a consistent copy, pause the writers (or take the lock they agree
# on) while it runs, or copy from a file-system snapshot taken right after the flush.
# Anonymous regions, locks, subscriptions and connections live in the daemon's memory and
# are not backed up (named on stderr).
set -eu

data=${MMAPD_DATA_DIR:-/var/lib/mmapd}
ctl=${MMAPCTL:-mmapctl}

die() { echo "mmapd-backup: $*" >&2; exit 1; }

# The regions in the JSON list $1 whose "anonymous" is $2 (true or false), one a line.
# Region names are [A-Za-z0-9._-], so they need no unquoting.
regions() {
	printf '%s\n' "$1" | grep -o "\"name\":\"[^\"]*\",\"anonymous\":$2" | cut -d'"' -f4
}

backup() {
	dest=$1
	[ ! -e "$dest" ] || die "$dest exists; give a new directory"
	list=$("$ctl" --json list) || die "cannot list the regions (is mmapd running?)"
	mkdir -p "$dest/.mmapd/meta"
	for name in $(regions "$list" false); do
		"$ctl" flush "$name" || die "cannot flush region $name"
		cp --sparse=always -p "$data/$name" "$dest/$name"
		if [ -e "$data/.mmapd/meta/$name.json" ]; then
			cp -p "$data/.mmapd/meta/$name.json" "$dest/.mmapd/meta/"
		fi
		echo "backed up $name"
	done
	for name in $(regions "$list" true); do
		echo "mmapd-backup: not backed up: anonymous region $name (memory only)" >&2
	done
}

restore() {
	src=$1
	[ -d "$src/.mmapd/meta" ] || die "$src is not a backup made by mmapd-backup"
	# Files replaced under a running daemon would not match what it holds open.
	status=0
	"$ctl" status >/dev/null 2>&1 || status=$?
	[ "$status" -eq 3 ] || die "mmapd answers; stop it first (systemctl stop mmapd.socket mmapd.service)"
	mkdir -p "$data/.mmapd/meta"
	for file in "$src"/*; do
		[ -f "$file" ] || continue
		name=${file##*/}
		cp --sparse=always -p "$file" "$data/$name"
		chown --reference="$data" "$data/$name"
		chmod 0600 "$data/$name"
		if [ -e "$src/.mmapd/meta/$name.json" ]; then
			cp -p "$src/.mmapd/meta/$name.json" "$data/.mmapd/meta/$name.json"
			chown --reference="$data" "$data/.mmapd/meta/$name.json"
		else
			rm -f "$data/.mmapd/meta/$name.json"
		fi
		echo "restored $name"
	done
}

case ${1:-} in
backup) [ $# -eq 2 ] || die "usage: mmapd-backup backup DIR"; backup "$2" ;;
restore) [ $# -eq 2 ] || die "usage: mmapd-backup restore DIR"; restore "$2" ;;
*) die "usage: mmapd-backup backup|restore DIR" ;;
esac
