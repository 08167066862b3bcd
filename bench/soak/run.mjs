// @ts-check
// The soak (`make soak`; `--quick` in `make test`): a long, mixed run through the real edge worker
// and its real delivery path, with faults injected while the load keeps going, ending in exact
// accounts against the load generator's own ground truth. docs/soak.md describes the run, what
// it checks, and what differs from production.
//
// Pieces, each stopped by process id at the end:
// - the worker's bundle (`wrangler deploy --dry-run`) in workerd through Miniflare's API: real
//   KV, the delivery queue with its consumer and dead-letter queue, the rate-limit bindings. Not
//   `wrangler dev`, whose proxy costs more CPU per request than the worker does.
// - the real collector (`cohort collector`, SQLite), behind a fault proxy (bench/soak/servers.mjs)
//   that also serves the tenants' origin.
// - this process: visitors of both example tenants (new and returning, pages with and without
//   edits, conversions, duplicate conversions, bots, prefetches), and the faults on a schedule.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { Miniflare } from "miniflare";

import { holdoutVariant } from "../../scripts/lib/bucketing.mjs";
import { readStickyCookie, startCohortCollector } from "../../scripts/lib/cohort.mjs";
import { BROWSER_UA, freePort, request } from "../../scripts/lib/http.mjs";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { startProcess } from "../../scripts/lib/processes.mjs";
import { sleep } from "../../scripts/lib/wait.mjs";
import { tenantEntries } from "../../scripts/lib/wrangler.mjs";
import { compareConversions, compareExposures } from "./accounts.mjs";

const HERE = path.dirname(new URL(import.meta.url).pathname);
const SECRET = "soak-platform-secret-0123456789abcdef0123";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

const { values: options } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    requests: { type: "string" },
    concurrency: { type: "string", default: "32" },
    seed: { type: "string", default: "1" },
    report: { type: "string" },
    release: { type: "boolean", default: false },
  },
});
const REQUESTS = Number(options.requests ?? (options.quick ? 20_000 : 1_000_000));
const CONCURRENCY = Number(options.concurrency);
if (!Number.isInteger(REQUESTS) || REQUESTS < 1000)
  fail(`--requests must be a whole number ≥ 1000, not ${options.requests}`);
if (!Number.isInteger(CONCURRENCY) || CONCURRENCY < 1 || CONCURRENCY > 256)
  fail(`--concurrency must be a whole number from 1 to 256, not ${options.concurrency}`);

// Deployment settings scaled to the run: configs refresh every 5 s instead of every minute, and
// deliveries retry after 1 s instead of 10 s (docs/soak.md, "What differs from production").
const CONFIG_TTL_SECONDS = 5;
// The faults, each starting when this share of the requests has been sent, lasting this long.
const FAULTS = {
  firstKill: { at: 0.15 },
  publish: { at: 0.3 },
  kvOutage: { at: 0.42, seconds: options.quick ? 8 : 60 },
  secondKill: { at: 0.62 },
  collectorErrors: { at: 0.72, seconds: options.quick ? 10 : 90 },
};
// The collector stays down this long after each kill -9.
const KILLED_SECONDS = options.quick ? 2 : 5;

/** @param {string} message @returns {never} */
function fail(message) {
  console.error(`soak: ${message}`);
  process.exit(1);
}

// ------------------------------------------------------------------------------------- tenants
const SHOP = JSON.parse(fs.readFileSync(path.join(ROOT, "examples/tenants/shop.json"), "utf8"));
const NEWS = JSON.parse(fs.readFileSync(path.join(ROOT, "examples/tenants/news.json"), "utf8"));
// The version published mid-run: one more experiment on every news page, nothing else changed,
// so its exposures can only carry the new version.
const SKEW_EXPERIMENT = "soak-layout";
const NEWS_NEXT = {
  ...NEWS,
  version: NEWS.version + 1,
  experiments: [
    ...NEWS.experiments,
    {
      key: SKEW_EXPERIMENT,
      status: "running",
      variants: [
        { key: "control", weight: 5000 },
        {
          key: "compact",
          weight: 5000,
          actions: [{ type: "set_attribute", selector: "body", name: "data-layout", value: "compact" }],
        },
      ],
    },
  ],
};

