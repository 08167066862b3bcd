// The whole pipeline, as `make demo` runs it, on free loopback ports: demo origin, real collector
// on SQLite, the edge worker in real workerd (wrangler dev) with the example tenants published by
// the collector's control plane, `cohort-loadgen` visitors, and the dashboard in headless Chromium.
// Needs the cohort binary, the built worker and the dashboard's vendored files (scripts/test.sh).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  loadgen,
  readToken,
  results as readResults,
  stickyCookie,
  waitForCollector,
} from "../../scripts/lib/cohort.mjs";
import { BROWSER_UA, request } from "../../scripts/lib/http.mjs";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { SHOP_CONFIG, startPipeline } from "../../scripts/lib/pipeline.mjs";

const SECRET = "pipeline-suite-platform-secret-0123456789abcdef";
let pipeline;
let stateDir;

before(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-pipeline-"));
  pipeline = await startPipeline({ stateDir, secret: SECRET });
});

after(async () => {
  await pipeline?.stop();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

/** A new visitor's page through the edge, with the variants the edge gave it on that page. */
async function visit(host, page) {
  const headers = { "accept-language": "en-US,en;q=0.9", "user-agent": BROWSER_UA };
  const response = await request({ port: pipeline.edge.port, host, path: page, headers });
  const cookie = stickyCookie(response);
  const assignments = await request({
    port: pipeline.edge.port,
    host,
    path: `/_cohort/assignments?path=${encodeURIComponent(page)}`,
    headers: { ...headers, cookie },
  });
  return { response, assignments: JSON.parse(assignments.body).assignments };
}

/** erfc(x) for x ≥ 0 by Numerical Recipes' Chebyshev fit (fractional error below 1.2e-7): an
 * implementation independent of the collector's incomplete gamma function. */
function erfc(x) {
  const t = 1 / (1 + x / 2);
  const coefficients = [
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223,
    0.17087277,
  ];
  const polynomial = coefficients.reduceRight((sum, c) => c + t * sum, 0);
  return t * Math.exp(-x * x + polynomial);
}

/** The collector's chi-square against the one worked out here from its unit counts and the
 * config's weights (shop.json), and the alarm raised exactly when p < 0.001. The edge mints random
 * unit ids, so a healthy split still alarms about once in a thousand runs: the test checks the
 * statistic and the rule, not the luck of one run. */
function checkSampleRatio(document, weights) {
  const ratio = document.sample_ratio;
  const total = document.variants.reduce((sum, v) => sum + v.exposed_units, 0);
  const weightTotal = Object.values(weights).reduce((sum, w) => sum + w, 0);
  assert.deepEqual(document.variants.map((v) => v.variant).sort(), Object.keys(weights).sort());
  const chiSquare = document.variants.reduce((sum, v) => {
    const expected = (total * weights[v.variant]) / weightTotal;
    return sum + (v.exposed_units - expected) ** 2 / expected;
  }, 0);
  const detail = JSON.stringify({ ratio, variants: document.variants.map((v) => [v.variant, v.exposed_units]) });
  assert.ok(Math.abs(ratio.chi_square - chiSquare) <= 1e-9 * Math.max(1, chiSquare), detail);
  assert.equal(ratio.degrees_of_freedom, Object.keys(weights).length - 1, detail);
  // Two variants, one degree of freedom: P(X ≥ χ²) = erfc(√(χ²/2)).
  const pValue = erfc(Math.sqrt(chiSquare / 2));
  assert.ok(Math.abs(ratio.p_value - pValue) <= 1e-5 * pValue, `${detail} against p = ${pValue}`);
  assert.equal(ratio.mismatch, ratio.p_value < 0.001, detail);
  // A split this far off would not be luck (p < 1e-9 for these sizes): broken bucketing or logging.
  assert.ok(ratio.chi_square < 40, detail);
}

// The planted effect triples conversion (about 11 % against 33 % over about 570 units each): the
// fixed-horizon test below then misses p < 0.01 with probability about 1e-11 (normal
// approximation). A doubled effect missed it in about 1 run in 100, and CI met one such run:
// a test that fails when the code is right teaches people to rerun it.
test("visitors land in the collector exactly once and the planted effect is significant", async () => {
  const { code, summary } = await loadgen(pipeline.edge.port, [
    "--host",
    "shop.localhost",
    "--config",
    SHOP_CONFIG,
    "--page",
    "/",
    "--metric",
    "purchase",
    "--conversion-rate",
    "0.10",
    "--effect",
    "hero-banner=free-shipping:3",
    "--visitors",
    "1200",
    "--concurrency",
    "8",
    "--returning",
    "0.3",
  ]);
  assert.equal(
    code,
    0,
    `loadgen failed: ${JSON.stringify(summary.failures)} ${JSON.stringify(summary.sticky_violations)}`,
  );
  assert.equal(summary.visitors, 1200);
  assert.ok(summary.returning_visitors > 250, `only ${summary.returning_visitors} returning visitors`);
  assert.deepEqual(summary.sticky_violations, []);
  const seen = summary.experiments["hero-banner"];
  assert.ok(seen.control.visitors > 400 && seen["free-shipping"].visitors > 400, JSON.stringify(seen));

  // Every assigned visitor is one exposed unit, every conversion one converted unit, per variant,
  // and every visitor one unit of the holdout's `holdout` or `rest`: waitForCollector resolves only
  // when the collector's counts equal loadgen's exactly (a loss or a double count never settles,
  // and it throws with the last figures).
  const documents = await waitForCollector(pipeline.collector, "shop", summary, SECRET);
  assert.ok(documents._holdout, `the holdout was not checked: ${Object.keys(documents)}`);
  assert.equal(documents._holdout.control, "holdout");
  assert.deepEqual(
    documents._holdout.variants.map((v) => v.variant),
    ["holdout", "rest"],
  );
  // Every visitor is one new unit, so one holdout record at the collector: 5% of them held out
  // (shop.json).
  const [heldOut, rest] = documents._holdout.variants.map((v) => v.exposed_units);
  assert.equal(heldOut + rest, 1200, JSON.stringify(documents._holdout.variants));
  assert.ok(heldOut > 20 && heldOut < 110, JSON.stringify(documents._holdout.variants));
  checkSampleRatio(documents._holdout, { holdout: 500, rest: 9500 });
  const results = documents["hero-banner"];

  assert.equal(results.control, "control");
  assert.equal(results.sample_ratio.expected_split, "config");
  checkSampleRatio(results, { control: 5000, "free-shipping": 5000 });
  assert.equal(results.inference.method, "sequential", "results are always-valid by default");
  // The test reads the effect once, at the sample size it fixed in advance (1,200 visitors): the
  // one reading fixed-horizon figures are valid for, and the more powerful one at this size.
  const fixed = await readResults(
    pipeline.collector,
    "shop",
    "hero-banner",
    readToken("shop", SECRET),
    "?inference=fixed",
  );
  assert.equal(fixed.inference.method, "fixed");
  const treated = fixed.metrics
    .find((m) => m.metric === "purchase")
    .variants.find((v) => v.variant === "free-shipping").conversion_vs_control;
  assert.ok(treated.p_value < 0.01, `p = ${treated.p_value}`);
  assert.ok(treated.relative_ci.low > 0, `interval ${JSON.stringify(treated.relative_ci)}`);
  assert.equal(treated.verdict, "better");
});

test("the dashboard shows the collector's numbers, the effect significant and the collector's SRM verdict", async () => {
  const { checkDashboard } = await import("../dashboard/check.mjs");
  const screenshotPath = path.join(ROOT, "target/screenshots/pipeline-shop.png");
  const shown = await checkDashboard({
    baseUrl: pipeline.collector.url,
    tenant: "shop",
    token: readToken("shop", SECRET),
    screenshotPath,
    search: "inference=fixed",
  });
  assert.ok(fs.statSync(screenshotPath).size > 10_000, "screenshot missing or empty");
  const hero = shown.experiments.find((e) => e.key === "hero-banner");
  assert.ok(hero, `hero-banner not on the dashboard: ${JSON.stringify(shown)}`);
  // The dashboard warns exactly when the collector's sample-ratio check does.
  const collectorSays = await readResults(pipeline.collector, "shop", "hero-banner", readToken("shop", SECRET), "");
  assert.equal(hero.srm, collectorSays.sample_ratio.mismatch);
  assert.equal(hero.variants.find((v) => v.variant === "free-shipping").significant, true);
});

test("the shop's hero is rewritten at the edge for free-shipping visitors only", async () => {
  const seen = new Set();
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    const { response, assignments } = await visit("shop.localhost", "/");
    const variant = assignments["hero-banner"];
    if (!variant) continue; // in the holdout
    seen.add(variant);
    const rewritten = response.body.includes("Free shipping on every order over €30");
    assert.equal(rewritten, variant === "free-shipping", `variant ${variant}`);
    assert.equal(response.body.includes('class="hero-badge"'), variant === "free-shipping");
    assert.match(response.headers["cache-control"] ?? "", /^private/);
  }
  assert.equal(seen.size, 2, `saw only ${[...seen]}`);
});

test("the news site's wide layout is served by split-URL routing to the routed host", async () => {
  const seen = new Set();
  const article = "/politics/2026/11/budget-vote";
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    const { response, assignments } = await visit("news.localhost", article);
    const variant = assignments["article-layout"];
    assert.ok(variant, `article-layout not assigned: ${JSON.stringify(assignments)}`);
    seen.add(variant);
    assert.equal(response.status, 200);
    // The visitor's URL never changes; only the origin host behind it does.
    assert.equal(response.body.includes('<body class="wide">'), variant === "wide", `variant ${variant}`);
  }
  assert.equal(seen.size, 2, `saw only ${[...seen]}`);
});
