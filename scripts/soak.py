#!/usr/bin/env python3
"""Soak run: N real nodes (default 15, mesh, loopback) under steady writes for a while; are memory,
buffers and files bounded, and are the logs clean?

The writes keep the state bounded on purpose — last-writer-wins fields over a fixed set of 1000
keys, counter increments, adds and removes over 100 set elements — so that anything that keeps
growing is a leak, not data. Every --sample-s seconds it records, per node, resident memory
(VmRSS), delta-buffer groups, the data dir's size on disk and the memory gauge, and writes them to
`soak.csv`; at the end it prints the first and last samples side by side, checks convergence and
counts ERROR and WARN lines in the logs. Exits non-zero when the nodes did not converge or logged
errors.

    python3 scripts/soak.py --minutes 10 --out results/soak
"""

import argparse
import csv
import os
import random
import signal
import sys
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor

from experiment import ROOT, Cluster, ensure_binary, http, metric, rss_kib, topology_edges


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def write(rng, node):
    roll = rng.random()
    if roll < 0.5:
        return "/v1/objects/fields", {"type": "map", "op": "put", "field": f"k{rng.randrange(1000)}",
                                      "value": rng.getrandbits(32)}
    if roll < 0.7:
        return "/v1/objects/hits", {"type": "counter", "op": "inc", "by": 1}
    elem = f"e{rng.randrange(100)}"
    return "/v1/objects/tags", {"type": "set", "op": "add" if rng.random() < 0.6 else "remove", "value": elem}


def post(api, path, body):
    """A write; removing from a set that is (now) empty answers 404, which is fine here."""
    try:
        http("POST", api + path, body)
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=15)
    p.add_argument("--topology", default="mesh")
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--writes-per-s", type=float, default=5, help="per node")
    p.add_argument("--interval-ms", type=int, default=200, help="the nodes' --sync-interval")
    p.add_argument("--sample-s", type=float, default=30)
    p.add_argument("--out", default="results/soak")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "deltanode"))
    args = p.parse_args()
    ensure_binary(args.binary)
    edges = topology_edges(args.binary, args.topology, args.nodes)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    os.makedirs(args.out, exist_ok=True)
    cluster = Cluster(args.binary, edges, args.nodes, "bp-rr", args.interval_ms)
    rows, rng = [], random.Random(1)
    try:
        cluster.wait_connected()
        pool = ThreadPoolExecutor(max_workers=args.nodes)
        start = time.time()
        end, next_sample, writes = start + args.minutes * 60, start, 0
        while True:
            now = time.time()
            if now >= next_sample or now >= end:
                texts = list(pool.map(lambda a: http("GET", a + "/metrics"), cluster.apis))
                for i, (proc, text) in enumerate(zip(cluster.procs, texts)):
                    rows.append({"t_s": round(now - start), "node": i, "rss_kib": rss_kib(proc.pid),
                                 "buffer_groups": int(metric(text, "deltanode_delta_buffer_groups")),
                                 "memory_units": int(metric(text, "deltanode_memory_units")),
                                 "data_dir_bytes": dir_bytes(cluster.dir(i)), "writes": writes})
                next_sample += args.sample_s
                if now >= end:
                    break
            batch = [write(rng, i) for i in range(args.nodes)]
            list(pool.map(lambda a_w: post(a_w[0], *a_w[1]), zip(cluster.apis, batch)))
            writes += len(batch)
            time.sleep(max(0.0, 1.0 / args.writes_per_s - (time.time() - now)))
        pool.shutdown()
        deadline, converged = time.time() + 60, False
        while time.time() < deadline and not converged:
            converged = len(set(cluster.digests())) == 1
            time.sleep(0.2)
        errors, warns = cluster.log_lines("ERROR"), cluster.log_lines("WARN")
    finally:
        cluster.stop()
    path = os.path.join(args.out, "soak.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    first_t, last_t = rows[0]["t_s"], rows[-1]["t_s"]
    # The first sample is taken before any write; compare the second with the last.
    times = sorted({r["t_s"] for r in rows})
    early = times[1] if len(times) > 2 else first_t
    at = lambda t, k: [r[k] for r in rows if r["t_s"] == t]
    print(f"{args.nodes} nodes, {args.minutes} min, {writes} writes; per node, at {early} s and at {last_t} s "
          f"(max over nodes):")
    for k in ("rss_kib", "buffer_groups", "memory_units", "data_dir_bytes"):
        print(f"  {k:15} {max(at(early, k)):>12} -> {max(at(last_t, k)):>12}")
    print(f"converged {converged}; ERROR lines {errors}, WARN lines {warns}; wrote {path}")
    sys.exit(0 if converged and errors == 0 else 1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
