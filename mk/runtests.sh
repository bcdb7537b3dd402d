#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs every Check suite given on the command line, even after a failure, and ends with one
# summary line counting the tests of all suites ("N passed, N failed"), read from Check's own
# "NN%: Checks: C, Failures: F, Errors: E" lines. Exit status is non-zero when anything failed.
#
# Each suite's output, with the log of every mmapd it started (the daemons write to the
# suite's stderr), goes to $TEST_LOG_DIR/<suite>.log (default build/test-logs), kept after the
# run. A suite that passes gets one line; the log of a suite that fails is printed whole, so a
# green run reads green and a red one shows what the daemon said. VERBOSE=1 prints every log.
set -u
logdir=${TEST_LOG_DIR:-build/test-logs}
mkdir -p "$logdir" || exit 1
checks=0; bad=0; failed_suites=""
for t in "$@"; do
	name=${t##*/}
	log=$logdir/$name.log
	if "$t" >"$log" 2>&1; then rc=0; else rc=$?; fi
	line=$(grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		c=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
		f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
		e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
		checks=$((checks + c)); bad=$((bad + f + e))
	fi
	skipped=$(grep -c '^skipped: ' "$log")
	note=""
	[ "$skipped" -gt 0 ] && note=" ($skipped tests skipped, see the log)"
	if [ "$rc" -eq 0 ]; then
		echo "== $name: ${line:-no summary}$note"
		[ "${VERBOSE:-0}" = 1 ] && cat "$log"
	else
		# A suite that crashed or printed no summary counts as one failure.
		failed_suites="$failed_suites $name"
		[ -n "$line" ] || bad=$((bad + 1))
		echo "== $name: FAILED (exit status $rc); its log, $log:"
		cat "$log"
		echo "== end of $name"
	fi
done
[ $# -gt 0 ] && [ "$checks" -gt 0 ] || { echo "no tests ran"; exit 1; }
[ -z "$failed_suites" ] || echo "failed suites:$failed_suites"
echo "tests: $((checks - bad)) passed, $bad failed (logs in $logdir)"
[ -z "$failed_suites" ] && [ "$bad" -eq 0 ]
