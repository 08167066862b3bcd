// The whole pipeline on this machine: the demo origin (www/), the collector on SQLite with the
// dashboard, the edge worker in `wrangler dev` with the example tenants published to its local
// KV, and `cohort loadgen` visitors. `make demo` runs it (main below); tests/pipeline/ drives the
// same functions on free ports.
//
// Needs, built beforehand (scripts/demo.sh does it): the cohort binary (cargo build -p cohort-cli),
// the worker (scripts/build-worker.sh) and the dashboard's vendored files (scripts/build-dashboard.sh).
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

import { ROOT, freePort, request, sleep, startWorker } from "../tests/edge/harness.mjs";
import { startDemoOrigin } from "../www/origin.mjs";

export const TENANT_CONFIGS = ["examples/tenants/shop.json", "examples/tenants/news.json"].map((f) => path.join(ROOT, f));
export const [SHOP_CONFIG, NEWS_CONFIG] = TENANT_CONFIGS;

/** The cohort binary of the current build (debug, shared with the tests). */
export function cohortBinary() {
  const target = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target");
  const binary = path.join(target, "debug", "cohort");
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run \`cargo build -p cohort-cli\` first`);
  return binary;
}

/** A child process in its own process group, its output kept; stop() ends the group by its id. */
function startProcess(command, args, { env = {} } = {}) {
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  const stdout = [];
  child.stdout.on("data", (chunk) => stdout.push(chunk.toString()));
  for (const stream of [child.stdout, child.stderr]) stream.on("data", (chunk) => log.push(chunk.toString()));
  // "close" comes after the exit and after its output is drained: the log is complete then.
  const exited = new Promise((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
  /** SIGTERM to the process group; resolves with how the process ended. */
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
    }
    return exited;
  };
  return { child, log, stdout, exited, stop };
}

/** GET on loopback (the edge suite's `request`); resolves with status, headers and body. */
const get = (port, requestPath, headers = {}) => request({ port, host: "127.0.0.1", path: requestPath, headers });

/**
 * Starts the real `cohort collector` on 127.0.0.1:`port` with SQLite at `database` and the extra
 * `args`; resolves once /healthz answers (rejects with its log if it exits first). Used by the
 * demo and by every suite that needs a real collector.
 */
export async function startCohortCollector({ port, database, secret, args = [] }) {
  const command = ["collector", "--listen", `127.0.0.1:${port}`, "--database", `sqlite://${database}`, ...args];
  const collector = startProcess(cohortBinary(), command, { env: { COHORT_SECRET: secret, RUST_LOG: "warn" } });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (collector.child.exitCode !== null) {
      const { code } = await collector.exited;
      throw new Error(`cohort collector exited with ${code}:\n${collector.log.join("")}`);
    }
    try {
      if ((await get(port, "/healthz")).status === 200) return { ...collector, port, url };
    } catch {}
    await sleep(100);
  }
  await collector.stop();
  throw new Error(`cohort collector did not answer /healthz within 30 s:\n${collector.log.join("")}`);
}

/** The tenant's results read token (`cohort token`). */
export function readToken(tenant, secret) {
  return execFileSync(cohortBinary(), ["token", "--tenant", tenant], { env: { ...process.env, COHORT_SECRET: secret } })
    .toString()
    .trim();
}

/** Results of one experiment from the collector's API, read with the tenant's `token`. */
export async function results(collector, tenant, experiment, token, query = "") {
  const answer = await get(collector.port, `/v1/tenants/${tenant}/experiments/${experiment}/results${query}`, {
    authorization: `Bearer ${token}`,
  });
  if (answer.status !== 200) throw new Error(`results of ${tenant}/${experiment}: ${answer.status} ${answer.body}`);
  return JSON.parse(answer.body);
}

/** Where the demo's fixed ports can be changed. */
const PORT_VARIABLES = { edge: "COHORT_DEMO_EDGE_PORT", collector: "COHORT_DEMO_COLLECTOR_PORT", origin: "COHORT_DEMO_ORIGIN_PORT" };

/** Fails with a clear message when a fixed port is taken (the demo's well-known ports). */
async function ensureFree(port, what) {
  await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", () =>
      reject(new Error(`port ${port} (${what}) is in use; set ${PORT_VARIABLES[what]} to use another`)),
    );
    server.listen(port, "127.0.0.1", () => server.close(resolve));
  });
}


/**
 * Starts origin, collector and edge; publishes the example tenants to the edge's local KV with
 * `cohort publish`. Ports left out are chosen free. Resolves with the parts and stop().
 */
