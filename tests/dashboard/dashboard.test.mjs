// The results dashboard in a real browser: the real `cohort collector` binary on a free loopback
// port with a temp SQLite file and a temp tenant config (metric definitions with a guardrail, a
// holdout), seeded with signed beacons (one experiment with planted effects, one with a
// sample-ratio mismatch, tenant-holdout records), checked in Debian's Chromium against the
// results API on a desktop and a 360 px phone viewport, with both inference methods and slices.
//
//   bash scripts/build-dashboard.sh && cargo build -p cohort-cli && node --test tests/dashboard/
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

import { startCohortCollector } from "../../scripts/lib/cohort.mjs";
import { freePort } from "../../scripts/lib/http.mjs";
import { ROOT } from "../../scripts/lib/paths.mjs";
import {
  CHROMIUM,
  CHROMIUM_ARGS,
  checkDashboard,
  checkShown,
  openDashboard,
  waitUntilShown,
  assertPrerequisites,
} from "./check.mjs";

const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || "target");
const SCREENSHOTS = path.join(TARGET, "screenshots");
const SECRET = "dashboard-suite-platform-secret-0123456789";
const TENANT = "dash-shop";
const HOUR_MS = 3_600_000;
const HOLDOUT = "_holdout";

/** An experiment that splits its units evenly between `control` and one treatment. */
function fiftyFifty(key, name, status, treatment) {
  return {
    key,
    name,
    status,
    variants: [
      { key: "control", weight: 5000 },
      { key: treatment, weight: 5000 },
    ],
  };
}

