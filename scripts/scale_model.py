#!/usr/bin/python3
"""The cost model of docs/scaling.md: fits its constants on reference runs of scaling.csv, predicts
every run's ratings/s, and writes the csv back with the prediction, its error and the bottleneck.

  scripts/scale_model.py CSV [--ref=RUN,RUN...] [--dense_floats=N] [--out=CSV] [--table] [--project]

--dense_floats: the width of the mlp model's dense row, hidden x (dim + 2) + 2 hidden + 1 (17409
for --hidden=512 --dim=30); 0 for bias and dot, whose dense row is a few floats.

--project prints the projection of docs/scaling.md (ml-32m and 1B ratings on a real cluster) from
the fitted constants; its assumptions are in project()'s comments and in the report.

A mini-batch of B ratings costs
  a   worker core-seconds (forward, backward, the batch's bookkeeping),
  b   server core-seconds per key pulled (and pushed: a push rides on the next pull), over the
      k distinct keys of the batch, spread over the S shards,
  i   server cores a server burns per second whatever it serves (gRPC's threads, Stats polls),
  q   bytes on the worker's link each way (the larger of up and down), the same total over the S
      servers' links, but not evenly: d of them are the dense row of the mlp model (one key, on one
      shard: 4 bytes x --dense_floats, framing aside), so the busiest server's link carries
      (q - d) / S + d of each batch.
A process capped at c cores delivers at most c core-seconds a second. The batch rate X (batches/s
over the whole job) is then bounded by
  compute  X <= W c_w / a
  server   X <= S (c_s - i) / (b k)
  link     X <= W L / q   and   X <= L / ((q - d) / S + d)   (L: the link rate, bytes/s each way)
async: X is the least bound. sync: each clock is one batch per worker, ended by a barrier, so a
clock lasts at least the largest per-clock time of any resource, and at least the serial path of
a batch at full speed (a + W b k / S + 2 q / L) when no quota binds:
  T = max(a / c_w, W b k / (S (c_s - i)), W ((q - d) / S + d) / L, q / L, a + W b k / S + 2 q / L)
  X = W / T.
The constants come from the reference runs (default: every 1-worker run of the main sweep):
a = worker CPU, less evaluation's (its seconds x the cap), / batches, k = rows pulled / batches,
b and i by least squares over server CPU = b x rows pulled + i x servers x wall seconds, q = max(bytes up, bytes down) per batch. CPU
is cgroup time for the whole run (setup and evaluation included): the model's bias from that is
stated in the report, not hidden.
"""

import csv
import sys

RATE = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}


def link_bytes_per_s(link):
    for unit in ("gbit", "mbit", "kbit", "bit"):
        if link.endswith(unit):
            return float(link[: -len(unit)]) * RATE[unit] / 8
    raise ValueError(f"link {link!r}")


def num(row, key):
    try:
        return float(row[key])
    except (KeyError, ValueError):
        return float("nan")


def fit(refs):
    """The constants, from the reference rows."""
    # The workers' CPU less what evaluation took (the workers score their test ratings after each
    # epoch, busy at their cap: epoch seconds less train seconds, per epoch, per worker).
    a = sum(num(r, "cpu_s_workers") - (num(r, "epoch_seconds") - num(r, "train_seconds")) *
            num(r, "epochs") * num(r, "workers") * num(r, "cpu") for r in refs) / \
        sum(num(r, "batches") for r in refs)
    k = sum(num(r, "rows_pulled") for r in refs) / sum(num(r, "batches") for r in refs)
    # Least squares for cpu_ps = b * rows_pulled + i * servers * wall_seconds (two unknowns, no
    # intercept): a server spends CPU per key, and some per second whatever it serves (gRPC's
    # threads, the harness's 10 Stats polls a second).
    sxx = sxy = syy = sxz = syz = 0.0
    for r in refs:
        x = num(r, "rows_pulled")
        y = num(r, "servers") * num(r, "wall_seconds")
        z = num(r, "cpu_s_ps")
        sxx += x * x; sxy += x * y; syy += y * y; sxz += x * z; syz += y * z
    det = sxx * syy - sxy * sxy
    b, idle = sxz / sxx, 0.0
    if abs(det) > 1e-9 * sxx * syy:
        b2, idle2 = (sxz * syy - syz * sxy) / det, (syz * sxx - sxz * sxy) / det
        if b2 > 0 and idle2 >= 0:
            b, idle = b2, idle2
    q = sum(max(num(r, "bytes_per_rating_up"), num(r, "bytes_per_rating_down")) *
            num(r, "train_ratings") for r in refs) / sum(num(r, "batches") for r in refs)
    return {"a": a, "b": b, "i": idle, "k": k, "q": q}


