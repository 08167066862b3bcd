// Opens the results dashboard in Debian's Chromium and checks that everything it shows is the
// results API's, for the view (inference method and slice) the page applied: units, expected
// shares, conversions, conversion rates, lifts and their intervals, raw and adjusted
// p-values, verdicts, the method line, metric definitions, guardrail and sample-ratio-mismatch
// warnings. Any console error or uncaught page error fails the check. Used by tests/dashboard/
// and by the end-to-end pipeline test after a demo run.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

import { cohortBinary } from "../../scripts/lib/cohort.mjs";

export const CHROMIUM = "/usr/bin/chromium";

/** Fails, naming the missing piece and how to get it, unless the binary (which holds the dashboard) and Chromium are there. */
export function assertPrerequisites() {
  cohortBinary(); // fails naming the missing binary and how to build it
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`bash scripts/setup.sh --browser\``);
}
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
  return { value, halfUlp: (0.5 * 10 ** -decimals) / 100 };
}

/** "+1.23 pp" → the absolute change as a fraction. */
function parsePoints(text, where) {
  const match = /^([+-]?\d+(?:\.\d+)?) pp$/.exec(text);
  if (!match) throw new Error(`${where}: \`${text}\` is not percentage points`);
  const decimals = (match[1].split(".")[1] || "").length;
  return { value: Number(match[1]) / 100, halfUlp: (0.5 * 10 ** -decimals) / 100 };
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
  if (shown !== actual)
    throw new Error(`${where}: shows ${JSON.stringify(shown)}, the API says ${JSON.stringify(actual)}`);
}

