#!/bin/sh
# SPDX-License-Identifier: MIT
# `make check` step: installs into a scratch DESTDIR, proves the result is usable (SONAME;
# a man page per public function, linking to libmmapd(3); the installed mmapctl linked against
# the installed libmmapd.so; pkg-config; a program built against the installed headers, the toolbox's too, and shared
# library, whose mmapd_version() agrees with the header's MMAPD_VERSION_* and with mmapd.pc; a
# program with functions named like libmmapd's internals, built against the installed static
# library; mmapctl built from its source against nothing but the installed headers and
# libmmapd.so, plus cJSON, and run), then uninstalls and proves nothing is left behind. Uses the same make flags (SAN, BUILD) as
# the calling make.
set -eu
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "installcheck: FAIL: $*"; exit 1; }
${MAKE:-make} -s install DESTDIR="$dest" PREFIX=/usr >/dev/null
# The public headers, as mk/doccheck.sh and mk/symcheck.sh find them.
headers="client/mmapd.h $(find client/toolbox -name 'mmapd-*.h' | sort)"
for f in usr/sbin/mmapd usr/bin/mmapctl usr/lib/libmmapd.a usr/lib/libmmapd.so.0 usr/lib/libmmapd.so \
         usr/include/mmapd.h usr/include/mmapd-ring.h usr/include/mmapd-persist.h usr/lib/pkgconfig/mmapd.pc usr/share/man/man8/mmapd.8 \
         usr/share/man/man1/mmapctl.1 usr/share/man/man3/libmmapd.3 usr/lib/systemd/system/mmapd.service usr/lib/sysusers.d/mmapd.conf \
         usr/lib/systemd/system/mmapd.socket usr/lib/tmpfiles.d/mmapd.conf; do
	[ -e "$dest/$f" ] || fail "missing $f"
done
readelf -d "$dest/usr/lib/libmmapd.so" | grep -q 'SONAME.*libmmapd.so.0' || fail "no SONAME libmmapd.so.0"
# A manual page per public function (mk/manlinks.sh), each a link to libmmapd(3), and no other.
funcs=$(sh mk/manlinks.sh list $headers) || fail "mk/manlinks.sh list"
for f in $funcs; do
	[ "$(cat "$dest/usr/share/man/man3/$f.3" 2>/dev/null)" = ".so man3/libmmapd.3" ] ||
		fail "no man page $f(3) linking to libmmapd(3)"
done
pages=$(ls "$dest/usr/share/man/man3" | grep -v '^libmmapd\.3$' | sed 's/\.3$//')
[ "$pages" = "$(printf '%s\n' "$funcs" | sort)" ] ||
	fail "man3 pages are not those of the public functions: $(echo $pages)"
# The installed mmapctl is linked against the installed libmmapd.so, and runs with it.
readelf -d "$dest/usr/bin/mmapctl" | grep -q 'NEEDED.*libmmapd.so.0' ||
	fail "the installed mmapctl does not link libmmapd.so.0"
LD_LIBRARY_PATH="$dest/usr/lib" "$dest/usr/bin/mmapctl" --help >/dev/null ||
	fail "the installed mmapctl does not run with the installed libmmapd.so"
