#!/usr/bin/env python3
"""Splits a distributed training run's CPU time per mini-batch by role and by kind of work.

    perf record -F 1999 -g -o run.data -- build/psrec train --ps_shards=1 --workers=1 ... \
        --metrics_out=run.json >run.log 2>&1
    bench/perf_breakdown.py run.data run.log run.json

The roles' pids come from the launcher's log ("started ps0 (pid N)" or "(pid N, cpu C)"). Samples count within the
training window: from the worker's first sample in the model's code to its last. Each sample is
charged to its leaf frame, skipping libc/libstdc++ frames (memcpy, malloc) to the first caller that
is not one of them; kernel samples are split by the system call they are in, or as faults and
interrupts when they are in none. Wall time per batch comes from the metrics' train_seconds; the
training thread's waiting time is wall time minus that thread's CPU time.
"""
import collections
import json
import math
import re
import subprocess
import sys

SERIALIZE = re.compile(r"google::protobuf|RowBlock|PullRequest|PullResponse|PushRequest|"
                       r"PushResponse|StreamRequest|StreamResponse|_InternalSerialize|"
                       r"_InternalParse|ByteSizeLong|MergeFrom|WireFormat|wire_format|"
                       r"RowCodec|Packed|Encode|Decode|Varint")
COMPUTE = re.compile(r"Model::|Trainer::|Eigen|Table::|ShardedTable|Optimizer|Adam|Adagrad|Sgd|"
                     r"InitRow|Mix64|HashCombine|SyncBarrier|ApplyDropout|Dense|Forward|Backward|"
                     r"ApplyUpdate|raw_hash_set|^pow|__ieee754|^exp|^log|LocalStore")
DATA_PATH = re.compile(r"RemoteStore|RequestChecks|ParameterServerImpl|ShardOf|StreamSession|"
                       r"ShardStream|Route|Scatter|ReadRows")
LIBC = re.compile(r"libc\.so|libstdc\+\+|libm\.so|ld-linux")
# Kernel stacks, by the first pattern their frames match. Loopback TCP delivers to the receiver in
# the sender's softirq, so net_rx and friends count as socket work.
KERNEL = [
    (r"sendmsg|sendto|tcp_push|tcp_write|__tcp_transmit", "socket send (incl. loopback delivery)"),
    (r"recvmsg|recvfrom|tcp_recv|tcp_read|sock_read", "socket recv"),
    (r"net_rx|__netif|tcp_v4_rcv|ip_rcv|loopback", "socket send (incl. loopback delivery)"),
    (r"futex", "futex (thread wake/sleep)"),
    (r"epoll|ep_poll|do_poll|sys_poll", "epoll"),
    (r"exc_page_fault|do_anonymous_page|handle_mm_fault", "page faults"),
    (r"schedule|finish_task_switch|__switch_to", "scheduler"),
    (r"do_syscall_64", "other syscalls"),
    (r"asm_sysvec|irq|softirq", "interrupts"),
]


def category(frames):
    """frames: [(sym, dso)] from the leaf up."""
    kernel = " ".join(f[0] for f in frames if "kernel.kallsyms" in f[1])
    if kernel:
        for pattern, name in KERNEL:
            if re.search(pattern, kernel):
                return "kernel: " + name
        return "kernel: other"
    user = [f for f in frames if not LIBC.search(f[1])] or frames
    sym, dso = user[0]
    if "GraphCycles" in sym or "DeadlockCheck" in sym:
        return "absl mutex deadlock detection"
    if COMPUTE.search(frames[0][0]) or (COMPUTE.search(sym) and "psrec" in dso):
        return "compute (model, rows, optimizer)"
    if "ParseRatings" in sym or "ReadMovieLens" in sym:
        return "data loading"
    if DATA_PATH.search(sym):
        return "routing, checks, copies (psrec)"
    if SERIALIZE.search(sym) or "libprotobuf" in dso:
        return "serialize/parse"
    if re.search(r"libgrpc|libgpr|libupb|libabsl|libcares|libssl|libcrypto|libaddress", dso):
        return "gRPC runtime"
    if "grpc" in sym:
        return "gRPC runtime"
    if frames[0][0].startswith(("__memmove", "__memcpy", "memcpy", "__memset")):
        return "memcpy/memset (unattributed)"
    if LIBC.search(frames[0][1]):
        if re.search(r"malloc|free|_int_|new|delete|cfree", frames[0][0]):
            return "malloc/free"
        return "libc other"
    if COMPUTE.search(sym):
        return "compute (model, rows, optimizer)"
    return "psrec other"


def samples(perf_data):
    out = subprocess.run(["perf", "script", "-i", perf_data, "-F", "pid,tid,time,ip,sym,dso"],
                         capture_output=True, text=True, check=True).stdout
    for block in out.split("\n\n"):
        lines = [l for l in block.splitlines() if l.strip()]
        if not lines:
            continue
        head = re.match(r"\s*(\d+)/(\d+)\s+([\d.]+):", lines[0])
        if not head:
            continue
        frames = []
        for l in lines[1:]:
            m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", l)
            if m:
                frames.append((m.group(1), m.group(2)))
        if frames:
            yield int(head.group(1)), int(head.group(2)), float(head.group(3)), frames


def main():
    perf_data, log, metrics = sys.argv[1:4]
    pids = {}
    for line in open(log):
        m = re.search(r"started (\w+) \(pid (\d+)[,)]", line)
        if m:
            pids[int(m.group(2))] = m.group(1)
    m = json.load(open(metrics))
    batch = m["config"].get("batch_size", 512)
    batches = sum(math.ceil(e["examples"] / batch) for e in m["epochs"])
    wall = sum(e["train_seconds"] for e in m["epochs"])
    rows = list(samples(perf_data))
    times = [t for p, _, t, f in rows if pids.get(p, "").startswith("worker")
             and COMPUTE.search(f[0][0])]
    begin, end = min(times), max(times)
    rows = [r for r in rows if begin <= r[2] <= end]
    # Sampling period: perf's -F gives the rate; read it from the header.
    header = subprocess.run(["perf", "report", "-i", perf_data, "--header-only"],
                            capture_output=True, text=True).stdout
    freq = re.search(r"sample_freq \}? ?= (\d+)", header)
    period = 1.0 / int(freq.group(1)) if freq else 1.0 / 1999
    by_role = collections.defaultdict(collections.Counter)
    thread_samples = collections.Counter()
    for pid, tid, _, frames in rows:
        role = pids.get(pid, "other")
        by_role[role][category(frames)] += 1
        if role.startswith("worker"):
            thread_samples[tid] += 1
    ms = lambda n: 1e3 * n * period / batches
    print(f"{batches} batches, {wall:.3f} s of training: {1e3 * wall / batches:.3f} ms per batch "
          f"(wall); window {end - begin:.2f} s; CPU ms per batch by role:")
    for role in sorted(by_role):
        total = sum(by_role[role].values())
        print(f"  {role:<12} {ms(total):7.3f}")
        for cat, n in by_role[role].most_common():
            print(f"    {cat:<36} {ms(n):7.3f}")
    main_thread = thread_samples.most_common(1)[0][1] if thread_samples else 0
    print(f"worker training thread: {ms(main_thread):.3f} ms CPU per batch, so "
          f"{1e3 * wall / batches - ms(main_thread):.3f} ms waiting per batch")


if __name__ == "__main__":
    main()