def predict(row, c, dense):
    """(ratings/s, bottleneck) the model gives for row's configuration."""
    w, s = num(row, "workers"), num(row, "servers")
    cw, cs = num(row, "cpu"), num(row, "ps_cpu")
    link = link_bytes_per_s(row["link"])
    batch = num(row, "train_ratings") / num(row, "batches") if num(row, "batches") > 0 else float("nan")
    per_server = c["b"] * c["k"] / s  # core-seconds per batch on each server
    free = max(cs - c["i"], 1e-9)      # of a server's cap, what its idle overhead leaves
    times = {  # seconds per batch of the whole job, per resource
        "compute": c["a"] / (w * cw),
        "server CPU": per_server / free,
        "worker link": c["q"] / (w * link),
        "server link": (min(dense, c["q"]) + (c["q"] - min(dense, c["q"])) / s) / link,
    }
    if row["consistency"] == "sync":
        clock = {
            "compute": c["a"] / cw,
            "server CPU": w * per_server / free,
            "worker link": c["q"] / link,
            "server link": w * (min(dense, c["q"]) + (c["q"] - min(dense, c["q"])) / s) / link,
            "round trip": c["a"] + w * per_server + 2 * c["q"] / link,
        }
        neck = max(clock, key=clock.get)
        return batch * w / clock[neck], neck
    neck = max(times, key=times.get)
    return batch / times[neck], neck


# Memory per user or movie on a server (dim 30: embedding row with Adam's two moments and a step
# count, and the bias row), from Stats' memory_bytes per table over rows in the sweep's w1-s1-async
# run (user_embedding 3,088,688 B / 6,494 rows = 476; user_bias 237,872 / 6,494 = 37; item tables
# 521 and 40): 560 B, rounded up.
BYTES_PER_ENTITY = 560
# Real releases and a 1B set shaped by psrec synth's rule (users = ratings / 154, movies =
# 62,423 x sqrt(ratings / 25M)): name, ratings, users, movies, workers, servers, and the link of
# a worker and of a server in Gbit/s each way, and whether the dense row is split evenly over the
# shards (psrec does not do that today: docs/scaling.md, per-shard load).
TARGETS = [("ml-32m", 32_000_204, 200_948, 87_585, 4, 2, 1, 1, False),
           ("1B ratings", 1_000_000_000, 6_493_506, 394_801, 64, 24, 1, 10, False),
           ("1B, dense row split", 1_000_000_000, 6_493_506, 394_801, 64, 24, 1, 10, True)]


