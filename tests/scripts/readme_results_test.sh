#!/usr/bin/env bash
# Usage: readme_results_test.sh PSREC
# The README's results table reproduces to the last printed digit: every psrec row of it is trained
# again with default flags (as scripts/run_all.sh does) and its MAE / RMSE compared as printed.
# Skips (77) where scripts/find_data.sh finds no ml-latest-small.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
psrec=$1

psrec=$(cd "$(dirname "$psrec")" && pwd)/$(basename "$psrec")
cd "$src"
data=$(scripts/find_data.sh) || { echo "skip: ml-latest-small not found"; exit 77; }

# Rows like "| user_time | bias | 0.6760 / 0.8925 | ..." (bold for the best), from the Results section.
rows=$(sed -n '/^## Results/,/^## /p' README.md |
  sed -nE 's/^\| (seed_time|user_time|random) \| (dot|bias|mlp|genre) \| \**([0-9.]+ \/ [0-9.]+)\**.*/\1 \2 \3/p')
[[ $(wc -l <<<"$rows") -eq 12 ]] || { echo "FAIL: expected 12 rows in README's Results table, got: $rows"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
while read -r split model want_mae _ want_rmse; do
  line=$("$psrec" train --data="$data" --split="$split" --model="$model" 2>"$tmp/log") ||
    { echo "FAIL: psrec train --split=$split --model=$model failed:"; tail -3 "$tmp/log"; exit 1; }
  got=$(sed -nE 's/.*test_mae=([0-9.]+) test_rmse=([0-9.]+).*/\1 \/ \2/p' <<<"$line")
  if [[ $got == "$want_mae / $want_rmse" ]]; then
    echo "ok: $split $model $got"
  else
    echo "FAIL: $split $model: README says $want_mae / $want_rmse, psrec printed ${got:-nothing}"
    failed=1
  fi
done <<<"$rows"
exit "$failed"
