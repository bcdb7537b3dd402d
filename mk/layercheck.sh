#!/bin/sh
# SPDX-License-Identifier: MIT
# `make check` step: the daemon's layers, and the client library's, are one-way (issue 10,
# STYLE.md "Seams").
#   mk/layercheck.sh daemon build/daemon
#   mk/layercheck.sh client build/client     (the non-PIC objects of client/*.c)
# 1. Calls. From each object's global symbols (nm: defined and undefined) it builds the
#    file -> file graph "a.c uses a function or variable b.c defines", and fails if that graph
#    has a cycle: it prints every strongly connected set of files (a cycle, however long) and
#    every pair of files that use each other directly. tsort(1) is the judge of "no cycle".
# 2. Includes. Every <dir>/*.c and <dir>/*.h may include (with "...") only headers of its own
#    layer or of a layer below it, after that folder's table of layers below; a header not in
#    the table is an error too, so a new file has to be given a layer.
# client/toolbox/ is not checked here: it is built on the public headers only (the Makefile's
# include paths hold it to that).
# Run from the top of the tree. Exit 0 when both hold, 1 otherwise.
set -u
LC_ALL=C
export LC_ALL

[ $# -eq 2 ] || { echo "usage: $0 daemon|client objdir" >&2; exit 2; }
src=$1
objdir=$2
failed=0

# The daemon's layers, lowest first: a file may include headers of its own layer and of lower ones.
#   0 wire     proto/ and shared/ (the wire and the kit both sides use; no daemon header)
#   1 base     the daemon's kit: logging, tables, files, names, timers, limits, config
#   2 conn     the transport's connection object and what answers on it
#   3 domain   the region table and what hangs off a region: locks, resizes, notifications,
#              flushes, metadata, access checks, the fd store, the data directory's index
#   4 ops      the dispatcher: request parsing, the op table, the ops
#   5 server   the listener and fd-store connections that wire the layers together; main
# Files are named without .c/.h: "conn" is conn.c and conn.h.
DAEMON_LAYERS='
0 frame fdpass msg policy region_obj utf8 vocab fdcount name num ctlpage changelog
1 log enumname htab timer fileio fsdir memfd config sdnotify budget state why
2 conn reply
3 control region lifetime lock resize notify flush meta access fdstore dirindex adopt extwatch
4 ops ops_get ops_getregion ops_json ops_session ops_table ops_admin ops_coord ops_list ops_region ops_manage ops_truncate relay ops_adopt extchange
5 server fdconn main
'
# The client library's layers, lowest first (client/internal.h tells what each file is for).
#   0 wire     proto/, shared/ and the public headers (mmapd.h, the private tuning.h)
#   1 base     the per-thread message, the version, deadlines, flush policies; internal.h
#   2 client   the client object and its event queue
#   3 socket   connecting, installing and closing the socket
#   4 call     building requests and the call multiplexer (reaches up only through hooks)
#   5 domain   hello, queries, admin, a window's mapping, advice, atomics, the SIGBUS guard,
#              coordination, regions (open, close, reopen, set_mode)
#   6 top      reactions to events, reconnection, dispatching, the dispatch thread, connecting
# Each layer from 2 up has one header (client.h socket.h call.h domain.h top.h) that includes
# the one below, and its files include it: so a file that calls up a layer does not compile.
CLIENT_LAYERS='
0 frame fdpass msg policy region_obj utf8 vocab name num ctlpage changelog mmapd tuning
1 internal error version deadline policytext policyjson
2 client evqueue sendq
3 socket
4 request call
5 domain hello query admin manage mapping hugemap advise atomic scalar cursor guard fastlock fastnotify pagesub coord region start adopt
6 top react reconnect event dispatch_thread connect
'
case $src in
daemon) LAYERS=$DAEMON_LAYERS ;;
client) LAYERS=$CLIENT_LAYERS ;;
*) echo "layercheck: no table of layers for $src/" >&2; exit 2 ;;
esac
layer_of() {
	printf '%s\n' "$LAYERS" | awk -v f="${1%.[ch]}" '{ for (i = 2; i <= NF; i++) if ($i == f) { print $1; exit } }'
}

