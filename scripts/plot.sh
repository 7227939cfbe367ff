#!/usr/bin/env bash
# Learning curves from `psrec train --metrics_out` files: train loss, test MAE and (when the files
# have it) Recall@10 per epoch, one line per run, drawn by gnuplot into a PNG.
#
#   scripts/plot.sh [--out=FILE.png] [--title=TEXT] METRICS.json [METRICS.json ...]
#
# Each run is labelled with its model and split from the file's "config", and the file's name.
# Needs gnuplot (Debian: gnuplot-nox) and jq; installs them with apt-get when missing and root.
# Exit 2 for bad arguments, 1 for a file that is not a metrics file.
set -euo pipefail

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

die_usage() { echo "plot.sh: $*; see scripts/plot.sh --help" >&2; exit 2; }
die() { echo "plot.sh: $*" >&2; exit 1; }

out="learning_curves.png"
title="psrec learning curves"
files=()
for arg in "$@"; do
  case "$arg" in
    --help|-h) usage; exit 0 ;;
    --out=*) out="${arg#--out=}" ;;
    --title=*) title="${arg#--title=}" ;;
    --*) die_usage "unknown flag ${arg%%=*}" ;;
    *) files+=("$arg") ;;
  esac
done
[[ ${#files[@]} -gt 0 ]] || die_usage "no metrics file given"
[[ "$out" == *.png ]] || die_usage "--out=$out does not end in .png"

need=()
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v jq >/dev/null || need+=(jq)
if [[ ${#need[@]} -gt 0 ]]; then
  [[ $(id -u) -eq 0 ]] || die "missing ${need[*]}: run apt-get install ${need[*]} as root"
  echo "plot.sh: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; } ||
    die "apt-get install ${need[*]} failed"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One data file per run: epoch, train loss, test MAE, Recall@10 (NaN where a file has none).
labels=()
loss=""
has_recall=0
for i in "${!files[@]}"; do
  f="${files[$i]}"
  [[ -r "$f" ]] || die "$f: cannot read"
  jq -e '.epochs | type == "array" and length > 0' "$f" >/dev/null 2>&1 ||
    die "$f: not a psrec metrics file (no \"epochs\" array with an epoch in it)"
  jq -r '.epochs[] | [.epoch, .train_loss, .test_mae, (.recall_at_10 // "NaN")] | @tsv' "$f" \
    >"$work/run$i.tsv"
  if jq -e 'any(.epochs[]; has("recall_at_10"))' "$f" >/dev/null; then has_recall=1; fi
  model=$(jq -r '.config.model // "?" | ascii_downcase' "$f")
  split=$(jq -r '.config.split // "?" | ascii_downcase' "$f")
  this_loss=$(jq -r '.config.loss // "MAE"' "$f")
  if [[ -z "$loss" ]]; then loss="$this_loss"; elif [[ "$loss" != "$this_loss" ]]; then loss="mixed"; fi
  labels+=("$model, $split ($(basename "$f"))")
done

case "$loss" in
  MAE) loss_label="train loss: mean |error| (stars)" ;;
  MSE) loss_label="train loss: mean squared error (stars^2)" ;;
  HUBER) loss_label="train loss: Huber, delta 1 (stars)" ;;
  BPR) loss_label="train loss: BPR, -log sigmoid(s+ - s-)" ;;
  *) loss_label="train loss (each run by its own loss)" ;;
esac

panels=$((2 + has_recall))
{
  echo "set terminal pngcairo noenhanced size $((560 * panels)),460 font 'DejaVu Sans,10'"
  echo "set output '$out'"
  echo "set datafile separator '\t'"
  echo "set datafile missing 'NaN'"
  echo "set multiplot layout 1,$panels title '${title//\'/\'\'}' font ',13'"
  echo "set grid"
  echo "set xlabel 'epoch'"
  echo "set key top right"
  echo "set style data linespoints"
  plot_panel() {  # column, y label, key position
    echo "set ylabel '${2//\'/\'\'}'"
    echo "set key $3"
    local sep="plot "
    for i in "${!files[@]}"; do
      printf "%s'%s' using 1:%s title '%s' lw 2 pt 7 ps 0.6" "$sep" "$work/run$i.tsv" "$1" \
        "${labels[$i]//\'/\'\'}"
      sep=", "
    done
    echo
  }
  plot_panel 2 "$loss_label" "top right"
  plot_panel 3 "test MAE (stars)" "top right"
  # Recall rises for some runs and falls for others: headroom above the lines keeps the key off them.
  if [[ $has_recall -eq 1 ]]; then
    echo "set offsets 0, 0, graph 0.6, 0"
    plot_panel 4 "test Recall@10 (fraction of relevant movies)" "top right"
  fi
  echo "unset multiplot"
} >"$work/plot.gp"

gnuplot "$work/plot.gp" 2>"$work/gnuplot.err" || { cat "$work/gnuplot.err" >&2; die "gnuplot failed"; }
echo "plot.sh: wrote $out (${#files[@]} runs)" >&2
