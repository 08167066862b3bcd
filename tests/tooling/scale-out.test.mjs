// bench/scale-out.mjs, whose tables DESIGN.md sections 6 and 8 quote: it runs, its outage
// arithmetic is the plain product it claims, and isolating the hot tenants is what evens the
// shards out (a change that broke either would change DESIGN.md's conclusions).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";

const ROOT = path.resolve(import.meta.dirname, "../..");
const figures = JSON.parse(
  execFileSync(process.execPath, [path.join(ROOT, "bench/scale-out.mjs"), "--json"], { encoding: "utf8" }),
);

test("an outage's backlog is its rate times its length, and drains only above the arrival rate", () => {
  const [hour] = figures.outage;
  assert.equal(hour.hours, 1);
  assert.equal(hour.backlogExposures, 72_000 * 3600);
  for (const { capacity, drainHoursAtSpike, drainHoursAtAverage } of hour.drain) {
    if (capacity <= 72_000) assert.equal(drainHoursAtSpike, null, "JSON writes an endless drain as null");
    else assert.ok(Math.abs(drainHoursAtSpike - 259_200_000 / (capacity - 72_000) / 3600) < 1e-9);
    assert.ok(drainHoursAtAverage < (drainHoursAtSpike ?? Infinity));
  }
});

test("hashing alone leaves the hot tenant's shard several times the mean; isolating it evens them out", () => {
  const { hashed, isolated, largestTenantGbPerDay } = figures.skew;
  assert.ok(hashed.largestGbPerDayMedian >= largestTenantGbPerDay, "one shard holds the largest tenant");
  assert.ok(hashed.maxOverMeanMedian > 5);
  assert.ok(isolated.isolatedShards >= 1);
  assert.ok(isolated.maxOverMeanMedian < hashed.maxOverMeanMedian / 2);
});
