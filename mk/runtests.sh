#!/bin/sh
# Runs every Check suite given on the command line, even after a failure, and ends with
# one summary line. Exit status is non-zero when any suite failed.
set -u
passed=0; failed=0; failed_names=""
for t in "$@"; do
	echo "== $t"
	if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names="$failed_names ${t##*/}"; fi
done
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || { echo "failed suites:$failed_names"; exit 1; }
