#!/usr/bin/env bash
# Usage: check_exact_math_test.sh PROBE BINARY...
# scripts/check_exact_math.sh catches the probe's rsqrtps, naming its function, and passes psrec's
# own binaries.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
check=$src/scripts/check_exact_math.sh
probe=$1
shift

if out=$("$check" "$probe" 2>&1); then
  echo "FAIL: the probe's rsqrtps was not caught"
  exit 1
fi
grep -q "rsqrtps in ApproximateReciprocalSqrt" <<<"$out" ||
  { echo "FAIL: unexpected report on the probe: $out"; exit 1; }

"$check" "$@" || { echo "FAIL: psrec's binaries hold approximate math (above)"; exit 1; }
echo "ok: the probe's rsqrtps is caught, and $# binaries hold none"
