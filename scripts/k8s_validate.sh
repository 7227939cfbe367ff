#!/usr/bin/env bash
# Offline checks of deploy/k8s, no cluster needed: renders every overlay (deploy/k8s/overlays/*) and
# deploy/k8s/data with `kubectl kustomize`, then deploy/tools/validate.mjs checks every object against
# the Kubernetes API schema, rejects fields the API does not know, and runs the project's own checks
# (deploy/tools/checks.mjs: replicas vs num_shards, workers vs num_workers, the coordinator's --ps list,
# one image tag, every argument a flag of `psrec ROLE --help` or of deploy/k8s/pending-flags.txt,
# $(VAR)s defined, probes and scrape annotations on the --health_port and --metrics_port, every
# Service selecting a pod, every referenced ConfigMap, Secret and PVC present).
#
#   scripts/k8s_validate.sh [--psrec=build/psrec] [--k8s-dir=deploy/k8s] [--out=DIR]
#
# --out keeps the rendered YAML (one file per kustomization). Installs the npm tooling of
# deploy/tools (npm ci) when it is missing or older than its package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

psrec=build/psrec
k8s=deploy/k8s
out=
for arg in "$@"; do
  case "$arg" in
    --psrec=*) psrec=${arg#--psrec=} ;;
    --k8s-dir=*) k8s=${arg#--k8s-dir=} ;;
    --out=*) out=${arg#--out=} ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "k8s_validate: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

# Objects the manifests use but leave to the operator (deploy/README.md): the credentials and the
# ratings volume (deploy/k8s/data).
external=Secret/psrec-credentials,PersistentVolumeClaim/movielens-data

start=$SECONDS
[ -x "$psrec" ] || { echo "k8s_validate: $psrec is not an executable; build it (scripts/build.sh) or pass --psrec" >&2; exit 1; }
if ! command -v kubectl >/dev/null; then
  echo "k8s_validate: kubectl not found; it renders the kustomizations (kubectl kustomize, kustomize v5)." >&2
  echo "  It comes with this project's machines; elsewhere install kubectl 1.27 or later." >&2
  exit 1
fi
scripts/deploy_tools.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -n "$out" ] || out=$tmp/rendered
mkdir -p "$out"

renders=()
for dir in "$k8s"/overlays/*/ "$k8s"/data/; do
  dir=${dir%/}
  [ -f "$dir/kustomization.yaml" ] || continue
  name=${dir#"$k8s"/}
  file="$out/${name//\//_}.yaml"
  if ! kubectl kustomize "$dir" >"$file" 2>"$tmp/err"; then
    echo "k8s_validate: $dir does not render:" >&2
    cat "$tmp/err" >&2
    exit 1
  fi
  renders+=("$name=$file")
done
[ ${#renders[@]} -gt 0 ] || { echo "k8s_validate: no kustomization under $k8s/overlays" >&2; exit 1; }

status=0
node "$root/deploy/tools/validate.mjs" --psrec="$psrec" --pending="$k8s/pending-flags.txt" \
  --external="$external" "${renders[@]}" || status=$?
echo "k8s_validate: ${#renders[@]} kustomizations in $((SECONDS - start))s: $([ $status -eq 0 ] && echo ok || echo FAILED)"
exit $status
