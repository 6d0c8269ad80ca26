#!/usr/bin/env python3
"""Draws the neighbour counts of a real bounded-views run over time, as an SVG.

Input: the CSV the end-to-end test `on_a_lan_with_mdns_views_stay_bounded_and_survive_kills`
writes with `DELTANODE_VIEWS_TRACE=FILE` (rows `t_s,what,min,mean,max,nodes`: `sample` rows four
times a second, and the events `write`, `converged`, `kill`). Draws the fewest, mean and most
neighbours of the live nodes, the bound K as a dashed line, and each event as a labelled
vertical line. Standard library only.

    scripts/views_chart.py --k 8 TRACE.csv docs/benchmarks/views_lan.svg
"""

import argparse
import csv

W, H, LEFT, RIGHT, TOP, BOTTOM = 900, 420, 60, 20, 40, 50


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, required=True, help="the bound the run used")
    ap.add_argument("--title", default="Neighbours per node over time (real nodes, mDNS, bounded views)")
    ap.add_argument("trace")
    ap.add_argument("out")
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.trace)))
    samples = [r for r in rows if r["what"] == "sample"]
    events = [r for r in rows if r["what"] != "sample"]
    if not samples:
        raise SystemExit(f"{args.trace}: no samples")
    t_min = int(min(float(r["t_s"]) for r in rows))
    t_max = max(float(r["t_s"]) for r in rows)
    y_max = args.k + 2
    x = lambda t: LEFT + (W - LEFT - RIGHT) * (t - t_min) / max(t_max - t_min, 1e-9)
    y = lambda v: H - BOTTOM - (H - TOP - BOTTOM) * v / y_max
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{args.title}</text>']
    for v in range(0, y_max + 1):
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>')
    step = max(1, round((t_max - t_min) / 10))
    for t in range(t_min, int(t_max) + 1, step):
        out.append(f'<text x="{x(t):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{t}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 10}" text-anchor="middle">seconds since the run began (the first sample follows the start of the last node)</text>')
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(args.k):.1f}" y2="{y(args.k):.1f}" '
               f'stroke="black" stroke-dasharray="6 4"/>')
    out.append(f'<text x="{W - RIGHT - 4}" y="{y(args.k) - 6:.1f}" text-anchor="end">K = {args.k}</text>')
    for i, e in enumerate(events):
        ex = x(float(e["t_s"]))
        out.append(f'<line x1="{ex:.1f}" x2="{ex:.1f}" y1="{TOP}" y2="{H - BOTTOM}" stroke="#999"/>')
        out.append(f'<text x="{ex + 3:.1f}" y="{TOP + 14 + 14 * (i % 3)}">{e["what"]}</text>')
    for key, colour in (("max", "#d62728"), ("mean", "#1f77b4"), ("min", "#2ca02c")):
        points = " ".join(f'{x(float(r["t_s"])):.1f},{y(float(r[key])):.1f}' for r in samples)
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for i, (label, colour) in enumerate((("most", "#d62728"), ("mean", "#1f77b4"), ("fewest", "#2ca02c"))):
        lx = LEFT + 10 + 90 * i
        out.append(f'<line x1="{lx}" x2="{lx + 20}" y1="{H - BOTTOM - 10}" y2="{H - BOTTOM - 10}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 24}" y="{H - BOTTOM - 6}">{label}</text>')
    out.append("</svg>")
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.out}: {len(samples)} samples, {len(events)} events, {t_max:.1f} s")


if __name__ == "__main__":
    main()
