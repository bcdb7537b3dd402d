#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs every Check suite given on the command line, even after a failure, and ends with one
# summary line counting the tests of all suites ("N passed, N failed"), read from Check's own
# "NN%: Checks: C, Failures: F, Errors: E" lines. Exit status is non-zero when anything failed.
set -u
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
checks=0; bad=0; failed_suites=""
for t in "$@"; do
	echo "== ${t##*/}"
	if "$t" >"$log" 2>&1; then rc=0; else rc=$?; fi
	cat "$log"
	line=$(grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		c=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
		f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
		e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
		checks=$((checks + c)); bad=$((bad + f + e))
	fi
	# A suite that crashed or printed no summary counts as one failure.
	if [ "$rc" -ne 0 ]; then
		failed_suites="$failed_suites ${t##*/}"
		[ -n "$line" ] || bad=$((bad + 1))
	fi
done
[ $# -gt 0 ] && [ "$checks" -gt 0 ] || { echo "no tests ran"; exit 1; }
[ -z "$failed_suites" ] || echo "failed suites:$failed_suites"
echo "tests: $((checks - bad)) passed, $bad failed"
[ -z "$failed_suites" ] && [ "$bad" -eq 0 ]
