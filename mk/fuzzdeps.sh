#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks that $FUZZ_CC (clang) can build a libFuzzer target with ASan and UBSan, for `make fuzz`
# only: `make check` needs none of this, so it is not in mk/deps.sh. The check is a real link of
# a one-function target, because clang without Debian's libclang-rt-*-dev compiles but does not
# link -fsanitize=fuzzer. As root it installs the missing packages (apt-get update once, then
# apt-get install -y) and checks again; otherwise it prints the exact command and fails.
set -u
CC=${FUZZ_CC:-clang}
PKGS="clang libclang-rt-dev"

probe() {
	dir=$(mktemp -d) || return 1
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
		>"$dir/probe.c"
	"$CC" -fsanitize=fuzzer,address,undefined -o "$dir/probe" "$dir/probe.c" >/dev/null 2>&1
	rc=$?
	rm -rf "$dir"
	return $rc
}

probe && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "mk/fuzzdeps.sh: $CC cannot link -fsanitize=fuzzer; installing: $PKGS"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null && apt-get install -y -q $PKGS >/dev/null || {
		echo "mk/fuzzdeps.sh: apt-get install failed for: $PKGS" >&2; exit 1; }
	probe && exit 0
	echo "mk/fuzzdeps.sh: $CC still cannot link -fsanitize=fuzzer,address,undefined" >&2
	exit 1
fi
echo "mk/fuzzdeps.sh: $CC cannot link -fsanitize=fuzzer,address,undefined (clang and libFuzzer missing)" >&2
echo "run: sudo apt-get update && sudo apt-get install -y $PKGS" >&2
exit 1
