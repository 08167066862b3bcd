// The committed JSON Schema of the tenant config (schemas/tenant-config.schema.json, printed by
// `cohort schema`; crates/cli/tests/cli.rs holds the two equal) checked with an independent
// validator, Ajv: every example and benchmark config is valid, and the shapes the engine refuses
// for their form (unknown fields, wrong types, missing fields, unknown enum values) are invalid.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const read = (relative) => JSON.parse(fs.readFileSync(path.join(ROOT, relative), "utf8"));
const schema = read("schemas/tenant-config.schema.json");
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);
const errors = () => JSON.stringify(validate.errors, null, 1);

const CONFIGS = [
  "examples/tenants/shop.json",
  "examples/tenants/news.json",
  "bench/edge/tenant.json",
  "bench/edge/tenant-workload.json",
];

test("the schema is draft 2020-12 and names itself", () => {
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.match(schema.title, /Cohort tenant config/);
});

for (const file of CONFIGS) {
  test(`${file} is valid`, () => {
    assert.ok(validate(read(file)), errors());
  });
}

test("an example config names the schema for editors", () => {
  assert.equal(read("examples/tenants/shop.json").$schema, "../../schemas/tenant-config.schema.json");
});

const shop = () => structuredClone(read("examples/tenants/shop.json"));
/** @type {[string, (config: any) => unknown][]} */
const invalid = [
  ["an unknown top-level field", (c) => (c.experimentz = [])],
  ["an unknown experiment field", (c) => (c.experiments[0].weight = 1)],
  ["a version that is not a number", (c) => (c.version = "14")],
  ["a missing tenant id", (c) => delete c.tenant],
  ["an unknown status", (c) => (c.experiments[0].status = "live")],
  ["an unknown action type", (c) => (c.experiments[0].variants[0].actions = [{ type: "teleport" }])],
  ["a negative holdout", (c) => (c.holdout = -1)],
];
for (const [what, change] of invalid) {
  test(`${what} is invalid`, () => {
    const config = shop();
    change(config);
    assert.equal(validate(config), false, `accepted ${what}`);
  });
}