def project(c, batch, dense):
    """Epoch time, memory and network of each target on machines where a worker or a server has one
    whole core. Assumptions: speed per core is the 0.14-core speed / 0.14 (the quota gives CPU
    time, not a slower CPU); a batch of `batch` ratings pulls 4 rows a rating with no dedup (user
    and item embedding and bias: an upper bound; the 1M-rating set deduplicated to k / batch), so
    the server's cost per batch and the bytes of the embedding rows are scaled up by 4 batch / k;
    the dense row (`dense` bytes) stays one key on one shard, whose server also pays for its floats
    at the measured cost per float of a key; 80% of the ratings train; evaluation
    and start-up are not counted."""
    keys = 4 * batch + 1
    scale = keys / c["k"]
    per_batch_worker = c["a"]                               # core-seconds
    per_batch_server = c["b"] * keys                        # core-seconds, summed over shards
    emb = (c["q"] - min(dense, c["q"])) * scale             # bytes each way, all shards
    print("| set | ratings | workers x servers | memory per server (rows) | ratings/s (bound) | epoch "
          "| link per worker, each way | link per server, each way (the dense row's) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, users, movies, w, s, wl, sl, split in TARGETS:
        # The dense row's shard also applies Adam to the dense row: as many key-costs as the row
        # has embedding rows' worth of floats (31 floats a key: an embedding row and its bias).
        dense_keys = dense / 4 / 31 / (s if split else 1)
        hot = dense / (s if split else 1)
        bounds = {"compute": w / per_batch_worker,
                  "server CPU": 1 / (c["b"] * (keys / s + dense_keys)),
                  "worker link": w * wl * 1e9 / 8 / (emb + dense),
                  "server link": sl * 1e9 / 8 / (emb / s + hot)}
        neck = min(bounds, key=bounds.get)
        x = bounds[neck] * batch                             # ratings/s
        xb = bounds[neck]
        mem = (users + movies) * BYTES_PER_ENTITY / s
        print(f"| {name} | {n / 1e6:,.0f}M | {w} x {s} | {mem / 1e6:,.0f} MB | {x:,.0f} ({neck}) | "
              f"{0.8 * n / x:,.0f} s | {xb / w * (emb + dense) * 8 / 1e6:,.0f} Mbit/s of {wl:g} Gbit/s | "
              f"{xb * emb / s * 8 / 1e6:,.0f} ({xb * (emb / s + hot) * 8 / 1e6:,.0f}) Mbit/s of {sl:g} Gbit/s |")
    print(f"\nper batch of {batch:.0f}: worker {per_batch_worker * 1e3:.2f} ms, server "
          f"{per_batch_server * 1e3:.2f} ms (core time, summed over shards), "
          f"{(emb + dense) / 1e3:.0f} kB each way of which {dense / 1e3:.1f} kB is the dense row")


def main(argv):
    path, out, refs_arg, table, proj, dense = None, None, None, False, False, 0.0
    for a in argv[1:]:
        if a.startswith("--out="):
            out = a[6:]
        elif a.startswith("--ref="):
            refs_arg = a[6:].split(",")
        elif a == "--table":
            table = True
        elif a.startswith("--dense_floats="):
            dense = 4.0 * float(a[len("--dense_floats="):])
        elif a == "--project":
            proj = True
        elif not a.startswith("--") and path is None:
            path = a
        else:
            print(__doc__, file=sys.stderr)
            return 2
    if path is None:
        print(__doc__, file=sys.stderr)
        return 2
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = [x for x in reader.fieldnames
                  if x not in ("predicted_ratings_per_s", "prediction_error", "bottleneck")]
        rows = list(reader)
    ok = [r for r in rows if r["status"] == "ok"]
    refs = [r for r in ok if (r["run"] in refs_arg if refs_arg else
                              r["workers"] == "1" and not r.get("label"))]
    if not refs:
        print("scale_model: no reference run", file=sys.stderr)
        return 1
    c = fit(refs)
    print("scale_model: constants from " + ", ".join(r["run"] for r in refs) + ": " +
          f"a={c['a'] * 1e3:.3f} ms/batch  b={c['b'] * 1e6:.3f} us/key  i={c['i']:.4f} cores idle  "
          f"k={c['k']:.0f} keys/batch  q={c['q'] / 1e3:.1f} kB/batch", file=sys.stderr)
    for r in rows:
        if r["status"] != "ok":
            r.update(predicted_ratings_per_s="nan", prediction_error="nan", bottleneck="")
            continue
        pred, neck = predict(r, c, dense)
        meas = num(r, "ratings_per_s")
        r.update(predicted_ratings_per_s=f"{pred:.6g}", prediction_error=f"{pred / meas - 1:+.3f}",
                 bottleneck=neck)
    if out:
        with open(out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields + ["predicted_ratings_per_s", "prediction_error",
                                                        "bottleneck"])
            w.writeheader()
            for r in rows:
                w.writerow(r)
    if table:
        print("| run | link | measured ratings/s | predicted | error | bottleneck (model) |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            if r["status"] == "ok":
                print(f"| {r['run']} | {r['link']} | {num(r, 'ratings_per_s'):,.0f} | "
                      f"{float(r['predicted_ratings_per_s']):,.0f} | "
                      f"{100 * float(r['prediction_error']):+.0f}% | {r['bottleneck']} |")
    if proj:
        project(c, num(refs[0], "batch_size"), dense)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
