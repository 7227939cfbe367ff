#!/usr/bin/python3
"""The plots of docs/scaling.md, drawn by gnuplot (Debian's gnuplot-nox) from the harness's csv files.

  scripts/scale_plots.py DIR     reads DIR/scaling.csv, DIR/shards.csv, DIR/epochs.csv; writes
                                 DIR/speedup.png, DIR/link.png, DIR/shards.png, DIR/mae_time.png,
                                 DIR/hotkey.png

Which runs go where, by the label column (scripts/scale.sh --label): the sweep has none; the
link-rate runs are labelled link*; the learning-curve runs mae*; the runs before and after the
dense row's split hotkey_before and hotkey_after. Only runs with status ok count.
"""

import csv
import os
import subprocess
import sys
import tempfile

TERM = "set terminal pngcairo size 900,560 font 'DejaVu Sans,11'\nset grid\nset key outside right top\n"


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def gnuplot(script, work):
    path = os.path.join(work, "plot.gp")
    with open(path, "w") as f:
        f.write(script)
    subprocess.run(["gnuplot", path], check=True)


def write(work, name, lines):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def speedup(d, runs, work):
    sweep = [r for r in runs if not r["label"]]
    base = {c: next((float(r["ratings_per_s"]) for r in sweep if r["workers"] == "1" and
                     r["servers"] == "1" and r["consistency"] == c), None) for c in ("sync", "async")}
    plots = []
    for c, dash in (("async", 1), ("sync", 2)):
        for s, color in (("1", "#1f77b4"), ("2", "#ff7f0e"), ("4", "#2ca02c")):
            pts = sorted((int(r["workers"]), float(r["ratings_per_s"]) / base[c]) for r in sweep
                         if r["consistency"] == c and r["servers"] == s and base[c])
            if not pts:
                continue
            f = write(work, f"sp-{c}-{s}.dat", [f"{w} {y:.4f}" for w, y in pts])
            plots.append(f"'{f}' using 1:2 with linespoints lw 2 pt 7 dt {dash} lc rgb '{color}' "
                         f"title '{c}, {s} server{'s' if s != '1' else ''}'")
    plots.append("x with lines lc rgb '#999999' dt 3 title 'ideal (= workers)'")
    gnuplot(TERM + f"""set output '{d}/speedup.png'
set title 'Speedup over 1 worker x 1 server (same consistency), 0.14 cores per process'
set xlabel 'workers'
set ylabel 'speedup (ratings/s over 1w x 1s ratings/s)'
set xtics (1, 2, 4, 8)
set xrange [0.5:8.5]
set yrange [0:9]
plot {', '.join(plots)}
""", work)


def link(d, runs, work):
    pts = sorted((float(r["link"].replace("mbit", "e6").replace("gbit", "e9")) / 1e6,
                  float(r["ratings_per_s"]), float(r.get("predicted_ratings_per_s") or "nan"))
                 for r in runs if r["label"].startswith("link"))
    if not pts:
        return
    f = write(work, "link.dat", [f"{x:g} {y:.1f} {p:.1f}" for x, y, p in pts])
    cfg = next(r for r in runs if r["label"].startswith("link"))
    gnuplot(TERM + f"""set output '{d}/link.png'
set title 'Throughput against link rate: {cfg["workers"]} workers x {cfg["servers"]} servers, {cfg["consistency"]}, {cfg["cpu"]} cores per process'
set xlabel 'link rate per host, each way (Mbit/s, log scale)'
set ylabel 'training ratings/s'
set logscale x 10
set yrange [0:*]
plot '{f}' using 1:2 with linespoints lw 2 pt 7 title 'measured', \\
     '{f}' using 1:3 with linespoints lw 2 pt 6 dt 2 title 'cost model'
""", work)


