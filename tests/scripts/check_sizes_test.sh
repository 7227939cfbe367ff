#!/usr/bin/env bash
# scripts/check_sizes.sh passes the real tree, and fails naming the file on a copy of it with one
# source file made one line too long; a long file under tests/ is let through.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
check=$src/scripts/check_sizes.sh
"$check" "$src" >/dev/null || { echo "FAIL: the tree itself does not pass"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/tree/common" "$tmp/tree/tests"
seq 450 | sed 's|^|// |' >"$tmp/tree/common/at_limit.h"
seq 451 | sed 's|^|// |' >"$tmp/tree/tests/long_test.cc"
"$check" "$tmp/tree" >/dev/null || { echo "FAIL: 450 lines, or a long test, was refused"; exit 1; }

seq 451 | sed 's|^|// |' >"$tmp/tree/common/too_long.cc"
if out=$("$check" "$tmp/tree" 2>&1); then
  echo "FAIL: a 451-line common/too_long.cc was not caught"
  exit 1
fi
grep -qF "common/too_long.cc: 451 lines (over 450)" <<<"$out" ||
  { echo "FAIL: unexpected report: $out"; exit 1; }
echo "ok: a 451-line source is caught, 450 lines and tests/ pass"
