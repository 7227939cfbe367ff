#!/usr/bin/env bash
# A psrec cluster in a box (issue 11): every ps, worker and coordinator runs in its own network
# namespace, on a rate-capped veth link to a bridge, in a cgroup that holds it to a fixed CPU budget.
# Each run appends a row to OUT/scaling.csv (and rows to OUT/shards.csv, OUT/hosts.csv).
# docs/scaling-harness.md says how it works, what it measures and its limits. Needs root.
#
# Usage: scripts/scale.sh [flags] [-- extra job flags given to every role, e.g. --batch_size=1024]
#   --workers=N --servers=M --consistency=sync|async|ssp   one run (defaults 1, 1, sync)
#   --sweep           workers {1,2,4,8} x servers {1,2,4} x {async,sync} instead of one run
#   --points=LIST     these runs instead of one: W:S:CONSISTENCY items, comma-separated (4:2:async,8:4:async)
#   --label=TEXT      appended to each run's name (wW-sS-C-TEXT) and written in the label column
#   --reserve         give the cluster's cgroups the most cpu.shares (262144) so that, on a busy
#                     machine, every host gets its whole budget: refused when a run's caps add up to
#                     more than the machine's cores less 0.1
#   --quick           CI's proof that the harness works, < 3 min: 1w1s sync, 2w1s sync, 2w2s async
#                     on a small generated set; fails if a run fails or a number is missing
#   --link=RATE       each host's link, each way: tc rate in bit, kbit, mbit or gbit (1gbit)
#   --cpu=CORES       each process's CPU budget in cores, via cfs quota (0.15)
#   --ps_cpu=CORES    the servers' budget, if it is to differ from --cpu (to find a worker-bound point)
#   --cpu_period_us=N the cfs period the quota is given per (100000, the kernel's default)
#   --data=SOURCE     DIR holding ratings.csv / ratings.dat / u.data, gen[:RATINGS] for a set from
#                     scale_tools.py gen (default gen:200000; --quick gen:100000), or
#                     synth:RATINGS[:LIKE] for `psrec synth --like=LIKE` (ml-25m) scaled down to
#                     RATINGS (users and movies scaled as psrec synth does without --like).
#                     The data is prepared (psrec prepare) into OUT/data/shares/ before the runs
#   --epochs=E --model=dot|bias|mlp --split=random|user_time|seed_time   (3, bias, random)
#   --out=DIR         results and per-run logs (out/scale). DIR and --data's DIR are relative to
#                     the current directory
#   --timeout=SECS    per run, then it is failed (900; --quick 100)
#   --check-caps      instead of training: measure the link cap with iperf3 between two namespaces and
#                     the CPU cap with a busy loop, at --link and --cpu
#   --clean           only remove what an earlier, killed run left behind
set -euo pipefail
CALLER_PWD=$PWD   # --data and --out are relative to where the script was called from
cd "$(dirname "$0")/.."
ROOT=$PWD

# Everything this script makes is named with this prefix: namespaces psrec-scale-*, cgroups
# psrec-scale/ under the cpu and cpuacct hierarchies, the lock /run/psrec-scale.lock. Nothing else
# on the machine is touched.
PREFIX=psrec-scale
BR_NS=$PREFIX-br
SUBNET=10.77.0          # the bridge is .1, the coordinator .10, ps k .(20+k), worker k .(100+k)
PS_PORT=7000
COORD_PORT=7070
PY=/usr/bin/python3     # Debian's, where python3-grpcio is installed
TOOLS=$ROOT/scripts/scale_tools.py
PSREC=$ROOT/build/psrec

workers=1 servers=1 consistency=sync link=1gbit cpu=0.15 ps_cpu="" period_us=100000 data="" epochs=3 model=bias split=random
out=out/scale timeout="" mode=one points="" label="" reserve=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --workers=*) workers=${1#*=} ;;
    --servers=*) servers=${1#*=} ;;
    --consistency=*) consistency=${1#*=} ;;
    --link=*) link=${1#*=} ;;
    --cpu=*) cpu=${1#*=} ;;
    --cpu_period_us=*) period_us=${1#*=} ;;
    --ps_cpu=*) ps_cpu=${1#*=} ;;
    --data=*) data=${1#*=} ;;
    --epochs=*) epochs=${1#*=} ;;
    --model=*) model=${1#*=} ;;
    --split=*) split=${1#*=} ;;
    --out=*) out=${1#*=} ;;
    --timeout=*) timeout=${1#*=} ;;
    --sweep) mode=sweep ;;
    --points=*) mode=points; points=${1#*=} ;;
    --label=*) label=${1#*=} ;;
    --reserve) reserve=1 ;;
    --quick) mode=quick ;;
    --check-caps) mode=check ;;
    --clean) mode=clean ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "scale: unknown flag '$1'; see scripts/scale.sh --help" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "scale: $*" >&2; exit 1; }
