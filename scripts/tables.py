#!/usr/bin/env python3
"""Markdown tables from `results.csv` files (of `deltanode sim` or `scripts/experiment.py`).

One row per algorithm, one column per (topology, nodes, workload) run, in file order:

    scripts/tables.py results/paper/results.csv                   # transmission ÷ state-based
    scripts/tables.py --metric metadata results/metadata/results.csv
    scripts/tables.py --metric units results/real-tree/results.csv results/paper/results.csv
    scripts/tables.py --versus results/paper/results.csv results/real-tree/results.csv

`--versus SIM_CSV` instead prints, for every run of the given (real-process) CSVs, its units
(payload + metadata) beside the simulator's for the same algorithm, topology, nodes and workload,
and their ratio: the real-vs-simulator agreement BENCHMARKS.md states.

Metrics: `state` (payload + metadata ÷ state-based's, the default), `units` (payload + metadata),
`bound` (payload ÷ the lower bound, updates × (N − 1)), `metadata` (metadata share, %), `cpu` (ms),
`memory` (average units per node), `converge` (ms after the last write; real processes only).
Standard library only.
"""

import argparse
import csv


def value(row, metric, rows):
    total = units(row)
    if metric == "units":
        return f"{total}"
    if metric == "state":
        state = next((r for r in rows if r["algorithm"] == "state" and same_run(r, row)), None)
        if state is None:
            return "-"
        return f"{total / max(1, units(state)):.3f}"
    if metric == "bound":
        return f"{int(row['payload_units']) / max(1, int(row['lower_bound_units'])):.2f}"
    if metric == "metadata":
        return f"{100.0 * int(row['metadata_units']) / max(1, total):.1f}%"
    if metric == "cpu":
        return f"{float(row['cpu_ms']):.0f}"
    if metric == "memory":
        return f"{float(row['avg_memory_units']):.0f}"
    if metric == "converge":
        return row.get("time_to_converge_ms", "-")
    if metric == "bytes-per-round":
        return f"{int(row['bytes']) / max(1, int(row['rounds'])):.0f}"
    if metric == "cpu-per-round":
        return f"{float(row['cpu_ms']) / max(1, int(row['rounds'])):.2f}"
    if metric == "total-bound":
        return f"{total / max(1, int(row['lower_bound_units'])):.2f}"
    if metric == "rounds":
        return row["rounds"]
    raise SystemExit(f"unknown metric {metric}")


def same_run(a, b):
    return (a["topology"], a["nodes"], a["workload"], a.get("_file")) == (
        b["topology"], b["nodes"], b["workload"], b.get("_file"))


def units(row):
    return int(row["payload_units"]) + int(row["metadata_units"])


def versus(sim_csv, paths):
    key = lambda r: (r["algorithm"], r["topology"], r["nodes"], r["workload"])
    with open(sim_csv, newline="") as f:
        sim = {key(r): r for r in csv.DictReader(f)}
    print("| topology | nodes | workload | algorithm | real units | simulator units | real ÷ simulator |")
    print("|---|---:|---|---|---:|---:|---:|")
    worst = 0.0
    for path in paths:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                s = sim.get(key(r))
                ratio = units(r) / units(s) if s else float("nan")
                worst = max(worst, abs(ratio - 1.0)) if s else worst
                print(f"| {r['topology']} | {r['nodes']} | {r['workload']} | {r['algorithm']} | {units(r)} | "
                      f"{units(s) if s else '-'} | {ratio:.3f} |")
    print(f"\nlargest difference: {100 * worst:.1f}%")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metric", default="state", help="state (÷ state-based), units, bound (payload ÷ lower bound), total-bound, metadata, cpu, memory, converge, rounds, bytes-per-round, cpu-per-round")
    p.add_argument("--versus", metavar="SIM_CSV")
    p.add_argument("csv", nargs="+")
    args = p.parse_args()
    if args.versus:
        return versus(args.versus, args.csv)
    rows = []
    for i, path in enumerate(args.csv):
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                r["_file"] = i
                rows.append(r)
    columns, algorithms = [], []
    for r in rows:
        col = (r["_file"], r["topology"], r["nodes"], r["workload"])
        if col not in columns:
            columns.append(col)
        if r["algorithm"] not in algorithms:
            algorithms.append(r["algorithm"])
    label = lambda c: f"{c[1]} {c[3]}" + (f" ({c[2]})" if len({x[2] for x in columns}) > 1 else "") + (
        f" [{c[0] + 1}]" if len(args.csv) > 1 else "")
    print("| algorithm | " + " | ".join(label(c) for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for a in algorithms:
        cells = []
        for c in columns:
            row = next((r for r in rows if r["algorithm"] == a and (r["_file"], r["topology"], r["nodes"], r["workload"]) == c), None)
            cells.append("-" if row is None else value(row, args.metric, rows))
        print(f"| {a} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
