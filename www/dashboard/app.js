// Cohort results dashboard: plain DOM, no framework. Reads the collector's results API with a
// tenant's token (its read token or an admin token), which arrives in the URL fragment
// (#tenant=shop&token=...; fragments are never sent to a server) or through the form, and is kept
// in sessionStorage only. The view (the inference method and a slice) lives in the query string,
// so a link reopens the same view. The Manage section below the results reads the tenant's config
// versions and changes them through the collector's config API, each change previewed with a dry
// run before it is confirmed.
"use strict";

const STORAGE_KEY = "cohort.dashboard.credentials";
/** The results endpoint's view parameters, in the order they appear in links. */
const VIEW_PARAMETERS = ["inference", "config_version", "country", "device", "from", "to"];
const HOLDOUT_KEY = "_holdout";
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

/** A raw p-value next to its adjusted one: "0.0120 (adj. 0.0360)". */
function formatPValues(comparison) {
  if (!comparison || comparison.p_value === null) return "—";
  return `${formatPValue(comparison.p_value)} (adj. ${formatPValue(comparison.p_value_adjusted)})`;
}

/** Interval level: 0.95 → "95%". */
function formatLevel(confidence) {
  return `${Number((confidence * 100).toPrecision(4))}%`;
}

/** Unix ms → "2026-05-01 14:05" in the viewer's time zone (seconds only when not zero). */
function formatLocalTime(ms) {
  const text = toLocalInput(ms).replace("T", " ");
  return text.endsWith(":00") && text.length > 16 ? text.slice(0, 16) : text;
}

/** Unix ms → the value of a datetime-local input ("2026-05-01T14:05:09"), in local time. */
function toLocalInput(ms) {
  const date = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
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

/**
 * The element of index.html with this id (or of a card this script rendered): every id this
 * script looks up is on the page, so there is no null to handle.
 * @param {string} id
 */
function byId(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id));
}

/** The form of index.html with this id. @param {string} id */
function formById(id) {
  return /** @type {HTMLFormElement} */ (byId(id));
}

