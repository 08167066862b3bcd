// One worker serves every tenant: its isolate's config cache must stay within its bounds however
// many tenants and hostnames it sees (crates/core/src/edge/config_cache.rs, docs/edge.md "Config
// cache"). In real workerd: 5,000 tenants (every hundredth with 200 experiments) through one
// isolate with a 16 MiB tenant budget, and a flood of made-up Host headers. Every request must
// succeed; the figures come from the worker's own `config.cache` log line (its counting allocator
// measures the Wasm heap).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { cohortBinary } from "../../scripts/lib/cohort.mjs";
import { request } from "../../scripts/lib/http.mjs";
import { sleep } from "../../scripts/lib/wait.mjs";
import { putKv, startWorker } from "../../scripts/lib/wrangler.mjs";
import { SECRET, logEvents, startCollector, startOrigin } from "./harness.mjs";

const TENANTS = 5000;
const LARGE_EVERY = 100;
const TENANT_BUDGET_MIB = 16;
// What the isolate's heap may hold in all: the tenant budget, the hosts, and the worker itself.
const HEAP_BUDGET_MIB = 24;

/** Tenant `n`: two experiments, or 200 for every hundredth. @param {number} n */
function tenantConfig(n) {
  const experiments = Array.from({ length: n % LARGE_EVERY === 0 ? 200 : 2 }, (_, e) => ({
    key: `exp-${e}`,
    status: "running",
    paths: ["/"],
    targeting: { device: { $in: ["desktop", "mobile", "tablet", "other"] } },
    variants: [
      { key: "control", weight: 5000 },
      { key: "treatment", weight: 5000, actions: [{ type: "set_text", selector: "h1", text: `Variant ${e}` }] },
    ],
  }));
  return {
    schema: 1,
    tenant: `t${n}`,
    version: 1,
    hostnames: [`t${n}.test`],
    hash_key: n.toString(16).padStart(32, "0"),
    experiments,
  };
}

let stateDir;
let configDir;
let origin;
let collector;

before(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-many-tenants-"));
  configDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-many-configs-"));
  const files = [];
  for (let n = 0; n < TENANTS; n++) {
    const file = path.join(configDir, `t${n}.json`);
    fs.writeFileSync(file, JSON.stringify(tenantConfig(n)));
    files.push(file);
  }
  // The KV layout comes from `cohort kv-entries`, as `cohort publish` writes it.
  const entries = JSON.parse(execFileSync(cohortBinary(), ["kv-entries", ...files], { maxBuffer: 1 << 28 }).toString());
  putKv(
    stateDir,
    Object.fromEntries(entries.map((/** @type {{ key: string, value: string }} */ e) => [e.key, e.value])),
  );
  origin = await startOrigin();
  collector = await startCollector();
});

