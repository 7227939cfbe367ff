#!/usr/bin/env bash
# The size rule (docs/architecture.md): no C++ or proto source outside tests/ over MAX lines
# (default 450). Prints each one over as FILE: N lines (over MAX) and exits 1 if there is one.
# Functions over 80 lines are clang-tidy's readability-function-size (.clang-tidy), which
# scripts/lint.sh runs with this. tests/scripts/check_sizes_test.sh plants a file too long.
#
#   scripts/check_sizes.sh [ROOT] [MAX]    ROOT: the tree to check (default: this repository)
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
max=${2:-450}
cd "$root"

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cc' '*.h' '*.proto')
else
  mapfile -t files < <(find . \( -name '*.cc' -o -name '*.h' -o -name '*.proto' \) -printf '%P\n')
fi
status=0
for file in "${files[@]}"; do
  case "$file" in tests/* | build/*) continue ;; esac
  [ -f "$file" ] || continue
  lines=$(wc -l <"$file")
  if [ "$lines" -gt "$max" ]; then
    echo "$file: $lines lines (over $max)"
    status=1
  fi
done
if [ "$status" -ne 0 ]; then
  echo "check_sizes: files over $max lines; split them along their concepts" >&2
fi
exit "$status"
