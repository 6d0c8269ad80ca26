"""The Python client against real nodes: `DELTANODE_BIN` names the `deltanode` binary (the test
`cargo test -p deltanode-e2e --test clients` sets it and runs this file).

    DELTANODE_BIN=target/debug/deltanode python3 -m unittest discover -s clients/python/tests
"""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from deltanode_client import ApiError, Client  # noqa: E402

TOKEN = "py-client-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """A `deltanode run` process on loopback, on a fixed API port so it can restart there."""

    def __init__(self, data_dir, port):
        self.data_dir, self.port = data_dir, port
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [os.environ["DELTANODE_BIN"], "run", "--data-dir", self.data_dir, "--no-mdns",
             "--listen", "/ip4/127.0.0.1/tcp/0", "--api", f"127.0.0.1:{self.port}",
             "--sync-interval", "100"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "DELTANODE_API_TOKEN": TOKEN})
        ready = json.loads(self.proc.stdout.readline())
        assert ready["event"] == "ready", ready
        self.proc.stdout.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="deltanode-py-")
        cls.node = Node(os.path.join(cls.dir, "n"), free_port())
        cls.client = Client(f"http://127.0.0.1:{cls.node.port}", token=TOKEN)

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_writes_reads_and_errors(self):
        c = self.client
        self.assertEqual(c.health()["status"], "ok")
        self.assertEqual(c.op("visits", {"type": "counter", "op": "inc", "by": 5})["value"], 5)
        self.assertEqual(c.op("visits", {"type": "counter", "op": "dec", "by": 2})["value"], 3)
        self.assertEqual(c.batch([{"key": "tags", "type": "set", "op": "add", "value": "x"},
                                  {"key": "tags", "type": "set", "op": "add", "value": "y"}]),
                         {"applied": 2})
        self.assertEqual(sorted(c.get("tags")["value"]), ["x", "y"])
        self.assertTrue(c.get("tags", contains=json.dumps("x"))["contains"])
        self.assertIn({"key": "visits", "type": "counter"}, c.objects())
        self.assertEqual(len(c.state()["digest"]), 64)
        with self.assertRaises(ApiError) as clash:
            c.op("visits", {"type": "set", "op": "add", "value": 1})
        self.assertEqual(clash.exception.status, 409)
        self.assertIn("holds a counter", clash.exception.error)
        with self.assertRaises(ApiError) as missing:
            c.get("absent")
        self.assertEqual(missing.exception.status, 404)
        c.op("big", {"type": "gcounter", "op": "inc", "by": 2**64 - 1})
        with self.assertRaises(ApiError) as overflow:
            c.op("big", {"type": "gcounter", "op": "inc"})
        self.assertEqual(overflow.exception.status, 422)
        self.assertIn("deltanode_updates_total", c.metrics())
        self.assertTrue(c.metrics(openmetrics=True).endswith("# EOF\n"))
        self.assertEqual(c.openapi()["openapi"], "3.1.0")
        self.assertIn("samples", c.sync_history())
        self.assertEqual(len(c.access_token()["access_token"]), 32)
        c.checkpoint("before")
        self.assertIn("before", [cp["label"] for cp in c.checkpoints()])
        c.op("tags", {"type": "set", "op": "add", "value": "z"})
        c.rollback("before")
        self.assertEqual(sorted(c.get("tags")["value"]), ["x", "y"])
        with self.assertRaises(ApiError) as unauthorised:
            Client(c.api).health()
        self.assertEqual(unauthorised.exception.status, 401)

    def test_the_feed_resumes_after_the_node_restarts(self):
        c = self.client
        seen, stop = [], threading.Event()

        connected = threading.Event()

        def read():
            for event in c.feed(give_up_after=30):
                if event.get("key", "").startswith("probe"):
                    connected.set()
                if event.get("key", "").startswith("feed-"):
                    seen.append(event)
                if stop.is_set() or len(seen) >= 6:
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        # The feed starts live: write until the reader sees a write, so none of ours is missed.
        probe = 0
        while not connected.wait(0.1):
            probe += 1
            self.assertLess(probe, 200, "the feed never delivered")
            c.op("probe", {"type": "gcounter", "op": "inc"})
        for i in range(3):
            c.op(f"feed-{i}", {"type": "gset", "op": "add", "value": i})
        deadline = time.time() + 20
        while len(seen) < 3 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual([e["key"] for e in seen], ["feed-0", "feed-1", "feed-2"])
        # The node goes away and comes back on the same port and data dir; the feed follows.
        self.node.stop()
        self.node.start()
        for i in range(3, 6):
            c.op(f"feed-{i}", {"type": "gset", "op": "add", "value": i})
        reader.join(timeout=30)
        stop.set()
        self.assertEqual([e["key"] for e in seen], [f"feed-{i}" for i in range(6)])
        ids = [e["id"] for e in seen]
        self.assertEqual(ids, sorted(ids))
        # Resuming by hand after an id gives what followed it.
        after = next(e for e in c.feed(last_event_id=ids[3]) if e.get("key", "").startswith("feed-"))
        self.assertEqual(after["key"], "feed-4")


if __name__ == "__main__":
    unittest.main()
