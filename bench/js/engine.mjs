// Engine, Wasm vs JS: Cohort's browser build (crates/browser, wasm-bindgen
// --target web) against GrowthBook's JavaScript SDK (@growthbook/growthbook), in one Node process,
// on the shared workload (bench/workload.json): one visitor, 20 experiments with 2-3-attribute
// targeting and a 50/50 split.
//
//   node bench/js/engine.mjs [--quick] [--out FILE] [--pkg DIR]
//
// Builds the browser package with scripts/build-browser.sh into a scratch dir unless --pkg names an
// already built one. One operation = "evaluate the 20 experiments for the visitor":
// - cohort: `engine.assign(unit, attributes, path)` on an Engine compiled once, as a page calls it:
//   the attributes object in, an object of experiment → variant out (crates/browser/src/lib.rs).
// - cohort-json: `JSON.parse(engine.evaluate(JSON.stringify(context)))`, the JSON API's whole round
//   trip (every decision with its reason).
// - cohort-evaluate-only: `engine.evaluate(contextJson)` with the context string made once and the
//   result left as a string (the Wasm's share of the JSON API).
// - growthbook: 20 × `gb.run(experiment)` on one GrowthBook instance holding the visitor's
//   attributes. `run` is the SDK's synchronous API for inline experiments, the GrowthBook concept
//   that matches a Cohort experiment (condition + variations + weights + coverage, result says
//   inExperiment and the variation); evalFeature would add a feature → rule lookup around the same
//   runExperiment call.
// - growthbook-new-instance: the same 20 runs on a fresh `new GrowthBook({attributes})` each time,
//   as server-side code that makes one instance per request does (for scale, not the target).
// Before measuring, each engine must assign exactly the experiments in `expected_targeted`.
// Timing: a warm-up per case, then rounds alternating the cases, each case running for a fixed time
// per round; ops/s is the median of the rounds, and a ratio is the median of the per-round ratios
// (the cases of one round ran seconds apart, so load from other processes on the machine shifts
// both alike). Prints one JSON document (stdout, or --out FILE).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import zlib from "node:zlib";

import { GrowthBook } from "@growthbook/growthbook";

import { ROOT } from "../../scripts/lib/paths.mjs";
import { cohortTenant, growthbookExperiments, loadWorkload } from "./workload.mjs";

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const QUICK = flag("--quick");
const OUT = option("--out");
// Seconds per case and round; --quick: one ~1 s round per case.
const SECONDS = QUICK ? 1 : Number(process.env.BENCH_JS_SECONDS ?? 2);
const ROUNDS = QUICK ? 1 : Number(process.env.BENCH_JS_ROUNDS ?? 5);
// Long enough for V8 to tier the Wasm up (Liftoff → TurboFan) before the first round.
const WARMUP = QUICK ? 0.3 : 2;
const TARGET_RATIO = 5;

const log = (message) => console.error(`[bench-js] ${message}`);
const wasmBindgenVersion = () => {
  try {
    return execFileSync("wasm-bindgen", ["--version"], { encoding: "utf8" }).trim().split(" ").pop();
  } catch {
    return null;
  }
};

// ---------------------------------------------------------------- Cohort's browser build
let pkg = option("--pkg");
if (!pkg) {
  pkg = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-browser-pkg-"));
  log(`building the browser package into ${pkg}`);
  execFileSync("bash", [path.join(ROOT, "scripts/build-browser.sh"), pkg], {
    cwd: ROOT,
    stdio: ["ignore", process.stderr, process.stderr],
  });
}
const wasmPath = path.join(pkg, "cohort_browser_bg.wasm");
const wasmBytes = fs.readFileSync(wasmPath);
const glue = await import(pathToFileURL(path.join(pkg, "cohort_browser.js")).href);
// --target web glue: the default export instantiates from bytes (or a URL, which Node's fetch
// cannot read from disk), so hand it the bytes.
await glue.default({ module_or_path: wasmBytes });

const workload = loadWorkload();
const visitor = workload.visitor;
const expected = [...workload.expected_targeted].sort();

const engine = new glue.Engine(JSON.stringify(cohortTenant(workload)));
const context = { unit: visitor.id, attributes: visitor.attributes, path: "/" };
const contextJson = JSON.stringify(context);