/** p-values are shown with three significant digits, or as "< 0.001". */
function expectPValue(text, p, where) {
  if (p === null || p === undefined) return expectEqual(text, "—", where);
  if (text === "< 0.001") {
    if (!(p < 0.001)) throw new Error(`${where}: shows < 0.001, the API says ${p}`);
    return;
  }
  const shown = Number(text);
  if (!/^\d\.\d+$|^0\.0*\d+$/.test(text) || Number.isNaN(shown))
    throw new Error(`${where}: \`${text}\` is not a p-value`);
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
  const has = (node, testid) => node.querySelector(`[data-testid="${testid}"]`) !== null;
  // The dashboard's elements are HTML elements, whose `dataset` the checks read.
  const all = (node, selector) => /** @type {HTMLElement[]} */ ([...node.querySelectorAll(selector)]);
  const one = (node, selector) => /** @type {HTMLElement | null} */ (node.querySelector(selector));
  return {
    state: document.body.dataset.state,
    query: document.body.dataset.query ?? null,
    status: text(document, "status"),
    viewSummary: text(document, "view-summary"),
    viewError: document.querySelector('[data-testid="view-error"]:not([hidden])')?.textContent.trim() ?? null,
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    experiments: all(document, '[data-testid="experiment"]').map((card) => ({
      key: card.dataset.experiment,
      name: text(card, "experiment-name"),
      status: text(card, "experiment-status"),
      units: text(card, "experiment-units"),
      holdoutNote: has(card, "holdout-note"),
      srmWarning: has(card, "srm-warning"),
      srmWarningText: text(card, "srm-warning"),
      srmOk: has(card, "srm-ok"),
      guardrailWarning: has(card, "guardrail-warning"),
      // The warning leads the card: nothing but the header (and the holdout note) before it.
      guardrailWarningFirst:
        card
          .querySelector('[data-testid="guardrail-warning"]')
          ?.previousElementSibling?.matches("header, .holdout-note") ?? null,
      guardrailBreaches: all(card, '[data-testid="guardrail-breach"]').map((item) => ({
        metric: item.dataset.metric,
        variant: item.dataset.variant,
        measure: item.dataset.measure,
        text: item.textContent.trim(),
      })),
      method: one(card, '[data-testid="inference-method"]')?.dataset.method ?? null,
      methodText: text(card, "inference-method"),
      multipleComparisons: text(card, "multiple-comparisons"),
      noExposures: has(card, "no-exposures"),
      noExposuresInSlice: has(card, "no-exposures-in-slice"),
      noResults: has(card, "no-results"),
      timelineDrawn: card.querySelector('[data-testid="timeline-chart"] canvas') !== null,
      metricHeads: all(card, '[data-testid="metric"]').map((section) => ({
        metric: section.dataset.metric,
        name: text(section, "metric-name"),
        kind: text(section, "metric-kind"),
        guardrailTag: has(section, "metric-guardrail"),
        direction: text(section, "metric-direction"),
        window: text(section, "metric-window"),
        capping: text(section, "metric-capping"),
        appliedCap: one(section, '[data-testid="metric-capping"]')?.dataset.appliedCap ?? null,
        cuped: text(section, "metric-cuped"),
        cupedApplied: one(section, '[data-testid="metric-cuped"]')?.dataset.applied ?? null,
        undefinedNote: has(section, "metric-undefined"),
      })),
      tables: all(card, '[data-testid="results-table"]').map((table) => ({
        metric: table.dataset.metric,
        measure: table.dataset.measure,
        rows: all(table, '[data-testid="variant-row"]').map((row) => ({
          variant: row.dataset.variant,
          units: text(row, "units"),
          expectedShare: text(row, "expected-share"),
          conversions: text(row, "conversions"),
          conversionRate: text(row, "conversion-rate"),
          meanValue: text(row, "mean-value"),
          lift: text(row, "lift-estimate") ?? text(row, "lift"),
          liftKind: one(row, '[data-testid="lift"]')?.dataset.liftKind ?? null,
          liftCi: text(row, "lift-ci"),
          pValue: text(row, "p-value"),
          pRaw: text(row, "p-raw"),
          pAdjusted: text(row, "p-adjusted"),
          verdict: one(row, '[data-testid="verdict"]')?.dataset.verdict ?? null,
          significant: one(row, '[data-testid="verdict"]')?.dataset.significant ?? null,
          verdictText: text(row, "verdict-text") ?? text(row, "verdict"),
          verdictCaveat: text(row, "verdict-caveat"),
        })),
      })),
      forestRows: all(card, '[data-testid="forest-plot"]').map((plot) => ({
        metric: plot.dataset.metric,
        measure: plot.dataset.measure,
        variants: all(plot, '[data-testid="forest-row"]').map((row) => ({
          variant: row.dataset.variant,
          verdict: row.dataset.verdict,
        })),
      })),
    })),
  };
}

/** The method line the dashboard must show for each inference method. */
const METHOD_LINES = {
  sequential: /^Sequential \(always-valid\) intervals: safe to look at any time\./,
  fixed: /^Fixed-horizon: valid only if you look once, at the planned sample size\./,
};

const isSliced = (slice) => Object.values(slice ?? {}).some((value) => value !== null && value !== undefined);

