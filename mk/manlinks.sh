#!/bin/sh
# SPDX-License-Identifier: MIT
# The manual pages of libmmapd's functions: one per MMAPD_EXPORT function of the public headers
# given, each a link page (".so man3/libmmapd.3") to the library's page, whose SYNOPSIS lists
# them all (mk/doccheck.sh checks that). Made from the headers at install time, so that a
# function added to a header gets its page without a list to keep up to date.
#   mk/manlinks.sh list HEADER...             the function names, one a line
#   mk/manlinks.sh install DIR HEADER...      writes DIR/<function>.3 (DIR made if need be)
#   mk/manlinks.sh uninstall DIR HEADER...    removes them
# make install and make uninstall call it; mk/installcheck.sh checks the result.
set -eu
LC_ALL=C
export LC_ALL
usage() { echo "usage: $0 list HEADER... | install DIR HEADER... | uninstall DIR HEADER..." >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
shift
case $cmd in
list) ;;
install | uninstall) [ $# -ge 2 ] || usage; dir=$1; shift ;;
*) usage ;;
esac
# A declaration starts its line with MMAPD_EXPORT and names the function before the first '('.
funcs=$(cat "$@" | grep -E '^MMAPD_EXPORT ' | sed -E 's/\(.*//; s/.*[ *]//' | sort -u)
[ -n "$funcs" ] || { echo "$0: no MMAPD_EXPORT function in $*" >&2; exit 1; }
case $cmd in
list) printf '%s\n' "$funcs" ;;
install)
	mkdir -p "$dir"
	for f in $funcs; do
		echo ".so man3/libmmapd.3" > "$dir/$f.3"
		chmod 0644 "$dir/$f.3"
	done ;;
uninstall)
	for f in $funcs; do
		rm -f "$dir/$f.3"
	done ;;
esac
