// The soak's quick mode (bench/soak/run.mjs --quick, docs/soak.md): 20,000 requests through the
// edge worker and its delivery queue into the real collector, with the same faults and the same
// accounts as `make soak`'s million. The run exits non-zero when any account does not hold; its
// report is printed either way.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";

import { ROOT } from "../../scripts/lib/paths.mjs";

test("soak, quick: every exposure and conversion stored exactly once through kill -9, a publish, KV and collector outages", (t) => {
  const run = spawnSync(process.execPath, [path.join(ROOT, "bench/soak/run.mjs"), "--quick"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  t.diagnostic(run.stdout.trim());
  assert.equal(run.status, 0, `the soak's accounts do not hold:\n${run.stderr}`);
  assert.match(run.stdout, /every account exact/);
});
