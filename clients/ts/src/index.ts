// A client for a deltanode node's HTTP API (uses the platform's fetch: Node 20+, browsers).
//
//   const node = new DeltanodeClient("http://127.0.0.1:7700", { token });
//   await node.op("visits", { type: "counter", op: "inc", by: 1 });
//   for await (const ev of node.feed()) console.log(ev.id, ev.key, ev.value);
//
// Every method resolves to the JSON the API answers (typed in ./schema.ts, generated from the
// node's OpenAPI document) or rejects with an ApiError holding the status and the node's message.

import type {
  AccessToken,
  BatchAnswer,
  CheckpointBody,
  HealthBody,
  KeyType,
  ObjectBody,
  Operation,
} from "./schema.js";

export * from "./schema.js";

/** An error answer: the status and the node's `error` message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
  ) {
    super(`${status}: ${error}`);
  }
}

/** A write inside a batch: an operation with its key. */
export type KeyedOperation = Operation & { key: string };

/** A change-feed event: its name (`change`, `conflict`, `reset`, `lagged`) and its fields. */
export interface FeedEvent {
  event: string;
  id?: number;
  key?: string;
  type?: string;
  value?: unknown;
  size?: number;
  change?: unknown;
  origin?: "local" | "remote";
  [field: string]: unknown;
}

export interface FeedOptions {
  /** Resume after this id (everything the node holds when left out). */
  lastEventId?: number;
  /** Change events of large objects carry their whole value too. */
  valuesFull?: boolean;
  /** Give up after this long (ms) without a connection (default 60 s). */
  giveUpAfterMs?: number;
  /** Stops the feed. */
  signal?: AbortSignal;
}

export class DeltanodeClient {
  readonly api: string;
  readonly token?: string;

  constructor(api = "http://127.0.0.1:7700", options: { token?: string } = {}) {
    this.api = api.replace(/\/+$/, "");
    this.token = options.token;
  }

  // The objects -------------------------------------------------------------------------------

  objects(): Promise<KeyType[]> {
    return this.json("GET", "/v1/objects");
  }

  /** An object; `limit`/`after` for a page, `contains` (JSON) or `field`, as the API takes. */
  get(key: string, query: Record<string, string | number> = {}): Promise<ObjectBody & Record<string, unknown>> {
    return this.json("GET", `/v1/objects/${encodeURIComponent(key)}`, undefined, query);
  }

  /** Applies `operation` to `key`; durable on the node when this resolves. */
  op(key: string, operation: Operation, prefer?: "minimal" | "representation"): Promise<ObjectBody> {
    const headers: Record<string, string> = prefer ? { Prefer: `return=${prefer}` } : {};
    return this.json("POST", `/v1/objects/${encodeURIComponent(key)}`, operation, {}, headers);
  }

  /** Applies `ops` atomically, as one delta. */
  batch(ops: KeyedOperation[]): Promise<BatchAnswer> {
    return this.json("POST", "/v1/batch", { ops });
  }

  state(): Promise<{ digest: string; objects: Record<string, { type: string; value: unknown }> }> {
    return this.json("GET", "/v1/state");
  }

  conflicts(): Promise<Array<Record<string, unknown>>> {
    return this.json("GET", "/v1/conflicts");
  }

  // The node ----------------------------------------------------------------------------------

  health(): Promise<HealthBody> {
    return this.json("GET", "/health");
  }

  node(): Promise<Record<string, unknown>> {
    return this.json("GET", "/v1/node");
  }

  peers(): Promise<Array<Record<string, unknown>>> {
    return this.json("GET", "/v1/peers");
  }

  sync(): Promise<{ status: string }> {
    return this.json("POST", "/v1/sync");
  }

  /** What the node sent since it started: cumulative counters, a step apart. */
  syncHistory(since?: number): Promise<{
    started_unix_ms: number;
    step_ms: number;
    samples: Array<{ t_unix_ms: number; bytes: number; payload: number; metadata: number }>;
  }> {
    return this.json("GET", "/v1/sync/history", undefined, since ? { since } : {});
  }

  async metrics(openmetrics = false): Promise<string> {
    const accept = openmetrics ? "application/openmetrics-text" : "text/plain";
    return (await this.request("GET", "/metrics", undefined, {}, { Accept: accept })).text();
  }

  openapi(): Promise<Record<string, unknown>> {
    return this.json("GET", "/v1/openapi.json");
  }

