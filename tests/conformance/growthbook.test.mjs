// Cohort's targeting conditions and `growthbook-v2` / `growthbook-v1` bucketing against GrowthBook's own JavaScript
// SDK (the version pinned in package.json). Every vector is run through GrowthBook; the condition
// cases that differ must be exactly those marked `growthbook_differs`, each naming a difference
// described in docs/config.md ("Deliberate differences from GrowthBook").
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { evalCondition, GrowthBook } from "@growthbook/growthbook";

const root = new URL("../../", import.meta.url);
const readJson = (path) => JSON.parse(readFileSync(new URL(path, root), "utf8"));

const conditionCases = readJson("testdata/conditions.json").cases;
const bucketing = readJson("testdata/bucketing.json");
const evaluations = readJson("testdata/evaluations.json");
const configDoc = readFileSync(new URL("docs/config.md", root), "utf8");

// The package exports only `evalCondition` and the GrowthBook classes; its hash function lives in
// util.mjs, which the "exports" map hides from bare specifiers, so it is loaded by file URL.
const growthbookPackage = import.meta.resolve("@growthbook/growthbook/package.json");
const { hash: growthbookHash } = await import(new URL("./dist/esm/util.mjs", growthbookPackage).href);

const DIFFERENCES_ANCHOR = "docs/config.md#deliberate-differences-from-growthbook";
const differencesSection = configDoc.match(/^### Deliberate differences from GrowthBook\n([\s\S]*?)^#/m)?.[1];

// GrowthBook's hash returns the bucket divided by 10000.
const toBucket = (fraction) => Math.round(fraction * 10000);

test("GrowthBook's evalCondition agrees with every condition vector except those marked growthbook_differs", () => {
  const comparable = conditionCases.filter((c) => "expected" in c);
  // Cases with an expected error are rejected by Cohort at load time; GrowthBook has no such step.
  assert.equal(comparable.length + conditionCases.filter((c) => "error" in c).length, conditionCases.length);
  assert.ok(comparable.length >= 200, `only ${comparable.length} condition cases with an expected result`);

  const differing = [];
  for (const c of comparable) {
    const growthbook = evalCondition(structuredClone(c.attributes), structuredClone(c.condition));
    assert.equal(typeof growthbook, "boolean", `${c.name}: GrowthBook returned ${growthbook}`);
    if (growthbook !== c.expected) differing.push(`${c.name} (Cohort ${c.expected}, GrowthBook ${growthbook})`);
  }
  const listed = comparable
    .filter((c) => "growthbook_differs" in c)
    .map((c) => `${c.name} (Cohort ${c.expected}, GrowthBook ${!c.expected})`);
  assert.deepEqual(
    differing.sort(),
    listed.sort(),
    "the cases that differ from GrowthBook must be exactly those marked growthbook_differs",
  );
  console.log(`${comparable.length} condition cases compared with GrowthBook, ${differing.length} differ as listed`);
});

test("every growthbook_differs note names a difference described in docs/config.md", () => {
  assert.ok(differencesSection, "docs/config.md has a 'Deliberate differences from GrowthBook' section");
  const described = [...differencesSection.matchAll(/^- \*\*(.+?)\*\*/gm)].map((m) =>
    m[1].replaceAll("`", "").replace(/\.$/, "").toLowerCase(),
  );
  const marked = conditionCases.filter((c) => "growthbook_differs" in c);
  assert.ok(marked.length > 0);
  for (const c of marked) {
    const note = c.growthbook_differs;
    assert.equal(typeof note, "string", c.name);
    assert.ok("expected" in c, `${c.name}: only a case with an expected result can differ in its result`);
    assert.ok(note.includes(DIFFERENCES_ANCHOR), `${c.name}: the note points at ${DIFFERENCES_ANCHOR}`);
    const difference = note.split(";")[0].toLowerCase();
    assert.ok(described.includes(difference), `${c.name}: "${difference}" is not among ${JSON.stringify(described)}`);
  }
});

// Cohort's hash modes named after GrowthBook's, with the hash version each reproduces.
const HASH_VERSIONS = { "growthbook-v2": 2, "growthbook-v1": 1 };

for (const [mode, version] of Object.entries(HASH_VERSIONS)) {
  const vectors = mode.replace("-", "_");
  test(`GrowthBook's hash version ${version} gives every ${vectors} bucket in testdata/bucketing.json`, () => {
    const cases = bucketing[vectors];
    assert.ok(cases.length >= 30, `only ${cases.length} ${vectors} cases`);
    for (const { seed, unit, bucket } of cases) {
      assert.equal(
        toBucket(growthbookHash(seed, unit, version)),
        bucket,
        `seed ${JSON.stringify(seed)}, unit ${JSON.stringify(unit)}`,
      );
    }
    console.log(`${cases.length} ${vectors} buckets compared with GrowthBook's hash version ${version}`);
  });
}

// Steps of Cohort's evaluation that decide before the experiment's own hash is computed
// (docs/config.md, "How assignment works"); GrowthBook has no counterpart for the tenant holdout or
// layers, so those decisions are not compared.
const DECIDED_BEFORE_HASH = new Set([
  "path_not_matched",
  "unknown_forced_variant",
  "draft",
  "stopped",
  "not_started",
  "ended",
  "paused",
  "not_targeted",
  "holdout",
  "outside_layer",
]);

test("the GrowthBook SDK running each growthbook-v2 and growthbook-v1 experiment agrees with testdata/evaluations.json", () => {
  const experiments = evaluations.config.experiments.filter((e) => e.hash in HASH_VERSIONS);
  for (const mode of Object.keys(HASH_VERSIONS))
    assert.ok(
      experiments.some((e) => e.hash === mode),
      `evaluations.json has a ${mode} experiment`,
    );
  let compared = 0;
  const outcomes = new Set();
  for (const experiment of experiments) {
    // The same experiment in GrowthBook's terms: fractions instead of basis points.
    const growthbookExperiment = {
      key: experiment.key,
      seed: experiment.seed ?? experiment.key,
      hashVersion: HASH_VERSIONS[experiment.hash],
      coverage: (experiment.coverage ?? 10000) / 10000,
      weights: experiment.variants.map((v) => v.weight / 10000),
      variations: experiment.variants.map((v) => v.key),
    };
    for (const { context, expected } of evaluations.cases) {
      const decision = expected.find((d) => d.experiment === experiment.key);
      const where = `${experiment.key} for ${context.unit}: ${JSON.stringify(decision)}`;
      if (decision.source !== "bucketed" && decision.reason !== "outside_coverage") {
        const step = decision.reason ?? decision.source;
        assert.ok(DECIDED_BEFORE_HASH.has(step) || ["forced", "winner", "sticky"].includes(step), where);
        continue;
      }
      const growthbook = new GrowthBook({ attributes: { id: context.unit } });
      try {
        const result = growthbook.run(growthbookExperiment);
        // The SDK reports the bucket only for a unit it assigns, so the hash is also asked directly.
        const bucket = toBucket(
          growthbookHash(growthbookExperiment.seed, context.unit, growthbookExperiment.hashVersion),
        );
        assert.equal(bucket, decision.bucket, `bucket of ${where}`);
        if (decision.source === "bucketed") {
          assert.equal(result.inExperiment, true, where);
          assert.equal(result.hashUsed, true, where);
          assert.equal(toBucket(result.bucket), decision.bucket, `bucket of ${where}`);
          assert.equal(result.value, decision.variant, where);
        } else {
          assert.equal(result.inExperiment, false, where);
        }
      } finally {
        growthbook.destroy();
      }
      outcomes.add(decision.source ?? decision.reason);
      compared += 1;
    }
  }
  assert.deepEqual([...outcomes].sort(), ["bucketed", "outside_coverage"], "both outcomes are exercised");
  console.log(`${compared} growthbook-v2 and growthbook-v1 decisions compared with the GrowthBook SDK`);
});
