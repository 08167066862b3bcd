// End-to-end tests of the edge worker in real workerd (`wrangler dev`), with a real origin and a
// stub collector on loopback. Run by scripts/test.sh after scripts/build-worker.sh.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { stickyCookie } from "../../scripts/lib/cohort.mjs";
import { request } from "../../scripts/lib/http.mjs";
import { eventually, sleep } from "../../scripts/lib/wait.mjs";
import { putKv, startWorker, tenantEntries } from "../../scripts/lib/wrangler.mjs";
import {
  DELIVERY_SETTLE_MS,
  SECRET,
  assignmentsSeenByOrigin,
  bucketOf,
  exposuresOf,
  logEvents,
  previewToken,
  quiet,
  startCollector,
  startOrigin,
  unitOf,
} from "./harness.mjs";

const HASH_KEY = "6a1f0c3e9b2d4f5a8c7e1d0b3a2f4e6c";
const CUBOT_PHONE =
  "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";

function shopConfig({ version = 1, heroWeights = [5000, 5000], pricingCoverage = 2000 } = {}) {
  return {
    schema: 1,
    tenant: "shop",
    version,
    hostnames: ["shop.test"],
    hash_key: HASH_KEY,
    edge: { opt_out_cookie: "no_experiments", inject_assignments: true },
    experiments: [
      {
        key: "hero",
        status: "running",
        paths: ["/"],
        variants: [
          { key: "control", weight: heroWeights[0] },
          {
            key: "bold",
            weight: heroWeights[1],
            actions: [
              { type: "set_text", selector: "h1.title", text: "Bold & new" },
              { type: "set_attribute", selector: "#cta", name: "data-variant", value: "bold" },
              { type: "remove", selector: "#promo" },
            ],
          },
        ],
      },
      {
        key: "pricing",
        status: "running",
        paths: ["/pricing"],
        coverage: pricingCoverage,
        variants: [
          { key: "control", weight: 5000 },
          {
            key: "annual-first",
            weight: 5000,
            actions: [{ type: "request_header", name: "x-pricing", value: "annual" }],
          },
        ],
      },
      {
        key: "checkout",
        status: "running",
        paths: ["/checkout"],
        variants: [
          { key: "control", weight: 0 },
          { key: "one-page", weight: 10000, actions: [{ type: "route", path: "/checkout-onepage" }] },
        ],
      },
      {
        key: "data-api",
        status: "running",
        paths: ["/data.json"],
        variants: [
          { key: "control", weight: 0 },
          { key: "edited", weight: 10000, actions: [{ type: "set_text", selector: "h1", text: "EDITED" }] },
        ],
      },
      // A selector the config accepts but workerd's HTMLRewriter refuses (no :hover in a document).
      {
        key: "bad-selector",
        status: "running",
        paths: ["/bad-selector"],
        variants: [
          { key: "control", weight: 0 },
          { key: "broken", weight: 10000, actions: [{ type: "set_text", selector: "h1:hover", text: "never shown" }] },
        ],
      },
    ],
  };
}

const NEWS = {
  schema: 1,
  tenant: "news",
  version: 1,
  hostnames: ["news.test"],
  hash_key: "0b9e8d7c6a5f4e3d2c1b0a9f8e7d6c5b",
  // Signed-in readers carry their account id in a header the site's own proxy sets.
  edge: { inject_assignments: true, unit_id_header: "x-reader-id" },
  experiments: [
    {
      key: "headline",
      status: "running",
      paths: ["/"],
      variants: [
        { key: "control", weight: 5000 },
        { key: "question", weight: 5000 },
      ],
    },
  ],
};

/** A tenant whose pages render variants server-side: no HTML edits, no injected script. */
const PLAIN = {
  schema: 1,
  tenant: "plain",
  version: 1,
  hostnames: ["plain.test"],
  hash_key: "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f",
  experiments: [
    {
      key: "server-side",
      status: "running",
      variants: [
        { key: "control", weight: 5000 },
        { key: "treatment", weight: 5000 },
      ],
    },
  ],
};

