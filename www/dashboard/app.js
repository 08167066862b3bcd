// Cohort results dashboard: plain DOM, no framework. Reads the collector's results API with a
// tenant's read token, which arrives in the URL fragment (#tenant=shop&token=...; fragments are
// never sent to a server) or through the form, and is kept in sessionStorage only.
"use strict";

const STORAGE_KEY = "cohort.dashboard.credentials";
const SVG_NS = "http://www.w3.org/2000/svg";
// Variant colours: control first, then treatments; colour-blind-safe (Okabe–Ito).
const PALETTE = ["#5b6676", "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#f0e442"];

// ---- formatting: one place, so every number on the page reads the same way ----

const integerFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const valueFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** 1234 → "1,234". */
function formatCount(n) {
  return integerFormat.format(n);
}

/** 0.12345 → "12.35%" (shares and rates: two decimals). */
function formatPercent(fraction) {
  return `${(fraction * 100).toFixed(2)}%`;
}

/** Signed relative change, one decimal: 0.234 → "+23.4%". */
function formatSignedPercent(fraction) {
  const text = (fraction * 100).toFixed(1);
  return `${fraction > 0 && text !== "0.0" ? "+" : ""}${text === "-0.0" ? "0.0" : text}%`;
}

/** Signed absolute change of a rate in percentage points, two decimals: 0.0123 → "+1.23 pp". */
function formatPoints(fraction) {
  const text = (fraction * 100).toFixed(2);
  return `${fraction > 0 && text !== "0.00" ? "+" : ""}${text === "-0.00" ? "0.00" : text} pp`;
}

/** Signed absolute change of a mean value: 1.5 → "+1.50". */
function formatSignedValue(x) {
  const text = valueFormat.format(x);
  return `${x > 0 && text !== "0.00" ? "+" : ""}${text === "-0.00" ? "0.00" : text}`;
}

/** p-values: three significant digits, or "< 0.001". */
function formatPValue(p) {
  if (p === null || p === undefined) return "—";
  if (p < 0.001) return "< 0.001";
  return p.toPrecision(3);
}

// ---- DOM helpers ----

/** Creates an element; `attributes` may hold `class`, `text`, data-* and any attribute. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, String(value));
  }
  return node;
}

function setStatus(message, isError = false) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

// ---- credentials ----

/** Takes tenant and token from the fragment (then removes them from the address bar and the
 * history), else from sessionStorage. */
function readCredentials() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (fragment.has("tenant") && fragment.has("token")) {
    const credentials = { tenant: fragment.get("tenant").trim(), token: fragment.get("token").trim() };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
    history.replaceState(null, "", location.pathname + location.search);
    return credentials;
  }
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    if (stored && typeof stored.tenant === "string" && typeof stored.token === "string") return stored;
  } catch {
    sessionStorage.removeItem(STORAGE_KEY);
  }
  return null;
}