// ---------------------------------------------------------------- GrowthBook's JS SDK
const gbExperiments = growthbookExperiments(workload);
const gbAttributes = { id: visitor.id, ...visitor.attributes };
const gb = new GrowthBook({ attributes: gbAttributes });

// ---------------------------------------------------------------- the cases
const cases = {
  cohort: () => engine.assign(visitor.id, visitor.attributes, "/"),
  "cohort-json": () => JSON.parse(engine.evaluate(JSON.stringify(context))),
  "cohort-evaluate-only": () => engine.evaluate(contextJson),
  growthbook: () => {
    const results = new Array(gbExperiments.length);
    for (let i = 0; i < gbExperiments.length; i++) results[i] = gb.run(gbExperiments[i]);
    return results;
  },
  "growthbook-new-instance": () => {
    const g = new GrowthBook({ attributes: gbAttributes });
    const results = new Array(gbExperiments.length);
    for (let i = 0; i < gbExperiments.length; i++) results[i] = g.run(gbExperiments[i]);
    return results;
  },
};

// ---------------------------------------------------------------- nothing measured empty
const sameSet = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
function check(name, assigned, variants) {
  const got = [...assigned].sort();
  if (!sameSet(got, expected)) {
    console.error(`bench-js: ${name} assigns ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
    process.exit(1);
  }
  // A 50/50 split over 11 experiments: both variants should occur (not everyone in control).
  const distinct = new Set(variants);
  if (distinct.size < 2) {
    console.error(
      `bench-js: ${name} put the visitor in one variant everywhere (${[...distinct]}): is the split applied?`,
    );
    process.exit(1);
  }
  return Object.fromEntries(got.map((k) => [k, variants[[...assigned].indexOf(k)]]));
}
const cohortDecisions = cases["cohort-json"]().filter((d) => d.variant !== undefined);
const cohortAssigned = check(
  "cohort-json",
  cohortDecisions.map((d) => d.experiment),
  cohortDecisions.map((d) => d.variant),
);
// The page API must give exactly the JSON API's assignments.
const pageAssigned = cases.cohort();
const sortedEntries = (/** @type {Record<string, string>} */ o) =>
  JSON.stringify(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
if (sortedEntries(pageAssigned) !== sortedEntries(cohortAssigned)) {
  console.error(
    `bench-js: assign answers ${JSON.stringify(pageAssigned)}, the JSON API ${JSON.stringify(cohortAssigned)}`,
  );
  process.exit(1);
}
// The evaluate-only case must do the round trip's work, only without the JSON at either end.
const evaluateOnly = cases["cohort-evaluate-only"]();
if (JSON.stringify(JSON.parse(evaluateOnly)) !== JSON.stringify(cases["cohort-json"]())) {
  console.error(
    `bench-js: cohort-evaluate-only answers ${evaluateOnly}, the round trip ${JSON.stringify(cases["cohort-json"]())}`,
  );
  process.exit(1);
}
const gbChecked = {};
for (const name of ["growthbook", "growthbook-new-instance"]) {
  const results = cases[name]();
  const inExp = results.map((r, i) => [gbExperiments[i].key, r]).filter(([, r]) => r.inExperiment);
  gbChecked[name] = check(
    name,
    inExp.map(([k]) => k),
    inExp.map(([, r]) => r.value),
  );
}
// Same SDK, same attributes: a fresh instance per evaluation must assign what the shared one does.
if (JSON.stringify(gbChecked.growthbook) !== JSON.stringify(gbChecked["growthbook-new-instance"])) {
  console.error(
    `bench-js: growthbook-new-instance assigns ${JSON.stringify(gbChecked["growthbook-new-instance"])}, growthbook ${JSON.stringify(gbChecked.growthbook)}`,
  );
  process.exit(1);
}
const gbAssigned = Object.fromEntries(
  cases
    .growthbook()
    .map((r, i) => [gbExperiments[i].key, r])
    .filter(([, r]) => r.inExperiment)
    .map(([k, r]) => [k, r.value]),
);
log(`cohort assigns ${Object.keys(cohortAssigned).length} experiments: ${JSON.stringify(cohortAssigned)}`);
log(`growthbook assigns ${Object.keys(gbAssigned).length} experiments: ${JSON.stringify(gbAssigned)}`);

// ---------------------------------------------------------------- timing
let sink = 0; // keeps results alive so nothing is optimised away
function runFor(fn, seconds) {
  const deadline = performance.now() + seconds * 1000;
  let ops = 0;
  let batch = 64;
  const start = performance.now();
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < batch; i++) sink += fn() ? 1 : 0;
    ops += batch;
    now = performance.now();
    if (now - start < 50) batch *= 2;
  }
  return (ops * 1000) / (now - start);
}
const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const loadBefore = os.loadavg();
for (const fn of Object.values(cases)) runFor(fn, WARMUP);
/** @type {Record<string, number[]>} case → ops/s per round */
const rounds = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const [name, fn] of Object.entries(cases)) {
    const opsPerSecond = runFor(fn, SECONDS);
    if (!(Number.isFinite(opsPerSecond) && opsPerSecond > 0)) {
      console.error(`bench-js: ${name} measured ${opsPerSecond} ops/s in round ${round}`);
      process.exit(1);
    }
    rounds[name].push(Math.round(opsPerSecond));
    log(`round ${round} ${name.padEnd(24)} ${Math.round(opsPerSecond).toString().padStart(9)} ops/s`);
  }
}
const summary = Object.fromEntries(
  Object.entries(rounds).map(([name, list]) => {
    const opsPerSecond = median(list);
    return [name, { opsPerSecond, usPerOp: Number((1e6 / opsPerSecond).toFixed(3)), rounds: list }];
  }),
);
/** Median over the rounds of a's ops/s ÷ b's in the same round. */
const ratioOf = (a, b) => Number(median(rounds[a].map((x, i) => x / rounds[b][i])).toFixed(2));
const ratio = ratioOf("cohort", "growthbook");
const gbPackage = JSON.parse(
  fs.readFileSync(path.join(ROOT, "node_modules/@growthbook/growthbook/package.json"), "utf8"),
);
const cpus = os.cpus();
const result = {
  benchmark: "engine-wasm-vs-js",
  date: new Date().toISOString(),
  quick: QUICK,
  machine: {
    cpu: `${cpus.length} × ${cpus[0]?.model ?? "?"}`,
    load: `${loadBefore.map((l) => l.toFixed(2)).join(" ")} before, ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} after`,
  },
  versions: {
    node: process.version,
    "@growthbook/growthbook": gbPackage.version,
    "wasm-bindgen": wasmBindgenVersion(),
  },
  cohortWasm: { bytes: wasmBytes.length, gzipBytes: zlib.gzipSync(wasmBytes, { level: 9 }).length },
  method: {
    operation: "evaluate the workload's 20 experiments for its one visitor",
    secondsPerCaseAndRound: SECONDS,
    rounds: ROUNDS,
    warmupSeconds: WARMUP,
    statistic: "median of rounds",
  },
  workload: { experiments: workload.experiments.length, expectedTargeted: expected.length },
  assigned: { cohort: cohortAssigned, growthbook: gbAssigned },
  cases: summary,
  // Medians of per-round ratios.
  ratio: {
    "cohort/growthbook": ratio,
    "cohort-json/growthbook": ratioOf("cohort-json", "growthbook"),
    "cohort-evaluate-only/growthbook": ratioOf("cohort-evaluate-only", "growthbook"),
    "cohort/growthbook-new-instance": ratioOf("cohort", "growthbook-new-instance"),
  },
  target: { "cohort/growthbook": `>= ${TARGET_RATIO}`, met: ratio >= TARGET_RATIO },
};
const text = `${JSON.stringify(result, null, 2)}\n`;
if (OUT) {
  fs.mkdirSync(path.dirname(path.resolve(OUT)), { recursive: true });
  fs.writeFileSync(OUT, text);
  log(`wrote ${OUT}`);
} else {
  process.stdout.write(text);
}
log(
  `cohort ${summary.cohort.opsPerSecond} ops/s, growthbook ${summary.growthbook.opsPerSecond} ops/s: ${ratio.toFixed(2)}× (target ≥ ${TARGET_RATIO}×: ${ratio >= TARGET_RATIO ? "met" : "not met"})`,
);
if (sink < 0) console.log(sink);