const CONFIG = {
  schema: 1,
  tenant: TENANT,
  version: 7,
  hostnames: ["dash-shop.example"],
  hash_key: "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
  // 10% of units are held out of every experiment (the seeded holdout records split 200/1800).
  holdout: 1000,
  metrics: [
    { key: "purchase", kind: "value", direction: "higher", window_hours: 72, cap: 500, winsorize_percentile: 0.99 },
    { key: "refund", kind: "conversion", direction: "lower", guardrail: true },
    { key: "add-to-cart", kind: "conversion" },
  ],
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

function exposure(
  experiment,
  variant,
  unit,
  timestamp,
  { configVersion = CONFIG.version, country = "DE", device = "desktop" } = {},
) {
  return {
    id: exposureId(TENANT, experiment, unit),
    tenant: TENANT,
    experiment,
    variant,
    unit,
    config_version: configVersion,
    timestamp,
    country,
    device,
  };
}

function conversion(id, unit, metric, value, timestamp) {
  return { id, tenant: TENANT, unit, metric, ...(value === null ? {} : { value }), timestamp };
}

/** Whole minutes, three hours ago: first exposures spread over the two hours after it, so a
 * time slice given to the minute has exact bounds. */
const SEED_START_MS = Math.floor(Date.now() / 60_000) * 60_000 - 3 * HOUR_MS;
const SEED_SPAN_MS = 2 * HOUR_MS;
const exposedAt = (i, units) => SEED_START_MS + Math.floor((i / units) * SEED_SPAN_MS);

/**
 * Units per variant and which of them convert, for each seeded experiment. Unit i converts when
 * a rule says so, so every count is exact:
 * - checkout-button: purchases 10% vs 20% (planted, p far below 0.001), refunds 2% vs 10% (a
 *   lower-is-better guardrail that got worse), add-to-cart 25% vs 30% (a modest effect: better
 *   under fixed-horizon, inconclusive under sequential), equal signups; every 10th unit of each
 *   arm bought before its first exposure too (CUPED's covariate). Every 5th unit is from AT, the rest from
 *   DE; odd units are on mobile; units 0-299 were assigned by config version 6;
 * - pricing-page: 1200 vs 800 units against a 50/50 config (the SRM), equal 10% purchase rates;
 * - legacy-banner: not in the config, balanced, no conversions at all.
 */
const PLAN = [
  {
    experiment: "checkout-button",
    variant: "control",
    units: 1000,
    buys: (i) => i % 10 === 0,
    refunds: (i) => i % 50 === 3,
    addsToCart: (i) => i % 4 === 2,
    signsUp: (i) => i % 4 === 1,
    mixedAudience: true,
  },
  {
    experiment: "checkout-button",
    variant: "green",
    units: 1000,
    buys: (i) => i % 5 === 0,
    refunds: (i) => i % 10 === 3,
    addsToCart: (i) => i % 10 < 3,
    signsUp: (i) => i % 4 === 1,
    mixedAudience: true,
  },
  { experiment: "pricing-page", variant: "control", units: 1200, buys: (i) => i % 10 === 0 },
  { experiment: "pricing-page", variant: "annual-first", units: 800, buys: (i) => i % 10 === 0 },
  { experiment: "legacy-banner", variant: "control", units: 150 },
  { experiment: "legacy-banner", variant: "wide", units: 150 },
];

/** Audience of checkout-button unit i (see PLAN). */
const audience = (i) => ({
  country: i % 5 === 0 ? "AT" : "DE",
  device: i % 2 === 1 ? "mobile" : "desktop",
  configVersion: i < 300 ? 6 : 7,
});

/** Tenant-holdout membership: 2000 visitors, every 10th held out; 10% of the held-out buy, 12.5% of the rest. */
const HOLDOUT_VISITORS = 2000;
const heldOut = (i) => i % 10 === 0;

function seedRecords() {
  const exposures = [];
  const events = [];
  for (const { experiment, variant, units, buys, refunds, addsToCart, signsUp, mixedAudience } of PLAN) {
    for (let i = 0; i < units; i++) {
      const unit = `${experiment}.${variant}.${i}`;
      const at = exposedAt(i, units);
      exposures.push(exposure(experiment, variant, unit, at, mixedAudience ? audience(i) : {}));
      if (buys?.(i)) events.push(conversion(`${unit}.purchase`, unit, "purchase", 20 + (i % 7) * 5, at + 60_000));
      // Before assignment both arms are alike: the same units bought, by the same rule.
      if (mixedAudience && i % 10 === 0)
        events.push(conversion(`${unit}.purchase-before`, unit, "purchase", 30, at - 10 * 60_000));
      if (refunds?.(i)) events.push(conversion(`${unit}.refund`, unit, "refund", null, at + 120_000));
      if (addsToCart?.(i)) events.push(conversion(`${unit}.cart`, unit, "add-to-cart", null, at + 30_000));
      if (signsUp?.(i)) events.push(conversion(`${unit}.signup`, unit, "signup", null, at + 1000));
    }
  }
  for (let i = 0; i < HOLDOUT_VISITORS; i++) {
    const unit = `visitor.${i}`;
    const at = exposedAt(i, HOLDOUT_VISITORS);
    exposures.push(exposure(HOLDOUT, heldOut(i) ? "holdout" : "rest", unit, at));
    if (heldOut(i) ? i % 100 === 0 : i % 8 === 1)
      events.push(conversion(`${unit}.purchase`, unit, "purchase", 40, at + 60_000));
  }
  return { exposures, events };
}

async function postSigned(baseUrl, route, records) {
  const body = JSON.stringify(records);
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = createHmac("sha256", tenantKey("beacon-signing", TENANT))
    .update(`${timestamp}.${body}`)
    .digest("hex");
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
  assertPrerequisites();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-dashboard-test-"));
  const configFile = path.join(dir, "dash-shop.json");
  fs.writeFileSync(configFile, JSON.stringify(CONFIG, null, 2));
  collector = await startCollector(dir, ["--tenant-config", configFile]);
  const { exposures, events } = seedRecords();
  for (let i = 0; i < exposures.length; i += 500)
    await postSigned(collector.url, "/v1/exposures", exposures.slice(i, i + 500));
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

const credentials = () => ({ baseUrl: collector.url, tenant: TENANT, token: readToken(TENANT) });

test("the dashboard shows the API's numbers, sequential verdicts with adjusted p-values, guardrails, SRM and the holdout", async () => {
  const seen = await checkDashboard({
    ...credentials(),
    screenshotPath: path.join(SCREENSHOTS, "dashboard-desktop.png"),
  });
  assert.equal(seen.query, "inference=sequential", "sequential is the default method");
  assert.deepEqual(
    seen.experiments.map((e) => e.key),
    ["checkout-button", "pricing-page", "hero-copy", "legacy-banner", HOLDOUT],
    "config order first, then the experiment only the data shows, then the tenant holdout, always last",
  );
  for (const experiment of seen.experiments.filter((e) => e.units > 0))
    assert.equal(experiment.method, "sequential", experiment.key);

  const planted = byKey(seen, "checkout-button");
  const green = planted.variants.find((v) => v.variant === "green");
  assert.equal(planted.srm, false);
  assert.equal(green.units, 1000);
  assert.equal(
    green.metrics.purchase.verdict,
    "better",
    "10% → 20% purchases is better, even always-valid and Holm-adjusted",
  );
  assert.ok(green.metrics.purchase.pValueAdjusted < 0.001, `adjusted p = ${green.metrics.purchase.pValueAdjusted}`);
  assert.ok(Math.abs(green.metrics.purchase.lift - 1.0) < 1e-9, "a relative lift of +100%");
  assert.equal(green.metrics.signup.verdict, "inconclusive", "signups were planted equal");
  // 25% → 30%: too little for an always-valid verdict, and its Holm adjustment shows.
  const cart = green.metrics["add-to-cart"];
  assert.equal(cart.verdict, "inconclusive");
  assert.ok(
    cart.pValue >= 0.001 && cart.pValueAdjusted >= 1.5 * cart.pValue,
    `p = ${cart.pValue}, adjusted ${cart.pValueAdjusted}`,
  );

  // Refunds are a lower-is-better guardrail: 2% → 10% is "worse", and the card says so first.
  assert.equal(green.metrics.refund.verdict, "worse");
  assert.equal(planted.guardrailWarning, true);
  assert.deepEqual(
    planted.guardrailBreaches.map((b) => [b.metric, b.variant, b.measure]),
    [["refund", "green", "conversion"]],
  );
  assert.match(
    planted.guardrailBreaches[0].text,
    /^refund \(conversion rate\) in green: \+400\.0% against control, p < 0\.001 \(adj\. < 0\.001\)\.$/,
  );
  assert.equal(byKey(seen, "pricing-page").guardrailWarning, false, "no guardrail got worse there");

  const heads = planted.metricHeads;
  assert.equal(heads.purchase.kind, "value");
  assert.equal(heads.purchase.window, "Conversions within 72 h of the first exposure");
  assert.match(heads.purchase.capping, /^Capped per unit at [\d.]+ \(limit ±500\.00, 99th percentile\)$/);
  assert.equal(heads.purchase.cupedApplied, "true", "purchasers bought before their first exposure too");
  assert.equal(heads.refund.guardrailTag, true);
  assert.equal(heads.refund.direction, "Lower is better");
  assert.equal(heads.signup.undefinedNote, true, "signup has no definition: defaults apply");
  assert.equal(heads.signup.kind, "conversion");
  assert.equal(heads.signup.capping, "Not capped");

  const skewed = byKey(seen, "pricing-page");
  assert.equal(skewed.srm, true, "1200 vs 800 against 50/50 is a sample-ratio mismatch");
  assert.equal(skewed.variants.find((v) => v.variant === "annual-first").metrics.purchase.verdict, "inconclusive");
  assert.deepEqual(
    seen.experiments.filter((e) => e.srm).map((e) => e.key),
    ["pricing-page"],
    "the SRM warning shows for the skewed experiment only",
  );
  assert.equal(byKey(seen, "hero-copy").units, 0);
  assert.deepEqual(
    byKey(seen, "legacy-banner").variants.map((v) => v.units),
    [150, 150],
  );

  const holdout = byKey(seen, HOLDOUT);
  assert.equal(holdout.name, "Tenant holdout");
  assert.equal(holdout.controlVariant, "holdout");
  assert.deepEqual(
    holdout.variants.map((v) => [v.variant, v.units]),
    [
      ["holdout", 200],
      ["rest", 1800],
    ],
  );
});

test("on a 360 px phone the same numbers show without horizontal scrolling", async () => {
  const seen = await checkDashboard({
    ...credentials(),
    screenshotPath: path.join(SCREENSHOTS, "dashboard-phone-360.png"),
    viewport: { width: 360, height: 740 },
  });
  assert.equal(seen.overflowPx, 0, "the page is no wider than the viewport");
  assert.equal(byKey(seen, "pricing-page").srm, true);
  assert.equal(byKey(seen, "checkout-button").guardrailWarning, true);
});

/** Resolves once the page shows the results of `query` (its data-query) with every chart drawn. */
async function waitForView(page, query) {
  await page.waitForFunction(
    (expected) => document.body.dataset.state === "ready" && document.body.dataset.query === expected,
    query,
    {
      timeout: 30_000,
    },
  );
  await waitUntilShown(page);
}

/** The query strings of the results requests the page made since `since` (an index into `log`). */
const resultsQueries = (log, since = 0) =>
  log
    .slice(since)
    .filter((url) => new URL(url).pathname.endsWith("/results"))
    .map((url) => new URL(url).search.slice(1));

test("switching to fixed-horizon re-queries, says the intervals hold for one planned look, and changes verdicts", async () => {
  const { page, problems, close } = await openDashboard(credentials());
  try {
    const requested = [];
    page.on("request", (request) => requested.push(request.url()));
    const sequential = await checkShown(page, { ...credentials(), expectQuery: "inference=sequential" });
    // One method line per experiment with exposures: checkout-button, pricing-page, legacy-banner
    // and the tenant holdout.
    const methodLines = async () => {
      const lines = await page.getByTestId("inference-method").allTextContents();
      assert.equal(lines.length, 4, `one method line per experiment with exposures: ${JSON.stringify(lines)}`);
      return lines;
    };
    for (const line of await methodLines())
      assert.match(line, /^Sequential \(always-valid\) intervals: safe to look at any time\./);

    await page.getByTestId("inference-fixed").check();
    await waitForView(page, "inference=fixed");
    const queries = resultsQueries(requested);
    assert.ok(
      queries.length >= 4 && queries.every((q) => q === "inference=fixed"),
      `results re-queried with inference=fixed: ${queries}`,
    );
    const fixed = await checkShown(page, { ...credentials(), expectQuery: "inference=fixed" });
    for (const line of await methodLines())
      assert.match(line, /^Fixed-horizon: valid only if you look once, at the planned sample size\./);
    assert.match(fixed.viewSummary, /fixed-horizon inference/);

    // The modest add-to-cart effect passes a single planned look, not the always-valid test.
    const cart = (seen) =>
      byKey(seen, "checkout-button").variants.find((v) => v.variant === "green").metrics["add-to-cart"];
    assert.equal(cart(sequential).verdict, "inconclusive");
    assert.equal(cart(fixed).verdict, "better");
    assert.ok(cart(fixed).pValue < cart(sequential).pValue, "fixed-horizon p-values are the smaller ones");
    const caveat = page.locator(
      '[data-testid="experiment"][data-experiment="checkout-button"] [data-testid="results-table"][data-metric="add-to-cart"] [data-variant="green"] [data-testid="verdict-caveat"]',
    );
    assert.equal(await caveat.textContent(), "only if this is the planned look");
    await page.screenshot({ path: path.join(SCREENSHOTS, "dashboard-fixed-horizon.png"), fullPage: true });

    // The method is in the address, so a reload (or a shared link) keeps it.
    assert.equal(new URL(page.url()).search, "?inference=fixed");
    await page.reload();
    await waitForView(page, "inference=fixed");
    assert.equal(await page.getByTestId("inference-fixed").isChecked(), true);

    await page.getByTestId("inference-sequential").check();
    await waitForView(page, "inference=sequential");
    const back = await checkShown(page, { ...credentials(), expectQuery: "inference=sequential" });
    for (const line of await methodLines())
      assert.match(line, /^Sequential \(always-valid\) intervals: safe to look at any time\./);
    assert.equal(cart(back).verdict, "inconclusive", "back to the always-valid verdict");
    assert.equal(new URL(page.url()).search, "");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("a slice narrows the units to the filters given; a refused value shows the collector's message and keeps the page", async () => {
  const { page, problems, close } = await openDashboard(credentials());
  try {
    const requested = [];
    page.on("request", (request) => requested.push(request.url()));
    const apply = async (query) => {
      const since = requested.length;
      await page.getByTestId("apply-view").click();
      await waitForView(page, query);
      assert.deepEqual(
        [...new Set(resultsQueries(requested, since))],
        [query],
        "every results request carries the slice",
      );
      return checkShown(page, { ...credentials(), expectQuery: query });
    };
    const units = (seen, key) => byKey(seen, key).variants.map((v) => v.units);

    // Every 5th checkout-button unit is from AT; typed in lower case, sent in upper case.
    await page.getByTestId("slice-country").fill("at");
    let seen = await apply("inference=sequential&country=AT");
    assert.deepEqual(units(seen, "checkout-button"), [200, 200]);
    assert.equal(byKey(seen, "checkout-button").sliceUnits, 400);
    assert.equal(byKey(seen, "pricing-page").sliceUnits, 0, "pricing-page has no units from AT");
    assert.equal(byKey(seen, HOLDOUT).sliceUnits, 0);
    assert.match(seen.viewSummary, /^Showing units with country AT; sequential inference\.$/);
    assert.equal(
      await page.locator('[data-experiment="checkout-button"] [data-testid="experiment-units"]').textContent(),
      "400 of 2,000 units",
    );

    await page.getByTestId("slice-device").selectOption("mobile");
    seen = await apply("inference=sequential&country=AT&device=mobile");
    assert.deepEqual(units(seen, "checkout-button"), [100, 100], "odd units of AT");

    // From the first exposure at the span's middle on (local time in the form, Unix ms sent).
    const middle = SEED_START_MS + SEED_SPAN_MS / 2;
    const local = await page.evaluate((ms) => {
      const date = new Date(ms);
      const pad = (n) => String(n).padStart(2, "0");
      return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
    }, middle);
    await page.getByTestId("clear-slice").click();
    await waitForView(page, "inference=sequential");
    await page.getByTestId("slice-from").fill(local);
    seen = await apply(`inference=sequential&from=${middle}`);
    assert.deepEqual(units(seen, "checkout-button"), [500, 500], "units 500-999 of each variant");
    assert.deepEqual(units(seen, "pricing-page"), [600, 400]);
    assert.ok(seen.viewSummary.includes(`first exposed from ${local.replace("T", " ")} (`), seen.viewSummary);

    // Not a country code: the collector's 400 message shows; the results of the last good view stay.
    const before = await page.getByTestId("experiment").count();
    const refusal = await fetch(
      `${collector.url}/v1/tenants/${TENANT}/experiments/checkout-button/results?country=D1`,
      {
        headers: { authorization: `Bearer ${readToken(TENANT)}` },
      },
    );
    assert.equal(refusal.status, 400);
    const { error } = await refusal.json();
    assert.equal(error.code, "bad_query");
    await page.getByTestId("slice-country").fill("D1");
    await page.getByTestId("apply-view").click();
    await page.getByTestId("view-error").waitFor({ state: "visible" });
    assert.equal(
      await page.getByTestId("view-error").textContent(),
      `The collector refused this view: ${error.message}`,
    );
    assert.equal(await page.getByTestId("slice-country").getAttribute("aria-invalid"), "true");
    assert.equal(await page.evaluate(() => document.body.dataset.state), "ready");
    assert.equal(await page.getByTestId("experiment").count(), before);
    seen = await checkShown(page, { ...credentials(), expectQuery: `inference=sequential&from=${middle}` });
    assert.deepEqual(units(seen, "checkout-button"), [500, 500], "the last good view is still shown");
    await page.screenshot({ path: path.join(SCREENSHOTS, "dashboard-refused-slice.png") });

    // Fixing the value clears the message.
    await page.getByTestId("slice-country").fill("DE");
    seen = await apply(`inference=sequential&country=DE&from=${middle}`);
    assert.deepEqual(units(seen, "checkout-button"), [400, 400]);
    assert.equal(await page.getByTestId("view-error").isHidden(), true);
    assert.equal(await page.getByTestId("slice-country").getAttribute("aria-invalid"), null);

    // Only the refused requests may have failed (Chromium logs each failed load to the console too).
    const refused = (line) => line.includes("country=D1") || line.includes("status of 400");
    assert.deepEqual(
      problems.filter((line) => !refused(line)),
      [],
    );
    assert.ok(
      problems.some((line) => line.startsWith("HTTP 400") && line.includes("country=D1")),
      problems.join("\n"),
    );
  } finally {
    await close();
  }
});

test("a link with a slice opens that view: config version 6 assigned units 0-299", async () => {
  const seen = await checkDashboard({ ...credentials(), search: "config_version=6" });
  assert.equal(seen.query, "inference=sequential&config_version=6");
  assert.deepEqual(
    byKey(seen, "checkout-button").variants.map((v) => v.units),
    [300, 300],
  );
  assert.equal(byKey(seen, "pricing-page").sliceUnits, 0);
  assert.match(seen.viewSummary, /config version 6/);
});

test("the sign-in form loads a tenant; a wrong token is refused with a message", async () => {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-dashboard-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
  });
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
    assert.match(
      (await page.getByTestId("status").textContent()) ?? "",
      /read token is not valid for tenant “dash-shop”/,
    );

    await page.getByTestId("token-input").fill(readToken(TENANT));
    await page.getByRole("button", { name: "Show results" }).click();
    await page.waitForFunction(() => document.body.dataset.state === "ready");
    assert.equal(await page.getByTestId("experiment").count(), 5);
    // Reloading keeps the session: the credentials live in sessionStorage, not in the URL.
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.state === "ready");
    assert.equal(await page.getByTestId("experiment").count(), 5);
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
      (error) =>
        error instanceof Error &&
        error.message.includes(`${file}: experiments[0].variants: weights sum to 9000, expected 10000`),
    );
  } finally {
    fs.rmSync(badDir, { recursive: true, force: true });
  }
});
