// The demo: the whole pipeline on this machine (scripts/lib/pipeline.mjs: the demo origin, the
// collector on SQLite with the dashboard and the config API, the edge worker in `wrangler dev` with
// the example tenants the collector published) on fixed ports, `cohort-loadgen` visitors through
// it, then the results and the dashboard's address. While the shop's visitors run, an experiment is
// ramped through the config API; afterwards the history is shown and the ramp rolled back, each
// change timed until the edge serves it. `make demo` runs it (scripts/demo.sh builds what it needs
// first).
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import {
  adminToken,
  configApi,
  cookieConfigVersion,
  loadgen,
  readToken,
  results,
  stickyCookie,
  waitForCollector,
} from "./lib/cohort.mjs";
import { request } from "./lib/http.mjs";
import { ROOT } from "./lib/paths.mjs";
import { NEWS_CONFIG, SHOP_CONFIG, startPipeline } from "./lib/pipeline.mjs";
import { sleep } from "./lib/wait.mjs";

/**
 * How long the demo's edge keeps a tenant config before reading KV again (wrangler.toml: 60 s), so
 * a change made through the config API shows while the visitors run.
 */
const DEMO_CONFIG_TTL_SECONDS = 3;

/**
 * The change made while the shop's visitors run: product-gallery (shop.json: 20% of mobile
 * visitors on product pages) ramped to half. Raising coverage moves no assigned unit, and the
 * results the demo prints (hero-banner, the holdout) do not depend on it.
 */
const RAMP = { tenant: "shop", experiment: "product-gallery", coverage: 5000, afterMs: 1000 };

/** The label of the demo's admin token: the author of its config versions. */
const DEMO_AUTHOR = "demo";

/** The traffic of the demo: shop visitors with a planted effect, news readers without one. */
export function demoTraffic(visitors) {
  return [
    {
      tenant: "shop",
      host: "shop.localhost",
      experiment: "hero-banner",
      args: [
        "--host",
        "shop.localhost",
        "--config",
        SHOP_CONFIG,
        "--page",
        "/",
        "--page",
        "/products/trail-shoes",
        "--metric",
        "purchase",
        "--conversion-rate",
        "0.10",
        "--effect",
        "hero-banner=free-shipping:1.5",
        "--value",
        "80",
        "--visitors",
        String(visitors),
      ],
    },
    {
      tenant: "news",
      host: "news.localhost",
      experiment: "article-layout",
      args: [
        "--host",
        "news.localhost",
        "--config",
        NEWS_CONFIG,
        "--page",
        "/",
        "--page",
        "/politics/2026/11/budget-vote",
        "--metric",
        "subscribe",
        "--conversion-rate",
        "0.05",
        "--visitors",
        String(Math.ceil(visitors / 2)),
        "--seed",
        "2",
      ],
    },
  ];
}

function describe(doc) {
  const metric = doc.metrics[0];
  const lines = [
    `  ${doc.tenant}/${doc.experiment}: ${doc.sample_ratio.mismatch ? "SAMPLE-RATIO MISMATCH" : "no sample-ratio mismatch"}, ${doc.inference.method} intervals`,
  ];
  for (const variant of doc.variants) {
    const figures = metric?.variants.find((m) => m.variant === variant.variant);
    const rate = figures ? `${(100 * figures.conversion_rate).toFixed(2)}% ${metric.metric}` : "no conversions";
    const comparison = figures?.conversion_vs_control;
    const lift =
      comparison?.relative_ci && comparison.p_value !== null
        ? `, lift ${(100 * comparison.relative_lift).toFixed(1)}% [${(100 * comparison.relative_ci.low).toFixed(1)}%, ${(100 * comparison.relative_ci.high).toFixed(1)}%], p = ${comparison.p_value.toPrecision(3)}: ${comparison.verdict}`
        : "";
    lines.push(`    ${variant.variant.padEnd(20)} ${String(variant.exposed_units).padStart(6)} units, ${rate}${lift}`);
  }
  return lines.join("\n");
}

/** Basis points as a percentage. @param {number} bp */
const percent = (bp) => `${bp / 100}%`;
/** Milliseconds as seconds. @param {number} ms */
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/**
 * A version's diff (the config API's ConfigDiff) on one line.
 * @param {any} diff `any`: the API's JSON; absent for a tenant's first version
 */
