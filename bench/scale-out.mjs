// Scale-out on paper, checked by simulation (DESIGN.md sections 6 and 8). Two questions:
//
// 1. Tenant skew across Citus-style shards. Tenants are hashed by `tenant_id` onto SHARDS shards
//    (Citus distributes a table by hashing its distribution column into ranges). Traffic follows
//    a Zipf law over the tenants with the largest one fixed at A8's 20 %. For TRIALS sets of tenant
//    ids (a seed per trial), it reports the shard sizes (GB a day and TB over the retention) before
//    and after isolating every tenant whose own share exceeds one shard's fair share on a shard of
//    its own (Citus's tenant isolation), and the largest shard relative to the mean.
// 2. A region-wide outage of the collectors: exposures keep arriving at OUTAGE_RATE while nothing
//    is consumed; the queue holds the backlog (records, bytes, messages) and drains it afterwards
//    at what the collectors store beyond what still arrives. Ingest per collector is the measured
//    PostgreSQL figure (docs/collector.md, "Benchmark"); the edge packs about 280 exposures into a
//    queue message (bench/edge/results.md).
//
//   node bench/scale-out.mjs          Markdown tables on stdout
//   node bench/scale-out.mjs --json   the same figures as JSON
//
// No dependencies: node's standard library only.

/** DESIGN.md section 2: stored bytes per day (exposures and conversions), and A7's retention. */
const GB_PER_DAY = 105.1;
const RETENTION_DAYS = 90;
/** DESIGN.md section 6's shard count, and A8: the largest tenant's share of traffic. */
const SHARDS = 32;
const LARGEST_SHARE = 0.2;
const TENANTS = 10_000;
/** Zipf exponent of the other tenants' shares (an assumption: web traffic is close to 1). */
const ZIPF_EXPONENT = 1.0;
const TRIALS = 200;

/** The 10 × spike of section 2 and the average it falls back to. */
const OUTAGE_RATE = 72_000;
const AVERAGE_RATE = 7_200;
/** Measured: PostgreSQL ingest per collector (docs/collector.md, "Benchmark"), wire bytes per
 * exposure (DESIGN.md section 2), exposures per queue message (bench/edge/results.md). */
const INGEST_PER_COLLECTOR = 35_856;
const WIRE_BYTES_PER_EXPOSURE = 222.4;
const EXPOSURES_PER_MESSAGE = 280;
const OUTAGE_HOURS = [1, 6, 24];
const COLLECTORS = [2, 4, 8];

/** FNV-1a over the id's bytes, then mixed: a stand-in for Citus's hash of the distribution column. */
function hash32(text) {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h >>> 0;
}

/** Traffic shares: the largest tenant at LARGEST_SHARE, the others Zipf-distributed over the rest. */
function shares() {
  const weights = Array.from({ length: TENANTS - 1 }, (_, i) => 1 / (i + 2) ** ZIPF_EXPONENT);
  const total = weights.reduce((a, b) => a + b, 0);
  return [LARGEST_SHARE, ...weights.map((w) => ((1 - LARGEST_SHARE) * w) / total)];
}

/** @param {number[]} sorted @param {number} q */
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/**
 * Shard loads (shares of traffic) for one trial; with `isolate`, tenants above a shard's fair
 * share get shards of their own, and the rest hash onto the SHARDS shards.
 * @param {number[]} tenantShares @param {number} trial @param {boolean} isolate
 */
function shardLoads(tenantShares, trial, isolate) {
  const loads = new Array(SHARDS).fill(0);
  const isolated = [];
  tenantShares.forEach((share, i) => {
    if (isolate && share > 1 / SHARDS) isolated.push(share);
    else loads[hash32(`tenant-${trial}-${i}`) % SHARDS] += share;
  });
  return { loads, isolated };
}

function skew() {
  const tenantShares = shares();
  const result = {};
  for (const isolate of [false, true]) {
    const maxOverMean = [];
    const largestGbPerDay = [];
    let isolatedShards = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const { loads, isolated } = shardLoads(tenantShares, trial, isolate);
      const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
      const largest = Math.max(...loads);
      maxOverMean.push(largest / mean);
      largestGbPerDay.push(largest * GB_PER_DAY);
      isolatedShards = isolated.length;
    }
    maxOverMean.sort((a, b) => a - b);
    largestGbPerDay.sort((a, b) => a - b);
    const meanGbPerDay = (GB_PER_DAY * (1 - (isolate ? LARGEST_SHARE : 0))) / SHARDS;
    result[isolate ? "isolated" : "hashed"] = {
      isolatedShards,
      meanGbPerDay,
      largestGbPerDayMedian: quantile(largestGbPerDay, 0.5),
      largestGbPerDayP95: quantile(largestGbPerDay, 0.95),
      largestTbRetainedP95: (quantile(largestGbPerDay, 0.95) * RETENTION_DAYS) / 1000,
      maxOverMeanMedian: quantile(maxOverMean, 0.5),
      maxOverMeanP95: quantile(maxOverMean, 0.95),
    };
  }
  result.largestTenantGbPerDay = LARGEST_SHARE * GB_PER_DAY;
  return result;
}

