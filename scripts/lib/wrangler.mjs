// The edge worker under `wrangler dev` (real workerd with local KV and queues), and the local KV
// it reads its tenants from.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { cohortBinary } from "./cohort.mjs";
import { freePort, request, waitForServer } from "./http.mjs";
import { ROOT } from "./paths.mjs";
import { startProcess, terminateGroup } from "./processes.mjs";

/** The repository's pinned wrangler (package.json). */
export const WRANGLER = path.join(ROOT, "node_modules/.bin/wrangler");
/** wrangler's environment here: no usage metrics sent from a test or a benchmark. */
const WRANGLER_ENV = { WRANGLER_SEND_METRICS: "false" };

/**
 * Writes KV entries (key → value) into the local state `wrangler dev --persist-to stateDir` reads.
 * @param {string} stateDir
 * @param {Record<string, string>} entries
 */
export function putKv(stateDir, entries) {
  const file = path.join(stateDir, `bulk-${process.hrtime.bigint()}.json`);
  fs.writeFileSync(file, JSON.stringify(Object.entries(entries).map(([key, value]) => ({ key, value }))));
  execFileSync(WRANGLER, ["kv", "bulk", "put", file, "--binding", "CONFIG", "--local", "--persist-to", stateDir], {
    cwd: ROOT,
    env: { ...process.env, ...WRANGLER_ENV },
    stdio: "pipe",
  });
}

/**
 * A tenant config as the KV entries `cohort publish` writes for it, from `cohort kv-entries` (the
 * KV layout is defined once, in cohort_core::wire; the config must be valid).
 * @param {object} config
 * @returns {Record<string, string>}
 */
export function tenantEntries(config) {
  const out = execFileSync(cohortBinary(), ["kv-entries", "-"], { input: JSON.stringify(config), encoding: "utf8" });
  /** @type {{ key: string, value: string }[]} */
  const entries = JSON.parse(out);
  return Object.fromEntries(entries.map((entry) => [entry.key, entry.value]));
}

/** The delivery queues' batch timeout and retry delay under `startWorker` (seconds), test-sized. */
export const QUEUE_BATCH_TIMEOUT_SECONDS = 0.2;
export const QUEUE_RETRY_DELAY_SECONDS = 1;

/**
 * The delivery queues of the repository's wrangler.toml with test-sized waits (the batch timeout
 * and retry delay above): the `BEACONS` producer and its consumer (this same worker), and the
 * dead-letter queue with its producer binding (reasons) and its consumer (the log). wrangler dev
 * runs them in its local queue broker.
 */
function queueSections() {
  return [
    "[[queues.producers]]",
    'binding = "BEACONS"',
    'queue = "cohort-beacons"',
    "[[queues.producers]]",
    'binding = "DEAD_LETTERS"',
    'queue = "cohort-beacons-dlq"',
    "[[queues.consumers]]",
    'queue = "cohort-beacons"',
    "max_batch_size = 100",
    `max_batch_timeout = ${QUEUE_BATCH_TIMEOUT_SECONDS}`,
    "max_retries = 100",
    'dead_letter_queue = "cohort-beacons-dlq"',
    `retry_delay = ${QUEUE_RETRY_DELAY_SECONDS}`,
    "[[queues.consumers]]",
    'queue = "cohort-beacons-dlq"',
    "max_batch_size = 100",
    `max_batch_timeout = ${QUEUE_BATCH_TIMEOUT_SECONDS}`,
  ];
}

/**
 * @typedef {object} Worker
 * @property {number} port
 * @property {string[]} log wrangler's and the worker's output so far
 * @property {() => void} stop SIGTERM to wrangler's process group (workerd too); removes its config
 */

/**
 * Starts the built worker (build/ from scripts/build-worker.sh) in `wrangler dev`, with a config
 * of its own so no build runs here, on `port` or a free one. Resolves once it answers (within
 * 90 s). `queues: false` leaves the delivery queues out (beacons then go straight to the collector).
 * `trackLimits` are the track endpoint's rate limits per minute (wrangler.toml's limiters, with
 * limits high enough by default that only a test about them meets them).
 * @param {{ stateDir: string, vars: Record<string, string>, port?: number, queues?: object | false,
 *   trackLimits?: { unit: number, ip: number } }} options
 * @returns {Promise<Worker>}
 */
export async function startWorker({
  stateDir,
  vars,
  port: requestedPort,
  queues = {},
  trackLimits = { unit: 10_000, ip: 100_000 },
}) {
  const port = requestedPort ?? (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-edge-worker-"));
  const config = [
    'name = "cohort-edge-test"',
    `main = "${path.join(ROOT, "src/entry.mjs")}"`,
    'compatibility_date = "2026-04-01"',
    "[[kv_namespaces]]",
    'binding = "CONFIG"',
    'id = "cohort-config"',
    ...(queues ? queueSections() : []),
    ...[
      ["TRACK_UNIT_LIMITER", 1001, trackLimits.unit],
      ["TRACK_IP_LIMITER", 1002, trackLimits.ip],
    ].flatMap(([name, namespace, limit]) => [
      "[[ratelimits]]",
      `name = "${name}"`,
      `namespace_id = "${namespace}"`,
      `simple = { limit = ${limit}, period = 60 }`,
    ]),
  ].join("\n");
  fs.writeFileSync(path.join(dir, "wrangler.toml"), config);
  const args = [
    "dev",
    "--config",
    path.join(dir, "wrangler.toml"),
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--persist-to",
    stateDir,
    "--inspector-port",
    String(await freePort()),
  ];
  for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
  const wrangler = startProcess(WRANGLER, args, { env: WRANGLER_ENV });
  // The whole group even when wrangler itself has ended: workerd may outlive it.
  const stop = () => {
    if (wrangler.child.pid !== undefined) terminateGroup(wrangler.child.pid);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const started = await waitForServer({
    child: wrangler.child,
    probe: () => request({ port, host: "nobody.test", path: "/" }),
    timeoutMs: 90_000,
    intervalMs: 250,
  });
  if ("ready" in started) return { port, log: wrangler.log, stop };
  if ("exited" in started) throw new Error(`wrangler dev exited:\n${wrangler.log.join("")}`);
  stop();
  throw new Error(`wrangler dev did not answer within 90 s:\n${wrangler.log.join("")}`);
}