function describeDiff(diff) {
  if (!diff) return "first version";
  /** @param {{ from: any, to: any }} change @param {(v: any) => string} [show] */
  const change = (change, show = String) => `${show(change.from)} → ${show(change.to)}`;
  const parts = [];
  if (diff.added.length) parts.push(`added ${diff.added.join(", ")}`);
  if (diff.removed.length) parts.push(`removed ${diff.removed.join(", ")}`);
  for (const experiment of diff.experiments) {
    const changes = [];
    if (experiment.status) changes.push(`status ${change(experiment.status)}`);
    if (experiment.winner) changes.push(`winner ${change(experiment.winner, (w) => w ?? "none")}`);
    if (experiment.coverage) changes.push(`coverage ${change(experiment.coverage, percent)}`);
    if (experiment.variants) {
      const weights = (/** @type {[string, number][]} */ pairs) => pairs.map(([, weight]) => weight).join("/");
      changes.push(`weights ${change(experiment.variants, weights)}`);
    }
    if (experiment.targeting_changed) changes.push("targeting");
    if (experiment.actions_changed) changes.push("actions");
    if (experiment.other_changed) changes.push("other fields");
    parts.push(`${experiment.key}: ${changes.join(", ")}`);
  }
  if (diff.hostnames) parts.push("hostnames");
  if (diff.sections?.length) parts.push(diff.sections.join(", "));
  return parts.join("; ") || "no change";
}

/**
 * Ramps RAMP's experiment through the config API once the visitors have run for a moment, then
 * waits until the edge serves the new version: a visitor's exposure carries the config version
 * that assigned it, so the first exposure under it at the collector says the edge served it.
 * Gives up once the visitors are done (`visitorsDone()`) and their last beacons are in.
 * @param {{ port: number }} collector
 * @param {string} secret
 * @param {() => boolean} visitorsDone
 */
async function rampWhileVisitorsRun(collector, secret, visitorsDone) {
  await sleep(RAMP.afterMs);
  const api = configApi(collector, adminToken(RAMP.tenant, secret, DEMO_AUTHOR));
  const before = (await api.getConfig(RAMP.tenant)).body.config.experiments.find(
    (/** @type {{ key: string }} */ e) => e.key === RAMP.experiment,
  );
  console.error(
    `==> ramping ${RAMP.tenant}/${RAMP.experiment} from ${percent(before.coverage)} to ${percent(RAMP.coverage)} ` +
      `through the config API while the visitors run`,
  );
  const sent = performance.now();
  const change = await api.lifecycle(RAMP.tenant, RAMP.experiment, {
    action: "ramp",
    coverage: RAMP.coverage,
    comment: `ramp ${RAMP.experiment} to ${percent(RAMP.coverage)} during the demo`,
  });
  const answered = performance.now();
  if (change.status !== 201 || !change.body.live)
    throw new Error(`ramp: ${change.status} ${JSON.stringify(change.body)}`);
  const token = readToken(RAMP.tenant, secret);
  const query = `?config_version=${change.body.version}`;
  let doneAt;
  for (;;) {
    // Every shop visitor outside the holdout is exposed to hero-banner on its first page.
    const doc = await results(collector, RAMP.tenant, "hero-banner", token, query);
    if (doc.variants.some((/** @type {{ exposed_units: number }} */ v) => v.exposed_units > 0)) {
      return { version: change.body.version, liveMs: answered - sent, servedMs: performance.now() - answered };
    }
    if (visitorsDone()) doneAt ??= performance.now();
    // Beacons reach the collector within a second or two of the last response.
    if (doneAt !== undefined && performance.now() - doneAt > 5000) {
      return { version: change.body.version, liveMs: answered - sent, servedMs: undefined };
    }
    await sleep(100);
  }
}

/**
 * Rolls the shop back to the version before the ramp through the config API and times it until the
 * edge serves it. The probe is one visitor on a page no experiment runs on (/search: a draft only),
 * which costs one holdout record and no exposure; asked again with its cookie, it is given a new
 * cookie exactly when the edge serves another config version.
 * @param {{ port: number }} collector
 * @param {number} edgePort
 * @param {string} secret
 * @param {number} to
 */
async function rollBack(collector, edgePort, secret, to) {
  const probePath = `/_cohort/assignments?path=${encodeURIComponent("/search")}`;
  const probe = await request({ port: edgePort, host: "shop.localhost", path: probePath });
  const cookie = stickyCookie(probe);
  if (!cookie) throw new Error(`the probe visitor got no sticky cookie: ${probe.status} ${probe.body}`);
  const api = configApi(collector, adminToken(RAMP.tenant, secret, DEMO_AUTHOR));
  const sent = performance.now();
  // Going back lowers the coverage again, which drops the units the ramp added: it needs force.
  const change = await api.rollback(RAMP.tenant, to, { force: true, comment: "undo the demo's ramp" });
  const answered = performance.now();
  if (change.status !== 201 || !change.body.live)
    throw new Error(`rollback: ${change.status} ${JSON.stringify(change.body)}`);
  const deadline = answered + DEMO_CONFIG_TTL_SECONDS * 1000 + 30_000;
  while (performance.now() < deadline) {
    const answer = await request({ port: edgePort, host: "shop.localhost", path: probePath, headers: { cookie } });
    const renewed = stickyCookie(answer);
    if (renewed && cookieConfigVersion(renewed) === change.body.version) {
      return { change: change.body, liveMs: answered - sent, servedMs: performance.now() - answered };
    }
    await sleep(100);
  }
  throw new Error(`the edge did not serve version ${change.body.version} within ${seconds(deadline - answered)}`);
}