/** Compares one results table with the API's figures for its metric; returns what it saw. */
function checkTable(table, results, where) {
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
      expectClose(
        parsePercent(row.conversionRate, `${at} conversion rate`),
        expected.conversion_rate,
        `${at} conversion rate`,
      );
    } else {
      expectClose(parseDecimal(row.meanValue, `${at} mean value`), expected.mean_value, `${at} mean value`);
    }
    const comparison = conversion ? expected.conversion_vs_control : expected.value_vs_control;
    const seen = {
      variant: row.variant,
      units: units.exposed_units,
      pValue: null,
      pValueAdjusted: null,
      significant: false,
      verdict: null,
      lift: null,
    };
    if (conversion) seen.conversionRate = expected.conversion_rate;
    else seen.meanValue = expected.mean_value;
    if (row.variant === results.control) {
      expectEqual(row.lift, "baseline", `${at} lift`);
      expectEqual(row.verdictText, "—", `${at} verdict`);
      return seen;
    }
    if (!comparison) {
      expectEqual(row.lift, "—", `${at} lift`);
      expectEqual(row.pValue, "—", `${at} p-value`);
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
    if (comparison.p_value === null) {
      expectEqual(row.pValue, "—", `${at} p-value`);
    } else {
      // "0.0120 (adj. 0.0360)": the raw p-value, then the adjusted one the verdict uses.
      expectPValue(row.pRaw, comparison.p_value, `${at} p-value`);
      const adjusted = /^\(adj\. (.+)\)$/.exec(row.pAdjusted ?? "");
      if (!adjusted) throw new Error(`${at}: adjusted p-value \`${row.pAdjusted}\` is not \`(adj. p)\``);
      expectPValue(adjusted[1], comparison.p_value_adjusted, `${at} adjusted p-value`);
      expectEqual(row.pValue, `${row.pRaw} ${row.pAdjusted}`, `${at} p-value cell`);
    }
    expectEqual(row.verdict, comparison.verdict, `${at} verdict`);
    expectEqual(row.significant, String(comparison.significant), `${at} significance`);
    const decided = comparison.verdict === "better" || comparison.verdict === "worse";
    const arrow = comparison.absolute_lift > 0 ? "▲ " : comparison.absolute_lift < 0 ? "▼ " : "";
    expectEqual(row.verdictText, decided ? `${arrow}${comparison.verdict}` : "inconclusive", `${at} verdict text`);
    // A fixed-horizon verdict says it holds only at the planned look; a sequential one needs no caveat.
    expectEqual(
      row.verdictCaveat !== null,
      decided && results.inference.method === "fixed",
      `${at} fixed-horizon caveat`,
    );
    return {
      ...seen,
      pValue: comparison.p_value,
      pValueAdjusted: comparison.p_value_adjusted,
      significant: comparison.significant,
      verdict: comparison.verdict,
      lift: estimate,
    };
  });
}

/** Treatments of guardrail metrics whose verdict is "worse", as the API has them. */
function guardrailBreaches(results) {
  return results.metrics
    .filter((metric) => metric.guardrail)
    .flatMap((metric) =>
      metric.variants.flatMap((row) =>
        [
          ["conversion", row.conversion_vs_control],
          ["value", row.value_vs_control],
        ]
          .filter(([, comparison]) => comparison?.verdict === "worse")
          .map(([measure]) => `${metric.metric}/${row.variant}/${measure}`),
      ),
    );
}

/** The metric header against the API's definition of the metric. */
function checkMetricHead(head, metric, where) {
  expectEqual(head.name, metric.metric, `${where} name`);
  expectEqual(head.kind, metric.kind, `${where} kind`);
  expectEqual(head.guardrailTag, metric.guardrail, `${where} guardrail tag`);
  expectEqual(
    head.direction,
    metric.direction === "lower" ? "Lower is better" : "Higher is better",
    `${where} direction`,
  );
  expectEqual(
    head.window,
    (metric.window_hours ?? null) === null
      ? "Every conversion after the first exposure counts"
      : `Conversions within ${metric.window_hours.toLocaleString("en-US")} h of the first exposure`,
    `${where} window`,
  );
  if ((metric.capping ?? null) === null) {
    expectEqual(head.capping, "Not capped", `${where} capping`);
  } else if ((metric.capping.applied_cap ?? null) === null) {
    expectEqual(/\(no values to cap\)$/.test(head.capping), true, `${where} capping without values: ${head.capping}`);
  } else {
    const cap = /^Capped per unit at ([\d,.]+) \((.+)\)$/.exec(head.capping ?? "");
    if (!cap) throw new Error(`${where}: capping \`${head.capping}\` does not name the applied cap`);
    expectClose(parseDecimal(cap[1], `${where} applied cap`), metric.capping.applied_cap, `${where} applied cap`);
    expectEqual(Number(head.appliedCap), metric.capping.applied_cap, `${where} applied cap attribute`);
    if ((metric.capping.absolute ?? null) !== null) {
      expectEqual(
        cap[2].includes(
          `limit ±${metric.capping.absolute.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`,
        ),
        true,
        `${where} absolute cap in \`${cap[2]}\``,
      );
    }
    if ((metric.capping.percentile ?? null) !== null) {
      expectEqual(
        cap[2].includes(`${Number((metric.capping.percentile * 100).toPrecision(4))}`),
        true,
        `${where} percentile in \`${cap[2]}\``,
      );
    }
  }
  const applied = metric.cuped?.applied === true;
  expectEqual(head.cupedApplied, String(applied), `${where} CUPED applied`);
  if (applied) {
    const theta = /^CUPED applied \(θ = (-?[\d.e+-]+)\)$/.exec(head.cuped ?? "");
    if (!theta) throw new Error(`${where}: CUPED \`${head.cuped}\` does not show θ`);
    expectEqual(Number(theta[1]), Number(metric.cuped.theta.toPrecision(3)), `${where} CUPED θ`);
  } else {
    expectEqual(head.cuped.startsWith("CUPED not applied"), true, `${where} CUPED text \`${head.cuped}\``);
  }
  expectEqual(head.undefinedNote, !metric.defined, `${where} "not defined in the tenant config" note`);
}

