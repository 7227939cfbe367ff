#!/usr/bin/env bash
# The include rules between roles (scripts/check_includes.sh) and the file sizes
# (scripts/check_sizes.sh), then clang-format (Google style, .clang-format) and clang-tidy
# (.clang-tidy, which also caps a function at 80 lines) over the project's C++.
# Needs a configured build/ for compile_commands.json (scripts/build.sh makes one).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in clang-format clang-tidy; do
  command -v "$tool" >/dev/null || { echo "lint: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done
scripts/check_includes.sh
scripts/check_sizes.sh
mapfile -t files < <(git ls-files '*.cc' '*.h')
clang-format --dry-run -Werror "${files[@]}"
mapfile -t sources < <(git ls-files 'common/*.cc' 'ps/*.cc' 'worker/*.cc' 'coordinator/*.cc' 'synth/*.cc' 'app/*.cc')
out=$(printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -n 1 clang-tidy -p build --quiet 2>/dev/null || true)
if grep -q "warning:\|error:" <<<"$out"; then
  echo "$out" >&2
  echo "lint: clang-tidy found the problems above" >&2
  exit 1
fi
echo "lint: clean (${#files[@]} files formatted, ${#sources[@]} sources tidy)"
