#!/usr/bin/env bash
# Usage: bench/readme_figures.sh [--data=DIR] [--out=DIR] [--psrec=BIN] [SECTION ...]
#
# Measures the README's figures that scripts/run_all.sh does not print, with the commands the README
# gives, and prints each section's rows. SECTION is any of (default: all, in this order):
#   few       the few-ratings table: 1 x 1 sync checkpoints of dot, bias, mlp, genre on user_time,
#             then bench/few_ratings_eval
#   recommend psrec recommend for user 1 from the bias checkpoint of `few`
#   rating    the ranking table's mae rows and the learning curves' runs: psrec train per split
#             and model, the final Recall@10 / NDCG@10 / coverage@10, and the popularity rows
#   bpr       the ranking table's bpr rows: 1 x 1 checkpoints, then recommend_bench --ranking
#   tuning    the bpr flag choices the README lists, bias on user_time
#   cluster   2 servers x 2 workers on user_time: sync, async and ssp, bias and mlp
#   failures  the failure table: bias, 2 x 2, kill -9 of worker1, ps1 or the coordinator as soon
#             as epoch 7 of 20 has been reported
#   curves    scripts/plot.sh over rating's user_time runs and bpr's dot run on user_time
#   k8s       the job of deploy/k8s/overlays/local on this host, 2 x 2: the test MAE that
#             scripts/k8s_e2e.sh expects of the pods
# DIR defaults to what scripts/find_data.sh finds, --out to out/readme_figures, --psrec to build/psrec
# (the defaults beside the source tree, given paths from the current directory). Every run's metrics
# file and log stay in --out. Exit 1 when a run fails, naming its log.
set -euo pipefail

# absolute PATH: PATH, from the caller's directory.
absolute() { if [[ $1 == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }

data=
out=
psrec=
sections=()
for arg in "$@"; do
  case "$arg" in
    --data=*) data=$(absolute "${arg#--data=}") ;;
    --out=*) out=$(absolute "${arg#--out=}") ;;
    --psrec=*) psrec=$(absolute "${arg#--psrec=}") ;;
    -h | --help) sed -n '2,22s/^# \{0,1\}//p' "$0"; exit 0 ;;
    few | recommend | rating | bpr | tuning | cluster | failures | curves | k8s) sections+=("$arg") ;;
    *) echo "readme_figures: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
