#!/bin/sh
# SPDX-License-Identifier: MIT
# `make check` step: the Debian packages. Builds them from the tree (mk/deb.sh: dpkg-buildpackage
# -us -uc -b in a copy), runs lintian on them (any error or warning fails), unpacks each one into
# a scratch root with dpkg -x, and checks:
#   - debian/changelog's version is the Makefile's VERSION;
#   - every file and link make install installed (debian/tmp) is in exactly one package;
#   - each package holds what it must, in Debian's places: the shared library alone (multiarch
#     path, SONAME link) in libmmapd0; headers, libmmapd.so, libmmapd.a, mmapd.pc and a manual
#     page per public function in libmmapd-dev; daemon, mmapctl, units, sysusers and tmpfiles
#     snippets and their manual pages in mmapd; debian/copyright (DEP-5) as
#     /usr/share/doc/<package>/copyright in each;
#   - the maintainer scripts create the user through sysusers before tmpfiles makes /run/mmapd,
#     and enable and start mmapd.socket;
#   - what was unpacked works: mmapctl runs on the packaged libmmapd.so.0, mmapd prints its
#     version, and a program builds with pkg-config against libmmapd-dev alone and runs.
# python3-mmapd (python/) has the checks common to all packages (copyright, every installed file
# in one package) and must hold the package's __init__.py.
# Takes about 20 s on 2 cores (the packages' build is most of it).
set -eu
LC_ALL=C
export LC_ALL
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "debcheck: FAIL: $*"; exit 1; }
PKGS="mmapd libmmapd0 libmmapd-dev python3-mmapd"

version=$(sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*//p' Makefile)
debversion=$(dpkg-parsechangelog -S Version)
[ "$debversion" = "$version" ] ||
	fail "debian/changelog is at $debversion, the Makefile at $version (native package: the same)"
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

sh mk/deb.sh "$tmp/out" || fail "the packages do not build (mk/deb.sh)"
if ! lintian --fail-on error,warning "$tmp/out/mmapd_${version}_$arch.changes" >"$tmp/lintian" 2>&1; then
	cat "$tmp/lintian"
	fail "lintian reports errors or warnings (above)"
fi

# Each package into a root of its own, and all of them into one.
for p in $PKGS; do
	deb=$(ls "$tmp/out/${p}_${version}_$arch.deb" "$tmp/out/${p}_${version}_all.deb" 2>/dev/null || true)
	[ -n "$deb" ] && [ -f "$deb" ] || fail "no package $p"
	mkdir -p "$tmp/pkg/$p" "$tmp/control"
	dpkg -x "$deb" "$tmp/pkg/$p"
	dpkg -x "$deb" "$tmp/root"
	dpkg -e "$deb" "$tmp/control/$p"
	(cd "$tmp/pkg/$p" && find . ! -type d | sed 's|^\./||' | sort) > "$tmp/$p.list"
done
for p in $PKGS; do
	cmp -s debian/copyright "$tmp/pkg/$p/usr/share/doc/$p/copyright" ||
		fail "$p: /usr/share/doc/$p/copyright is not debian/copyright"
done
head -n 1 debian/copyright | grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' ||
	fail "debian/copyright is not in the machine-readable format (DEP-5)"

# What make install installed, each in one package (manual pages compressed by dh_compress).
sort "$tmp"/*.list | uniq -d > "$tmp/twice"
[ ! -s "$tmp/twice" ] || fail "in more than one package: $(cat "$tmp/twice")"
while IFS= read -r f; do
	case $f in usr/share/man/*) f=$f.gz ;; esac
	grep -qxF "$f" "$tmp"/*.list || fail "make install installs $f, which no package holds"
done < "$tmp/out/installed.list"

# has PACKAGE PATH...: each path is in the package.
has() {
	p=$1
	shift
	for f in "$@"; do
		grep -qxF "$f" "$tmp/$p.list" || fail "$p lacks $f"
	done
}
lib=usr/lib/$ma
doc() { echo "usr/share/doc/$1/copyright usr/share/doc/$1/changelog.gz"; }

# libmmapd0: the library and nothing else (Debian policy 8.2: a shared library package holds
# no file a second SONAME's package would also hold).
printf '%s\n' $lib/libmmapd.so.0 $lib/libmmapd.so.$version $(doc libmmapd0) | sort > "$tmp/want"
cmp -s "$tmp/want" "$tmp/libmmapd0.list" ||
	fail "libmmapd0 holds $(tr '\n' ' ' < "$tmp/libmmapd0.list"), not $(tr '\n' ' ' < "$tmp/want")"
[ "$(readlink "$tmp/pkg/libmmapd0/$lib/libmmapd.so.0")" = "libmmapd.so.$version" ] ||
	fail "libmmapd0: libmmapd.so.0 does not link to libmmapd.so.$version"
readelf -d "$tmp/pkg/libmmapd0/$lib/libmmapd.so.$version" | grep -q 'SONAME.*\[libmmapd.so.0\]' ||
	fail "libmmapd0: the library's SONAME is not libmmapd.so.0"

# libmmapd-dev.
headers="client/mmapd.h $(find client/toolbox -name 'mmapd-*.h' | sort)"
has libmmapd-dev $lib/libmmapd.so $lib/libmmapd.a $lib/pkgconfig/mmapd.pc \
	usr/share/man/man3/libmmapd.3.gz $(doc libmmapd-dev)
for h in $headers; do
	has libmmapd-dev "usr/include/${h##*/}"
