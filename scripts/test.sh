#!/usr/bin/env bash
# Builds psrec and runs the whole test suite with CTest. Extra arguments go to ctest (e.g. -R Split).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