function setStatus(message, isError = false) {
  const status = byId("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

// ---- credentials ----

/** Takes tenant and token from the fragment (then removes them from the address bar and the
 * history), else from sessionStorage. */
function readCredentials() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const [tenant, token] = [fragment.get("tenant"), fragment.get("token")];
  if (tenant !== null && token !== null) {
    const credentials = { tenant: tenant.trim(), token: token.trim() };
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

/**
 * Calls the tenant's API: GET by default, or `method` with `body` sent as JSON. Resolves with the
 * answer's JSON; rejects with an ApiError carrying the collector's error code and message.
 * @param {{ tenant: string, token: string }} credentials
 * @param {string} path
 * @param {{ method?: string, body?: unknown }} [request]
 */
async function api(credentials, path, request = {}) {
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${credentials.token}` };
  if (request.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`/v1/tenants/${encodeURIComponent(credentials.tenant)}${path}`, {
    method: request.method ?? "GET",
    headers,
    body: request.body === undefined ? undefined : JSON.stringify(request.body),
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

/** The method in force, as one line a person can act on; peeking is safe only under sequential. */
function methodText(inference) {
  if (inference.method === "sequential") {
    const tuning = inference.sequential_tuning
      ? ` Intervals are tightest around ${formatCount(inference.sequential_tuning)} units.`
      : "";
    return `Sequential (always-valid) intervals: safe to look at any time.${tuning}`;
  }
  if (inference.method === "fixed") {
    return "Fixed-horizon: valid only if you look once, at the planned sample size. Stopping at the first good-looking result inflates false positives.";
  }
  return inference.note;
}

/** Short name of the interval, for captions. */
function intervalName(results) {
  const level = formatLevel(results.confidence);
  return results.inference.method === "sequential"
    ? `${level} always-valid interval`
    : `${level} fixed-horizon interval`;
}

/** A better/worse verdict (adjusted p-value, direction-aware) or "inconclusive"; the arrow is the
 * direction of the change, the colour and word whether that is good for this metric. */
function verdictCell(comparison, results) {
  if (!comparison) return el("td", { "data-testid": "verdict", "data-label": "Verdict", text: "—" });
  const arrow = comparison.absolute_lift > 0 ? "▲ " : comparison.absolute_lift < 0 ? "▼ " : "";
  const decided = comparison.verdict === "better" || comparison.verdict === "worse";
  return el(
    "td",
    {
      "data-testid": "verdict",
      "data-label": "Verdict",
      "data-verdict": comparison.verdict,
      "data-significant": comparison.significant ? "true" : "false",
      class: `verdict-${comparison.verdict}`,
    },
    el("span", { "data-testid": "verdict-text", text: decided ? `${arrow}${comparison.verdict}` : "inconclusive" }),
    // Under fixed-horizon a verdict holds only at the one planned look.
    decided && results.inference.method === "fixed"
      ? el("span", { class: "caveat", "data-testid": "verdict-caveat", text: "only if this is the planned look" })
      : null,
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

function liftCell(comparison, measure, label) {
  if (!comparison) return el("td", { class: "num", "data-testid": "lift", "data-label": label, text: "—" });
  const lift = liftOf(comparison, measure);
  return el(
    "td",
    { class: "num", "data-testid": "lift", "data-label": label, "data-lift-kind": lift.kind },
    el("span", { "data-testid": "lift-estimate", text: lift.format(lift.estimate) }),
    el("span", {
      class: "ci",
      "data-testid": "lift-ci",
      text: `${lift.format(lift.low)} to ${lift.format(lift.high)}`,
    }),
  );
}

function numberCell(testid, label, text) {
  return el("td", { class: "num", "data-testid": testid, "data-label": label, text });
}

/** The raw p-value with the adjusted one the verdict uses beside it. */
function pValueCell(comparison) {
  if (!comparison || comparison.p_value === null) return numberCell("p-value", "p-value", "—");
  return el(
    "td",
    { class: "num", "data-testid": "p-value", "data-label": "p-value" },
    el("span", { "data-testid": "p-raw", text: formatPValue(comparison.p_value) }),
    " ",
    el("span", {
      class: "adjusted",
      "data-testid": "p-adjusted",
      text: `(adj. ${formatPValue(comparison.p_value_adjusted)})`,
    }),
  );
}

/** One metric's table: conversion rate or value per unit, each treatment against the control. */
function resultsTable(results, metric, measure) {
  const liftLabel = `Lift (${formatLevel(results.confidence)} CI)`;
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
    el("th", { class: "num", text: liftLabel }),
    el("th", { class: "num", text: "p-value (adjusted)" }),
    el("th", { text: "Verdict" }),
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
        isControl ? numberCell("lift", liftLabel, "baseline") : liftCell(comparison, measure, liftLabel),
        isControl ? numberCell("p-value", "p-value", "—") : pValueCell(comparison),
        isControl
          ? el("td", { "data-testid": "verdict", "data-label": "Verdict", text: "—" })
          : verdictCell(comparison, results),
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
  // 10 × magnitude ≥ rough always, so one of them is found.
  const step = /** @type {number} */ ([1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= rough));
  const ticks = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
    // Snap away binary noise such as 0.30000000000000004, and -0 to 0.
    ticks.push(Number(value.toPrecision(12)) + 0);
  }
  return ticks;
}

/** The colour of a verdict: better green, worse red, else the variant's own colour. */
const VERDICT_COLOURS = { better: "#17803d", worse: "#b42318" };

/** A forest plot: one row per treatment, its lift estimate and interval against zero. */
function forestPlot(results, metric, measure, width) {
  const rows = metric.variants
    .map((row, index) => ({
      row,
      index,
      comparison: measure === "conversion" ? row.conversion_vs_control : row.value_vs_control,
    }))
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
    "aria-label": `Lift of each variant over ${results.control} for ${metric.metric}, ${intervalName(results)}s`,
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
    const colour = VERDICT_COLOURS[comparison.verdict] ?? PALETTE[index % PALETTE.length];
    const group = svg("g", {
      "data-testid": "forest-row",
      "data-variant": row.variant,
      "data-verdict": comparison.verdict,
    });
    group.append(
      svg("text", { x: 0, y: y + 4, text: row.variant.length > 18 ? `${row.variant.slice(0, 17)}…` : row.variant }),
    );
    group.append(
      svg("line", {
        x1: x(lift.low),
        x2: x(lift.high),
        y1: y,
        y2: y,
        stroke: colour,
        "stroke-width": 3,
        "stroke-linecap": "round",
      }),
    );
    group.append(svg("circle", { cx: x(lift.estimate), cy: y, r: 5, fill: colour }));
    group.append(
      svg("title", {
        text: `${row.variant}: ${lift.format(lift.estimate)} (${lift.format(lift.low)} to ${lift.format(lift.high)}), ${comparison.verdict}`,
      }),
    );
    plot.append(group);
  });
  return plot;
}

function renderForest(container, results, metric, measure) {
  const draw = () => {
    const width = Math.max(260, Math.floor(container.clientWidth));
    const plot = forestPlot(results, metric, measure, width);
    const caption = el("p", {
      class: "forest-caption",
      text: `Lift over ${results.control} with its ${intervalName(results)}`,
    });
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
      el("p", {
        text: `Units did not split as expected (χ² p ${formatPValue(test.p_value).startsWith("<") ? "" : "= "}${formatPValue(test.p_value)}): ${shares}.`,
      }),
      el("p", {
        text: "Assignment or exposure logging is broken; do not trust this experiment's lifts until it is fixed.",
      }),
    );
  }
  if (test.p_value === undefined)
    return el("p", { class: "srm-ok", "data-testid": "srm-ok", text: "Sample ratio: not enough data to test." });
  return el("p", {
    class: "srm-ok",
    "data-testid": "srm-ok",
    text: `Sample ratio as expected (χ² p = ${formatPValue(test.p_value)}).`,
  });
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
  /** @type {uPlot.Options} */
  const options = {
    width: width(),
    height: 220,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [
      {},
      {
        label: `units per ${bucket >= 3600 ? `${bucket / 3600} h` : bucket >= 60 ? `${bucket / 60} min` : `${bucket} s`}`,
        size: 50,
      },
    ],
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

const isHoldout = (experiment) => experiment.key === HOLDOUT_KEY;

function experimentTitle(experiment) {
  if (isHoldout(experiment)) return "Tenant holdout";
  return experiment.name || experiment.key;
}

function statusBadge(experiment, testid) {
  if (isHoldout(experiment)) return el("span", { class: "badge holdout", "data-testid": testid, text: "holdout" });
  return el("span", {
    class: `badge ${experiment.status || "unknown"}`,
    "data-testid": testid,
    text: experiment.status || "not in config",
  });
}

/** "p = 0.0120 (adj. 0.0360)" or "p < 0.001 (adj. 0.00200)". */
function pPhrase(comparison) {
  const text = formatPValues(comparison);
  return `p ${text.startsWith("<") ? "" : "= "}${text}`;
}

/** Treatments whose guardrail metric got worse, on either measure. */
function guardrailBreaches(results) {
  const breaches = [];
  for (const metric of results.metrics.filter((m) => m.guardrail)) {
    for (const row of metric.variants) {
      const measures = [
        ["conversion", row.conversion_vs_control],
        ["value", row.value_vs_control],
      ];
      for (const [measure, comparison] of measures) {
        if (comparison && comparison.verdict === "worse")
          breaches.push({ metric: metric.metric, variant: row.variant, measure, comparison });
      }
    }
  }
  return breaches;
}

function guardrailWarning(results, breaches) {
  return el(
    "div",
    { class: "guardrail-warning", role: "alert", "data-testid": "guardrail-warning" },
    el("strong", { text: breaches.length === 1 ? "⚠ A guardrail metric got worse" : "⚠ Guardrail metrics got worse" }),
    el(
      "ul",
      {},
      ...breaches.map(({ metric, variant, measure, comparison }) => {
        const lift = liftOf(comparison, measure);
        const what = measure === "conversion" ? "conversion rate" : "value per unit";
        return el("li", {
          "data-testid": "guardrail-breach",
          "data-metric": metric,
          "data-variant": variant,
          "data-measure": measure,
          text: `${metric} (${what}) in ${variant}: ${lift.format(lift.estimate)} against ${results.control}, ${pPhrase(comparison)}.`,
        });
      }),
    ),
    el("p", { text: "A guardrail must not get worse: do not ship that variant before this is understood." }),
  );
}

/** "99th", "99.5th", "51st". */
function ordinal(n) {
  const rounded = Number(n.toPrecision(4));
  if (!Number.isInteger(rounded)) return `${rounded}th`;
  const suffix =
    rounded % 100 >= 11 && rounded % 100 <= 13 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[rounded % 10] || "th";
  return `${rounded}${suffix}`;
}

function cappingText(capping) {
  if (!capping) return "Not capped";
  const limits = [
    capping.absolute !== null && capping.absolute !== undefined
      ? `limit ±${valueFormat.format(capping.absolute)}`
      : null,
    capping.percentile !== null && capping.percentile !== undefined
      ? `${ordinal(capping.percentile * 100)} percentile`
      : null,
  ].filter(Boolean);
  if (capping.applied_cap === null || capping.applied_cap === undefined)
    return `Capping: ${limits.join(", ")} (no values to cap)`;
  return `Capped per unit at ${valueFormat.format(capping.applied_cap)} (${limits.join(", ")})`;
}

function cupedText(cuped) {
  if (!cuped || !cuped.applied) return "CUPED not applied (no pre-exposure data)";
  return `CUPED applied (θ = ${Number(cuped.theta.toPrecision(3))})`;
}

/** How the metric is analysed: kind, guardrail, direction, window, capping, CUPED. */
function metricHeader(metric) {
  const facts = [
    el("span", {
      "data-testid": "metric-direction",
      "data-direction": metric.direction,
      text: metric.direction === "lower" ? "Lower is better" : "Higher is better",
    }),
    el("span", {
      "data-testid": "metric-window",
      text:
        metric.window_hours === null || metric.window_hours === undefined
          ? "Every conversion after the first exposure counts"
          : `Conversions within ${formatCount(metric.window_hours)} h of the first exposure`,
    }),
    el("span", {
      "data-testid": "metric-capping",
      "data-applied-cap": metric.capping?.applied_cap ?? null,
      text: cappingText(metric.capping),
    }),
    el("span", {
      "data-testid": "metric-cuped",
      "data-applied": metric.cuped?.applied ? "true" : "false",
      text: cupedText(metric.cuped),
    }),
    metric.defined
      ? null
      : el("span", { "data-testid": "metric-undefined", text: "Not defined in the tenant config: defaults apply" }),
  ].filter(Boolean);
  return el(
    "header",
    { class: "metric-head" },
    el(
      "h3",
      {},
      el("span", { "data-testid": "metric-name", text: metric.metric }),
      " ",
      el("span", { class: "tag", "data-testid": "metric-kind", text: metric.kind }),
      metric.guardrail
        ? el("span", { class: "tag guardrail", "data-testid": "metric-guardrail", text: "guardrail" })
        : null,
    ),
    el(
      "p",
      { class: "metric-facts", "data-testid": "metric-facts" },
      ...facts.flatMap((fact, i) => (i === 0 ? [fact] : [" · ", fact])),
    ),
  );
}

/** Names of the collector's multiple-comparison adjustments. */
const ADJUSTMENT_NAMES = { holm: "Holm", benjamini_hochberg: "Benjamini–Hochberg" };

/** The inference method in force and the multiple-comparison adjustment behind the verdicts. */
function methodNotice(results) {
  const adjustment = results.multiple_comparisons;
  const threshold = Number((1 - results.confidence).toPrecision(3));
  return el(
    "div",
    { class: `method method-${results.inference.method}` },
    el("p", {
      "data-testid": "inference-method",
      "data-method": results.inference.method,
      text: methodText(results.inference),
    }),
    adjustment && adjustment.comparisons > 0
      ? el("p", {
          class: "adjustment",
          "data-testid": "multiple-comparisons",
          text: `Verdicts use p-values ${ADJUSTMENT_NAMES[adjustment.method] ?? adjustment.method}-adjusted across ${formatCount(adjustment.comparisons)} comparison${adjustment.comparisons === 1 ? "" : "s"}: better or worse when the adjusted p < ${threshold}, else inconclusive.`,
        })
      : null,
  );
}

/** Units of the results document (the slice's units when a slice is applied). */
function resultsUnits(results) {
  return results.variants.reduce((sum, v) => sum + v.exposed_units, 0);
}

const isSliced = (slice) =>
  Boolean(slice) && Object.keys(slice).some((key) => slice[key] !== null && slice[key] !== undefined);

function renderExperiment(experiment, results, timeline, redraws) {
  const card = el("article", {
    class: "experiment",
    "data-testid": "experiment",
    "data-experiment": experiment.key,
    id: `experiment-${experiment.key}`,
  });
  const sliced = results !== null && isSliced(results.slice);
  const units = sliced
    ? `${formatCount(resultsUnits(results))} of ${formatCount(experiment.exposed_units)} units`
    : `${formatCount(experiment.exposed_units)} units`;
  card.append(
    el(
      "header",
      {},
      el("h2", { "data-testid": "experiment-name", text: experimentTitle(experiment) }),
      experiment.name || isHoldout(experiment) ? el("code", { class: "key", text: experiment.key }) : null,
      statusBadge(experiment, "experiment-status"),
      el("span", { class: "units", "data-testid": "experiment-units", text: units }),
    ),
  );
  if (isHoldout(experiment)) {
    card.append(
      el("p", {
        class: "holdout-note",
        "data-testid": "holdout-note",
        text: "Units the tenant holds out of every experiment (holdout) against everyone else (rest): what the experiments together changed.",
      }),
    );
  }
  if (experiment.exposed_units === 0) {
    card.append(el("p", { class: "empty", "data-testid": "no-exposures", text: "No exposures yet." }));
    return card;
  }
  if (results === null) {
    card.append(
      el("p", {
        class: "empty",
        "data-testid": "no-results",
        text: "Results not shown: the collector refused the view (see above).",
      }),
    );
    return card;
  }
  const breaches = guardrailBreaches(results);
  if (breaches.length > 0) card.append(guardrailWarning(results, breaches));
  card.append(srmNotice(results));
  card.append(methodNotice(results));
  if (resultsUnits(results) === 0) {
    card.append(
      el("p", { class: "empty", "data-testid": "no-exposures-in-slice", text: "No exposures in this slice." }),
    );
    return card;
  }
  if (results.metrics.length === 0) {
    card.append(el("p", { class: "empty", text: "No conversions yet." }));
    card.append(
      resultsTable(
        results,
        {
          metric: "",
          variants: results.variants.map((v) => ({
            variant: v.variant,
            converted_units: 0,
            conversion_rate: 0,
            conversion_vs_control: null,
          })),
        },
        "conversion",
      ),
    );
  }
  for (const metric of results.metrics) {
    const section = el("section", {
      class: "metric",
      "data-testid": "metric",
      "data-metric": metric.metric,
      "data-guardrail": metric.guardrail ? "true" : "false",
    });
    section.append(metricHeader(metric));
    const measures = ["conversion", ...(metric.variants.some((v) => v.mean_value !== null) ? ["value"] : [])];
    for (const measure of measures) {
      section.append(el("h4", { text: measure === "conversion" ? "Conversion rate" : "Value per unit" }));
      section.append(resultsTable(results, metric, measure));
      const forest = el("div", {
        class: "forest",
        "data-testid": "forest-plot",
        "data-metric": metric.metric,
        "data-measure": measure,
      });
      section.append(forest);
      redraws.push(() => renderForest(forest, results, metric, measure));
    }
    card.append(section);
  }
  const chart = el("div", { class: "timeline", "data-testid": "timeline-chart" });
  // The timeline counts every unit: say so when the tables above show a slice.
  const title = sliced ? "Exposures over time (all units, not the slice)" : "Exposures over time";
  card.append(el("section", {}, el("h3", { text: title }), chart));
  redraws.push(() => renderTimeline(chart, timeline));
  return card;
}

function overviewRow(experiment, results) {
  const mismatch = results && results.sample_ratio.mismatch === true;
  const worse = results ? guardrailBreaches(results).length > 0 : false;
  const jump = el("button", { type: "button", text: experimentTitle(experiment) });
  jump.addEventListener("click", () => byId(`experiment-${experiment.key}`).scrollIntoView({ behavior: "smooth" }));
  const checks = [
    mismatch ? el("span", { class: "badge srm", "data-testid": "summary-srm", text: "SRM" }) : null,
    worse
      ? el("span", { class: "badge guardrail", "data-testid": "summary-guardrail", text: "guardrail worse" })
      : null,
  ].filter(Boolean);
  return el(
    "tr",
    { "data-testid": "experiment-summary", "data-experiment": experiment.key },
    el("td", {}, jump),
    el("td", {}, statusBadge(experiment)),
    el("td", {
      class: "num",
      text:
        results && isSliced(results.slice)
          ? `${formatCount(resultsUnits(results))} of ${formatCount(experiment.exposed_units)}`
          : formatCount(experiment.exposed_units),
    }),
    el("td", {}, ...(checks.length > 0 ? checks : [results ? "ok" : "—"])),
  );
}

// ---- the view: inference method and slice ----

/** The view from the query string; a link reopens the view it was copied in. */
function readViewFromLocation() {
  const search = new URLSearchParams(location.search);
  const view = { inference: search.get("inference") || "sequential" };
  for (const name of VIEW_PARAMETERS.slice(1)) if (search.get(name)) view[name] = search.get(name);
  return view;
}

/** The results endpoint's query for `view`: the method always, filters when given. */
function viewQuery(view) {
  const query = new URLSearchParams();
  for (const name of VIEW_PARAMETERS) if (view[name] !== undefined && view[name] !== "") query.set(name, view[name]);
  return query.toString();
}

function viewForm() {
  return formById("view");
}

function readViewForm() {
  const form = viewForm();
  // index.html has every field read here; `inference` is a radio group (a RadioNodeList).
  const field = (name) =>
    /** @type {HTMLInputElement | HTMLSelectElement | RadioNodeList} */ (form.elements.namedItem(name));
  const view = { inference: field("inference").value || "sequential" };
  const text = {
    config_version: field("config_version").value.trim(),
    country: field("country").value.trim().toUpperCase(),
    device: field("device").value,
  };
  for (const [name, value] of Object.entries(text)) if (value) view[name] = value;
  // datetime-local values are the viewer's local time; the API takes Unix milliseconds.
  for (const name of ["from", "to"]) {
    const value = field(name).value;
    if (value) view[name] = String(new Date(value).getTime());
  }
  return view;
}

function fillViewForm(view) {
  const form = viewForm();
  // index.html has every field read here; `inference` is a radio group (a RadioNodeList).
  const field = (name) =>
    /** @type {HTMLInputElement | HTMLSelectElement | RadioNodeList} */ (form.elements.namedItem(name));
  field("inference").value = view.inference;
  field("config_version").value = view.config_version ?? "";
  field("country").value = view.country ?? "";
  field("device").value = view.device ?? "";
  for (const name of ["from", "to"]) {
    const ms = Number(view[name]);
    field(name).value = view[name] !== undefined && Number.isFinite(ms) ? toLocalInput(ms) : "";
  }
}

/** The view's filters in the shape of the results document's `slice`. */
function sliceOfView(view) {
  const slice = {};
  if (view.config_version) slice.config_version = view.config_version;
  if (view.country) slice.country = view.country;
  if (view.device) slice.device = view.device;
  if (view.from) slice.from_ms = Number(view.from);
  if (view.to) slice.to_ms = Number(view.to);
  return slice;
}

function describeSlice(slice) {
  const given = (key) => slice[key] !== null && slice[key] !== undefined;
  const parts = [];
  if (given("config_version")) parts.push(`config version ${slice.config_version}`);
  if (given("country")) parts.push(`country ${slice.country}`);
  if (given("device")) parts.push(`device ${slice.device}`);
  if (given("from_ms") || given("to_ms")) {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const range = [
      given("from_ms") ? `from ${formatLocalTime(slice.from_ms)}` : null,
      given("to_ms") ? `before ${formatLocalTime(slice.to_ms)}` : null,
    ];
    parts.push(`first exposed ${range.filter(Boolean).join(" ")} (${zone})`);
  }
  return parts.length > 0 ? `units with ${parts.join(", ")}` : "all units";
}

/** What the page shows: the slice the collector applied and the method it used. */
function showViewSummary(slice, method) {
  const summary = byId("view-summary");
  summary.textContent = `Showing ${describeSlice(slice)}; ${method === "fixed" ? "fixed-horizon" : "sequential"} inference.`;
  summary.dataset.sliced = isSliced(slice) ? "true" : "false";
}

/** The collector's message for a refused view, with the parameter it names marked invalid. */
function showViewError(error) {
  const form = viewForm();
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const box = byId("view-error");
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = `The collector refused this view: ${error.message}`;
  box.hidden = false;
  const parameter = /^([a-z_]+):/.exec(error.message)?.[1];
  const input = parameter && form.elements.namedItem(parameter);
  if (input instanceof HTMLInputElement || input instanceof HTMLSelectElement)
    input.setAttribute("aria-invalid", "true");
}

/** A 400 `bad_query` from the results endpoint: the view (not the session) is at fault. */
const isRefusedView = (error) => error instanceof ApiError && error.status === 400 && error.code === "bad_query";

// ---- loading ----

/** @type {{ tenant: string, token: string } | null} */
let credentialsInUse = null;
let appliedView = readViewFromLocation();
/** The tenant whose results the page shows, and its status line; a refused view leaves both. */
let tenantShown = null;
let statusShown = "";
/** Only the newest load may render: switching views quickly must not show an older answer. */
let loadGeneration = 0;

async function load(credentials, view) {
  const generation = ++loadGeneration;
  credentialsInUse = credentials;
  document.body.dataset.state = "loading";
  const form = formById("sign-in");
  form.tenant.value = credentials.tenant;
  form.token.value = credentials.token;
  viewForm().hidden = false;
  setStatus(`Loading ${credentials.tenant}…`);
  const query = viewQuery(view);
  try {
    const list = await api(credentials, "/experiments");
    let refusal = null;
    const loaded = await Promise.all(
      list.experiments.map(async (experiment) => {
        const path = `/experiments/${encodeURIComponent(experiment.key)}`;
        if (experiment.exposed_units === 0) return { experiment, results: null, timeline: null };
        const [results, timeline] = await Promise.all([
          api(credentials, `${path}/results?${query}`).catch((error) => {
            if (!isRefusedView(error)) throw error;
            refusal = error;
            return null;
          }),
          api(credentials, `${path}/timeline`),
        ]);
        return { experiment, results, timeline };
      }),
    );
    if (generation !== loadGeneration) return;
    showViewError(refusal);
    if (refusal && tenantShown === credentials.tenant) {
      // Keep the results of the last view that worked; the message says what to fix.
      setStatus(statusShown);
      document.body.dataset.state = "ready";
      return;
    }
    if (!refusal) {
      appliedView = view;
      const search = viewQuery({ ...view, inference: view.inference === "sequential" ? undefined : view.inference });
      history.replaceState(null, "", location.pathname + (search ? `?${search}` : ""));
    }
    const first = loaded.find(({ results }) => results !== null)?.results;
    showViewSummary(first ? first.slice : sliceOfView(view), first ? first.inference.method : view.inference);
    byId("overview-title").textContent = `Experiments of ${list.tenant}`;
    byId("overview-rows").replaceChildren(...loaded.map(({ experiment, results }) => overviewRow(experiment, results)));
    byId("overview").hidden = loaded.length === 0;
    const redraws = [];
    const container = byId("experiments");
    container.replaceChildren(
      ...loaded.map(({ experiment, results, timeline }) => renderExperiment(experiment, results, timeline, redraws)),
    );
    // Charts measure their container, so they are drawn once the cards are in the page.
    const resizers = redraws.map((draw) => draw());
    let pending = 0;
    window.onresize = () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(() => resizers.forEach((resize) => resize()));
    };
    const alarms = loaded.filter(({ results }) => results && results.sample_ratio.mismatch === true).length;
    const worse = loaded.filter(({ results }) => results && guardrailBreaches(results).length > 0).length;
    const notes = [
      alarms ? `${alarms} with a sample-ratio mismatch` : null,
      worse ? `${worse} with a guardrail that got worse` : null,
    ].filter(Boolean);
    statusShown =
      loaded.length === 0
        ? `No experiments for ${list.tenant} yet.`
        : `${loaded.length} experiment${loaded.length === 1 ? "" : "s"}${notes.map((note) => `, ${note}`).join("")}. Updated ${new Date().toLocaleTimeString("en-GB")}.`;
    setStatus(statusShown);
    tenantShown = refusal ? null : credentials.tenant;
    document.body.dataset.query = refusal ? "" : query;
    document.body.dataset.state = "ready";
  } catch (error) {
    if (generation !== loadGeneration) return;
    const message =
      error instanceof ApiError && error.status === 401
        ? `The read token is not valid for tenant “${credentials.tenant}”.`
        : `Could not load results: ${/** @type {Error} */ (error).message}`;
    byId("experiments").replaceChildren();
    byId("overview").hidden = true;
    tenantShown = null;
    setStatus(message, true);
    document.body.dataset.state = "error";
  }
}

// ---- managing the tenant's config: versions, lifecycle changes, history ----

/** Basis points as a percentage: 2000 → "20%", 1250 → "12.5%". */
function formatBasisPoints(basisPoints) {
  return `${Number((basisPoints / 100).toFixed(2))}%`;
}

/** Variants with their weights: [["control", 5000], ["green", 5000]] → "control 50% / green 50%". */
function formatWeights(variants) {
  return variants.map(([key, weight]) => `${key} ${formatBasisPoints(weight)}`).join(" / ");
}

/** A percentage typed into `input` in basis points, or null (and the browser says why) when it is
 * not a number. Ranges and sums are the collector's to check: its message says what is wrong. */
function basisPointsOf(input) {
  const percent = input.valueAsNumber;
  if (input.value.trim() === "" || !Number.isFinite(percent)) {
    input.setCustomValidity("Enter a percentage.");
    input.reportValidity();
    return null;
  }
  input.setCustomValidity("");
  return Math.round(percent * 100);
}

/**
 * Each change of one experiment in a ConfigDiff entry, as [kind, text, from, to]: status,
 * winner, coverage, weights (or variants, when their keys changed) and what else changed.
 * @returns {Array<[string, string, unknown, unknown]>}
 */
function experimentChanges(change) {
  /** @type {Array<[string, string, unknown, unknown]>} */
  const parts = [];
  if (change.status)
    parts.push(["status", `${change.status.from} → ${change.status.to}`, change.status.from, change.status.to]);
  if (change.winner) {
    const { from, to } = change.winner;
    parts.push(["winner", `winner ${from ?? "none"} → ${to ?? "none"}`, from, to]);
  }
  if (change.coverage) {
    const { from, to } = change.coverage;
    parts.push(["coverage", `coverage ${formatBasisPoints(from)} → ${formatBasisPoints(to)}`, from, to]);
  }
  if (change.variants) {
    const { from, to } = change.variants;
    const sameKeys = from.map(([key]) => key).join("\0") === to.map(([key]) => key).join("\0");
    parts.push([
      sameKeys ? "weights" : "variants",
      `${sameKeys ? "weights" : "variants"} ${formatWeights(from)} → ${formatWeights(to)}`,
      from,
      to,
    ]);
  }
  if (change.targeting_changed) parts.push(["targeting", "targeting changed", null, null]);
  if (change.actions_changed) parts.push(["actions", "variant actions changed", null, null]);
  if (change.other_changed) parts.push(["other", "other settings changed", null, null]);
  return parts;
}

/** Tenant-level changes of a ConfigDiff, in words. */
function tenantChanges(diff) {
  return [
    diff.added.length > 0 ? `added ${diff.added.join(", ")}` : null,
    diff.removed.length > 0 ? `removed ${diff.removed.join(", ")}` : null,
    diff.hostnames ? `hostnames ${diff.hostnames.from.join(", ")} → ${diff.hostnames.to.join(", ")}` : null,
    ...(diff.sections ?? []).map((section) => `${section} changed`),
  ].filter((part) => part !== null);
}

/** A diff in one line: "cta: coverage 20% → 50%; hero: running → paused". */
function diffSummary(diff) {
  if (!diff) return "first version";
  const parts = [
    ...diff.experiments.map(
      (change) =>
        `${change.key}: ${experimentChanges(change)
          .map(([, text]) => text)
          .join(", ")}`,
    ),
    ...tenantChanges(diff),
  ];
  return parts.length > 0 ? parts.join("; ") : "no changes";
}

/** A diff as a list: one item per changed experiment, each change marked for tests and styling. */
function diffList(diff) {
  if (!diff)
    return el("p", { class: "empty", "data-testid": "preview-diff", text: "A first version: nothing to compare." });
  const items = diff.experiments.map((change) => {
    const parts = experimentChanges(change).flatMap(([kind, text, from, to], i) => [
      i === 0 ? null : ", ",
      el("span", {
        "data-testid": `diff-${kind}`,
        "data-from": typeof from === "number" || typeof from === "string" ? from : null,
        "data-to": typeof to === "number" || typeof to === "string" ? to : null,
        text,
      }),
    ]);
    return el(
      "li",
      { "data-testid": "diff-experiment", "data-experiment": change.key },
      el("code", { text: change.key }),
      ": ",
      ...parts,
    );
  });
  for (const text of tenantChanges(diff)) items.push(el("li", { "data-testid": "diff-tenant", text }));
  if (items.length === 0) return el("p", { class: "empty", "data-testid": "preview-diff", text: "No changes." });
  return el("ul", { class: "diff", "data-testid": "preview-diff" }, ...items);
}

/** Only the newest load of the Manage section may render. */
let manageGeneration = 0;
/**
 * Why publishing each version failed, as the collector last answered a change or a retry (a
 * version's own `publish_error` is shown when it has one).
 * @type {Map<number, string>}
 */
const publishErrors = new Map();
/**
 * The change being previewed: its request, the Force and comment inputs, the dry run's answer or
 * the collector's refusal.
 * @type {{ change: { title: string, path: string, body: Record<string, unknown> }, force: boolean,
 *   comment: string, answer: any, refusal: { stage: string, error: ApiError } | null, busy: boolean } | null}
 */
let pendingChange = null;

/** An ApiError for anything a request threw (a network failure has no collector answer). */
function asApiError(error) {
  if (error instanceof ApiError) return error;
  return new ApiError(0, "network", /** @type {Error} */ (error).message);
}

function showManageMessage(message, isError = false) {
  const box = byId("manage-message");
  box.textContent = message;
  box.hidden = message === "";
  box.classList.toggle("error", isError);
}

/** The latest version: its number, whether the edge serves it, and a retry when it does not. */
function renderConfigState(current) {
  const publishError = current.publish_error ?? publishErrors.get(current.version) ?? null;
  const live = current.live
    ? el("span", {
        class: "badge live",
        "data-testid": "config-live",
        text: `live at the edge since ${formatLocalTime(current.published_at_ms)}`,
      })
    : el("span", { class: "badge pending", "data-testid": "config-live", text: "not yet live" });
  const retry = el("button", { type: "button", "data-testid": "retry-publish", text: "Retry publish" });
  retry.addEventListener("click", () => retryPublish(current.version));
  const state = byId("config-state");
  state.dataset.live = current.live ? "true" : "false";
  const parts = [
    el(
      "p",
      { class: "config-version" },
      "Version ",
      el("strong", { "data-testid": "config-version", text: String(current.version) }),
      " ",
      live,
    ),
    el("p", {
      class: "config-author",
      text: `Stored by ${current.author} at ${formatLocalTime(current.created_at_ms)}${current.comment ? `: ${current.comment}` : ""}`,
    }),
  ];
  if (!current.live) {
    parts.push(
      el(
        "div",
        { class: "publish-pending" },
        publishError
          ? el(
              "p",
              { class: "publish-error", "data-testid": "publish-error" },
              "Publishing failed: ",
              el("span", { "data-testid": "publish-error-message", text: publishError }),
            )
          : null,
        el("p", {
          "data-testid": "publish-attempts",
          "data-attempts": current.publish_attempts,
          text: `${formatCount(current.publish_attempts)} publish attempt${current.publish_attempts === 1 ? "" : "s"} so far; the collector keeps retrying.`,
        }),
        retry,
      ),
    );
  }
  state.replaceChildren(...parts);
}

/** Start, Pause, Stop (with a winner), Ramp and Weights for one experiment; each opens a preview. */
function experimentControls(experiment) {
  const key = experiment.key;
  const lifecycle = (title, body) => ({
    title,
    path: `/experiments/${encodeURIComponent(key)}/lifecycle`,
    body,
  });
  const button = (text, action, onClick) => {
    const node = el("button", { type: "button", "data-testid": `action-${action}`, text });
    node.addEventListener("click", onClick);
    return node;
  };
  const winner = /** @type {HTMLSelectElement} */ (
    el(
      "select",
      { "data-testid": "stop-winner" },
      el("option", { value: "", text: "no winner" }),
      ...experiment.variants.map((variant) => el("option", { value: variant.key, text: variant.key })),
    )
  );
  const percentInput = (testid, basisPoints, variant) =>
    /** @type {HTMLInputElement} */ (
      el("input", {
        type: "number",
        min: 0,
        max: 100,
        step: "any",
        inputmode: "decimal",
        value: basisPoints / 100,
        "data-testid": testid,
        "data-variant": variant,
      })
    );
  const coverage = percentInput("ramp-coverage", experiment.coverage ?? 10000);
  const weights = experiment.variants.map((variant) => percentInput("weight-input", variant.weight, variant.key));
  const stop = () => {
    const served = winner.value;
    const title = served ? `Stop ${key}, serving ${served} to everyone` : `Stop ${key} without a winner`;
    previewChange(lifecycle(title, served ? { action: "stop", winner: served } : { action: "stop" }));
  };
  const ramp = () => {
    const basisPoints = basisPointsOf(coverage);
    if (basisPoints === null) return;
    previewChange(
      lifecycle(`Ramp ${key} to ${formatBasisPoints(basisPoints)}`, { action: "ramp", coverage: basisPoints }),
    );
  };
  const reweight = () => {
    const values = weights.map(basisPointsOf);
    if (values.some((value) => value === null)) return;
    const pairs = experiment.variants.map((variant, i) => [variant.key, /** @type {number} */ (values[i])]);
    previewChange(
      lifecycle(`Set the weights of ${key} to ${formatWeights(pairs)}`, {
        action: "weights",
        weights: Object.fromEntries(pairs),
      }),
    );
  };
  return el(
    "div",
    { class: "controls", role: "group", "aria-label": `Change ${key}` },
    el(
      "div",
      { class: "control-group" },
      button("Start", "start", () => previewChange(lifecycle(`Start ${key}`, { action: "start" }))),
      button("Pause", "pause", () => previewChange(lifecycle(`Pause ${key}`, { action: "pause" }))),
    ),
    el("div", { class: "control-group" }, el("label", {}, "Winner ", winner), button("Stop", "stop", stop)),
    el("div", { class: "control-group" }, el("label", {}, "Coverage ", coverage, " %"), button("Ramp", "ramp", ramp)),
    el(
      "fieldset",
      { class: "control-group weights" },
      el("legend", { text: "Weights (%)" }),
      ...experiment.variants.map((variant, i) => el("label", {}, `${variant.key} `, weights[i])),
      button("Set weights", "weights", reweight),
    ),
  );
}

/** One experiment of the config: a row of what it is, and a row of what can be done with it. */
function configExperimentRows(experiment) {
  const coverage = experiment.coverage ?? 10000;
  const status = experiment.winner ? `${experiment.status} · serves ${experiment.winner}` : experiment.status;
  return [
    el(
      "tr",
      { class: "config-experiment", "data-testid": "config-experiment", "data-experiment": experiment.key },
      el("td", { "data-label": "Key" }, el("code", { "data-testid": "config-key", text: experiment.key })),
      el("td", { "data-label": "Name", "data-testid": "config-name", text: experiment.name ?? "—" }),
      el(
        "td",
        { "data-label": "Status" },
        el("span", {
          class: `badge ${experiment.status}`,
          "data-testid": "config-status",
          "data-status": experiment.status,
          "data-winner": experiment.winner ?? null,
          text: status,
        }),
      ),
      el("td", {
        class: "num",
        "data-label": "Coverage",
        "data-testid": "config-coverage",
        "data-basis-points": coverage,
        text: formatBasisPoints(coverage),
      }),
      el("td", {
        "data-label": "Variants",
        "data-testid": "config-variants",
        text: formatWeights(experiment.variants.map((variant) => [variant.key, variant.weight])),
      }),
    ),
    el(
      "tr",
      { class: "controls-row", "data-testid": "experiment-controls", "data-experiment": experiment.key },
      el("td", { colspan: 5 }, experimentControls(experiment)),
    ),
  ];
}

/** State of a version in the history: the latest is live or pending; an older one was live or never was. */
function historyState(version, latest) {
  if (version.version === latest) return version.live ? "live" : "pending";
  return version.live ? "was live" : "never live";
}

function historyRow(version, latest) {
  const state = historyState(version, latest);
  const rollback =
    version.version === latest
      ? null
      : el("button", { type: "button", "data-testid": "rollback", text: "Roll back to this version" });
  rollback?.addEventListener("click", () =>
    previewChange({
      title: `Roll back to version ${version.version}`,
      path: "/config/rollback",
      body: { to: version.version },
    }),
  );
  return el(
    "tr",
    { "data-testid": "history-row", "data-version": version.version },
    el("td", {
      class: "num",
      "data-label": "Version",
      "data-testid": "history-version",
      text: String(version.version),
    }),
    el("td", { "data-label": "Author", "data-testid": "history-author", text: version.author }),
    el("td", {
      class: "nowrap",
      "data-label": "Time",
      "data-testid": "history-time",
      text: formatLocalTime(version.created_at_ms),
    }),
    el("td", { "data-label": "Comment", "data-testid": "history-comment", text: version.comment }),
    el(
      "td",
      { "data-label": "State" },
      el("span", {
        class: `badge ${version.live ? "live" : "pending"}`,
        "data-testid": "history-state",
        "data-live": version.live ? "true" : "false",
        text: state,
      }),
    ),
    el(
      "td",
      { "data-label": "Changes", class: "history-changes" },
      el("span", { "data-testid": "history-summary", text: diffSummary(version.diff) }),
      version.moves_units
        ? el("span", { class: "badge moves", "data-testid": "history-moves", text: "moves units" })
        : null,
    ),
    el("td", { class: "history-action" }, rollback),
  );
}

function renderManage(current, history) {
  const section = byId("manage");
  section.dataset.version = String(current.version);
  byId("manage-title").textContent = `Manage experiments of ${current.tenant}`;
  renderConfigState(current);
  byId("config-experiments-title").textContent = `Experiments in version ${current.version}`;
  const experiments = current.config.experiments ?? [];
  byId("config-experiment-rows").replaceChildren(
    ...(experiments.length > 0
      ? experiments.flatMap(configExperimentRows)
      : [el("tr", {}, el("td", { colspan: 5, class: "empty", text: "This version has no experiments." }))]),
  );
  byId("history-rows").replaceChildren(...history.versions.map((version) => historyRow(version, current.version)));
}

/** Loads the latest config version and the history into the Manage section. */
async function loadManage(credentials) {
  const generation = ++manageGeneration;
  const section = byId("manage");
  section.hidden = false;
  byId("jump-manage").hidden = false;
  section.dataset.state = "loading";
  try {
    const [current, history] = await Promise.all([api(credentials, "/config"), api(credentials, "/config/history")]);
    if (generation !== manageGeneration) return;
    renderManage(current, history);
    section.dataset.state = "ready";
  } catch (caught) {
    if (generation !== manageGeneration) return;
    const error = asApiError(caught);
    byId("config-state").replaceChildren();
    byId("config-experiment-rows").replaceChildren();
    byId("history-rows").replaceChildren();
    // A token the tenant does not know: the status line above says so already.
    section.hidden = error.status === 401;
    byId("jump-manage").hidden = section.hidden;
    showManageMessage(error.message, true);
    section.dataset.state = "error";
  }
}

/** What a change sends: its request, with force and comment when given, as a dry run or for real. */
function changeBody(pending, dryRun) {
  const comment = pending.comment.trim();
  return {
    ...pending.change.body,
    ...(pending.force ? { force: true } : {}),
    ...(comment ? { comment } : {}),
    ...(dryRun ? { dry_run: true } : {}),
  };
}

function refusalNote(refusal) {
  const lead = refusal.stage === "confirm" ? "Not stored: " : "The collector refuses this change: ";
  return el(
    "p",
    {
      class: "preview-error",
      role: "alert",
      "data-testid": "preview-error",
      "data-stage": refusal.stage,
      "data-code": refusal.error.code,
      "data-status": refusal.error.status,
    },
    lead,
    el("span", { "data-testid": "preview-error-message", text: refusal.error.message }),
  );
}

function movesWarning(moves) {
  return el(
    "div",
    { class: "moves-warning", role: "alert", "data-testid": "moves-warning" },
    el("strong", { text: "⚠ This change moves units already assigned" }),
    el("ul", {}, ...moves.map((move) => el("li", { "data-testid": "moves-unit", text: move }))),
    el("p", { text: "Each line says what happens to them. Confirm applies it only with Force ticked." }),
  );
}

/** The preview panel for `pendingChange`: the dry run's version and diff, or the collector's refusal. */
function renderPreview() {
  const panel = byId("change-preview");
  const pending = pendingChange;
  if (!pending) {
    panel.hidden = true;
    panel.replaceChildren();
    delete panel.dataset.state;
    return;
  }
  const { answer, refusal } = pending;
  panel.hidden = false;
  panel.dataset.state = pending.busy ? "busy" : refusal ? "refused" : "previewed";
  const parts = [el("h3", { "data-testid": "preview-title", text: `Preview: ${pending.change.title}` })];
  if (pending.busy) parts.push(el("p", { class: "empty", text: "Asking the collector…" }));
  if (answer) {
    parts.push(
      el("p", {
        "data-testid": "preview-version",
        "data-version": answer.version,
        text: `Would store version ${answer.version} (the latest is ${answer.version - 1}).`,
      }),
      diffList(answer.diff),
    );
    if (answer.moves_units.length > 0) parts.push(movesWarning(answer.moves_units));
  }
  if (refusal) parts.push(refusalNote(refusal));
  const offerForce = pending.force || answer?.moves_units.length > 0 || refusal?.error.code === "moves_units";
  if (offerForce) {
    const force = /** @type {HTMLInputElement} */ (
      el("input", { type: "checkbox", "data-testid": "force-change", checked: pending.force })
    );
    force.addEventListener("change", () => {
      pending.force = force.checked;
      // A dry run refused for moving units is asked again with force, to show what it would do.
      if (force.checked && !answer) previewChange(pending.change, { force: true, comment: pending.comment });
    });
    parts.push(el("label", { class: "force" }, force, " Force: apply it although it moves units already assigned"));
    if (!answer) parts.push(el("p", { class: "empty", text: "Tick Force to preview what it would change." }));
  }
  const comment = /** @type {HTMLInputElement} */ (
    el("input", { maxlength: 1000, value: pending.comment, "data-testid": "change-comment", spellcheck: "true" })
  );
  comment.addEventListener("input", () => {
    pending.comment = comment.value;
  });
  const confirm = el("button", {
    type: "button",
    class: "confirm",
    "data-testid": "confirm-change",
    disabled: pending.busy || !answer,
    text: "Confirm",
  });
  confirm.addEventListener("click", () => confirmChange(pending));
  const cancel = el("button", { type: "button", "data-testid": "cancel-change", text: "Cancel" });
  cancel.addEventListener("click", () => {
    pendingChange = null;
    renderPreview();
  });
  parts.push(
    el("label", { class: "comment" }, "Comment (optional) ", comment),
    el("div", { class: "preview-actions" }, confirm, cancel),
  );
  panel.replaceChildren(...parts);
}

/** Asks the collector what `change` would do (a dry run) and shows it; nothing is stored. */
async function previewChange(change, { force = false, comment = "" } = {}) {
  if (!credentialsInUse) return;
  /** @type {NonNullable<typeof pendingChange>} */
  const pending = { change, force, comment, answer: null, refusal: null, busy: true };
  pendingChange = pending;
  renderPreview();
  byId("change-preview").scrollIntoView({ block: "nearest" });
  try {
    const answer = await api(credentialsInUse, change.path, { method: "POST", body: changeBody(pending, true) });
    if (pendingChange !== pending) return;
    pending.answer = answer;
  } catch (error) {
    if (pendingChange !== pending) return;
    pending.refusal = { stage: "preview", error: asApiError(error) };
  }
  pending.busy = false;
  renderPreview();
}

/** Sends the previewed change for real; on success reloads the page's config and results. */
async function confirmChange(pending) {
  if (!credentialsInUse || pending.busy) return;
  const credentials = credentialsInUse;
  pending.busy = true;
  pending.refusal = null;
  renderPreview();
  let answer;
  try {
    answer = await api(credentials, pending.change.path, { method: "POST", body: changeBody(pending, false) });
  } catch (error) {
    if (pendingChange !== pending) return;
    pending.busy = false;
    pending.refusal = { stage: "confirm", error: asApiError(error) };
    renderPreview();
    return;
  }
  if (answer.publish_error) publishErrors.set(answer.version, answer.publish_error);
  if (pendingChange === pending) {
    pendingChange = null;
    renderPreview();
  }
  showManageMessage(
    `Stored version ${answer.version} (${pending.change.title})${answer.live ? "; it is live at the edge" : ""}.`,
  );
  // Results follow the config (names, statuses, expected splits): reload both.
  load(credentials, appliedView);
  await loadManage(credentials);
}

/** Asks the collector to publish the latest version now. */
async function retryPublish(version) {
  if (!credentialsInUse) return;
  const credentials = credentialsInUse;
  showManageMessage(`Publishing version ${version}…`);
  try {
    const answer = await api(credentials, "/config/publish", { method: "POST" });
    if (answer.publish_error) publishErrors.set(answer.version, answer.publish_error);
    showManageMessage(
      answer.live ? `Version ${answer.version} is live at the edge.` : `Version ${answer.version} is still not live.`,
    );
    await loadManage(credentials);
  } catch (error) {
    showManageMessage(asApiError(error).message, true);
  }
}

/** Loads the results and the Manage section for `credentials` (a sign-in). */
function signIn(credentials) {
  if (credentials.tenant !== credentialsInUse?.tenant || credentials.token !== credentialsInUse?.token) {
    publishErrors.clear();
    pendingChange = null;
    renderPreview();
    showManageMessage("");
  }
  load(credentials, appliedView);
  loadManage(credentials);
}

function start() {
  const form = formById("sign-in");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const credentials = { tenant: form.tenant.value.trim(), token: form.token.value.trim() };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
    signIn(credentials);
  });
  const view = viewForm();
  fillViewForm(appliedView);
  view.addEventListener("submit", (event) => {
    event.preventDefault();
    if (credentialsInUse) load(credentialsInUse, readViewForm());
  });
  // A method switch applies at once (with the slice as typed).
  for (const radio of view.querySelectorAll('input[name="inference"]'))
    radio.addEventListener("change", () => view.requestSubmit());
  byId("clear-slice").addEventListener("click", () => {
    fillViewForm({ inference: readViewForm().inference });
    view.requestSubmit();
  });
  // A link with new credentials pasted into an open tab.
  window.addEventListener("hashchange", () => {
    const credentials = /(^|[#&])token=/.test(location.hash) ? readCredentials() : null;
    if (credentials) signIn(credentials);
  });
  byId("jump-manage").addEventListener("click", () => byId("manage").scrollIntoView({ behavior: "smooth" }));
  const credentials = readCredentials();
  if (credentials) signIn(credentials);
}

start();