/** Pages per tenant: some where experiments edit the page, some where none applies. */
const PAGES = {
  shop: ["/", "/", "/products/oak-side-table", "/checkout/payment", "/about", "/search?q=oak"],
  news: ["/", "/politics/budget-talks", "/world/2026/12/storm-warning", "/business/markets", "/about"],
};
const METRIC = { shop: "purchase", news: "subscribe" };
/** Stopped experiments' winners, per tenant: served to everyone, never an exposure. */
const WINNERS = {
  shop: winners(SHOP),
  news: winners(NEWS),
};
/** @param {{ experiments: { key: string, status: string, winner?: string }[] }} config */
function winners(config) {
  return new Map(
    config.experiments.filter((e) => e.status === "stopped" && e.winner).map((e) => [e.key, String(e.winner)]),
  );
}
// Hosts the load uses; `shop.example` is first visited when KV is down (a cold host read).
const HOST = { shop: "shop.localhost", news: "news.localhost" };
const COLD_HOST = "shop.example";

// ------------------------------------------------------------------------------- random numbers
let seedState = Number(options.seed) >>> 0 || 1;
/** mulberry32: the run's choices are reproducible apart from the unit ids the edge mints. */
function random() {
  seedState = (seedState + 0x6d2b79f5) >>> 0;
  let t = seedState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
/** @template T @param {T[]} list @returns {T} */
const pick = (list) => list[Math.floor(random() * list.length)];

// ---------------------------------------------------------------------------------------- HTTP
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });
let edgePort = 0;

/**
 * One request to the edge over the run's keep-alive pool; resolves with its status and headers
 * once the body is read (and dropped).
 * @param {{ host: string, path: string, method?: string, headers?: http.OutgoingHttpHeaders, body?: string }} r
 */
const send = (r) => request({ ...r, port: edgePort, agent, keepBody: false, timeoutMs: 30_000 });

// ------------------------------------------------------------------------- ground truth, counts
/** (tenant, experiment, unit) → the variant the visitor was shown and when it was first shown. */
const shown = new Map();
/** Units the edge minted, per tenant. */
const minted = { shop: new Set(), news: new Set() };
/** The config version that minted each unit (its `_holdout` record carries it). */
const holdoutVersion = new Map();
/** (tenant, event id) → unit, for every conversion the edge accepted (202). */
const accepted = new Map();
const counts = {
  requests: 0,
  pages: 0,
  returningPages: 0,
  conversionsPosted: 0,
  conversionRepeats: 0,
  conversionsLimited: 0,
  bots: 0,
  prefetches: 0,
  coldHostPages: 0,
  failOpensSeen: 0,
  stickyViolations: 0,
  /** @type {Record<string, number>} */
  statuses: {},
  /** @type {string[]} */
  errors: [],
};
/** Injected KV failures: all, and those of the cold host's reads (each one a page's own load). */
const kv = { injected: 0, injectedCold: 0, failing: false, coldHostTraffic: false };
/** Worker log events that the accounts need, counted as they stream by. */
const workerEvents = { failOpen: 0, refreshFailed: 0, deadLetters: 0, batches: 0, retried: 0, maxAttempts: 0 };
/** @type {Record<string, string> | undefined} */
let lastCacheLine;
/** The worker's Wasm heap (`heap_bytes` of each `config.cache` line, every 5 s), and workerd's
 * resident memory every second (all of it: the worker's isolate, Miniflare's queue broker, KV and
 * rate limiters). @type {number[]} */
const wasmHeap = [];
/** @type {number[]} */
const workerdRss = [];
/** Fault windows as they happened, for the report. @type {{ fault: string, from: number, to?: number, note?: string }[]} */
const timeline = [];
let started = 0;
const elapsed = () => ((Date.now() - started) / 1000).toFixed(1);

/** @param {number} status */
function countStatus(status) {
  counts.statuses[status] = (counts.statuses[status] ?? 0) + 1;
}

/** @param {string} message */
function recordError(message) {
  if (counts.errors.length < 20) counts.errors.push(message);
  else counts.errors[19] = `…and more (last: ${message})`;
}

/** @param {string} line */
function workerLogLine(line) {
  const start = line.indexOf("{");
  if (start < 0) return;
  let event;
  try {
    event = JSON.parse(line.slice(start));
  } catch {
    return;
  }
  switch (event.event) {
    case "fail_open":
      workerEvents.failOpen += 1;
      break;
    case "config.refresh_failed":
      workerEvents.refreshFailed += 1;
      break;
    case "delivery.dead_letter":
      workerEvents.deadLetters += 1;
      break;
    case "delivery.batch":
      if (process.env.SOAK_DEBUG) console.log(`# ${elapsed()} s: ${line.slice(start)}`);
      workerEvents.batches += 1;
      workerEvents.retried += Number(event.retried ?? 0);
      workerEvents.maxAttempts = Math.max(workerEvents.maxAttempts, Number(event.max_attempts ?? 0));
      break;
    case "config.cache":
      lastCacheLine = event;
      wasmHeap.push(Number(event.heap_bytes ?? 0));
      break;
  }
}