[[ ${#sections[@]} -gt 0 ]] || sections=(few recommend rating bpr tuning cluster failures curves k8s)
cd "$(dirname "$0")/.."
[[ -n $data ]] || data=$(scripts/find_data.sh) || exit 2
out=${out:-out/readme_figures}
psrec=${psrec:-build/psrec}
[[ -f $data/ratings.csv ]] || { echo "readme_figures: no ratings.csv in $data" >&2; exit 2; }
bench=$(dirname "$psrec")/bench
mkdir -p "$out"

# run TAG ARGS...: psrec ARGS... with its stderr in OUT/TAG.log; fails naming the log.
run() {
  local tag=$1
  shift
  "$psrec" "$@" 2>"$out/$tag.log" || {
    echo "readme_figures: $tag failed; see $out/$tag.log" >&2
    tail -3 "$out/$tag.log" >&2
    exit 1
  }
}

# final TAG KEY...: the values under "final" in OUT/TAG.json, 4 decimals.
final() {
  local file=$out/$1.json
  shift
  python3 - "$file" "$@" <<'EOF'
import json, sys
final = json.load(open(sys.argv[1]))["final"]
print(" / ".join("%.4f" % final[key] for key in sys.argv[2:]))
EOF
}

train_checkpoint() {  # TAG FLAGS...: a 1 x 1 run that leaves its checkpoint in OUT/ck-TAG
  local tag=$1
  shift
  rm -rf "$out/ck-$tag" "$out/cluster-$tag"
  run "$tag" train --data="$data" --ps_shards=1 --workers=1 --out_dir="$out/cluster-$tag" \
    --checkpoint_dir="$out/ck-$tag" --metrics_out="$out/$tag.json" "$@" >/dev/null
}

bpr_flags=(--loss=bpr --negatives=16 --positive_min_rating=4 --dropout=0 --lr=0.01)

section_few() {
  echo "== few: model, all test ratings MAE / RMSE, few_ratings_eval's output"
  for model in dot bias mlp genre; do
    train_checkpoint "few-$model" --consistency=sync --model="$model" --split=user_time
    echo "$model: $(final "few-$model" test_mae test_rmse)"
    "$bench/few_ratings_eval" --ckpt="$out/ck-few-$model" 2>>"$out/few-$model.log"
  done
}

section_recommend() {
  echo "== recommend: user 1, bias, user_time"
  [[ -d $out/ck-few-bias ]] ||
    { echo "readme_figures: no $out/ck-few-bias: run the few section first" >&2; exit 1; }
  "$psrec" recommend --checkpoint="$out/ck-few-bias" --user=1 --k=10 2>>"$out/few-bias.log"
}

section_rating() {
  echo "== rating: split, model, final Recall@10 / NDCG@10 / coverage@10 and test MAE / RMSE"
  for split in user_time random; do
    for model in dot bias mlp genre; do
      run "rating-$split-$model" train --data="$data" --split="$split" --model="$model" \
        --metrics_out="$out/rating-$split-$model.json" >/dev/null
      echo "$split $model: $(final "rating-$split-$model" recall_at_10 ndcg_at_10 coverage_at_10)" \
        "MAE / RMSE $(final "rating-$split-$model" test_mae test_rmse)"
    done
    python3 - "$out/rating-$split-dot.json" "$split" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))["baseline"]["popularity"]
print("%s popularity: %.4f / %.4f / %.4f" % (sys.argv[2], p["recall_at_10"], p["ndcg_at_10"],
                                              p["coverage_at_10"]))
EOF
  done
}

section_bpr() {
  echo "== bpr: split, model, recommend_bench --ranking"
  for split in user_time random; do
    for model in dot bias mlp; do
      train_checkpoint "bpr-$split-$model" --model="$model" --split="$split" "${bpr_flags[@]}"
      echo "$split $model:"
      "$bench/recommend_bench" --ckpt="$out/ck-bpr-$split-$model" --ranking \
        2>>"$out/bpr-$split-$model.log" | grep -i "recall\|ndcg\|coverage"
    done
  done
}

section_tuning() {
  echo "== tuning: bias, user_time, --loss=bpr --dropout=0 --lr=0.01 and the flags named"
  local -a runs=(
    "--negatives=1" "--negatives=4" "--negatives=8" "--negatives=8 --positive_min_rating=4"
    "--negatives=16 --positive_min_rating=4" "--negatives=4 --dropout=0.6"
    "--negatives=4 --l2=3e-3" "--negatives=8 --positive_min_rating=4 --l2=1e-4"
    "--negatives=8 --positive_min_rating=4 --epochs=10" "--negatives=8 --dim=64")
  local i=0 flags
  for flags in "${runs[@]}"; do
    i=$((i + 1))
    # shellcheck disable=SC2086  # each entry is a list of flags
    run "tuning-$i" train --data="$data" --split=user_time --model=bias --loss=bpr --dropout=0 \
      --lr=0.01 $flags --metrics_out="$out/tuning-$i.json" >/dev/null
    echo "$flags: $(final "tuning-$i" recall_at_10 ndcg_at_10)"
  done
}

section_cluster() {
  echo "== cluster: 2 x 2, user_time, consistency, model, test MAE"
  for consistency in sync async ssp; do
    for model in bias mlp; do
      local tag=cluster-$consistency-$model
      run "$tag" train --data="$data" --split=user_time --model="$model" --ps_shards=2 \
        --workers=2 --consistency="$consistency" --out_dir="$out/cluster-$tag" \
        --metrics_out="$out/$tag.json" >/dev/null
      echo "$consistency $model: $(final "$tag" test_mae)"
    done
  done
}

# kill_after_epoch_7 LAUNCHER LOG CLUSTER_JSON ROLE: waits for the launcher's report of epoch 7 in
# LOG, then kills ROLE's process with SIGKILL.
kill_after_epoch_7() {
  local launcher=$1 log=$2 cluster_json=$3 role=$4 pid
  until grep -q "epoch 7/20 " "$log" 2>/dev/null; do
    kill -0 "$launcher" 2>/dev/null || return 0  # the job ended first: the caller reports it
    sleep 0.05
  done
  pid=$(python3 -c 'import json, sys
print(next(c["pid"] for c in json.load(open(sys.argv[1]))["processes"] if c["role"] == sys.argv[2]))' \
    "$cluster_json" "$role")
  kill -9 "$pid"
  echo "killed $role (pid $pid) after epoch 7 was reported" >>"$log.kills"
}

section_failures() {
  echo "== failures: run, final test MAE, what the log says of the loss"
  local role launcher
  for role in none worker1 ps1 coordinator; do
    local tag=failure-$role
    rm -rf "$out/cluster-$tag" "$out/$tag.log.kills"
    "$psrec" train --data="$data" --ps_shards=2 --workers=2 --model=bias --split=user_time \
      --checkpoint_every_secs=0 --worker_lease=3s --out_dir="$out/cluster-$tag" \
      --metrics_out="$out/$tag.json" >/dev/null 2>"$out/$tag.log" &
    launcher=$!
    [[ $role == none ]] ||
      kill_after_epoch_7 "$launcher" "$out/$tag.log" "$out/cluster-$tag/cluster.json" "$role"
    wait "$launcher" || { echo "readme_figures: $tag failed; see $out/$tag.log" >&2; exit 1; }
    [[ $role == none || -f $out/$tag.log.kills ]] ||
      { echo "readme_figures: $tag ended before epoch 7 was reported" >&2; exit 1; }
    echo "$role: $(final "$tag" test_mae)"
    grep -E "WARNING|W[0-9]{2}:|lease|rollback|rolls back|restart" "$out/$tag.log" |
      grep -v "started " | head -6 | sed "s/^/    /" || true
  done
}

section_curves() {
  echo "== curves: docs/img/learning_curves_user_time.png"
  # The legend names each run by its file: short names.
  local named=$out/curves model
  mkdir -p "$named"
  for model in dot bias mlp genre; do cp "$out/rating-user_time-$model.json" "$named/$model.json"; done
  cp "$out/bpr-user_time-dot.json" "$named/dot-bpr.json"
  scripts/plot.sh --out=docs/img/learning_curves_user_time.png \
    --title="ml-latest-small, user_time, 20 epochs: four rating models and dot with --loss=bpr" \
    "$named"/{dot,bias,mlp,genre,dot-bpr}.json
}

section_k8s() {
  echo "== k8s: deploy/k8s/overlays/local/job.textproto, 2 x 2 on this host, test MAE"
  run k8s-host train --data="$data" --ps_shards=2 --workers=2 \
    --config=deploy/k8s/overlays/local/job.textproto --out_dir="$out/cluster-k8s-host" \
    --metrics_out="$out/k8s-host.json" >/dev/null
  python3 -c 'import json, sys; print(repr(json.load(open(sys.argv[1]))["final"]["test_mae"]))' \
    "$out/k8s-host.json"
}

for section in "${sections[@]}"; do
  "section_$section"
done
