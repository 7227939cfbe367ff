#!/usr/bin/env bash
# scripts/check_includes.sh passes the real tree, and fails, naming file, line and header, on a copy
# of it with one violation planted per rule.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
check=$src/scripts/check_includes.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$check" "$src" >/dev/null || { echo "FAIL: the tree itself does not pass"; exit 1; }

fail=0
# A folder and a header it may not include; the violation goes into the folder's first .cc file.
while read -r dir header; do
  file=$(cd "$src/$dir" && ls ./*.cc | head -n 1)
  file=${file#./}
  rm -rf "$tmp/tree"
  mkdir -p "$tmp/tree"
  for d in common ps worker coordinator app; do cp -r "$src/$d" "$tmp/tree/"; done
  # Planted after the first line, so the violation is on line 2.
  sed -i "1a #include \"$header\"" "$tmp/tree/$dir/$file"
  if out=$("$check" "$tmp/tree" 2>&1); then
    echo "FAIL: $dir/$file including $header was not caught"
    fail=1
  elif ! grep -qF "$dir/$file:2: $dir/ may not include \"$header\"" <<<"$out"; then
    echo "FAIL: $dir/$file including $header: unexpected report: $out"
    fail=1
  else
    echo "ok: $dir/ including $header is caught"
  fi
done <<'CASES'
common ps/table.h
common worker/trainer.h
common coordinator/coordinator_service.h
common app/launcher.h
ps worker/remote_store.h
ps coordinator/shard_control.h
ps app/local_job.h
worker ps/local_store.h
worker coordinator/coordinator_service.h
worker app/process_group.h
coordinator app/recovery_flags.h
CASES
exit "$fail"
