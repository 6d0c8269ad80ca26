#!/usr/bin/env python3
"""A second mDNS implementation (Python `zeroconf`) speaking libp2p's mDNS discovery, for the
interoperability test (tests/tests/mdns_interop.rs). Run inside a network namespace.

  mdns_peer.py announce IP PEER_ID SECONDS
      Multicasts, every half second, a libp2p mDNS response the way js-libp2p builds one: the PTR
      record and the TXT record (`dnsaddr=/ip4/IP/tcp/PORT/p2p/PEER_ID`) both in the answer section.
      Listens on IP:PORT (a free port) and prints `dialled` when a node connects to it: the node
      discovered the announced peer. Exits 0 once dialled, 1 after SECONDS.

  mdns_peer.py query IP PEER_ID SECONDS
      Multicasts a PTR query for `_p2p._udp.local` every half second and parses every response with
      zeroconf's DNS parser; prints the `dnsaddr` values found for PEER_ID and exits 0 once one is
      found (1 after SECONDS).
"""

import select
import socket
import struct
import sys
import time

from zeroconf import DNSIncoming, DNSOutgoing, DNSPointer, DNSQuestion, DNSText, const

GROUP, PORT = "224.0.0.251", 5353
SERVICE = "_p2p._udp.local."


def mdns_socket(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("", PORT))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(ip)))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    return s


def txt(*strings):
    """TXT rdata: each string preceded by its length."""
    return b"".join(bytes([len(x)]) + x for x in strings)


def announce(ip, peer_id, seconds):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ip, 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    name = f"zeroconf-peer-{port}.{SERVICE}"
    out = DNSOutgoing(const._FLAGS_QR_RESPONSE | const._FLAGS_AA)
    out.add_answer_at_time(DNSPointer(SERVICE, const._TYPE_PTR, const._CLASS_IN, 120, name), 0)
    addr = f"dnsaddr=/ip4/{ip}/tcp/{port}/p2p/{peer_id}".encode()
    out.add_answer_at_time(DNSText(name, const._TYPE_TXT, const._CLASS_IN, 120, txt(addr)), 0)
    packets = out.packets()
    sock = mdns_socket(ip)
    deadline = time.time() + seconds
    while time.time() < deadline:
        for p in packets:
            sock.sendto(p, (GROUP, PORT))
        ready, _, _ = select.select([listener], [], [], 0.5)
        if ready:
            conn, frm = listener.accept()
            print(f"dialled from {frm[0]}:{frm[1]}", flush=True)
            conn.close()
            return 0
    print("not dialled", flush=True)
    return 1


def query(ip, peer_id, seconds):
    sock = mdns_socket(ip)
    out = DNSOutgoing(const._FLAGS_QR_QUERY)
    out.add_question(DNSQuestion(SERVICE, const._TYPE_PTR, const._CLASS_IN))
    packets = out.packets()
    deadline = time.time() + seconds
    next_query = 0.0
    while time.time() < deadline:
        if time.time() >= next_query:
            for p in packets:
                sock.sendto(p, (GROUP, PORT))
            next_query = time.time() + 0.5
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:
            continue
        data, _ = sock.recvfrom(9000)
        msg = DNSIncoming(data)
        if not msg.is_response():
            continue
        records = msg.answers()
        names = {r.alias for r in records if isinstance(r, DNSPointer) and r.name == SERVICE}
        found = []
        for r in records:
            if isinstance(r, DNSText) and r.name in names:
                text, i = r.text, 0
                while i < len(text):
                    n = text[i]
                    s = text[i + 1:i + 1 + n].decode(errors="replace")
                    i += 1 + n
                    if s.startswith("dnsaddr=") and s.endswith("/p2p/" + peer_id):
                        found.append(s[len("dnsaddr="):])
        if found:
            for a in found:
                print(a, flush=True)
            return 0
    print("no response names the peer", flush=True)
    return 1


if __name__ == "__main__":
    mode, ip, peer_id, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    sys.exit({"announce": announce, "query": query}[mode](ip, peer_id, seconds))
