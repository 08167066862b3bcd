// Cohort results dashboard: plain DOM, no framework. Reads the collector's results API with a
// tenant's read token, which arrives in the URL fragment (#tenant=shop&token=...; fragments are
// never sent to a server) or through the form, and is kept in sessionStorage only. The view (the
// inference method and a slice) lives in the query string, so a link reopens the same view.
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

function start() {
  const form = formById("sign-in");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const credentials = { tenant: form.tenant.value.trim(), token: form.token.value.trim() };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
    load(credentials, appliedView);
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
    if (/(^|[#&])token=/.test(location.hash)) load(readCredentials(), appliedView);
  });
  const credentials = readCredentials();
  if (credentials) load(credentials, appliedView);
}

start();
