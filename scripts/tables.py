#!/usr/bin/env python3
"""Markdown tables from `results.csv` files (of `deltanode sim` or `scripts/experiment.py`), and the
comparison with the paper's own per-cell figures.

One row per algorithm, one column per (topology, nodes, workload) run, in file order:

    scripts/tables.py results/paper/results.csv                   # transmission ÷ state-based
    scripts/tables.py --metric metadata results/metadata/results.csv
    scripts/tables.py --metric units results/real-tree/results.csv results/paper/results.csv
    scripts/tables.py --versus results/paper/results.csv results/real-tree/results.csv

`--versus SIM_CSV` instead prints, for every run of the given (real-process) CSVs, its units
(payload + metadata) beside the simulator's for the same algorithm, topology, nodes and workload,
and their ratio: the real-vs-simulator agreement BENCHMARKS.md states.

The paper's figures (docs/paper/enes2019-ldb-data.csv) beside ours, cell by cell:

    scripts/tables.py --paper micro --metric transmission SIM_CSV [REAL_CSV …]   # 15-node cells
    scripts/tables.py --paper summary SIM_CSV [REAL_CSV …]     # ours ÷ paper, range per algorithm
    scripts/tables.py --paper nodes SIM_CSV                    # metadata runs, 16/32/64 nodes
    scripts/tables.py --paper retwis SIM_CSV                   # Retwis, 50 nodes

Micro metrics: `transmission` (÷ state-based), `metadata` (share), `cpu` (÷ state-based), `memory`
(÷ state-based; the simulator's figure sampled at each sync, where the authors sampled, and at the
round's end). A ratio ours ÷ paper outside [0.8, 1.25] is marked with †.

Generated blocks: in a markdown file, the lines between
`<!-- generated: scripts/tables.py ARGS -->` and `<!-- end generated -->` are this script's output
for ARGS. `--update FILE` rewrites them; `--check FILE` exits 1, with a diff, when any differs.

Metrics (result tables): `state` (payload + metadata ÷ state-based's, the default), `units`
(payload + metadata), `bound` (payload ÷ the lower bound, updates × (N − 1)), `metadata` (metadata
share, %), `cpu` (ms), `memory` (average units per node), `converge` (ms after the last write; real
processes only). Standard library only.
"""

import argparse
import contextlib
import csv
import difflib
import io
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_CSV = os.path.join(ROOT, "docs", "paper", "enes2019-ldb-data.csv")
FAR = (0.8, 1.25)  # ours ÷ paper outside this range is marked
MICRO_ALGORITHMS = ["delta", "bp", "rr", "bp-rr", "scuttlebutt"]
BEGIN, END = "<!-- generated: scripts/tables.py ", "<!-- end generated -->"


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


def read(path):
    with open(os.path.join(ROOT, path) if not os.path.isabs(path) else path, newline="") as f:
        return list(csv.DictReader(f))


def versus(sim_csv, paths):
    key = lambda r: (r["algorithm"], r["topology"], r["nodes"], r["workload"])
    sim = {key(r): r for r in read(sim_csv)}
    print("| topology | nodes | workload | algorithm | real units | simulator units | real ÷ simulator |")
    print("|---|---:|---|---|---:|---:|---:|")
    worst = 0.0
    for path in paths:
        for r in read(path):
            s = sim.get(key(r))
            ratio = units(r) / units(s) if s else float("nan")
            worst = max(worst, abs(ratio - 1.0)) if s else worst
            print(f"| {r['topology']} | {r['nodes']} | {r['workload']} | {r['algorithm']} | {units(r)} | "
                  f"{units(s) if s else '-'} | {ratio:.3f} |")
    print(f"\nlargest difference: {100 * worst:.1f}%")


