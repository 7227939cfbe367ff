#!/usr/bin/env bash
# End to end without a cluster: renders deploy/k8s/overlays/local and runs every pod of it as a podman
# container the way a cluster would (deploy/tools/e2e.mjs: StatefulSet and Job controllers, the
# kubelet's env, $(VAR) expansion, mounts, security context, limits and restart policies), on an
# internal network whose pods' DNS names a cluster DNS of the run's own serves (deploy/tools/dns.mjs),
# with fresh credentials (deploy/make_credentials.sh) in the psrec-credentials Secret and
# ml-latest-small as the movielens-data volume. Passes when every Job completes and the final test MAE
# is within 0.01 of the expected value.
#
#   scripts/k8s_e2e.sh [--data=DIR] [--no-build | --binary=PATH] [--keep] [--timeout=SECONDS]
#                      [--scenario=clean|kill-ps|kill-coord]
#
#   --data=DIR     the movielens-data volume's content: a directory holding ml-latest-small/
#                  (default: data/, else ../shared/data); mounted read-only, never copied. Where
#                  neither has it, psrec synth makes a set of its size, and the expected MAE is
#                  the host's run of the same job on it
#   --no-build     use the image if it exists instead of running scripts/build_image.sh
#   --binary=PATH  build the image around this psrec binary (scripts/build_image.sh --binary): what CI
#                  does, after its own build
#   --keep         keep the work directory (rendered YAML, pod logs) and print where it is
#   --scenario=S   one or more, comma-separated, run one after the other on the same image
#                  (what CI runs: --binary=build/psrec --scenario=clean,kill-ps,kill-coord):
#                  clean       the job as is
#                  kill-ps     SIGKILL to psrec-ps-1's container after epoch 3: restarted by the
#                              StatefulSet at a new address under the same name, the job rolls
#                              back to its last checkpoint
#                  kill-coord  SIGKILL to the coordinator's container after epoch 3: the Job makes a
#                              new pod (backoffLimit), which resumes by itself (--auto_resume),
#                              and the live servers and workers rejoin it
#
# Everything it makes (containers, volumes, network) is labelled psrec-e2e=<run> and removed on exit,
# also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# test MAE of the local overlay's job (MLP, user_time, 2 servers x 2 workers, sync), measured with
# `psrec train --ps_shards=2 --workers=2 --config=deploy/k8s/overlays/local/job.textproto`.
expected_mae=0.6794
tolerance=0.01

overlay=deploy/k8s/overlays/local
data=
build=1
binary=
keep=0
timeout=900
scenario=clean
log() { echo "k8s_e2e: $*" >&2; }
for arg in "$@"; do
  case "$arg" in
    --data=*) data=${arg#--data=} ;;
    --no-build) build=0 ;;
    --binary=*) binary=${arg#--binary=} ;;
    --keep) keep=1 ;;
    --timeout=*) timeout=${arg#--timeout=} ;;
    --scenario=*) scenario=${arg#--scenario=} ;;
    -h|--help) sed -n '2,/^# Everything it makes/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) log "unknown argument $arg (see --help)"; exit 2 ;;
  esac
done

if [ -z "$data" ]; then
  for d in data ../shared/data; do
    if [ -f "$d/ml-latest-small/ratings.csv" ]; then data=$d; break; fi
  done
fi
if [ -n "$data" ] && [ ! -f "$data/ml-latest-small/ratings.csv" ]; then
  log "no ml-latest-small/ratings.csv under --data=$data"
  exit 1
fi
[ -z "$data" ] || data=$(cd "$data" && pwd)

IFS=, read -r -a scenarios <<<"$scenario"
for sc in "${scenarios[@]}"; do
  case "$sc" in clean|kill-ps|kill-coord) ;; *) log "--scenario: $sc is not clean, kill-ps or kill-coord"; exit 2 ;; esac