// ---- API ----

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(credentials, path) {
  const response = await fetch(`/v1/tenants/${encodeURIComponent(credentials.tenant)}${path}`, {
    headers: { authorization: `Bearer ${credentials.token}` },
    cache: "no-store",
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(response.status, "not_json", `${path}: answered ${response.status} without JSON`);
  }
  if (!response.ok) {
    const error = body.error || {};
    throw new ApiError(response.status, error.code || "error", error.message || `answered ${response.status}`);
  }
  return body;
}

// ---- rendering ----

function isSignificant(comparison, alpha) {
  return comparison !== null && comparison !== undefined && comparison.p_value !== null && comparison.p_value < alpha;
}

function significanceCell(comparison, alpha) {
  if (!comparison) return el("td", { "data-testid": "significance", "data-label": "Significant", text: "—" });
  const significant = isSignificant(comparison, alpha);
  const direction = comparison.absolute_lift >= 0 ? "up" : "down";
  return el(
    "td",
    {
      "data-testid": "significance",
      "data-label": "Significant",
      "data-significant": significant ? "true" : "false",
      class: significant ? `sig-${direction}` : "sig-none",
    },
    significant ? (direction === "up" ? "▲ significant" : "▼ significant") : "not significant",
  );
}

/** The lift as shown in tables and plots: relative when the control's estimate allows it,
 * otherwise absolute (percentage points for rates, value units for means). */
function liftOf(comparison, measure) {
  if (comparison.relative_lift !== null && comparison.relative_ci) {
    return {
      estimate: comparison.relative_lift,
      low: comparison.relative_ci.low,
      high: comparison.relative_ci.high,
      format: formatSignedPercent,
      kind: "relative",
    };
  }
  return {
    estimate: comparison.absolute_lift,
    low: comparison.absolute_ci.low,
    high: comparison.absolute_ci.high,
    format: measure === "conversion" ? formatPoints : formatSignedValue,
    kind: "absolute",
  };
}

function liftCell(comparison, measure) {
  if (!comparison) return el("td", { class: "num", "data-testid": "lift", "data-label": "Lift (95% CI)", text: "—" });
  const lift = liftOf(comparison, measure);
  return el(
    "td",
    { class: "num", "data-testid": "lift", "data-label": "Lift (95% CI)", "data-lift-kind": lift.kind },
    el("span", { "data-testid": "lift-estimate", text: lift.format(lift.estimate) }),
    el("span", { class: "ci", "data-testid": "lift-ci", text: `${lift.format(lift.low)} to ${lift.format(lift.high)}` }),
  );
}

function numberCell(testid, label, text) {
  return el("td", { class: "num", "data-testid": testid, "data-label": label, text });
}

/** One metric's table: conversion (rate, z-test) or value (mean per unit, Welch). */
function resultsTable(results, metric, measure) {
  const alpha = 1 - results.confidence;
  const unitsByVariant = new Map(results.variants.map((v) => [v.variant, v]));
  const conversion = measure === "conversion";
  const head = el(
    "tr",
    {},
    el("th", { text: "Variant" }),
    el("th", { class: "num", text: "Units" }),
    el("th", { class: "num", text: "Expected share" }),
    conversion ? el("th", { class: "num", text: "Conversions" }) : el("th", { class: "num", text: "Mean value" }),
    conversion ? el("th", { class: "num", text: "Conversion rate" }) : null,
    el("th", { class: "num", text: "Lift (95% CI)" }),
    el("th", { class: "num", text: "p-value" }),
    el("th", { text: "Significant" }),
  );
  const body = el("tbody");
  for (const row of metric.variants) {
    const units = unitsByVariant.get(row.variant);
    const comparison = conversion ? row.conversion_vs_control : row.value_vs_control;
    const isControl = row.variant === results.control;
    body.append(
      el(
        "tr",
        { "data-testid": "variant-row", "data-variant": row.variant, class: isControl ? "control" : null },
        el(
          "td",
          { "data-testid": "variant" },
          row.variant,
          isControl && row.variant !== "control" ? el("span", { class: "role", text: " (control)" }) : null,
        ),
        numberCell("units", "Units", formatCount(units.exposed_units)),
        numberCell("expected-share", "Expected share", formatPercent(units.expected_share)),
        conversion
          ? numberCell("conversions", "Conversions", formatCount(row.converted_units))
          : numberCell("mean-value", "Mean value", valueFormat.format(row.mean_value)),
        conversion ? numberCell("conversion-rate", "Conversion rate", formatPercent(row.conversion_rate)) : null,
        isControl ? numberCell("lift", "Lift (95% CI)", "baseline") : liftCell(comparison, measure),
        numberCell("p-value", "p-value", isControl ? "—" : formatPValue(comparison ? comparison.p_value : null)),
        isControl ? el("td", { "data-testid": "significance", "data-label": "Significant", text: "—" }) : significanceCell(comparison, alpha),
      ),
    );
  }
  return el(
    "div",
    { class: "scroll" },
    el(
      "table",
      { class: "results", "data-testid": "results-table", "data-metric": metric.metric, "data-measure": measure },
      el("thead", {}, head),
      body,
    ),
  );
}

/** Round tick values (1, 2 or 5 × 10^k apart) within [low, high], about `count` of them. */
function niceTicks(low, high, count) {
  const rough = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= rough);
  const ticks = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
    // Snap away binary noise such as 0.30000000000000004, and -0 to 0.
    ticks.push(Number(value.toPrecision(12)) + 0);
  }
  return ticks;
}

