#!/usr/bin/env bash
# Usage: scripts/check_exact_math.sh BINARY...
#
# Fails, naming each function, when a binary holds an x86 instruction whose result the CPU maker
# chooses: the approximate reciprocal and reciprocal square root (rcpps, rsqrtps, and their scalar,
# VEX and AVX-512 forms). Intel and AMD answer them differently, so a figure computed with one
# differs in its last digits between machines; psrec's must not (README, "Results"). Eigen emits
# rsqrtps for a packet square root unless EIGEN_FAST_MATH is 0, which the root CMakeLists.txt sets.
set -euo pipefail

if [[ $# -eq 0 || $1 == -h || $1 == --help ]]; then
  sed -n '2,8s/^# \{0,1\}//p' "$0"
  [[ $# -eq 0 ]] && exit 2
  exit 0
fi
command -v objdump >/dev/null || { echo "check_exact_math: objdump not found (Debian: binutils)" >&2; exit 2; }

status=0
for binary in "$@"; do
  [[ -r $binary ]] || { echo "check_exact_math: cannot read $binary" >&2; exit 2; }
  # objdump -d prints "<address> <name>:" over each function and "<address>: <mnemonic> ..." per
  # instruction; keep the function of each approximate one.
  hits=$(objdump -d --no-show-raw-insn -C "$binary" | awk '
    /^[0-9a-f]+ <.*>:$/ { name = $0; sub(/^[0-9a-f]+ </, "", name); sub(/>:$/, "", name); next }
    $2 ~ /^v?(rsqrt|rcp)(14|28)?(ps|ss|pd|sd|ph|sh)$/ { print "  " $2 " in " name }' | sort -u)
  if [[ -n $hits ]]; then
    echo "check_exact_math: $binary holds approximate math whose result depends on the CPU maker:"
    echo "$hits"
    status=1
  fi
done
exit "$status"