let origin;
let collector;
let worker;
let outageWorker;
let directWorker;
let trapWorker;
let stateDir;

before(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-edge-state-"));
  origin = await startOrigin();
  collector = await startCollector();
  putKv(stateDir, {
    ...tenantEntries(shopConfig()),
    ...tenantEntries(NEWS),
    ...tenantEntries(PLAIN),
    "host:broken.test": "broken",
    "tenant:broken": "{ this is not json",
    "host:future.test": "future",
    "tenant:future": JSON.stringify({ ...NEWS, schema: 2, tenant: "future", hostnames: ["future.test"] }),
  });
  const vars = {
    COHORT_SECRET: SECRET,
    ORIGIN_OVERRIDE: `http://127.0.0.1:${origin.port}`,
    COLLECTOR_URL: `http://127.0.0.1:${collector.port}`,
    CONFIG_TTL_SECONDS: "1",
    COHORT_TEST_PANIC_PATH: "/__panic",
    DELIVERY_RETRY_BASE_SECONDS: "1",
    DELIVERY_RETRY_MAX_SECONDS: "1",
  };
  // The second worker reads KV through a binding that does not exist: a KV outage. The third
  // sends to a queue binding that does not exist: beacons take the direct fallback.
  // The fourth traps (panics) inside its async paths: news.test's tenant load, and the queue
  // consumer's delivery of shop's records.
  [worker, outageWorker, directWorker, trapWorker] = await Promise.all([
    startWorker({ stateDir, vars }),
    startWorker({ stateDir, vars: { ...vars, CONFIG_KV_BINDING: "KV_THAT_IS_DOWN" }, queues: false }),
    startWorker({ stateDir, vars: { ...vars, BEACON_QUEUE_BINDING: "QUEUE_THAT_IS_DOWN" } }),
    startWorker({
      stateDir,
      vars: { ...vars, COHORT_TEST_PANIC_HOST: "news.test", COHORT_TEST_PANIC_DELIVERY_TENANT: "shop" },
    }),
  ]);
});

