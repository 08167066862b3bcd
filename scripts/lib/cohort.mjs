// The cohort binaries (`cargo build -p cohort-cli -p cohort-loadgen`): the collector on loopback,
// its results API and config API (the control plane), read and admin tokens and `cohort-loadgen`;
// and the sticky cookie the edge worker sets.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import { request, waitForServer } from "./http.mjs";
import { ROOT } from "./paths.mjs";
import { startProcess } from "./processes.mjs";
import { sleep } from "./wait.mjs";

/**
 * A binary of the current build (debug by default, shared with the tests): `cohort` or
 * `cohort-loadgen`.
 * @param {"cohort" | "cohort-loadgen"} name
 * @param {"debug" | "release"} profile
 */
export function cohortBinary(name = "cohort", profile = "debug") {
  const target = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target");
  const binary = path.join(target, profile, name);
  const crate = name === "cohort" ? "cohort-cli" : name;
  const flag = profile === "release" ? " --release" : "";
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run \`cargo build${flag} -p ${crate}\` first`);
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
 * `args`, from the `profile` build; resolves once /healthz answers (within 30 s; rejects with its
 * log if it exits first). Used by the demo and by every suite that needs a real collector.
 * @param {{ port: number, database: string, secret: string, args?: string[], profile?: "debug" | "release" }} options
 * @returns {Promise<Collector>}
 */
export async function startCohortCollector({ port, database, secret, args = [], profile = "debug" }) {
  const command = ["collector", "--listen", `127.0.0.1:${port}`, "--database", `sqlite://${database}`, ...args];
  const collector = startProcess(cohortBinary("cohort", profile), command, {
    env: { COHORT_SECRET: secret, RUST_LOG: "warn" },
  });
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
 * The tenant's results read token (`cohort token`): GET endpoints only.
 * @param {string} tenant
 * @param {string} secret
 */
export function readToken(tenant, secret) {
  return cohortToken(["--tenant", tenant], secret);
}

/**
 * An admin token of the tenant for the config API (`cohort token --admin`); `label` (a person or a
 * system) is recorded as the author of every version written with it.
 * @param {string} tenant
 * @param {string} secret
 * @param {string} label
 */
export function adminToken(tenant, secret, label) {
  return cohortToken(["--tenant", tenant, "--admin", label], secret);
}

/** @param {string[]} args @param {string} secret */
function cohortToken(args, secret) {
  return execFileSync(cohortBinary(), ["token", ...args], { env: { ...process.env, COHORT_SECRET: secret } })
    .toString()
    .trim();
}

/**
 * An answer of the collector's API: its status and its JSON body (the text when it is not JSON).
 * @typedef {{ status: number, body: any }} ApiAnswer `any`: the API's JSON, read field by field
 */

/**
 * A client of the collector's config API (the control plane) holding one bearer token: a read
 * token for the GET calls, an admin token for the writes. Every call resolves with the answer
 * whatever its status, so callers can check refusals as well as successes.
 * @param {{ port: number }} collector
 * @param {string} token
 */
export function configApi(collector, token) {
  /**
   * @param {string} method
   * @param {string} requestPath
   * @param {object} [body]
   * @returns {Promise<ApiAnswer>}
   */
  const call = async (method, requestPath, body) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const answer = await request({
      port: collector.port,
      host: "127.0.0.1",
      method,
      path: requestPath,
      headers: {
        authorization: `Bearer ${token}`,
        ...(payload === undefined ? {} : { "content-type": "application/json" }),
      },
      body: payload,
      // A write publishes to the edge's KV before it answers (wrangler's CLI for a local KV).
      timeoutMs: 120_000,
    });
    let parsed;
    try {
      parsed = JSON.parse(answer.body);
    } catch {
      parsed = answer.body;
    }
    return { status: answer.status, body: parsed };
  };
  const tenantPath = (/** @type {string} */ tenant) => `/v1/tenants/${encodeURIComponent(tenant)}`;
  return {
    /** The latest version with its document. @param {string} tenant */
    getConfig: (tenant) => call("GET", `${tenantPath(tenant)}/config`),
    /** One stored version with its document. @param {string} tenant @param {number} version */
    getVersion: (tenant, version) => call("GET", `${tenantPath(tenant)}/config/versions/${version}`),
    /** Stored versions, newest first, with their diffs. @param {string} tenant @param {number} [limit] */
    history: (tenant, limit) =>
      call("GET", `${tenantPath(tenant)}/config/history${limit === undefined ? "" : `?limit=${limit}`}`),
    /**
     * A whole new version: `config.version` must be the stored version + 1.
     * @param {string} tenant
     * @param {{ config: object, comment?: string, force?: boolean, dry_run?: boolean }} body
     */
    putConfig: (tenant, body) => call("PUT", `${tenantPath(tenant)}/config`, body),
    /**
     * Start, pause, stop, ramp or reweight one experiment, as a new version.
     * @param {string} tenant
     * @param {string} experiment
     * @param {{ action: "start" | "pause" | "stop" | "ramp" | "weights", winner?: string, coverage?: number,
     *   weights?: Record<string, number>, comment?: string, force?: boolean, dry_run?: boolean }} body
     */
    lifecycle: (tenant, experiment, body) =>
      call("POST", `${tenantPath(tenant)}/experiments/${encodeURIComponent(experiment)}/lifecycle`, body),
    /**
     * Version `to`'s content as a new version.
     * @param {string} tenant
     * @param {number} to
     * @param {{ comment?: string, force?: boolean, dry_run?: boolean }} [body]
     */
    rollback: (tenant, to, body = {}) => call("POST", `${tenantPath(tenant)}/config/rollback`, { to, ...body }),
    /** Publishes the latest version now if it is not live. @param {string} tenant */
    publish: (tenant) => call("POST", `${tenantPath(tenant)}/config/publish`),
  };
}