usage_error() { echo "scale: $*" >&2; exit 2; }
log() { echo "scale: $*" >&2; }

[[ $workers =~ ^[1-9][0-9]*$ && $workers -le 64 ]] || usage_error "--workers=$workers: give 1..64"
[[ $servers =~ ^[1-9][0-9]*$ && $servers -le 16 ]] || usage_error "--servers=$servers: give 1..16"
[[ $epochs =~ ^[1-9][0-9]*$ ]] || usage_error "--epochs=$epochs: give a whole number >= 1"
case "$consistency" in sync|async|ssp) ;; *) usage_error "--consistency=$consistency: sync, async or ssp" ;; esac
[[ -z $label || $label =~ ^[A-Za-z0-9_.]+$ ]] || usage_error "--label=$label: letters, digits, _ and . only"
if [ "$mode" = points ]; then
  for p in ${points//,/ }; do
    [[ $p =~ ^[1-9][0-9]*:[1-9][0-9]*:(sync|async|ssp)$ ]] ||
      usage_error "--points: '$p' is not W:S:CONSISTENCY (e.g. 4:2:async)"
  done
  [ -n "$points" ] || usage_error "--points is empty"
fi
case "$model" in dot|bias|mlp) ;; *) usage_error "--model=$model: dot, bias or mlp" ;; esac
case "$split" in random|user_time|seed_time) ;; *) usage_error "--split=$split: random, user_time or seed_time" ;; esac
# tc takes the rate as given; the burst is derived from it in bytes/s.
link_bytes=$(echo "$link" | awk '
  match($0, /^[0-9]+(\.[0-9]+)?/) { n = substr($0, 1, RLENGTH); u = substr($0, RLENGTH + 1)
    m["bit"] = 1; m["kbit"] = 1e3; m["mbit"] = 1e6; m["gbit"] = 1e9
    if (u in m && n > 0) printf "%.0f", n * m[u] / 8 }')
[ -n "$link_bytes" ] || usage_error "--link=$link: give a rate like 100mbit or 1gbit (bit, kbit, mbit, gbit)"
[[ $period_us =~ ^[0-9]+$ && $period_us -ge 1000 && $period_us -le 1000000 ]] ||
  usage_error "--cpu_period_us=$period_us: give 1000..1000000"
# Prints the cfs quota in us for $2 cores, or fails naming flag $1.
quota_of() {
  awk -v c="$2" -v p="$period_us" 'BEGIN { if (c ~ /^[0-9]*\.?[0-9]+$/ && c * p >= 1000) printf "%d", c * p }' | grep . ||
    usage_error "$1=$2: give cores as a number, at least 1 ms per --cpu_period_us=$period_us (the kernel's least quota)"
}
quota_us=$(quota_of --cpu "$cpu")
cpu=$(awk -v c="$cpu" 'BEGIN { printf "%g", c }')
ps_cpu=${ps_cpu:-$cpu}
ps_quota_us=$(quota_of --ps_cpu "$ps_cpu")
ps_cpu=$(awk -v c="$ps_cpu" 'BEGIN { printf "%g", c }')
if [ -z "$timeout" ]; then
  if [ "$mode" = quick ]; then timeout=100; else timeout=900; fi
fi
[[ $timeout =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout=$timeout: whole seconds"
[ -n "$out" ] || usage_error "--out is empty"
case "$out" in /*) OUT=$out ;; *) OUT=$CALLER_PWD/$out ;; esac

# --- preflight ------------------------------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, tc and cgroups); run it as root or with sudo"

# The mount point of a cgroup v1 controller, from /proc/mounts ("" if it is not mounted).
cgroup_mount() {
  awk -v c="$1" '$3 == "cgroup" { n = split($4, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $2; exit } }' /proc/mounts
}
CPU_MNT=$(cgroup_mount cpu)
ACCT_MNT=$(cgroup_mount cpuacct)
[ -n "$CPU_MNT" ] || die "the cgroup v1 'cpu' controller is not mounted (see /proc/mounts); this harness caps CPU with its cpu.cfs_quota_us. On a cgroup-v2-only machine it needs porting to cpu.max"
[ -n "$ACCT_MNT" ] || die "the cgroup v1 'cpuacct' controller is not mounted (see /proc/mounts); it measures each process's CPU time"
{ [ -w "$CPU_MNT" ] && [ -w "$ACCT_MNT" ]; } || die "cannot write to $CPU_MNT or $ACCT_MNT"
CG_CPU=$CPU_MNT/$PREFIX
CG_ACCT=$ACCT_MNT/$PREFIX

# Debian packages this script uses, installed when missing (as scripts/install_deps.sh does).
need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
packages=(iproute2 ethtool python3 python3-grpcio python3-protobuf protobuf-compiler util-linux)
[ "$mode" = check ] && packages+=(iperf3)
need_packages "${packages[@]}"

# One run at a time: names are fixed, so a second run would tear down the first one's namespaces.
exec 9>/run/$PREFIX.lock
flock -n 9 || die "another scripts/scale.sh is running (it holds /run/$PREFIX.lock)"

# --- cleanup --------------------------------------------------------------------------------------

MONITORS=()   # pids of this script's samplers

# Stops every process in our namespaces and cgroups, deletes the namespaces (which deletes the
# veths and the bridge in them) and removes the cgroups. Safe to run at any time and more than
# once: it is also how a leftover of a killed earlier run is removed (the lock says no run is live).
cleanup_all() {
  local pid ns d try
  for pid in "${MONITORS[@]}"; do kill "$pid" 2>/dev/null || true; done
  MONITORS=()
  for try in TERM TERM KILL; do
    local left=""
    for ns in $(ip netns list 2>/dev/null | awk -v p="$PREFIX-" 'index($1, p) == 1 { print $1 }'); do
      left+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
    done
    for d in "$CG_CPU" "$CG_ACCT"; do
      [ -d "$d" ] && left+=" $(cat "$d"/*/cgroup.procs 2>/dev/null | tr '\n' ' ')"
    done
    left=$(echo "$left" | tr ' ' '\n' | grep -E '^[0-9]+$' | sort -u | tr '\n' ' ' || true)
    [ -z "${left// /}" ] && break
    # shellcheck disable=SC2086
    kill -s "$try" $left 2>/dev/null || true
    sleep 1
  done
  for ns in $(ip netns list 2>/dev/null | awk -v p="$PREFIX-" 'index($1, p) == 1 { print $1 }'); do
    ip netns delete "$ns" 2>/dev/null || log "could not delete namespace $ns"
  done
  for d in "$CG_CPU" "$CG_ACCT"; do
    [ -d "$d" ] || continue
    find "$d" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
    rmdir "$d" 2>/dev/null || log "could not remove cgroup $d (a process still in it?)"
  done
}

RUN_PID=""    # the subshell running the current point (run_point)
# shellcheck disable=SC2317  # called by the EXIT trap
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$RUN_PID" ]; then
    kill "$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
  fi
  cleanup_all
  exit "$rc"
}
trap on_exit EXIT
trap 'log "interrupted; cleaning up"; exit 130' INT
trap 'log "terminated; cleaning up"; exit 143' TERM

