#!/usr/bin/env bash
# Reproduces what scripts/k8s_e2e.sh's kill-ps saw from podman's DNS (aardvark-dns), without psrec:
# on an internal podman network, three containers (client, victim, other), each with a network alias
# (<name>.svc); from the client's network namespace deploy/tools/dns_probe.mjs asks the network's DNS
# server for victim.svc and other.svc every 100 ms, while the victim is killed (SIGKILL) and started
# again after 10 s, --cycles times. Prints, per cycle, the longest stretch of unanswered queries, and
# keeps the probe's log, aardvark-dns's pid and its socket's receive queue (ss) each 0.5 s.
#
#   scripts/k8s_dns_repro.sh [--cycles=N] [--image=IMAGE] [--dns=aardvark|harness] [--out=DIR]
#                            [--probe=victim.svc,other.svc]
#
#   --dns=aardvark  the network's own DNS (podman's default: aardvark-dns on the gateway)
#   --dns=harness   the network made with --disable-dns and the names served by deploy/tools/dns.mjs,
#                   as scripts/k8s_e2e.sh does now
#   --probe=NAMES   the names asked for, comma-separated (other.svc alone: a name that never moves)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cycles=10
image=localhost/psrec:dev
dns=aardvark
out=
probe=victim.svc,other.svc
for arg in "$@"; do
  [[ $arg =~ ^--(cycles|image|dns|out|probe)=(.*)$ ]] ||
    { echo "k8s_dns_repro: unknown argument $arg" >&2; exit 2; }
  printf -v "${BASH_REMATCH[1]}" %s "${BASH_REMATCH[2]}"
done
case "$dns" in aardvark|harness) ;; *) echo "k8s_dns_repro: --dns is aardvark or harness, not $dns" >&2; exit 2 ;; esac
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/deploy/podman/containers.conf}
out=${out:-$(mktemp -d "${TMPDIR:-/tmp}/psrec-dns-repro.XXXXXX")}
mkdir -p "$out"
net=psrec-dnsrepro-$$
label=psrec-dnsrepro=$$
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  mapfile -t ids < <(podman ps -aq --filter "label=$label")
  [ ${#ids[@]} -eq 0 ] || podman rm -f -t 0 "${ids[@]}" >/dev/null 2>&1 || true
  podman network rm -f "$net" >/dev/null 2>&1 || true
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N | cut -c1-14; }
run_box() {  # name [podman run args]: a container that only sleeps, with the alias <name>.svc
  local name=$1; shift
  podman run -d --label "$label" --name "$net-$name" --network "$net" --network-alias "$name.svc" \
    -v /usr/bin/sleep:/sleep:ro --entrypoint /sleep "$@" "$image" infinity >/dev/null
}
if [ "$dns" = harness ]; then
  podman network create --internal --disable-dns --label "$label" "$net" >/dev/null
else
  podman network create --internal --label "$label" "$net" >/dev/null
fi
gateway=$(podman network inspect -f '{{range .Subnets}}{{.Gateway}}{{end}}' "$net")
server=$gateway
run_box client
if [ "$dns" = harness ]; then
  run_box dns
  # Given "POD ADDRESS NAME..." lines on stdin (deploy/tools/dns.mjs), as k8s_e2e.sh does.
  coproc DNSFEED { nsenter --net="/proc/$(podman inspect -f '{{.State.Pid}}' "$net-dns")/ns/net" \
    node deploy/tools/dns.mjs --stdin >"$out/dns.log" 2>&1; }
  pids+=("$DNSFEED_PID")
  server=$(podman inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$net-dns")
fi
publish() {  # name: tells the harness's DNS server the container's current address (or none)
  [ "$dns" = harness ] || return 0
  local ip
  ip=$(podman inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$net-$1")
  echo "$1 ${ip:--} $1.svc" >&"${DNSFEED[1]}"
}
run_box victim; publish victim
run_box other; publish other
client=$(podman inspect -f '{{.State.Pid}}' "$net-client")
nsenter --net="/proc/$client/ns/net" node deploy/tools/dns_probe.mjs --server="$server" --every=100 \
  ${probe//,/ } >"$out/probe.log" 2>&1 &
pids+=($!)
(while :; do
   a=$(cat /run/containers/networks/aardvark-dns/aardvark.pid 2>/dev/null || echo -)
   echo "$(now) aardvark=$a $(ss -uanH "src $server:53" 2>/dev/null | awk '{print "recvq=" $2}' | tr '\n' ' ')"
   sleep 0.5
 done >"$out/monitor.log") &
pids+=($!)
sleep 2
: >"$out/events.log"
for i in $(seq "$cycles"); do
  echo "$(now) cycle $i kill" >>"$out/events.log"
  podman kill -s KILL "$net-victim" >/dev/null
  podman wait "$net-victim" >/dev/null 2>&1 || true
  publish victim
  sleep 10
  echo "$(now) cycle $i start" >>"$out/events.log"
  podman start "$net-victim" >/dev/null
  publish victim
  echo "$(now) cycle $i started" >>"$out/events.log"
  sleep 10
done
sleep 1.2
# Per cycle (from one kill to the next), by the time each query was sent: how many went unanswered,
# and the longest stretch in which none was answered (either name).
{ awk '{ printf "%.3f q %s\n", $1 - ($3 == "no-answer" ? 1.0 : $4 / 1000), $3 }' "$out/probe.log"
  awk '$4 == "kill" { print $1, "kill", $3 }' "$out/events.log"; } | sort -n | awk '
  function report() {
    if (c != "") printf "cycle %s: %d of %d queries unanswered, longest silence %.1fs%s\n", c, lost, total,
      longest, (longest > 0 ? sprintf(" from %.1fs after the kill", from - kt) : "")
  }
  $2 == "kill" { report(); c = $3; kt = $1; lost = total = longest = 0; since = ""; next }
  c == "" { next }
  $3 == "no-answer" { lost++; total++; if (since == "") since = $1; if ($1 - since + 0.1 > longest) { longest = $1 - since + 0.1; from = since }; next }
  { total++; since = "" }
  END { report() }' | tee "$out/summary.txt"
echo "k8s_dns_repro: logs in $out" >&2
