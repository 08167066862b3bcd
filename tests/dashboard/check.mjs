// Opens the results dashboard in Debian's Chromium and checks that every number it shows is the
// results API's: units, expected shares, conversions, conversion rates, lifts and their
// intervals, p-values, significance markers and the sample-ratio-mismatch warning. Any console
// error or uncaught page error fails the check. Used by tests/dashboard/ and by the end-to-end
// pipeline test after a demo run.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Fetches `path` of the tenant's API with the read token; throws with the status and body. */
async function api(baseUrl, tenant, token, apiPath) {
  const url = `${baseUrl}/v1/tenants/${encodeURIComponent(tenant)}${apiPath}`;
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${text}`);
  return JSON.parse(text);
}

// ---- reading numbers back from what the page shows ----

function parseCount(text, where) {
  if (!/^\d{1,3}(,\d{3})*$/.test(text)) throw new Error(`${where}: \`${text}\` is not a whole number`);
  return Number(text.replaceAll(",", ""));
}

/** "12.34%" → { value: 0.1234, halfUlp: 0.00005 } (half of the last shown digit, as a fraction). */
function parsePercent(text, where) {
  const match = /^([+-]?)(\d+)(?:\.(\d+))?%$/.exec(text);
  if (!match) throw new Error(`${where}: \`${text}\` is not a percentage`);
  const decimals = (match[3] || "").length;
  const value = Number(`${match[1]}${match[2]}.${match[3] || "0"}`) / 100;
  return { value, halfUlp: 0.5 * 10 ** -decimals / 100 };
}

/** "+1.23 pp" → the absolute change as a fraction. */
function parsePoints(text, where) {
  const match = /^([+-]?\d+(?:\.\d+)?) pp$/.exec(text);
  if (!match) throw new Error(`${where}: \`${text}\` is not percentage points`);
  const decimals = (match[1].split(".")[1] || "").length;
  return { value: Number(match[1]) / 100, halfUlp: 0.5 * 10 ** -decimals / 100 };
}

/** "+1,234.50" → a plain number. */
function parseDecimal(text, where) {
  const match = /^([+-]?[\d,]+(?:\.(\d+))?)$/.exec(text);
  if (!match) throw new Error(`${where}: \`${text}\` is not a number`);
  return { value: Number(match[1].replaceAll(",", "")), halfUlp: 0.5 * 10 ** -(match[2] || "").length };
}

function parseLift(text, kind, measure, where) {
  if (kind === "relative") return parsePercent(text, where);
  return measure === "conversion" ? parsePoints(text, where) : parseDecimal(text, where);
}

/** Fails unless `shown` rounds from `actual` (with a little room for the last digit's rounding). */
function expectClose(shown, actual, where) {
  const tolerance = shown.halfUlp * 1.0001 + 1e-12;
  if (!(Math.abs(shown.value - actual) <= tolerance)) {
    throw new Error(`${where}: shows ${shown.value}, the API says ${actual}`);
  }
}

function expectEqual(shown, actual, where) {
  if (shown !== actual) throw new Error(`${where}: shows ${JSON.stringify(shown)}, the API says ${JSON.stringify(actual)}`);
}

/** p-values are shown with three significant digits, or as "< 0.001". */
function expectPValue(text, p, where) {
  if (p === null || p === undefined) return expectEqual(text, "—", where);
  if (text === "< 0.001") {
    if (!(p < 0.001)) throw new Error(`${where}: shows < 0.001, the API says ${p}`);
    return;
  }
  const shown = Number(text);
  if (!/^\d\.\d+$|^0\.0*\d+$/.test(text) || Number.isNaN(shown)) throw new Error(`${where}: \`${text}\` is not a p-value`);
  const digits = text.replace(/^0\.0*/, "").replace(".", "").length;
  if (digits !== 3) throw new Error(`${where}: \`${text}\` does not have 3 significant digits`);
  const halfUlp = 0.5 * 10 ** (Math.floor(Math.log10(p)) - 2);
  if (!(Math.abs(shown - p) <= halfUlp * 1.0001 + 1e-15) || p < 0.001) {
    throw new Error(`${where}: shows ${text}, the API says ${p}`);
  }
}

// ---- the page ----