done
for f in $(sh mk/manlinks.sh list $headers); do
	has libmmapd-dev "usr/share/man/man3/$f.3.gz"
done
grep -qx "libdir=/$lib" "$tmp/pkg/libmmapd-dev/$lib/pkgconfig/mmapd.pc" ||
	fail "libmmapd-dev: mmapd.pc's libdir is not /$lib"
if grep -v "^usr/share/doc/" "$tmp/mmapd.list" | grep -E '^usr/include/|\.so$|\.a$|\.pc$|/man3/'; then
	fail "mmapd holds development files (above)"
fi

# python3-mmapd.
has python3-mmapd usr/lib/python3/dist-packages/mmapd/__init__.py \
	usr/lib/python3/dist-packages/mmapd/py.typed $(doc python3-mmapd)
grep -q '^Depends:.*libmmapd0 (>= ' "$tmp/control/python3-mmapd/control" ||
	fail "python3-mmapd does not depend on libmmapd0"

# mmapd.
has mmapd usr/sbin/mmapd usr/bin/mmapctl lib/systemd/system/mmapd.service \
	lib/systemd/system/mmapd.socket usr/lib/sysusers.d/mmapd.conf usr/lib/tmpfiles.d/mmapd.conf \
	usr/share/man/man8/mmapd.8.gz usr/share/man/man1/mmapctl.1.gz $(doc mmapd)
grep -q '^ExecStart=/usr/sbin/mmapd ' "$tmp/pkg/mmapd/lib/systemd/system/mmapd.service" ||
	fail "mmapd.service does not start /usr/sbin/mmapd"
grep -q '^Depends:.*libmmapd0 (>= ' "$tmp/control/mmapd/control" ||
	fail "mmapd does not depend on libmmapd0"
grep -q "^Depends:.*libmmapd0 (= $version)" "$tmp/control/libmmapd-dev/control" ||
	fail "libmmapd-dev does not depend on libmmapd0 (= $version)"
postinst="$tmp/control/mmapd/postinst"
users=$(grep -n 'systemd-sysusers .*mmapd.conf' "$postinst" | head -n 1 | cut -d: -f1)
tmpfiles=$(grep -n 'systemd-tmpfiles .*--create mmapd.conf' "$postinst" | head -n 1 | cut -d: -f1)
[ -n "$users" ] || fail "mmapd's postinst does not create the user with systemd-sysusers"
[ -n "$tmpfiles" ] && [ "$users" -lt "$tmpfiles" ] ||
	fail "mmapd's postinst does not run systemd-tmpfiles after systemd-sysusers"
grep -q "deb-systemd-helper enable 'mmapd.socket'" "$postinst" || fail "mmapd's postinst does not enable mmapd.socket"
grep -q "deb-systemd-invoke start 'mmapd.socket'" "$postinst" || fail "mmapd's postinst does not start mmapd.socket"

# What was unpacked works together.
root=$tmp/root
readelf -d "$root/usr/bin/mmapctl" | grep -q 'NEEDED.*\[libmmapd.so.0\]' ||
	fail "the packaged mmapctl does not link libmmapd.so.0"
LD_LIBRARY_PATH="$root/$lib" "$root/usr/bin/mmapctl" --help >/dev/null ||
	fail "the packaged mmapctl does not run on the packaged libmmapd.so.0"
[ "$("$root/usr/sbin/mmapd" --version)" = "mmapd $version" ] || fail "the packaged mmapd --version"
cat > "$tmp/t.c" <<'EOF'
#include <mmapd.h>
#include <mmapd-ring.h>
#include <string.h>
int main(void)
{
	return strcmp(mmapd_version(), WANT_VERSION) != 0 || mmapd_ring_capacity(NULL) != 0;
}
EOF
flags=$(PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$root/$lib/pkgconfig" \
	pkg-config --cflags --libs mmapd) || fail "pkg-config finds no mmapd in libmmapd-dev"
${CC:-cc} -DWANT_VERSION="\"$version\"" -o "$tmp/t" "$tmp/t.c" $flags ||
	fail "cannot build against libmmapd-dev"
LD_LIBRARY_PATH="$root/$lib" "$tmp/t" || fail "a program built against libmmapd-dev does not run"
counts=$(for p in $PKGS; do printf '%s (%s files), ' $p $(wc -l < "$tmp/$p.list"); done)
echo "debcheck: ${counts%, }: built, lintian clean, holding what make install installs in" \
	"Debian's places, and working"
