// The results dashboard in a real browser: the real `cohort collector` binary on a free loopback
// port with a temp SQLite file and a temp tenant config, seeded with signed beacons (one
// experiment with a planted effect, one with a sample-ratio mismatch), checked in Debian's
// Chromium against the results API, on a desktop and a 360 px phone viewport.
//
//   bash scripts/build-dashboard.sh && cargo build -p cohort-cli && node --test tests/dashboard/
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

import { cohortBinary, startCohortCollector } from "../../scripts/pipeline.mjs";
import { freePort } from "../edge/harness.mjs";
import { CHROMIUM, CHROMIUM_ARGS, checkDashboard } from "./check.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || "target");
const DASHBOARD_DIR = path.join(ROOT, "www/dashboard");
const SCREENSHOTS = path.join(TARGET, "screenshots");
const SECRET = "dashboard-suite-platform-secret-0123456789";
const TENANT = "dash-shop";

/** An experiment that splits its units evenly between `control` and one treatment. */
function fiftyFifty(key, name, status, treatment) {
  return { key, name, status, variants: [{ key: "control", weight: 5000 }, { key: treatment, weight: 5000 }] };
}

const CONFIG = {
  schema: 1,
  tenant: TENANT,
  version: 7,
  hostnames: ["dash-shop.example"],
  hash_key: "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
  experiments: [
    fiftyFifty("checkout-button", "Green checkout button", "running", "green"),
    fiftyFifty("pricing-page", "Annual plan first", "running", "annual-first"),
    fiftyFifty("hero-copy", "Hero copy (not started)", "draft", "short"),
  ],
};

/** HMAC-SHA256(secret, "cohort/v1/" purpose 0 tenant): the key derivation contract. */
function tenantKey(purpose, tenant) {
  return createHmac("sha256", SECRET).update(`cohort/v1/${purpose}\0${tenant}`).digest();
}

const readToken = (tenant) => tenantKey("results-read-token", tenant).subarray(0, 24).toString("base64url");

/** Exposure idempotency id: hex(SHA-256("exposure" 0 tenant 0 experiment 0 unit))[..32]. */
function exposureId(tenant, experiment, unit) {
  return createHash("sha256").update(["exposure", tenant, experiment, unit].join("\0")).digest("hex").slice(0, 32);
}

function exposure(experiment, variant, unit, timestamp) {
  return { id: exposureId(TENANT, experiment, unit), tenant: TENANT, experiment, variant, unit, config_version: CONFIG.version, timestamp, country: "DE" };
}

function conversion(id, unit, metric, value, timestamp) {
  return { id, tenant: TENANT, unit, metric, ...(value === null ? {} : { value }), timestamp };
}

/**
 * Units per variant and how many of them buy, for each seeded experiment. Every n-th unit
 * converts, so the counts are exact:
 * - checkout-button: 10% vs 20% purchase (a planted effect, p far below 0.001), equal signups;
 * - pricing-page: 1200 vs 800 units against a 50/50 config (the SRM), equal 10% purchase rates;
 * - legacy-banner: not in the config, balanced, no conversions at all.
 */
const PLAN = [
  { experiment: "checkout-button", variant: "control", units: 1000, buyEvery: 10, signupEvery: 4 },
  { experiment: "checkout-button", variant: "green", units: 1000, buyEvery: 5, signupEvery: 4 },
  { experiment: "pricing-page", variant: "control", units: 1200, buyEvery: 10 },
  { experiment: "pricing-page", variant: "annual-first", units: 800, buyEvery: 10 },
  { experiment: "legacy-banner", variant: "control", units: 150 },
  { experiment: "legacy-banner", variant: "wide", units: 150 },
];

function seedRecords(now) {
  const exposures = [];
  const events = [];
  const spanMs = 2 * 3600 * 1000;
  for (const { experiment, variant, units, buyEvery, signupEvery } of PLAN) {
    for (let i = 0; i < units; i++) {
      const unit = `${experiment}.${variant}.${i}`;
      // Spread over the last two hours, so the timeline has a shape.
      const exposedAt = now - spanMs + Math.floor((i / units) * spanMs);
      exposures.push(exposure(experiment, variant, unit, exposedAt));
      if (buyEvery && i % buyEvery === 0) {
        events.push(conversion(`${unit}.purchase`, unit, "purchase", 20 + (i % 7) * 5, exposedAt + 60_000));
      }
      if (signupEvery && i % signupEvery === 1) events.push(conversion(`${unit}.signup`, unit, "signup", null, exposedAt + 1000));
    }
  }
  return { exposures, events };
}

async function postSigned(baseUrl, route, records) {
  const body = JSON.stringify(records);
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = createHmac("sha256", tenantKey("beacon-signing", TENANT)).update(`${timestamp}.${body}`).digest("hex");
  const response = await fetch(`${baseUrl}${route}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "cohort-tenant": TENANT,
      "cohort-timestamp": String(timestamp),
      "cohort-signature": signature,
    },
    body,
  });
  const answer = await response.json();
  assert.equal(response.status, 200, `${route}: ${JSON.stringify(answer)}`);
  assert.equal(answer.inserted, records.length, `${route}: every record is new`);
}

/** The real collector on a free port with `dir/cohort.db` and `args`. */
async function startCollector(dir, args) {
  return startCohortCollector({ port: await freePort(), database: path.join(dir, "cohort.db"), secret: SECRET, args });
}

let dir;
let collector;

before(async () => {
  cohortBinary(); // fails naming the missing binary and how to build it
  assert.ok(
    fs.existsSync(path.join(DASHBOARD_DIR, "vendor/uPlot.iife.min.js")),
    "www/dashboard/vendor is missing: run `bash scripts/build-dashboard.sh`",
  );
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`bash scripts/setup.sh --browser\``);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-dashboard-test-"));
  const configFile = path.join(dir, "dash-shop.json");
  fs.writeFileSync(configFile, JSON.stringify(CONFIG, null, 2));
  collector = await startCollector(dir, ["--tenant-config", configFile, "--dashboard-dir", DASHBOARD_DIR]);
  const { exposures, events } = seedRecords(Date.now());
  for (let i = 0; i < exposures.length; i += 500) await postSigned(collector.url, "/v1/exposures", exposures.slice(i, i + 500));
  for (let i = 0; i < events.length; i += 500) await postSigned(collector.url, "/v1/events", events.slice(i, i + 500));
});

