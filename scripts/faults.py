#!/usr/bin/env python3
"""Fault injection on real nodes in network namespaces: does every acknowledged write survive?

Starts N nodes (default 7, a mesh of degree 4) each in its own network namespace on a private bridge
(scripts/lan.py; root and iproute2 needed), finding each other by mDNS with the topology imposed by
`--neighbour`. A writer per node writes non-stop through the HTTP API — unique elements to a
grow-only set, increments to a counter, unique values to a last-writer-wins register — and records
every operation with its times and outcome (acknowledged: on disk; refused; or no answer). Meanwhile
a fault is injected; then it is healed, the writers stop, the script waits until every node's state
digest is equal, checks that every node holds every acknowledged element, and checks the history
(scripts/history.py): the counter equals the acknowledged increments (plus at most the unanswered
ones), the set holds every acknowledged element and nothing never written, the register holds a
written value not overtaken by a later acknowledged write.

Scenarios (`--scenario`, comma-separated, default all):
  partition  blackhole routes split the nodes into {0..N/2-1} and the rest for --fault-s seconds:
             packets vanish, no FIN, no error (a silent partition); writes go on on both sides
  netem      tc netem "loss 20% delay 50ms" on every node's interface for --fault-s seconds; on a
             kernel without sch_netem, 20% loss with nftables and no delay (reported as "loss")
  kill       every ~2 s a random node is killed with SIGKILL mid-burst and restarted 1 s later
             on the same data dir and address

Prints one line per scenario and writes `results.csv` (scenario, acked writes, converged, missing,
time to converge after healing, operations acknowledged, unanswered and lost, the history's verdict). Exits non-zero if any scenario fails. Cleans up its processes and
namespaces, also on Ctrl-C.

    sudo scripts/faults.py --out results/faults
"""

import argparse
import csv
import functools
import os
import random
import signal
import sys
import threading
import time

import experiment
from experiment import LAN_TOKEN, ROOT, Cluster, ensure_binary, topology_edges
from history import History, check
from lan import Lan

KEY = "acked"
COUNTER = "incs"
REGISTER = "reg"
NETEM = True  # set in main(): whether this kernel has tc netem
# The nodes' APIs are off loopback, so they want the token; a request gets 5 s.
http = functools.partial(experiment.http, timeout=5)


