#!/usr/bin/env python3
"""The write path on one real node: what a write costs as the object it lands in grows.

Starts `deltanode run` (loopback, mDNS off) in a temporary data dir, then measures, side by side in
one run:
  - one add into an empty set, and one into a set of N elements, with the default reply (size and
    change past 1,000 elements) and with `Prefer: return=representation` (the whole value: what
    every write answered before);
  - bulk loading N elements in batches of 5,000 (each batch fsynced), request bodies prepared
    before the clock starts;
  - the node's resident memory holding the N elements (16-byte strings), and a full `GET /v1/state`.
Prints a table; stops the node and removes its data dir, also on Ctrl-C. Standard library only.
With `--profile OUT.svg`, also records a flame graph (perf with DWARF call stacks, drawn by
inferno: `cargo install inferno`) of the node while it takes 200 single adds into the N-element
set, default reply; `--binary` points at another build (an older one, for the graph before).

    cargo build --release -p deltanode
    scripts/write_path.py --elements 1000000
    scripts/write_path.py --elements 100000 --profile docs/benchmarks/write-path-after.svg
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

from local_node import local_node

BATCH = 5_000


def post(api, path, body, headers=None):
    req = urllib.request.Request(
        api + path,
        data=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
        method="POST",
    )
    start = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        n = len(r.read())
    return time.perf_counter() - start, n


def median_ms(api, key, prefix, headers=None, n=50):
    times, size = [], 0
    for i in range(n):
        op = {"type": "set", "op": "add", "value": f"{prefix}-{i}"}
        t, size = post(api, f"/v1/objects/{key}", op, headers)
        times.append(t * 1000)
    return statistics.median(times), size


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def profile(pid, api, svg, title):
    data = svg + ".perf.data"
    rec = subprocess.Popen(["perf", "record", "-q", "-F", "2000", "--call-graph", "dwarf,16384",
                            "-p", str(pid), "-o", data], stderr=subprocess.DEVNULL)
    time.sleep(1)
    median_ms(api, "big", "p", n=200)
    rec.send_signal(2)
    rec.wait()
    script = subprocess.run(["perf", "script", "-i", data], capture_output=True, text=True).stdout
    folded = subprocess.run(["inferno-collapse-perf"], input=script, capture_output=True, text=True).stdout
    with open(svg, "w") as out:
        subprocess.run(["inferno-flamegraph", "--title", title, "--width", "1200", "--minwidth", "1.5"],
                       input=folded, stdout=out, text=True)
    os.remove(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--elements", type=int, default=1_000_000)
    ap.add_argument("--binary", default="target/release/deltanode")
    ap.add_argument("--profile", metavar="SVG", help="draw a flame graph of 200 single adds")
    args = ap.parse_args()
    with local_node(args.binary, "deltanode-write-path-") as node:
        api = node.api
        rows = []
        empty, _ = median_ms(api, "empty", "e")
        rows.append(("one add into an empty set, default reply", f"{empty:.2f} ms", ""))
        bodies = [
            json.dumps({"ops": [
                {"key": "big", "type": "set", "op": "add", "value": f"element-{c * BATCH + i:08d}"}
                for i in range(BATCH)
            ]}).encode()
            for c in range(args.elements // BATCH)
        ]
        start = time.perf_counter()
        last = 0.0
        for b in bodies:
            last, _ = post(api, "/v1/batch", b)
        took = time.perf_counter() - start
        rows.append((f"bulk load of {args.elements:,} in batches of {BATCH:,}", f"{args.elements / took:,.0f} elements/s",
                     f"{took:.1f} s; last batch {last * 1000:.0f} ms"))
        if args.profile:
            profile(node.pid, api, args.profile, f"one add into {args.elements:,} elements ({args.binary})")
        default, size = median_ms(api, "big", "d")
        rows.append((f"one add into {args.elements:,}, default reply", f"{default:.2f} ms",
                     f"{default / empty:.2f}× the empty set's; reply {size} bytes"))
        full, size = median_ms(api, "big", "r", {"Prefer": "return=representation"}, n=10)
        rows.append((f"one add into {args.elements:,}, Prefer: return=representation", f"{full:.2f} ms",
                     f"{full / default:.0f}× the default; reply {size:,} bytes"))
        rows.append((f"node RSS holding {args.elements:,} elements", f"{rss_mb(node.pid):.0f} MB", ""))
        start = time.perf_counter()
        with urllib.request.urlopen(api + "/v1/state") as r:
            n = len(r.read())
        rows.append(("GET /v1/state", f"{(time.perf_counter() - start) * 1000:.0f} ms",
                     f"{n:,} bytes; RSS after {rss_mb(node.pid):.0f} MB"))
        width = max(len(r[0]) for r in rows)
        print(f"| {'what':<{width}} | figure | note |\n|{'-' * (width + 2)}|---:|---|")
        for what, figure, note in rows:
            print(f"| {what:<{width}} | {figure} | {note} |")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
