// The TypeScript client against real nodes: DELTANODE_BIN names the `deltanode` binary (the test
// `cargo test -p deltanode-e2e --test clients` sets it and runs `npm test` here).

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, DeltanodeClient, type FeedEvent } from "../src/index.js";

const TOKEN = "ts-client-token";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A `deltanode run` process on loopback, on a fixed API port so it can restart there. */
class Node {
  proc?: ChildProcess;
  constructor(
    readonly dataDir: string,
    readonly port: number,
  ) {}

  async start(): Promise<void> {
    const bin = process.env.DELTANODE_BIN;
    assert.ok(bin, "DELTANODE_BIN names the deltanode binary");
    const proc = spawn(
      bin,
      ["run", "--data-dir", this.dataDir, "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0",
        "--api", `127.0.0.1:${this.port}`, "--sync-interval", "100"],
      { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, DELTANODE_API_TOKEN: TOKEN } },
    );
    this.proc = proc;
    const line: string = await new Promise((resolve) =>
      createInterface({ input: proc.stdout! }).once("line", resolve),
    );
    assert.equal(JSON.parse(line).event, "ready");
  }

  async stop(): Promise<void> {
    const proc = this.proc!;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill("SIGTERM");
    await exited;
  }
}

const dir = mkdtempSync(join(tmpdir(), "deltanode-ts-"));
let node: Node;
let client: DeltanodeClient;

before(async () => {
  node = new Node(join(dir, "n"), await freePort());
  await node.start();
  client = new DeltanodeClient(`http://127.0.0.1:${node.port}`, { token: TOKEN });
});

after(async () => {
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function rejectsWith(p: Promise<unknown>, status: number): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.status, status, e.error);
    return e;
  }
  assert.fail(`expected a ${status}`);
}

test("writes, reads and errors", async () => {
  assert.equal((await client.health()).status, "ok");
  assert.equal((await client.op("visits", { type: "counter", op: "inc", by: 5 })).value, 5);
  assert.equal((await client.op("visits", { type: "counter", op: "dec", by: 2 })).value, 3);
  assert.deepEqual(
    await client.batch([
      { key: "tags", type: "set", op: "add", value: "x" },
      { key: "tags", type: "set", op: "add", value: "y" },
    ]),
    { applied: 2 },
  );
  assert.deepEqual(((await client.get("tags")).value as string[]).sort(), ["x", "y"]);
  assert.equal((await client.get("tags", { contains: JSON.stringify("x") })).contains, true);
  assert.ok((await client.objects()).some((o) => o.key === "visits" && o.type === "counter"));
  assert.equal((await client.state()).digest.length, 64);
  const clash = await rejectsWith(client.op("visits", { type: "set", op: "add", value: 1 }), 409);
  assert.match(clash.error, /holds a counter/);
  await rejectsWith(client.get("absent"), 404);
  await client.op("big", { type: "gcounter", op: "inc", by: 2 ** 63 });
  await rejectsWith(client.op("big", { type: "gcounter", op: "inc", by: 2 ** 63 }), 422);
  assert.match(await client.metrics(), /deltanode_updates_total/);
  assert.match(await client.metrics(true), /# EOF\n$/);
  assert.equal((await client.openapi()).openapi, "3.1.0");
  assert.ok(Array.isArray((await client.syncHistory()).samples));
  assert.equal((await client.accessToken()).access_token.length, 32);
  await client.checkpoint("before");
  assert.ok((await client.checkpoints()).some((c) => c.label === "before"));
  await client.op("tags", { type: "set", op: "add", value: "z" });
  await client.rollback("before");
  assert.deepEqual(((await client.get("tags")).value as string[]).sort(), ["x", "y"]);
  await rejectsWith(new DeltanodeClient(client.api).health(), 401);
});

test("the feed resumes after the node restarts", async () => {
  const seen: FeedEvent[] = [];
  const stop = new AbortController();
  let connected = false;
  const reading = (async () => {
    for await (const ev of client.feed({ signal: stop.signal, giveUpAfterMs: 30_000 })) {
      if (ev.key === "probe") connected = true;
      if (ev.key?.startsWith("feed-")) seen.push(ev);
      if (seen.length >= 6) break;
    }
  })();
  // The feed starts live: write until the reader sees a write, so none of ours is missed.
  for (let i = 0; !connected; i++) {
    assert.ok(i < 200, "the feed never delivered");
    await client.op("probe", { type: "gcounter", op: "inc" });
    await new Promise((r) => setTimeout(r, 100));
  }
  const waitFor = async (n: number) => {
    const deadline = Date.now() + 20_000;
    while (seen.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  };
  for (let i = 0; i < 3; i++) await client.op(`feed-${i}`, { type: "gset", op: "add", value: i });
  await waitFor(3);
  assert.deepEqual(seen.map((e) => e.key), ["feed-0", "feed-1", "feed-2"]);
  // The node goes away and comes back on the same port and data dir; the feed follows.
  await node.stop();
  await node.start();
  for (let i = 3; i < 6; i++) await client.op(`feed-${i}`, { type: "gset", op: "add", value: i });
  await waitFor(6);
  stop.abort();
  await reading;
  assert.deepEqual(seen.map((e) => e.key), [0, 1, 2, 3, 4, 5].map((i) => `feed-${i}`));
  const ids = seen.map((e) => e.id!);
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
  // Resuming by hand after an id gives what followed it.
  for await (const ev of client.feed({ lastEventId: ids[3] })) {
    if (ev.key?.startsWith("feed-")) {
      assert.equal(ev.key, "feed-4");
      break;
    }
  }
});