after(async () => {
  await origin?.close();
  await collector?.close();
  for (const dir of [stateDir, configDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Sends `hosts` through the worker, `concurrency` at a time; resolves with each answer's status
 * and whether the tenant served it (a new visitor's sticky cookie).
 * @param {{ port: number }} worker
 * @param {string[]} hosts
 * @param {number} concurrency
 */
async function visit(worker, hosts, concurrency) {
  /** @type {{ host: string, status: number, served: boolean }[]} */
  const answers = [];
  let next = 0;
  const lane = async () => {
    while (next < hosts.length) {
      const host = hosts[next++];
      const response = await request({ port: worker.port, host, path: "/" });
      const served = (response.headers["set-cookie"] ?? []).some((c) => c.startsWith("__Host-cohort="));
      answers.push({ host, status: response.status, served });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return answers;
}

/** The worker's latest cache line after one more request (the line is logged on a lookup). */
async function cacheStats(worker) {
  await sleep(1100);
  await request({ port: worker.port, host: "t1.test", path: "/" });
  await sleep(300);
  const lines = logEvents(worker, "config.cache");
  assert.ok(lines.length > 0, "the worker logs its cache counters");
  return Object.fromEntries(Object.entries(lines.at(-1)).map(([k, v]) => [k, k === "event" ? v : Number(v)]));
}

const vars = () => ({
  COHORT_SECRET: SECRET,
  ORIGIN_OVERRIDE: `http://127.0.0.1:${origin.port}`,
  COLLECTOR_URL: `http://127.0.0.1:${collector.port}`,
  CONFIG_CACHE_STATS_SECONDS: "1",
});

test(`${TENANTS} tenants through one isolate stay within a ${TENANT_BUDGET_MIB} MiB tenant budget`, async (t) => {
  const worker = await startWorker({
    stateDir,
    vars: { ...vars(), CONFIG_CACHE_MIB: String(TENANT_BUDGET_MIB), CONFIG_CACHE_HOST_READS_PER_SECOND: "100000" },
  });
  try {
    const started = Date.now();
    const everyone = Array.from({ length: TENANTS }, (_, n) => `t${n}.test`);
    const again = Array.from({ length: 1000 }, (_, i) => `t${(i * 7919) % TENANTS}.test`);
    const answers = await visit(worker, [...everyone, ...again], 16);
    const seconds = (Date.now() - started) / 1000;
    const failed = answers.filter((a) => a.status !== 200);
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} requests failed`);
    const unserved = answers.filter((a) => !a.served);
    assert.deepEqual(unserved.slice(0, 5), [], `${unserved.length} requests were not served by their tenant`);
    const stats = await cacheStats(worker);
    t.diagnostic(`${answers.length} requests in ${seconds.toFixed(1)} s; cache: ${JSON.stringify(stats)}`);
    assert.ok(stats.tenant_bytes <= TENANT_BUDGET_MIB * 1024 * 1024, `tenant bytes ${stats.tenant_bytes}`);
    assert.ok(stats.evicted_tenants > 0, "the budget was reached, so tenants were dropped");
    assert.ok(stats.tenants > 100, `it still holds many tenants (${stats.tenants})`);
    assert.ok(stats.heap_bytes <= HEAP_BUDGET_MIB * 1024 * 1024, `heap ${stats.heap_bytes} bytes`);
    // A 200-experiment tenant measured in the Wasm: the bytes of the largest tenants dominate.
    assert.ok(stats.tenant_bytes / stats.tenants > 1000, "tenant sizes are measured, not zero");
  } finally {
    worker.stop();
  }
});

test("a flood of made-up Host headers costs a bounded number of KV reads and never fails a request", async (t) => {
  const worker = await startWorker({ stateDir, vars: vars() });
  try {
    const known = ["t1.test", "t2.test", "t3.test"];
    assert.ok((await visit(worker, known, 1)).every((a) => a.served));
    const started = Date.now();
    const random = Array.from({ length: 3000 }, (_, i) => `r${i}-${Math.random().toString(36).slice(2)}.example`);
    // Known hosts keep coming among the flood.
    const mixed = random.flatMap((host, i) => (i % 100 === 0 ? [host, known[i % 3]] : [host]));
    const answers = await visit(worker, mixed, 32);
    const seconds = (Date.now() - started) / 1000;
    assert.deepEqual(
      answers.filter((a) => a.status !== 200).slice(0, 5),
      [],
      "every request is answered (passed through untouched)",
    );
    const knownAnswers = answers.filter((a) => known.includes(a.host));
    assert.ok(knownAnswers.length >= 30 && knownAnswers.every((a) => a.served), "known tenants stay served");
    const stats = await cacheStats(worker);
    t.diagnostic(`${answers.length} requests in ${seconds.toFixed(1)} s; cache: ${JSON.stringify(stats)}`);
    // 50 reads a second of never-seen hosts, plus the starting burst and the known tenants' reads.
    const allowed = 50 * (seconds + 2) + 50 + 2 * known.length;
    assert.ok(stats.kv_reads <= allowed, `${stats.kv_reads} KV reads in ${seconds.toFixed(1)} s (at most ${allowed})`);
    assert.ok(stats.host_reads_refused > 0, "the flood hit the allowance");
    assert.ok(stats.unknown_hosts <= 5000 && stats.hosts >= known.length);
  } finally {
    worker.stop();
  }
});

test("concurrent first requests for a tenant share its two KV reads and are all served", async (t) => {
  // Workers cannot wake one request from another's work: a waiter that did so was cancelled as
  // hung (a 500). Each tenant's first 16 requests arrive at once, pages and assignments alike.
  const worker = await startWorker({ stateDir, vars: vars() });
  try {
    const tenants = ["t1.test", "t2.test", "t3.test"];
    /** @type {{ host: string, status: number, served: boolean }[]} */
    const answers = [];
    for (const host of tenants) {
      const burst = Array.from({ length: 16 }, (_, i) =>
        request({ port: worker.port, host, path: i % 2 ? "/" : "/_cohort/assignments?path=/" }),
      );
      for (const [i, response] of (await Promise.all(burst)).entries()) {
        const served =
          i % 2 ? (response.headers["set-cookie"] ?? []).some((c) => c.startsWith("__Host-cohort=")) : true;
        answers.push({ host, status: response.status, served });
      }
    }
    assert.deepEqual(
      answers.filter((a) => a.status !== 200 || !a.served),
      [],
      "every request of the bursts is answered by its tenant",
    );
    const stats = await cacheStats(worker);
    t.diagnostic(`cache: ${JSON.stringify(stats)}`);
    assert.equal(stats.tenants, tenants.length);
    // Each key read once: a host per tenant, the tenant, and the host wrangler's readiness probe used.
    assert.equal(stats.kv_reads, stats.hosts + stats.tenants + stats.unknown_hosts, "one read per key");
  } finally {
    worker.stop();
  }
});

test("a tenant load whose first visitor left still ends, and serves the visitors waiting for it", async (t) => {
  // Every config read first waits 400 ms, holding the cold load open. The first visitor gives up
  // after 150 ms, mid-read; a second arrives while the read is under way and waits for it, and must
  // be served once the first visitor's read and then its own end. (Workers cancels a request whose
  // client leaves; `wrangler dev` lets it run on, so this suite cannot show the cancellation
  // itself, which is why the read runs in `wait_until`: docs/edge.md, "Config cache".)
  const worker = await startWorker({ stateDir, vars: { ...vars(), COHORT_TEST_KV_READ_DELAY_MS: "400" } });
  try {
    const host = "t11.test";
    const first = request({ port: worker.port, host, path: "/", timeoutMs: 150 }).then(
      () => "answered",
      () => "gone",
    );
    await sleep(50);
    const waiting = await request({ port: worker.port, host, path: "/" });
    assert.equal(await first, "gone", "the first visitor left before the read ended");
    t.diagnostic(`the waiting visitor: ${Math.round(waiting.ms)} ms`);
    assert.equal(waiting.status, 200);
    assert.ok(
      (waiting.headers["set-cookie"] ?? []).some((c) => c.startsWith("__Host-cohort=")),
      "the waiting visitor is served by its tenant",
    );
    // The host's read (the first visitor's), then the tenant's (its own): about 800 ms.
    assert.ok(waiting.ms < 1500, `the waiting visitor took ${Math.round(waiting.ms)} ms`);
  } finally {
    worker.stop();
  }
});