# ---- 1. the call graph ----
# The objects of today's sources only: a stale object of a removed file must not count.
for c in "$src"/*.c; do
	[ -f "$objdir/$(basename "$c" .c).o" ] || { echo "layercheck: FAIL: no object for $c in $objdir (build first)"; exit 1; }
done
edges=$(for c in "$src"/*.c; do
		o="$objdir/$(basename "$c" .c).o"
		nm "$o" | awk -v f="$(basename "$o" .o)" '$1 == "U" { print "U", f, $2 } NF == 3 && $2 ~ /^[TDBRCGSVW]$/ { print "D", f, $3 }'
	done | awk '$1 == "D" { def[$3] = $2; next } { use[++n] = $2 " " $3 }
		END { for (i = 1; i <= n; i++) { split(use[i], u, " "); if ((u[2] in def) && def[u[2]] != u[1]) print u[1], def[u[2]] } }' |
	sort -u)
nfiles=$(ls "$src"/*.c | wc -l)
nedges=$(printf '%s\n' "$edges" | grep -c .)

pairs=$(printf '%s\n' "$edges" | awk '{ e[$1 " " $2] = 1 } END { for (k in e) { split(k, p, " "); if (p[1] < p[2] && ((p[2] " " p[1]) in e)) print p[1] ".c <-> " p[2] ".c" } }' | sort)
# Strongly connected sets: transitive closure (a few dozen files), then group mutual reach.
sccs=$(printf '%s\n' "$edges" | awk '
	{ r[$1, $2] = 1; v[$1] = 1; v[$2] = 1 }
	END {
		n = 0; for (x in v) name[++n] = x
		for (k = 1; k <= n; k++) for (i = 1; i <= n; i++) if (r[name[i], name[k]])
			for (j = 1; j <= n; j++) if (r[name[k], name[j]]) r[name[i], name[j]] = 1
		for (i = 1; i <= n; i++) {
			if (done[name[i]]) continue
			s = ""; c = 0
			for (j = 1; j <= n; j++) if (i == j || (r[name[i], name[j]] && r[name[j], name[i]])) {
				done[name[j]] = 1; if (i != j || r[name[i], name[i]]) { s = s " " name[j] ".c"; c++ } }
			if (c > 1) print c ":" s
		}
	}' | sort -t: -k1,1nr)
npairs=$(printf '%s\n' "$pairs" | grep -c .)
ncyc=$(printf '%s\n' "$sccs" | grep -c .)

# A call may go to a file of its own layer or below, never up (within a layer tsort judges).
up=$(printf '%s\n' "$edges" | while read -r a b; do
		[ -n "$a" ] || continue
		la=$(layer_of "$a"); lb=$(layer_of "$b")
		[ -n "$la" ] && [ -n "$lb" ] && [ "$lb" -gt "$la" ] && echo "$a.c (layer $la) calls $b.c (layer $lb)"
	done)
if [ -n "$up" ]; then
	failed=1
	echo "layercheck: FAIL: calls up the $src layers:"
	printf '%s\n' "$up" | sed 's/^/  /'
fi

if printf '%s\n' "$edges" | tsort >/dev/null 2>&1; then :; else
	failed=1
	echo "layercheck: FAIL: the $src call graph has cycles ($ncyc set(s) of files, $npairs pair(s) calling each other):"
	printf '%s\n' "$sccs" | sed 's/^\([0-9]*\):/  cycle of \1 files:/'
	[ "$npairs" -eq 0 ] || printf '%s\n' "$pairs" | sed 's/^/  pair: /'
fi

# ---- 2. the includes ----
for f in "$src"/*.c "$src"/*.h; do
	b=$(basename "$f")
	own=$(layer_of "$b")
	if [ -z "$own" ]; then
		failed=1
		echo "layercheck: FAIL: $f has no layer in mk/layercheck.sh's table"
		continue
	fi
	for h in $(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/p' "$f"); do
		hl=$(layer_of "$h")
		if [ -z "$hl" ]; then
			failed=1
			echo "layercheck: FAIL: $f includes $h, which has no layer in mk/layercheck.sh's table"
		elif [ "$hl" -gt "$own" ]; then
			failed=1
			echo "layercheck: FAIL: $f (layer $own) includes $h (layer $hl, above it)"
		fi
	done
done

if [ "$failed" -ne 0 ]; then
	exit 1
fi
echo "layercheck: $nfiles $src files, $nedges calls between files, no cycle, none up a layer; every include from its own layer or below"
