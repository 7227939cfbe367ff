#!/usr/bin/env bash
# bench/floor_bench runs briefly, prints every row of its floor table, and sets a cluster_bench
# output (here a stand-in that prints cluster_bench's lines) against the floor. Speeds are not
# checked: only that each row is there with a number. A failing --cluster_bench fails the run.
#
#   tests/bench/floor_bench_test.sh FLOOR_BENCH
set -euo pipefail
bench=$1
fake="printf '1 ps over gRPC loopback 1.5e8 5.5e7\n'
      printf 'small calls (512 keys x 32 floats): 4600 pulls/s, 7700 pushes/s\n'"
out=$("$bench" --seconds=0.05 --repeats=2 --cluster_bench="$fake")
number='[0-9][0-9.e+]*'
for row in "memcpy, 8192 x 32 floats, one process" \
  "TCP loopback, writes of 8192 x 32 floats" \
  "gRPC stream pull, 8192 keys x 32 floats, 1 in flight" \
  "gRPC stream push, 8192 keys x 32 floats, 1 in flight" \
  "gRPC stream push, 8192 keys x 32 floats, 4 in flight" \
  "gRPC unary pull, 512 keys x 32 floats, one after another" \
  "gRPC stream pull, 512 keys x 32 floats, 1 in flight" \
  "gRPC stream push, 512 keys x 32 floats, 1 in flight" \
  "gRPC stream push, 512 keys x 32 floats, 4 in flight" \
  "gRPC stream push+pull, 512 keys x 32 floats, 1 in flight"; do
  re=$(sed 's/[+.]/\\&/g' <<<"$row")
  grep -qE "^$re +$number (floats|calls)/s" <<<"$out" ||
    { echo "FAIL: no row '$row' in:"; echo "$out"; exit 1; }
done
# The stand-in's figures reach the comparison, each beside a floor and the target.
for row in "raw pull, floats/s +1.5e\+08 +$number +$number +3e\+08" \
  "raw push, floats/s +5.5e\+07" "small calls, pulls/s +4.6e\+03" \
  "small calls, pushes/s +7.7e\+03 +$number +$number +1e\+04"; do
  grep -qE "^$row" <<<"$out" ||
    { echo "FAIL: no comparison row '$row' in:"; echo "$out"; exit 1; }
done
if "$bench" --seconds=0.05 --repeats=2 --cluster_bench="exit 3" >/dev/null 2>&1; then
  echo "FAIL: a failing --cluster_bench was not reported"
  exit 1
fi
echo "ok: every floor row, the comparison, and a failing --cluster_bench"