function outage() {
  return OUTAGE_HOURS.map((hours) => {
    const backlog = OUTAGE_RATE * hours * 3600;
    const drain = COLLECTORS.map((collectors) => {
      const capacity = collectors * INGEST_PER_COLLECTOR;
      const atSpike = capacity > OUTAGE_RATE ? backlog / (capacity - OUTAGE_RATE) / 3600 : Infinity;
      const atAverage = backlog / (capacity - AVERAGE_RATE) / 3600;
      return { collectors, capacity, drainHoursAtSpike: atSpike, drainHoursAtAverage: atAverage };
    });
    return {
      hours,
      backlogExposures: backlog,
      backlogGb: (backlog * WIRE_BYTES_PER_EXPOSURE) / 1e9,
      backlogMessages: Math.ceil(backlog / EXPOSURES_PER_MESSAGE),
      messagesPerSecond: OUTAGE_RATE / EXPOSURES_PER_MESSAGE,
      drain,
    };
  });
}

const figures = { skew: skew(), outage: outage() };
if (process.argv.includes("--json")) {
  console.log(JSON.stringify(figures, null, 2));
} else {
  const f = (n, digits = 1) =>
    n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const hours = (h) => (Number.isFinite(h) ? `${f(h)} h` : "never (capacity below the spike)");
  const { hashed, isolated } = figures.skew;
  console.log(`### Shards (${TENANTS.toLocaleString("en-US")} tenants, the largest at ${LARGEST_SHARE * 100} %, the rest Zipf s = ${ZIPF_EXPONENT}; ${SHARDS} hash shards; ${TRIALS} trials)

| placement | mean shard, GB/day | largest shard, GB/day (median, p95 of trials) | largest ÷ mean (median, p95) | largest over ${RETENTION_DAYS} days, p95 |
|---|---:|---:|---:|---:|
| hashed by tenant_id | ${f(hashed.meanGbPerDay)} | ${f(hashed.largestGbPerDayMedian)}, ${f(hashed.largestGbPerDayP95)} | ${f(hashed.maxOverMeanMedian, 2)}, ${f(hashed.maxOverMeanP95, 2)} | ${f(hashed.largestTbRetainedP95, 2)} TB |
| tenants above 1/${SHARDS} of traffic isolated (${isolated.isolatedShards} shard${isolated.isolatedShards === 1 ? "" : "s"} of their own, ${f(figures.skew.largestTenantGbPerDay)} GB/day for the largest) | ${f(isolated.meanGbPerDay)} | ${f(isolated.largestGbPerDayMedian)}, ${f(isolated.largestGbPerDayP95)} | ${f(isolated.maxOverMeanMedian, 2)}, ${f(isolated.maxOverMeanP95, 2)} | ${f(isolated.largestTbRetainedP95, 2)} TB |

### A region-wide collector outage at ${OUTAGE_RATE.toLocaleString("en-US")} exposures/s (${f(figures.outage[0].messagesPerSecond, 0)} queue messages/s)

| outage | backlog, exposures | backlog, GB | messages | ${COLLECTORS.map((c) => `drain with ${c} collectors (${(c * INGEST_PER_COLLECTOR).toLocaleString("en-US")}/s) while ${OUTAGE_RATE.toLocaleString("en-US")}/s / ${AVERAGE_RATE.toLocaleString("en-US")}/s keep arriving`).join(" | ")} |
|---|---:|---:|---:|${COLLECTORS.map(() => "---").join("|")}|
${figures.outage
  .map(
    (o) =>
      `| ${o.hours} h | ${o.backlogExposures.toLocaleString("en-US")} | ${f(o.backlogGb)} | ${o.backlogMessages.toLocaleString("en-US")} | ${o.drain
        .map((d) => `${hours(d.drainHoursAtSpike)} / ${hours(d.drainHoursAtAverage)}`)
        .join(" | ")} |`,
  )
  .join("\n")}`);
}
