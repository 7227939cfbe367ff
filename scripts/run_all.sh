#!/usr/bin/env bash
# The main job: install what is missing, build, find or fetch ml-latest-small, train the four models
# on the three splits, and print psrec's test MAE / RMSE beside the seed's and the reference numbers.
# Also runs the seed's own protocol (seed_time) on the seed's own data, ml-latest-small-2016, where found.
#
# Usage: scripts/run_all.sh [--data=DIR] [extra psrec train flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

data=""
extra=()
for arg in "$@"; do
  case "$arg" in
    --data=*) data=${arg#--data=} ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) extra+=("$arg") ;;
  esac
done

scripts/install_deps.sh
scripts/build.sh

[ -n "$data" ] || data=$(scripts/find_data.sh 2>/dev/null) || data=$(scripts/fetch_data.sh data)
echo "data: $data" >&2

out=out/run_all
mkdir -p "$out"
# Prints "MAE RMSE" for one run; the metrics JSON stays in out/run_all/.
train() {
  local dir=$1 split=$2 model=$3 tag=$4
  local line
  line=$(build/psrec train --data="$dir" --split="$split" --model="$model" \
           --metrics_out="$out/$tag-$split-$model.json" "${extra[@]}" 2>"$out/$tag-$split-$model.log") || {
    echo "run_all: psrec train failed for $split/$model; see $out/$tag-$split-$model.log" >&2
    tail -3 "$out/$tag-$split-$model.log" >&2
    exit 1
  }
  echo "$line" | sed -E 's/.*test_mae=([0-9.]+) test_rmse=([0-9.]+)/\1 \2/'
}

# Reference numbers from ../shared/data/README.md (measured on ml-latest-small): the seed's Keras recipe
# re-run in PyTorch (MAE), mean + regularized biases, and biased MF (MAE / RMSE).
declare -A recipe=(
  [seed_time/dot]=0.945 [seed_time/bias]=0.921 [seed_time/mlp]=0.816
  [user_time/dot]=0.767 [user_time/bias]=0.764 [user_time/mlp]=0.725
  [random/dot]=0.699 [random/bias]=0.697 [random/mlp]=0.685)
declare -A biases=([seed_time]="0.786 / 1.017" [user_time]="0.697 / 0.902" [random]="0.678 / 0.879")
declare -A mf=([seed_time]="0.783 / 1.012" [user_time]="0.683 / 0.892" [random]="0.661 / 0.861")
declare -A median=([seed_time]="0.853 / 1.079" [user_time]="0.836 / 1.068" [random]="0.832 / 1.050")

printf '\npsrec on %s, default flags %s\n\n' "$data" "${extra[*]:-}"
printf '%-10s %-5s %-17s %-13s %-15s %-15s %-15s\n' split model "psrec MAE / RMSE" "seed recipe" \
  "global median" "mean+biases" "biased MF"
for split in seed_time user_time random; do
  for model in dot bias mlp genre; do  # genre has no seed recipe
    read -r mae rmse < <(train "$data" "$split" "$model" latest)
    printf '%-10s %-5s %-17s %-13s %-15s %-15s %-15s\n' "$split" "$model" "$mae / $rmse" \
      "${recipe[$split/$model]:--}" "${median[$split]}" "${biases[$split]}" "${mf[$split]}"
  done
done

seed_data="$(dirname "$data")/ml-latest-small-2016"
if [ -f "$seed_data/ratings.csv" ]; then
  printf '\nThe seed'"'"'s protocol (seed_time) on the seed'"'"'s data, %s\n\n' "$seed_data"
  printf '%-5s %-17s %-14s\n' model "psrec MAE / RMSE" "seed reported"
  declare -A reported=([dot]=0.98 [bias]=0.94 [mlp]=0.84)
  for model in dot bias mlp; do
    read -r mae rmse < <(train "$seed_data" seed_time "$model" seed2016)
    printf '%-5s %-17s %-14s\n' "$model" "$mae / $rmse" "${reported[$model]}"
  done
else
  printf '\n(%s not found: skipping the seed'"'"'s own data.)\n' "$seed_data"
fi
printf '\nMetrics JSON and logs: %s/\n' "$out"
