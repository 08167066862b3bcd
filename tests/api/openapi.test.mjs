// The collector's OpenAPI description (schemas/collector-openapi.json, printed by `cohort openapi`;
// crates/cli/tests/cli.rs holds the two equal) against the real binary: an independent validator
// (@seriousme/openapi-schema-validator, the OpenAPI 3.1 meta-schema) accepts the document, and every
// answer the collector gives to real requests (successes and refusals, on every operation) has a
// status the document lists for that operation and a body its schema accepts (Ajv, JSON Schema
// 2020-12). A route, status or field the code has and the description lacks fails here.
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { adminToken, readToken, startCohortCollector } from "../../scripts/lib/cohort.mjs";
import { freePort } from "../../scripts/lib/http.mjs";
import { ROOT } from "../../scripts/lib/paths.mjs";

const SECRET = "openapi-suite-platform-secret-0123456789";
const TENANT = "shop";
const EXPERIMENT = "hero-banner";
const document = JSON.parse(fs.readFileSync(path.join(ROOT, "schemas/collector-openapi.json"), "utf8"));
const shopConfig = JSON.parse(fs.readFileSync(path.join(ROOT, "examples/tenants/shop.json"), "utf8"));

const ajv = new Ajv2020({ allErrors: true, strict: false });
ajv.addSchema(document, "openapi");

/** @type {Set<string>} operations (`METHOD template`) some answer of this suite checked */
const checked = new Set();

/**
 * The operation of `method` whose path template matches `requestPath`.
 * @param {string} method
 * @param {string} requestPath
 */
function operationFor(method, requestPath) {
  const pathname = requestPath.split("?")[0];
  for (const [template, item] of Object.entries(document.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`);
    if (pattern.test(pathname) && item[method.toLowerCase()])
      return { template, operation: item[method.toLowerCase()] };
  }
  assert.fail(`the description has no ${method} operation for ${pathname}`);
}

/**
 * Calls the collector and checks the answer against the description.
 * @param {string} method
 * @param {string} requestPath
 * @param {{ token?: string, body?: unknown, headers?: Record<string, string>, rawBody?: string }} [options]
 */
async function call(method, requestPath, { token, body, headers = {}, rawBody } = {}) {
  const payload = rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
  const response = await fetch(`${collector.url}${requestPath}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(payload === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: payload,
  });
  const text = await response.text();
  const { template, operation } = operationFor(method, requestPath);
  const documented = operation.responses[String(response.status)];
  assert.ok(
    documented,
    `${method} ${template} answered ${response.status}, which the description does not list: ${text}`,
  );
  const type = (response.headers.get("content-type") ?? "").split(";")[0];
  assert.ok(documented.content?.[type], `${method} ${template} ${response.status} answered ${type}, not documented`);
  const schema = documented.content[type].schema;
  /** @type {any} the API's JSON, read field by field */
  let parsed = text;
  if (type === "application/json") {
    parsed = JSON.parse(text);
    const validate = ajv.compile({ $ref: `openapi${schema.$ref}` });
    assert.ok(
      validate(parsed),
      `${method} ${template} ${response.status} does not match ${schema.$ref}: ${JSON.stringify(validate.errors, null, 1)}\n${text}`,
    );
  }
  checked.add(`${method} ${template}`);
  return { status: response.status, body: parsed };
}

/** @param {string} purpose @param {string} tenant */
const tenantKey = (purpose, tenant) => createHmac("sha256", SECRET).update(`cohort/v1/${purpose}\0${tenant}`).digest();

/** Signed beacon headers for `body`, as the edge's queue consumer sends them. @param {string} body */
function signed(body) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = createHmac("sha256", tenantKey("beacon-signing", TENANT))
    .update(`${timestamp}.${body}`)
    .digest("hex");
  return { "cohort-tenant": TENANT, "cohort-timestamp": timestamp, "cohort-signature": signature };
}

function records() {
  const now = Date.now();
  const exposures = [];
  const events = [];
  for (let i = 0; i < 60; i++) {
    const unit = `unit-${i}`;
    const variant = i % 2 === 0 ? "control" : "free-shipping";
    const id = createHash("sha256")
      .update(["exposure", TENANT, EXPERIMENT, unit].join("\0"))
      .digest("hex")
      .slice(0, 32);
    exposures.push({
      id,
      tenant: TENANT,
      experiment: EXPERIMENT,
      variant,
      unit,
      config_version: shopConfig.version,
      timestamp: now - 3_600_000 + i * 1000,
      country: "DE",
      device: "mobile",
    });
    if (i % 3 === 0)
      events.push({
        id: `${unit}.purchase`,
        tenant: TENANT,
        unit,
        metric: "purchase",
        value: 20 + i,
        timestamp: now - 60_000,
      });
  }
  return { exposures, events };
}

let dir;
/** @type {Awaited<ReturnType<typeof startCohortCollector>>} */
let collector;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-openapi-test-"));
  collector = await startCohortCollector({
    port: await freePort(),
    database: path.join(dir, "cohort.db"),
    secret: SECRET,
    args: ["--tenant-config", path.join(ROOT, "examples/tenants/shop.json")],
  });
});

