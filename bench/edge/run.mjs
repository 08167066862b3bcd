// Edge worker benchmark, run by scripts/bench-edge.sh after the builds.
//
// Method: bundle each worker with `wrangler deploy --dry-run`, serve all bundles from ONE plain
// `workerd serve` (one socket per worker), and load them with wrk, alternating the workers round
// by round, reading workerd's CPU ticks from /proc/<pid>/stat around every run. Not through
// `wrangler dev`: its proxy costs more CPU per request than the workers themselves.
//
// Workers: `passthrough` (JS fetch to the origin: the baseline), `cohort` (the full worker, KV via a
// stub service, exposures through its delivery queue, a stub service counting sends) serving two tenants: the 10-experiment
// `tenant.json` and the peer workload's 20 experiments (`tenant-workload.json`, the translation of
// ../workload.json), `growthbook` (GrowthBook's edge worker, @growthbook/edge-cloudflare, with the
// same 20 experiments from a loopback stand-in for its API host), and for the HTML rewriter
// comparison two minimal Rust workers applying the same 3 edits: `rewrite-native` (workerd's
// HTMLRewriter) and `rewrite-lol` (lol_html in the Wasm).
//
// What the report states is checked, not assumed: any socket error or response outside 2xx/3xx in
// any wrk run, a worker that does not serve the expected page before the load, or exposures that
// did not leave through the queue stop the run with a message naming the target (exit 1).
//
// Everything it starts (origin, collector, the GrowthBook API stand-in, workerd) is stopped by process id on exit; the pids
// are also written to $BENCH_WORK/pids so the calling script's trap can stop them.
//
// Environment: BENCH_WORK (scratch dir, required), BENCH_DURATION (seconds per run, default 5),
// BENCH_ROUNDS (default 6), BENCH_WARMUP (seconds, default 3), BENCH_OUT (results file),
// BENCH_JSON_OUT (also write the figures as JSON there), BENCH_BASELINE (the JSON of an earlier
// full run, default bench/edge/baseline.json when it exists: its overhead ratios are set beside this
// run's in the report), BENCH_PROFILE=target,... (profile mode: instead of the rounds, each named
// target's CPU profile, written to BENCH_PROFILE_OUT, default bench/edge/profile.md), BENCH_PEERS_ONLY=1 (the peer comparison
// only: pass-through, Cohort on the workload tenant, GrowthBook; results to $BENCH_WORK/results.md
// unless BENCH_OUT is set, so the committed full results stay), BENCH_QUICK=1 (peers only, and 2 s
// runs, 1 round, 1 s warm-up: the test command's smoke run).
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";

import { stickyCookie } from "../../scripts/lib/cohort.mjs";
import { BROWSER_UA, freePort, request, waitForServer } from "../../scripts/lib/http.mjs";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { startProcess } from "../../scripts/lib/processes.mjs";
import { sleep } from "../../scripts/lib/wait.mjs";
import { WRANGLER, tenantEntries } from "../../scripts/lib/wrangler.mjs";
import { cohortTenant, growthbookExperiments, loadWorkload } from "../js/workload.mjs";
import { bundleModules, profileWhile, summarize } from "./profile.mjs";
import { PAGE } from "./servers.mjs";

const HERE = import.meta.dirname;
const WORK = process.env.BENCH_WORK ?? fail("BENCH_WORK is not set");
const QUICK = process.env.BENCH_QUICK === "1";
const PEERS_ONLY = QUICK || process.env.BENCH_PEERS_ONLY === "1";
const DURATION = Number(process.env.BENCH_DURATION ?? (QUICK ? 2 : 5));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 6));
const WARMUP = Number(process.env.BENCH_WARMUP ?? (QUICK ? 1 : 3));
// Latency probe per target and round: one connection, so no request queues behind another and
// p99 is the time the worker adds, not the queueing of a saturated closed loop (-c16).
const LATENCY_DURATION = Number(process.env.BENCH_LATENCY_DURATION ?? (QUICK ? 1 : 2));
// A quick run must not replace the committed full results.
const OUT = process.env.BENCH_OUT ?? (PEERS_ONLY ? path.join(WORK, "results.md") : path.join(HERE, "results.md"));
const JSON_OUT = process.env.BENCH_JSON_OUT;
// Profile mode: these targets' CPU profiles instead of the rounds (bench/edge/profile.mjs).
const PROFILE = (process.env.BENCH_PROFILE ?? "").split(",").filter(Boolean);
const PROFILE_OUT = process.env.BENCH_PROFILE_OUT ?? path.join(HERE, "profile.md");
const WORKERD = path.join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

const HOST = "shop.bench.test";
const PAGE_PATH = "/products/oak-side-table";
// A page the visitor below reaches with experiments that act only on the origin request (a route
// and request headers: checkout-flow, eu-wallets, search-ranking), no HTML edit: a games console's
// browser is device "other", which the tenant's HTML experiments on this path do not target.
const NO_EDIT_PATH = "/checkout/cart";
const NO_EDIT_HEADERS = {
  "user-agent":
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
};
// Production requests carry request.cf (geo, colo); plain workerd fills it from this header's JSON
// (the socket's cfBlobHeader), as wrangler dev does. Without it request.cf has no colo, and the
// worker crate's CfProperties::colo() panics (the Cohort worker then fails open on every request).
const CF_BLOB = JSON.stringify({
  colo: "FRA",
  country: "DE",
  region: "Hesse",
  regionCode: "HE",
  city: "Frankfurt am Main",
  continent: "EU",
  asn: 3320,
  asOrganization: "Deutsche Telekom AG",
  timezone: "Europe/Berlin",
  httpProtocol: "HTTP/1.1",
  tlsVersion: "TLSv1.3",
});
// A desktop Chrome visitor: wrk sends no User-Agent, which the engine would (rightly) treat as a bot.
const BROWSER_HEADERS = {
  "user-agent": BROWSER_UA,
  "accept-language": "en-GB,en;q=0.9",
  accept: "text/html,application/xhtml+xml",
  "cf-blob": CF_BLOB,
};
// The peer workload's visitor (../workload.json: country DE, device mobile, plan free, language
// de-DE) as a request: geography from the same cf blob, a mobile Chrome, German first, and the
// site's own `plan` cookie (Cohort's `cookies.plan`; GrowthBook gets it as an attribute).
const WORKLOAD_HOST = "workload.bench.test";
const WORKLOAD_HEADERS = {
  Host: WORKLOAD_HOST,
  "user-agent":
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
  "accept-language": "de-DE,de;q=0.9,en;q=0.8",
  cookie: "plan=free",
};
const WORKLOAD = loadWorkload();
// Every variant of every workload experiment marks the page with one attribute on <body>
// (data-exp-NN="control|treatment"), in both workers: the edit is the same, and the page shows
// exactly which experiments assigned the visitor and to what.
const WORKLOAD_TENANT = cohortTenant(WORKLOAD, {
  tenant: "workload",
  hostnames: [WORKLOAD_HOST],
  attributeNames: { plan: "cookies.plan" },
  actions: (experiment, variant) => [
    { type: "set_attribute", selector: "body", name: `data-${experiment}`, value: variant },
  ],
});
// GrowthBook's SDK payload as its API host serves it: the 20 experiments as visual-editor ("auto")
// experiments, which are the ones its edge worker evaluates and applies (feature flags are only
// evaluated when code asks for them). Hashing on `id`, the gbuuid cookie.
const GROWTHBOOK_PAYLOAD = {
  features: {},
  experiments: growthbookExperiments(WORKLOAD, {
    attributeNames: { device: "deviceType" },
    variation: (experiment, variant) => ({
      domMutations: [{ selector: "body", action: "set", attribute: `data-${experiment}`, value: variant }],
    }),
  }).map((e) => ({ ...e, hashAttribute: "id", hashVersion: 2, changeId: `change-${e.key}` })),
};
const GROWTHBOOK_CLIENT_KEY = "sdk-bench-workload";

// ≥ 32 bytes, as MasterSecret requires.
const SECRET = "bench-platform-secret-0123456789abcdef-not-a-real-one";
// The 3 HTML edits of the rewriter comparison (cohort-core Action JSON).
const THREE_EDITS = [
  { type: "set_text", selector: "h1.title", text: "Built to last a lifetime" },
  { type: "set_attribute", selector: "a.cta", name: "class", value: "cta cta-green" },
  { type: "insert_html", selector: ".price", position: "after", html: '<s class="was">€129</s>' },
];

const ALL_WORKERS = {
  passthrough: { toml: "passthrough.wrangler.toml", label: "pass-through (JS fetch)" },
  cohort: { toml: "cohort.wrangler.toml", label: "Cohort worker" },
  growthbook: { toml: "growthbook.wrangler.toml", label: "GrowthBook edge worker" },
  "js-rewrite": { toml: "js-rewrite.wrangler.toml", label: "JS pass-through + native HTMLRewriter" },
  "rewrite-native": { toml: "rewrite-native.wrangler.toml", label: "Rust + native HTMLRewriter" },
  "rewrite-lol": { toml: "rewrite-lol.wrangler.toml", label: "Rust + lol_html in Wasm" },
};
// workerd services → the bundle each runs. The buffered lol_html variant is the same bundle with
// the LOL_BUFFERED binding (see lol-html-worker/src/lib.rs).
const ALL_SERVICES = {
  passthrough: "passthrough",
  "rust-passthrough": "rewrite-native",
  "js-copy": "js-rewrite",
  "js-rewrite": "js-rewrite",
  cohort: "cohort",
  growthbook: "growthbook",
  "rewrite-native": "rewrite-native",
  "rewrite-lol": "rewrite-lol",
  "rewrite-lol-buffered": "rewrite-lol",
};
// Peer comparison only (BENCH_PEERS_ONLY, and so BENCH_QUICK): just the three workers it compares.
const PEERS = ["passthrough", "cohort", "growthbook"];
const pick = (object) => (PEERS_ONLY ? Object.fromEntries(PEERS.map((k) => [k, object[k]])) : object);
const WORKERS = pick(ALL_WORKERS);
const SERVICES = pick(ALL_SERVICES);

