// Test harness for the edge worker: a real origin, a stub collector and real workerd
// (`wrangler dev`), each on a free loopback port, started by the suite and stopped by process id.
import { spawn, execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const SECRET = "edge-suite-platform-secret-0123456789abcdef";
const WRANGLER = path.join(ROOT, "node_modules/.bin/wrangler");

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

export const ORIGIN_HTML =
  '<!doctype html><html><head><title>Origin</title></head><body><h1 class="title">Welcome</h1>' +
  '<p id="promo" class="promo">Spring sale</p><a id="cta" href="/buy">Buy</a></body></html>';

/** The tenant origin: HTML everywhere but /data.json; records every request it serves. */
export async function startOrigin() {
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push({ path: req.url, headers: req.headers });
    if (req.url.startsWith("/data.json")) {
      res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=60" });
      res.end('{"items":[1,2,3],"note":"<h1 class=\\"title\\">not html</h1>"}');
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "public, max-age=60" });
    res.end(ORIGIN_HTML.replace("Welcome", `Welcome to ${req.url.split("?")[0]}`));
  });
  const port = await freePort();
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { port, requests, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Derives a tenant key the way the contract says: HMAC-SHA256(secret, "cohort/v1/" purpose 0 tenant). */
export function tenantKey(purpose, tenant) {
  return createHmac("sha256", SECRET).update(`cohort/v1/${purpose}\0${tenant}`).digest();
}

/**
 * A collector stand-in that records batches and checks their signatures independently. `state`
 * steers its answers: `mode` "ok" (200), "down" (500 to everything), "slow" (200 after 3 s);
 * `failNext` answers that many requests 500 first; `reject(record)` true makes it refuse a batch
 * holding that record with 400 `invalid_record` and the record's index, as the real collector does;
 * `forward` (a base URL) passes requests on to a real collector, and `loseAcks` answers that many
 * forwarded requests 500 although the collector committed them (a lost acknowledgement).
 */
export async function startCollector() {
  const batches = [];
  const state = { mode: "ok", failNext: 0, reject: null, forward: null, loseAcks: 0 };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      const tenant = req.headers["cohort-tenant"];
      const timestamp = req.headers["cohort-timestamp"];
      const expected = createHmac("sha256", tenantKey("beacon-signing", tenant))
        .update(`${timestamp}.`)
        .update(body)
        .digest("hex");
      const records = JSON.parse(body.toString() || "[]");
      // `status` stays null until the answer is written: a batch counts as accepted only once the
      // worker could have read a 2xx, never while the answer is pending or lost.
      const batch = {
        path: req.url,
        tenant,
        signatureValid: expected === req.headers["cohort-signature"],
        ageSeconds: Math.abs(Date.now() / 1000 - Number(timestamp)),
        records,
        mode: state.mode,
        status: null,
      };
      batches.push(batch);
      const send = (status, json) => {
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(json), () => {
          batch.status = status;
        });
      };
      if (state.forward) {
        try {
          const answer = await fetch(new URL(req.url, state.forward), { method: "POST", headers: req.headers, body });
          const json = await answer.json();
          if (state.loseAcks > 0 && answer.ok) {
            state.loseAcks--;
            batch.lostAck = json;
            send(500, { error: { code: "lost_ack", message: "committed, but the answer is lost" } });
          } else send(answer.status, json);
        } catch (error) {
          send(502, { error: { code: "bad_gateway", message: String(error) } });
        }
        return;
      }
      const poisoned = state.reject ? records.findIndex(state.reject) : -1;
      const answer = () => {
        if (state.mode === "down") send(500, { error: { code: "down", message: "down" } });
        else if (state.failNext > 0) {
          state.failNext--;
          send(500, { error: { code: "storage_unavailable", message: "try later" } });
        } else if (poisoned >= 0) {
          send(400, { error: { code: "invalid_record", message: "refused by the test", index: poisoned, field: "metric" } });
        } else send(200, { accepted: records.length, inserted: records.length, duplicates: 0 });
      };
      if (state.mode === "slow") setTimeout(answer, 3000);
      else answer();
    });
  });
  const port = await freePort();
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { port, batches, state, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

/** Writes KV entries into the local state wrangler dev reads. */
export function putKv(stateDir, entries) {
  const file = path.join(stateDir, `bulk-${process.hrtime.bigint()}.json`);
  fs.writeFileSync(file, JSON.stringify(Object.entries(entries).map(([key, value]) => ({ key, value }))));
  execFileSync(WRANGLER, ["kv", "bulk", "put", file, "--binding", "CONFIG", "--local", "--persist-to", stateDir], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: "pipe",
  });
}

/** A tenant config as KV entries: its `tenant:` key and one `host:` key per hostname. */
export function tenantEntries(config) {
  const entries = { [`tenant:${config.tenant}`]: JSON.stringify(config) };
  for (const host of config.hostnames) entries[`host:${host}`] = config.tenant;
  return entries;
}

