#!/bin/sh
# `make check` step: the Python package's tests (python/tests/test_*.py, the standard
# library's unittest) with the interpreter given as $1, against real daemons started from
# $MMAPD_BIN, loading libmmapd from $MMAPD_LIBRARY. Under SAN=1 they are skipped: an
# AddressSanitizer libmmapd cannot be loaded into an interpreter that was not built with it.
set -u
py=${1:-/usr/bin/python3}
if [ "${SAN:-}" = 1 ]; then
	echo "== python: skipped under SAN=1 (an ASan libmmapd cannot be dlopen()ed by $py)"
	exit 0
fi
echo "== python ($py, unittest)"
cd "$(dirname "$0")" && exec "$py" -m unittest discover -s . -p 'test_*.py' -t .