async function main() {
  const ports = {
    edge: Number(process.env.COHORT_DEMO_EDGE_PORT ?? 8787),
    collector: Number(process.env.COHORT_DEMO_COLLECTOR_PORT ?? 8790),
    origin: Number(process.env.COHORT_DEMO_ORIGIN_PORT ?? 8791),
  };
  const visitors = Number(process.env.COHORT_DEMO_VISITORS ?? 4000);
  if (!Number.isInteger(visitors) || visitors < 100)
    throw new Error(`COHORT_DEMO_VISITORS=${process.env.COHORT_DEMO_VISITORS}: expected a whole number ≥ 100`);
  // A fresh state per run: local KV, the SQLite database and a new platform secret.
  const stateDir = path.join(ROOT, ".demo");
  fs.rmSync(stateDir, { recursive: true, force: true });
  const secret = randomBytes(32).toString("hex");
  console.error("==> starting the demo origin, the collector and the edge worker (wrangler dev)");
  const pipeline = await startPipeline({ stateDir, secret, ports, configTtlSeconds: DEMO_CONFIG_TTL_SECONDS });
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.error("\n==> stopping the edge, the collector and the origin");
    await pipeline.stop();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  try {
    console.error(`==> ${visitors} shop visitors and ${Math.ceil(visitors / 2)} news readers through the edge`);
    let shopDone = false;
    const visits = Promise.all(
      demoTraffic(visitors).map(async (traffic) => {
        const run = await loadgen(ports.edge, traffic.args, { progress: true });
        if (traffic.tenant === RAMP.tenant) shopDone = true;
        return { traffic, ...run };
      }),
    );
    const ramp = rampWhileVisitorsRun(pipeline.collector, secret, () => shopDone);
    const [runs, ramped] = await Promise.all([visits, ramp]);
    for (const { traffic, code, summary } of runs) {
      if (code !== 0) throw new Error(`loadgen ${traffic.host} failed: ${JSON.stringify(summary.failures ?? summary)}`);
      console.error(
        `    ${traffic.host}: ${summary.visitors} visitors, ${summary.conversions} conversions, ` +
          `${summary.returning_visitors} returning visitors kept their variants, p50 ${summary.latency_ms.p50} ms`,
      );
    }
    console.error("==> waiting until the collector holds every exposure and conversion");
    console.log("\nResults:");
    for (const { traffic, summary } of runs) {
      // A returning visitor can enter the ramped experiment after loadgen read its variants, so
      // the collector may count units there that loadgen did not: its count is not waited for.
      const counted =
        traffic.tenant === RAMP.tenant
          ? {
              ...summary,
              experiments: Object.fromEntries(
                Object.entries(summary.experiments).filter(([experiment]) => experiment !== RAMP.experiment),
              ),
            }
          : summary;
      const docs = await waitForCollector(pipeline.collector, traffic.tenant, counted, secret);
      console.log(describe(docs[traffic.experiment]));
    }

    console.log(`\nConfig API (${RAMP.tenant}; the demo's edge rereads configs every ${DEMO_CONFIG_TTL_SECONDS} s):`);
    console.log(
      `  ramp      v${ramped.version}: live in the edge's KV ${seconds(ramped.liveMs)} after the call; ` +
        (ramped.servedMs === undefined
          ? "the edge had not served it before the visitors finished"
          : `the edge served it ${seconds(ramped.servedMs)} later (first exposure under v${ramped.version})`),
    );
    const token = readToken(RAMP.tenant, secret);
    const history = await configApi(pipeline.collector, token).history(RAMP.tenant, 5);
    if (history.status !== 200) throw new Error(`history: ${history.status} ${JSON.stringify(history.body)}`);
    for (const [i, version] of history.body.versions.entries()) {
      console.log(
        `  ${i === 0 ? "history" : "".padEnd(7)}   v${version.version}  ${version.author.padEnd(9)}  ` +
          `${(version.comment || "(no comment)").padEnd(44)}  ${describeDiff(version.diff)}`,
      );
    }
    const back = await rollBack(pipeline.collector, ports.edge, secret, ramped.version - 1);
    console.log(
      `  rollback  v${back.change.version} = v${ramped.version - 1}'s content (forced: ${back.change.moves_units.join("; ")}): ` +
        `live ${seconds(back.liveMs)} after the call; the edge served it ${seconds(back.servedMs)} later`,
    );
    console.log(`
Dashboard:  ${pipeline.collector.url}/dashboard/#tenant=shop&token=${token}
            (news: #tenant=news&token=${readToken("news", secret)})
Sites:      http://shop.localhost:${ports.edge}/   http://news.localhost:${ports.edge}/politics/2026/11/budget-vote
Press Ctrl-C to stop everything.`);
  } catch (error) {
    console.error(`demo: ${/** @type {Error} */ (error).message}`);
    await pipeline.stop();
    process.exit(1);
  }
}

if (process.argv[1] === import.meta.filename) {
  main().catch((error) => {
    console.error(`demo: ${error.message}`);
    process.exit(1);
  });
}