/** The delivery queues' batch timeout and retry delay in the suite (seconds), test-sized. */
export const QUEUE_BATCH_TIMEOUT_SECONDS = 0.2;
export const QUEUE_RETRY_DELAY_SECONDS = 1;

/**
 * How long a check that nothing (more) arrives waits: a queued beacon reaches the collector after
 * at most one batch timeout, and a retried one a retry delay later; the rest is margin for a
 * loaded machine, so a late, wrong delivery is seen rather than missed.
 */
export const DELIVERY_SETTLE_MS = (QUEUE_BATCH_TIMEOUT_SECONDS + QUEUE_RETRY_DELAY_SECONDS) * 1000 + 2000;

/**
 * The delivery queues of the repository's wrangler.toml with test-sized waits (the batch timeout
 * and retry delay above): the `BEACONS` producer and its consumer (this same worker), and the
 * dead-letter queue with its producer binding (reasons) and its consumer (the log). wrangler dev
 * runs them in its local queue broker.
 */
function queueSections() {
  return [
    "[[queues.producers]]",
    'binding = "BEACONS"',
    'queue = "cohort-beacons"',
    "[[queues.producers]]",
    'binding = "DEAD_LETTERS"',
    'queue = "cohort-beacons-dlq"',
    "[[queues.consumers]]",
    'queue = "cohort-beacons"',
    "max_batch_size = 100",
    `max_batch_timeout = ${QUEUE_BATCH_TIMEOUT_SECONDS}`,
    "max_retries = 100",
    'dead_letter_queue = "cohort-beacons-dlq"',
    `retry_delay = ${QUEUE_RETRY_DELAY_SECONDS}`,
    "[[queues.consumers]]",
    'queue = "cohort-beacons-dlq"',
    "max_batch_size = 100",
    `max_batch_timeout = ${QUEUE_BATCH_TIMEOUT_SECONDS}`,
  ];
}

/**
 * Starts the built worker (build/ from scripts/build-worker.sh) in `wrangler dev`, with a config
 * of its own so no build runs here, on `port` or a free one. Resolves once it answers. `queues:
 * false` leaves the delivery queues out (beacons then go straight to the collector).
 */