function checkExperiment(shown, listed, results) {
  const where = `experiment ${shown.key}`;
  const holdout = listed.key === "_holdout";
  expectEqual(shown.name, holdout ? "Tenant holdout" : listed.name || listed.key, `${where} name`);
  expectEqual(shown.holdoutNote, holdout, `${where} holdout note`);
  const listedUnits = listed.exposed_units.toLocaleString("en-US");
  const summary = {
    key: shown.key,
    name: shown.name,
    status: listed.status ?? null,
    units: listed.exposed_units,
    srm: false,
    variants: [],
  };
  if (listed.exposed_units === 0) {
    expectEqual(shown.units, `${listedUnits} units`, `${where} units`);
    expectEqual(shown.noExposures, true, `${where} "no exposures" note`);
    expectEqual(shown.srmWarning, false, `${where} SRM warning`);
    return summary;
  }
  const sliceUnits = results.variants.reduce((sum, v) => sum + v.exposed_units, 0);
  const sliced = isSliced(results.slice);
  expectEqual(
    shown.units,
    sliced ? `${sliceUnits.toLocaleString("en-US")} of ${listedUnits} units` : `${listedUnits} units`,
    `${where} units`,
  );
  Object.assign(summary, { sliceUnits, method: results.inference.method, controlVariant: results.control });

  expectEqual(shown.method, results.inference.method, `${where} method`);
  if (!METHOD_LINES[results.inference.method]?.test(shown.methodText ?? "")) {
    throw new Error(`${where}: method line \`${shown.methodText}\` does not fit ${results.inference.method}`);
  }
  const comparisons = results.multiple_comparisons.comparisons;
  if (comparisons > 0) {
    const counted = new RegExp(`adjusted across ${comparisons.toLocaleString("en-US")} comparisons?:`);
    expectEqual(
      counted.test(shown.multipleComparisons ?? ""),
      true,
      `${where} adjustment line \`${shown.multipleComparisons}\``,
    );
  }
  const breaches = guardrailBreaches(results);
  expectEqual(shown.guardrailWarning, breaches.length > 0, `${where} guardrail warning shown`);
  expectEqual(
    shown.guardrailBreaches.map((b) => `${b.metric}/${b.variant}/${b.measure}`).join(" "),
    breaches.join(" "),
    `${where} guardrail breaches`,
  );
  if (breaches.length > 0)
    expectEqual(shown.guardrailWarningFirst, true, `${where} guardrail warning at the top of the card`);
  Object.assign(summary, { guardrailWarning: shown.guardrailWarning, guardrailBreaches: shown.guardrailBreaches });

  const mismatch = results.sample_ratio.mismatch === true;
  expectEqual(shown.srmWarning, mismatch, `${where} SRM warning shown`);
  expectEqual(shown.srmOk, !mismatch, `${where} "sample ratio as expected" note`);
  summary.srm = mismatch;
  if (sliceUnits === 0) {
    expectEqual(shown.noExposuresInSlice, true, `${where} "no exposures in this slice" note`);
    expectEqual(shown.tables.length, 0, `${where} tables of an empty slice`);
    return summary;
  }
  expectEqual(shown.timelineDrawn, true, `${where} exposures-over-time chart drawn`);

  expectEqual(
    shown.metricHeads.map((h) => h.metric).join(" "),
    results.metrics.map((m) => m.metric).join(" "),
    `${where} metric sections`,
  );
  shown.metricHeads.forEach((head, i) => checkMetricHead(head, results.metrics[i], `${where} ${head.metric} header`));
  summary.metricHeads = Object.fromEntries(shown.metricHeads.map((head) => [head.metric, head]));

  const expectedTables = results.metrics.flatMap((m) => [
    `${m.metric}/conversion`,
    ...(m.variants.some((v) => v.mean_value !== null) ? [`${m.metric}/value`] : []),
  ]);
  if (results.metrics.length > 0) {
    expectEqual(
      shown.tables.map((t) => `${t.metric}/${t.measure}`).join(" "),
      expectedTables.join(" "),
      `${where} tables`,
    );
  }
  const perMetric = new Map();
  const perValue = new Map();
  for (const table of shown.tables.filter((t) => t.metric !== "")) {
    const rows = checkTable(table, results, `${where} ${table.metric} (${table.measure})`);
    (table.measure === "conversion" ? perMetric : perValue).set(table.metric, rows);
    const plotted = shown.forestRows.find((p) => p.metric === table.metric && p.measure === table.measure);
    const treatments = rows.filter((r) => r.variant !== results.control && r.lift !== null);
    expectEqual(
      (plotted?.variants ?? []).map((v) => `${v.variant}:${v.verdict}`).join(","),
      treatments.map((r) => `${r.variant}:${r.verdict}`).join(","),
      `${where} ${table.metric} forest plot rows and their verdicts`,
    );
  }
  // Per variant: units, and the first metric's figures (metrics come in key order) plus all.
  const figures = (rows) => ({
    conversionRate: rows.conversionRate,
    meanValue: rows.meanValue,
    lift: rows.lift,
    pValue: rows.pValue,
    pValueAdjusted: rows.pValueAdjusted,
    significant: rows.significant,
    verdict: rows.verdict,
  });
  summary.variants = results.variants.map((units) => {
    const pick = (map) =>
      Object.fromEntries(
        [...map].map(([metric, rows]) => [metric, figures(rows.find((r) => r.variant === units.variant))]),
      );
    const metrics = pick(perMetric);
    const first = Object.values(metrics)[0] ?? { conversionRate: null, lift: null, pValue: null, significant: false };
    return { variant: units.variant, units: units.exposed_units, ...first, metrics, values: pick(perValue) };
  });
  return summary;
}

