// The whole pipeline on this machine: the demo origin (www/), the collector on SQLite with the
// dashboard and the config API, and the edge worker in `wrangler dev`. The collector imports the
// example tenants as config versions and publishes them to the worker's local KV itself, as it
// publishes every later change made through its config API. The demo (scripts/pipeline.mjs) runs
// it on fixed ports; tests/pipeline/ and tests/edge/control-plane.test.mjs on free ones.
//
// Needs, built beforehand: the cohort binary (cargo build -p cohort-cli -p cohort-loadgen), the worker
// (scripts/build-worker.sh) and the dashboard's vendored files (scripts/build-dashboard.sh).
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

import { startDemoOrigin } from "../../www/origin.mjs";
import { startCohortCollector, waitForLiveConfigs } from "./cohort.mjs";
import { freePort } from "./http.mjs";
import { ROOT } from "./paths.mjs";
import { WRANGLER, startWorker } from "./wrangler.mjs";

export const TENANT_CONFIGS = ["examples/tenants/shop.json", "examples/tenants/news.json"].map((f) =>
  path.join(ROOT, f),
);
export const [SHOP_CONFIG, NEWS_CONFIG] = TENANT_CONFIGS;

/** Where the demo's fixed ports can be changed. */
const PORT_VARIABLES = {
  edge: "COHORT_DEMO_EDGE_PORT",
  collector: "COHORT_DEMO_COLLECTOR_PORT",
  origin: "COHORT_DEMO_ORIGIN_PORT",
};

/**
 * Fails with a clear message when a fixed port is taken (the demo's well-known ports).
 * @param {number} port
 * @param {keyof typeof PORT_VARIABLES} what
 */
async function ensureFree(port, what) {
  await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", () =>
      reject(new Error(`port ${port} (${what}) is in use; set ${PORT_VARIABLES[what]} to use another`)),
    );
    server.listen(port, "127.0.0.1", () => server.close(resolve));
  });
}

/** The example tenants' ids, in the order of TENANT_CONFIGS. */
export const TENANTS = ["shop", "news"];

/**
 * Starts origin, collector and edge. The collector stores the example tenants as config versions
 * and publishes them to the edge's local KV (`--kv-wrangler-config`, `--kv-persist-to stateDir`);
 * the edge starts once both are live (within 60 s). Ports left out are chosen free.
 * `configTtlSeconds` sets how long the edge keeps a config before reading KV again (the worker's
 * default when left out, as in wrangler.toml). Resolves with the parts and stop().
 * @param {{ stateDir: string, secret: string, ports?: { edge?: number, collector?: number, origin?: number },
 *   configTtlSeconds?: number }} options
 */
export async function startPipeline({ stateDir, secret, ports = {}, configTtlSeconds }) {
  fs.mkdirSync(stateDir, { recursive: true });
  for (const [what, port] of Object.entries(ports)) {
    if (port) await ensureFree(port, /** @type {keyof typeof PORT_VARIABLES} */ (what));
  }
  /** @type {{ stop: () => Promise<unknown> }[]} */
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
        "--kv-wrangler-config",
        path.join(ROOT, "wrangler.toml"),
        "--kv-persist-to",
        stateDir,
        "--wrangler",
        WRANGLER,
      ],
    });
    started.push(collector);
    // The collector publishes its imported versions on its first retry tick, right after start-up.
    await waitForLiveConfigs(collector, TENANTS, secret);
    const edge = await startWorker({
      stateDir,
      port: ports.edge,
      vars: {
        COHORT_SECRET: secret,
        COLLECTOR_URL: collector.url,
        ORIGIN_OVERRIDE: `http://127.0.0.1:${origin.port}`,
        ...(configTtlSeconds === undefined ? {} : { CONFIG_TTL_SECONDS: String(configTtlSeconds) }),
      },
    });
    started.push({ stop: async () => edge.stop() });
    return { origin, collector, edge, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