/** A forest plot: one row per treatment, its lift estimate and 95% interval against zero. */
function forestPlot(results, metric, measure, width) {
  const alpha = 1 - results.confidence;
  const rows = metric.variants
    .map((row, index) => ({ row, index, comparison: measure === "conversion" ? row.conversion_vs_control : row.value_vs_control }))
    .filter(({ row, comparison }) => row.variant !== results.control && comparison);
  if (rows.length === 0) return null;
  // Every row must be drawn on one scale: relative only if every treatment has it.
  const allRelative = rows.every(({ comparison }) => comparison.relative_lift !== null && comparison.relative_ci);
  const lifts = rows.map(({ comparison }) => {
    const lift = liftOf(comparison, measure);
    if (allRelative || lift.kind === "absolute") return lift;
    return liftOf({ ...comparison, relative_lift: null, relative_ci: null }, measure);
  });
  const low = Math.min(0, ...lifts.map((l) => l.low));
  const high = Math.max(0, ...lifts.map((l) => l.high));
  const pad = (high - low) * 0.08 || 0.01;
  const [domainLow, domainHigh] = [low - pad, high + pad];
  const labelWidth = Math.min(140, Math.max(70, width * 0.28));
  const plotLeft = labelWidth + 8;
  const plotRight = width - 12;
  const rowHeight = 28;
  const top = 8;
  const height = top + rows.length * rowHeight + 26;
  const x = (value) => plotLeft + ((value - domainLow) / (domainHigh - domainLow)) * (plotRight - plotLeft);

  const plot = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": `Lift of each variant over ${results.control} for ${metric.metric}, 95% intervals`,
  });
  const axis = svg("g", { class: "axis" });
  const ticks = niceTicks(domainLow, domainHigh, width < 420 ? 4 : 6);
  for (const value of ticks) {
    axis.append(svg("line", { class: "grid", x1: x(value), x2: x(value), y1: top, y2: height - 22 }));
    // The outermost labels stay inside the plot's box.
    const anchor = x(value) < plotLeft + 20 ? "start" : x(value) > plotRight - 20 ? "end" : "middle";
    axis.append(svg("text", { x: x(value), y: height - 6, "text-anchor": anchor, text: lifts[0].format(value) }));
  }
  plot.append(axis);
  plot.append(svg("line", { class: "zero", x1: x(0), x2: x(0), y1: top - 4, y2: height - 22 }));
  rows.forEach(({ row, index, comparison }, i) => {
    const lift = lifts[i];
    const y = top + i * rowHeight + rowHeight / 2;
    const significant = isSignificant(comparison, alpha);
    const colour = significant ? (lift.estimate >= 0 ? "#17803d" : "#b42318") : PALETTE[index % PALETTE.length];
    const group = svg("g", { "data-testid": "forest-row", "data-variant": row.variant });
    group.append(svg("text", { x: 0, y: y + 4, text: row.variant.length > 18 ? `${row.variant.slice(0, 17)}…` : row.variant }));
    group.append(svg("line", { x1: x(lift.low), x2: x(lift.high), y1: y, y2: y, stroke: colour, "stroke-width": 3, "stroke-linecap": "round" }));
    group.append(svg("circle", { cx: x(lift.estimate), cy: y, r: 5, fill: colour }));
    group.append(svg("title", { text: `${row.variant}: ${lift.format(lift.estimate)} (${lift.format(lift.low)} to ${lift.format(lift.high)})` }));
    plot.append(group);
  });
  return plot;
}

function renderForest(container, results, metric, measure) {
  const draw = () => {
    const width = Math.max(260, Math.floor(container.clientWidth));
    const plot = forestPlot(results, metric, measure, width);
    const caption = el("p", { class: "forest-caption", text: `Lift over ${results.control} with its 95% confidence interval` });
    container.replaceChildren(...(plot ? [caption, plot] : []));
  };
  draw();
  return draw;
}