cleanup_all
[ "$mode" = clean ] && { log "clean: no namespace or cgroup named $PREFIX* is left"; exit 0; }

# --- the emulated network and CPU budgets ---------------------------------------------------------

# The bridge lives in a namespace of its own, not the root one: the root namespace gets no new
# interface (its firewall and routes never see the cluster's traffic), deleting that one namespace
# removes the bridge and every host's veth end at once, and it is a vantage point that is no host,
# from which the Stats poller reaches the servers without riding on a worker's link.
net_up() {
  ip netns add "$BR_NS"
  ip netns exec "$BR_NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$BR_NS" link add br0 type bridge
  ip -n "$BR_NS" addr add "$SUBNET.1/24" dev br0
  ip -n "$BR_NS" link set br0 up
  ip -n "$BR_NS" link set lo up
}

# tbf on both ends of a host's veth: the host's end shapes what it sends, the bridge's end what it
# receives. Burst: 4 ms at the rate, at least 32 KiB (iperf3 reached 99% of a 1gbit cap with it).
# Segmentation offloads are off so that each frame is shaped and counted with its own headers.
host_up() {
  local host=$1 addr=$2 ns=$PREFIX-$1 burst
  burst=$(( link_bytes / 250 > 32768 ? link_bytes / 250 : 32768 ))
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$BR_NS" link add "v-$host" type veth peer name eth0 netns "$ns"
  ip -n "$BR_NS" link set "v-$host" master br0
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip netns exec "$ns" ethtool -K eth0 tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$BR_NS" ethtool -K "v-$host" tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$link" burst "$burst" latency 50ms
  ip netns exec "$BR_NS" tc qdisc add dev "v-$host" root tbf rate "$link" burst "$burst" latency 50ms
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  ip -n "$BR_NS" link set "v-$host" up
  mkdir -p "$CG_CPU/$host" "$CG_ACCT/$host"
  echo "$period_us" >"$CG_CPU/$host/cpu.cfs_period_us"
  if [[ $host == ps* ]]; then echo "$ps_quota_us"; else echo "$quota_us"; fi >"$CG_CPU/$host/cpu.cfs_quota_us"
  [ -f "$CG_CPU/$host/cpu.cfs_burst_us" ] && echo 0 >"$CG_CPU/$host/cpu.cfs_burst_us"
  return 0
}