after(async () => {
  await collector?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("the description is valid OpenAPI 3.1 by an independent validator, which refuses a broken copy", async () => {
  const validator = new Validator();
  const result = await validator.validate(structuredClone(document));
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 1));
  assert.equal(validator.version, "3.1");
  const broken = structuredClone(document);
  broken.paths["/healthz"].get.responses = "ok";
  assert.equal((await new Validator().validate(broken)).valid, false, "a response list that is a string is refused");
});

test("ingest answers, accepted and refused, are what the description says", async () => {
  const { exposures, events } = records();
  const exposureBody = JSON.stringify(exposures);
  const stored = await call("POST", "/v1/exposures", { rawBody: exposureBody, headers: signed(exposureBody) });
  assert.deepEqual(stored.body, { accepted: 60, inserted: 60, duplicates: 0 });
  const eventBody = JSON.stringify(events);
  assert.equal((await call("POST", "/v1/events", { rawBody: eventBody, headers: signed(eventBody) })).status, 200);
  assert.equal((await call("POST", "/v1/exposures", { rawBody: exposureBody })).status, 401);
  const broken = "[{";
  assert.equal((await call("POST", "/v1/events", { rawBody: broken, headers: signed(broken) })).status, 400);
  const foreign = JSON.stringify([{ ...exposures[0], tenant: "news" }]);
  assert.equal((await call("POST", "/v1/exposures", { rawBody: foreign, headers: signed(foreign) })).status, 400);
});

test("results, the experiment list and the timeline match their schemas", async () => {
  const token = readToken(TENANT, SECRET);
  const listing = await call("GET", `/v1/tenants/${TENANT}/experiments`, { token });
  assert.ok(listing.body.experiments.some((/** @type {{ key: string }} */ e) => e.key === EXPERIMENT));
  const results = await call(
    "GET",
    `/v1/tenants/${TENANT}/experiments/${EXPERIMENT}/results?inference=fixed&country=DE`,
    {
      token,
    },
  );
  assert.equal(results.status, 200);
  assert.equal(results.body.variants.length, 2);
  assert.equal(
    (await call("GET", `/v1/tenants/${TENANT}/experiments/${EXPERIMENT}/results?country=de`, { token })).status,
    400,
  );
  assert.equal((await call("GET", `/v1/tenants/${TENANT}/experiments/${EXPERIMENT}/timeline`, { token })).status, 200);
  assert.equal((await call("GET", `/v1/tenants/${TENANT}/experiments`)).status, 401);
});

test("the config API's reads, writes and refusals match their schemas", async () => {
  const read = readToken(TENANT, SECRET);
  const admin = adminToken(TENANT, SECRET, "openapi@suite");
  const latest = await call("GET", `/v1/tenants/${TENANT}/config`, { token: read });
  assert.equal(latest.body.version, shopConfig.version);
  assert.equal((await call("GET", `/v1/tenants/${TENANT}/config/history?limit=5`, { token: read })).status, 200);
  const version = `/v1/tenants/${TENANT}/config/versions/${shopConfig.version}`;
  assert.equal((await call("GET", version, { token: read })).status, 200);
  assert.equal((await call("GET", `/v1/tenants/${TENANT}/config/versions/999`, { token: read })).status, 404);
  const next = { ...shopConfig, version: shopConfig.version + 1 };
  const preview = await call("PUT", `/v1/tenants/${TENANT}/config`, {
    token: admin,
    body: { config: next, comment: "preview", dry_run: true },
  });
  assert.equal(preview.status, 200);
  assert.equal(preview.body.stored, false);
  assert.equal(
    (await call("PUT", `/v1/tenants/${TENANT}/config`, { token: read, body: { config: next } })).status,
    403,
  );
  const stored = await call("PUT", `/v1/tenants/${TENANT}/config`, {
    token: admin,
    body: { config: next, comment: "same" },
  });
  assert.equal(stored.status, 201);
  const stale = await call("PUT", `/v1/tenants/${TENANT}/config`, { token: admin, body: { config: next } });
  assert.equal(stale.status, 409);
  const lifecycle = `/v1/tenants/${TENANT}/experiments/${EXPERIMENT}/lifecycle`;
  assert.equal((await call("POST", lifecycle, { token: admin, body: { action: "pause", dry_run: true } })).status, 200);
  assert.equal((await call("POST", lifecycle, { token: admin, body: { action: "teleport" } })).status, 400);
  const rollback = `/v1/tenants/${TENANT}/config/rollback`;
  const back = await call("POST", rollback, { token: admin, body: { to: shopConfig.version, dry_run: true } });
  assert.equal(back.status, 200);
  assert.equal((await call("POST", `/v1/tenants/${TENANT}/config/publish`, { token: admin })).status, 200);
});

test("probes and metrics answer as described, and every operation was exercised", async () => {
  assert.equal((await call("GET", "/healthz")).body, "ok\n");
  assert.equal((await call("GET", "/readyz")).body, "ready\n");
  assert.match(/** @type {string} */ ((await call("GET", "/metrics")).body), /cohort_http_requests_total/);
  const operations = Object.entries(document.paths).flatMap(([template, item]) =>
    Object.keys(item).map((method) => `${method.toUpperCase()} ${template}`),
  );
  assert.deepEqual(
    operations.filter((operation) => !checked.has(operation)),
    [],
    "every operation of the description is called",
  );
});