/** Everything the dashboard shows that the check compares, read from the DOM. */
function readPage() {
  const text = (node, testid) => {
    const found = node.querySelector(`[data-testid="${testid}"]`);
    return found ? found.textContent.trim() : null;
  };
  return {
    state: document.body.dataset.state,
    status: text(document, "status"),
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    experiments: [...document.querySelectorAll('[data-testid="experiment"]')].map((card) => ({
      key: card.dataset.experiment,
      name: text(card, "experiment-name"),
      status: text(card, "experiment-status"),
      units: text(card, "experiment-units"),
      srmWarning: card.querySelector('[data-testid="srm-warning"]') !== null,
      srmWarningText: text(card, "srm-warning"),
      srmOk: card.querySelector('[data-testid="srm-ok"]') !== null,
      noExposures: card.querySelector('[data-testid="no-exposures"]') !== null,
      timelineDrawn: card.querySelector('[data-testid="timeline-chart"] canvas') !== null,
      tables: [...card.querySelectorAll('[data-testid="results-table"]')].map((table) => ({
        metric: table.dataset.metric,
        measure: table.dataset.measure,
        rows: [...table.querySelectorAll('[data-testid="variant-row"]')].map((row) => ({
          variant: row.dataset.variant,
          units: text(row, "units"),
          expectedShare: text(row, "expected-share"),
          conversions: text(row, "conversions"),
          conversionRate: text(row, "conversion-rate"),
          meanValue: text(row, "mean-value"),
          lift: text(row, "lift-estimate") ?? text(row, "lift"),
          liftKind: row.querySelector('[data-testid="lift"]')?.dataset.liftKind ?? null,
          liftCi: text(row, "lift-ci"),
          pValue: text(row, "p-value"),
          significant: row.querySelector('[data-testid="significance"]')?.dataset.significant ?? null,
          significanceText: text(row, "significance"),
        })),
      })),
      forestRows: [...card.querySelectorAll('[data-testid="forest-plot"]')].map((plot) => ({
        metric: plot.dataset.metric,
        measure: plot.dataset.measure,
        variants: [...plot.querySelectorAll('[data-testid="forest-row"]')].map((row) => row.dataset.variant),
      })),
    })),
  };
}

/** Compares one results table with the API's figures for its metric; returns what it saw. */
function checkTable(table, results, where) {
  const alpha = 1 - results.confidence;
  const metric = results.metrics.find((m) => m.metric === table.metric);
  if (!metric) throw new Error(`${where}: the API has no metric \`${table.metric}\``);
  const conversion = table.measure === "conversion";
  expectEqual(
    table.rows.map((r) => r.variant).join(","),
    metric.variants.map((v) => v.variant).join(","),
    `${where}: variants`,
  );
  return table.rows.map((row, i) => {
    const expected = metric.variants[i];
    const units = results.variants.find((v) => v.variant === row.variant);
    const at = `${where} ${row.variant}`;
    expectEqual(parseCount(row.units, `${at} units`), units.exposed_units, `${at} units`);
    expectClose(parsePercent(row.expectedShare, `${at} expected share`), units.expected_share, `${at} expected share`);
    if (conversion) {
      expectEqual(parseCount(row.conversions, `${at} conversions`), expected.converted_units, `${at} conversions`);
      expectClose(parsePercent(row.conversionRate, `${at} conversion rate`), expected.conversion_rate, `${at} conversion rate`);
    } else {
      expectClose(parseDecimal(row.meanValue, `${at} mean value`), expected.mean_value, `${at} mean value`);
    }
    const comparison = conversion ? expected.conversion_vs_control : expected.value_vs_control;
    const seen = { variant: row.variant, units: units.exposed_units, pValue: null, significant: false, lift: null };
    if (conversion) seen.conversionRate = expected.conversion_rate;
    else seen.meanValue = expected.mean_value;
    if (row.variant === results.control) {
      expectEqual(row.lift, "baseline", `${at} lift`);
      return seen;
    }
    if (!comparison) {
      expectEqual(row.lift, "—", `${at} lift`);
      return seen;
    }
    // Relative lift whenever the API has it; absolute only when the control's estimate is 0.
    const kind = comparison.relative_lift !== null && comparison.relative_ci ? "relative" : "absolute";
    expectEqual(row.liftKind, kind, `${at} lift kind`);
    const [estimate, low, high] =
      kind === "relative"
        ? [comparison.relative_lift, comparison.relative_ci.low, comparison.relative_ci.high]
        : [comparison.absolute_lift, comparison.absolute_ci.low, comparison.absolute_ci.high];
    expectClose(parseLift(row.lift, kind, table.measure, `${at} lift`), estimate, `${at} lift`);
    const bounds = /^(.+) to (.+)$/.exec(row.liftCi || "");
    if (!bounds) throw new Error(`${at}: lift interval \`${row.liftCi}\` is not \`low to high\``);
    expectClose(parseLift(bounds[1], kind, table.measure, `${at} lift CI low`), low, `${at} lift CI low`);
    expectClose(parseLift(bounds[2], kind, table.measure, `${at} lift CI high`), high, `${at} lift CI high`);
    expectPValue(row.pValue, comparison.p_value, `${at} p-value`);
    const significant = comparison.p_value !== null && comparison.p_value < alpha;
    expectEqual(row.significant, String(significant), `${at} significance`);
    expectEqual(row.significanceText.endsWith(significant ? " significant" : "not significant"), true, `${at} marker text`);
    return { ...seen, pValue: comparison.p_value, significant, lift: estimate };
  });
}