def shards(d, runs, shard_rows, work, labels=None, out="shards.png",
           title="Per-shard load, 4 servers: each shard over the mean of the 4 (1 = even)"):
    # The sweep's runs (no label), or those whose label starts with one of `labels`.
    ok = {r["run"] for r in runs if r["status"] == "ok" and r["servers"] == "4" and
          (r["label"].startswith(labels) if labels else not r["label"])}
    lines, names = [], []
    # By consistency and workers, then the hotkey runs in the order run: before, after, before.3 ...
    for run in sorted(ok, key=lambda x: (x.split("-")[2], int(x.split("-")[0][1:]),
                                         x.partition(".")[2], "after" in x)):
        ss = [s for s in shard_rows if s["run"] == run]
        if len(ss) != 4:
            continue
        vals = {}
        for key in ("rows", "pull_requests", "rows_pulled", "tx_bytes", "cpu_s"):
            v = [float(s[key]) for s in ss]
            m = sum(v) / len(v)
            vals[key] = [x / m for x in v]
        names.append(run)
        for k in range(4):
            lines.append(f"{len(names) - 1 + 0.18 * k:.2f} " +
                         " ".join(f"{vals[key][k]:.4f}" for key in vals))
    if not names:
        return
    f = write(work, "shards.dat", lines)
    # gnuplot's enhanced text would read the labels' underscores as subscripts.
    tics = ", ".join(f"'{n.replace('hotkey_', '')}' {i + 0.27}" for i, n in enumerate(names))
    gnuplot(TERM.replace("900,560", "1100,560") + f"""set output '{d}/{out}'
set title '{title}'
set xlabel 'run (4 points each, left to right: shards 0 to 3)'
set ylabel 'shard / mean of shards'
set xtics ({tics}) rotate by -30
set xrange [-0.3:{len(names) - 0.2}]
set yrange [0:2.2]
plot '{f}' using ($1):2 with points pt 4 ps 1.2 title 'rows held', \\
     '{f}' using ($1):4 with points pt 7 ps 1.2 title 'rows pulled', \\
     '{f}' using ($1):5 with points pt 9 ps 1.2 title 'bytes sent', \\
     '{f}' using ($1):6 with points pt 13 ps 1.2 title 'CPU seconds', \\
     1 with lines lc rgb '#999999' dt 3 notitle
""", work)


def mae_time(d, epochs, work):
    runs = sorted({e["run"] for e in epochs if e["label"].startswith("mae")})
    plots = []
    for i, run in enumerate(runs):
        pts = [(float(e["elapsed_seconds"]), float(e["test_mae"])) for e in epochs if e["run"] == run]
        f = write(work, f"mae-{i}.dat", ["0 nan"] + [f"{t:.3f} {m:.5f}" for t, m in pts])
        plots.append(f"'{f}' using 1:2 with linespoints lw 2 pt 7 title '{run.rsplit('-', 1)[0]}'")
    if not plots:
        return
    plots.append("0.60 with lines lc rgb '#d62728' dt 2 lw 1.5 title 'MAE 0.60 target'")
    gnuplot(TERM + f"""set output '{d}/mae_time.png'
set title 'Test MAE after each epoch against time, 1M ml-25m-shaped ratings'
set xlabel 'seconds of training and evaluation (setup excluded)'
set ylabel 'test MAE (stars)'
set xrange [0:*]
plot {', '.join(plots)}
""", work)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = os.path.abspath(argv[1])
    runs = [r for r in rows(os.path.join(d, "scaling.csv")) if r["status"] == "ok"]
    with tempfile.TemporaryDirectory() as work:
        speedup(d, runs, work)
        link(d, runs, work)
        shards(d, runs, rows(os.path.join(d, "shards.csv")), work)
        shards(d, runs, rows(os.path.join(d, "shards.csv")), work, ("hotkey_before", "hotkey_after"),
               "hotkey.png", "Per-shard load, 4 servers: the dense weights as one row, then split (hotkey runs)")
        mae_time(d, rows(os.path.join(d, "epochs.csv")), work)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