function srmNotice(results) {
  const test = results.sample_ratio;
  if (test.mismatch === true) {
    const shares = results.variants
      .map((v) => {
        const total = results.variants.reduce((sum, x) => sum + x.exposed_units, 0);
        return `${v.variant} ${formatPercent(total ? v.exposed_units / total : 0)} (expected ${formatPercent(v.expected_share)})`;
      })
      .join(", ");
    return el(
      "div",
      { class: "srm-warning", role: "alert", "data-testid": "srm-warning" },
      el("strong", { text: "⚠ Sample ratio mismatch" }),
      el("p", { text: `Units did not split as expected (χ² p ${formatPValue(test.p_value).startsWith("<") ? "" : "= "}${formatPValue(test.p_value)}): ${shares}.` }),
      el("p", { text: "Assignment or exposure logging is broken; do not trust this experiment's lifts until it is fixed." }),
    );
  }
  if (test.p_value === undefined) return el("p", { class: "srm-ok", "data-testid": "srm-ok", text: "Sample ratio: not enough data to test." });
  return el("p", { class: "srm-ok", "data-testid": "srm-ok", text: `Sample ratio as expected (χ² p = ${formatPValue(test.p_value)}).` });
}

/** Exposures per bucket and variant, with uPlot. Returns a resize function. */
function renderTimeline(container, timeline) {
  if (timeline.points.length === 0) {
    container.append(el("p", { class: "empty", text: "No exposures yet." }));
    return () => {};
  }
  const xs = timeline.points.map((p) => p.start_ms / 1000);
  const series = timeline.variants.map((variant) => timeline.points.map((p) => p.units[variant] ?? 0));
  const width = () => Math.max(260, Math.floor(container.clientWidth));
  const bucket = timeline.bucket_seconds;
  const options = {
    width: width(),
    height: 220,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{}, { label: `units per ${bucket >= 3600 ? `${bucket / 3600} h` : bucket >= 60 ? `${bucket / 60} min` : `${bucket} s`}`, size: 50 }],
    legend: { live: true },
    series: [
      {},
      ...timeline.variants.map((variant, i) => ({
        label: variant,
        stroke: PALETTE[i % PALETTE.length],
        width: 2,
        points: { show: timeline.points.length <= 60 },
      })),
    ],
  };
  const chart = new uPlot(options, [xs, ...series], container);
  return () => chart.setSize({ width: width(), height: 220 });
}

function experimentTitle(experiment) {
  return experiment.name || experiment.key;
}

function renderExperiment(experiment, results, timeline, redraws) {
  const card = el("article", { class: "experiment", "data-testid": "experiment", "data-experiment": experiment.key, id: `experiment-${experiment.key}` });
  card.append(
    el(
      "header",
      {},
      el("h2", { "data-testid": "experiment-name", text: experimentTitle(experiment) }),
      experiment.name ? el("code", { class: "key", text: experiment.key }) : null,
      el("span", { class: `badge ${experiment.status || "unknown"}`, "data-testid": "experiment-status", text: experiment.status || "not in config" }),
      el("span", { class: "units", "data-testid": "experiment-units", text: `${formatCount(experiment.exposed_units)} units` }),
    ),
  );
  if (experiment.exposed_units === 0) {
    card.append(el("p", { class: "empty", "data-testid": "no-exposures", text: "No exposures yet." }));
    return card;
  }
  card.append(srmNotice(results));
  if (results.metrics.length === 0) {
    card.append(el("p", { class: "empty", text: "No conversions yet." }));
    card.append(resultsTable(results, { metric: "", variants: results.variants.map((v) => ({ variant: v.variant, converted_units: 0, conversion_rate: 0, conversion_vs_control: null })) }, "conversion"));
  }
  for (const metric of results.metrics) {
    const section = el("section", { class: "metric", "data-testid": "metric", "data-metric": metric.metric });
    section.append(el("h3", { text: `${metric.metric}: conversion` }));
    section.append(resultsTable(results, metric, "conversion"));
    const forest = el("div", { class: "forest", "data-testid": "forest-plot", "data-metric": metric.metric, "data-measure": "conversion" });
    section.append(forest);
    card.append(section);
    redraws.push(() => renderForest(forest, results, metric, "conversion"));
    if (metric.variants.some((v) => v.mean_value !== null)) {
      const values = el("section", { class: "metric", "data-testid": "metric-value", "data-metric": metric.metric });
      values.append(el("h3", { text: `${metric.metric}: value per unit` }));
      values.append(resultsTable(results, metric, "value"));
      const valueForest = el("div", { class: "forest", "data-testid": "forest-plot", "data-metric": metric.metric, "data-measure": "value" });
      values.append(valueForest);
      card.append(values);
      redraws.push(() => renderForest(valueForest, results, metric, "value"));
    }
  }
  const chart = el("div", { class: "timeline", "data-testid": "timeline-chart" });
  card.append(el("section", {}, el("h3", { text: "Exposures over time" }), chart));
  redraws.push(() => renderTimeline(chart, timeline));
  return card;
}

