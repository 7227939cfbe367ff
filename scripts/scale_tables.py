#!/usr/bin/python3
"""The tables of docs/scaling.md, in Markdown, from the csv files scripts/scale_report.sh merges.

  scripts/scale_tables.py DIR [MAE]    DIR holds scaling.csv (with the cost model's columns),
                                       shards.csv and epochs.csv; MAE is the time-to-MAE target

Prints every table to stdout, each under a '### name' line, so the report can take them as they are.
"""

import csv
import os
import sys


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def f(x, spec=",.0f"):
    try:
        return format(float(x), spec)
    except ValueError:
        return x


def table(head, body):
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for b in body:
        print("| " + " | ".join(str(x) for x in b) + " |")
    print()


def runs_table(runs, base):
    body = []
    for r in runs:
        # Over the 1w x 1s run with the same label, else the sweep's.
        b = base.get((r["label"], r["consistency"])) or base.get(("", r["consistency"]))
        sp = float(r["ratings_per_s"]) / b if b else float("nan")
        body.append([r["run"], f(r["ratings_per_s"]), f(sp, ".2f"), f(r["epoch_seconds"], ".1f"),
                     f(r["test_mae"], ".4f"),
                     f"{f(r['bytes_per_rating_up'])} / {f(r['bytes_per_rating_down'])}",
                     f"{f(r['cpu_s_coordinator'], '.1f')} / {f(r['cpu_s_ps'], '.1f')} / "
                     f"{f(r['cpu_s_workers'], '.1f')}",
                     f"{f(r['median_cores_ps'], '.3f')} / {f(r['median_cores_worker'], '.3f')}",
                     f(r["other_cores"], ".2f"),
                     f(r["predicted_ratings_per_s"]), f"{100 * float(r['prediction_error']):+.0f}%",
                     r["bottleneck"]])
    table(["run", "ratings/s", "speedup", "epoch s", "test MAE", "B/rating up / down",
           "CPU s coord / ps / workers", "busy cores ps / worker", "other cores",
           "model ratings/s", "model error", "model bottleneck"], body)


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    d = argv[1]
    target = float(argv[2]) if len(argv) == 3 else 0.62
    runs = [r for r in rows(os.path.join(d, "scaling.csv")) if r["status"] == "ok"]
    base = {}
    for r in runs:
        if r["workers"] == "1" and r["servers"] == "1":
            base[(r["label"], r["consistency"])] = float(r["ratings_per_s"])
    print("### sweep")
    runs_table([r for r in runs if not r["label"]], base)
    print("### link")
    rate = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
    link = sorted((r for r in runs if r["label"].startswith("link")),
                  key=lambda r: float(r["link"][:-4]) * rate.get(r["link"][-4:], 1))
    table(["link", "ratings/s", "B/rating up / down", "busy cores ps / worker",
           "model ratings/s", "model error", "model bottleneck"],
          [[r["link"], f(r["ratings_per_s"]),
            f"{f(r['bytes_per_rating_up'])} / {f(r['bytes_per_rating_down'])}",
            f"{f(r['median_cores_ps'], '.3f')} / {f(r['median_cores_worker'], '.3f')}",
            f(r["predicted_ratings_per_s"]), f"{100 * float(r['prediction_error']):+.0f}%",
            r["bottleneck"]] for r in link])
    for label in ("mae", "mlsmall"):
        print(f"### {label}")
        runs_table([r for r in runs if r["label"] == label], base)
    print("### shards")
    shards = rows(os.path.join(d, "shards.csv"))
    body = []
    for r in runs:
        if r["label"] or r["servers"] == "1":
            continue
        ss = [s for s in shards if s["run"] == r["run"]]
        keys = ("rows", "pull_requests", "rows_pulled", "tx_bytes", "cpu_s")
        for s in ss:
            body.append([r["run"], s["shard"]] + [f(s[k]) if k != "cpu_s" else f(s[k], ".2f")
                                                   for k in keys])
        mm = []
        for k in keys:
            v = [float(s[k]) for s in ss]
            mm.append(f"**{max(v) / (sum(v) / len(v)):.3f}**")
        body.append([r["run"], "max/mean"] + mm)
    table(["run", "shard", "rows held", "pull requests", "rows pulled", "bytes sent", "CPU s"], body)
    print(f"### time to MAE {target}")
    epochs = rows(os.path.join(d, "epochs.csv"))
    body = []
    for run in sorted({e["run"] for e in epochs if e["label"] == "mae"},
                      key=lambda x: (x.split("-")[2], int(x.split("-")[0][1:]))):
        es = [e for e in epochs if e["run"] == run]
        hit = next((e for e in es if float(e["test_mae"]) <= target), None)
        body.append([run] + [f(e["test_mae"], ".4f") + f" @ {f(e['elapsed_seconds'], '.0f')} s"
                             for e in es] +
                    [f"{f(hit['elapsed_seconds'], '.0f')} s (epoch {hit['epoch']})" if hit else "not reached"])
    n = max((len(b) - 2 for b in body), default=0)
    table(["run"] + [f"epoch {k + 1}" for k in range(n)] + [f"time to MAE <= {target}"], body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