done
start=$SECONDS
run=e2e$$
work=$(mktemp -d "${TMPDIR:-/tmp}/psrec-k8s-e2e.XXXXXX")
cleanup() {
  local status=$?
  # e2e.mjs removes what it made; this catches what it could not (killed before its own cleanup).
  if command -v podman >/dev/null; then
    local ids vols sc
    for sc in "${scenarios[@]}"; do
      mapfile -t ids < <(podman ps -aq --filter "label=psrec-e2e=$run-$sc" 2>/dev/null || true)
      [ ${#ids[@]} -eq 0 ] || podman rm -f -t 0 "${ids[@]}" >/dev/null 2>&1 || true
      mapfile -t vols < <(podman volume ls -q --filter "label=psrec-e2e=$run-$sc" 2>/dev/null || true)
      [ ${#vols[@]} -eq 0 ] || podman volume rm -f "${vols[@]}" >/dev/null 2>&1 || true
      podman network rm -f "psrec-e2e-$run-$sc" >/dev/null 2>&1 || true
    done
  fi
  if [ "$keep" = 1 ]; then
    log "kept $work (rendered.yaml, logs/)"
  else
    rm -rf "$work"
  fi
  if [ -n "$gen" ]; then
    rm -rf "$gen"
  fi
  exit $status
}
gen=
trap cleanup EXIT
trap 'exit 130' INT TERM

# Without the real ratings (a machine that has not fetched them, and cannot), a MovieLens-shaped set of
# ml-latest-small's size from psrec synth stands in, and the expected MAE is that of the same job run
# on the host by the psrec the image is built around: the pods must reproduce it.
if [ -z "$data" ]; then
  host=${binary:-build/psrec}
  if [ ! -x "$host" ]; then
    log "no ml-latest-small/ratings.csv under data/ or ../shared/data, and no built psrec to generate a stand-in (scripts/build.sh, or --data=DIR)"
    exit 1
  fi
  gen=$(mktemp -d "${TMPDIR:-/tmp}/psrec-k8s-e2e-data.XXXXXX")
  "$host" synth --ratings=100836 --users=610 --movies=9742 --out="$gen/ml-latest-small" >/dev/null 2>&1 ||
    { log "psrec synth into $gen failed"; exit 1; }
  chmod -R a+rX "$gen"  # the pods run as uid 10001
  expected_mae=$("$host" train --ps_shards=2 --workers=2 --config="$overlay/job.textproto" \
    --data="$gen/ml-latest-small" --out_dir="$gen/host" 2>/dev/null |
    sed -n 's/.*test_mae=\([0-9.]*\).*/\1/p')
  [ -n "$expected_mae" ] || { log "the host's run of the job on the generated set failed"; exit 1; }
  log "no ml-latest-small here: a generated MovieLens-shaped set of its size stands in; the host's run of the same job gave test MAE $expected_mae"
  data=$gen
fi

command -v kubectl >/dev/null || { log "kubectl not found (it renders the overlay: kubectl kustomize)"; exit 1; }
kubectl kustomize "$overlay" >"$work/rendered.yaml"
image=$(sed -n 's/^ *image: *//p' "$work/rendered.yaml" | sort -u)
[ "$(printf '%s\n' "$image" | wc -l)" = 1 ] || { log "$overlay uses more than one image: $image"; exit 1; }

if [ "$build" = 0 ] && ! command -v podman >/dev/null; then
  log "podman is not installed; run without --no-build (scripts/build_image.sh installs it)"
  exit 1
fi
for tool in nsenter catatonit; do  # the cluster DNS runs in a paused container's network namespace
  command -v "$tool" >/dev/null || [ "$build" = 1 ] ||
    { log "$tool not found; run without --no-build (scripts/build_image.sh installs it)"; exit 1; }
done
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/deploy/podman/containers.conf}
if [ "$build" = 1 ] || ! podman image exists "$image"; then
  build_start=$SECONDS
  scripts/build_image.sh --tag="$image" ${binary:+--binary="$binary"} >/dev/null
  log "image $image ready in $((SECONDS - build_start))s"
fi
scripts/deploy_tools.sh
deploy/make_credentials.sh "$work/credentials" default 2 2>/dev/null
mkdir -p "$work/secret"
cp "$work/credentials"/{token,tls.crt,tls.key,ca.crt} "$work/secret/"

for sc in "${scenarios[@]}"; do
  run_start=$SECONDS
  log "scenario $sc"
  node deploy/tools/e2e.mjs --rendered="$work/rendered.yaml" --run="$run-$sc" --workdir="$work/$sc" \
    --pending=deploy/k8s/pending-flags.txt --secret=psrec-credentials="$work/secret" \
    --claim=movielens-data="$data" --timeout="$timeout" --scenario="$sc" \
    --expect-mae="$expected_mae" --tolerance="$tolerance"
  log "passed $sc in $((SECONDS - run_start))s"
done
log "passed: ${scenarios[*]}, total $((SECONDS - start))s"
