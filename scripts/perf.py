#!/usr/bin/env python3
"""Node performance on loopback, every figure of BENCHMARKS.md's "The node" section.

- write throughput and latency through the HTTP API with durability on (every acknowledged write is
  fsynced): single writes and `POST /v1/batch`, driven by wrk (`apt-get install wrk`);
- time from a write on one node to its visibility on the farthest node of a 15-node line and mesh;
- CPU per update: all nodes' CPU (user + system, /proc) per local update of a 15-node mesh under load,
  less what the same cluster spends idle;
- resident memory (VmRSS) of idle and loaded nodes; start-up time (spawn to the ready line), empty
  and with 100,000 objects on disk.

Writes `OUT/perf.json` and prints a markdown table. Cleans up its processes and temp dirs.
Standard library only (plus the wrk binary).

    python3 scripts/perf.py --out results/perf
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
from collections import deque

from experiment import ROOT, Cluster, cpu_ms, ensure_binary, http, rss_kib, topology_edges

BATCH = 100  # ops per POST /v1/batch


def wrk(url, lua, seconds, connections):
    """Runs wrk; returns requests/s, p50 and p99 in ms, and non-2xx responses."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        out = subprocess.check_output(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                                       "-s", f.name, url], text=True)
    finally:
        os.unlink(f.name)
    res = {"connections": connections, "non_2xx": 0}
    for line in out.splitlines():
        parts = line.split()
        if "requests in" in line:
            res["requests"] = int(parts[0])
        elif line.startswith("Requests/sec:"):
            res["requests_per_s"] = float(parts[1])
        elif parts[:1] in (["50%"], ["99%"]):
            res["p" + parts[0].rstrip("%")] = to_ms(parts[1])
        elif line.strip().startswith("Non-2xx"):
            res["non_2xx"] = int(parts[-1])
    return res


def to_ms(text):
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


SINGLE = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format(nil, "/v1/objects/c" .. math.random(1, 1000), nil, '{"type":"counter","op":"inc","by":1}')
end
"""

BATCHED = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local ops = {}
  for i = 1, %d do
    ops[i] = '{"key":"c' .. math.random(1, 1000) .. '","type":"counter","op":"inc","by":1}'
  end
  return wrk.format(nil, "/v1/batch", nil, '{"ops":[' .. table.concat(ops, ",") .. ']}')
end
""" % BATCH


def throughput(binary, seconds):
    """One node (no neighbours): single writes at 1 and 16 connections, batches at 16."""
    c = Cluster(binary, [], 1, "bp-rr", 500)
    try:
        api = c.apis[0]
        pid = c.procs[0].pid
        idle = rss_kib(pid)
        out = {"idle_rss_kib": idle}
        out["single_c1"] = wrk(api, SINGLE, seconds, 1)
        out["single_c16"] = wrk(api, SINGLE, seconds, 16)
        out["batch_c16"] = wrk(api, BATCHED, seconds, 16)
        out["batch_c16"]["ops_per_s"] = out["batch_c16"]["requests_per_s"] * BATCH
        # Every acknowledged increment is in the counters: the run lost nothing. wrk counts the
        # replies it read; requests in flight when it stopped (at most one per connection) were
        # applied too, so the counters may hold that many more, never fewer.
        total = sum(o["value"] for o in http("GET", api + "/v1/state")["objects"].values() if o["type"] == "counter")
        acked = (out["single_c1"]["requests"] + out["single_c16"]["requests"]
                 + BATCH * out["batch_c16"]["requests"])
        in_flight = 1 + 16 + 16 * BATCH
        out["counter_total"], out["acknowledged_increments"] = total, acked
        if not acked <= total <= acked + in_flight:
            raise SystemExit(f"counters hold {total} increments, {acked} were acknowledged")
        if any(out[k]["non_2xx"] for k in ("single_c1", "single_c16", "batch_c16")):
            raise SystemExit(f"error replies: {out}")
        out["loaded_rss_kib"] = rss_kib(pid)
        out["objects"] = http("GET", api + "/health")["objects"]
        return out
    finally:
        c.stop()


def farthest(edges, n, src=0):
    adj = {i: set() for i in range(n)}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    dist = {src: 0}
    queue = deque([src])
    while queue:
        x = queue.popleft()
        for y in adj[x]:
            if y not in dist:
                dist[y] = dist[x] + 1
                queue.append(y)
    far = max(dist, key=dist.get)
    return far, dist[far]


def seen(url):
    """The set's elements, none while the object is not there yet (404)."""
    try:
        return http("GET", url, timeout=5)["value"]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def visibility(binary, topology, algorithm, interval_ms, samples):
    """Write at one end, poll the other every 5 ms until it sees the write; both ways.

    Nodes start one after another in index order, so their sync timers fire in that order within
    an interval: a write from node 0 rides that order (each hop forwards it at its next tick, just
    after) and a write from the far end goes against it (each hop waits nearly a whole interval).
    Real nodes' phases are arbitrary: the two directions bracket what they see.
    """
    n = 15
    edges = topology_edges(binary, topology, n)
    far, hops = farthest(edges, n)
    c = Cluster(binary, edges, n, algorithm, interval_ms)
    try:
        c.wait_connected()
        time.sleep(3 * interval_ms / 1000)  # catch-ups done; bp-rr-tree's tree settled
        res = {"topology": topology, "algorithm": algorithm, "hops": hops, "interval_ms": interval_ms}
        for name, (src, dst) in (("with_phases", (0, far)), ("against_phases", (far, 0))):
            lat = []
            for k in range(samples):
                time.sleep(random.uniform(0, interval_ms / 1000))
                start = time.monotonic()
                value = f"{name}-{k}"
                http("POST", c.apis[src] + "/v1/objects/vis", {"type": "gset", "op": "add", "value": value})
                while value not in seen(c.apis[dst] + "/v1/objects/vis"):
                    time.sleep(0.005)
                lat.append((time.monotonic() - start) * 1000)
            res[name] = {"p50_ms": round(statistics.median(lat)), "max_ms": round(max(lat))}
        return res
    finally:
        c.stop()


