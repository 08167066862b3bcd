// The demo: the whole pipeline on this machine (scripts/lib/pipeline.mjs: the demo origin, the
// collector on SQLite with the dashboard, the edge worker in `wrangler dev` with the example
// tenants) on fixed ports, `cohort-loadgen` visitors through it, then the results and the
// dashboard's address. `make demo` runs it (scripts/demo.sh builds what it needs first).
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import { loadgen, readToken, waitForCollector } from "./lib/cohort.mjs";
import { ROOT } from "./lib/paths.mjs";
import { NEWS_CONFIG, SHOP_CONFIG, startPipeline } from "./lib/pipeline.mjs";

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
  const pipeline = await startPipeline({ stateDir, secret, ports });
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
    const runs = await Promise.all(
      demoTraffic(visitors).map(async (traffic) => ({
        traffic,
        ...(await loadgen(ports.edge, traffic.args, { progress: true })),
      })),
    );
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
      const docs = await waitForCollector(pipeline.collector, traffic.tenant, summary, secret);
      console.log(describe(docs[traffic.experiment]));
    }
    const token = readToken("shop", secret);
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