/**
 * Opens `${baseUrl}/dashboard/?search#tenant=…&token=…` and waits until the page is ready.
 * Resolves with the page, the problems it reported so far (console errors, page errors, HTTP
 * errors) and close().
 * @param {{ baseUrl: string, tenant: string, token: string, viewport?: { width: number, height: number },
 *   search?: string }} options
 */
export async function openDashboard({ baseUrl, tenant, token, viewport = { width: 1280, height: 900 }, search = "" }) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-dashboard-chromium-"));
  const problems = [];
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport,
    deviceScaleFactor: 1,
  });
  const close = async () => {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
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
    await page.goto(`${baseUrl}/dashboard/${search ? `?${search}` : ""}#${fragment}`);
    await waitUntilShown(page);
    const addressBar = page.url();
    if (addressBar.includes(token)) throw new Error(`the read token stays in the address bar: ${addressBar}`);
    return { page, problems, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Waits until the page has loaded (or failed) and every timeline it shows is drawn. */
export async function waitUntilShown(page) {
  await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state ?? ""), null, {
    timeout: 30_000,
  });
  // Charts draw on the next frames; wait until every card with exposures has its canvas.
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('[data-testid="timeline-chart"]')].every((chart) => chart.querySelector("canvas")),
    null,
    { timeout: 10_000 },
  );
}