/**
 * @param {string} message
 * @returns {never}
 */
function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(1);
}
const log = (message) => console.log(`[bench] ${message}`);

// ---------------------------------------------------------------- processes, stopped by pid
/** @type {import("../../scripts/lib/processes.mjs").StartedProcess[]} */
const children = [];
/**
 * Starts one of the benchmark's servers in $BENCH_WORK, its output in `logFile` there, and records
 * its pid in $BENCH_WORK/pids for scripts/bench-edge.sh's trap; returns the child process.
 * @param {string} name
 * @param {string} command
 * @param {string[]} args
 * @param {string} logFile
 */
function start(name, command, args, logFile) {
  const started = startProcess(command, args, { cwd: WORK, group: false, logFile: path.join(WORK, logFile) });
  const { child } = started;
  children.push(started);
  fs.appendFileSync(path.join(WORK, "pids"), `${child.pid}\n`);
  child.on("exit", (code, signal) => {
    if (!stopping) log(`${name} (pid ${child.pid}) exited early: ${code ?? signal}; see ${logFile}`);
  });
  return child;
}
let stopping = false;
function stopAll() {
  stopping = true;
  // stop() signals at once; its promise (the exit) is not waited for on the way out.
  for (const started of children) void started.stop();
}
process.on("exit", stopAll);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));

/**
 * One GET on loopback with the bench's Host unless `headers` name another; resolves with status,
 * headers and body, or fails after 10 s.
 * @param {number} port
 * @param {import("node:http").OutgoingHttpHeaders} [headers]
 */
function get(port, headers = {}, requestPath = PAGE_PATH) {
  return request({ port, host: HOST, path: requestPath, headers, timeoutMs: 10_000 });
}

/**
 * Waits until the server `child` runs answers on `port` (30 s at most); stops the run if it does not.
 * @param {number} port
 * @param {string} what
 * @param {import("node:child_process").ChildProcess} child
 */
async function waitFor(port, what, child) {
  const started = await waitForServer({
    child,
    probe: () => get(port, BROWSER_HEADERS, "/"),
    timeoutMs: 30_000,
    intervalMs: 100,
  });
  if ("exited" in started) fail(`${what} exited (${child.exitCode})`);
  if ("timedOut" in started) fail(`${what} did not answer on port ${port} within 30 s`);
}

/** utime + stime of a process (all its threads), in clock ticks. */
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of stat(5)
}

// ---------------------------------------------------------------- peer sanity (nothing measured empty)
const lowerKeys = (headers) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));