# Starts "$@" in host $1's namespace and cgroups, in the background; its exit status goes to
# $dir/$1.rc, its output to $dir/$1.log. The subshell joins the cgroups first, so the process and
# all its threads start inside them.
launch() {
  local host=$1 dir=$2
  shift 2
  (
    exec 9>&-  # the lock stays with this script
    echo "$BASHPID" >"$CG_CPU/$host/cgroup.procs"
    echo "$BASHPID" >"$CG_ACCT/$host/cgroup.procs"
    rc=0
    ip netns exec "$PREFIX-$host" "$@" || rc=$?
    echo "$rc" >"$dir/$host.rc"
  ) >"$dir/$host.log" 2>&1 </dev/null &
}

# CPU time the whole machine has spent busy since boot, in clock ticks (/proc/stat: user, nice,
# system, irq, softirq, steal).
machine_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# Starts a sampler "$@" (output to $1) in the background, in cpu and cpuacct cgroups of ours without
# a quota, so that a leftover of a killed run is found and stopped like the hosts' processes. The
# samplers also exit by themselves once this script is gone.
monitor() {
  local logfile=$1
  shift
  mkdir -p "$CG_ACCT/monitor" "$CG_CPU/monitor"
  (
    exec 9>&-
    echo "$BASHPID" >"$CG_ACCT/monitor/cgroup.procs"
    # In the cluster's cpu cgroup too (no quota): with --reserve a sampler left among the machine's
    # other processes waits behind the cluster and its 1 s windows come out ragged.
    echo "$BASHPID" >"$CG_CPU/monitor/cgroup.procs"
    exec "$@"
  ) >"$logfile" 2>&1 </dev/null &
  MONITORS+=($!)
}

# Counters of host $1 as 'key=value' words: bytes and packets each way from the bridge end of its
# veth (the host sends what the bridge end receives), tbf drops of both ends, CPU from its cgroups.
host_counters() {
  local host=$1 s=/sys/class/net/v-$1/statistics rx tx rxp txp up down cpu_ns thr_ns
  read -r rx tx rxp txp < <(ip netns exec "$BR_NS" cat "$s/rx_bytes" "$s/tx_bytes" "$s/rx_packets" "$s/tx_packets" | tr '\n' ' ')
  up=$(ip netns exec "$PREFIX-$host" tc -s qdisc show dev eth0 | awk '/dropped/ { sub(",", "", $7); print $7; exit }')
  down=$(ip netns exec "$BR_NS" tc -s qdisc show dev "v-$host" | awk '/dropped/ { sub(",", "", $7); print $7; exit }')
  cpu_ns=$(cat "$CG_ACCT/$host/cpuacct.usage")
  thr_ns=$(awk '$1 == "throttled_time" { print $2 }' "$CG_CPU/$host/cpu.stat")
  awk -v rx="$rx" -v tx="$tx" -v rxp="$rxp" -v txp="$txp" -v up="${up:-nan}" -v down="${down:-nan}" \
      -v c="$cpu_ns" -v t="${thr_ns:-0}" 'BEGIN {
    printf "tx_bytes=%s rx_bytes=%s tx_packets=%s rx_packets=%s up_drops=%s down_drops=%s cpu_s=%.3f throttled_s=%.3f",
      rx, tx, rxp, txp, up, down, c / 1e9, t / 1e9 }'
}

# --- data -----------------------------------------------------------------------------------------