/**
 * Checks every experiment the page shows against the results API, asked with the query the page
 * says it applied (`body[data-query]`, which the caller may pin with `expectQuery`). Throws on
 * the first difference. Returns { query, viewSummary, overflowPx, experiments: [...] } (see
 * checkDashboard).
 * @param {import("playwright-core").Page} page
 * @param {{ baseUrl: string, tenant: string, token: string, expectQuery?: string }} options
 */
export async function checkShown(page, { baseUrl, tenant, token, expectQuery }) {
  const shown = await page.evaluate(readPage);
  if (shown.state !== "ready") throw new Error(`the dashboard did not load: ${shown.status}`);
  if (expectQuery !== undefined) expectEqual(shown.query, expectQuery, "the view the page applied");
  const list = await api(baseUrl, tenant, token, "/experiments");
  expectEqual(
    shown.experiments.map((e) => e.key).join(","),
    list.experiments.map((e) => e.key).join(","),
    "experiments shown",
  );
  const experiments = [];
  let slice = null;
  for (const card of shown.experiments) {
    const listed = list.experiments.find((e) => e.key === card.key);
    const results =
      listed.exposed_units > 0
        ? await api(
            baseUrl,
            tenant,
            token,
            `/experiments/${encodeURIComponent(String(card.key))}/results?${shown.query}`,
          )
        : null;
    slice ??= results?.slice ?? null;
    experiments.push(checkExperiment(card, listed, results));
  }
  // The view line names every filter the collector applied.
  for (const [name, value] of Object.entries(slice ?? {})) {
    if (["config_version", "country", "device"].includes(name)) {
      const label = name === "config_version" ? "config version" : name;
      expectEqual(
        shown.viewSummary.includes(`${label} ${value}`),
        true,
        `view summary \`${shown.viewSummary}\` names ${label} ${value}`,
      );
    }
  }
  if (slice && !isSliced(slice))
    expectEqual(shown.viewSummary.startsWith("Showing all units"), true, `view summary \`${shown.viewSummary}\``);
  return {
    query: shown.query,
    viewSummary: shown.viewSummary,
    viewError: shown.viewError,
    overflowPx: shown.overflow,
    experiments,
  };
}

/**
 * Opens `${baseUrl}/dashboard/#tenant=…&token=…` (with `search`, the view's query string, if
 * given) and checks every experiment shown against the results API. Throws on the first
 * difference, on a console error or page error, or when the page does not become ready.
 *
 * Returns { url, screenshotPath, query, overflowPx, experiments: [{ key, name, status, units,
 * sliceUnits, method, srm, guardrailWarning, guardrailBreaches, metricHeads, variants: [{
 * variant, units, conversionRate, lift, pValue, pValueAdjusted, significant, verdict, metrics: {
 * [metric]: {...} }, values: { [metric]: {...} } }] }] }, where a variant's top-level figures are
 * those of the first metric's conversion table in key order (null without conversions),
 * `significant` is the API's (from the adjusted p-value) and `lift` is relative when the API has it.
 * @param {{ baseUrl: string, tenant: string, token: string, screenshotPath?: string,
 *   viewport?: { width: number, height: number }, search?: string }} options
 */
export async function checkDashboard({ baseUrl, tenant, token, screenshotPath, viewport, search = "" }) {
  const { page, problems, close } = await openDashboard({ baseUrl, tenant, token, viewport, search });
  try {
    const seen = await checkShown(page, { baseUrl, tenant, token });
    if (screenshotPath) {
      fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
      await page.screenshot({ path: screenshotPath, fullPage: true });
    }
    if (problems.length > 0) throw new Error(`the page reported problems:\n${problems.join("\n")}`);
    return { url: `${baseUrl}/dashboard/`, screenshotPath, ...seen };
  } finally {
    await close();
  }
}
