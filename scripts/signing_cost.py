#!/usr/bin/env python3
"""What signing every delta would cost in transmission, from a simulator run's results.csv.

The simulator counts, per algorithm and cell, the bytes sent and the payload units — the
irreducibles of the join-decomposition that crossed links (docs/SIGNED_DELTAS.md explains why the
irreducible is what must carry proof of origin under RR and joined groups). For each bp-rr and
bp-rr-tree row this prints the bytes, the bytes per irreducible, and the ratio to unsigned bp-rr of:

  ed25519/irreducible  each irreducible carries its origin's ed25519 signature (64 bytes, the
                       libp2p key) and a 2-byte index of the signer: + 66 bytes per irreducible;
  manifest hash        the cheapest per-irreducible form of any batch scheme (an origin signs a
                       manifest of its irreducibles' 16-byte hashes; the signature itself amortised
                       away): + 16 bytes per irreducible, a lower bound for batched ed25519 and for
                       aggregate (BLS) signatures, whose verifier must know each signer's message.

    scripts/signing_cost.py docs/benchmarks/data/paper.csv

Standard library only.
"""

import csv
import sys

SIG = 64 + 2     # ed25519 signature and a signer index
HASH = 16        # a truncated hash per irreducible in a signed manifest


def main(path):
    rows = [r for r in csv.DictReader(open(path)) if r["algorithm"] in ("bp-rr", "bp-rr-tree")]
    base = {(r["topology"], r["workload"], r["nodes"]): int(r["bytes"])
            for r in rows if r["algorithm"] == "bp-rr"}
    print("| algorithm | topology | workload | bytes | bytes ÷ irreducible | ed25519/irreducible ÷ bp-rr | manifest hash ÷ bp-rr |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        b, units = int(r["bytes"]), int(r["payload_units"])
        ref = base[(r["topology"], r["workload"], r["nodes"])]
        print(f"| {r['algorithm']} | {r['topology']} | {r['workload']} | {b:,} | {b / max(units, 1):.1f} "
              f"| {(b + SIG * units) / ref:.2f} | {(b + HASH * units) / ref:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