  /** A short-lived token for `EventSource`/`WebSocket` in browsers (`?access_token=`). */
  accessToken(): Promise<AccessToken> {
    return this.json("POST", "/v1/tokens");
  }

  // Checkpoints -------------------------------------------------------------------------------

  checkpoint(label: string): Promise<CheckpointBody> {
    return this.json("POST", "/v1/checkpoints", { label });
  }

  checkpoints(): Promise<CheckpointBody[]> {
    return this.json("GET", "/v1/checkpoints");
  }

  rollback(label: string, partial = false): Promise<Record<string, unknown>> {
    return this.json("POST", "/v1/rollback", { label, partial });
  }

  // The change feed ---------------------------------------------------------------------------

  /**
   * The change feed as an async iterator. A dropped connection — the node restarting, a
   * `lagged` cut-off — is resumed from the last id seen after the `retry:` delay the node asks
   * for; it gives up (throwing the last error) after `giveUpAfterMs` without a connection.
   */
  async *feed(options: FeedOptions = {}): AsyncGenerator<FeedEvent> {
    let last = options.lastEventId;
    let retryMs = 1000;
    let downSince: number | undefined;
    const giveUp = options.giveUpAfterMs ?? 60_000;
    while (!options.signal?.aborted) {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (last !== undefined) headers["Last-Event-ID"] = String(last);
      const query: Record<string, string> = options.valuesFull ? { values: "full" } : {};
      let response: Response;
      try {
        response = await this.request("GET", "/v1/events", undefined, query, headers, options.signal);
      } catch (e) {
        if (options.signal?.aborted) return;
        if (e instanceof ApiError && ![502, 503, 504].includes(e.status)) throw e;
        downSince ??= Date.now();
        if (Date.now() - downSince > giveUp) throw e;
        await sleep(retryMs);
        continue;
      }
      downSince = undefined;
      try {
        for await (const item of sse(response.body!)) {
          if (item.kind === "retry") {
            retryMs = item.ms;
            continue;
          }
          if (item.event.id !== undefined) last = item.event.id;
          yield item.event;
        }
      } catch {
        if (options.signal?.aborted) return;
      }
      await sleep(retryMs);
    }
  }

  // Plumbing ----------------------------------------------------------------------------------

  private async json<T>(
    method: string,
    path: string,
    body?: unknown,
    query: Record<string, string | number> = {},
    headers: Record<string, string> = {},
  ): Promise<T> {
    const response = await this.request(method, path, body, query, headers);
    const text = await response.text();
    return (text ? JSON.parse(text) : null) as T;
  }

  private async request(
    method: string,
    path: string,
    body?: unknown,
    query: Record<string, string | number> = {},
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<Response> {
    const params = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
    const url = this.api + path + (params.size ? `?${params}` : "");
    const all: Record<string, string> = { ...headers };
    if (body !== undefined) all["Content-Type"] = "application/json";
    if (this.token) all["Authorization"] = `Bearer ${this.token}`;
    const response = await fetch(url, {
      method,
      headers: all,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    if (!response.ok) {
      const text = await response.text();
      let error = text;
      try {
        error = JSON.parse(text).error ?? text;
      } catch {
        // not JSON: the text as it came
      }
      throw new ApiError(response.status, error);
    }
    return response;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What an SSE stream holds: events, and the reconnection delay the server asks for. */
type SseItem = { kind: "event"; event: FeedEvent } | { kind: "retry"; ms: number };

/** Server-Sent Events from a body: each event's data with `event` and `id`; `retry:` alone. */
async function* sse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseItem> {
  const decoder = new TextDecoder();
  let buffer = "";
  let name: string | undefined;
  let data: string[] = [];
  let id: string | undefined;
  let retry: number | undefined;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") {
        if (data.length) {
          const parsed = JSON.parse(data.join("\n"));
          const event: FeedEvent =
            typeof parsed === "object" && parsed !== null ? parsed : { event: "change", data: parsed };
          event.event = name ?? (event.event as string | undefined) ?? "change";
          if (id !== undefined) event.id = Number(id);
          yield { kind: "event", event };
        } else if (retry !== undefined) {
          yield { kind: "retry", ms: retry };
        }
        name = undefined;
        data = [];
        id = undefined;
        retry = undefined;
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") name = value;
        else if (field === "id") id = value;
        else if (field === "retry" && /^\d+$/.test(value)) retry = Number(value);
      }
    }
  }
}