# Prints the directory to give psrec's --data. Where `psrec synth` lands, it plugs in here as
# another SOURCE (e.g. synth:ml-25m).
make_data() {
  local src=$1 n
  case "$src" in
    gen|gen:*)
      n=${src#gen}; n=${n#:}; n=${n:-100000}
      [[ $n =~ ^[1-9][0-9]*$ ]] || usage_error "--data=$src: gen:RATINGS takes a whole number"
      local d=$OUT/data/gen-$n-seed1
      if [ ! -f "$d/ratings.csv" ]; then
        log "generating $n MovieLens-shaped ratings into $d"
        "$PY" "$TOOLS" gen "$d" "$n" 1
      fi
      echo "$d" ;;
    synth:*)
      local like
      n=$(echo "$src" | cut -d: -f2); like=$(echo "$src" | cut -d: -f3); like=${like:-ml-25m}
      [[ $n =~ ^[1-9][0-9]*$ && $like =~ ^ml-[0-9a-z]+$ ]] ||
        usage_error "--data=$src: give synth:RATINGS or synth:RATINGS:LIKE (e.g. synth:2000000:ml-25m)"
      local d=$OUT/data/synth-$like-$n-seed1
      if [ ! -f "$d/synth.json" ]; then
        # --users=0 --movies=0: psrec synth's own scaling for --ratings (users = ratings / 154,
        # movies = 62,423 x sqrt(ratings / 25M)) instead of the release's full counts.
        log "psrec synth --like=$like --ratings=$n --users=0 --movies=0 into $d"
        "$PSREC" synth --like="$like" --ratings="$n" --users=0 --movies=0 --out="$d" >&2 ||
          usage_error "--data=$src: psrec synth failed (above)"
      fi
      echo "$d" ;;
    *)
      case "$src" in /*) ;; *) src=$CALLER_PWD/$src ;; esac
      [ -d "$src" ] || usage_error "--data=$src: no such directory (or give gen[:RATINGS])"
      [ -f "$src/ratings.csv" ] || [ -f "$src/ratings.dat" ] || [ -f "$src/u.data" ] ||
        usage_error "--data=$src holds no ratings.csv, ratings.dat or u.data"
      (cd "$src" && pwd) ;;
  esac
}

# --- one run --------------------------------------------------------------------------------------

# The helpers below work on the variables of run_one (bash's dynamic scope): dir, name, hosts,
# addrs, ps_list, status, start.

# Namespaces, links and cgroups for the coordinator, S servers and W workers.
cluster_up() {
  local w=$1 s=$2 k
  net_up
  host_up coord "$SUBNET.10"; hosts+=(coord); addrs+=("$SUBNET.10")
  for ((k = 0; k < s; k++)); do
    host_up "ps$k" "$SUBNET.$((20 + k))"; hosts+=("ps$k"); addrs+=("$SUBNET.$((20 + k))")
    ps_list+="${ps_list:+,}$SUBNET.$((20 + k)):$PS_PORT"
  done
  for ((k = 0; k < w; k++)); do
    host_up "w$k" "$SUBNET.$((100 + k))"; hosts+=("w$k"); addrs+=("$SUBNET.$((100 + k))")
  done
  # Each emulated host weighs like one ordinary process when the machine is busy (v1 gives a
  # cgroup one share of 1024, however many processes it holds), and no more than that. With
  # --reserve the cluster outweighs the rest of the machine (262144 is v1's most): a host that is
  # runnable gets the CPU first, up to its quota, so the caps act as budgets, not only ceilings.
  # The caps' sum is kept below the machine's cores (run_one), so the rest still gets >= 0.1 core.
  if [ "$reserve" = 1 ]; then echo 262144; else echo $((1024 * ${#hosts[@]})); fi >"$CG_CPU/cpu.shares"
}

# Samplers, outside the emulated hosts: CPU of every cgroup once a second (root namespace, where
# the cgroup files are), and every shard's Stats ten times a second (from the bridge's namespace).
samplers_up() {
  local specs=() h waited=0
  for h in "${hosts[@]}"; do specs+=("$h=$CG_ACCT/$h"); done
  monitor "$dir/cpu_sampler.log" "$PY" "$TOOLS" cpu-sampler "$dir/cpu_series.txt" "${specs[@]}"
  mkdir -p "$dir/proto_py"
  protoc -I "$ROOT/proto" --python_out="$dir/proto_py" "$ROOT"/proto/{ps,config,checkpoint}.proto
  # shellcheck disable=SC2086
  monitor "$dir/ps_stats.log" ip netns exec "$BR_NS" "$PY" "$TOOLS" ps-stats "$dir/ps_stats.json" \
    "$dir/proto_py" ${ps_list//,/ }
  # Python takes seconds to start on a busy machine: wait, so that they see the whole run.
  until grep -q ready "$dir/cpu_sampler.log" && grep -q ready "$dir/ps_stats.log"; do
    [ "$waited" -lt 300 ] || { log "run $name: the samplers did not start within 30 s: see $dir/*.log"; return 1; }
    sleep 0.1; waited=$((waited + 1))
  done
}

# Starts the servers, waits for each to listen, then starts the coordinator and the workers. Sets
# status when a server does not come up.
roles_up() {
  local w=$1 s=$2 k waited=0
  local job=(--config="$dir/job.textproto" "${extra[@]}")
  local shares=(); [ -n "$shares_dir" ] && shares=(--shares_dir="$shares_dir")
  for ((k = 0; k < s; k++)); do
    launch "ps$k" "$dir" "$PSREC" ps "${job[@]}" --shard="$k" --num_shards="$s" \
      --host="$SUBNET.$((20 + k))" --port="$PS_PORT" --port_file="$dir/ps$k.port"
  done
  for ((k = 0; k < s; k++)); do
    while [ ! -s "$dir/ps$k.port" ] && [ ! -e "$dir/ps$k.rc" ] && [ "$waited" -lt 600 ]; do
      sleep 0.1; waited=$((waited + 1))
    done
    if [ ! -s "$dir/ps$k.port" ]; then
      if [ -e "$dir/ps$k.rc" ]; then status="ps$k exited $(cat "$dir/ps$k.rc") before listening"
      else status="ps$k not listening after 60 s"; fi
      return 0
    fi
  done
  launch coord "$dir" "$PSREC" coordinator "${job[@]}" --ps="$ps_list" --host="$SUBNET.10" \
    --port="$COORD_PORT" --port_file="$dir/coord.port" --metrics_out="$dir/metrics.json" "${shares[@]}"
  for ((k = 0; k < w; k++)); do
    launch "w$k" "$dir" "$PSREC" worker "${job[@]}" --coordinator="$SUBNET.10:$COORD_PORT" --name="w$k"
  done
}

# Until every process has exited; the first failure or the timeout ends the run (sets status).
roles_wait() {
  local h done_all failed
  while :; do
    if ! kill -0 "$$" 2>/dev/null; then
      # The script was killed (kill -9: no trap ran). This subshell holds the lock: clean up
      # now, so that the next start finds the machine as it was.
      log "run $name: scripts/scale.sh (pid $$) is gone; cleaning up"
      cleanup_all
      exit 1
    fi
    done_all=1 failed=""
    for h in "${hosts[@]}"; do
      if [ -e "$dir/$h.rc" ]; then
        [ "$(cat "$dir/$h.rc")" = 0 ] || failed+=" $h (exit $(cat "$dir/$h.rc"))"
      else
        done_all=0
      fi
    done
    if [ -n "$failed" ]; then status="failed:$failed"; return 0; fi
    if [ "$done_all" = 1 ]; then return 0; fi
    if awk -v s="$start" -v n="$(date +%s.%N)" -v t="$timeout" 'BEGIN { exit !(n - s > t) }'; then
      status="timed out after ${timeout}s"; return 0
    fi
    sleep 0.2
  done
}

# Stops the samplers and whatever still runs (after a failure), then writes each host's counters
# to hosts.txt.
collect() {
  local k h role pid
  for pid in "${MONITORS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  MONITORS=()
  for h in "${hosts[@]}"; do
    # shellcheck disable=SC2046
    [ -e "$dir/$h.rc" ] || kill $(cat "$CG_CPU/$h/cgroup.procs" 2>/dev/null) 2>/dev/null || true
  done
  : >"$dir/hosts.txt"
  for ((k = 0; k < ${#hosts[@]}; k++)); do
    h=${hosts[k]}
    role="worker"
    case "$h" in coord) role="coordinator" ;; ps*) role="ps" ;; esac
    echo "$h role=$role address=${addrs[k]} $(host_counters "$h")" >>"$dir/hosts.txt"
  done
}

# run_one W S CONSISTENCY: builds the cluster for W workers, S servers and a coordinator, trains,
# measures, tears it all down and appends the rows. Returns non-zero if the run failed, a number
# is missing or a cap did not hold.
run_one() {
  local w=$1 s=$2 c=$3 name dir hosts=() addrs=() ps_list="" status=ok start wall busy0 busy1 h rc=0
  name=w$w-s$s-$c${label:+-$label}
  dir=$OUT/runs/$name
  rm -rf "$dir"
  mkdir -p "$dir"
  log "run $name: $w workers, $s servers, $c, link $link, cpu $cpu (ps $ps_cpu), $epochs epochs of $model${extra[*]:+ (${extra[*]})}"
  if [ "$reserve" = 1 ] && ! awk -v w="$w" -v s="$s" -v c="$cpu" -v p="$ps_cpu" -v n="$(nproc)" \
      'BEGIN { exit !(c * (w + 1) + p * s <= n - 0.1 + 1e-9) }'; then
    log "run $name: --reserve needs the caps to add up to at most $(nproc) - 0.1 cores; they add up to" \
      "$(awk -v w="$w" -v s="$s" -v c="$cpu" -v p="$ps_cpu" 'BEGIN { print c * (w + 1) + p * s }')"
    return 1
  fi
  printf 'data_dir: "%s"\nsplit: %s\nmodel: %s\nepochs: %s\nnum_shards: %s\nnum_workers: %s\nconsistency: %s\n' \
    "$data_dir" "${split^^}" "${model^^}" "$epochs" "$s" "$w" "${c^^}" >"$dir/job.textproto"
  cluster_up "$w" "$s"
  samplers_up
  busy0=$(machine_busy)
  start=$(date +%s.%N)
  roles_up "$w" "$s"
  if [ "$status" = ok ]; then roles_wait; fi
  wall=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - s }')
  busy1=$(machine_busy)
  collect
  printf '{"workers": %s, "servers": %s, "consistency": "%s", "link": "%s", "cpu": %s, "ps_cpu": %s,
 "model": "%s", "epochs": %s, "data": "%s", "status": "%s", "wall_seconds": %s, "label": "%s",
 "reserved": %s, "machine_cores": %s, "machine_busy_s": %s}\n' "$w" "$s" "$c" "$link" "$cpu" "$ps_cpu" "$model" \
    "$epochs" "$data_dir" "$status" "$wall" "$label" "$reserve" "$(nproc)" \
    "$(awk -v a="$busy0" -v b="$busy1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')" \
    >"$dir/params.json"
  cleanup_all
  if [ "$status" != ok ]; then
    log "run $name: $status; last lines of each log:"
    for h in "${hosts[@]}"; do
      if [ -s "$dir/$h.log" ]; then tail -n 3 "$dir/$h.log" | sed "s/^/  [$h] /" >&2; fi
    done
    rc=1
  fi
  "$PY" "$TOOLS" row "$dir" "$OUT" >&2 || rc=1
  if [ "$rc" = 0 ]; then
    log "run $name: done in ${wall}s ($(tail -n 1 "$OUT/scaling.csv" | cut -d, -f1-7))"
  fi
  return "$rc"
}

# --- the cap checks -------------------------------------------------------------------------------

check_caps() {
  local dir=$OUT/check
  rm -rf "$dir"; mkdir -p "$dir"
  net_up
  host_up a "$SUBNET.2"
  host_up b "$SUBNET.3"
  log "link: iperf3 from a to b and back, 5 s each, at --link=$link"
  ip netns exec "$PREFIX-b" iperf3 -s -D -B "$SUBNET.3" --logfile "$dir/iperf3-server.log"
  sleep 0.5
  local dirn s=/sys/class/net/v-a/statistics
  # Goodput as iperf3 sees it, and the rate on the wire from a's veth counters over the same test.
  for dirn in up down uncapped; do
    local r="" b0 b1
    [ "$dirn" = down ] && r=-R
    if [ "$dirn" = uncapped ]; then
      local h
      for h in a b; do
        ip netns exec "$PREFIX-$h" tc qdisc del dev eth0 root
        ip netns exec "$BR_NS" tc qdisc del dev "v-$h" root
      done
    fi
    b0=$(ip netns exec "$BR_NS" cat "$s/rx_bytes" "$s/tx_bytes" | awk '{ s += $1 } END { printf "%.0f", s }')
    # shellcheck disable=SC2086
    ip netns exec "$PREFIX-a" iperf3 -c "$SUBNET.3" -t 5 $r -J >"$dir/iperf3-$dirn.json"
    b1=$(ip netns exec "$BR_NS" cat "$s/rx_bytes" "$s/tx_bytes" | awk '{ s += $1 } END { printf "%.0f", s }')
    "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))["end"]
secs = d["sum_received"]["seconds"]
print("link %s (a %s b): iperf3 goodput %.1f Mbit/s sent, %.1f received; on the wire %.1f Mbit/s; cap %s" % (
    sys.argv[2], "from" if sys.argv[2] == "down" else "to",
    d["sum_sent"]["bits_per_second"] / 1e6, d["sum_received"]["bits_per_second"] / 1e6,
    int(sys.argv[4]) * 8 / secs / 1e6, "none" if sys.argv[2] == "uncapped" else sys.argv[3]))
' "$dir/iperf3-$dirn.json" "$dirn" "$link" "$((b1 - b0))"
  done
  log "cpu: a busy loop in a's cgroup (--cpu=$cpu) for 10 s"
  launch a "$dir" timeout 10 sh -c 'while :; do :; done'
  local t0 u0 t1 u1
  sleep 0.5
  t0=$(date +%s.%N); u0=$(cat "$CG_ACCT/a/cpuacct.usage")
  sleep 8
  t1=$(date +%s.%N); u1=$(cat "$CG_ACCT/a/cpuacct.usage")
  awk -v t0="$t0" -v t1="$t1" -v u0="$u0" -v u1="$u1" -v c="$cpu" -v thr="$(awk '$1 == "nr_throttled" { print $2 }' "$CG_CPU/a/cpu.stat")" 'BEGIN {
    printf "cpu: busy loop used %.4f cores over %.1f s (cap %s cores); throttled in %d periods\n",
      (u1 - u0) / 1e9 / (t1 - t0), t1 - t0, c, thr }'
  while [ ! -e "$dir/a.rc" ]; do sleep 0.2; done
}

# --- main -----------------------------------------------------------------------------------------

# Runs one point in a background subshell, where set -e holds (it does not in a function called
# from `||` or `if`) and which the INT/TERM traps can stop at once (a trap waits for a foreground
# command to finish, but interrupts `wait`). Counts the run in PASSED or FAILURES; returns 0.
PASSED=0 FAILURES=0
run_point() {
  local before after rc=0
  before=$(csv_rows)
  ( set -e; run_one "$@" ) &
  RUN_PID=$!
  wait "$RUN_PID" || rc=$?
  RUN_PID=""
  cleanup_all
  after=$(csv_rows)
  if [ "$after" -le "$before" ]; then
    log "run w$1-s$2-$3${label:+-$label} stopped before writing its row: see the error above"
    rc=1
  fi
  if [ "$rc" = 0 ]; then PASSED=$((PASSED + 1)); else FAILURES=$((FAILURES + 1)); fi
  return 0
}
csv_rows() { if [ -f "$OUT/scaling.csv" ]; then wc -l <"$OUT/scaling.csv"; else echo 0; fi; }

main() {
  if [ "$mode" = check ]; then
    check_caps
    exit 0
  fi
  [ -x "$PSREC" ] || die "$PSREC not found: build it first with scripts/build.sh"
  if [ -z "$data" ]; then
    if [ "$mode" = quick ]; then data=gen:100000; else data=gen:200000; fi
  fi
  mkdir -p "$OUT"
  data_dir=$(make_data "$data")
  # Shares are made once, here, outside every run's time, and kept under OUT (never in --data's
  # directory, which may be shared): the coordinator gets --shares_dir, the workers read its.
  shares_dir=$OUT/data/shares/$(basename "$data_dir")
  log "psrec prepare --data=$data_dir --shares_dir=$shares_dir"
  "$PSREC" prepare --data="$data_dir" --shares_dir="$shares_dir" >&2 || die "psrec prepare failed (above)"
  if [ "$reserve" = 1 ]; then log "--reserve: the cluster's cgroups get cpu.shares 262144"; fi
  rm -f "$OUT"/{scaling,shards,hosts,epochs}.csv
  local began=$SECONDS c s w
  case "$mode" in
    one) run_point "$workers" "$servers" "$consistency" ;;
    quick)
      run_point 1 1 sync
      run_point 2 1 sync
      run_point 2 2 async ;;
    sweep)
      for c in async sync; do
        for s in 1 2 4; do
          for w in 1 2 4 8; do run_point "$w" "$s" "$c"; done
        done
      done ;;
    points)
      local p
      # shellcheck disable=SC2086  # W:S:C split into three words on purpose
      for p in ${points//,/ }; do run_point ${p//:/ }; done ;;
  esac
  if [ -f "$OUT/scaling.csv" ]; then
    log "results: $OUT/scaling.csv (per shard: shards.csv, per host: hosts.csv, logs: runs/)"
    if command -v column >/dev/null; then column -s, -t <"$OUT/scaling.csv" | cut -c1-160 >&2; fi
  fi
  local contended
  contended=$("$PY" -c 'import csv, sys; print(sum(r["contended"] == "1" for r in csv.DictReader(open(sys.argv[1]))))' \
    "$OUT/scaling.csv" 2>/dev/null || echo 0)
  [ "$contended" = 0 ] || log "warning: in $contended run(s) the rest of the machine used more CPU than the caps left free (column contended): their speed is not comparable"
  log "took $((SECONDS - began))s; $FAILURES failed run(s)"
  # A closing line CI's log reader counts.
  echo "scale: $PASSED passed, $FAILURES failed"
  [ "$FAILURES" = 0 ] || die "$FAILURES run(s) failed or had a number missing"
  exit 0
}

main
# Only reached when bash abandoned main on an error of its own (an arithmetic error does that).
# shellcheck disable=SC2317
die "stopped on an error in the script (above)"