def load(binary, seconds, rate_per_node):
    """15-node mesh: CPU and memory idle, then under writes at every node; CPU per local update."""
    n = 15
    c = Cluster(binary, topology_edges(binary, "mesh", n), n, "bp-rr", 500)
    try:
        c.wait_connected()
        time.sleep(2)
        pids = [p.pid for p in c.procs]
        cpu0, t0 = sum(cpu_ms(p) for p in pids), time.monotonic()
        time.sleep(seconds)
        idle_rate = (sum(cpu_ms(p) for p in pids) - cpu0) / (time.monotonic() - t0)
        idle_rss = statistics.mean(rss_kib(p) for p in pids)
        done = [0] * n

        def writer(i):
            end = time.monotonic() + seconds
            k = 0
            while time.monotonic() < end:
                http("POST", c.apis[i] + f"/v1/objects/w{i}-{k % 100}",
                     {"type": "set", "op": "add", "value": k})
                done[i] += 1
                k += 1
                time.sleep(1 / rate_per_node)

        cpu1, t1 = sum(cpu_ms(p) for p in pids), time.monotonic()
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.time() + 60
        while len(set(c.digests())) > 1 and time.time() < deadline:
            time.sleep(0.1)
        busy = sum(cpu_ms(p) for p in pids) - cpu1 - idle_rate * (time.monotonic() - t1)
        updates = sum(done)
        return {"nodes": n, "updates": updates, "seconds": seconds,
                "idle_cpu_ms_per_s": idle_rate / n, "cpu_us_per_update": busy * 1000 / updates,
                "idle_rss_kib": idle_rss, "loaded_rss_kib": statistics.mean(rss_kib(p) for p in pids),
                "converged": len(set(c.digests())) == 1}
    finally:
        c.stop()


def startup(binary, runs, objects):
    """Spawn to ready line, on an empty data dir and on one holding `objects` objects."""
    work = tempfile.mkdtemp(prefix="deltanode-perf-")
    try:
        def once(data):
            start = time.monotonic()
            p = subprocess.Popen([binary, "run", "--data-dir", data, "--no-mdns", "--api", "127.0.0.1:0",
                                  "--listen", "/ip4/127.0.0.1/tcp/0"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
            ready = json.loads(p.stdout.readline())
            took = (time.monotonic() - start) * 1000
            return p, ready, took

        empty = []
        for r in range(runs):
            p, _, took = once(os.path.join(work, f"empty{r}"))
            empty.append(took)
            p.terminate()
            p.wait()
        data = os.path.join(work, "loaded")
        p, ready, _ = once(data)
        api = "http://" + ready["api"]
        for start in range(0, objects, 1000):
            ops = [{"key": f"k{i}", "type": "gcounter", "op": "inc", "by": 1} for i in range(start, start + 1000)]
            http("POST", api + "/v1/batch", {"ops": ops}, timeout=60)
        p.terminate()
        p.wait()
        loaded = []
        for _ in range(runs):
            p, ready, took = once(data)
            assert http("GET", "http://" + ready["api"] + "/health")["objects"] == objects
            loaded.append(took)
            p.terminate()
            p.wait()
        return {"empty_ms_median": statistics.median(empty), "loaded_objects": objects,
                "loaded_ms_median": statistics.median(loaded)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results/perf")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "deltanode"))
    ap.add_argument("--seconds", type=int, default=10, help="length of each load run")
    ap.add_argument("--samples", type=int, default=10, help="writes timed per visibility run and direction")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: throughput,visibility,load,startup")
    args = ap.parse_args()
    ensure_binary(args.binary)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    skip = set(filter(None, args.skip.split(",")))
    random.seed(1)
    res = {}
    if "throughput" not in skip:
        res["throughput"] = throughput(args.binary, args.seconds)
        print(json.dumps(res["throughput"]), flush=True)
    if "visibility" not in skip:
        res["visibility"] = [visibility(args.binary, t, a, 500, args.samples)
                             for t, a in (("line", "bp-rr"), ("mesh", "bp-rr"), ("mesh", "bp-rr-tree"))]
        for v in res["visibility"]:
            print(json.dumps(v), flush=True)
    if "load" not in skip:
        res["load"] = load(args.binary, args.seconds, 20)
        print(json.dumps(res["load"]), flush=True)
    if "startup" not in skip:
        res["startup"] = startup(args.binary, 5, 100_000)
        print(json.dumps(res["startup"]), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "perf.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {os.path.join(args.out, 'perf.json')}")


if __name__ == "__main__":
    main()