/**
 * Waits until the latest stored config of every one of `tenants` is live (the edge's KV accepted
 * it), read with each tenant's read token; fails after `timeoutMs` with the last answers.
 * @param {{ port: number }} collector
 * @param {string[]} tenants
 * @param {string} secret
 */
export async function waitForLiveConfigs(collector, tenants, secret, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  const clients = tenants.map((tenant) => ({ tenant, api: configApi(collector, readToken(tenant, secret)) }));
  for (;;) {
    const answers = await Promise.all(clients.map(({ tenant, api }) => api.getConfig(tenant)));
    if (answers.every((a) => a.status === 200 && a.body.live === true)) return answers.map((a) => a.body);
    if (Date.now() > deadline) {
      const states = answers.map((a, i) =>
        a.status === 200
          ? `${tenants[i]} v${a.body.version} live=${a.body.live} attempts=${a.body.publish_attempts} ${a.body.publish_error ?? ""}`
          : `${tenants[i]}: ${a.status} ${JSON.stringify(a.body)}`,
      );
      throw new Error(`the tenants' configs were not live within ${timeoutMs / 1000} s: ${states.join("; ")}`);
    }
    await sleep(250);
  }
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
 * The unit id and config version a sticky cookie (`name=value`) holds: the version is the one the
 * edge served when it set it. Reads format 1 of the cookie (crates/core/src/cookie.rs): format
 * byte, unit id (0 and 16 raw bytes, shown as 32 hex characters; or 1, a length and that many
 * bytes of text), then the version as a LEB128 varint. The MAC is not checked: only the edge needs
 * to trust the value.
 * @param {string} cookie
 * @returns {{ unit: string, version: number }}
 */
export function readStickyCookie(cookie) {
  const bytes = Buffer.from(cookie.slice(cookie.indexOf("=") + 1), "base64url");
  if (bytes[0] !== 1) throw new Error(`sticky cookie format ${bytes[0]}: only format 1 is read here`);
  const raw = bytes[1] === 0;
  const unit = raw ? bytes.subarray(2, 18).toString("hex") : bytes.subarray(3, 3 + bytes[2]).toString("utf8");
  let offset = raw ? 2 + 16 : 3 + bytes[2];
  let version = 0n;
  for (let shift = 0n; offset < bytes.length; shift += 7n) {
    const byte = bytes[offset++];
    version |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return { unit, version: Number(version) };
  }
  throw new Error("sticky cookie truncated inside its config version");
}

/**
 * The config version a sticky cookie (`name=value`) was written under (see `readStickyCookie`).
 * @param {string} cookie
 */
export function cookieConfigVersion(cookie) {
  return readStickyCookie(cookie).version;
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
