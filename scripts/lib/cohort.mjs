// The cohort binaries (`cargo build -p cohort-cli -p cohort-loadgen`): the collector on loopback,
// its results API, read tokens and `cohort-loadgen`; and the sticky cookie the edge worker sets.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import { request, waitForServer } from "./http.mjs";
import { ROOT } from "./paths.mjs";
import { startProcess } from "./processes.mjs";
import { sleep } from "./wait.mjs";

/**
 * A binary of the current build (debug, shared with the tests): `cohort` or `cohort-loadgen`.
 * @param {"cohort" | "cohort-loadgen"} name
 */
export function cohortBinary(name = "cohort") {
  const target = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target");
  const binary = path.join(target, "debug", name);
  const crate = name === "cohort" ? "cohort-cli" : name;
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run \`cargo build -p ${crate}\` first`);
  return binary;
}

/**
 * GET on loopback (a browser's User-Agent, as `request` sends); resolves with status, headers and body.
 * @param {number} port
 * @param {string} requestPath
 * @param {import("node:http").OutgoingHttpHeaders} [headers]
 */
const get = (port, requestPath, headers = {}) => request({ port, host: "127.0.0.1", path: requestPath, headers });

/** @typedef {import("./processes.mjs").StartedProcess & { port: number, url: string }} Collector */

/**
 * Starts the real `cohort collector` on 127.0.0.1:`port` with SQLite at `database` and the extra
 * `args`; resolves once /healthz answers (within 30 s; rejects with its log if it exits first).
 * Used by the demo and by every suite that needs a real collector.
 * @param {{ port: number, database: string, secret: string, args?: string[] }} options
 * @returns {Promise<Collector>}
 */
export async function startCohortCollector({ port, database, secret, args = [] }) {
  const command = ["collector", "--listen", `127.0.0.1:${port}`, "--database", `sqlite://${database}`, ...args];
  const collector = startProcess(cohortBinary(), command, { env: { COHORT_SECRET: secret, RUST_LOG: "warn" } });
  const url = `http://127.0.0.1:${port}`;
  const started = await waitForServer({
    child: collector.child,
    probe: async () => ((await get(port, "/healthz")).status === 200 ? true : undefined),
    timeoutMs: 30_000,
    intervalMs: 100,
  });
  if ("ready" in started) return { ...collector, port, url };
  if ("exited" in started) {
    const { code } = await collector.exited;
    throw new Error(`cohort collector exited with ${code}:\n${collector.log.join("")}`);
  }
  await collector.stop();
  throw new Error(`cohort collector did not answer /healthz within 30 s:\n${collector.log.join("")}`);
}

/**
 * The tenant's results read token (`cohort token`).
 * @param {string} tenant
 * @param {string} secret
 */
export function readToken(tenant, secret) {
  return execFileSync(cohortBinary(), ["token", "--tenant", tenant], { env: { ...process.env, COHORT_SECRET: secret } })
    .toString()
    .trim();
}

/**
 * Results of one experiment from the collector's API, read with the tenant's `token`.
 * @param {{ port: number }} collector
 * @param {string} tenant
 * @param {string} experiment
 * @param {string} token
 */
export async function results(collector, tenant, experiment, token, query = "") {
  const answer = await get(collector.port, `/v1/tenants/${tenant}/experiments/${experiment}/results${query}`, {
    authorization: `Bearer ${token}`,
  });
  if (answer.status !== 200) throw new Error(`results of ${tenant}/${experiment}: ${answer.status} ${answer.body}`);
  return JSON.parse(answer.body);
}

/**
 * Runs `cohort-loadgen --json` against the edge; resolves with its summary and exit code.
 * Progress goes to stderr when `progress` is set.
 * @param {number} edgePort
 * @param {string[]} args
 * @returns {Promise<{ code: number | null, summary: any }>} `any`: loadgen's JSON, read field by field by the caller
 */
export async function loadgen(edgePort, args, { progress = false } = {}) {
  const run = startProcess(cohortBinary("cohort-loadgen"), [
    "--edge",
    `http://127.0.0.1:${edgePort}`,
    "--json",
    ...args,
  ]);
  if (progress) run.child.stderr?.on("data", (chunk) => process.stderr.write(chunk));
  const { code } = await run.exited;
  let summary;
  try {
    summary = JSON.parse(run.stdout.join(""));
  } catch {
    throw new Error(`cohort-loadgen ${args.join(" ")} exited ${code} without a summary:\n${run.log.join("")}`);
  }
  return { code, summary };
}

/**
 * Waits until the collector holds what loadgen counted, for every experiment it saw: one exposed
 * unit per assigned visitor and one converted unit per converting visitor, per variant (beacons
 * arrive after the responses); with loadgen's `--config`, the tenant holdout's records (`_holdout`)
 * too, one per visitor. Resolves with the last results per experiment.
 * @param {{ port: number }} collector
 * @param {string} tenant
 * @param {{ metric: string, experiments: Record<string, Record<string, { visitors: number, conversions: number }>> }} summary
 *   loadgen's summary
 * @param {string} secret
 * @returns {Promise<Record<string, any>>} experiment → its results document (`any`: the API's JSON)
 */
export async function waitForCollector(collector, tenant, summary, secret, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  /** @type {Record<string, any>} `any`: the results API's JSON */
  const last = {};
  const token = readToken(tenant, secret);
  // Only running experiments log exposures; a stopped one serves its winner without counting. The
  // holdout (`_holdout`) lists as running when the tenant's config has one.
  const listing = await get(collector.port, `/v1/tenants/${tenant}/experiments`, { authorization: `Bearer ${token}` });
  if (listing.status !== 200) throw new Error(`experiments of ${tenant}: ${listing.status} ${listing.body}`);
  /** @type {{ key: string, status: string }[]} */
  const experiments = JSON.parse(listing.body).experiments;
  const running = new Set(experiments.filter((e) => e.status === "running").map((e) => e.key));
  const expected = Object.entries(summary.experiments).filter(([experiment]) => running.has(experiment));
  for (;;) {
    let complete = true;
    for (const [experiment, variants] of expected) {
      const doc = await results(collector, tenant, experiment, token);
      last[experiment] = doc;
      /** @type {Record<string, number>} */
      const units = Object.fromEntries(doc.variants.map((v) => [v.variant, v.exposed_units]));
      const metric = doc.metrics.find((m) => m.metric === summary.metric);
      /** @type {Record<string, number>} */
      const converted = Object.fromEntries((metric?.variants ?? []).map((v) => [v.variant, v.converted_units]));
      for (const [variant, seen] of Object.entries(variants)) {
        if (units[variant] !== seen.visitors || (converted[variant] ?? 0) !== seen.conversions) complete = false;
      }
    }
    if (complete) return last;
    if (Date.now() > deadline) {
      throw new Error(
        `the collector did not receive every exposure and conversion within ${timeoutMs / 1000} s: ${JSON.stringify(last)}`,
      );
    }
    await sleep(500);
  }
}

/**
 * The sticky cookie from a response, ready to send back (`name=value`).
 * @param {{ headers: import("node:http").IncomingHttpHeaders }} response
 */
export function stickyCookie(response) {
  const cookies = response.headers["set-cookie"] ?? [];
  const cookie = cookies.find((c) => c.startsWith("__Host-cohort=") || c.startsWith("cohort="));
  return cookie?.split(";")[0];
}
