// Durable delivery end to end: the edge worker in `wrangler dev` with its local queues (producer,
// consumer, dead-letter queue), the REAL collector (`cohort collector`, built by
// `cargo build -p cohort-cli`) on SQLite, and a stub collector for answers the real one would not
// give on demand. Run by scripts/test.sh with the rest of tests/edge/.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { cohortBinary, startCohortCollector, stickyCookie } from "../../scripts/lib/cohort.mjs";
import { freePort, request } from "../../scripts/lib/http.mjs";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { eventually, sleep } from "../../scripts/lib/wait.mjs";
import { putKv, startWorker, tenantEntries } from "../../scripts/lib/wrangler.mjs";
import {
  SECRET,
  bucketOf,
  exposuresOf,
  holdoutVariant,
  logEvents,
  quiet,
  recordsOf,
  startCollector,
  startOrigin,
  tenantKey,
} from "./harness.mjs";

const VISITORS = 10_000;
const CONCURRENCY = 16;

const twoExperiments = (tenant, hashKey) => ({
  schema: 1,
  tenant,
  version: 1,
  hostnames: [`${tenant}.test`],
  hash_key: hashKey,
  experiments: [
    {
      key: "banner",
      status: "running",
      variants: [
        { key: "control", weight: 5000 },
        { key: "blue", weight: 5000 },
      ],
    },
    {
      key: "pricing",
      status: "running",
      variants: [
        { key: "control", weight: 3000 },
        { key: "annual", weight: 7000 },
      ],
    },
  ],
});
// With a 10% holdout: every new unit also sends its holdout record (`_holdout`), and held-out
// units are in neither experiment.
const OUTAGE = { ...twoExperiments("outage", "2a3b4c5d6e7f80910a1b2c3d4e5f6071"), holdout: 1000 };
const RELAY = twoExperiments("relay", "3b4c5d6e7f80910a1b2c3d4e5f607182");
const STUBBED = twoExperiments("stubbed", "4c5d6e7f80910a1b2c3d4e5f60718293");
/** The example shop as `cohort publish` would store it (a 5% holdout, served on shop.localhost). */
const SHOP = JSON.parse(fs.readFileSync(path.join(ROOT, "examples/tenants/shop.json"), "utf8"));

let stateDir;
let dataDir;
let origin;
let stub;
let collector;
let collectorPort;
let realWorker;
let stubWorker;

/** Starts the real collector on `collectorPort` with the suite's database; resolves when healthy. */
function startRealCollector() {
  return startCohortCollector({ port: collectorPort, database: path.join(dataDir, "cohort.db"), secret: SECRET });
}

const collectorUrl = (p) => `http://127.0.0.1:${collectorPort}${p}`;

