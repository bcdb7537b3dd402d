#!/bin/sh
# `make check` step: installs into a scratch DESTDIR, proves the result is usable (SONAME,
# pkg-config, a program built against the installed header and library), then uninstalls and
# proves nothing is left behind. Uses the same make flags (SAN, BUILD) as the calling make.
set -eu
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "installcheck: FAIL: $*"; exit 1; }
${MAKE:-make} -s install DESTDIR="$dest" PREFIX=/usr >/dev/null
for f in usr/sbin/mmapd usr/bin/mmapctl usr/lib/libmmapd.a usr/lib/libmmapd.so.0 usr/lib/libmmapd.so \
         usr/include/mmapd.h usr/lib/pkgconfig/mmapd.pc usr/share/man/man8/mmapd.8 \
         usr/share/man/man1/mmapctl.1 usr/share/man/man3/libmmapd.3 usr/lib/systemd/system/mmapd.service usr/lib/sysusers.d/mmapd.conf \
         usr/lib/systemd/system/mmapd.socket usr/lib/tmpfiles.d/mmapd.conf; do
	[ -e "$dest/$f" ] || fail "missing $f"
done
readelf -d "$dest/usr/lib/libmmapd.so" | grep -q 'SONAME.*libmmapd.so.0' || fail "no SONAME libmmapd.so.0"
grep -q "ExecStart=/usr/sbin/mmapd" "$dest/usr/lib/systemd/system/mmapd.service" || fail "unit ExecStart not substituted"
flags=$(PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$dest/usr/lib/pkgconfig" pkg-config --cflags --libs mmapd) \
	|| fail "pkg-config mmapd"
printf '#include <mmapd.h>\nint main(void) { return mmapd_strerror(-2)[0] == 0; }\n' > "$dest/t.c"
san=""; [ "${SAN:-}" = 1 ] && san="-fsanitize=address,undefined"
${CC:-cc} $san -o "$dest/t" "$dest/t.c" $flags || fail "cannot build against the installed library"
LD_LIBRARY_PATH="$dest/usr/lib" "$dest/t" || fail "program linked against the installed library failed"
rm -f "$dest/t" "$dest/t.c"
${MAKE:-make} -s uninstall DESTDIR="$dest" PREFIX=/usr >/dev/null
left=$(find "$dest" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left: $left"
echo "installcheck: install, pkg-config, link and uninstall ok"
