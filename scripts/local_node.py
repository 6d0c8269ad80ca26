"""A `deltanode run` on loopback (mDNS off) in a temporary data dir, for the benchmark scripts:
started, its API read from its ready line, stopped and its data dir removed on the way out (an
error or Ctrl-C included). Standard library only.

    with local_node("target/release/deltanode") as node:
        urllib.request.urlopen(node.api + "/health")
"""

import contextlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass


@dataclass
class LocalNode:
    api: str  # http://127.0.0.1:PORT
    pid: int
    data: str  # its data dir


@contextlib.contextmanager
def local_node(binary, prefix="deltanode-"):
    data = tempfile.mkdtemp(prefix=prefix)
    node = subprocess.Popen(
        [binary, "run", "--data-dir", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0",
         "--no-mdns"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = json.loads(node.stdout.readline())
        yield LocalNode("http://" + ready["api"], node.pid, data)
    finally:
        node.terminate()
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
        shutil.rmtree(data, ignore_errors=True)
