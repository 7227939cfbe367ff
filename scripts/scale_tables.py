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


SHARD_KEYS = ("rows", "pull_requests", "rows_pulled", "tx_bytes", "cpu_s")
SHARD_HEAD = ["rows held", "pull requests", "rows pulled", "bytes sent", "CPU s"]


def max_over_mean(ss, k):
    v = [float(s[k]) for s in ss]
    return max(v) / (sum(v) / len(v))


def shards_table(runs, shards):
    """Every shard of each run, then the run's max over mean in bold."""
    body = []
    for r in runs:
        ss = [s for s in shards if s["run"] == r["run"]]
        for s in ss:
            body.append([r["run"], s["shard"]] + [f(s[k]) if k != "cpu_s" else f(s[k], ".2f")
                                                   for k in SHARD_KEYS])
        body.append([r["run"], "max/mean"] + [f"**{max_over_mean(ss, k):.3f}**" for k in SHARD_KEYS])
    table(["run", "shard"] + SHARD_HEAD, body)


def hotkey_tables(runs, shards):
    """The runs before and after the dense row's split (labels hotkey_before*, hotkey_after*), by
    point in the order run: max over mean per run, then every shard."""
    hot = [r for r in runs if r["label"].startswith(("hotkey_before", "hotkey_after"))]
    hot.sort(key=lambda r: (int(r["servers"]), int(r["workers"])))
    body = []
    for r in hot:
        ss = [s for s in shards if s["run"] == r["run"]]
        body.append([r["run"], "one row" if "before" in r["label"] else "split",
                     f(r["ratings_per_s"]), f(r["test_mae"], ".4f"),
                     f"{f(r['cpu_s_ps'], '.1f')} / {f(r['cpu_s_workers'], '.1f')}"] +
                    [f"{max_over_mean(ss, k):.3f}" for k in SHARD_KEYS])
    table(["run", "dense", "ratings/s", "test MAE", "CPU s ps / workers"] +
          [f"{h}, max/mean" for h in SHARD_HEAD], body)
    shards_table(hot, shards)


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    d = argv[1]
    target = float(argv[2]) if len(argv) == 3 else 0.62
    runs = [r for r in rows(os.path.join(d, "scaling.csv")) if r["status"] == "ok"]
    shards = rows(os.path.join(d, "shards.csv"))
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
    shards_table([r for r in runs if not r["label"] and r["servers"] != "1"], shards)
    print("### hotkey")
    hotkey_tables(runs, shards)
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
