#!/usr/bin/env bash
# scripts/k8s_validate.sh passes on deploy/k8s as committed, and each of its checks catches a mistake
# planted in a copy of deploy/k8s, with a message that names it. Run by ctest (tests/CMakeLists.txt).
#
#   tests/deploy/k8s_checks_test.sh [PSREC_BINARY]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
psrec=$(realpath "${1:-$repo/build/psrec}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

"$repo/scripts/deploy_tools.sh"

validate() {
  "$repo/scripts/k8s_validate.sh" --psrec="$psrec" --k8s-dir="$tmp/k8s" >"$tmp/out" 2>&1
}

# check NAME EXPECTED-REGEX EDIT-FUNCTION: copy deploy/k8s, plant the mistake, expect validate to fail
# with a line matching EXPECTED-REGEX.
check() {
  local name=$1 expect=$2 edit=$3
  rm -rf "$tmp/k8s"
  cp -r "$repo/deploy/k8s" "$tmp/k8s"
  (cd "$tmp/k8s" && "$edit")
  if validate; then
    echo "FAIL $name: k8s_validate passed with the mistake planted"
    failed=$((failed + 1))
  elif grep -Eq -- "$expect" "$tmp/out"; then
    echo "ok   $name: $(grep -Em1 -- "$expect" "$tmp/out")"
    passed=$((passed + 1))
  else
    echo "FAIL $name: k8s_validate failed, but no line matches /$expect/:"
    sed 's/^/    /' "$tmp/out"
    failed=$((failed + 1))
  fi
}

# Edits one line that must be there, so that a changed manifest cannot make a case plant nothing.
edit() {
  local file=$1 script=$2
  cp "$file" "$file.orig"
  sed -i -e "$script" "$file"
  if cmp -s "$file" "$file.orig"; then
    echo "FAIL: sed '$script' changed nothing in $file; the test is out of date" >&2
    exit 1
  fi
  rm "$file.orig"
}

rm -rf "$tmp/k8s"
cp -r "$repo/deploy/k8s" "$tmp/k8s"
if validate; then
  echo "ok   as committed: $(tail -n1 "$tmp/out")"
  passed=$((passed + 1))
else
  echo "FAIL as committed: k8s_validate fails on deploy/k8s:"
  sed 's/^/    /' "$tmp/out"
  failed=$((failed + 1))
fi

# Project checks.
replicas() { edit overlays/ml-25m/kustomization.yaml 's/count: 4/count: 5/'; }
check replicas 'StatefulSet/psrec-ps: replicas 5 differs from num_shards 4' replicas
num_workers() { edit overlays/local/job.textproto 's/^num_workers: 2/num_workers: 3/'; }
check num_workers 'Job/psrec-workers: parallelism 2 differs from num_workers 3' num_workers
completions() { edit overlays/ml-25m/sizes.yaml 's/completions: 8/completions: 7/'; }
check completions 'Job/psrec-workers: completions 7 differs from num_workers 8' completions
not_indexed() { edit base/workers.yaml '/completionMode: Indexed/d'; }
check not_indexed 'workers must be an Indexed Job' not_indexed
ps_list() { edit overlays/ml-25m/sizes.yaml 's/,psrec-ps-3.psrec-ps:7000//'; }
check ps_list 'should name the 4 servers in shard order' ps_list
image() { edit base/workers.yaml 's/image: psrec$/image: psrec-worker:1/'; }
check image 'more than one image: .*psrec-worker:1' image
unknown_flag() { edit base/workers.yaml 's/- --coordinator=/- --no_such_flag=1\n            &/'; }
check unknown_flag '--no_such_flag is not a flag of psrec worker' unknown_flag
role_flag() { edit base/workers.yaml 's/- --coordinator=/- --shard=0\n            &/'; }
check role_flag '--shard is not a flag of psrec worker' role_flag
stale_pending() { echo '--port ps  # psrec ps has it already' >>pending-flags.txt; }
check stale_pending 'psrec ps --help now lists --port: remove it' stale_pending
# shellcheck disable=SC2016  # $(PSREC_SHARD) is Kubernetes' syntax, not the shell's
undefined_var() { edit base/ps.yaml 's/--shard=\$(PSREC_SHARD)/--shard=$(PSREC_SHRAD)/'; }
check undefined_var 'uses \$\(PSREC_SHRAD\), which the container does not define' undefined_var
service() { edit base/coordinator.yaml '0,/app.kubernetes.io\/name: psrec-coordinator/s//app.kubernetes.io\/name: psrec-coord/'; }
check service 'Service/psrec-coordinator: selector .* selects no pod' service
target_port() { edit base/ps.yaml 's/targetPort: grpc/targetPort: rpc/'; }
check target_port 'Service/psrec-ps: port grpc targets rpc' target_port
secret() { edit base/workers.yaml 's/secretName: psrec-credentials/secretName: psrec-credential/'; }
check secret 'volume credentials names Secret/psrec-credential,' secret
config_path() { edit base/workers.yaml 's|--config=/etc/psrec/job/job.textproto|--config=/etc/psrec/job/job.txt|'; }
check config_path '--config=/etc/psrec/job/job.txt is not a key of a ConfigMap' config_path

probe_port() { edit base/ps.yaml 's/grpc: {port: 8081, service: readiness}/grpc: {port: 8082, service: readiness}/'; }
check probe_port 'StatefulSet/psrec-ps container ps: readinessProbe asks port 8082, but --health_port=8081' probe_port
scrape_port() { edit base/workers.yaml 's/prometheus.io\/port: "9090"/prometheus.io\/port: "9091"/'; }
check scrape_port 'Job/psrec-workers container worker: --metrics_port=9090, but .* prometheus.io/port 9091' scrape_port

# The schema and the strict field check.
unknown_field() { edit base/ps.yaml 's/^  podManagementPolicy: Parallel/&\n  podManagmentPolicy: Parallel/'; }
check unknown_field 'StatefulSet/psrec-ps: unknown field spec.podManagmentPolicy' unknown_field
nested_field() { edit base/workers.yaml 's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/'; }
check nested_field 'unknown field spec.template.spec.containers\[0\].securityContext.readOnlyRootFileSystem' nested_field
wrong_type() { edit base/coordinator.yaml 's/terminationGracePeriodSeconds: 60/terminationGracePeriodSeconds: sixty/'; }
check wrong_type 'Job/psrec-coordinator: schema: /spec/template/spec/terminationGracePeriodSeconds must be integer' wrong_type

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
