// One visitor posting to /_cohort/track as fast as it can must neither flood the tenant's data
// nor hold up other visitors' (docs/edge.md, "First-party endpoints"). In real workerd with the
// Workers rate-limiting binding (wrangler dev runs it locally): a per-unit limit of 10 events a
// minute while ten other visitors convert once each during the flood. The flood's answers beyond
// the limit are 429 with Retry-After; only its allowance reaches the collector; every other
// visitor's event arrives, and how long after its post is reported.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { stickyCookie } from "../../scripts/lib/cohort.mjs";
import { request } from "../../scripts/lib/http.mjs";
import { eventually } from "../../scripts/lib/wait.mjs";
import { putKv, startWorker, tenantEntries } from "../../scripts/lib/wrangler.mjs";
import { SECRET, logEvents, startCollector, startOrigin } from "./harness.mjs";

const UNIT_LIMIT = 10;
// The limiter counts in fixed windows of a minute: a flood that spans a window's end gets the
// next window's allowance too.
const MOST_ACCEPTED = 2 * UNIT_LIMIT;
const FLOOD = 300;
const OTHERS = 10;

const TENANT = {
  schema: 1,
  tenant: "flooded",
  version: 1,
  hostnames: ["flooded.test"],
  hash_key: "5f4e3d2c1b0a99887766554433221100",
  experiments: [
    {
      key: "banner",
      status: "running",
      variants: [
        { key: "control", weight: 5000 },
        { key: "treatment", weight: 5000 },
      ],
    },
  ],
};

let stateDir;
let origin;
let collector;
let worker;

before(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-track-flood-"));
  origin = await startOrigin();
  collector = await startCollector();
  putKv(stateDir, tenantEntries(TENANT));
  worker = await startWorker({
    stateDir,
    vars: {
      COHORT_SECRET: SECRET,
      ORIGIN_OVERRIDE: `http://127.0.0.1:${origin.port}`,
      COLLECTOR_URL: `http://127.0.0.1:${collector.port}`,
    },
    trackLimits: { unit: UNIT_LIMIT, ip: 100_000 },
  });
});

after(async () => {
  worker?.stop();
  await origin?.close();
  await collector?.close();
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

/** A new visitor's sticky cookie. */
async function visitor() {
  const cookie = stickyCookie(await request({ port: worker.port, host: "flooded.test", path: "/" }));
  assert.ok(cookie, "the visitor gets a cookie");
  return cookie;
}

/** @param {string} cookie @param {string} id */
function track(cookie, id) {
  return request({
    port: worker.port,
    host: "flooded.test",
    path: "/_cohort/track",
    method: "POST",
    headers: { cookie, "content-type": "application/json" },
    body: JSON.stringify({ metric: "purchase", value: 10, id }),
  });
}

/** Events stored by the collector, by id. */
const arrived = () =>
  new Set(collector.batches.filter((b) => b.path === "/v1/events").flatMap((b) => b.records.map((r) => r.id)));

test("a visitor flooding the track endpoint is capped; the others' events arrive on time", async (t) => {
  const flooder = await visitor();
  const others = await Promise.all(Array.from({ length: OTHERS }, visitor));
  const flooding = (async () => {
    const statuses = [];
    // As fast as it can: eight requests at a time until the flood is sent.
    for (let sent = 0; sent < FLOOD; sent += 8) {
      const batch = Array.from({ length: Math.min(8, FLOOD - sent) }, (_, i) => track(flooder, `flood-${sent + i}`));
      for (const response of await Promise.all(batch)) {
        statuses.push(response.status);
        if (response.status === 429) assert.equal(response.headers["retry-after"], "60");
      }
    }
    return statuses;
  })();
  /** @type {Map<string, number>} id → when it was posted */
  const posted = new Map();
  for (const [i, cookie] of others.entries()) {
    const id = `other-${i}`;
    posted.set(id, Date.now());
    const response = await track(cookie, id);
    assert.equal(response.status, 202, `visitor ${i} is within its own limit`);
  }
  const statuses = await flooding;
  const accepted = statuses.filter((s) => s === 202).length;
  const limited = statuses.filter((s) => s === 429).length;
  assert.equal(accepted + limited, FLOOD, `only 202 and 429: ${[...new Set(statuses)]}`);
  assert.ok(accepted <= MOST_ACCEPTED, `${accepted} flood events got through (limit ${UNIT_LIMIT} a minute)`);
  assert.ok(limited >= FLOOD - MOST_ACCEPTED);

  const latencies = [];
  for (const id of posted.keys()) {
    assert.ok(await eventually(() => arrived().has(id), 30_000), `${id} reached the collector`);
    latencies.push(Date.now() - /** @type {number} */ (posted.get(id)));
  }
  const floodArrived = () => [...arrived()].filter((id) => id.startsWith("flood-")).length;
  assert.ok(
    await eventually(() => floodArrived() === accepted, 10_000),
    `${floodArrived()} flood events stored, ${accepted} accepted: every accepted one, and only those`,
  );
  const floodStored = floodArrived();
  // wrangler relays the worker's log lines a little after the answers.
  const counted = () => logEvents(worker, "track_rate_limited").length;
  assert.ok(await eventually(() => counted() === limited, 10_000), `${counted()} of ${limited} refusals logged`);
  t.diagnostic(
    `flood: ${FLOOD} posts, ${accepted} accepted, ${limited} refused (429), ${floodStored} stored; ` +
      `others: ${OTHERS} of ${OTHERS} stored, slowest seen ${Math.max(...latencies)} ms after its post ` +
      `(checked in order, so an upper bound)`,
  );
});