class Writers:
    """One thread per node writing in turn: a unique element to the grow-only set `acked`, an
    increment of 1–5 to the counter `incs`, a unique value to the register `reg`. Every operation
    goes in `history` (scripts/history.py) with its times and outcome; `acked` holds the set
    elements the API acknowledged."""

    def __init__(self, nodes, pause_s=0.02, seed=1):
        self.nodes, self.pause_s, self.stop_flag = nodes, pause_s, threading.Event()
        self.acked, self.failed, self.lock = set(), 0, threading.Lock()
        self.history, self.rng = History(), random.Random(seed)
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(len(nodes.apis))]
        for t in self.threads:
            t.start()

    def run(self, i):
        k = 0
        while not self.stop_flag.is_set():
            k += 1
            api = self.nodes.apis[i]
            if k % 3 == 1:
                op = ("add", KEY, f"n{i}-{k}", {"type": "gset", "op": "add", "value": f"n{i}-{k}"})
            elif k % 3 == 2:
                by = 1 + (k // 3) % 5
                op = ("inc", COUNTER, by, {"type": "gcounter", "op": "inc", "by": by})
            else:
                op = ("set", REGISTER, f"n{i}-{k}", {"type": "lww", "op": "set", "value": f"n{i}-{k}"})
            kind, key, value, body = op
            outcome = self.history.run(i, kind, key, value,
                                       lambda: http("POST", f"{api}/v1/objects/{key}", body))
            with self.lock:
                if outcome == "ok" and kind == "add":
                    self.acked.add(value)
                if outcome != "ok":
                    self.failed += 1
            if outcome != "ok":
                time.sleep(0.1)
            time.sleep(self.pause_s)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join()


def converge(nodes, acked, timeout):
    """Waits for equal digests; returns (converged, seconds, missing writes on the worst node)."""
    start = time.time()
    while time.time() - start < timeout:
        try:
            digests = {http("GET", a + "/v1/state")["digest"] for a in nodes.apis}
            if len(digests) == 1:
                break
        except OSError:
            digests = set()
        time.sleep(0.2)
    seconds = time.time() - start
    missing = 0
    for a in nodes.apis:
        # Under injected loss a read can time out (a few SYNs lost in a row): that is not a missing
        # write, so a node counts as holding nothing only when three reads in a row fail.
        held = set()
        for _ in range(3):
            try:
                held = set(http("GET", f"{a}/v1/objects/{KEY}")["value"])
                break
            except OSError:
                time.sleep(0.5)
        missing = max(missing, len(acked - held))
    return len(digests) == 1, seconds, missing


def scenario(name, args, lan, nodes):
    writers = Writers(nodes)
    time.sleep(args.before_s)
    rng = random.Random(args.seed)
    side = list(range(lan.n // 2))
    kills = 0
    diverged = ""
    if name == "partition":
        lan.partition(side)
        time.sleep(args.fault_s)
        # Proof that the cut held: the two sides' states differ just before healing.
        a, b = (http("GET", nodes.apis[i] + "/v1/state")["digest"] for i in (side[0], lan.n - 1))
        diverged = str(a != b).lower()
        lan.heal()
    elif name == "netem":
        # 20% loss and 50 ms delay with tc netem; on a kernel without sch_netem, 20% loss with
        # nftables and no delay (the row says which).
        for i in range(lan.n):
            if NETEM:
                lan.netem(i, "loss 20% delay 50ms")
            else:
                lan.loss(i, 20)
        time.sleep(args.fault_s)
    elif name == "kill":
        end = time.time() + args.fault_s
        while time.time() < end:
            time.sleep(rng.uniform(1.0, 3.0))
            victim = rng.randrange(lan.n)
            nodes.kill(victim)
            kills += 1
            time.sleep(1.0)
            nodes.start(victim)
    else:
        raise SystemExit(f"unknown scenario {name}")
    time.sleep(args.after_s)
    writers.stop()
    converged, seconds, missing = converge(nodes, writers.acked, args.timeout)
    # The history against one node's final state (all equal once converged).
    final = {}
    for key in (KEY, COUNTER, REGISTER):
        try:
            final[key] = http("GET", f"{nodes.apis[0]}/v1/objects/{key}")["value"]
        except OSError:
            pass
    verdict = check(writers.history, final)
    for problem in verdict["problems"]:
        print(f"{name}: {problem}", file=sys.stderr)
    if name == "netem":
        for i in range(lan.n):
            lan.netem(i, None) if NETEM else lan.loss(i, 0)
    if name == "netem" and not NETEM:
        name = "loss"  # what was actually injected
    return {"scenario": name, "nodes": lan.n, "fault_s": args.fault_s, "acked_writes": len(writers.acked),
            "failed_writes": writers.failed, "kills": kills, "sides_diverged": diverged, "converged": str(converged).lower(),
            "missing_on_worst_node": missing, "converge_s": round(seconds, 1),
            "acked_ops": verdict["acked"], "ambiguous_ops": verdict["ambiguous"], "lost_ops": verdict["lost"],
            "history_ok": str(verdict["ok"]).lower(),
            "ok": str(converged and missing == 0 and diverged != "false" and verdict["ok"]).lower()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="partition,netem,kill")
    p.add_argument("--nodes", type=int, default=7)
    p.add_argument("--topology", default="mesh")
    p.add_argument("--interval-ms", type=int, default=200)
    p.add_argument("--fault-s", type=float, default=15, help="how long each fault lasts")
    p.add_argument("--before-s", type=float, default=3, help="writes before the fault")
    p.add_argument("--after-s", type=float, default=3, help="writes after healing")
    p.add_argument("--timeout", type=float, default=120, help="seconds allowed to converge after the writes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="results/faults")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "deltanode"))
    args = p.parse_args()
    ensure_binary(args.binary)
    edges = topology_edges(args.binary, args.topology, args.nodes)
    experiment.HEADERS["Authorization"] = f"Bearer {LAN_TOKEN}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    Lan.sweep()
    global NETEM
    NETEM = Lan.netem_available()
    if not NETEM:
        print("this kernel has no sch_netem: the netem scenario injects 20% loss with nftables, no delay",
              file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for name in args.scenario.split(","):
        lan = nodes = None
        try:
            lan = Lan(args.nodes)
            nodes = Cluster(args.binary, edges, args.nodes, "bp-rr", args.interval_ms, lan)
            nodes.wait_connected()
            row = scenario(name, args, lan, nodes)
            row["error_log_lines"] = nodes.log_lines("ERROR")
        finally:
            if nodes:
                nodes.stop()
            if lan:
                lan.destroy()
        rows.append(row)
        print(f"{row['scenario']:9} {row['acked_writes']} acked writes, {row['failed_writes']} refused, converged "
              f"{row['converged']} in {row['converge_s']} s, missing {row['missing_on_worst_node']}, "
              f"kills {row['kills']}, sides diverged {row['sides_diverged'] or '-'}, ERROR log lines {row['error_log_lines']}, "
              f"history: {row['acked_ops']} ops acked, {row['ambiguous_ops']} unanswered, {row['lost_ops']} lost: "
              f"{'OK' if row['ok'] == 'true' else 'FAILED'}", flush=True)
    path = os.path.join(args.out, "results.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path}")
    sys.exit(0 if all(r["ok"] == "true" for r in rows) else 1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