// ------------------------------------------------------------------------------------ visitors
/**
 * @typedef {object} Visitor
 * @property {"shop" | "news"} tenant
 * @property {string} host
 * @property {string} ip
 * @property {string} [cookie]
 * @property {string} [unit]
 * @property {number} conversions
 */

/** Visitors who may come back later. @type {Visitor[]} */
const returning = [];
let visitorCount = 0;

/**
 * A page view: checks what the edge did against what this visitor should get, and records what
 * it was shown.
 * @param {Visitor} visitor
 * @param {string} page
 * @param {{ userAgent?: string, purpose?: string }} [as]
 */
async function view(visitor, page, as = {}) {
  const headers = {
    "user-agent": as.userAgent ?? BROWSER_UA,
    accept: "text/html",
    "cf-connecting-ip": visitor.ip,
    ...(visitor.cookie ? { cookie: visitor.cookie } : {}),
    ...(as.purpose ? { "sec-purpose": as.purpose } : {}),
  };
  const response = await send({ host: visitor.host, path: page, headers });
  counts.requests += 1;
  counts.pages += 1;
  if (visitor.host === COLD_HOST) counts.coldHostPages += 1;
  countStatus(response.status);
  if (response.status !== 200) {
    recordError(`${visitor.host}${page}: status ${response.status}`);
    return;
  }
  const sticky = (response.headers["set-cookie"] ?? []).find((c) => c.startsWith("__Host-cohort="));
  const pairs = String(response.headers["soak-assignments"] ?? "")
    .split(",")
    .map((pair) => pair.trim().split("="))
    .filter(([experiment]) => experiment);
  // A stopped experiment's winner goes to everyone, bots included, and is no exposure.
  const winner = WINNERS[visitor.tenant];
  const experimentPairs = pairs.filter(([experiment, variant]) => {
    if (!winner.has(experiment)) return true;
    if (winner.get(experiment) !== variant) recordError(`${experiment}: served ${variant}, not its winner`);
    return false;
  });
  if (as.userAgent !== undefined || as.purpose !== undefined) {
    if (sticky || experimentPairs.length > 0) recordError(`${as.userAgent ? "bot" : "prefetch"} was experimented on`);
    return;
  }
  if (sticky) {
    visitor.cookie = sticky.split(";")[0];
    const { unit } = readStickyCookie(visitor.cookie);
    if (visitor.unit !== undefined && visitor.unit !== unit) recordError(`unit changed: ${visitor.unit} → ${unit}`);
    if (visitor.unit === undefined) minted[visitor.tenant].add(unit);
    visitor.unit = unit;
  }
  if (visitor.unit === undefined || visitor.cookie === undefined) {
    // A new visitor left untouched: the edge failed open.
    counts.failOpensSeen += 1;
    return;
  }
  // The edge renews the cookie whenever it serves another config version, so the cookie now
  // names the version that served this page.
  const { version } = readStickyCookie(visitor.cookie);
  const at = Date.now();
  for (const [experiment, variant] of experimentPairs) {
    const key = `${visitor.tenant}\t${experiment}\t${visitor.unit}`;
    const before = shown.get(key);
    if (before === undefined) shown.set(key, { variant, version, at });
    else if (before.variant !== variant) {
      counts.stickyViolations += 1;
      recordError(`${key}: shown ${before.variant}, then ${variant}`);
    }
  }
  if (sticky && minted[visitor.tenant].has(visitor.unit) && !holdoutVersion.has(visitor.unit)) {
    holdoutVersion.set(visitor.unit, version);
  }
}

/** @param {Visitor} visitor @param {string} id */
async function convert(visitor, id) {
  const metric = METRIC[visitor.tenant];
  const body = JSON.stringify(
    metric === "purchase" ? { metric, id, value: 20 + Math.round(random() * 8000) / 100 } : { metric, id },
  );
  const response = await send({
    host: visitor.host,
    path: "/_cohort/track",
    method: "POST",
    headers: {
      "content-type": "application/json",
      "user-agent": BROWSER_UA,
      "cf-connecting-ip": visitor.ip,
      cookie: String(visitor.cookie),
    },
    body,
  });
  counts.requests += 1;
  counts.conversionsPosted += 1;
  countStatus(response.status);
  if (response.status === 202) accepted.set(`${visitor.tenant}\t${id}`, visitor.unit);
  else if (response.status === 429) counts.conversionsLimited += 1;
  else recordError(`track ${visitor.tenant} ${id}: status ${response.status}`);
}

