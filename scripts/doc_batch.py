#!/usr/bin/env python3
"""Real typing through a real node: the first N patches of a text-editing trace sent to
`POST /v1/batch` as `doc` splices, side by side in one run with the way an app without a text type
keeps a text (the whole string rewritten into a last-writer-wins register at every patch).

Starts `deltanode run` (loopback, mDNS off) in a temporary data dir, replays the patches (request
bodies prepared before the clock starts, each batch one fsynced commit), checks the node's text
equals the trace's text after those patches, and prints a table. Stops the node and removes its data
dir, also on Ctrl-C. Standard library only. The traces are in `bench/text/data/` (CC BY 4.0).

    cargo build --release -p deltanode
    scripts/doc_batch.py --patches 20000 --batch 500
"""

import argparse
import gzip
import json
import os
import time
import urllib.parse
import urllib.request

from local_node import local_node

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def post(api, path, body):
    req = urllib.request.Request(api + path, data=body, headers={"content-type": "application/json",
                                                                  "prefer": "return=minimal"},
                                 method="POST")
    with urllib.request.urlopen(req) as r:
        r.read()


def batches(ops, most):
    """Request bodies of at most `most` ops each, and under the node's 1 MiB body limit."""
    out, current, size = [], [], 0
    for op in ops:
        n = len(json.dumps(op)) + 1
        if current and (len(current) == most or size + n > 900_000):
            out.append(json.dumps({"ops": current}).encode())
            current, size = [], 0
        current.append(op)
        size += n
    if current:
        out.append(json.dumps({"ops": current}).encode())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace", default=os.path.join(ROOT, "bench/text/data/automerge-paper.json.gz"))
    ap.add_argument("--patches", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500, help="patches per request (fewer when they pass 900 KB)")
    ap.add_argument("--binary", default=os.environ.get("DELTANODE_BIN", os.path.join(ROOT, "target/release/deltanode")))
    args = ap.parse_args()
    with gzip.open(args.trace) as f:
        trace = json.load(f)
    patches = [p for t in trace["txns"] for p in t["patches"]][: args.patches]
    # The text after them, and the text after each (for the register baseline).
    text, texts = [], []
    for pos, delete, ins in patches:
        text[pos:pos + delete] = list(ins)
        texts.append("".join(text))
    expected = texts[-1]

    splices = [{"key": "doc", "type": "doc", "op": "splice", "path": ["body"], "index": pos, "delete": delete,
                "text": ins} for pos, delete, ins in patches]
    rewrites = [{"key": "lww", "type": "lww", "op": "set", "value": {"body": t}} for t in texts]
    bodies = {"doc splices": batches(splices, args.batch),
              "whole text into an lww register": batches(rewrites, args.batch)}
    with local_node(args.binary, "deltanode-doc-batch-") as node:
        api, data = node.api, node.data
        post(api, "/v1/objects/doc", json.dumps({"type": "doc", "op": "put", "path": ["body"],
                                                  "value": ""}).encode())
        print(f"| {len(patches):,} patches of {os.path.basename(args.trace)}, {args.batch} a request | "
              "patches/s | time | requests | data dir after |\n|---|---:|---:|---:|---:|")
        for name, reqs in bodies.items():
            start = time.perf_counter()
            for b in reqs:
                post(api, "/v1/batch", b)
            took = time.perf_counter() - start
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data) for f in fs)
            print(f"| {name} | {len(patches) / took:,.0f} | {took:.2f} s | {len(reqs)} | {size / 1e6:.1f} MB |")
        path = urllib.parse.quote('["body"]')
        with urllib.request.urlopen(f"{api}/v1/objects/doc?path={path}") as r:
            got = json.load(r)["value"]
        assert got == expected, "the node's text differs from the trace's"
        print(f"\nThe node's text equals the trace's after {len(patches):,} patches ({len(expected):,} characters).")


if __name__ == "__main__":
    main()