grep -q "ExecStart=/usr/sbin/mmapd" "$dest/usr/lib/systemd/system/mmapd.service" || fail "unit ExecStart not substituted"
pc() { PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$dest/usr/lib/pkgconfig" pkg-config "$@"; }
flags=$(pc --cflags --libs mmapd) || fail "pkg-config mmapd"
pcversion=$(pc --modversion mmapd) || fail "pkg-config --modversion mmapd"
cat > "$dest/t.c" <<EOF
#include <stdio.h>
#include <string.h>
#include <mmapd.h>
#include <mmapd-persist.h>
#include <mmapd-ring.h>
struct point { int x, y; };
int main(void)
{
	struct mmapd_layout layout = MMAPD_LAYOUT(struct point, "point", 1);
	MMAPD_FSTR(8) name = { 0 };
	char header[32], got[16];

	if (mmapd_pstruct_footprint(&layout) != MMAPD_PSTRUCT_HEADER + sizeof(struct point) ||
	    mmapd_fstr_set_cstr(MMAPD_FSTR_ARGS(name), "toolbox") != 0 ||
	    mmapd_fstr_copy(MMAPD_FSTR_ARGS(name), got, sizeof(got)) != 7 ||
	    strcmp(got, "toolbox") != 0 || mmapd_ring_capacity(NULL) != 0) {
		fprintf(stderr, "the toolbox of the installed library misbehaves\n");
		return 1;
	}

	snprintf(header, sizeof(header), "%d.%d.%d", MMAPD_VERSION_MAJOR, MMAPD_VERSION_MINOR,
	         MMAPD_VERSION_PATCH);
	if (strcmp(mmapd_version(), header) != 0 || strcmp(mmapd_version(), "$pcversion") != 0) {
		fprintf(stderr, "mmapd_version() %s, mmapd.h %s, mmapd.pc $pcversion\n",
		        mmapd_version(), header);
		return 1;
	}
	return mmapd_strerror(-2)[0] == 0;
}
EOF
san=""; [ "${SAN:-}" = 1 ] && san="-fsanitize=address,undefined"
${CC:-cc} $san -o "$dest/t" "$dest/t.c" $flags || fail "cannot build against the installed library"
LD_LIBRARY_PATH="$dest/usr/lib" "$dest/t" || fail "program linked against the installed library failed"
# The static library: the program's own error_set, msg_parse and frame_encode (names libmmapd
# uses inside) must neither clash at link time nor be called by the library.
cat > "$dest/s.c" <<EOF
#include <string.h>
#include <mmapd.h>
int error_set(void);
int msg_parse(void);
int frame_encode;
int error_set(void) { return 1; }
int msg_parse(void) { return 2; }
int frame_encode = 3;
int main(void)
{
	struct mmapd_client *c = NULL;

	if (mmapd_connect("$dest/no-such-socket", "installcheck", &c) >= 0)
		return 1;
	if (strcmp(mmapd_last_message(), "no error") == 0)
		return 1;
	return error_set() + msg_parse() + frame_encode == 6 ? 0 : 1;
}
EOF
static_libs=$(pc --static --libs mmapd | sed 's/-lmmapd//') || fail "pkg-config --static mmapd"
${CC:-cc} $san -o "$dest/s" "$dest/s.c" $(pc --cflags mmapd) "$dest/usr/lib/libmmapd.a" $static_libs ||
	fail "cannot build a program with names of its own against the installed libmmapd.a"
"$dest/s" || fail "program linked against the installed libmmapd.a failed"
# mmapctl from its source alone, copied out of the tree (so that no header beside it can be
# found) and built against the installed headers and libmmapd.so; cJSON, for its --json output
# and the stats JSON it reads, is an ordinary system dependency. It must need no other library
# of the tree, and run.
mkdir "$dest/ctl"
cp client/mmapctl/mmapctl.c "$dest/ctl/mmapctl.c"
cjson=$(pkg-config --cflags --libs libcjson) || fail "pkg-config libcjson"
${CC:-cc} $san -std=c11 -D_GNU_SOURCE -Wall -Wextra -o "$dest/ctl/mmapctl" "$dest/ctl/mmapctl.c" \
	$flags $cjson || fail "cannot build mmapctl against the installed headers and libmmapd.so"
readelf -d "$dest/ctl/mmapctl" | grep -q 'NEEDED.*libmmapd.so.0' ||
	fail "mmapctl built against the installed tree does not link libmmapd.so.0"
LD_LIBRARY_PATH="$dest/usr/lib" "$dest/ctl/mmapctl" --help >/dev/null ||
	fail "mmapctl built against the installed tree does not run"
LD_LIBRARY_PATH="$dest/usr/lib" MMAPD_SOCKET="$dest/no-such-socket" "$dest/ctl/mmapctl" status \
	>/dev/null 2>&1 && fail "mmapctl built against the installed tree reached a daemon that is not there"
rm -rf "$dest/t" "$dest/t.c" "$dest/s" "$dest/s.c" "$dest/ctl"
${MAKE:-make} -s uninstall DESTDIR="$dest" PREFIX=/usr >/dev/null
left=$(find "$dest" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left: $left"
echo "installcheck: install, man pages, pkg-config, version, toolbox headers, shared and static" \
	"link, installed mmapctl on libmmapd.so, mmapctl from the installed tree, uninstall ok"
