#!/usr/bin/env python3
"""Topology experiments on real `deltanode run` processes, on loopback or on a LAN of namespaces.

Starts N nodes wired as the simulator's topology (`deltanode topology` gives the edges). On loopback
(the default) each node gets `--neighbour` for exactly its neighbours and `--peer` for those started
before it, mDNS off. With `--lan` every node runs in its own network namespace on a private bridge
(scripts/lan.py; needs root and iproute2), finds the others by mDNS alone, and the topology is
imposed with `--neighbour`.
Every round (one sync interval) each node makes one update through the HTTP API, as in the paper;
then the script waits until every state digest is equal, scrapes `/metrics` from every node, and
writes `results.csv` with the simulator's columns plus `time_to_converge_ms`, and draws its charts
with `deltanode charts` (transmission, CPU, time to converge). CPU is the nodes' own
(user + system, from /proc); memory is the nodes' `deltanode_memory_units` gauge, averaged over the
nodes and over samples taken every 10 rounds. Each round's writes go to every node at once, on a
fixed schedule (round r at r × interval); the script warns when it could not keep up.

Every run stops its processes and removes its data dirs and namespaces, also on Ctrl-C or SIGTERM.
Standard library only.

    scripts/experiment.py --topology mesh --nodes 15 --workload gset --algorithms all --out results/real
"""

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from lan import Lan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAN_TOKEN = "experiment-token"  # an API off loopback requires a token
HEADERS = {"Content-Type": "application/json"}
WIRE_ALGORITHMS = ["state", "delta", "bp", "rr", "bp-rr", "bp-rr-tree"]
HEADER = ["algorithm", "topology", "workload", "nodes", "payload_units", "metadata_units", "bytes", "cpu_ms",
          "avg_memory_units", "rounds", "converged", "lower_bound_units", "time_to_converge_ms"]
GMAP_KEYS = 1000


def http(method, url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=HEADERS)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read().decode()
    return json.loads(raw) if raw.startswith(("{", "[")) else raw


def metric(text, name):
    """Sum of every sample of `name` (any labels) in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    """Resident memory of a process, KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ensure_binary(binary):
    """Builds the release binary when `binary` does not exist yet."""
    if not os.path.exists(binary):
        subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "deltanode"], cwd=ROOT)


def topology_edges(binary, topology, nodes, seed=1):
    """The simulator's edges `[[a, b], …]` for the topology (`deltanode topology`)."""
    return json.loads(subprocess.check_output(
        [binary, "topology", "--topology", topology, "--nodes", str(nodes), "--seed", str(seed)], text=True))