def results_table(metric, paths):
    rows = []
    for i, path in enumerate(paths):
        for r in read(path):
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
        f" [{c[0] + 1}]" if len(paths) > 1 else "")
    print("| algorithm | " + " | ".join(label(c) for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for a in algorithms:
        cells = []
        for c in columns:
            row = next((r for r in rows if r["algorithm"] == a and (r["_file"], r["topology"], r["nodes"], r["workload"]) == c), None)
            cells.append("-" if row is None else value(row, metric, rows))
        print(f"| {a} | " + " | ".join(cells) + " |")


# --- The paper's figures beside ours -------------------------------------------------------------

def index(rows):
    """(workload, topology, nodes, algorithm) → row."""
    return {(r["workload"], r["topology"], r["nodes"], r["algorithm"]): r for r in rows}


def paper_figure(p, metric, paper):
    """The paper's figure for one cell, from its units where it has them (full precision)."""
    if metric == "transmission":
        state = paper.get((p["workload"], p["topology"], p["nodes"], "state"))
        return units(p) / units(state) if state else None
    if metric == "metadata":
        return int(p["metadata_units"]) / max(1, units(p))
    column = {"cpu": "cpu_vs_state", "memory": "memory_vs_state"}[metric]
    return float(p[column]) if p[column] else None


def our_figure(r, metric, ours, memory_column="avg_memory_units"):
    if r is None:
        return None
    state = ours.get((r["workload"], r["topology"], r["nodes"], "state"))
    if metric == "transmission":
        return units(r) / units(state) if state else None
    if metric == "metadata":
        return int(r["metadata_units"]) / max(1, units(r))
    if metric == "cpu":
        return float(r["cpu_ms"]) / float(state["cpu_ms"]) if state else None
    if metric == "memory":
        column = memory_column if memory_column in r else "avg_memory_units"
        return float(r[column]) / float(state[column]) if state else None
    raise SystemExit(f"unknown metric {metric}")


def fmt(x, metric):
    if x is None:
        return "–"
    return f"{100 * x:.1f}%" if metric == "metadata" else f"{x:.3f}" if x < 10 else f"{x:.2f}"


def versus_paper(ours, paper_value):
    if ours is None or not paper_value:
        return None
    return ours / paper_value


def is_far(ratio):
    """Further than 1.25× from the paper, either way."""
    return ratio < FAR[0] or ratio > FAR[1]


def mark(ratio):
    if ratio is None:
        return "–"
    return f"{ratio:.2f}" + (" †" if is_far(ratio) else "")


def load_ours(sim_csv, real_csvs):
    sim = index(read(sim_csv))
    real = {}
    for path in real_csvs:
        real.update(index(read(path)))
    return sim, real


def micro_cells(paper):
    """The 15-node cells in the paper's order: topology, workload, algorithm."""
    order = ["gset", "gcounter", "gmap:10", "gmap:30", "gmap:60", "gmap:100"]
    cells = [k for k in paper if k[2] == "15" and k[3] in MICRO_ALGORITHMS]
    return sorted(cells, key=lambda k: (k[1], order.index(k[0]), MICRO_ALGORITHMS.index(k[3])))


def micro(metric, sim_csv, real_csvs):
    paper = index(read(PAPER_CSV))
    sim, real = load_ours(sim_csv, real_csvs)
    memory = metric == "memory"
    head = "| topology | workload | algorithm | paper | simulator | ÷ paper |"
    rule = "|---|---|---|---:|---:|---:|"
    if memory:
        head += " simulator, round's end | ÷ paper |"
        rule += "---:|---:|"
    if real_csvs:
        head += " real processes | ÷ paper |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    for k in micro_cells(paper):
        p = paper_figure(paper[k], metric, paper)
        if p is None:
            continue
        s = our_figure(sim.get(k), metric, sim, "sync_memory_units")
        line = f"| {k[1]} | {k[0]} | {k[3]} | {fmt(p, metric)} | {fmt(s, metric)} | {mark(versus_paper(s, p))} |"
        if memory:
            e = our_figure(sim.get(k), metric, sim, "avg_memory_units")
            line += f" {fmt(e, metric)} | {mark(versus_paper(e, p))} |"
        if real_csvs:
            r = our_figure(real.get(k), metric, real)
            line += f" {fmt(r, metric)} | {mark(versus_paper(r, p))} |"
        print(line)


def summary(sim_csv, real_csvs):
    """Per algorithm and metric: the range of ours ÷ paper over the 15-node cells, and how many
    cells fall outside [0.8, 1.25]."""
    paper = index(read(PAPER_CSV))
    sim, real = load_ours(sim_csv, real_csvs)
    metrics = ["transmission", "metadata", "cpu", "memory"]
    sources = [("simulator", sim, "sync_memory_units")] + ([("real processes", real, "avg_memory_units")] if real_csvs else [])
    print("| ours ÷ paper | " + " | ".join(metrics) + " |")
    print("|---|" + "---|" * len(metrics))
    for name, ours, memory_column in sources:
        for a in MICRO_ALGORITHMS:
            if not any(k[3] == a for k in ours):
                continue
            cells = []
            for m in metrics:
                ratios = []
                for k in micro_cells(paper):
                    if k[3] != a:
                        continue
                    p = paper_figure(paper[k], m, paper)
                    ratio = versus_paper(our_figure(ours.get(k), m, ours, memory_column), p)
                    if ratio is not None:
                        ratios.append(ratio)
                if not ratios:
                    cells.append("–")
                    continue
                far = sum(1 for x in ratios if is_far(x))
                cells.append(f"{min(ratios):.2f}–{max(ratios):.2f}" + (f" ({far} of {len(ratios)} †)" if far else ""))
            print(f"| {a}, {name} | " + " | ".join(cells) + " |")


def nodes_table(sim_csv):
    """The metadata runs (gset, mesh, 16/32/64 nodes, and 15): share and units beside the paper's."""
    paper = index(read(PAPER_CSV))
    sim = index(read(sim_csv))
    print("| nodes | algorithm | paper: metadata share | ours | ÷ paper | paper: units | ours | ÷ paper |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for k in sorted((k for k in paper if k[0] == "gset" and k[1] == "mesh" and k[3] in ("bp-rr", "scuttlebutt")),
                    key=lambda k: (int(k[2]), k[3])):
        p, r = paper[k], sim.get(k)
        pm, rm = int(p["metadata_units"]) / units(p), (int(r["metadata_units"]) / units(r) if r else None)
        print(f"| {k[2]} | {k[3]} | {100 * pm:.1f}% | {fmt(rm, 'metadata')} | {mark(versus_paper(rm, pm))} | "
              f"{units(p)} | {units(r) if r else '–'} | {mark(versus_paper(units(r) if r else None, units(p)))} |")


def retwis_table(sim_csv):
    """Retwis, 50 nodes: metadata share of classic delta and BP+RR, and BP+RR ÷ classic delta."""
    paper = index(read(PAPER_CSV))
    sim = index(read(sim_csv))
    zipfs = sorted({k[0] for k in paper if k[0].startswith("retwis:")}, key=lambda w: float(w.split(":")[1]))
    print("| Zipf | paper: delta metadata | ours | paper: bp-rr metadata | ours | paper: bp-rr ÷ delta | ours | ÷ paper |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in zipfs:
        pd, pb = paper[(w, "mesh", "50", "delta")], paper[(w, "mesh", "50", "bp-rr")]
        sd, sb = sim.get((w, "mesh", "50", "delta")), sim.get((w, "mesh", "50", "bp-rr"))
        share = lambda r: int(r["metadata_units"]) / units(r) if r else None
        prat = units(pb) / units(pd)
        srat = units(sb) / units(sd) if sd and sb else None
        print(f"| {w.split(':')[1]} | {fmt(share(pd), 'metadata')} | {fmt(share(sd), 'metadata')} | "
              f"{fmt(share(pb), 'metadata')} | {fmt(share(sb), 'metadata')} | {prat:.3f} | {fmt(srat, 'x')} | "
              f"{mark(versus_paper(srat, prat))} |")


# --- Generated blocks in markdown ----------------------------------------------------------------

def run(argv):
    """This script's output for `argv`, as a string."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(argv)
    return out.getvalue()


def regenerate(text):
    lines, out, i = text.splitlines(keepends=True), [], 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if line.startswith(BEGIN):
            args = shlex.split(line[len(BEGIN):].rsplit("-->", 1)[0])
            while i < len(lines) and not lines[i].startswith(END):
                i += 1
            if i == len(lines):
                raise SystemExit(f"a generated block ({' '.join(args)}) has no '{END}' line")
            out.append(run(args))
    return "".join(out)


def update(path, check):
    with open(path) as f:
        text = f.read()
    new = regenerate(text)
    if check:
        if new != text:
            sys.stdout.writelines(difflib.unified_diff(
                text.splitlines(keepends=True), new.splitlines(keepends=True), path, "regenerated"))
            print(f"\n{path}: generated tables differ from a regeneration; run scripts/tables.py --update {path}")
            raise SystemExit(1)
        print(f"{path}: every generated table matches its regeneration")
    elif new != text:
        with open(path, "w") as f:
            f.write(new)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metric", default="state", help="state (÷ state-based), units, bound (payload ÷ lower bound), total-bound, metadata, cpu, memory, converge, rounds, bytes-per-round, cpu-per-round; with --paper micro: transmission, metadata, cpu, memory")
    p.add_argument("--versus", metavar="SIM_CSV")
    p.add_argument("--paper", choices=["micro", "summary", "nodes", "retwis"])
    p.add_argument("--update", metavar="MARKDOWN")
    p.add_argument("--check", metavar="MARKDOWN")
    p.add_argument("csv", nargs="*")
    args = p.parse_args(argv)
    if args.update or args.check:
        return update(args.update or args.check, check=bool(args.check))
    if not args.csv:
        p.error("give at least one results.csv")
    if args.versus:
        return versus(args.versus, args.csv)
    if args.paper == "micro":
        return micro(args.metric, args.csv[0], args.csv[1:])
    if args.paper == "summary":
        return summary(args.csv[0], args.csv[1:])
    if args.paper == "nodes":
        return nodes_table(args.csv[0])
    if args.paper == "retwis":
        return retwis_table(args.csv[0])
    return results_table(args.metric, args.csv)


if __name__ == "__main__":
    main()
