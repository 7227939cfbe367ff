#!/usr/bin/env bash
# The include rules of docs/architecture.md: which folder's code may include which. Prints every
# include that crosses a boundary as FILE:LINE: FOLDER/ may not include "HEADER", and exits 1 if
# there is one. scripts/lint.sh runs it; tests/scripts/check_includes_test.sh plants violations.
#
#   scripts/check_includes.sh [ROOT]    ROOT: the tree to check (default: this repository)
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# What each folder may not include. app/, tests/, bench/ and fuzz/ may include anything; no role
# includes synth/ (its one user is app/).
declare -A forbidden=(
  [common]="ps worker coordinator app"
  [ps]="worker coordinator app"
  [worker]="ps coordinator app"
  [coordinator]="app"
  [synth]="ps worker coordinator app"
)

status=0
for dir in common ps worker coordinator synth; do
  [ -d "$dir" ] || continue
  alternatives=${forbidden[$dir]// /|}
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    header=$(sed -E 's/^[^:]*:[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/' <<<"$hit")
    echo "${hit%%:#*}" | sed -E 's/^([^:]*:[0-9]+):.*/\1/' | tr -d '\n'
    echo ": $dir/ may not include \"$header\" (docs/architecture.md)"
    status=1
  done < <(find "$dir" \( -name '*.h' -o -name '*.cc' \) -print0 |
             xargs -0 -r grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]+\"($alternatives)/" |
             sort || true)
done
if [ "$status" -ne 0 ]; then
  echo "check_includes: includes cross a role boundary; move the shared code down into common/" >&2
fi
exit "$status"