function overviewRow(experiment, results) {
  const mismatch = results && results.sample_ratio.mismatch === true;
  const jump = el("button", { type: "button", text: experimentTitle(experiment) });
  jump.addEventListener("click", () => document.getElementById(`experiment-${experiment.key}`).scrollIntoView({ behavior: "smooth" }));
  return el(
    "tr",
    { "data-testid": "experiment-summary", "data-experiment": experiment.key },
    el("td", {}, jump),
    el("td", {}, el("span", { class: `badge ${experiment.status || "unknown"}`, text: experiment.status || "not in config" })),
    el("td", { class: "num", text: formatCount(experiment.exposed_units) }),
    el("td", {}, mismatch ? el("span", { class: "badge srm", text: "SRM" }) : experiment.exposed_units ? "ok" : "—"),
  );
}

async function load(credentials) {
  document.body.dataset.state = "loading";
  const form = document.getElementById("sign-in");
  form.tenant.value = credentials.tenant;
  form.token.value = credentials.token;
  setStatus(`Loading ${credentials.tenant}…`);
  const container = document.getElementById("experiments");
  const overview = document.getElementById("overview");
  container.replaceChildren();
  overview.hidden = true;
  try {
    const list = await api(credentials, "/experiments");
    const loaded = await Promise.all(
      list.experiments.map(async (experiment) => {
        const path = `/experiments/${encodeURIComponent(experiment.key)}`;
        if (experiment.exposed_units === 0) return { experiment, results: null, timeline: null };
        const [results, timeline] = await Promise.all([api(credentials, `${path}/results`), api(credentials, `${path}/timeline`)]);
        return { experiment, results, timeline };
      }),
    );
    document.getElementById("overview-title").textContent = `Experiments of ${list.tenant}`;
    document.getElementById("overview-rows").replaceChildren(...loaded.map(({ experiment, results }) => overviewRow(experiment, results)));
    overview.hidden = loaded.length === 0;
    const redraws = [];
    container.replaceChildren(...loaded.map(({ experiment, results, timeline }) => renderExperiment(experiment, results, timeline, redraws)));
    // Charts measure their container, so they are drawn once the cards are in the page.
    const resizers = redraws.map((draw) => draw());
    let pending = 0;
    window.onresize = () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(() => resizers.forEach((resize) => resize()));
    };
    const alarms = loaded.filter(({ results }) => results && results.sample_ratio.mismatch === true).length;
    setStatus(
      loaded.length === 0
        ? `No experiments for ${list.tenant} yet.`
        : `${loaded.length} experiment${loaded.length === 1 ? "" : "s"}${alarms ? `, ${alarms} with a sample-ratio mismatch` : ""}. Updated ${new Date().toLocaleTimeString("en-GB")}.`,
    );
    document.body.dataset.state = "ready";
  } catch (error) {
    const message =
      error instanceof ApiError && error.status === 401
        ? `The read token is not valid for tenant “${credentials.tenant}”.`
        : `Could not load results: ${error.message}`;
    setStatus(message, true);
    document.body.dataset.state = "error";
  }
}

function start() {
  const form = document.getElementById("sign-in");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const credentials = { tenant: form.tenant.value.trim(), token: form.token.value.trim() };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
    load(credentials);
  });
  // A link with new credentials pasted into an open tab.
  window.addEventListener("hashchange", () => {
    if (/(^|[#&])token=/.test(location.hash)) load(readCredentials());
  });
  const credentials = readCredentials();
  if (credentials) load(credentials);
}

start();
