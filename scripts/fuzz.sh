#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (clang, with ASan and UBSan, in build-asan/: the same build as
# `scripts/sanitize.sh asan`) and runs each for SECONDS from its seed corpus fuzz/corpus/<target>/.
# New inputs and any crashing input go to out/fuzz/<target>/; the checked-in corpus is only read.
# Exits non-zero if a target crashes, leaks, hangs or breaks one of its invariants, and prints the
# input that did it and the command that replays it.
#
# Usage: scripts/fuzz.sh [--seconds=N] [--no-build] [TARGET...]   (default 25 s, every target)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=25
build=1
targets=()
for arg in "$@"; do
  case "$arg" in
    --seconds=*) seconds=${arg#--seconds=} ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) echo "fuzz: unknown option $arg" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
dir=build-asan
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz/corpus && ls -d -- */ | tr -d /)
fi

if [ "$build" = 1 ]; then
  command -v clang++ >/dev/null || { echo "fuzz: clang++ is not installed (apt-get install clang)" >&2; exit 1; }
  # Keep these arguments the same as scripts/sanitize.sh's, so the two share one build.
  cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
    "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -gline-tables-only" -DPSREC_SANITIZE=address,undefined \
    -DPSREC_FUZZ=ON -DPSREC_BUILD_BENCH=OFF >/dev/null
  cmake --build "$dir" -j 2 --target "${targets[@]}"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/sanitizers/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
for target in "${targets[@]}"; do
  out=out/fuzz/$target
  mkdir -p "$out/corpus"
  extra=()
  # The server logs every request it rejects, which is most of what the fuzzer sends. Crash reports
  # still reach the log: libFuzzer keeps its own copy of stderr for them.
  [ "$target" = server_fuzzer ] && extra+=(-close_fd_mask=2)
  echo "fuzz: $target for ${seconds}s (log $out/log)"
  rc=0
  "$dir/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/" "${extra[@]}" "$out/corpus" "fuzz/corpus/$target" \
    >"$out/log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -60 "$out/log" >&2
    input=$(grep -o 'Test unit written to [^ ]*' "$out/log" | tail -1 | sed 's/Test unit written to //' || true)
    echo "fuzz: $target FAILED (exit $rc); input: ${input:-none written, see $out/log}" >&2
    [ -n "$input" ] && echo "fuzz: replay with: $dir/fuzz/$target $input" >&2
    failed+=("$target")
  else
    grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$out/log" | tr '\n' ' ' || true
    echo
  fi
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each"
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
