#!/bin/sh
# SPDX-License-Identifier: MIT
# `make check` step: which make goals may install Debian packages (mk/deps.sh). With dpkg-query,
# apt-get and id replaced by stand-ins on PATH (every package missing, root, apt-get only
# recording its calls), `make -n` of each goal must:
#   - all, install, a file: fail with the apt-get line and never call apt-get (packagers run
#     them in chroots, where installing is not theirs to do);
#   - run, check, bench, deb: call apt-get install (a fresh machine gets what it needs).
# Nothing is built or installed: make -n stops at the dependency check or only prints.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "depscheck: FAIL: $*"; exit 1; }
mkdir "$tmp/bin"
cat > "$tmp/bin/dpkg-query" <<'EOF'
#!/bin/sh
exit 1
EOF
cat > "$tmp/bin/id" <<'EOF'
#!/bin/sh
echo 0
EOF
cat > "$tmp/bin/apt-get" <<EOF
#!/bin/sh
echo "\$*" >> "$tmp/apt.log"
EOF
chmod +x "$tmp/bin/"*
# A build directory of its own, so that make -n compares nothing with the real build.
run() {
	rm -f "$tmp/apt.log"
	PATH="$tmp/bin:$PATH" ${MAKE:-make} -n --no-print-directory BUILD="$tmp/build" "$@" \
		>"$tmp/out" 2>&1
}
for goal in all install "$tmp/build/mmapd"; do
	if run $goal; then
		fail "make $goal went on with every package missing"
	fi
	[ ! -e "$tmp/apt.log" ] || fail "make $goal ran apt-get: $(cat "$tmp/apt.log")"
	grep -q 'run: sudo apt-get update && sudo apt-get install -y' "$tmp/out" ||
		fail "make $goal did not print the apt-get line: $(cat "$tmp/out")"
done
# want GOAL PACKAGE...: make -n GOAL installs (at least) these packages.
want() {
	goal=$1
	shift
	run $goal || true
	for p in "$@"; do
		grep -q "^install .* $p\( \|\$\)" "$tmp/apt.log" 2>/dev/null ||
			fail "make $goal did not install $p: $(cat "$tmp/apt.log" 2>/dev/null)"
	done
}
want run libuv1-dev
want bench libuv1-dev
want check libuv1-dev check lintian debhelper
want deb libuv1-dev lintian debhelper
echo "depscheck: plain make and make install never install packages; run, check, bench, deb do"