after(async () => {
  if (collector) {
    const { code } = await collector.stop();
    assert.equal(code, 0, `cohort collector exits 0 on SIGTERM: ${collector.log.join("")}`);
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const byKey = (seen, key) => {
  const experiment = seen.experiments.find((e) => e.key === key);
  assert.ok(experiment, `the dashboard shows ${key}`);
  return experiment;
};

test("the dashboard shows the API's numbers, the planted effect as significant, and SRM only where it is", async () => {
  const seen = await checkDashboard({
    baseUrl: collector.url,
    tenant: TENANT,
    token: readToken(TENANT),
    screenshotPath: path.join(SCREENSHOTS, "dashboard-desktop.png"),
  });
  assert.deepEqual(
    seen.experiments.map((e) => e.key),
    ["checkout-button", "pricing-page", "hero-copy", "legacy-banner"],
    "config order, then experiments only the data shows",
  );
  const planted = byKey(seen, "checkout-button");
  const green = planted.variants.find((v) => v.variant === "green");
  assert.equal(planted.srm, false);
  assert.equal(green.units, 1000);
  assert.equal(green.metrics.purchase.significant, true, "10% → 20% purchases is significant");
  assert.ok(green.metrics.purchase.pValue < 0.001, `p = ${green.metrics.purchase.pValue}`);
  assert.ok(Math.abs(green.metrics.purchase.lift - 1.0) < 1e-9, "a relative lift of +100%");
  assert.equal(green.metrics.signup.significant, false, "signups were planted equal");

  const skewed = byKey(seen, "pricing-page");
  assert.equal(skewed.srm, true, "1200 vs 800 against 50/50 is a sample-ratio mismatch");
  assert.equal(skewed.variants.find((v) => v.variant === "annual-first").metrics.purchase.significant, false);
  assert.deepEqual(
    seen.experiments.filter((e) => e.srm).map((e) => e.key),
    ["pricing-page"],
    "the SRM warning shows for the skewed experiment only",
  );
  assert.equal(byKey(seen, "hero-copy").units, 0);
  assert.deepEqual(byKey(seen, "legacy-banner").variants.map((v) => v.units), [150, 150]);
});

test("on a 360 px phone the same numbers show without horizontal scrolling", async () => {
  const seen = await checkDashboard({
    baseUrl: collector.url,
    tenant: TENANT,
    token: readToken(TENANT),
    screenshotPath: path.join(SCREENSHOTS, "dashboard-phone-360.png"),
    viewport: { width: 360, height: 740 },
  });
  assert.equal(seen.overflowPx, 0, "the page is no wider than the viewport");
  assert.equal(byKey(seen, "pricing-page").srm, true);
});

test("the sign-in form loads a tenant; a wrong token is refused with a message", async () => {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-dashboard-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    const tokensSent = [];
    page.on("request", (request) => tokensSent.push(request.url()));
    await page.goto(`${collector.url}/`);
    assert.equal(new URL(page.url()).pathname, "/dashboard/", "/ redirects to the dashboard");

    await page.getByTestId("tenant-input").fill(TENANT);
    await page.getByTestId("token-input").fill("not-the-token");
    await page.getByRole("button", { name: "Show results" }).click();
    await page.waitForFunction(() => document.body.dataset.state === "error");
    assert.match(await page.getByTestId("status").textContent(), /read token is not valid for tenant “dash-shop”/);

    await page.getByTestId("token-input").fill(readToken(TENANT));
    await page.getByRole("button", { name: "Show results" }).click();
    await page.waitForFunction(() => document.body.dataset.state === "ready");
    assert.equal(await page.getByTestId("experiment").count(), 4);
    // Reloading keeps the session: the credentials live in sessionStorage, not in the URL.
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.state === "ready");
    assert.equal(await page.getByTestId("experiment").count(), 4);
    assert.deepEqual(pageErrors, []);
    assert.ok(!tokensSent.some((url) => url.includes(readToken(TENANT))), "the token never travels in a URL");
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
});

test("an invalid tenant config stops startup naming the file, the JSON path and the reason", async () => {
  const badDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-dashboard-bad-config-"));
  try {
    const bad = structuredClone(CONFIG);
    bad.experiments[0].variants[1].weight = 4000;
    const file = path.join(badDir, "bad.json");
    fs.writeFileSync(file, JSON.stringify(bad));
    await assert.rejects(
      startCollector(badDir, ["--tenant-config", file]),
      (error) => error.message.includes(`${file}: experiments[0].variants: weights sum to 9000, expected 10000`),
    );
  } finally {
    fs.rmSync(badDir, { recursive: true, force: true });
  }
});
