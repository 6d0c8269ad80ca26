"""A private LAN of network namespaces for experiments and fault injection (standard library only).

`Lan(n)` creates n namespaces, each with one veth whose other end sits on a bridge that this
object creates, so mDNS multicast stays on interfaces we own. Everything is removed by `destroy()`
(also called on `with` exit), and `Lan.sweep()` removes leftovers of runs that were killed.
Needs root and iproute2 (`ip`, `tc`).

Faults it can inject:
- `partition(side)`: blackhole routes between the nodes in `side` and the others, both ways, so
  each side still talks within itself but not across, packets vanish without a FIN or an error
  (a silent partition), and the host still reaches every API; `heal()` removes them.
- `netem(i, "loss 20% delay 50ms")`: tc netem on node i's interface (its outgoing traffic);
  `netem(i, None)` removes it. Kernels built without sch_netem (`netem_available()` says) cannot
  delay packets; `loss(i, 20)` drops that percentage of node i's outgoing packets with nftables
  instead (package nftables).
- `link(i, up)`: node i's cable pulled out or plugged back in.
"""

import os
import subprocess

PREFIX = "dnx"  # every interface and namespace name starts with this


def ip(*args, check=True):
    out = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")
    return out


class Lan:
    def __init__(self, n):
        if os.geteuid() != 0:
            raise SystemExit("network namespaces need root")
        pid = os.getpid()
        self.n, self.tag, self.subnet = n, f"{pid % 100000}", 100 + pid % 150
        self.created, self.cuts = False, []
        try:
            self._create()
        except BaseException:
            self.destroy()
            raise

    def ns(self, i):
        return f"{PREFIX}{self.tag}n{i}"

    def host_if(self, i):
        return f"{PREFIX}{self.tag}h{i}"

    def inner_if(self, i):
        return f"{PREFIX}{self.tag}c{i}"

    def bridge(self):
        return f"{PREFIX}{self.tag}br"

    def addr(self, i):
        # 10.S.0.0/16: room for hundreds of nodes.
        return f"10.{self.subnet}.{1 + i // 200}.{10 + i % 200}"

    def exec_prefix(self, i):
        """The command prefix that runs a program inside node i's namespace."""
        return ["ip", "netns", "exec", self.ns(i)]

    def _create(self):
        self.created = True
        br = self.bridge()
        ip("link", "add", br, "type", "bridge")
        # Flood multicast to every port: no IGMP querier runs on this private bridge.
        ip("link", "set", br, "type", "bridge", "mcast_snooping", "0")
        ip("link", "set", br, "up")
        # The host gets an address on the bridge so scripts can reach the nodes' APIs.
        ip("addr", "add", f"10.{self.subnet}.0.1/16", "dev", br)
        for i in range(self.n):
            ns, host, inner = self.ns(i), self.host_if(i), self.inner_if(i)
            ip("netns", "add", ns)
            ip("link", "add", host, "type", "veth", "peer", "name", inner)
            ip("link", "set", inner, "netns", ns)
            ip("link", "set", host, "master", br)
            ip("link", "set", host, "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"{self.addr(i)}/16", "dev", inner)
            ip("-n", ns, "link", "set", inner, "up")

    def partition(self, side):
        """Cut the nodes in `side` off from the others (each side still reaches itself)."""
        for i in side:
            for j in set(range(self.n)) - set(side):
                for a, b in ((i, j), (j, i)):
                    ip("-n", self.ns(a), "route", "add", "blackhole", f"{self.addr(b)}/32")
                    self.cuts.append((a, b))

    def heal(self):
        for a, b in self.cuts:
            ip("-n", self.ns(a), "route", "del", "blackhole", f"{self.addr(b)}/32", check=False)
        self.cuts = []

    def link(self, i, up):
        ip("link", "set", self.host_if(i), "up" if up else "down")

    def netem(self, i, spec):
        """Apply `tc qdisc ... netem SPEC` to node i's outgoing traffic (None removes it)."""
        base = ["ip", "netns", "exec", self.ns(i), "tc", "qdisc"]
        subprocess.run(base + ["del", "dev", self.inner_if(i), "root"], capture_output=True)
        if spec:
            subprocess.run(base + ["add", "dev", self.inner_if(i), "root", "netem", *spec.split()],
                           check=True, capture_output=True)

    @staticmethod
    def netem_available():
        probe = subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
                               capture_output=True, text=True)
        if probe.returncode == 0:
            subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)
            return True
        return False

    def loss(self, i, percent):
        """Drop `percent`% of node i's outgoing packets at random (nftables); 0 removes the rule."""
        nft = ["ip", "netns", "exec", self.ns(i), "nft"]
        subprocess.run(nft + ["delete", "table", "inet", "dnxloss"], capture_output=True)
        if percent:
            rules = ("table inet dnxloss {\n chain out {\n  type filter hook output priority 0;\n"
                     f"  numgen random mod 100 < {int(percent)} drop\n }}\n}}\n")
            subprocess.run(nft + ["-f", "-"], input=rules, text=True, check=True, capture_output=True)

    def destroy(self):
        if not self.created:
            return
        for i in range(self.n):
            ip("netns", "del", self.ns(i), check=False)
            ip("link", "del", self.host_if(i), check=False)
        ip("link", "del", self.bridge(), check=False)
        self.created = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    @staticmethod
    def sweep():
        """Remove namespaces and links left by runs that were killed before they cleaned up."""
        for line in ip("netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(PREFIX):
                ip("netns", "del", name, check=False)
        for line in ip("-o", "link", "show", check=False).stdout.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if name.startswith(PREFIX):
                ip("link", "del", name, check=False)