export async function startWorker({ stateDir, vars, port: requestedPort, queues = {} }) {
  const port = requestedPort ?? (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-edge-worker-"));
  const config = [
    'name = "cohort-edge-test"',
    `main = "${path.join(ROOT, "src/entry.mjs")}"`,
    'compatibility_date = "2026-04-01"',
    "[[kv_namespaces]]",
    'binding = "CONFIG"',
    'id = "cohort-config"',
    ...(queues ? queueSections() : []),
  ].join("\n");
  fs.writeFileSync(path.join(dir, "wrangler.toml"), config);
  const args = ["dev", "--config", path.join(dir, "wrangler.toml"), "--ip", "127.0.0.1", "--port", String(port),
    "--persist-to", stateDir, "--inspector-port", String(await freePort())];
  for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
  const child = spawn(WRANGLER, args, {
    cwd: ROOT,
    detached: true, // its own process group, so stopping it stops workerd too
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  child.stdout.on("data", (d) => log.push(d.toString()));
  child.stderr.on("data", (d) => log.push(d.toString()));
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${log.join("")}`);
    try {
      await request({ port, host: "nobody.test", path: "/" });
      return { port, log, stop };
    } catch {
      await sleep(250);
    }
  }
  stop();
  throw new Error(`wrangler dev did not answer within 90 s:\n${log.join("")}`);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const BROWSER_UA =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/** One HTTP/1.1 request with a chosen Host header; resolves with status, headers, body and time. */
export function request({ port, host, path: requestPath = "/", method = "GET", headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      { host: "127.0.0.1", port, path: requestPath, method, headers: { host, "user-agent": BROWSER_UA, ...headers } },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            ms: performance.now() - started,
          }),
        );
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The sticky cookie from a response, ready to send back (`name=value`). */
export function stickyCookie(response) {
  const cookies = response.headers["set-cookie"] ?? [];
  const cookie = cookies.find((c) => c.startsWith("__Host-cohort=") || c.startsWith("cohort="));
  return cookie?.split(";")[0];
}

/** The experiment=variant pairs the origin was told for its most recent request. */
export function assignmentsSeenByOrigin(origin) {
  const last = origin.requests.at(-1);
  const header = last?.headers["cohort-assignments"] ?? "";
  return Object.fromEntries(header.split(",").filter(Boolean).map((pair) => pair.trim().split("=")));
}

/** Waits until `predicate()` (sync or async) holds or `ms` pass, asking every `everyMs`; returns whether it held. */
export async function eventually(predicate, ms = 5000, everyMs = 50) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await sleep(everyMs);
  }
  return await predicate();
}

/**
 * Waits until the collector has received nothing new for `ms` (earlier tests' batches landed);
 * throws if it is still receiving after `deadlineMs`, so a delivery loop fails the test instead
 * of hanging it.
 */
export async function quiet(collector, ms = DELIVERY_SETTLE_MS, deadlineMs = 60_000) {
  const deadline = Date.now() + deadlineMs;
  let seen = collector.batches.length;
  for (;;) {
    await sleep(ms);
    if (collector.batches.length === seen) return;
    if (Date.now() > deadline) {
      throw new Error(`the collector was still receiving batches after ${deadlineMs} ms (${seen} so far)`);
    }
    seen = collector.batches.length;
  }
}

/** Exposure records received for `unit`, across all batches the collector accepted (2xx). */
export function exposuresOf(collector, unit) {
  return collector.batches
    .filter((b) => b.path === "/v1/exposures" && b.status >= 200 && b.status < 300)
    .flatMap((b) => b.records)
    .filter((r) => r.unit === unit);
}

/** The worker's structured log lines named `event` (`{"event": ..., ...}`), parsed. */
export function logEvents(worker, event) {
  return worker.log
    .join("")
    .split("\n")
    .flatMap((line) => {
      const start = line.indexOf("{");
      if (start < 0) return [];
      try {
        const parsed = JSON.parse(line.slice(start));
        return parsed.event === event ? [parsed] : [];
      } catch {
        return [];
      }
    });
}

/** The unit id the worker put in the page's assignments script. */
export function unitOf(response) {
  const script = response.body.match(/id="cohort-assignments">(.*?)<\/script>/);
  return script ? JSON.parse(script[1]).unit : undefined;
}

const MASK64 = (1n << 64n) - 1n;
const rotl64 = (x, bits) => ((x << bits) | (x >> (64n - bits))) & MASK64;

/** SipHash-1-3 of `message` under a 16-byte key (both Buffers), as a 64-bit BigInt. */
function siphash13(key, message) {
  const k0 = key.readBigUInt64LE(0);
  const k1 = key.readBigUInt64LE(8);
  const v = [k0 ^ 0x736f6d6570736575n, k1 ^ 0x646f72616e646f6dn, k0 ^ 0x6c7967656e657261n, k1 ^ 0x7465646279746573n];
  const round = () => {
    v[0] = (v[0] + v[1]) & MASK64; v[1] = rotl64(v[1], 13n); v[1] ^= v[0]; v[0] = rotl64(v[0], 32n);
    v[2] = (v[2] + v[3]) & MASK64; v[3] = rotl64(v[3], 16n); v[3] ^= v[2];
    v[0] = (v[0] + v[3]) & MASK64; v[3] = rotl64(v[3], 21n); v[3] ^= v[0];
    v[2] = (v[2] + v[1]) & MASK64; v[1] = rotl64(v[1], 17n); v[1] ^= v[2]; v[2] = rotl64(v[2], 32n);
  };
  const whole = message.length - (message.length % 8);
  for (let i = 0; i < whole; i += 8) {
    const m = message.readBigUInt64LE(i);
    v[3] ^= m; round(); v[0] ^= m;
  }
  let last = BigInt(message.length & 0xff) << 56n;
  for (let i = whole; i < message.length; i++) last |= BigInt(message[i]) << BigInt(8 * (i - whole));
  v[3] ^= last; round(); v[0] ^= last;
  v[2] ^= 0xffn;
  round(); round(); round();
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/**
 * A unit's bucket, computed here from the bucketing contract alone (testdata/bucketing.json):
 * (SipHash-1-3(hash key, u32-LE(byte length of seed) ‖ seed ‖ unit) × 10000) >> 64.
 */
export function bucketOf(hashKeyHex, seed, unit) {
  const seedBytes = Buffer.from(seed, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32LE(seedBytes.length);
  const hash = siphash13(Buffer.from(hashKeyHex, "hex"), Buffer.concat([length, seedBytes, Buffer.from(unit, "utf8")]));
  return { hash, bucket: Number((hash * 10000n) >> 64n) };
}

/** The variant of a unit's tenant-holdout record (`holdout` or `rest`); undefined without a holdout. */
export function holdoutVariant(config, unit) {
  if (!config.holdout) return undefined;
  return bucketOf(config.hash_key, `holdout:${config.tenant}`, unit).bucket < config.holdout ? "holdout" : "rest";
}

/** Records of `experiment` received for `unit` across the batches the collector accepted. */
export function recordsOf(collector, unit, experiment) {
  return exposuresOf(collector, unit).filter((r) => r.experiment === experiment);
}

/** A preview token signed like `cohort preview-link` signs them. */
export function previewToken(tenant, forced, expiresInSeconds) {
  const payload = Buffer.from(JSON.stringify({ t: tenant, x: Math.floor(Date.now() / 1000) + expiresInSeconds, f: forced }));
  const tag = createHmac("sha256", tenantKey("preview-link", tenant)).update(payload).digest().subarray(0, 16);
  return `${payload.toString("base64url")}.${tag.toString("base64url")}`;
}