/** The workload experiments a page says the visitor is in: data-exp-NN="variant" on <body>. */
function assignedOnPage(body) {
  const tag = body.match(/<body\b[^>]*>/)?.[0] ?? "";
  return Object.fromEntries([...tag.matchAll(/\sdata-(exp-\d+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

/**
 * Before any load: both workers must assign the workload visitor to exactly the experiments in
 * `expected_targeted`, with both variants occurring (the split is applied), for a new and a
 * returning visitor; returns the returning visitors' cookies.
 */
async function peerSanity({ ports, pageFromOrigin }) {
  const expected = [...WORKLOAD.expected_targeted].sort();
  const check = (who, response) => {
    if (response.status !== 200) fail(`${who}: status ${response.status}; see ${WORK}/workerd.log`);
    const assigned = assignedOnPage(response.body);
    const keys = Object.keys(assigned).sort();
    if (JSON.stringify(keys) !== JSON.stringify(expected)) {
      fs.writeFileSync(path.join(WORK, `${who}.html`), response.body);
      fail(
        `${who}: the page shows experiments ${JSON.stringify(keys)}, expected ${JSON.stringify(expected)} (page in ${WORK}/${who}.html)`,
      );
    }
    return assigned;
  };
  const headers = lowerKeys({ ...BROWSER_HEADERS, ...WORKLOAD_HEADERS });
  const variantsSeen = { cohort: new Set(), growthbook: new Set() };
  const result = {};

  // Cohort: new visitors (a fresh unit each), then a returning one with the sticky cookie.
  let first;
  for (let i = 0; i < 4; i++) {
    const response = await get(ports.cohort, headers);
    for (const v of Object.values(check("cohort-workload-new", response))) variantsSeen.cohort.add(v);
    first ??= response;
  }
  const sticky = stickyCookie(first);
  if (!sticky) fail("Cohort worker, workload tenant: no sticky cookie for a new visitor");
  result.cohortReturningCookie = `${sticky}; ${WORKLOAD_HEADERS.cookie}`;
  const cohortReturning = await get(ports.cohort, { ...headers, cookie: result.cohortReturningCookie });
  result.cohort = check("cohort-workload-returning", cohortReturning);
  if (JSON.stringify(result.cohort) !== JSON.stringify(assignedOnPage(first.body)))
    fail("Cohort worker: a returning visitor changed variants");
  result.cohortReturningSetCookie = Boolean(cohortReturning.headers["set-cookie"]);

  // GrowthBook: new visitors (a fresh gbuuid each), then a returning one with the workload
  // visitor's id as its gbuuid cookie.
  let gbFirst;
  for (let i = 0; i < 4; i++) {
    const response = await get(ports.growthbook, headers);
    for (const v of Object.values(check("growthbook-new", response))) variantsSeen.growthbook.add(v);
    gbFirst ??= response;
  }
  result.growthbookNewSetsCookie = (gbFirst.headers["set-cookie"] ?? []).some((c) => c.startsWith("gbuuid="));
  result.growthbookReturningCookie = `gbuuid=${WORKLOAD.visitor.id}; ${WORKLOAD_HEADERS.cookie}`;
  const gbReturning = await get(ports.growthbook, { ...headers, cookie: result.growthbookReturningCookie });
  result.growthbook = check("growthbook-returning", gbReturning);
  const again = await get(ports.growthbook, { ...headers, cookie: result.growthbookReturningCookie });
  if (JSON.stringify(assignedOnPage(again.body)) !== JSON.stringify(result.growthbook))
    fail("GrowthBook: a returning visitor changed variants");
  for (const [who, seen] of Object.entries(variantsSeen)) {
    if (seen.size < 2) fail(`${who}: every assignment was ${[...seen]}; is the split applied?`);
  }
  // What each adds to the page besides the 11 attributes: GrowthBook injects its SDK (for the
  // browser half of its visual/redirect experiments and its deferred tracking calls).
  result.responseBytes = {
    origin: Buffer.byteLength(pageFromOrigin),
    cohort: Buffer.byteLength(cohortReturning.body),
    growthbook: Buffer.byteLength(gbReturning.body),
  };
  return result;
}

// ---------------------------------------------------------------- bundling
function bundle(name) {
  const outdir = path.join(WORK, "bundles", name);
  fs.rmSync(outdir, { recursive: true, force: true });
  const result = spawnSync(
    WRANGLER,
    ["deploy", "--dry-run", "--config", path.join(HERE, WORKERS[name].toml), "--outdir", outdir],
    {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      encoding: "utf8",
      timeout: 120_000,
    },
  );
  const output = `${result.stdout}${result.stderr}`;
  const sizes = output.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/);
  if (result.status !== 0 || !sizes) fail(`wrangler deploy --dry-run for ${name} failed:\n${output}`);
  const files = fs.readdirSync(outdir);
  const main = files.find((f) => f.endsWith(".js"));
  const wasm = files.filter((f) => f.endsWith(".wasm"));
  const wasmBytes = wasm.reduce((n, f) => n + fs.statSync(path.join(outdir, f)).size, 0);
  const wasmGzip = wasm.reduce(
    (n, f) => n + zlib.gzipSync(fs.readFileSync(path.join(outdir, f)), { level: 9 }).length,
    0,
  );
  return { name, outdir, main, wasm, uploadKiB: Number(sizes[1]), gzipKiB: Number(sizes[2]), wasmBytes, wasmGzip };
}

// ---------------------------------------------------------------- workerd config
function capnpConfig({ bundles, ports, originPort, collectorPort, featuresPort }) {
  const origin = `http://127.0.0.1:${originPort}`;
  const text = (name, value) => `(name = ${JSON.stringify(name)}, text = ${JSON.stringify(value)})`;
  const embedText = (name, file) => `(name = ${JSON.stringify(name)}, text = embed ${JSON.stringify(file)})`;
  const bindings = {
    passthrough: [text("ORIGIN_OVERRIDE", origin)],
    "rust-passthrough": [
      text("ORIGIN_OVERRIDE", origin),
      embedText("ACTIONS", "three-edits.json"),
      text("SKIP_REWRITE", "1"),
    ],
    cohort: [
      `(name = "CONFIG", kvNamespace = (name = "kv"))`,
      text("COHORT_SECRET", SECRET),
      text("ORIGIN_OVERRIDE", origin),
      text("CONFIG_TTL_SECONDS", "60"),
      // Exposures go to the delivery queue as in production (a stub service counting sends); the
      // collector stub is the fallback the worker would POST to if the send failed.
      `(name = "BEACONS", queue = "queue")`,
      text("COLLECTOR_URL", `http://127.0.0.1:${collectorPort}`),
    ],
    // As its README deploys it (wrangler vars): the origin, the API host and client key it fetches
    // the payload from, and PERSIST_UUID so a new visitor gets its gbuuid cookie (Cohort sets its
    // sticky cookie too).
    growthbook: [
      text("PROXY_TARGET", `${origin}/`),
      text("GROWTHBOOK_API_HOST", `http://127.0.0.1:${featuresPort}`),
      text("GROWTHBOOK_CLIENT_KEY", GROWTHBOOK_CLIENT_KEY),
      text("PERSIST_UUID", "true"),
      text("NODE_ENV", "production"),
    ],
    "js-copy": [text("ORIGIN_OVERRIDE", origin), text("SKIP_REWRITE", "1")],
    "js-rewrite": [text("ORIGIN_OVERRIDE", origin), embedText("ACTIONS", "three-edits.json")],
    "rewrite-native": [text("ORIGIN_OVERRIDE", origin), embedText("ACTIONS", "three-edits.json")],
    "rewrite-lol": [text("ORIGIN_OVERRIDE", origin), embedText("ACTIONS", "three-edits.json")],
    "rewrite-lol-buffered": [
      text("ORIGIN_OVERRIDE", origin),
      embedText("ACTIONS", "three-edits.json"),
      text("LOL_BUFFERED", "1"),
    ],
  };
  const services = Object.entries(SERVICES).map(([service, bundleName]) => {
    const b = bundles[bundleName];
    const dir = path.relative(WORK, b.outdir);
    const modules = [
      `(name = ${JSON.stringify(b.main)}, esModule = embed ${JSON.stringify(`${dir}/${b.main}`)})`,
    ].concat(b.wasm.map((w) => `(name = ${JSON.stringify(w)}, wasm = embed ${JSON.stringify(`${dir}/${w}`)})`));
    return `    (name = "${service}", worker = (
      modules = [${modules.join(", ")}],
      compatibilityDate = "2026-04-01",
      bindings = [${bindings[service].join(", ")}],
      globalOutbound = "loopback")),`;
  });
  const sockets = Object.keys(SERVICES).map(
    (name) =>
      `    (name = "${name}", address = "127.0.0.1:${ports[name]}", http = (cfBlobHeader = "cf-blob"), service = "${name}"),`,
  );
  // The queue stub's own socket, for its counts (GET /stats).
  sockets.push(`    (name = "queue", address = "127.0.0.1:${ports.queue}", http = (), service = "queue"),`);
  return `# Generated by bench/edge/run.mjs.
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
${services.join("\n")}
    # Delivery queue stand-in for the Cohort worker's BEACONS binding.
    (name = "queue", worker = (
      modules = [(name = "queue.js", esModule = embed "queue.js")],
      compatibilityDate = "2026-04-01")),
    # Workers KV stand-in for the Cohort worker's CONFIG binding.
    (name = "kv", worker = (
      modules = [(name = "kv.js", esModule = embed "kv.js")],
      compatibilityDate = "2026-04-01",
      bindings = [${embedText("KV_ENTRIES", "kv-entries.json")}])),
    # Outbound fetches may reach loopback (origin, collector) and nothing else.
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [
${sockets.join("\n")}
  ],
);
`;
}

// ---------------------------------------------------------------- wrk
/**
 * One wrk run against `target` (its name in messages). Every run (the origin alone, warm-ups,
 * saturated and 1-connection runs) must have no socket error and no response outside 2xx/3xx:
 * the report's "0 errors" and DESIGN.md's "0 5xx in every run" rest on it, and a worker answering
 * errors quickly would otherwise be measured as fast.
 */
function wrk(
  target,
  port,
  seconds,
  extraHeaders = {},
  connections = 16,
  requestPath = PAGE_PATH,
  { stallOk = false } = {},
) {
  const headers = { Host: HOST, ...BROWSER_HEADERS, ...extraHeaders };
  const args = ["-t1", `-c${connections}`, "--latency", `-d${seconds}s`, "--timeout", "5s"];
  for (const [name, value] of Object.entries(headers)) args.push("-H", `${name}: ${value}`);
  args.push(`http://127.0.0.1:${port}${requestPath}`);
  const result = spawnSync("wrk", args, { encoding: "utf8", timeout: (seconds + 30) * 1000 });
  if (result.status !== 0) fail(`wrk failed: ${result.stderr}${result.stdout}`);
  const parsed = parseWrk(result.stdout);
  const problem = wrkProblem(parsed);
  if (stallOk && problem && parsed.requests === 0 && parsed.socketErrors === 0 && parsed.non2xx === 0) return parsed;
  if (problem) {
    fail(
      `${target}, wrk -c${connections} -d${seconds}s ${requestPath}: ${problem}. The run fails on any error ` +
        `(workerd's log: ${WORK}/workerd.log, kept with BENCH_KEEP=1). wrk printed:\n${result.stdout}`,
    );
  }
  return parsed;
}

/**
 * One target's warm-up. A warm-up that finished no request within its seconds (and met no error)
 * is a stall, not a failure of the worker: it is logged with one timed request and workerd's last
 * log lines, and the warm-up runs again; a second stall fails the run, as does any error.
 * @param {{ key: string, port: number, headers: Record<string, string>, path?: string }} t
 */
async function warmUp(t) {
  const run = (attempt, stallOk) =>
    wrk(`${t.key} (warm-up${attempt})`, t.port, WARMUP, t.headers, 16, t.path, { stallOk });
  if (run("", true).requests > 0) return;
  const started = performance.now();
  const probe = await get(t.port, { Host: HOST, ...BROWSER_HEADERS, ...t.headers }, t.path ?? PAGE_PATH);
  const logTail = fs.readFileSync(path.join(WORK, "workerd.log"), "utf8").split("\n").slice(-5).join("\n");
  log(
    `warm-up of ${t.key} finished no request in ${WARMUP} s; one request then took ` +
      `${(performance.now() - started).toFixed(1)} ms (status ${probe.status}). workerd's last log lines:\n${logTail}`,
  );
  stalledWarmUps.push(t.key);
  run(", again", false);
}

/** Targets whose first warm-up stalled (the report lists them). */
const stalledWarmUps = [];

/** Why a parsed wrk run does not count, or undefined when it does. */
function wrkProblem(run) {
  const e = run.errors;
  const errors = e.connect + e.read + e.write + e.timeout + run.non2xx;
  if (errors > 0) {
    return (
      `${errors} error(s): socket errors connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}; ` +
      `non-2xx/3xx responses ${run.non2xx} of ${run.requests}`
    );
  }
  if (!(run.requests > 0) || !Number.isFinite(run.rps))
    return `no requests counted (requests ${run.requests}, req/s ${run.rps})`;
  return undefined;
}

/**
 * One target's run in one round: the 16-connection run's figures and workerd's and the origin's CPU
 * per request, then the 1-connection run's latencies (its errors added to the counts).
 * @typedef {Omit<ReturnType<typeof parseWrk>, "raw"> & { raw: undefined, cpuMs: number, originCpuMs: number,
 *   c1p50?: number, c1p99?: number }} Run
 */

/** @param {string} out what wrk printed */
function parseWrk(out) {
  const ms = (value, unit) => Number((Number(value) * { us: 0.001, ms: 1, s: 1000, m: 60000 }[unit]).toFixed(3));
  const pct = (p) => {
    const m = out.match(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m"));
    return m ? ms(m[1], m[2]) : NaN;
  };
  const requests = Number(out.match(/(\d+) requests in/)?.[1]);
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
  // wrk prints these two lines only when a count is not zero.
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const sock = out
    .match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)
    ?.slice(1)
    .map(Number) ?? [0, 0, 0, 0];
  const errors = { connect: sock[0], read: sock[1], write: sock[2], timeout: sock[3] };
  const socketErrors = sock.reduce((n, v) => n + v, 0);
  return { requests, rps, p50: pct(50), p99: pct(99), non2xx, socketErrors, errors, raw: out };
}

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// Ratios between two targets are taken round by round (each round runs every target once, minutes
// apart at most) and then the median of those: the machine's speed drifts by tens of percent
// between rounds, and a ratio of two independent medians would carry that drift.
/** Median over rounds of key's req/s ÷ base's req/s. */
const pairedRps = (runs, key, base) => median(runs[key].map((run, i) => run.rps / runs[base][i].rps));
/** Median over rounds of base's CPU per request ÷ key's: the throughput ratio one core would reach. */
const pairedCpu = (runs, key, base) => median(runs[key].map((run, i) => runs[base][i].cpuMs / run.cpuMs));

// ---------------------------------------------------------------- main
async function main() {
  fs.mkdirSync(WORK, { recursive: true });
  fs.writeFileSync(path.join(WORK, "pids"), "");
  const loadBefore = os.loadavg();

  log("bundling with wrangler deploy --dry-run");
  const bundles = Object.fromEntries(Object.keys(WORKERS).map((name) => [name, bundle(name)]));
  for (const b of Object.values(bundles)) {
    log(
      `  ${b.name}: upload ${b.uploadKiB} KiB, gzip ${b.gzipKiB} KiB, wasm ${b.wasmBytes} B (${b.wasmGzip} B gzip -9)`,
    );
  }

  // KV contents: the tenant config under tenant:<id>, one host:<hostname> per hostname.
  const tenant = JSON.parse(fs.readFileSync(path.join(HERE, "tenant.json"), "utf8"));
  const entries = tenantEntries(tenant);
  // The workload tenant: the committed file (checked by `cohort validate` in bench-edge.sh) must be
  // the translation of ../workload.json.
  const workloadTenant = JSON.parse(fs.readFileSync(path.join(HERE, "tenant-workload.json"), "utf8"));
  if (JSON.stringify(workloadTenant) !== JSON.stringify(WORKLOAD_TENANT)) {
    fs.writeFileSync(path.join(WORK, "tenant-workload.expected.json"), `${JSON.stringify(WORKLOAD_TENANT, null, 1)}\n`);
    fail(
      `bench/edge/tenant-workload.json is not the translation of bench/workload.json; see ${WORK}/tenant-workload.expected.json`,
    );
  }
  Object.assign(entries, tenantEntries(workloadTenant));
  fs.writeFileSync(path.join(WORK, "kv-entries.json"), JSON.stringify(entries));
  fs.writeFileSync(path.join(WORK, "growthbook-payload.json"), JSON.stringify(GROWTHBOOK_PAYLOAD));
  fs.writeFileSync(path.join(WORK, "three-edits.json"), JSON.stringify(THREE_EDITS));
  fs.copyFileSync(path.join(HERE, "kv.js"), path.join(WORK, "kv.js"));
  fs.copyFileSync(path.join(HERE, "queue.js"), path.join(WORK, "queue.js"));

  const originPort = await freePort();
  const collectorPort = await freePort();
  const featuresPort = await freePort();
  const origin = start(
    "origin",
    process.execPath,
    [path.join(HERE, "servers.mjs"), "origin", String(originPort)],
    "origin.log",
  );
  const collector = start(
    "collector",
    process.execPath,
    [path.join(HERE, "servers.mjs"), "collector", String(collectorPort)],
    "collector.log",
  );
  await waitFor(originPort, "origin", origin);
  await waitFor(collectorPort, "collector", collector);
  const features = start(
    "features",
    process.execPath,
    [path.join(HERE, "servers.mjs"), "features", String(featuresPort), path.join(WORK, "growthbook-payload.json")],
    "features.log",
  );
  await waitFor(featuresPort, "features", features);

  // The origin alone first: it must be far faster than any worker in front of it.
  log(`origin alone: wrk ${Math.min(DURATION, 5)} s`);
  const originAlone = wrk("origin-alone", originPort, Math.min(DURATION, 5));
  log(`  origin alone: ${originAlone.rps.toFixed(0)} req/s, p99 ${originAlone.p99} ms`);

  const ports = {};
  for (const name of Object.keys(SERVICES)) ports[name] = await freePort();
  ports.queue = await freePort();
  fs.writeFileSync(
    path.join(WORK, "config.capnp"),
    capnpConfig({ bundles, ports, originPort, collectorPort, featuresPort }),
  );
  const inspectorPort = PROFILE.length > 0 ? await freePort() : 0;
  const inspector = inspectorPort ? [`--inspector-addr=127.0.0.1:${inspectorPort}`] : [];
  const workerd = start("workerd", WORKERD, ["serve", path.join(WORK, "config.capnp"), ...inspector], "workerd.log");
  for (const name of Object.keys(SERVICES)) await waitFor(ports[name], `workerd socket ${name}`, workerd);
  const workerdVersion = execFileSync(WORKERD, ["--version"]).toString().trim();

  // Sanity: every worker answers 200; Cohort mints a cookie and rewrites; a returning visitor
  // gets no new cookie; both rewriters produce the same page.
  const pageFromOrigin = (await get(originPort, BROWSER_HEADERS)).body;
  // A new visitor whose variants edit the page (a unit in every experiment's control would see
  // the origin's page): the returning visitor measured below is this one.
  let first = await get(ports.cohort, BROWSER_HEADERS);
  for (let tries = 1; tries < 50 && first.status === 200 && first.body === pageFromOrigin; tries++) {
    first = await get(ports.cohort, BROWSER_HEADERS);
  }
  const cookie = stickyCookie(first);
  if (first.status !== 200 || !cookie)
    fail(`Cohort worker: status ${first.status}, no sticky cookie; see ${WORK}/workerd.log`);
  const returning = await get(ports.cohort, { ...BROWSER_HEADERS, cookie });
  let noEditCookie;
  const sanity = {
    cohortRewrote: first.body !== pageFromOrigin,
    cohortAssignments: first.headers["cache-control"],
    returningSetCookie: Boolean(returning.headers["set-cookie"]),
    returningSameBody: returning.body === first.body,
  };
  const unknown = await get(ports.cohort, { ...BROWSER_HEADERS, host: "unknown.bench.test" });
  sanity.unknownHostUntouched = unknown.body === pageFromOrigin && !unknown.headers["set-cookie"];
  const pass = await get(ports.passthrough, BROWSER_HEADERS);
  if (pass.status !== 200) fail("the pass-through did not answer 200");
  sanity.passthroughUntouched = pass.body === pageFromOrigin;
  if (!PEERS_ONLY) {
    const native = await get(ports["rewrite-native"], BROWSER_HEADERS);
    const lol = await get(ports["rewrite-lol"], BROWSER_HEADERS);
    const lolBuffered = await get(ports["rewrite-lol-buffered"], BROWSER_HEADERS);
    if (native.status !== 200 || lol.status !== 200) fail("a rewrite worker did not answer 200");
    const jsRewrite = await get(ports["js-rewrite"], BROWSER_HEADERS);
    sanity.rewritersAgree =
      native.body === lol.body && native.body === lolBuffered.body && native.body === jsRewrite.body;
    sanity.jsCopyUntouched = (await get(ports["js-copy"], BROWSER_HEADERS)).body === pageFromOrigin;
    sanity.rewritersChanged = native.body !== pageFromOrigin;
    sanity.rustPassthroughUntouched = (await get(ports["rust-passthrough"], BROWSER_HEADERS)).body === pageFromOrigin;
    // The page without edits: personalised (cookie, private), body exactly the origin's.
    const noEditHeaders = { ...BROWSER_HEADERS, ...NO_EDIT_HEADERS };
    const noEditFirst = await get(ports.cohort, noEditHeaders, NO_EDIT_PATH);
    noEditCookie = stickyCookie(noEditFirst);
    const noEdit = await get(ports.cohort, { ...noEditHeaders, cookie: noEditCookie }, NO_EDIT_PATH);
    const originNoEdit = await get(originPort, noEditHeaders, NO_EDIT_PATH);
    if (!noEditCookie || noEdit.body !== originNoEdit.body || !/private/.test(noEdit.headers["cache-control"] ?? "")) {
      fail(
        `Cohort worker, ${NO_EDIT_PATH}: expected a sticky cookie, a private response and the origin's body unedited`,
      );
    }
    if (!sanity.rewritersAgree) {
      fs.writeFileSync(path.join(WORK, "native.html"), native.body);
      fs.writeFileSync(path.join(WORK, "lol.html"), lol.body);
    }
  }
  const peers = await peerSanity({ ports, pageFromOrigin });
  log(`sanity: ${JSON.stringify(sanity)}`);
  // What the report states as fact about the workers must hold before anything is measured.
  const facts = {
    "Cohort rewrote the page": sanity.cohortRewrote,
    "a returning Cohort visitor got no Set-Cookie": !sanity.returningSetCookie && !peers.cohortReturningSetCookie,
    "a returning Cohort visitor got the same page": sanity.returningSameBody,
    "a host of no tenant passed through untouched": sanity.unknownHostUntouched,
    "the pass-through passed the page untouched": sanity.passthroughUntouched,
    "GrowthBook set its gbuuid cookie for a new visitor": peers.growthbookNewSetsCookie,
    ...(PEERS_ONLY
      ? {}
      : {
          "the rewriters changed the page": sanity.rewritersChanged,
          "the rewriters produced byte-identical pages (native.html, lol.html)": sanity.rewritersAgree,
          "the JS copy passed the page untouched": sanity.jsCopyUntouched,
          "the Rust pass-through passed the page untouched": sanity.rustPassthroughUntouched,
        }),
  };
  for (const [fact, holds] of Object.entries(facts))
    if (!holds) fail(`sanity: expected ${fact}; see ${WORK}/workerd.log`);
  log(`peer sanity: ${JSON.stringify(peers)}`);
  await sleep(500);
  const collectorAfterSanity = JSON.parse((await get(collectorPort, {}, "/stats")).body);
  log(`collector after sanity requests: ${JSON.stringify(collectorAfterSanity)}`);

  // The peer comparison: the workload visitor through each worker.
  const peerTargets = [
    { key: "passthrough", port: ports.passthrough, headers: {} },
    { key: "cohort-workload-new", port: ports.cohort, headers: WORKLOAD_HEADERS },
    {
      key: "cohort-workload-returning",
      port: ports.cohort,
      headers: { ...WORKLOAD_HEADERS, cookie: peers.cohortReturningCookie },
    },
    { key: "growthbook-new", port: ports.growthbook, headers: WORKLOAD_HEADERS },
    {
      key: "growthbook-returning",
      port: ports.growthbook,
      headers: { ...WORKLOAD_HEADERS, cookie: peers.growthbookReturningCookie },
    },
  ];
  const fullTargets = [
    { key: "rust-passthrough", port: ports["rust-passthrough"], headers: {} },
    // A host no tenant serves: the Cohort worker's fixed cost (src/entry.mjs, one handle call
    // answering from the isolate's cache that no tenant claims the host, the pass-through).
    { key: "cohort-unknown-host", port: ports.cohort, headers: { Host: "unknown.bench.test" } },
    { key: "cohort-new", port: ports.cohort, headers: {} },
    { key: "cohort-returning", port: ports.cohort, headers: { cookie } },
    {
      key: "cohort-no-edits",
      port: ports.cohort,
      headers: { ...NO_EDIT_HEADERS, cookie: noEditCookie },
      path: NO_EDIT_PATH,
    },
    { key: "js-copy", port: ports["js-copy"], headers: {} },
    { key: "js-rewrite", port: ports["js-rewrite"], headers: {} },
    { key: "rewrite-native", port: ports["rewrite-native"], headers: {} },
    { key: "rewrite-lol", port: ports["rewrite-lol"], headers: {} },
    { key: "rewrite-lol-buffered", port: ports["rewrite-lol-buffered"], headers: {} },
  ];
  const targets = PEERS_ONLY ? peerTargets : [...peerTargets, ...fullTargets];
  log(`warm-up: ${WARMUP} s per target`);
  for (const t of targets) await warmUp(t);
  if (PROFILE.length > 0) {
    await writeProfiles(
      bundles,
      targets
        .filter((t) => PROFILE.includes(t.key))
        .map((t) => ({ ...t, service: Object.keys(SERVICES).find((name) => ports[name] === t.port) ?? t.key })),
      inspectorPort,
      { workerdVersion, date: new Date().toISOString() },
    );
    return;
  }

  /** @type {Record<string, Run[]>} target → its runs, one per round */
  const runs = Object.fromEntries(targets.map((t) => [t.key, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const before = { workerd: cpuTicks(workerd.pid), origin: cpuTicks(origin.pid) };
      const result = wrk(`${t.key} (round ${round})`, t.port, DURATION, t.headers, 16, t.path);
      const after = { workerd: cpuTicks(workerd.pid), origin: cpuTicks(origin.pid) };
      const perRequest = (who) => ((after[who] - before[who]) * 1000) / CLK_TCK / result.requests;
      const run = {
        ...result,
        raw: undefined,
        cpuMs: perRequest("workerd"),
        originCpuMs: perRequest("origin"),
      };
      runs[t.key].push(run);
      log(
        `round ${round} ${t.key.padEnd(20)} ${run.rps.toFixed(0).padStart(6)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms  ` +
          `workerd ${run.cpuMs.toFixed(3)} ms CPU/req  errors ${run.non2xx + run.socketErrors}`,
      );
    }
    // Latency probes after the saturated runs, once workerd has drained their after-effects
    // (pending waitUntil beacons, garbage): run right behind a -c16 run, their p99 showed 50–150 ms
    // stalls that a quiet workerd does not have.
    await sleep(2000);
    for (const t of targets) {
      // The saturated run this round pushed above.
      const run = /** @type {Run} */ (runs[t.key].at(-1));
      const serial = wrk(`${t.key} (round ${round}, 1 connection)`, t.port, LATENCY_DURATION, t.headers, 1, t.path);
      run.c1p50 = serial.p50;
      run.c1p99 = serial.p99;
      run.non2xx += serial.non2xx;
      run.socketErrors += serial.socketErrors;
      log(`round ${round} ${t.key.padEnd(20)} -c1: p50 ${run.c1p50} ms  p99 ${run.c1p99} ms`);
    }
  }
  await sleep(1000); // let the last beacons land
  const collectorStats = JSON.parse((await get(collectorPort, {}, "/stats")).body);
  const queueStats = JSON.parse((await get(ports.queue, {}, "/stats")).body);
  const featuresStats = JSON.parse((await get(featuresPort, {}, "/stats")).body);
  // The report says new visitors' exposures left through the queue and GrowthBook served its
  // payload from the stand-in: both must have happened.
  if (!(queueStats.requests > 0))
    fail(
      `the delivery queue stub accepted no sends (${JSON.stringify(queueStats)}): Cohort's exposures did not leave through BEACONS`,
    );
  if (collectorStats.batches !== 0)
    fail(
      `${collectorStats.batches} exposure batch(es) reached the collector stub by the direct fallback: a queue send failed (see ${WORK}/workerd.log)`,
    );
  if (!(featuresStats.requests > 0))
    fail(`GrowthBook never fetched its payload from the API stand-in (${JSON.stringify(featuresStats)})`);

  const summary = Object.fromEntries(
    Object.entries(runs).map(([key, list]) => [
      key,
      {
        rps: median(list.map((r) => r.rps)),
        p50: median(list.map((r) => r.p50)),
        p99: median(list.map((r) => r.p99)),
        cpuMs: median(list.map((r) => r.cpuMs)),
        c1p50: median(list.map((r) => r.c1p50)),
        c1p99: median(list.map((r) => r.c1p99)),
        errors: list.reduce((n, r) => n + r.non2xx + r.socketErrors, 0),
      },
    ]),
  );
  const results = {
    date: new Date().toISOString(),
    machine: machineInfo(workerdVersion, loadBefore, os.loadavg()),
    config: { DURATION, ROUNDS, WARMUP, LATENCY_DURATION, host: HOST, path: PAGE_PATH },
    bundles,
    originAlone: { ...originAlone, raw: undefined },
    sanity,
    collectorAfterSanity,
    collectorStats,
    queueStats,
    featuresStats,
    stalledWarmUps,
    peers: { ...peers, cohortReturningCookie: undefined, growthbookReturningCookie: undefined },
    versions: versions(),
    runs,
    summary,
  };
  results.comparison = comparison(results);
  fs.writeFileSync(path.join(WORK, "results.json"), JSON.stringify(results, null, 2));
  fs.writeFileSync(OUT, report(results));
  if (JSON_OUT) {
    fs.mkdirSync(path.dirname(path.resolve(JSON_OUT)), { recursive: true });
    fs.writeFileSync(JSON_OUT, `${JSON.stringify(jsonResult(results), null, 2)}\n`);
    log(`wrote ${JSON_OUT}`);
  }
  log(`wrote ${path.relative(process.cwd(), OUT)} (raw figures: ${WORK}/results.json)`);
  console.log(`\n${report(results)}`);
}

function machineInfo(workerdVersion, loadBefore, loadAfter) {
  const cpu = os.cpus();
  return {
    cpu: `${cpu.length} × ${cpu[0]?.model ?? "?"}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: os.release(),
    node: process.version,
    workerd: workerdVersion,
    wrk: spawnSync("wrk", ["--version"], { encoding: "utf8" })
      .stdout.split("\n")[0]
      .replace(/ Copyright.*/, ""),
    load: `${loadBefore.map((l) => l.toFixed(2)).join(" ")} before, ${loadAfter.map((l) => l.toFixed(2)).join(" ")} after`,
  };
}

// ---------------------------------------------------------------- peer comparison figures
function versions() {
  const version = (pkg) =>
    JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
  return {
    "@growthbook/edge-cloudflare": version("@growthbook/edge-cloudflare"),
    "@growthbook/edge-utils": version("@growthbook/edge-utils"),
    "@growthbook/growthbook": version("@growthbook/growthbook"),
    wrangler: version("wrangler"),
  };
}

/** Ratios of the peer comparison and its targets (≥ 90% of pass-through, ahead of GrowthBook). */
function comparison(r) {
  // Unrounded: the report's tables and target lines print these same values.
  const ratio = (a, b) => pairedRps(r.runs, a, b);
  const cpu = (a, b) => pairedCpu(r.runs, a, b);
  const out = {};
  for (const visitor of ["new", "returning"]) {
    const cohort = `cohort-workload-${visitor}`;
    const gb = `growthbook-${visitor}`;
    const cohortVsPassthrough = ratio(cohort, "passthrough");
    const cohortVsGrowthbook = ratio(cohort, gb);
    out[visitor] = {
      cohortVsPassthrough,
      growthbookVsPassthrough: ratio(gb, "passthrough"),
      cohortVsGrowthbook,
      cpuCapacity: {
        cohortVsPassthrough: cpu(cohort, "passthrough"),
        growthbookVsPassthrough: cpu(gb, "passthrough"),
        cohortVsGrowthbook: cpu(cohort, gb),
      },
      targets: { atLeast90PercentOfPassthrough: cohortVsPassthrough >= 0.9, aheadOfGrowthbook: cohortVsGrowthbook > 1 },
    };
  }
  return out;
}

/**
 * The Cohort worker's overhead as paired ratios (round by round, medians): a rewritten page
 * against the same edits without Cohort (*JS pass-through + 3 edits*), a page without edits and a
 * host of no tenant against the JS pass-through; CPU capacity likewise.
 * @param {any} r
 */
function overhead(r) {
  const pair = (/** @type {string} */ key, /** @type {string} */ base) => ({
    rps: pairedRps(r.runs, key, base),
    cpu: pairedCpu(r.runs, key, base),
  });
  return {
    newVsEditsFloor: pair("cohort-new", "js-rewrite"),
    returningVsEditsFloor: pair("cohort-returning", "js-rewrite"),
    noEditsVsPassthrough: pair("cohort-no-edits", "passthrough"),
    unknownHostVsPassthrough: pair("cohort-unknown-host", "passthrough"),
    cpuMs: Object.fromEntries(
      ["cohort-new", "cohort-returning", "cohort-no-edits", "cohort-unknown-host", "js-rewrite", "passthrough"].map(
        (key) => [key, r.summary[key].cpuMs],
      ),
    ),
    wasmGzipBytes: r.bundles.cohort.wasmGzip,
  };
}

/**
 * Profile mode: each target loaded for DURATION seconds under V8's sampling profiler, and where its
 * CPU went, per request, into PROFILE_OUT.
 * @param {Record<string, { outdir: string, main?: string }>} bundles
 * @param {{ key: string, service: string, port: number, headers: Record<string, string>, path?: string }[]} targets
 * @param {number} inspectorPort
 * @param {{ workerdVersion: string, date: string }} about
 */
async function writeProfiles(bundles, targets, inspectorPort, about) {
  const missing = PROFILE.filter((key) => !targets.some((t) => t.key === key));
  if (missing.length > 0) fail(`BENCH_PROFILE names no target ${missing.join(", ")}`);
  const sections = [];
  for (const t of targets) {
    log(`profiling ${t.key}: ${DURATION} s`);
    /** @type {ReturnType<typeof parseWrk> | undefined} */
    let load;
    const profile = await profileWhile(inspectorPort, t.service, () => {
      load = wrk(`${t.key} (profiled)`, t.port, DURATION, t.headers, 16, t.path);
    });
    const measured = load ?? fail(`${t.key}: the profiled load did not run`);
    const b = bundles[SERVICES[t.service]];
    const main = b.main ?? fail(`the ${t.service} bundle has no script`);
    const summary = summarize(profile, bundleModules(fs.readFileSync(path.join(b.outdir, main), "utf8")));
    const perRequest = (/** @type {number} */ ms) => ((ms * 1000) / measured.requests).toFixed(1);
    sections.push(`## ${t.key}

${measured.requests} requests in ${DURATION} s (${Math.round(measured.rps)} req/s with the profiler on); the
isolate was busy ${summary.busyMs.toFixed(0)} ms of ${summary.totalMs.toFixed(0)} ms sampled.

| where | µs per request | share of busy time |
|---|---:|---:|
${summary.categories.map((c) => `| ${c.what} | ${perRequest(c.ms)} | ${(c.share * 100).toFixed(1)}% |`).join("\n")}

Top functions by self time:

| function | where | µs per request | share |
|---|---|---:|---:|
${summary.top.map((fn) => `| \`${fn.name}\` | ${fn.category} | ${perRequest(fn.ms)} | ${(fn.share * 100).toFixed(1)}% |`).join("\n")}
`);
  }
  const text = `# Edge worker CPU profiles

Generated by \`BENCH_PROFILE=${PROFILE.join(",")} bash scripts/bench-edge.sh\` on ${about.date} (${about.workerdVersion},
commit ${gitCommit()}); do not edit by hand. Each target was loaded with \`wrk -t1 -c16\` for ${DURATION} s
(after a ${WARMUP} s warm-up) while V8's sampling profiler ran in the worker's isolate over workerd's
inspector protocol (bench/edge/profile.mjs). Self time is sorted by where it was spent: the
Cohort worker's JavaScript (\`src/entry.mjs\`, \`src/html_rewriter.js\`), the wasm-bindgen glue,
the Wasm (the engine and the Rust I/O layer; its function names are stripped in the release
build), the runtime's APIs called from JavaScript (\`fetch\`, \`HTMLRewriter\`'s \`transform\` and
\`on\`, \`URL\`, \`Headers\`: native code the profiler charges to the API), the runtime outside
JavaScript (I/O, streams, HTML parsing), and garbage collection. The profiler's own overhead lowers req/s; the shares
are the point.

${sections.join("\n")}`;
  fs.writeFileSync(PROFILE_OUT, text);
  log(`wrote ${PROFILE_OUT}`);
}

/** The commit the benchmarked worker was built from (a `+` when the tree had changes). */
function gitCommit() {
  const run = (/** @type {string[]} */ args) => execFileSync("git", args, { cwd: HERE, encoding: "utf8" }).trim();
  try {
    return run(["rev-parse", "--short", "HEAD"]) + (run(["status", "--porcelain", "--", "src", "crates"]) ? "+" : "");
  } catch {
    return "unknown";
  }
}

/**
 * The overhead ratios of an earlier full run (BENCH_BASELINE) beside this run's, with the targets
 * the edge works towards; empty without a baseline.
 * @param {any} r
 */
function baselineSection(r) {
  const file = process.env.BENCH_BASELINE ?? path.join(HERE, "baseline.json");
  if (PEERS_ONLY || !fs.existsSync(file)) return "";
  const before = JSON.parse(fs.readFileSync(file, "utf8"));
  if (!before.overhead) fail(`${file} has no overhead figures: it is not the JSON of a full run`);
  const now = overhead(r);
  const pctOf = (/** @type {number} */ x) => `${Math.round(x * 100)}%`;
  const f = (/** @type {number} */ n) => n.toFixed(3);
  const kib = (/** @type {number} */ bytes) => (bytes / 1024).toFixed(1);
  const rows = [
    ["returning visitor, rewritten page ÷ the same edits without Cohort", "returningVsEditsFloor", 0.9],
    ["new visitor ÷ the same edits without Cohort", "newVsEditsFloor", 0.85],
    ["returning visitor, page without HTML edits ÷ JS pass-through", "noEditsVsPassthrough", 0.85],
    ["host of no tenant ÷ JS pass-through", "unknownHostVsPassthrough", 0.95],
  ].map(([label, key, target]) => {
    const [b, n] = [before.overhead[key], now[key]];
    const met = n.rps >= Number(target) ? "met" : "**not met**";
    return `| ${label} | ${pctOf(b.rps)} (CPU ${pctOf(b.cpu)}) | ${pctOf(n.rps)} (CPU ${pctOf(n.cpu)}) | ≥ ${pctOf(Number(target))}: ${met} |`;
  });
  // The peer workload's visitors take 11 edits on every request whatever their variants: the
  // steady before/after figure. The 10-experiment tenant's visitors are drawn per run.
  const workloadRows = ["cohort-workload-new", "cohort-workload-returning"].map((key) => {
    const [b, n] = [before.summary[key], r.summary[key]];
    const vs = (/** @type {any} */ run) => run[key].rps / run.passthrough.rps;
    return `| ${key}: workerd CPU per request; req/s ÷ JS pass-through | ${f(b.cpuMs)} ms; ${pctOf(vs(before.summary))} | ${f(n.cpuMs)} ms; ${pctOf(vs(r.summary))} | |`;
  });
  const cpuRows = Object.keys(now.cpuMs).map(
    (key) => `| workerd CPU per request, ${key} | ${f(before.overhead.cpuMs[key])} ms | ${f(now.cpuMs[key])} ms | |`,
  );
  const wasm = `| Cohort \`.wasm\`, gzip -9 | ${kib(before.overhead.wasmGzipBytes)} KiB | ${kib(now.wasmGzipBytes)} KiB | no larger: ${now.wasmGzipBytes <= before.overhead.wasmGzipBytes ? "met" : "**not met**"} |`;
  return `
## Against the baseline

The same method (this script, full mode) on the worker of commit ${before.commit ?? "?"}
(${before.date}, \`${path.relative(path.join(HERE, "../.."), file)}\`) and on this run's worker
(commit ${gitCommit()}). Ratios are paired round by round, medians; "CPU" is the same ratio by
workerd CPU per request (CPU capacity). Each run is on this shared 2-core machine: the rounds'
spread is in "Every run" below. The 10-experiment tenant's returning visitor is the first new
visitor of the run whose page is edited: its variants, and so how many edits its page takes, are
drawn anew in every run, and its cost moves with them. The peer workload's visitor
takes the same 11 edits in every run (last two rows but one): the steady comparison. Where each
target's time goes, and so why a target is missed: [profile.md](profile.md) (\`BENCH_PROFILE\`).

| measure | baseline | this run | target |
|---|---:|---:|---|
${rows.join("\n")}
${cpuRows.join("\n")}
${workloadRows.join("\n")}
${wasm}
`;
}

/** The JSON result for the orchestrator (BENCH_JSON_OUT): the peer comparison first, then all targets. */
function jsonResult(r) {
  const size = (b) =>
    b && { uploadKiB: b.uploadKiB, gzipKiB: b.gzipKiB, wasmBytes: b.wasmBytes, wasmGzipBytes: b.wasmGzip };
  return {
    benchmark: "edge",
    date: r.date,
    commit: gitCommit(),
    quick: QUICK,
    peersOnly: PEERS_ONLY,
    machine: r.machine,
    versions: { ...r.versions, workerd: r.machine.workerd, node: r.machine.node, wrk: r.machine.wrk },
    config: r.config,
    workload: { experiments: WORKLOAD.experiments.length, expectedTargeted: WORKLOAD.expected_targeted.length },
    bundles: Object.fromEntries(Object.entries(r.bundles).map(([k, b]) => [k, size(b)])),
    assigned: { cohort: r.peers.cohort, growthbook: r.peers.growthbook },
    responseBytes: r.peers.responseBytes,
    growthbookPayloadFetches: r.featuresStats.requests,
    originAlone: { rps: r.originAlone.rps, p50: r.originAlone.p50, p99: r.originAlone.p99 },
    // rps, p50/p99 (ms, 16 connections), c1p50/c1p99 (ms, 1 connection), cpuMs (workerd CPU per request)
    summary: r.summary,
    comparison: r.comparison,
    overhead: PEERS_ONLY ? undefined : overhead(r),
    queueStats: r.queueStats,
    collectorStats: r.collectorStats,
  };
}

// ---------------------------------------------------------------- report
function lolHtmlVersion() {
  const lock = fs.readFileSync(path.join(HERE, "lol-html-worker/Cargo.lock"), "utf8");
  return lock.match(/name = "lol_html"\nversion = "([^"]+)"/)?.[1] ?? "?";
}

function report(r) {
  const s = r.summary;
  const f = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
  const kib = (bytes) => (bytes / 1024).toFixed(1);
  const pct = (a, b) => `${((100 * a) / b).toFixed(0)}%`;
  const signed = (n) => `${n >= 0 ? "+" : "−"}${f(Math.abs(n))}`;
  const row = (key, label, base) => {
    const x = s[key];
    const vs = base
      ? `${pct(pairedRps(r.runs, key, base), 1)} | ${pct(pairedCpu(r.runs, key, base), 1)} | ${signed(x.c1p50 - s[base].c1p50)} | ${signed(x.c1p99 - s[base].c1p99)}`
      : "— | — | — | —";
    return `| ${label} | ${x.rps.toFixed(0)} | ${f(x.p50)} | ${f(x.p99)} | ${f(x.cpuMs, 3)} | ${f(x.c1p50)} | ${f(x.c1p99)} | ${vs} | ${x.errors} |`;
  };
  const header = (base) =>
    `| worker | req/s | p50 ms | p99 ms | CPU ms/req | p50 ms, 1 conn | p99 ms, 1 conn | req/s vs ${base} | CPU capacity vs ${base} | p50 added, 1 conn | p99 added, 1 conn | errors |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`;
  const b = r.bundles;
  const size = (name) =>
    `| ${WORKERS[name].label} | ${b[name].uploadKiB} | ${b[name].gzipKiB} | ${b[name].wasmBytes ? kib(b[name].wasmBytes) : "—"} | ${b[name].wasmBytes ? kib(b[name].wasmGzip) : "—"} |`;
  const cohortWasmOk = b.cohort.wasmBytes <= 1024 * 1024 && b.cohort.wasmGzip <= 400 * 1024;
  const vsPass = (key) => pairedRps(r.runs, key, "passthrough");
  const cpuVsPass = (key) => pairedCpu(r.runs, key, "passthrough");
  const newVsPass = PEERS_ONLY ? NaN : vsPass("cohort-new");
  const retVsPass = PEERS_ONLY ? NaN : vsPass("cohort-returning");
  const c = r.comparison;
  const verdict = (ok) => (ok ? "met" : "**not met**");
  const perRound = Object.entries(r.runs)
    .map(([key, list]) =>
      list
        .map(
          (x, i) =>
            `| ${key} | ${i + 1} | ${x.rps.toFixed(0)} | ${f(x.p50)} | ${f(x.p99)} | ${f(x.cpuMs, 3)} | ${f(x.originCpuMs, 3)} | ${f(x.c1p50)} | ${f(x.c1p99)} | ${x.non2xx + x.socketErrors} |`,
        )
        .join("\n"),
    )
    .join("\n");
  return `# Edge worker benchmark

Generated by \`scripts/bench-edge.sh\` (\`make bench-edge\`) on ${r.date}; do not edit by hand.

Machine: ${r.machine.cpu}, ${r.machine.memory}, Linux ${r.machine.kernel}; ${r.machine.workerd}, node ${r.machine.node},
${r.machine.wrk}. Load average (1/5/15 min): ${r.machine.load}. The machine has 2 cores shared by
wrk, workerd, the origin and the collector (and by anything else running), so absolute figures are
noisy; the ratios from the same run are the point.

Method: every worker is bundled with \`wrangler deploy --dry-run\` and served from one plain
\`workerd serve\` (one loopback socket each; not \`wrangler dev\`). Load: \`wrk -t1 -c16 --latency
-d${r.config.DURATION}s\` on \`GET ${r.config.path}\` with \`Host: ${r.config.host}\` and a desktop Chrome user agent
(the peer comparison: \`Host: ${WORKLOAD_HOST}\` and the workload visitor's headers, below),
${r.config.ROUNDS} rounds, the targets alternating within each round after a ${r.config.WARMUP} s warm-up each; after
the round's saturated runs, a ${r.config.LATENCY_DURATION} s run per target with one connection (\`-c1\`) measures latency without queueing.
Figures are the median of the rounds; a ratio between two targets is the median of the rounds'
ratios (each round runs every target once, so a drift in the machine's speed between rounds
cancels out). req/s, p50 and p99 are from the 16-connection run: that
loop saturates workerd, so its latencies are mostly queueing (16 ÷ throughput); "p99 added" uses
the 1-connection run (its p99 is at the mercy of whatever else the 2 cores are running; its p50 is
steady). "CPU capacity" is pass-through CPU ÷ worker CPU per request: the throughput
ratio one workerd core would reach, which noise from other processes on the machine disturbs
less than req/s does. CPU/request is workerd's user+system CPU (all its threads,
\`/proc/<pid>/stat\`) over the run divided by the requests served. The origin is a node HTTP server
returning a ${Buffer.byteLength(PAGE)}-byte HTML page with \`Cache-Control: public\`; alone it served
**${r.originAlone.rps.toFixed(0)} req/s** (p99 ${f(r.originAlone.p99)} ms).

## Peers: Cohort vs GrowthBook's edge worker, same workload

The shared workload (\`bench/workload.json\`): one visitor (country DE from the cf object, a mobile
Chrome, \`Accept-Language: de-DE\`, the site's cookie \`plan=free\`) and 20 experiments, each
targeting 2–3 of those attributes (equality, \`$in\`, \`$nin\`) with a 50/50 split. Every variant
of every experiment sets one attribute on \`<body>\` (\`data-exp-NN="control|treatment"\`), so the
page shows which experiments assigned the visitor; before the load both workers had to show
exactly the ${WORKLOAD.expected_targeted.length} experiments of \`expected_targeted\`, for new and returning visitors.

- **Cohort**: the worker above with a second tenant, \`bench/edge/tenant-workload.json\`
  (\`cohort validate\` passes; run.mjs checks it is the workload's translation), host
  \`${WORKLOAD_HOST}\`. Edits stream through workerd's native \`HTMLRewriter\`; a new visitor also
  gets the sticky cookie and its ${WORKLOAD.expected_targeted.length} exposures leave through the delivery queue.
- **GrowthBook**: \`@growthbook/edge-cloudflare\` ${r.versions["@growthbook/edge-cloudflare"]} (edge-utils ${r.versions["@growthbook/edge-utils"]}, SDK
  ${r.versions["@growthbook/growthbook"]}), its own \`handleRequest\` behind \`bench/edge/growthbook.js\`, which only
  adds the attributes GrowthBook's edge app does not derive itself (country, language, plan).
  Configured through its env vars; the payload (the 20 experiments as visual-editor experiments
  with the same edit, hashing on the \`gbuuid\` cookie) comes from a loopback stand-in for its API
  host, fetched ${r.featuresStats.requests} time(s) in the whole run (the SDK caches it in the isolate). It reads the
  whole origin body, parses it with node-html-parser, applies the edits and injects its browser SDK
  with the payload (page ${r.peers.responseBytes.growthbook} bytes against the origin's ${r.peers.responseBytes.origin}; Cohort's ${r.peers.responseBytes.cohort}). It sends no
  exposure from the edge: its tracking calls are deferred to the browser SDK in the page.
- new visitor: no cookie (Cohort mints a unit and cookie and beacons exposures; GrowthBook mints a
  gbuuid and sets it, \`PERSIST_UUID=true\`); returning visitor: Cohort's signed sticky cookie from
  an earlier response, GrowthBook's \`gbuuid\` cookie holding the workload visitor's id.

${header("pass-through")}
${row("passthrough", "pass-through (JS)")}
${row("cohort-workload-new", "**Cohort, new visitor**", "passthrough")}
${row("cohort-workload-returning", "**Cohort, returning visitor**", "passthrough")}
${row("growthbook-new", "GrowthBook edge, new visitor", "passthrough")}
${row("growthbook-returning", "GrowthBook edge, returning visitor", "passthrough")}

| worker | upload KiB | gzip KiB | .wasm KiB | .wasm gzip KiB |
|---|---:|---:|---:|---:|
${size("passthrough")}
${size("cohort")}
${size("growthbook")}

Targets (reported, not gated): edge throughput ≥ 90% of pass-through and ahead of GrowthBook's edge worker.
- new visitor: Cohort ${pct(c.new.cohortVsPassthrough, 1)} of pass-through (${verdict(c.new.targets.atLeast90PercentOfPassthrough)}; CPU capacity ${pct(c.new.cpuCapacity.cohortVsPassthrough, 1)}), GrowthBook ${pct(c.new.growthbookVsPassthrough, 1)}; Cohort ÷ GrowthBook ${c.new.cohortVsGrowthbook.toFixed(2)}× (${verdict(c.new.targets.aheadOfGrowthbook)}).
- returning visitor: Cohort ${pct(c.returning.cohortVsPassthrough, 1)} of pass-through (${verdict(c.returning.targets.atLeast90PercentOfPassthrough)}; CPU capacity ${pct(c.returning.cpuCapacity.cohortVsPassthrough, 1)}), GrowthBook ${pct(c.returning.growthbookVsPassthrough, 1)}; Cohort ÷ GrowthBook ${c.returning.cohortVsGrowthbook.toFixed(2)}× (${verdict(c.returning.targets.aheadOfGrowthbook)}).
${QUICK ? "\nQuick mode (`BENCH_QUICK=1`, the test command's smoke run): one short round, figures indicative only.\n" : ""}${PEERS_ONLY ? "\nPeer comparison only (`BENCH_PEERS_ONLY=1` or `BENCH_QUICK=1`): the other sections (Cohort's own cost split, HTMLRewriter vs lol_html) are in the full run, `bash scripts/bench-edge.sh`.\n" : ""}${
    PEERS_ONLY
      ? ""
      : `
## 1. Throughput: Cohort worker vs pass-through

Tenant: \`bench/edge/tenant.json\`, 10 running experiments (targeting on language, device, browser,
country; path globs; one layer of two; HTML edits, request headers, a route), read from a KV stub
service through workerd's real KV binding and cached in the isolate. On the benchmarked page a
visitor is in up to 7 experiments. Exposures leave as in production, through the \`BEACONS\` delivery
queue (workerd's queue binding to a stub service that accepts and counts the sends; the queue's
consumer, which signs and forwards batches to the collector, runs elsewhere and is not measured),
so gathering, encoding and the \`waitUntil\` send are part of the cost.

- **new visitor**: no cookie, so every request mints a unit, sets the cookie, rewrites the page and
  logs exposures, which go to the queue (it accepted ${r.queueStats.requests} sends, ${(r.queueStats.bytes / 2 ** 20).toFixed(1)} MiB, over the
  whole run, for both tenants; ${r.collectorStats.batches} batches reached the collector stub by the direct fallback).
- **returning visitor**: a valid cookie taken from a first response; same variants every time, no
  \`Set-Cookie\`, no exposures (already sent), page still rewritten.

${header("pass-through")}
${row("passthrough", "pass-through (JS)")}
${row("cohort-new", "**Cohort, new visitor**", "passthrough")}
${row("cohort-returning", "**Cohort, returning visitor**", "passthrough")}
${row("cohort-no-edits", "Cohort, returning visitor, page without HTML edits", "passthrough")}
${row("cohort-unknown-host", "Cohort, host of no tenant", "passthrough")}
${row("js-copy", "JS pass-through, response copied with one header", "passthrough")}
${row("js-rewrite", "JS pass-through + 3 edits, native HTMLRewriter", "passthrough")}
${row("rust-passthrough", "Rust pass-through (worker crate)", "passthrough")}
${row("rewrite-native", "Rust + 3 edits, native HTMLRewriter", "passthrough")}

*Page without HTML edits* is the same tenant on \`${NO_EDIT_PATH}\` for a returning visitor whose
experiments there act on the origin request only (a route and request headers, as server-side
experiments do): cookie, engine, personalised headers, but nothing streamed through a rewriter.
The last five rows split the cost. *Host of no tenant* is the Cohort worker's fixed cost (its
\`entry.mjs\`, one \`handle\` call answering from the isolate's cache that no tenant claims the
host, and the pass-through). *JS pass-through, response copied* is what any worker pays to change
a response header (\`Set-Cookie\`, \`Cache-Control\`): a new \`Response\` around the origin's body.
*JS pass-through + 3 edits* is the floor for any worker that edits the page: no engine, no cookie,
no beacon, only the edits streamed through workerd's \`HTMLRewriter\` (by the Cohort worker's own
\`src/html_rewriter.js\`); streaming a body through the isolate instead of handing it on untouched
is most of what a rewritten page costs. *Rust pass-through* and *Rust + 3 edits* do the same from
Rust through the \`worker\` crate: they are why the Cohort worker drives pages from JavaScript with
one call into the Wasm per request (\`src/serve.rs\`) rather than through the crate.

Bundle sizes (\`wrangler deploy --dry-run\`; Cloudflare limits the gzip figure; the wasm columns are
the \`.wasm\` alone, gzip -9):

| worker | upload KiB | gzip KiB | .wasm KiB | .wasm gzip KiB |
|---|---:|---:|---:|---:|
${size("passthrough")}
${size("cohort")}

Targets (reported, not gated; the run fails on errors and failed sanity checks only):
- ≥ 80% of pass-through throughput: new visitor ${pct(newVsPass, 1)} (${verdict(newVsPass >= 0.8)}), returning visitor ${pct(retVsPass, 1)} (${verdict(retVsPass >= 0.8)}); by CPU capacity ${pct(cpuVsPass("cohort-new"), 1)} and ${pct(cpuVsPass("cohort-returning"), 1)}. The same page's edits alone, without Cohort (*JS pass-through + 3 edits*), reach ${pct(vsPass("js-rewrite"), 1)} (CPU capacity ${pct(cpuVsPass("js-rewrite"), 1)}); against that floor Cohort reaches ${pct(pairedRps(r.runs, "cohort-new", "js-rewrite"), 1)} (new) and ${pct(pairedRps(r.runs, "cohort-returning", "js-rewrite"), 1)} (returning). On a page without HTML edits it reaches ${pct(vsPass("cohort-no-edits"), 1)} of pass-through (${verdict(vsPass("cohort-no-edits") >= 0.8)} there; CPU capacity ${pct(cpuVsPass("cohort-no-edits"), 1)}), and on a host it does not serve ${pct(vsPass("cohort-unknown-host"), 1)}.
- p99 added ≤ 1 ms (1-connection runs): new visitor ${signed(s["cohort-new"].c1p99 - s.passthrough.c1p99)} ms, returning ${signed(s["cohort-returning"].c1p99 - s.passthrough.c1p99)} ms: ${
          // A p99 comparison means something only when the baseline's own tail is quiet.
          s.passthrough.c1p99 <= 5
            ? `${verdict(s["cohort-new"].c1p99 - s.passthrough.c1p99 <= 1)} / ${verdict(s["cohort-returning"].c1p99 - s.passthrough.c1p99 <= 1)}`
            : `**not measurable in this run**: the pass-through's own p99 was ${f(s.passthrough.c1p99)} ms against a p50 of ${f(s.passthrough.c1p50)} ms (stalls from the shared machine and from the other isolates sharing workerd's one thread). The steady figure is p50 added: new visitor ${signed(s["cohort-new"].c1p50 - s.passthrough.c1p50)} ms, returning ${signed(s["cohort-returning"].c1p50 - s.passthrough.c1p50)} ms`
        }.
- release \`.wasm\` ≤ 1 MiB and ≤ 400 KiB gzip: ${kib(b.cohort.wasmBytes)} KiB, ${kib(b.cohort.wasmGzip)} KiB gzip (${verdict(cohortWasmOk)}).
${baselineSection(r)}
## 2. HTML rewriting: workerd's HTMLRewriter vs lol_html in Wasm

Two minimal Rust workers (\`bench/edge/lol-html-worker\`, same \`worker\` crate, same release profile,
name section stripped like the Cohort build) that fetch the same page and apply the same 3 edits
(\`set_text h1.title\`, \`set_attribute a.cta class\`, \`insert_html .price after\`), parsed from
cohort-core \`Action\` JSON on every request. \`rewrite-native\` passes them to \`src/html_rewriter.js\`
(the Cohort worker's own shim over workerd's streaming \`HTMLRewriter\`); \`rewrite-lol\` runs
lol_html ${lolHtmlVersion()} inside the Wasm, **streaming**: each body chunk is written to the rewriter and
whatever it has emitted is passed on at once (\`rewrite-lol-buffered\`, the same bundle with
\`LOL_BUFFERED\` set, reads the whole body and rewrites it in one call: the difference between the
two is the cost of streaming through JS ReadableStreams, not of lol_html). All produced byte-identical pages (checked before the load; the run fails otherwise).

${header("native")}
${row("rewrite-native", "Rust + native HTMLRewriter")}
${row("rewrite-lol", "Rust + lol_html in Wasm, streaming", "rewrite-native")}
${row("rewrite-lol-buffered", "Rust + lol_html in Wasm, buffered", "rewrite-native")}
${row("passthrough", "(pass-through JS, for scale)")}

| worker | upload KiB | gzip KiB | .wasm KiB | .wasm gzip KiB |
|---|---:|---:|---:|---:|
${size("rewrite-native")}
${size("rewrite-lol")}

lol_html adds ${kib(b["rewrite-lol"].wasmBytes - b["rewrite-native"].wasmBytes)} KiB of Wasm
(${kib(b["rewrite-lol"].wasmGzip - b["rewrite-native"].wasmGzip)} KiB gzip); on top of the Cohort worker's
${kib(b.cohort.wasmBytes)} KiB that would be about ${kib(b.cohort.wasmBytes + b["rewrite-lol"].wasmBytes - b["rewrite-native"].wasmBytes)} KiB
(${kib(b.cohort.wasmGzip + b["rewrite-lol"].wasmGzip - b["rewrite-native"].wasmGzip)} KiB gzip) against the 1 MiB / 400 KiB budget.
`
  }
## Every run

Errors are enforced, not only counted: every wrk run above (the origin alone, the warm-ups, the
saturated and the 1-connection runs, for every target) had 0 socket errors (connect, read, write,
timeout) and 0 responses outside 2xx/3xx, because \`bench/edge/run.mjs\` fails the whole run,
naming the target and the counts, on any. The checks before the load (every worker answered 200
with the expected page) and after it (the delivery queue accepted the exposures, none took the
direct fallback) passed too: they stop the run the same way. A warm-up that finishes no request in
its seconds is logged with one timed request and run again; a second stall stops the run. Warm-ups
that stalled once in this run: ${r.stalledWarmUps.length ? r.stalledWarmUps.join(", ") : "none"}.

| target | round | req/s | p50 ms | p99 ms | workerd CPU ms/req | origin CPU ms/req | p50 ms, 1 conn | p99 ms, 1 conn | errors |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${perRound}
`;
}

await main();
// The children keep the event loop alive: stop them and leave.
stopAll();
process.exit(0);