after(async () => {
  worker?.stop();
  outageWorker?.stop();
  directWorker?.stop();
  trapWorker?.stop();
  await origin?.close();
  await collector?.close();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

const get = (host, requestPath = "/", headers = {}) => request({ port: worker.port, host, path: requestPath, headers });

/**
 * Asks `requestPath` as new visitors until one's exposure to `experiment` carries config
 * `version`: only then is that version what the worker serves. Fails after `ms`.
 */
async function untilConfigLive(host, requestPath, experiment, version, ms = 20_000) {
  const deadline = Date.now() + ms;
  const seen = [];
  while (Date.now() < deadline) {
    const unit = unitOf(await get(host, requestPath));
    assert.ok(unit, `a new visitor of ${host}${requestPath} gets a unit`);
    if (!assignmentsSeenByOrigin(origin)[experiment]) continue; // outside the experiment: no exposure
    const exposed = () => exposuresOf(collector, unit).filter((e) => e.experiment === experiment);
    await eventually(() => exposed().length > 0, 3000);
    const versions = exposed().map((e) => e.config_version);
    if (versions.includes(version)) return;
    seen.push(...versions);
  }
  assert.fail(
    `config version ${version} of ${host} never went live within ${ms} ms; exposures carried versions ${JSON.stringify([...new Set(seen)])}`,
  );
}

/**
 * The variant of `unit` in an experiment with `weights` at `coverage`, from the bucketing
 * contract alone (testdata/bucketing.json): variant i owns [S_i, S_i + floor(w_i * coverage /
 * 10000)), S_i the sum of the weights before it; undefined outside every range.
 */
function contractVariant(hashKey, seed, variants, coverage, unit) {
  const { bucket } = bucketOf(hashKey, seed, unit);
  let start = 0;
  for (const { key, weight } of variants) {
    if (bucket >= start && bucket < start + Math.floor((weight * coverage) / 10000)) return key;
    start += weight;
  }
  return undefined;
}

/** The origin's own response for a path, fetched directly. */
const direct = (requestPath) => request({ port: origin.port, host: "origin", path: requestPath });

function assertUntouched(response, original, what) {
  assert.equal(response.status, original.status, what);
  assert.equal(response.body, original.body, what);
  assert.equal(response.headers["cache-control"], original.headers["cache-control"], what);
  assert.equal(response.headers["content-type"], original.headers["content-type"], what);
  assert.equal(response.headers["set-cookie"], undefined, what);
}

describe("tenants and stickiness", () => {
  test("two tenants on two hostnames never see each other's experiments", async () => {
    await get("shop.test", "/");
    assert.deepEqual(Object.keys(assignmentsSeenByOrigin(origin)), ["hero"]);
    assert.equal(origin.requests.at(-1).headers["x-forwarded-host"], "shop.test");
    await get("news.test", "/");
    assert.deepEqual(Object.keys(assignmentsSeenByOrigin(origin)), ["headline"]);
    assert.equal(origin.requests.at(-1).headers["x-forwarded-host"], "news.test");
  });

  test("a new visitor gets a signed host-only cookie; the same cookie gets the same variant", async () => {
    const first = await get("shop.test", "/");
    assert.equal(first.status, 200);
    const cookieHeader = first.headers["set-cookie"]?.[0] ?? "";
    assert.match(
      cookieHeader,
      /^__Host-cohort=[A-Za-z0-9_-]+; Path=\/; Max-Age=34560000; Secure; HttpOnly; SameSite=Lax$/,
    );
    const variant = assignmentsSeenByOrigin(origin).hero;
    const cookie = stickyCookie(first);
    for (let i = 0; i < 3; i++) {
      const again = await get("shop.test", "/", { cookie });
      assert.equal(assignmentsSeenByOrigin(origin).hero, variant);
      assert.equal(again.headers["set-cookie"], undefined, "unchanged cookie is not re-sent");
    }
  });

  test("a tampered cookie starts a new unit without breaking the page", async () => {
    const first = await get("shop.test", "/");
    const cookie = stickyCookie(first);
    assert.ok(cookie, "a new visitor gets the sticky cookie");
    const tampered = cookie.slice(0, -2) + (cookie.endsWith("AA") ? "BA" : "AA");
    const response = await get("shop.test", "/", { cookie: tampered });
    assert.equal(response.status, 200);
    const fresh = stickyCookie(response);
    assert.ok(fresh && fresh !== cookie && fresh !== tampered);
    // Only the tag was altered: the tampered cookie still names the first unit, which must not be kept.
    assert.ok(unitOf(first) && unitOf(response), "both pages carry their unit");
    assert.notEqual(unitOf(response), unitOf(first), "the tampered cookie's unit is not trusted");
    const garbage = await get("shop.test", "/", { cookie: "__Host-cohort=%%%not-base64%%%" });
    assert.equal(garbage.status, 200);
    assert.ok(stickyCookie(garbage));
  });

  test("one tenant's cookie on another tenant's host starts a new unit there", async () => {
    // shop and news share the host-only cookie name; each tenant's cookie key is its own.
    const onShop = await get("shop.test", "/");
    const shopCookie = stickyCookie(onShop);
    const onNews = await get("news.test", "/", { cookie: shopCookie });
    assert.equal(onNews.status, 200);
    const newsCookie = stickyCookie(onNews);
    assert.ok(newsCookie && newsCookie !== shopCookie, "news issues its own cookie");
    assert.ok(unitOf(onShop) && unitOf(onNews) && unitOf(onNews) !== unitOf(onShop), "the unit changed");
    // news keeps its own cookie, so the refusal above is the key, not the visit.
    const again = await get("news.test", "/", { cookie: newsCookie });
    assert.equal(unitOf(again), unitOf(onNews));
    assert.equal(again.headers["set-cookie"], undefined);
  });
});

describe("the site's own unit id", () => {
  test("a tenant's unit id header is the unit on every device; other tenants ignore it", async () => {
    const first = await get("news.test", "/", { "x-reader-id": "reader-42" });
    assert.equal(unitOf(first), "reader-42");
    const variant = assignmentsSeenByOrigin(origin).headline;
    // Another device: no cookie of the first, the same reader, the same variant.
    const elsewhere = await get("news.test", "/", { "x-reader-id": "reader-42", "user-agent": CUBOT_PHONE });
    assert.equal(unitOf(elsewhere), "reader-42");
    assert.equal(assignmentsSeenByOrigin(origin).headline, variant);
    const unusable = await get("news.test", "/", { "x-reader-id": "reader 42" });
    assert.match(unitOf(unusable) ?? "", /^[0-9a-f]{32}$/, "an unusable id falls back to Cohort's own");
    const shop = await get("shop.test", "/", { "x-reader-id": "reader-42" });
    assert.match(unitOf(shop) ?? "", /^[0-9a-f]{32}$/, "shop names no unit id header");
  });
});

describe("acting on the variant", () => {
  test("HTML edits apply to HTML only, with the assignments script injected", async () => {
    let bold;
    for (let i = 0; i < 40 && !bold; i++) {
      const response = await get("shop.test", "/");
      if (assignmentsSeenByOrigin(origin).hero === "bold") bold = response;
    }
    assert.ok(bold, "some visitor lands in `bold`");
    assert.match(bold.body, /<h1 class="title">Bold &amp; new<\/h1>/);
    assert.match(bold.body, /<a id="cta" href="\/buy" data-variant="bold">/);
    assert.doesNotMatch(bold.body, /Spring sale/);
    const script = bold.body.match(/<script type="application\/json" id="cohort-assignments">(.*?)<\/script>/);
    assert.ok(script, "assignments script in <head>");
    assert.equal(JSON.parse(script[1]).assignments.hero, "bold");

    const json = await get("shop.test", "/data.json");
    assert.equal(assignmentsSeenByOrigin(origin)["data-api"], "edited", "assigned, with an HTML edit");
    const original = await direct("/data.json");
    assert.equal(json.body, original.body, "JSON is never rewritten");
  });

  test("pages without edits stream through unparsed; the origin still learns the variant", async () => {
    const response = await get("plain.test", "/");
    assert.ok(["control", "treatment"].includes(assignmentsSeenByOrigin(origin)["server-side"]));
    assert.ok(stickyCookie(response));
    assert.equal(response.headers["cache-control"], "private, max-age=60");
    assert.equal(response.body, (await direct("/")).body, "no script without edge.inject_assignments");
  });

  test("split-URL routing fetches the variant's path, invisibly to the visitor", async () => {
    const response = await get("shop.test", "/checkout");
    assert.equal(origin.requests.at(-1).path, "/checkout-onepage");
    assert.match(response.body, /Welcome to \/checkout-onepage/);
    assert.equal(response.status, 200);
  });

  test("personalised responses are private; the cookie never rides a shared-cacheable response", async () => {
    const response = await get("shop.test", "/");
    assert.ok(response.headers["set-cookie"]);
    assert.equal(response.headers["cache-control"], "private, max-age=60");
    const unknown = await get("unknown.test", "/");
    assert.equal(unknown.headers["cache-control"], "public, max-age=60", "untouched for unknown hosts");
  });

  test("request headers reach the origin", async () => {
    let seen = false;
    for (let i = 0; i < 60 && !seen; i++) {
      await get("shop.test", "/pricing");
      const last = origin.requests.at(-1);
      seen = assignmentsSeenByOrigin(origin).pricing === "annual-first" && last.headers["x-pricing"] === "annual";
    }
    assert.ok(seen);
  });
});

describe("who is not experimented on", () => {
  const cases = {
    "a crawler": { "user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)" },
    "a prefetch": { "sec-purpose": "prefetch" },
    "a GPC browser": { "sec-gpc": "1" },
    "an opted-out visitor": { cookie: "no_experiments=1" },
    "an AI crawler": { "user-agent": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2)" },
    "a monitoring script": { "user-agent": "python-requests/2.32.3" },
  };
  for (const [who, headers] of Object.entries(cases)) {
    test(`${who} gets the origin's page, no cookie and no exposure`, async () => {
      await quiet(collector);
      const before = collector.batches.length;
      const response = await get("shop.test", "/", headers);
      assert.equal(response.headers["set-cookie"], undefined);
      assert.deepEqual(assignmentsSeenByOrigin(origin), {});
      assert.equal(response.body, (await direct("/")).body);
      await sleep(DELIVERY_SETTLE_MS);
      assert.equal(collector.batches.length, before, "no beacon");
    });
  }
});

test('a phone whose model name contains "bot" is a visitor like any other', async () => {
  const response = await get("shop.test", "/", { "user-agent": CUBOT_PHONE });
  assert.ok(stickyCookie(response), "it gets the sticky cookie");
  assert.notDeepEqual(assignmentsSeenByOrigin(origin), {});
});

describe("fail open", () => {
  test("a KV value that is not JSON serves the origin untouched", async () => {
    assertUntouched(await get("broken.test", "/"), await direct("/"), "broken config");
  });

  test("a config of a future schema serves the origin untouched", async () => {
    assertUntouched(await get("future.test", "/"), await direct("/"), "future schema");
  });

  test("a KV outage serves the origin untouched", async () => {
    const response = await request({ port: outageWorker.port, host: "shop.test", path: "/" });
    assertUntouched(response, await direct("/"), "KV outage");
    const logged = await eventually(() => outageWorker.log.join("").includes('"event":"fail_open"'));
    assert.ok(logged, `the failure is logged; log tail:\n${outageWorker.log.join("").slice(-1500)}`);
  });

  test("a panic inside the worker serves the origin, and the next request works", async () => {
    const panicked = await get("shop.test", "/__panic");
    assert.equal(panicked.status, 200);
    assert.equal(panicked.body, (await direct("/__panic")).body);
    const next = await get("shop.test", "/");
    assert.equal(next.status, 200);
    assert.ok(stickyCookie(next), "the worker is back");
  });

  test("a trap inside the async tenant load serves the origin, and the next request works", async () => {
    const trapped = await request({ port: trapWorker.port, host: "news.test", path: "/" });
    assertUntouched(trapped, await direct("/"), "trapped tenant load");
    const logged = await eventually(() => logEvents(trapWorker, "fail_open").some((e) => e.step === "handle"));
    assert.ok(logged, `the trap is logged as a fail-open; log tail:\n${trapWorker.log.join("").slice(-1500)}`);
    const next = await request({ port: trapWorker.port, host: "plain.test", path: "/" });
    assert.equal(next.status, 200);
    assert.ok(stickyCookie(next), "the re-initialised worker serves the next request");
  });

  test("a trap inside the queue consumer loses nothing and the consumer keeps working", async () => {
    // shop's exposure reaches the collector, then the consumer traps: the entry's guard retries
    // the batch instead of leaving it unsettled, and the next batch (another tenant) flows.
    await quiet(collector);
    const shop = await request({ port: trapWorker.port, host: "shop.test", path: "/" });
    assert.equal(shop.status, 200);
    const shopUnit = unitOf(shop);
    assert.ok(shopUnit, "the page itself is served as usual");
    assert.ok(
      await eventually(() => exposuresOf(collector, shopUnit).length > 0, 8000),
      "the record sent before the trap is stored",
    );
    const failed = () => logEvents(trapWorker, "delivery.consumer_failed");
    assert.ok(await eventually(() => failed().length > 0, 8000), "the trap is caught and logged by the guard");
    const afterTrap = collector.batches.length;
    const plain = await request({ port: trapWorker.port, host: "plain.test", path: "/" });
    assert.equal(plain.status, 200);
    const plainDelivered = () =>
      collector.batches.slice(afterTrap).some((b) => b.status === 200 && b.tenant === "plain");
    assert.ok(await eventually(plainDelivered, 8000), "the consumer delivers the next batch after its trap");
    // Its trapped batch comes back every 30 s and traps again: stop it before other tests count.
    trapWorker.stop();
    trapWorker = undefined;
  });

  test("an edit workerd's rewriter refuses serves the origin's page unedited", async () => {
    assertUntouched(await get("shop.test", "/bad-selector"), await direct("/bad-selector"), "refused selector");
    const logged = await eventually(() => logEvents(worker, "fail_open").some((e) => e.step === "respond"));
    assert.ok(logged, `the refusal is logged; log tail:\n${worker.log.join("").slice(-1500)}`);
  });

  test("unknown hosts pass through untouched", async () => {
    assertUntouched(await get("unknown.test", "/"), await direct("/"), "unknown host");
  });
});

describe("exposure beacons", () => {
  test("arrive signed, once per unit", async () => {
    const first = await get("news.test", "/");
    const cookie = stickyCookie(first);
    const unit = unitOf(first);
    assert.ok(await eventually(() => exposuresOf(collector, unit).length > 0));
    const batch = collector.batches.find((b) => b.records.some((r) => r.unit === unit));
    assert.equal(batch.path, "/v1/exposures");
    assert.equal(batch.tenant, "news");
    assert.ok(batch.signatureValid, "HMAC-SHA256 over timestamp.body under the tenant's key");
    assert.ok(batch.ageSeconds < 30);
    const [exposure] = exposuresOf(collector, unit);
    assert.equal(exposure.experiment, "headline");
    assert.equal(exposure.config_version, 1);
    assert.equal(exposure.device, "desktop");
    await get("news.test", "/", { cookie });
    await get("news.test", "/", { cookie });
    await quiet(collector);
    assert.equal(exposuresOf(collector, unit).length, 1, "a returning unit sends no exposure again");
  });

  test("exposures of many visitors share a batch", async () => {
    await quiet(collector);
    const start = collector.batches.length;
    const units = [];
    for (let i = 0; i < 20; i++) units.push(unitOf(await get("news.test", "/")));
    assert.ok(await eventually(() => units.every((unit) => exposuresOf(collector, unit).length === 1)));
    const batches = collector.batches.slice(start);
    assert.ok(batches.length < units.length, `${batches.length} batches for ${units.length} visitors`);
    assert.ok(batches.every((b) => b.signatureValid));
  });

  test("a slow or failing collector never slows the response; the queue retries until it answers", async (t) => {
    collector.state.mode = "slow";
    const slow = await get("news.test", "/");
    assert.equal(slow.status, 200);
    assert.ok(slow.ms < 1500, `response took ${slow.ms} ms with a 3 s collector`);
    const slowUnit = unitOf(slow);
    const received = () => collector.batches.some((b) => b.records.some((r) => r.unit === slowUnit));
    assert.ok(await eventually(received, 2500), "the slow collector received the exposure");
    assert.equal(exposuresOf(collector, slowUnit).length, 0, "not accepted while the answer is pending");
    assert.ok(await eventually(() => exposuresOf(collector, slowUnit).length === 1, 8000), "accepted once answered");
    await quiet(collector, 1000);
    collector.state.mode = "down";
    // Restored even when an assertion fails, so one failure does not cascade into later tests.
    t.after(() => {
      collector.state.mode = "ok";
    });
    const start = collector.batches.length;
    const down = await get("news.test", "/");
    const unit = unitOf(down);
    assert.equal(down.status, 200);
    assert.ok(down.ms < 1500);
    const tried = (n) =>
      collector.batches.slice(start).filter((b) => b.records.some((r) => r.unit === unit)).length >= n;
    assert.ok(await eventually(() => tried(2), 8000), "retried from the queue while the collector is down");
    collector.state.mode = "ok";
    assert.ok(await eventually(() => exposuresOf(collector, unit).length === 1, 8000), "delivered once it answers");
  });

  test("without a usable queue, beacons fall back to the direct signed POST", async () => {
    const response = await request({ port: directWorker.port, host: "news.test", path: "/" });
    const unit = unitOf(response);
    assert.ok(await eventually(() => exposuresOf(collector, unit).length === 1));
    const batch = collector.batches.find((b) => b.records.some((r) => r.unit === unit));
    assert.ok(batch.signatureValid);
    // wrangler relays the worker's log lines on its own schedule: the line may trail the POST.
    const logged = () => logEvents(directWorker, "delivery.queue_failed");
    assert.ok(await eventually(() => logged().length > 0), "the queue failure is logged");
    assert.ok(
      logged().every((e) => e.fallback === "direct"),
      "the fallback was the direct POST",
    );
  });

  test("the direct fallback retries once, then counts what it drops", async (t) => {
    await quiet(collector);
    collector.state.mode = "down";
    // Restored even when an assertion fails, so one failure does not cascade into later tests.
    t.after(() => {
      collector.state.mode = "ok";
    });
    const start = collector.batches.length;
    const response = await request({ port: directWorker.port, host: "news.test", path: "/" });
    assert.equal(response.status, 200);
    const unit = unitOf(response);
    const attempts = () => collector.batches.slice(start).filter((b) => b.records.some((r) => r.unit === unit)).length;
    assert.ok(await eventually(() => logEvents(directWorker, "beacon.dropped").length > 0, 5000));
    assert.equal(attempts(), 2, "one retry after the failure, then dropped");
    const [drop] = logEvents(directWorker, "beacon.dropped").slice(-1);
    assert.equal(drop.reason, "collector answered 500 storage_unavailable: down");
    assert.ok(Number(drop.dropped_total) >= 1);
  });
});

describe("config changes", () => {
  test("weights changed: sticky units keep their variant, new units follow the new weights", async () => {
    const visitors = [];
    for (let i = 0; i < 12; i++) {
      const response = await get("shop.test", "/");
      visitors.push({ cookie: stickyCookie(response), variant: assignmentsSeenByOrigin(origin).hero });
    }
    assert.ok(
      visitors.some((v) => v.variant === "control"),
      "some visitors start in control",
    );
    putKv(stateDir, tenantEntries(shopConfig({ version: 2, heroWeights: [0, 10000] })));
    await sleep(1200); // past the TTL: the next request serves the old config and refreshes in the background
    await untilConfigLive("shop.test", "/", "hero", 2);
    for (const visitor of visitors) {
      await get("shop.test", "/", { cookie: visitor.cookie });
      assert.equal(assignmentsSeenByOrigin(origin).hero, visitor.variant);
    }
    for (let i = 0; i < 5; i++) {
      await get("shop.test", "/");
      assert.equal(assignmentsSeenByOrigin(origin).hero, "bold", "new units follow the new weights");
    }
  });

  test("coverage raised: nobody already included moves", async () => {
    // The sticky cookie alone would keep an included unit's variant whatever the bucketing did, so
    // the variants are also checked against the contract's ranges, on new units (no cookie), at
    // 20% and at 90% coverage: ranges that moved an included unit would fail one of the two.
    const pricing = shopConfig().experiments.find((e) => e.key === "pricing");
    assert.ok(pricing);
    const expected = (coverage, unit) => contractVariant(HASH_KEY, pricing.key, pricing.variants, coverage, unit);
    const visitors = [];
    for (let i = 0; i < 25; i++) {
      const response = await get("shop.test", "/pricing");
      const visitor = {
        unit: unitOf(response),
        cookie: stickyCookie(response),
        variant: assignmentsSeenByOrigin(origin).pricing,
      };
      assert.equal(visitor.variant, expected(2000, visitor.unit), `unit ${visitor.unit} at 20% coverage`);
      visitors.push(visitor);
    }
    putKv(stateDir, tenantEntries(shopConfig({ version: 3, heroWeights: [0, 10000], pricingCoverage: 9000 })));
    await sleep(1200); // past the TTL: the next request serves the old config and refreshes in the background
    await untilConfigLive("shop.test", "/pricing", "pricing", 3);
    for (let i = 0; i < 25; i++) {
      const response = await get("shop.test", "/pricing");
      const unit = unitOf(response);
      assert.equal(assignmentsSeenByOrigin(origin).pricing, expected(9000, unit), `new unit ${unit} at 90% coverage`);
    }
    let newlyIncluded = 0;
    for (const visitor of visitors) {
      await get("shop.test", "/pricing", { cookie: visitor.cookie });
      const now = assignmentsSeenByOrigin(origin).pricing;
      if (visitor.variant) assert.equal(now, visitor.variant, "an included unit keeps its variant");
      else if (now) newlyIncluded++;
    }
    assert.ok(visitors.filter((v) => !v.variant).length > 0, "coverage 20% leaves some units out");
    assert.ok(newlyIncluded > 0, "raising coverage includes more units");
  });
});

describe("QA preview links and first-party endpoints", () => {
  test("a valid preview token forces a variant; a forged or expired one is ignored", async () => {
    const token = previewToken("shop", { hero: "control" }, 600);
    const forced = await get("shop.test", `/?cohort_preview=${token}`);
    assert.equal(forced.status, 200);
    assert.equal(assignmentsSeenByOrigin(origin).hero, "control", "forced despite 100% bold");
    const expired = previewToken("shop", { hero: "control" }, -10);
    await get("shop.test", `/?cohort_preview=${expired}`);
    assert.equal(assignmentsSeenByOrigin(origin).hero, "bold");
    const forged = previewToken("news", { hero: "control" }, 600);
    await get("shop.test", `/?cohort_preview=${forged}`);
    assert.equal(assignmentsSeenByOrigin(origin).hero, "bold");
  });

  test("GET /_cohort/assignments answers for a page, for single-page apps", async () => {
    const response = await get("shop.test", "/_cohort/assignments?path=/checkout");
    assert.equal(response.status, 200);
    assert.equal(response.headers["cache-control"], "no-store");
    const body = JSON.parse(response.body);
    assert.equal(body.assignments.checkout, "one-page");
    assert.match(body.unit, /^[0-9a-f]{32}$/);
  });

  test("POST /_cohort/track forwards signed conversions with the visitor's unit", async () => {
    const page = await get("news.test", "/");
    const cookie = stickyCookie(page);
    const unit = unitOf(page);
    const start = collector.batches.length;
    const response = await request({
      port: worker.port,
      host: "news.test",
      path: "/_cohort/track",
      method: "POST",
      headers: { cookie, "content-type": "application/json" },
      body: JSON.stringify({ metric: "subscribe", value: 9.99, id: "sub-1" }),
    });
    assert.equal(response.status, 202);
    assert.ok(await eventually(() => collector.batches.slice(start).some((b) => b.path === "/v1/events")));
    const batch = collector.batches.slice(start).find((b) => b.path === "/v1/events");
    assert.ok(batch.signatureValid);
    assert.deepEqual(
      {
        unit: batch.records[0].unit,
        metric: batch.records[0].metric,
        value: batch.records[0].value,
        id: batch.records[0].id,
      },
      { unit, metric: "subscribe", value: 9.99, id: "sub-1" },
    );
    const bad = await request({
      port: worker.port,
      host: "news.test",
      path: "/_cohort/track",
      method: "POST",
      headers: { cookie },
      body: JSON.stringify({ metric: "has spaces" }),
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error.message, /events\[0\]\.metric/);
  });
});
