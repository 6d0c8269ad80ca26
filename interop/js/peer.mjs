// A js-libp2p peer for the interoperability test: TCP, Noise, Yamux and, given a swarm key file,
// the private-network key. It dials a deltanode node, reads the node's identify, pings it, and
// stays connected (it speaks /deltanode/sync/1 just enough to be taken for a neighbour: it reads
// each request and answers nothing) until stdin closes, so the node can identify and ping it back.
//
//   node peer.mjs MULTIADDR [SWARM_KEY_FILE]
//
// Prints one JSON line once it has identified and pinged the node:
//   {"peer_id","remote_agent","remote_protocols","rtt_ms"}

import "./polyfill.mjs"; // first: the modules below need it as they load
import { createLibp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { preSharedKey } from "@libp2p/pnet";
import { multiaddr } from "@multiformats/multiaddr";
import { readFileSync } from "node:fs";

const [target, keyFile] = process.argv.slice(2);
if (!target) {
  console.error("usage: node peer.mjs MULTIADDR [SWARM_KEY_FILE]");
  process.exit(2);
}

const node = await createLibp2p({
  addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionProtector: keyFile ? preSharedKey({ psk: new Uint8Array(readFileSync(keyFile)) }) : undefined,
  services: { identify: identify(), ping: ping() },
});

await node.handle("/deltanode/sync/1", async (stream) => {
  // Reads what the node sends and answers nothing (stream shape differs across versions).
  try {
    const source = stream.source ?? stream;
    for await (const _ of source) {
      // drained
    }
  } catch {
    // the node closes its side
  }
});

// Identify runs on connection: wait for the node's answer.
const identified = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("no identify from the node in 20 s")), 20_000);
  node.addEventListener("peer:identify", (evt) => {
    clearTimeout(timer);
    resolve(evt.detail);
  });
});
const connection = await node.dial(multiaddr(target));
const remote = connection.remotePeer;
const info = await identified;
const rtt = await node.services.ping.ping(remote);

console.log(
  JSON.stringify({
    peer_id: node.peerId.toString(),
    remote_agent: info.agentVersion ?? "",
    remote_protocols: info.protocols ?? [],
    rtt_ms: rtt,
  }),
);

// Stay until told to go (stdin closes).
process.stdin.resume();
process.stdin.on("end", async () => {
  await node.stop();
  process.exit(0);
});