/** One visit: a new visitor, a returning one, a bot or a prefetch. */
async function visit() {
  const n = visitorCount++;
  const tenant = random() < 0.55 ? "shop" : "news";
  const roll = random();
  const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  if (roll < 0.04) {
    counts.bots += 1;
    await view({ tenant, host: HOST[tenant], ip, conversions: 0 }, pick(PAGES[tenant]), { userAgent: GOOGLEBOT });
    return;
  }
  if (roll < 0.07) {
    counts.prefetches += 1;
    await view({ tenant, host: HOST[tenant], ip, conversions: 0 }, pick(PAGES[tenant]), { purpose: "prefetch" });
    return;
  }
  /** @type {Visitor} */
  let visitor;
  let pages;
  if (roll < 0.3 && returning.length > 0) {
    // Swap-remove: the pool holds tens of thousands, and a splice would move half of them.
    const at = Math.floor(random() * returning.length);
    visitor = returning[at];
    returning[at] = /** @type {Visitor} */ (returning.at(-1));
    returning.pop();
    pages = 1 + Math.floor(random() * 2);
    counts.returningPages += pages;
  } else {
    const cold = tenant === "shop" && kv.coldHostTraffic && random() < 0.05;
    visitor = { tenant, host: cold ? COLD_HOST : HOST[tenant], ip, conversions: 0 };
    pages = 1 + Math.floor(random() * 4);
  }
  for (let i = 0; i < pages; i++) await view(visitor, pick(PAGES[visitor.tenant]));
  if (visitor.unit === undefined) return; // failed open: nothing to come back with
  if (random() < 0.15) {
    const id = `soak-${options.seed}-${n}-${visitor.conversions++}`;
    await convert(visitor, id);
    if (random() < 0.05) {
      // The browser sends it again (a retry after a lost answer): stored once.
      counts.conversionRepeats += 1;
      await convert(visitor, id);
    }
  }
  if (random() < 0.25 && returning.length < 50_000) returning.push(visitor);
}

// ------------------------------------------------------------------------------------- pieces
const work = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-soak-"));
process.on("exit", () => {
  if (!process.env.SOAK_KEEP) fs.rmSync(work, { recursive: true, force: true });
});
const database = path.join(work, "cohort.db");

/** The worker bundled as it deploys (`wrangler deploy --dry-run`): its entry module and Wasm. */
function bundleWorker() {
  const outdir = path.join(work, "bundle");
  const result = spawnSync(
    path.join(ROOT, "node_modules/.bin/wrangler"),
    ["deploy", "--dry-run", "--config", path.join(ROOT, "bench/edge/cohort.wrangler.toml"), "--outdir", outdir],
    { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" }, encoding: "utf8" },
  );
  if (result.status !== 0)
    fail(`wrangler deploy --dry-run failed (run scripts/build-worker.sh first?):\n${result.stdout}${result.stderr}`);
  const files = fs.readdirSync(outdir);
  const main = files.find((f) => f.endsWith(".js"));
  if (!main) fail(`no bundle in ${outdir}`);
  return {
    modulesRoot: outdir,
    modules: [
      { type: /** @type {const} */ ("ESModule"), path: path.join(outdir, main) },
      ...files
        .filter((f) => f.endsWith(".wasm"))
        .map((f) => ({ type: /** @type {const} */ ("CompiledWasm"), path: path.join(outdir, f) })),
    ],
  };
}

/**
 * Starts the worker in workerd through Miniflare. `proxyPort` is where its deliveries go.
 * @param {number} originPort @param {number} proxyPort
 */
async function startEdge(originPort, proxyPort) {
  edgePort = await freePort();
  let pending = "";
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: edgePort,
    // A fixed request.cf (no download of Cloudflare's): every visitor comes from Germany.
    cf: { country: "DE", colo: "FRA", region: "Hesse", city: "Frankfurt", asn: 3320 },
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        stream.on("data", (chunk) => {
          pending += chunk.toString();
          const lines = pending.split("\n");
          pending = lines.pop() ?? "";
          for (const line of lines) workerLogLine(line);
        });
      }
    },
    workers: [
      {
        name: "cohort-edge",
        ...bundleWorker(),
        compatibilityDate: "2026-04-01",
        bindings: {
          COHORT_SECRET: SECRET,
          ORIGIN_OVERRIDE: `http://127.0.0.1:${originPort}`,
          COLLECTOR_URL: `http://127.0.0.1:${proxyPort}`,
          CONFIG_TTL_SECONDS: String(CONFIG_TTL_SECONDS),
          CONFIG_CACHE_STATS_SECONDS: "5",
          DELIVERY_RETRY_BASE_SECONDS: "1",
          DELIVERY_RETRY_MAX_SECONDS: "8",
          DELIVERY_MAX_ATTEMPTS: "100",
        },
        wrappedBindings: { CONFIG: { scriptName: "kv-faults" } },
        queueProducers: {
          BEACONS: { queueName: "cohort-beacons" },
          DEAD_LETTERS: { queueName: "cohort-beacons-dlq" },
        },
        queueConsumers: {
          "cohort-beacons": {
            maxBatchSize: 100,
            maxBatchTimeout: 1,
            maxRetries: 100,
            retryDelay: 1,
            deadLetterQueue: "cohort-beacons-dlq",
          },
          "cohort-beacons-dlq": { maxBatchSize: 100, maxBatchTimeout: 1 },
        },
        // wrangler.toml's limits.
        ratelimits: {
          TRACK_UNIT_LIMITER: { simple: { limit: 30, period: 60 } },
          TRACK_IP_LIMITER: { simple: { limit: 300, period: 60 } },
        },
      },
      {
        name: "kv-faults",
        modules: true,
        scriptPath: path.join(HERE, "kv-faults.js"),
        kvNamespaces: { KV: "cohort-config" },
        serviceBindings: {
          /** @param {Request} request */
          async FAULTS(request) {
            if (!kv.failing) return new Response("ok");
            kv.injected += 1;
            if (new URL(request.url).searchParams.get("key") === `host:${COLD_HOST}`) kv.injectedCold += 1;
            return new Response("failing", { status: 503 });
          },
        },
      },
    ],
  });
  await mf.ready;
  const namespace = await mf.getKVNamespace("KV", "kv-faults");
  return { mf, namespace };
}