export async function startPipeline({ stateDir, secret, ports = {} }) {
  fs.mkdirSync(stateDir, { recursive: true });
  for (const [what, port] of Object.entries(ports)) if (port) await ensureFree(port, what);
  const started = [];
  const stop = async () => {
    for (const part of started.reverse()) await part.stop();
  };
  try {
    const origin = await startDemoOrigin({ port: ports.origin ?? 0 });
    started.push({ stop: origin.close });
    const collector = await startCohortCollector({
      port: ports.collector ?? (await freePort()),
      database: path.join(stateDir, "cohort.db"),
      secret,
      args: [
        ...TENANT_CONFIGS.flatMap((config) => ["--tenant-config", config]),
        "--dashboard-dir",
        path.join(ROOT, "www/dashboard"),
      ],
    });
    started.push(collector);
    execFileSync(cohortBinary(), ["publish", "--local", "--persist-to", stateDir, ...TENANT_CONFIGS], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const edge = await startWorker({
      stateDir,
      port: ports.edge,
      vars: {
        COHORT_SECRET: secret,
        COLLECTOR_URL: collector.url,
        ORIGIN_OVERRIDE: `http://127.0.0.1:${origin.port}`,
      },
    });
    started.push({ stop: async () => edge.stop() });
    return { origin, collector, edge, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Runs `cohort loadgen --json` against the edge; resolves with its summary and exit code.
 * Progress goes to stderr when `progress` is set.
 */
export async function loadgen(edgePort, args, { progress = false } = {}) {
  const run = startProcess(cohortBinary(), ["loadgen", "--edge", `http://127.0.0.1:${edgePort}`, "--json", ...args]);
  if (progress) run.child.stderr.on("data", (chunk) => process.stderr.write(chunk));
  const { code } = await run.exited;
  let summary;
  try {
    summary = JSON.parse(run.stdout.join(""));
  } catch {
    throw new Error(`cohort loadgen ${args.join(" ")} exited ${code} without a summary:\n${run.log.join("")}`);
  }
  return { code, summary };
}

/**
 * Waits until the collector holds what loadgen counted, for every experiment it saw: one exposed
 * unit per assigned visitor and one converted unit per converting visitor, per variant (beacons
 * arrive after the responses); with loadgen's `--config`, the tenant holdout's records (`_holdout`)
 * too, one per visitor. Resolves with the last results per experiment.
 */
export async function waitForCollector(collector, tenant, summary, secret, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  const last = {};
  const token = readToken(tenant, secret);
  // Only running experiments log exposures; a stopped one serves its winner without counting. The
  // holdout (`_holdout`) lists as running when the tenant's config has one.
  const listing = await get(collector.port, `/v1/tenants/${tenant}/experiments`, { authorization: `Bearer ${token}` });
  if (listing.status !== 200) throw new Error(`experiments of ${tenant}: ${listing.status} ${listing.body}`);
  const running = new Set(JSON.parse(listing.body).experiments.filter((e) => e.status === "running").map((e) => e.key));
  const expected = Object.entries(summary.experiments).filter(([experiment]) => running.has(experiment));
  for (;;) {
    let complete = true;
    for (const [experiment, variants] of expected) {
      const doc = await results(collector, tenant, experiment, token);
      last[experiment] = doc;
      const units = Object.fromEntries(doc.variants.map((v) => [v.variant, v.exposed_units]));
      const metric = doc.metrics.find((m) => m.metric === summary.metric);
      const converted = Object.fromEntries((metric?.variants ?? []).map((v) => [v.variant, v.converted_units]));
      for (const [variant, seen] of Object.entries(variants)) {
        if (units[variant] !== seen.visitors || (converted[variant] ?? 0) !== seen.conversions) complete = false;
      }
    }
    if (complete) return last;
    if (Date.now() > deadline) {
      throw new Error(`the collector did not receive every exposure and conversion within ${timeoutMs / 1000} s: ${JSON.stringify(last)}`);
    }
    await sleep(500);
  }
}

/** The traffic of the demo: shop visitors with a planted effect, news readers without one. */
export function demoTraffic(visitors) {
  return [
    {
      tenant: "shop",
      host: "shop.localhost",
      experiment: "hero-banner",
      args: ["--host", "shop.localhost", "--config", SHOP_CONFIG, "--page", "/", "--page", "/products/trail-shoes", "--metric", "purchase",
        "--conversion-rate", "0.10", "--effect", "hero-banner=free-shipping:1.5", "--value", "80",
        "--visitors", String(visitors)],
    },
    {
      tenant: "news",
      host: "news.localhost",
      experiment: "article-layout",
      args: ["--host", "news.localhost", "--config", NEWS_CONFIG, "--page", "/", "--page", "/politics/2026/11/budget-vote", "--metric",
        "subscribe", "--conversion-rate", "0.05", "--visitors", String(Math.ceil(visitors / 2)), "--seed", "2"],
    },
  ];
}

function describe(doc) {
  const metric = doc.metrics[0];
  const lines = [`  ${doc.tenant}/${doc.experiment}: ${doc.sample_ratio.mismatch ? "SAMPLE-RATIO MISMATCH" : "no sample-ratio mismatch"}, ${doc.inference.method} intervals`];
  for (const variant of doc.variants) {
    const figures = metric?.variants.find((m) => m.variant === variant.variant);
    const rate = figures ? `${(100 * figures.conversion_rate).toFixed(2)}% ${metric.metric}` : "no conversions";
    const comparison = figures?.conversion_vs_control;
    const lift = comparison?.relative_ci && comparison.p_value !== null
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
  if (!Number.isInteger(visitors) || visitors < 100) throw new Error(`COHORT_DEMO_VISITORS=${process.env.COHORT_DEMO_VISITORS}: expected a whole number ≥ 100`);
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
      demoTraffic(visitors).map(async (traffic) => ({ traffic, ...(await loadgen(ports.edge, traffic.args, { progress: true })) })),
    );
    for (const { traffic, code, summary } of runs) {
      if (code !== 0) throw new Error(`loadgen ${traffic.host} failed: ${JSON.stringify(summary.failures ?? summary)}`);
      console.error(`    ${traffic.host}: ${summary.visitors} visitors, ${summary.conversions} conversions, ` +
        `${summary.returning_visitors} returning visitors kept their variants, p50 ${summary.latency_ms.p50} ms`);
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
    console.error(`demo: ${error.message}`);
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