/** The collector's /metrics value of `name{kind="..."}` (0 when absent). */
async function metric(name, kind) {
  const text = await (await fetch(collectorUrl("/metrics"))).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{kind="${kind}"} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

/** exposed_units per variant from the collector's results API. */
async function exposedUnits(tenant, experiment) {
  const token = tenantKey("results-read-token", tenant).subarray(0, 24).toString("base64url");
  const response = await fetch(collectorUrl(`/v1/tenants/${tenant}/experiments/${experiment}/results`), {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!response.ok) return {};
  const body = await response.json();
  return Object.fromEntries((body.variants ?? []).map((v) => [v.variant ?? v.key, v.exposed_units]));
}

/** Rows of the collector's SQLite file, through the sqlite3 shell. */
function sqlite(query) {
  try {
    const out = execFileSync("sqlite3", [path.join(dataDir, "cohort.db"), query], {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    return out.split("\n").filter(Boolean);
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code === "ENOENT") {
      throw new Error(
        "the sqlite3 shell is not installed: run `scripts/setup.sh --edge` (or `apt-get install sqlite3`)",
        { cause: error },
      );
    }
    throw error;
  }
}

/** Visitors asking the worker for their assignments (each a new unit, exposed to every experiment). */
async function visit(port, host, count, concurrency = CONCURRENCY) {
  const visitors = [];
  let next = 0;
  async function lane() {
    while (next < count) {
      next++;
      const response = await request({ port, host, path: "/_cohort/assignments?path=/" });
      assert.equal(response.status, 200);
      const { unit, assignments } = JSON.parse(response.body);
      visitors.push({ unit, assignments, cookie: stickyCookie(response) });
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return visitors;
}

/**
 * What the edge records for a new visitor of `config`: an exposure per assignment and, for a
 * tenant with a holdout, the unit's holdout record, its variant computed here from the bucket.
 */
function recorded({ unit, assignments }, config) {
  const holdout = holdoutVariant(config, unit);
  return holdout ? { ...assignments, _holdout: holdout } : assignments;
}

/** Expected exposed units per experiment and variant (the holdout's records included). */
function tally(visitors, config) {
  const counts = {};
  for (const visitor of visitors) {
    for (const [experiment, variant] of Object.entries(recorded(visitor, config))) {
      counts[experiment] ??= {};
      counts[experiment][variant] = (counts[experiment][variant] ?? 0) + 1;
    }
  }
  return counts;
}

before(async () => {
  cohortBinary(); // fails naming the missing binary and how to build it
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-delivery-state-"));
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-delivery-data-"));
  origin = await startOrigin();
  stub = await startCollector();
  collectorPort = await freePort();
  collector = await startRealCollector();
  putKv(stateDir, {
    ...tenantEntries(OUTAGE),
    ...tenantEntries(RELAY),
    ...tenantEntries(STUBBED),
    ...tenantEntries(SHOP),
  });
  const vars = {
    COHORT_SECRET: SECRET,
    ORIGIN_OVERRIDE: `http://127.0.0.1:${origin.port}`,
    DELIVERY_RETRY_BASE_SECONDS: "1",
    // 100 deliveries at up to 4 s apart: the outage may last over 6 minutes on a loaded machine
    // before a message would be given up, while recovery still comes within 4 s of the restart.
    DELIVERY_RETRY_MAX_SECONDS: "4",
  };
  [realWorker, stubWorker] = await Promise.all([
    startWorker({ stateDir, vars: { ...vars, COLLECTOR_URL: `http://127.0.0.1:${collectorPort}` } }),
    // Few attempts, so a collector that stays down dead-letters quickly.
    startWorker({
      stateDir,
      vars: {
        ...vars,
        COLLECTOR_URL: `http://127.0.0.1:${stub.port}`,
        DELIVERY_RETRY_MAX_SECONDS: "1",
        DELIVERY_MAX_ATTEMPTS: "4",
        // Below the stub's 3 s "slow" answer.
        COLLECTOR_TIMEOUT_SECONDS: "2",
      },
    }),
  ]);
});

after(async () => {
  realWorker?.stop();
  stubWorker?.stop();
  await collector?.stop();
  await origin?.close();
  await stub?.close();
  fs.rmSync(stateDir, { recursive: true, force: true });
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("durable delivery through the queue", () => {
  test(`exposures survive a collector outage: ${VISITORS} visitors, every exposure exactly once`, async () => {
    const started = performance.now();
    /** Whether the collector holds at least `expected`'s exposed units, experiment by experiment. */
    const holds = async (expected) => {
      for (const [experiment, variants] of Object.entries(expected)) {
        if (sum(await exposedUnits("outage", experiment)) < sum(variants)) return false;
      }
      return true;
    };
    // The pipeline works before the outage.
    const early = await visit(realWorker.port, "outage.test", 1, 1);
    assert.ok(await eventually(() => holds(tally(early, OUTAGE)), 10_000, 200), "delivered before the outage");

    await collector.stop();
    const driveStart = performance.now();
    const visitors = await visit(realWorker.port, "outage.test", VISITORS);
    const driveSeconds = (performance.now() - driveStart) / 1000;
    assert.equal(new Set(visitors.map((v) => v.unit)).size, VISITORS, "every visitor is a new unit");
    assert.ok(
      await eventually(() => logEvents(realWorker, "delivery.batch").some((e) => Number(e.retried) > 0), 10_000, 200),
      "the consumer retries while the collector is down",
    );
    assert.equal(logEvents(realWorker, "beacon.dropped").length, 0, "nothing dropped at the edge");

    collector = await startRealCollector();
    const restarted = performance.now();
    const all = [...early, ...visitors];
    const expected = tally(all, OUTAGE);
    assert.ok(expected._holdout.holdout > 0 && expected._holdout.rest > 0, JSON.stringify(expected._holdout));
    if (!(await eventually(() => holds(expected), 120_000, 200))) {
      const seen = {};
      for (const experiment of Object.keys(expected)) seen[experiment] = await exposedUnits("outage", experiment);
      const tail = logEvents(realWorker, "delivery.batch").slice(-5);
      assert.fail(
        `not every exposure arrived after the restart: expected ${JSON.stringify(expected)}, got ${JSON.stringify(seen)}; ` +
          `dead-lettered ${logEvents(realWorker, "delivery.dead_lettered").length}, consumer failures ` +
          `${logEvents(realWorker, "delivery.consumer_failed").length}; last batches ${JSON.stringify(tail)}; ` +
          `collector log: ${collector.log.join("").slice(-2000)}`,
      );
    }
    const drainSeconds = (performance.now() - restarted) / 1000;
    await sleep(1500); // anything still in flight would show up now as an extra row
    for (const [experiment, variants] of Object.entries(expected)) {
      assert.deepEqual(await exposedUnits("outage", experiment), variants, `${experiment}: exposed units per variant`);
    }
    // The restarted collector inserted every record of the outage once: two exposures per unit
    // outside the holdout and one holdout record per unit (about 28,000 rows).
    const outageExposures = visitors.reduce((n, v) => n + Object.keys(recorded(v, OUTAGE)).length, 0);
    assert.equal(await metric("cohort_ingested_records_total", "exposure"), outageExposures);
    const rows = sqlite(
      "SELECT experiment || ' ' || variant || ' ' || unit_id FROM exposures WHERE tenant_id = 'outage'",
    );
    const want = all
      .flatMap((v) =>
        Object.entries(recorded(v, OUTAGE)).map(([experiment, variant]) => `${experiment} ${variant} ${v.unit}`),
      )
      .sort();
    assert.deepEqual(rows.sort(), want, "exactly the expected (experiment, variant, unit) rows, each once");
    assert.equal(logEvents(realWorker, "delivery.dead_lettered").length, 0, "nothing dead-lettered");
    const batches = logEvents(realWorker, "delivery.batch");
    console.log(
      `# outage: ${VISITORS} visitors driven in ${driveSeconds.toFixed(1)} s, ${outageExposures} records (${VISITORS} of them ` +
        `holdout records) delivered ` +
        `${drainSeconds.toFixed(1)} s after the restart; ${batches.length} consumer batches, ` +
        `max attempts ${Math.max(...batches.map((b) => Number(b.max_attempts)))}; ` +
        `total ${((performance.now() - started) / 1000).toFixed(1)} s; ${rows.length} SQLite rows checked`,
    );
  });

  test("redelivery is harmless: lost acknowledgements resend, the collector keeps each record once", async () => {
    stub.state.forward = `http://127.0.0.1:${collectorPort}`;
    stub.state.loseAcks = 2;
    const exposuresBefore = await metric("cohort_duplicate_records_total", "exposure");
    const conversionsBefore = await metric("cohort_ingested_records_total", "conversion");
    const duplicateConversionsBefore = await metric("cohort_duplicate_records_total", "conversion");
    const visitors = await visit(stubWorker.port, "relay.test", 50, 4);
    for (const [i, visitor] of visitors.entries()) {
      const response = await request({
        port: stubWorker.port,
        host: "relay.test",
        path: "/_cohort/track",
        method: "POST",
        headers: { cookie: visitor.cookie, "content-type": "application/json" },
        body: JSON.stringify({ metric: "signup", id: `signup-${i}` }),
      });
      assert.equal(response.status, 202);
    }
    const expected = tally(visitors, RELAY);
    assert.ok(await eventually(async () => sum(await exposedUnits("relay", "banner")) === 50, 20_000, 200));
    assert.ok(
      await eventually(
        async () => (await metric("cohort_ingested_records_total", "conversion")) - conversionsBefore === 50,
        20_000,
        200,
      ),
    );
    await eventually(() => stub.state.loseAcks === 0, 5000, 200);
    await sleep(2500); // retries of the lost acknowledgements land as duplicates
    const lost = stub.batches.filter((b) => b.lostAck);
    assert.equal(lost.length, 2, "two acknowledgements were lost after the commit");
    const duplicates =
      (await metric("cohort_duplicate_records_total", "exposure")) -
      exposuresBefore +
      (await metric("cohort_duplicate_records_total", "conversion")) -
      duplicateConversionsBefore;
    const resent = lost.reduce((n, b) => n + b.records.length, 0);
    assert.ok(duplicates >= resent, `${duplicates} duplicates ignored for ${resent} records sent again`);
    for (const [experiment, variants] of Object.entries(expected)) {
      assert.deepEqual(await exposedUnits("relay", experiment), variants);
    }
    assert.equal(
      (await metric("cohort_ingested_records_total", "conversion")) - conversionsBefore,
      50,
      "each event once",
    );
    stub.state.forward = null;
  });

  test("a collector answering 500 for a while causes retries, not loss", async () => {
    const start = stub.batches.length;
    stub.state.failNext = 3;
    const visitors = await visit(stubWorker.port, "stubbed.test", 20, 2);
    assert.ok(await eventually(() => visitors.every((v) => exposuresOf(stub, v.unit).length === 2), 15_000, 200));
    await sleep(1500);
    for (const visitor of visitors)
      assert.equal(exposuresOf(stub, visitor.unit).length, 2, "each exposure accepted once");
    const failed = stub.batches.slice(start).filter((b) => b.status === 500);
    assert.equal(failed.length, 3);
    assert.ok(
      logEvents(stubWorker, "delivery.batch").some((e) => Number(e.retried) > 0 && e.retry_reasons.includes("500")),
    );
  });

  test("a collector that does not answer within COLLECTOR_TIMEOUT_SECONDS is aborted and retried", async () => {
    stub.state.mode = "slow"; // 200 after 3 s, past the worker's 2 s
    const [visitor] = await visit(stubWorker.port, "stubbed.test", 1, 1);
    const timedOut = () =>
      logEvents(stubWorker, "delivery.batch").some((e) => e.retry_reasons.includes("no answer within 2 s"));
    assert.ok(await eventually(timedOut, 15_000, 100), "a batch was retried for want of an answer");
    stub.state.mode = "ok";
    assert.ok(await eventually(() => exposuresOf(stub, visitor.unit).length >= 2, 15_000, 200), "delivered after");
  });

  test("a poisoned record goes to the dead-letter queue with the reason; the rest still flows", async () => {
    stub.state.reject = (record) => record.metric === "poison";
    const visitors = await visit(stubWorker.port, "stubbed.test", 6, 1);
    const events = visitors.map((v, i) => ({ visitor: v, metric: i === 2 ? "poison" : "purchase", id: `order-${i}` }));
    await Promise.all(
      events.map(({ visitor, metric, id }) =>
        request({
          port: stubWorker.port,
          host: "stubbed.test",
          path: "/_cohort/track",
          method: "POST",
          headers: { cookie: visitor.cookie, "content-type": "application/json" },
          body: JSON.stringify({ metric, id, value: 10 }),
        }),
      ),
    );
    const accepted = () =>
      stub.batches
        .filter((b) => b.path === "/v1/events" && b.status === 200)
        .flatMap((b) => b.records)
        .map((r) => r.id);
    assert.ok(
      await eventually(
        () => ["order-0", "order-1", "order-3", "order-4", "order-5"].every((id) => accepted().includes(id)),
        15_000,
        200,
      ),
    );
    assert.ok(
      await eventually(
        () => logEvents(stubWorker, "delivery.dead_letter").some((e) => e.ids === "order-2"),
        15_000,
        200,
      ),
    );
    const [letter] = logEvents(stubWorker, "delivery.dead_letter").filter((e) => e.ids === "order-2");
    assert.match(letter.reason, /collector answered 400 invalid_record at records\[\d+\]\.metric/);
    assert.equal(letter.tenant, "stubbed");
    assert.equal(letter.kind, "events");
    assert.equal(letter.records, "1", "only the poisoned record is dead");
    assert.equal(JSON.parse(letter.body).records[0].metric, "poison", "the dead letter keeps the record for replay");
    assert.ok(!accepted().includes("order-2"));
    assert.equal(new Set(accepted()).size, accepted().length, "no event accepted twice");
    // Exposures of the same visitors were never held up.
    for (const visitor of visitors) assert.equal(exposuresOf(stub, visitor.unit).length, 2);
    stub.state.reject = null;
  });

  test("a collector down past every retry: dead-lettered with the reason, never silently lost", async () => {
    stub.state.mode = "down";
    const [visitor] = await visit(stubWorker.port, "stubbed.test", 1, 1);
    const ids = new Set();
    assert.ok(
      await eventually(
        () => {
          for (const e of logEvents(stubWorker, "delivery.dead_letter")) {
            if (e.body.includes(visitor.unit)) ids.add(e.reason);
          }
          return ids.size > 0;
        },
        20_000,
        200,
      ),
      "dead-lettered after DELIVERY_MAX_ATTEMPTS",
    );
    assert.match([...ids][0], /^gave up after 4 attempts: collector answered 500/);
    stub.state.mode = "ok";
  });
});

describe("tenant holdout", () => {
  test("this suite's bucketing agrees with the bucketing vectors", () => {
    const vectors = JSON.parse(fs.readFileSync(path.join(ROOT, "testdata/bucketing.json"), "utf8"));
    assert.ok(vectors.cases.some((c) => c.seed === "holdout:shop"));
    for (const c of vectors.cases) {
      const { hash, bucket } = bucketOf(c.hash_key, c.seed, c.unit);
      assert.deepEqual(
        { hash: hash.toString(16).padStart(16, "0"), bucket },
        { hash: c.hash, bucket: c.bucket },
        JSON.stringify(c),
      );
    }
  });

  test("a new shop visitor yields exactly one `_holdout` record, with the variant its bucket implies", async () => {
    Object.assign(stub.state, { mode: "ok", failNext: 0, reject: null, forward: null });
    const get = (requestPath, cookie) =>
      request({ port: stubWorker.port, host: "shop.localhost", path: requestPath, headers: cookie ? { cookie } : {} });
    // New visitors until one of each side has come (5% are held out): a page, the assignments
    // with the cookie it set, and a return visit.
    const visitors = [];
    for (let i = 0; i < 400 && new Set(visitors.map((v) => v.expected)).size < 2; i++) {
      const page = await get("/");
      assert.equal(page.status, 200);
      const cookie = stickyCookie(page);
      assert.ok(cookie, "a new visitor gets a cookie");
      const { unit, assignments } = JSON.parse((await get("/_cohort/assignments?path=/", cookie)).body);
      await get("/", cookie);
      visitors.push({ unit, assignments, expected: holdoutVariant(SHOP, unit) });
    }
    const expected = new Set(visitors.map((v) => v.expected));
    assert.deepEqual([...expected].sort(), ["holdout", "rest"], `${visitors.length} visitors`);
    assert.ok(
      await eventually(() => visitors.every((v) => recordsOf(stub, v.unit, "_holdout").length > 0), 15_000, 200),
    );
    await quiet(stub); // a duplicate would arrive now
    for (const { unit, assignments, expected } of visitors) {
      const records = recordsOf(stub, unit, "_holdout");
      assert.equal(records.length, 1, `unit ${unit}: ${JSON.stringify(records)}`);
      const [record] = records;
      assert.equal(
        record.variant,
        expected,
        `unit ${unit}: bucket ${bucketOf(SHOP.hash_key, "holdout:shop", unit).bucket}`,
      );
      assert.equal(record.tenant, "shop");
      assert.equal(record.config_version, SHOP.version);
      assert.equal(record.device, "desktop");
      // Held out: in no experiment. Otherwise in the home page's running experiment, exposed once.
      assert.equal(assignments["hero-banner"] === undefined, expected === "holdout", JSON.stringify(assignments));
      assert.equal(recordsOf(stub, unit, "hero-banner").length, expected === "holdout" ? 0 : 1);
    }
  });
});

function sum(counts) {
  return Object.values(counts ?? {}).reduce((a, b) => a + (b ?? 0), 0);
}