/** @param {any} namespace @param {object} config */
async function publish(namespace, config) {
  for (const [key, value] of Object.entries(tenantEntries(config))) await namespace.put(key, value);
}

/** Resident set of a process, bytes (0 once it is gone). @param {number | undefined} pid */
function rss(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** The process id of this process's child named `name` (Miniflare's workerd), if any. @param {string} name */
function childPid(name) {
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8").trim();
      const [, comm, rest] = /** @type {RegExpExecArray} */ (/^\d+ \((.*)\) (.*)$/.exec(stat));
      if (comm === name && Number(rest.split(" ")[1]) === process.pid) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/** @param {string} query */
function sqlite(query) {
  return execFileSync("sqlite3", ["-separator", "\t", database, query], { encoding: "utf8", maxBuffer: 1 << 30 })
    .split("\n")
    .filter(Boolean);
}

// --------------------------------------------------------------------------------------- run
async function main() {
  const originPort = await freePort();
  const proxyPort = await freePort();
  const collectorPort = await freePort();
  const servers = startProcess(process.execPath, [
    path.join(HERE, "servers.mjs"),
    ...[originPort, proxyPort, collectorPort].map(String),
  ]);
  /** @type {Parameters<typeof startCohortCollector>[0]} */
  const collectorArgs = {
    port: collectorPort,
    database,
    secret: SECRET,
    profile: options.release ? "release" : "debug",
  };
  /** @type {import("../../scripts/lib/cohort.mjs").Collector} */
  let collector = await startCohortCollector(collectorArgs);
  const { mf, namespace } = await startEdge(originPort, proxyPort);
  const stopAll = async () => {
    await mf.dispose().catch(() => {});
    await collector.stop();
    await servers.stop();
  };
  process.on("SIGINT", () => stopAll().then(() => process.exit(130)));
  try {
    await publish(namespace, SHOP);
    await publish(namespace, NEWS);
    await waitFor(() => servers.stdout.join("").includes("ready"), 10_000, "the origin and fault proxy");
    const proxy = (/** @type {string} */ p, method = "GET") =>
      fetch(`http://127.0.0.1:${proxyPort}${p}`, { method }).then((r) => r.json());

    // Collector memory: every second, per incarnation (it restarts after each kill).
    /** @type {{ pid: number | undefined, samples: number[] }[]} */
    const incarnations = [{ pid: collector.child.pid, samples: [] }];
    const workerd = childPid("workerd");
    const sampler = setInterval(() => {
      const current = incarnations.at(-1);
      const bytes = rss(current?.pid);
      if (current && bytes > 0) current.samples.push(bytes);
      const runtime = rss(workerd);
      if (runtime > 0) workerdRss.push(runtime);
    }, 1000);

    const kill = async (/** @type {string} */ name) => {
      const from = Number(elapsed());
      process.kill(/** @type {number} */ (collector.child.pid), "SIGKILL");
      await collector.exited;
      await sleep(KILLED_SECONDS * 1000);
      collector = await startCohortCollector(collectorArgs);
      incarnations.push({ pid: collector.child.pid, samples: [] });
      timeline.push({ fault: name, from, to: Number(elapsed()), note: "kill -9, restarted on the same database" });
    };
    /** @type {Promise<void>[]} */
    const faults = [];
    /** Starts each fault once its share of the requests has been sent. */
    const schedule = [
      { at: FAULTS.firstKill.at, run: () => kill("collector killed (1)") },
      {
        at: FAULTS.publish.at,
        run: async () => {
          await publish(namespace, NEWS_NEXT);
          timeline.push({
            fault: `news v${NEWS_NEXT.version} published`,
            from: Number(elapsed()),
            note: `adds ${SKEW_EXPERIMENT}`,
          });
        },
      },
      {
        at: FAULTS.kvOutage.at,
        run: async () => {
          const from = Number(elapsed());
          kv.failing = true;
          kv.coldHostTraffic = true;
          await sleep(FAULTS.kvOutage.seconds * 1000);
          kv.failing = false;
          timeline.push({ fault: "KV reads fail", from, to: Number(elapsed()), note: `${COLD_HOST} first visited` });
        },
      },
      { at: FAULTS.secondKill.at, run: () => kill("collector killed (2)") },
      {
        at: FAULTS.collectorErrors.at,
        run: async () => {
          const from = Number(elapsed());
          const half = (FAULTS.collectorErrors.seconds * 1000) / 2;
          await proxy("/_soak/fault?status=500", "POST");
          await sleep(half);
          await proxy("/_soak/fault?status=429", "POST");
          await sleep(half);
          await proxy("/_soak/fault?status=none", "POST");
          timeline.push({ fault: "collector answers 500, then 429", from, to: Number(elapsed()) });
        },
      },
    ];

    started = Date.now();
    let lastProgress = started;
    // The load goes on until every fault has run its course, so each meets traffic however fast
    // the machine is.
    let faultsRunning = 0;
    const lane = async () => {
      while (counts.requests < REQUESTS || schedule.length > 0 || faultsRunning > 0) {
        while (schedule.length > 0 && counts.requests >= schedule[0].at * REQUESTS) {
          const fault = /** @type {{ run: () => Promise<void> }} */ (schedule.shift());
          faultsRunning += 1;
          faults.push(fault.run().finally(() => (faultsRunning -= 1)));
        }
        try {
          await visit();
        } catch (error) {
          counts.statuses.error = (counts.statuses.error ?? 0) + 1;
          recordError(String(error));
        }
        if (Date.now() - lastProgress > 30_000) {
          lastProgress = Date.now();
          const rate = counts.requests / ((Date.now() - started) / 1000);
          console.log(`# ${elapsed()} s: ${counts.requests} requests (${rate.toFixed(0)}/s)`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    await Promise.all(faults);
    const loadSeconds = (Date.now() - started) / 1000;

    // Everything accepted must arrive; then a moment more, in which nothing else may.
    const expectedExposures = [...shown.keys()].length + minted.shop.size; // plus one `_holdout` per shop unit
    const drainStart = Date.now();
    const stored = () =>
      Number(sqlite("SELECT COUNT(*) FROM exposures")[0]) + Number(sqlite("SELECT COUNT(*) FROM conversions")[0]);
    const deadline = Date.now() + (options.quick ? 180_000 : 900_000);
    for (let now = stored(); now < expectedExposures + accepted.size && Date.now() < deadline; now = stored()) {
      if (process.env.SOAK_DEBUG)
        console.log(
          `# ${elapsed()} s: ${now} of ${expectedExposures + accepted.size} rows stored; proxy ${JSON.stringify((await proxy("/_soak/stats")).answered)}`,
        );
      await sleep(1000);
    }
    const drainSeconds = (Date.now() - drainStart) / 1000;
    await sleep(5000);
    clearInterval(sampler);
    const proxyStats = await proxy("/_soak/stats");
    if (process.env.SOAK_DEBUG) console.log(servers.log.join(""));
    const report = await account({ loadSeconds, drainSeconds, incarnations, proxyStats });
    console.log(report.text);
    if (options.report) fs.writeFileSync(options.report, report.text);
    if (report.failures.length > 0) {
      console.error(`soak: ${report.failures.length} account(s) do not hold:\n- ${report.failures.join("\n- ")}`);
      process.exitCode = 1;
    }
  } finally {
    await stopAll();
  }
}

/**
 * @param {() => boolean} condition @param {number} timeoutMs @param {string} what
 */
async function waitFor(condition, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) fail(`${what} did not start within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

/**
 * The accounts: what the collector stored against what the visitors were shown and what the edge
 * accepted. Returns the report and every account that does not hold.
 * @param {{ loadSeconds: number, drainSeconds: number,
 *   incarnations: { pid: number | undefined, samples: number[] }[], proxyStats: any }} run
 */
async function account({ loadSeconds, drainSeconds, incarnations, proxyStats }) {
  /** @type {string[]} */
  const failures = [];
  const check = (/** @type {boolean} */ ok, /** @type {string} */ what) => {
    if (!ok) failures.push(what);
  };

  // Exposures: exactly the shown (tenant, experiment, unit) with the shown variant and the version
  // that served it, plus one `_holdout` record per new shop unit with the variant its bucket gives.
  const expected = new Map([...shown].map(([key, { variant, version }]) => [key, { variant, version }]));
  for (const unit of minted.shop) {
    const variant = /** @type {string} */ (holdoutVariant(SHOP, unit));
    expected.set(`shop\t_holdout\t${unit}`, { variant, version: holdoutVersion.get(unit) });
  }
  const exposures = compareExposures(
    expected,
    sqlite("SELECT tenant_id, experiment, unit_id, variant, config_version FROM exposures"),
  );
  for (const sample of exposures.samples) recordError(sample);
  const { missing, wrongVariant, unexpected, misattributed } = exposures;
  const newsVersions = exposures.versions.news ?? {};
  check(
    missing === 0,
    `${missing} exposures shown to visitors were never stored: ${JSON.stringify(exposures.missingBy)}`,
  );
  check(wrongVariant === 0, `${wrongVariant} exposures stored with another variant than the visitor saw`);
  check(unexpected === 0, `${unexpected} exposures stored that no visitor was shown, or stored twice`);
  check(exposures.stored === expected.size, `${exposures.stored} exposure rows for ${expected.size} expected`);
  check(
    Object.keys(newsVersions).length === 2,
    `news exposures carry versions ${JSON.stringify(newsVersions)}: both should appear`,
  );
  check(misattributed === 0, `${misattributed} exposures carry another config version than the one that served them`);

  // Conversions: every accepted event once, on its unit.
  const conversions = compareConversions(accepted, sqlite("SELECT tenant_id, event_id, unit_id FROM conversions"));
  check(conversions.missing === 0, `${conversions.missing} accepted conversions were never stored`);
  check(
    conversions.wrong === 0,
    `${conversions.wrong} stored conversions were not accepted, twice, or not on their unit`,
  );
  check(conversions.stored === accepted.size, `${conversions.stored} conversion rows for ${accepted.size} accepted`);

  // The edge: no 5xx, no visitor shown two variants of one experiment, fail-opens only from the
  // injected KV failures (each failed cold read fails its page open) or reads the isolate's
  // allowance refused, and nothing dead-lettered.
  const serverErrors = Object.entries(counts.statuses)
    .filter(([status]) => status === "error" || Number(status) >= 500)
    .reduce((n, [, c]) => n + c, 0);
  check(
    serverErrors === 0,
    `${serverErrors} worker answers were 5xx or never came: ${counts.errors.slice(0, 5).join("; ")}`,
  );
  check(counts.stickyViolations === 0, `${counts.stickyViolations} visitors were shown two variants of one experiment`);
  check(counts.errors.length === 0, `errors: ${counts.errors.slice(0, 5).join("; ")}`);
  const refused = Number(lastCacheLine?.host_reads_refused ?? 0);
  check(kv.injectedCold > 0, "the KV outage failed no cold read: the fault was not exercised");
  check(
    counts.failOpensSeen === kv.injectedCold + refused,
    `${counts.failOpensSeen} pages failed open for ${kv.injectedCold} injected cold-read failures and ${refused} refused reads`,
  );
  check(
    kv.injected - kv.injectedCold === workerEvents.refreshFailed,
    `${kv.injected - kv.injectedCold} injected failures of cached keys, ${workerEvents.refreshFailed} background refreshes logged as failed`,
  );
  check(
    workerEvents.failOpen === counts.failOpensSeen,
    `the worker logged ${workerEvents.failOpen} fail-opens, visitors saw ${counts.failOpensSeen}`,
  );
  check(workerEvents.deadLetters === 0, `${workerEvents.deadLetters} deliveries were dead-lettered`);
  check(
    (proxyStats.answered["500"] ?? 0) > 0 && (proxyStats.answered["429"] ?? 0) > 0,
    "the collector fault window answered no 500 and 429",
  );
  check(workerEvents.retried > 0, "no delivery was retried: the collector faults were not exercised");

  // Collector memory, per incarnation: start (10 s in), peak, end.
  const memory = incarnations.map(({ samples }, i) => {
    const mib = (/** @type {number} */ b) => (b / 1048576).toFixed(0);
    const start = samples[Math.min(10, samples.length - 1)] ?? 0;
    return `| ${i + 1} | ${samples.length} | ${mib(start)} | ${mib(Math.max(...samples, 0))} | ${mib(samples.at(-1) ?? 0)} |`;
  });
  const longest = incarnations.reduce((a, b) => (b.samples.length > a.samples.length ? b : a));
  const settled = longest.samples[Math.min(30, longest.samples.length - 1)] ?? 0;
  const end = longest.samples.at(-1) ?? 0;
  check(end <= settled * 1.5 + 64 * 1048576, `collector RSS grew from ${settled} to ${end} bytes in its longest run`);

  const rate = counts.requests / loadSeconds;
  /** Start (10 samples in), peak and end, MiB. @param {number[]} samples */
  const spread = (samples) =>
    [samples[Math.min(10, samples.length - 1)] ?? 0, Math.max(0, ...samples), samples.at(-1) ?? 0]
      .map((b) => (b / 1048576).toFixed(1))
      .join(" / ");
  const text = [
    `# Soak: ${counts.requests.toLocaleString("en")} requests, ${failures.length === 0 ? "every account exact" : `${failures.length} account(s) failed`}`,
    "",
    `Generated by \`node bench/soak/run.mjs${options.quick ? " --quick" : ""}\` (\`make soak\`) on ${new Date().toISOString()}; ` +
      `${os.cpus().length} × ${os.cpus()[0]?.model ?? "CPU"}, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")} at the end.`,
    "",
    `- Load: ${counts.requests.toLocaleString("en")} requests in ${loadSeconds.toFixed(0)} s (${rate.toFixed(0)} req/s, ${CONCURRENCY} connections), ` +
      `${visitorCount.toLocaleString("en")} visits; ${counts.pages.toLocaleString("en")} pages (${counts.returningPages.toLocaleString("en")} by returning visitors), ` +
      `${counts.bots} bots, ${counts.prefetches} prefetches, ${counts.conversionsPosted.toLocaleString("en")} conversions posted ` +
      `(${counts.conversionRepeats} sent twice, ${counts.conversionsLimited} rate-limited).`,
    `- Statuses: ${JSON.stringify(counts.statuses)}.`,
    `- Units minted: shop ${minted.shop.size.toLocaleString("en")}, news ${minted.news.size.toLocaleString("en")}.`,
    `- Exposures: ${exposures.stored.toLocaleString("en")} stored for ${expected.size.toLocaleString("en")} expected (missing ${missing}, wrong variant ${wrongVariant}, unexpected ${unexpected}); ` +
      `news by config version ${JSON.stringify(newsVersions)}, mis-attributed ${misattributed}.`,
    `- Conversions: ${conversions.stored.toLocaleString("en")} stored for ${accepted.size.toLocaleString("en")} accepted (missing ${conversions.missing}, wrong ${conversions.wrong}).`,
    `- Fail-opens: ${counts.failOpensSeen} pages (worker log: ${workerEvents.failOpen}) for ${kv.injected} injected KV failures ` +
      `(${kv.injectedCold} cold host reads of ${counts.coldHostPages} ${COLD_HOST} pages, ${workerEvents.refreshFailed} background refreshes) and ${refused} refused reads.`,
    `- Delivery: ${workerEvents.batches} consumer batches, ${workerEvents.retried} messages retried, max attempts ${workerEvents.maxAttempts}, ` +
      `${workerEvents.deadLetters} dead-lettered; the proxy answered ${JSON.stringify(proxyStats.answered)}. ` +
      `Drained ${drainSeconds.toFixed(1)} s after the load ended.`,
    `- Worker 5xx: ${serverErrors}.`,
    "",
    "| fault | from s | to s | note |",
    "|---|---:|---:|---|",
    ...timeline.map((t) => `| ${t.fault} | ${t.from} | ${t.to ?? ""} | ${t.note ?? ""} |`),
    "",
    `Edge: the worker's Wasm heap ${spread(wasmHeap)} MiB (start, peak, end); workerd's resident memory, ` +
      `everything Miniflare runs in it included, ${spread(workerdRss)} MiB.`,
    "",
    "Collector resident memory, MiB, per run between kills (start = 10 s in):",
    "",
    "| run | seconds | start | peak | end |",
    "|---:|---:|---:|---:|---:|",
    ...memory,
    "",
    ...(failures.length > 0 ? ["Accounts that do not hold:", "", ...failures.map((f) => `- ${f}`), ""] : []),
  ].join("\n");
  return { text, failures };
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