function checkExperiment(shown, listed, results) {
  const where = `experiment ${shown.key}`;
  expectEqual(shown.name, listed.name || listed.key, `${where} name`);
  expectEqual(shown.units, `${listed.exposed_units.toLocaleString("en-US")} units`, `${where} units`);
  const summary = { key: shown.key, name: shown.name, status: listed.status ?? null, units: listed.exposed_units, srm: false, variants: [] };
  if (listed.exposed_units === 0) {
    expectEqual(shown.noExposures, true, `${where} "no exposures" note`);
    expectEqual(shown.srmWarning, false, `${where} SRM warning`);
    return summary;
  }
  const mismatch = results.sample_ratio.mismatch === true;
  expectEqual(shown.srmWarning, mismatch, `${where} SRM warning shown`);
  expectEqual(shown.srmOk, !mismatch, `${where} "sample ratio as expected" note`);
  expectEqual(shown.timelineDrawn, true, `${where} exposures-over-time chart drawn`);
  summary.srm = mismatch;

  const expectedTables = results.metrics.flatMap((m) => [
    `${m.metric}/conversion`,
    ...(m.variants.some((v) => v.mean_value !== null) ? [`${m.metric}/value`] : []),
  ]);
  if (results.metrics.length > 0) {
    expectEqual(shown.tables.map((t) => `${t.metric}/${t.measure}`).join(" "), expectedTables.join(" "), `${where} tables`);
  }
  const perMetric = new Map();
  for (const table of shown.tables.filter((t) => t.metric !== "")) {
    const rows = checkTable(table, results, `${where} ${table.metric} (${table.measure})`);
    if (table.measure === "conversion") perMetric.set(table.metric, rows);
    const plotted = shown.forestRows.find((p) => p.metric === table.metric && p.measure === table.measure);
    const treatments = rows.filter((r) => r.variant !== results.control && r.lift !== null).map((r) => r.variant);
    expectEqual((plotted?.variants ?? []).join(","), treatments.join(","), `${where} ${table.metric} forest plot rows`);
  }
  // Per variant: units, and the first metric's figures (metrics come in key order) plus all.
  summary.variants = results.variants.map((units) => {
    const metrics = Object.fromEntries(
      [...perMetric].map(([metric, rows]) => {
        const row = rows.find((r) => r.variant === units.variant);
        return [metric, { conversionRate: row.conversionRate, lift: row.lift, pValue: row.pValue, significant: row.significant }];
      }),
    );
    const first = Object.values(metrics)[0] ?? { conversionRate: null, lift: null, pValue: null, significant: false };
    return { variant: units.variant, units: units.exposed_units, ...first, metrics };
  });
  return summary;
}

/**
 * Opens `${baseUrl}/dashboard/#tenant=…&token=…` and checks every experiment shown against the
 * results API. Throws on the first difference, on a console error or page error, or when the
 * page does not become ready.
 *
 * Returns { url, screenshotPath, overflowPx, experiments: [{ key, name, status, units, srm,
 * variants: [{ variant, units, conversionRate, lift, pValue, significant, metrics: { [metric]:
 * { conversionRate, lift, pValue, significant } } }] }] }, where a variant's top-level figures are
 * those of the first metric in key order (null without conversions) and `lift` is relative
 * when the API has it.
 */
export async function checkDashboard({ baseUrl, tenant, token, screenshotPath, viewport = { width: 1280, height: 900 } }) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-dashboard-chromium-"));
  const problems = [];
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport,
    deviceScaleFactor: 1,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("response", (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
    });
    const fragment = new URLSearchParams({ tenant, token }).toString();
    const url = `${baseUrl}/dashboard/#${fragment}`;
    await page.goto(url);
    await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null, { timeout: 30_000 });
    // Charts draw on the next frames; wait until every card with exposures has its canvas.
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('[data-testid="timeline-chart"]')].every((chart) => chart.querySelector("canvas")),
      null,
      { timeout: 10_000 },
    );
    const shown = await page.evaluate(readPage);
    if (shown.state !== "ready") throw new Error(`the dashboard did not load: ${shown.status}`);
    const addressBar = page.url();
    if (addressBar.includes(token)) throw new Error(`the read token stays in the address bar: ${addressBar}`);

    const list = await api(baseUrl, tenant, token, "/experiments");
    expectEqual(
      shown.experiments.map((e) => e.key).join(","),
      list.experiments.map((e) => e.key).join(","),
      "experiments shown",
    );
    const experiments = [];
    for (const card of shown.experiments) {
      const listed = list.experiments.find((e) => e.key === card.key);
      const results =
        listed.exposed_units > 0
          ? await api(baseUrl, tenant, token, `/experiments/${encodeURIComponent(card.key)}/results`)
          : null;
      experiments.push(checkExperiment(card, listed, results));
    }
    if (screenshotPath) {
      fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
      await page.screenshot({ path: screenshotPath, fullPage: true });
    }
    if (problems.length > 0) throw new Error(`the page reported problems:\n${problems.join("\n")}`);
    return { url: `${baseUrl}/dashboard/`, screenshotPath, overflowPx: shown.overflow, experiments };
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}
