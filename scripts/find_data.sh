#!/usr/bin/env bash
# Usage: scripts/find_data.sh
# Prints where ml-latest-small is, looking where psrec does (common/job_config.h): $MOVIELENS_DIR,
# then data/ml-latest-small, then ../shared/data/ml-latest-small. Relative paths are from the source
# tree's root, and so is what it prints. Exit 1, saying where it looked, when none holds ratings.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in "${MOVIELENS_DIR:-}" data/ml-latest-small ../shared/data/ml-latest-small; do
  if [[ -n $dir && -f $dir/ratings.csv ]]; then
    echo "$dir"
    exit 0
  fi
done
echo "find_data: no ratings.csv in \$MOVIELENS_DIR, data/ml-latest-small or ../shared/data/ml-latest-small" >&2
exit 1
