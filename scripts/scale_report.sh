#!/usr/bin/env bash
# Every run behind docs/scaling.md, then the merged csv files, the cost model's predictions and
# the plots in docs/scaling/. Needs root, like scripts/scale.sh; about 40 minutes on 2 cores.
#
#   scripts/scale_report.sh [PHASE...]    phases: sweep link mae real rerun merge (default: all);
#                                         real-again reruns REAL_AGAIN (8:4:async) of the real phase;
#                                         hotkey runs a few points before and after the dense row's
#                                         split, the before with HOTKEY_BEFORE's psrec (a checkout
#                                         from before it, built: HOTKEY_BEFORE=DIR)
#
# Runs go to out/scaling/PHASE/ (logs stay there); merge writes docs/scaling/{scaling,shards,
# hosts,epochs}.csv from whichever phases have results, then scale_model.py and scale_plots.py.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=out/scaling
DOCS=docs/scaling
# The configuration of every run (docs/scaling.md says why): 0.14 cores per process, so that the
# 13 processes of 8 workers x 4 servers ask for 1.82 of the 2 cores and --reserve may hold them;
# the mlp model with 512 hidden units and batches of 2048, so that a worker computes more per
# batch than a server spends on its keys.
COMMON=(--reserve --cpu=0.14 --model=mlp)
JOB=(-- --hidden=512 --batch_size=2048)
SYNTH=synth:1000000
phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(sweep link mae real rerun merge)

data_of() { echo "$OUT/sweep/data/synth-ml-25m-1000000-seed1"; }

# A run that fails (scale.sh exits 1) leaves its row and logs; the next phases still run, and the
# script exits 1 at the end.
failed=0
run() { "$@" || { echo "scale_report: failed: $*" >&2; failed=1; }; }
for phase in "${phases[@]}"; do
  case "$phase" in
    sweep)
      run scripts/scale.sh --sweep "${COMMON[@]}" --data="$SYNTH" --epochs=2 --out="$OUT/sweep" "${JOB[@]}" ;;
    link)
      for rate in 10mbit 30mbit 100mbit 1gbit; do
        run scripts/scale.sh --points=4:2:async --label="link$rate" --link="$rate" "${COMMON[@]}" \
          --data="$(data_of)" --epochs=1 --out="$OUT/link-$rate" "${JOB[@]}"
      done ;;
    mae)
      run scripts/scale.sh --points=1:1:async,4:2:async,8:4:async,4:2:sync,8:4:sync --label=mae \
        "${COMMON[@]}" --data="$(data_of)" --epochs=5 --out="$OUT/mae" "${JOB[@]}" ;;
    real)
      run scripts/scale.sh --points=1:1:async,4:2:async,8:4:async,1:1:sync,4:2:sync,8:4:sync \
        --label=mlsmall "${COMMON[@]}" --data=../shared/data/ml-latest-small --epochs=2 \
        --out="$OUT/real" "${JOB[@]}" ;;
    real-again)
      # A point of the real phase once more, when it failed there (docs/scaling.md: a server
      # crashed on shutdown once): REAL_AGAIN=W:S:C scripts/scale_report.sh real-again
      run scripts/scale.sh --points="${REAL_AGAIN:-8:4:async}" --label=mlsmall "${COMMON[@]}" \
        --data=../shared/data/ml-latest-small --epochs=2 --out="$OUT/real-again" "${JOB[@]}" ;;
    rerun)
      # The sweep's w8-s4-async again, with the samplers in the cluster's cpu cgroup (docs/scaling.md).
      run scripts/scale.sh --points=8:4:async --label=rerun "${COMMON[@]}" --data="$(data_of)" --epochs=2 \
        --out="$OUT/rerun" "${JOB[@]}" ;;
    hotkey)
      # docs/scaling.md's per-shard load before and after the dense row was split over the shards:
      # the same points, data and job with the one-row psrec, then with this one. No Recall@10 after
      # each epoch (--ranking_every=-1): at 0.14 cores it takes minutes, and the sweep had none.
      [ -x "${HOTKEY_BEFORE:-}/build/psrec" ] || {
        echo "scale_report: hotkey needs HOTKEY_BEFORE=DIR, a built checkout from before the split" >&2
        exit 2
      }
      run "$HOTKEY_BEFORE/scripts/scale.sh" --points=4:4:async,8:4:async --label=hotkey_before \
        "${COMMON[@]}" --data="$SYNTH" --epochs=2 --out="$OUT/hotkey-before" "${JOB[@]}" --ranking_every=-1
      run scripts/scale.sh --points=4:4:async,8:4:async --label=hotkey_after "${COMMON[@]}" \
        --data="$OUT/hotkey-before/data/synth-ml-25m-1000000-seed1" --epochs=2 --out="$OUT/hotkey-after" \
        "${JOB[@]}" --ranking_every=-1 ;;
    merge)
      mkdir -p "$DOCS"
      for f in scaling shards hosts epochs; do
        first=1
        for d in "$OUT"/sweep "$OUT"/link-* "$OUT"/mae "$OUT"/real "$OUT"/real-again "$OUT"/rerun \
                 "$OUT"/hotkey-*; do
          [ -f "$d/$f.csv" ] || continue
          if [ "$first" = 1 ]; then cat "$d/$f.csv"; first=0; else tail -n +2 "$d/$f.csv"; fi
        done >"$DOCS/$f.csv"
      done
      /usr/bin/python3 scripts/scale_model.py "$DOCS/scaling.csv" --dense_floats=17409 --out="$DOCS/scaling.csv" \
        --table >"$DOCS/model_table.md"
      /usr/bin/python3 scripts/scale_model.py "$DOCS/scaling.csv" --dense_floats=17409 --project \
        >"$DOCS/projection.md"
      /usr/bin/python3 scripts/scale_plots.py "$DOCS"
      /usr/bin/python3 scripts/scale_tables.py "$DOCS" 0.60 >"$DOCS/tables.md" ;;
    *) echo "scale_report: unknown phase '$phase' (sweep link mae real real-again rerun hotkey merge)" >&2
       exit 2 ;;
  esac
done
exit "$failed"