class Cluster:
    """N running nodes, on loopback or (with `lan`) one per namespace, each restartable on its data
    dir with `kill(i)` and `start(i)`; `stop()` is idempotent."""

    def __init__(self, binary, edges, n, algorithm, interval_ms, lan=None):
        self.binary, self.algorithm, self.interval_ms, self.lan = binary, algorithm, interval_ms, lan
        self.procs, self.apis, self.addrs = [None] * n, [None] * n, [None] * n
        self.work = tempfile.mkdtemp(prefix="deltanode-exp-")
        self.neighbours = {i: set() for i in range(n)}
        for a, b in edges:
            self.neighbours[a].add(b)
            self.neighbours[b].add(a)
        self.ids = [subprocess.check_output([binary, "id", "--data-dir", self.dir(i)], text=True).strip()
                    for i in range(n)]
        for i in range(n):
            self.start(i)
        self.degree = [len(self.neighbours[i]) for i in range(n)]

    def start(self, i):
        """Starts node i (again) on its data dir; on loopback it dials the nodes before it."""
        lan = self.lan
        args = [self.binary, "run", "--data-dir", self.dir(i), "--sync-interval", str(self.interval_ms),
                "--algorithm", self.algorithm]
        if lan:
            args = lan.exec_prefix(i) + args + ["--listen", f"/ip4/{lan.addr(i)}/tcp/7000",
                                                 "--api", f"{lan.addr(i)}:7700", "--api-token", LAN_TOKEN,
                                                 "--insecure-http"]  # plain HTTP inside our own namespaces
        else:
            args += ["--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--no-mdns"]
        for j in sorted(self.neighbours[i]):
            args += ["--neighbour", self.ids[j]]
            if j < i and not lan:
                args += ["--peer", self.addrs[j]]
        log = open(self.log(i), "a")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"node {i} did not start; see {log.name}")
        ready = json.loads(line)
        self.procs[i], self.addrs[i], self.apis[i] = proc, ready["listen"][0], "http://" + ready["api"]

    def kill(self, i):
        """SIGKILL, as a crash."""
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def log(self, i):
        return os.path.join(self.work, f"node{i}.log")

    def log_lines(self, level):
        """Lines logged at `level` (ERROR, WARN…), over every node's log."""
        count = 0
        for i in range(len(self.ids)):
            with open(self.log(i)) as f:
                count += sum(1 for line in f if f" {level} " in line)
        return count

    def dir(self, i):
        return os.path.join(self.work, f"n{i}")

    def wait_connected(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if all(http("GET", api + "/health")["neighbours"] == d for api, d in zip(self.apis, self.degree)):
                    return
            except OSError:
                pass  # an API not answering yet
            time.sleep(0.1)
        raise RuntimeError("the topology did not connect")

    def digests(self):
        return [http("GET", api + "/v1/state")["digest"] for api in self.apis]

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.kill()
                p.wait()
        self.procs = []
        shutil.rmtree(self.work, ignore_errors=True)


class Workload:
    """The simulator's workloads, as API writes. `event` returns (path, body, updates)."""

    def __init__(self, spec, n, seed):
        self.spec, self.n, self.counter = spec, n, 0
        import random
        self.rng = random.Random(seed)

    def event(self, node, rnd):
        self.counter += 1
        if self.spec == "gset":
            return "/v1/objects/set", {"type": "gset", "op": "add", "value": node << 32 | self.counter}, 1
        if self.spec == "gcounter":
            return "/v1/objects/counter", {"type": "gcounter", "op": "inc"}, 1
        if self.spec.startswith("gmap:"):
            percent = int(self.spec.split(":")[1])
            mine = [k for k in range(GMAP_KEYS) if k % self.n == node]
            count = -(-len(mine) * percent // 100)
            keys = self.rng.sample(mine, count)
            ops = [{"key": f"k{k}", "type": "lww", "op": "set", "value": self.rng.getrandbits(48)} for k in keys]
            return "/v1/batch", {"ops": ops}, len(ops)
        raise SystemExit(f"unknown workload {self.spec}; expected gset, gcounter or gmap:K")


def run_one(binary, args, edges, algorithm, workload_spec):
    lan, cluster = None, None
    try:
        if args.lan:
            lan = Lan(args.nodes)
        cluster = Cluster(binary, edges, args.nodes, algorithm, args.interval_ms, lan)
        cluster.wait_connected()
        workload = Workload(workload_spec, args.nodes, args.seed)
        updates, memory_samples, late = 0, [], 0
        pool = ThreadPoolExecutor(max_workers=args.nodes)
        start = time.time()
        for rnd in range(args.events):
            # Round r's writes are due at start + r × interval: one write per node per sync
            # interval, as in the simulator, sent to all nodes at once.
            due = start + rnd * args.interval_ms / 1000.0
            if time.time() > due + args.interval_ms / 2000.0:
                late += 1
            time.sleep(max(0.0, due - time.time()))
            events = [workload.event(i, rnd) for i in range(args.nodes)]
            list(pool.map(lambda a_e: http("POST", a_e[0] + a_e[1][0], a_e[1][1]), zip(cluster.apis, events)))
            updates += sum(e[2] for e in events)
            if rnd % 10 == 0:
                memory_samples.append(sum(pool.map(
                    lambda a: metric(http("GET", a + "/metrics"), "deltanode_memory_units"), cluster.apis)) / args.nodes)
        pool.shutdown()
        if late > args.events // 20:
            print(f"warning: {late} of {args.events} rounds started more than half an interval late; "
                  f"the nodes ran more sync intervals per event than the simulator does", file=sys.stderr)
        time.sleep(max(0.0, start + args.events * args.interval_ms / 1000.0 - time.time()))
        writes_done = time.time()
        converged, deadline = False, time.time() + args.timeout
        while time.time() < deadline:
            if len(set(cluster.digests())) == 1:
                converged = True
                break
            time.sleep(0.05)
        converge_ms = (time.time() - writes_done) * 1000.0
        texts = [http("GET", a + "/metrics") for a in cluster.apis]
        payload = sum(metric(t, "deltanode_sync_payload_units_sent_total") for t in texts)
        meta = sum(metric(t, "deltanode_sync_metadata_units_sent_total") for t in texts)
        sent = sum(metric(t, "deltanode_sync_bytes_sent_total") for t in texts)
        cpu = sum(cpu_ms(p.pid) for p in cluster.procs)
        rounds = args.events + round(converge_ms / args.interval_ms)
        return {
            "algorithm": algorithm, "topology": args.topology, "workload": workload_spec, "nodes": args.nodes,
            "payload_units": int(payload), "metadata_units": int(meta), "bytes": int(sent), "cpu_ms": round(cpu, 1),
            "avg_memory_units": round(sum(memory_samples) / max(1, len(memory_samples)), 1), "rounds": rounds,
            "converged": str(converged).lower(), "lower_bound_units": updates * (args.nodes - 1),
            "time_to_converge_ms": round(converge_ms), "_elapsed_s": round(time.time() - start, 1),
        }
    finally:
        if cluster:
            cluster.stop()
        if lan:
            lan.destroy()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--topology", default="mesh", help="mesh, tree, ring, line, full, random:D")
    p.add_argument("--nodes", type=int, default=15)
    p.add_argument("--workload", default="gset", help="comma-separated: gset, gcounter, gmap:K")
    p.add_argument("--algorithms", default="all", help=f"comma-separated of {', '.join(WIRE_ALGORITHMS)}, or all")
    p.add_argument("--events", type=int, default=100, help="updates per node, one per sync interval")
    p.add_argument("--interval-ms", type=int, default=200, help="the nodes' --sync-interval")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for convergence after the writes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="results/real")
    p.add_argument("--binary", default=os.environ.get("DELTANODE_BIN") or os.path.join(ROOT, "target", "release", "deltanode"),
                   help="the deltanode binary (default: $DELTANODE_BIN, else the release build, built if absent)")
    p.add_argument("--lan", action="store_true",
                   help="one network namespace per node on a private bridge, peers found by mDNS (root)")
    args = p.parse_args()
    if args.lan:
        Lan.sweep()
        HEADERS["Authorization"] = f"Bearer {LAN_TOKEN}"
    algorithms = WIRE_ALGORITHMS if args.algorithms == "all" else args.algorithms.split(",")
    ensure_binary(args.binary)
    edges = topology_edges(args.binary, args.topology, args.nodes, args.seed)
    # Ctrl-C and SIGTERM unwind through the `finally` that stops the nodes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for workload in args.workload.split(","):
        for algorithm in algorithms:
            row = run_one(args.binary, args, edges, algorithm, workload)
            rows.append(row)
            print(f"{algorithm:6} {args.topology} {workload}: {row['payload_units'] + row['metadata_units']} units "
                  f"(lower bound {row['lower_bound_units']}), {row['bytes']} B, cpu {row['cpu_ms']} ms, "
                  f"converged {row['converged']} {row['time_to_converge_ms']} ms after the writes", flush=True)
    path = os.path.join(args.out, "results.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HEADER, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path}")
    # The same charts as `deltanode sim` draws (transmission, CPU), plus time to converge.
    subprocess.check_call([args.binary, "charts", path])


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
