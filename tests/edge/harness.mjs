// Test-only helpers for the edge worker's suites: a real origin and a stub collector on free
// loopback ports, signatures and buckets computed independently of the worker (buckets in
// scripts/lib/bucketing.mjs, which the soak shares), and readers of what the worker logged and the
// collector received. The worker itself runs under `wrangler dev` (scripts/lib/wrangler.mjs),
// stopped by process id.
import { createHmac } from "node:crypto";
import { once } from "node:events";
import http from "node:http";

import { freePort } from "../../scripts/lib/http.mjs";
import { QUEUE_BATCH_TIMEOUT_SECONDS, QUEUE_RETRY_DELAY_SECONDS } from "../../scripts/lib/wrangler.mjs";
import { sleep } from "../../scripts/lib/wait.mjs";

export { bucketOf, holdoutVariant } from "../../scripts/lib/bucketing.mjs";

export const SECRET = "edge-suite-platform-secret-0123456789abcdef";

export const ORIGIN_HTML =
  '<!doctype html><html><head><title>Origin</title></head><body><h1 class="title">Welcome</h1>' +
  '<p id="promo" class="promo">Spring sale</p><a id="cta" href="/buy">Buy</a></body></html>';

/** The tenant origin: HTML everywhere but /data.json; records every request it serves. */
export async function startOrigin() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = String(req.url); // always set on a request a server received
    requests.push({ path: req.url, headers: req.headers });
    if (url.startsWith("/data.json")) {
      res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=60" });
      res.end('{"items":[1,2,3],"note":"<h1 class=\\"title\\">not html</h1>"}');
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "public, max-age=60" });
    res.end(ORIGIN_HTML.replace("Welcome", `Welcome to ${url.split("?")[0]}`));
  });
  const port = await freePort();
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
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
          // Node joins a repeated header into one string, except Set-Cookie, which no batch carries.
          const headers = /** @type {Record<string, string>} */ (req.headers);
          const answer = await fetch(new URL(String(req.url), state.forward), { method: "POST", headers, body });
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
        if (state.mode === "down") send(500, { error: { code: "storage_unavailable", message: "down" } });
        else if (state.failNext > 0) {
          state.failNext--;
          send(500, { error: { code: "storage_unavailable", message: "try later" } });
        } else if (poisoned >= 0) {
          send(400, {
            error: { code: "invalid_record", message: "refused by the test", index: poisoned, field: "metric" },
          });
        } else send(200, { accepted: records.length, inserted: records.length, duplicates: 0 });
      };
      if (state.mode === "slow") setTimeout(answer, 3000);
      else answer();
    });
  });
  const port = await freePort();
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  return {
    port,
    batches,
    state,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

/**
 * How long a check that nothing (more) arrives waits: a queued beacon reaches the collector after
 * at most one batch timeout, and a retried one a retry delay later; the rest is margin for a
 * loaded machine, so a late, wrong delivery is seen rather than missed.
 */
export const DELIVERY_SETTLE_MS = (QUEUE_BATCH_TIMEOUT_SECONDS + QUEUE_RETRY_DELAY_SECONDS) * 1000 + 2000;

/** The experiment=variant pairs the origin was told for its most recent request. */
export function assignmentsSeenByOrigin(origin) {
  const last = origin.requests.at(-1);
  const header = last?.headers["cohort-assignments"] ?? "";
  return Object.fromEntries(
    header
      .split(",")
      .filter(Boolean)
      .map((pair) => pair.trim().split("=")),
  );
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

/** Records of `experiment` received for `unit` across the batches the collector accepted. */
export function recordsOf(collector, unit, experiment) {
  return exposuresOf(collector, unit).filter((r) => r.experiment === experiment);
}

/** A preview token signed like `cohort preview-link` signs them. */
export function previewToken(tenant, forced, expiresInSeconds) {
  const payload = Buffer.from(
    JSON.stringify({ t: tenant, x: Math.floor(Date.now() / 1000) + expiresInSeconds, f: forced }),
  );
  const tag = createHmac("sha256", tenantKey("preview-link", tenant)).update(payload).digest().subarray(0, 16);
  return `${payload.toString("base64url")}.${tag.toString("base64url")}`;
}
