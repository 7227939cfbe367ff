#!/usr/bin/env bash
# scripts/plot.sh: two small metrics files (one with Recall@10) become a PNG of the right width,
# and bad arguments or files exit 2 and 1 with the reason. Skips (exit 77) without gnuplot or jq,
# rather than installing them from a test.
set -euo pipefail
plot=$(cd "$(dirname "$0")/../.." && pwd)/scripts/plot.sh
for tool in gnuplot jq; do
  command -v "$tool" >/dev/null || { echo "SKIP: no $tool (apt-get install gnuplot-nox jq)"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

epochs() {  # name, model, with recall (0/1)
  local sep="" e
  printf '{"config": {"model": "%s", "split": "USER_TIME", "loss": "MAE"},\n "epochs": [' "$2"
  for e in 1 2 3; do
    printf '%s{"epoch": %d, "train_loss": 0.%d, "test_mae": 0.7%d' "$sep" "$e" $((9 - e)) $((9 - e))
    [[ $3 -eq 1 ]] && printf ', "recall_at_10": 0.0%d' "$e"
    printf '}'
    sep=", "
  done
  printf '],\n "final": {"test_mae": 0.76}}\n'
}
epochs a bias 0 >"$tmp/bias.json"
epochs b mlp 1 >"$tmp/mlp.json"

"$plot" --out="$tmp/two.png" "$tmp/bias.json" 2>"$tmp/err" || { cat "$tmp/err"; fail=1; }
check "a PNG is written" bash -c "head -c 8 '$tmp/two.png' | od -An -c | grep -q 'P   N   G'"
width() { od -An -tu1 -j16 -N4 "$1" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}'; }
check "two panels without Recall@10" test "$(width "$tmp/two.png")" -eq 1120
"$plot" --out="$tmp/three.png" "$tmp/bias.json" "$tmp/mlp.json" 2>"$tmp/err" || { cat "$tmp/err"; fail=1; }
check "three panels when a run has Recall@10" test "$(width "$tmp/three.png")" -eq 1680

set +e
"$plot" >/dev/null 2>"$tmp/err"; code=$?
check "no file: exit 2" test "$code" -eq 2
"$plot" --colour=red "$tmp/bias.json" >/dev/null 2>"$tmp/err"; code=$?
check "unknown flag: exit 2 naming it" bash -c "[[ $code -eq 2 ]] && grep -q -- '--colour' '$tmp/err'"
"$plot" --out="$tmp/x.jpg" "$tmp/bias.json" >/dev/null 2>"$tmp/err"; code=$?
check "--out not .png: exit 2" test "$code" -eq 2
echo '{"epochs": []}' >"$tmp/empty.json"
"$plot" --out="$tmp/e.png" "$tmp/empty.json" >/dev/null 2>"$tmp/err"; code=$?
check "no epochs: exit 1 naming the file" bash -c "[[ $code -eq 1 ]] && grep -qF '$tmp/empty.json' '$tmp/err'"
"$plot" --out="$tmp/m.png" "$tmp/missing.json" >/dev/null 2>"$tmp/err"; code=$?
check "missing file: exit 1" test "$code" -eq 1
set -e
exit $fail
