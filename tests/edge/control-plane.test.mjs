// The control plane end to end: config changes written through the collector's config API reach
// the edge worker in real workerd (`wrangler dev`) through its local KV within the edge's config
// TTL; refused writes store nothing and change nothing at the edge; and the edge serves a host
// only when the tenant's config claims it. The pipeline of scripts/lib/pipeline.mjs (demo origin,
// the real collector on SQLite publishing to wrangler's local KV, the worker) on free ports.
// Needs the cohort binary and the built worker (scripts/test.sh).
//
// What the edge serves is read from a new visitor's sticky cookie, which carries the config
// version it was written under, and from its assignments (`/_cohort/assignments`).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  adminToken,
  configApi,
  cookieConfigVersion,
  readToken,
  results,
  stickyCookie,
} from "../../scripts/lib/cohort.mjs";
import { request } from "../../scripts/lib/http.mjs";
import { startPipeline } from "../../scripts/lib/pipeline.mjs";
import { eventually, sleep } from "../../scripts/lib/wait.mjs";
import { putKv } from "../../scripts/lib/wrangler.mjs";
import { logEvents } from "./harness.mjs";

const SECRET = "control-plane-suite-platform-secret-0123456789";
/** The edge's config TTL here: short, so each propagation is measured in seconds. */
const TTL_SECONDS = 2;
/**
 * Allowed beyond the TTL: the first request after it starts a background refresh and is still
 * served the old config, then the KV read, this suite's polling interval and a loaded machine.
 */
const MARGIN_MS = 2000;
/** How often a new visitor asks what the edge serves. */
const POLL_MS = 100;
/** A news page no experiment of news.json runs on but the paused `newsletter-prompt` (every page). */
const NEWS_PAGE = "/about";

let pipeline;
let stateDir;
/** @type {Record<string, ReturnType<typeof configApi>>} */
const read = {};
/** @type {Record<string, ReturnType<typeof configApi>>} */
const admin = {};

before(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-control-plane-"));
  pipeline = await startPipeline({ stateDir, secret: SECRET, configTtlSeconds: TTL_SECONDS });
  for (const tenant of ["shop", "news"]) {
    read[tenant] = configApi(pipeline.collector, readToken(tenant, SECRET));
    admin[tenant] = configApi(pipeline.collector, adminToken(tenant, SECRET, `${tenant}-admin@control-plane.test`));
  }
});

after(async () => {
  await pipeline?.stop();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

/**
 * What the edge serves a new visitor (no cookie) on `host` for `page` now: the config version its
 * sticky cookie was written under, and its assignments.
 * @param {string} host
 * @param {string} page
 */
async function newVisitor(host, page) {
  const answer = await request({
    port: pipeline.edge.port,
    host,
    path: `/_cohort/assignments?path=${encodeURIComponent(page)}`,
  });
  assert.equal(answer.status, 200, `${host} ${page}: ${answer.body}`);
  const cookie = stickyCookie(answer);
  assert.ok(cookie, `${host} ${page}: no sticky cookie`);
  /** @type {Record<string, string>} */
  const assignments = JSON.parse(answer.body).assignments;
  return { version: cookieConfigVersion(cookie), assignments };
}

/**
 * Asks as new visitors until `served` holds for what the edge serves; resolves with the
 * milliseconds from `since` (a `performance.now()`) to the first such answer. Fails after 30 s.
 * @param {string} host
 * @param {string} page
 * @param {(visit: { version: number, assignments: Record<string, string> }) => boolean} served
 * @param {number} since
 */
async function untilServed(host, page, served, since) {
  const deadline = Date.now() + 30_000;
  let last;
  while (Date.now() < deadline) {
    last = await newVisitor(host, page);
    if (served(last)) return performance.now() - since;
    await sleep(POLL_MS);
  }
  throw new Error(`the edge did not serve the change within 30 s; it serves ${JSON.stringify(last)}`);
}

/** The tenant's whole history as the API lists it (every version with its live state). */
async function historyOf(tenant) {
  const answer = await read[tenant].history(tenant);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.versions;
}

/** The tenant's latest stored version and its document. */
async function latestOf(tenant) {
  const answer = await read[tenant].getConfig(tenant);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

test("a lifecycle change through the API is served by the edge within its config TTL", async () => {
  const before = await latestOf("news");
  assert.equal(before.live, true);
  // The edge holds news' config now: the change has to wait for its TTL, as in production.
  const old = await newVisitor("news.localhost", NEWS_PAGE);
  assert.equal(old.version, before.version);
  assert.equal(old.assignments["newsletter-prompt"], undefined, "a paused experiment assigns nobody");

  const writing = performance.now();
  const change = await admin.news.lifecycle("news", "newsletter-prompt", {
    action: "start",
    comment: "start the newsletter prompt",
  });
  const answered = performance.now();
  assert.equal(change.status, 201, JSON.stringify(change.body));
  assert.equal(change.body.version, before.version + 1);
  assert.equal(change.body.live, true, change.body.publish_error);
  assert.deepEqual(change.body.diff.experiments, [
    { key: "newsletter-prompt", status: { from: "paused", to: "running" } },
  ]);
  assert.deepEqual(change.body.moves_units, []);

  const ms = await untilServed(
    "news.localhost",
    NEWS_PAGE,
    (visit) => visit.version === change.body.version && visit.assignments["newsletter-prompt"] !== undefined,
    answered,
  );
  console.log(
    `control-plane: propagation ${Math.round(ms)} ms after the API answered (start, news v${change.body.version}; ` +
      `the write and KV publish took ${Math.round(answered - writing)} ms; edge config TTL ${TTL_SECONDS} s)`,
  );
  assert.ok(ms <= TTL_SECONDS * 1000 + MARGIN_MS, `served after ${Math.round(ms)} ms`);
  const stored = await latestOf("news");
  assert.equal(stored.author, "news-admin@control-plane.test");
  assert.equal(stored.comment, "start the newsletter prompt");
});

test("a rollback through the API is served by the edge within its config TTL", async () => {
  const [latest, previous] = await historyOf("news");
  assert.equal(previous.version, latest.version - 1);
  const writing = performance.now();
  const rollback = await admin.news.rollback("news", previous.version);
  const answered = performance.now();
  assert.equal(rollback.status, 201, JSON.stringify(rollback.body));
  assert.equal(rollback.body.version, latest.version + 1);
  assert.equal(rollback.body.live, true, rollback.body.publish_error);
  // The previous version's content: exactly the last change undone.
  assert.deepEqual(rollback.body.diff.experiments, [
    { key: "newsletter-prompt", status: { from: "running", to: "paused" } },
  ]);
  assert.deepEqual(rollback.body.moves_units, []);

  // Back to the old content: `newsletter-prompt` paused, so a new visitor gets no variant of it.
  const ms = await untilServed(
    "news.localhost",
    NEWS_PAGE,
    (visit) => visit.version === rollback.body.version && visit.assignments["newsletter-prompt"] === undefined,
    answered,
  );
  console.log(
    `control-plane: propagation ${Math.round(ms)} ms after the API answered (rollback to v${previous.version} as ` +
      `news v${rollback.body.version}; the write and KV publish took ${Math.round(answered - writing)} ms; ` +
      `edge config TTL ${TTL_SECONDS} s)`,
  );
  assert.ok(ms <= TTL_SECONDS * 1000 + MARGIN_MS, `served after ${Math.round(ms)} ms`);
  const [newest] = await historyOf("news");
  assert.equal(newest.comment, `rollback to version ${previous.version}`);
});

test("of two writers of the same next version exactly one is stored; the other gets version_conflict", async () => {
  const latest = await latestOf("news");
  const next = latest.version + 1;
  /** A non-unit-moving change of its own per writer: the headline test's name. */
  const edited = (/** @type {string} */ name) => ({
    ...latest.config,
    version: next,
    experiments: latest.config.experiments.map((/** @type {any} */ e) =>
      e.key === "headline-test" ? { ...e, name } : e,
    ),
  });
  const writers = ["writer-a", "writer-b"].map((label) =>
    configApi(pipeline.collector, adminToken("news", SECRET, label)),
  );
  const answers = await Promise.all(
    writers.map((writer, i) =>
      writer.putConfig("news", { config: edited(`Question headlines (${i})`), comment: `writer ${i}` }),
    ),
  );
  assert.deepEqual(
    answers.map((a) => a.status).sort(),
    [201, 409],
    JSON.stringify(answers.map((a) => a.body.error ?? a.body.version)),
  );
  const winner = answers.findIndex((a) => a.status === 201);
  const loser = answers[1 - winner].body.error;
  assert.equal(loser.code, "version_conflict");
  assert.equal(loser.current_version, next);
  const history = await historyOf("news");
  assert.equal(history[0].version, next);
  assert.equal(history[0].author, ["writer-a", "writer-b"][winner]);
  assert.equal(history[1].version, latest.version, "one version stored, not two");
});

test("a read token cannot write and another tenant's admin token is refused; nothing is stored", async () => {
  const before = await historyOf("shop");
  const latest = await latestOf("shop");
  // A valid next version: only the token stands in its way.
  const next = {
    config: { ...latest.config, version: latest.version + 1 },
    comment: "should not be stored",
  };
  const ramp = { action: /** @type {const} */ ("ramp"), coverage: 5000 };
  /** @type {[string, () => Promise<import("../../scripts/lib/cohort.mjs").ApiAnswer>, number, string][]} */
  const refusals = [
    ["read token, PUT", () => read.shop.putConfig("shop", next), 403, "forbidden"],
    ["read token, lifecycle", () => read.shop.lifecycle("shop", "product-gallery", ramp), 403, "forbidden"],
    ["read token, rollback", () => read.shop.rollback("shop", latest.version), 403, "forbidden"],
    ["news admin token, PUT", () => admin.news.putConfig("shop", next), 401, "bad_token"],
    ["news admin token, lifecycle", () => admin.news.lifecycle("shop", "product-gallery", ramp), 401, "bad_token"],
    ["news admin token, rollback", () => admin.news.rollback("shop", latest.version), 401, "bad_token"],
  ];
  for (const [what, call, status, code] of refusals) {
    const answer = await call();
    assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.error.code, code, what);
  }
  assert.deepEqual(await historyOf("shop"), before);
});

test("an invalid config is refused with its field; nothing is stored and the edge keeps the old version", async () => {
  const before = await historyOf("shop");
  const latest = await latestOf("shop");
  const heroIndex = latest.config.experiments.findIndex((/** @type {any} */ e) => e.key === "hero-banner");
  const invalid = structuredClone(latest.config);
  invalid.version = latest.version + 1;
  invalid.experiments[heroIndex].variants[0].weight = 4000; // 4000 + 5000: not 10000
  const answer = await admin.shop.putConfig("shop", { config: invalid, comment: "weights that do not add up" });
  assert.equal(answer.status, 400, JSON.stringify(answer.body));
  assert.equal(answer.body.error.code, "invalid_config");
  assert.equal(answer.body.error.field, `experiments[${heroIndex}].variants`);
  assert.match(answer.body.error.message, /10000/);
  assert.deepEqual(await historyOf("shop"), before);

  // Past a TTL the edge has reread KV at least once (the first request after it refreshes in the
  // background, the next is served what was read): still the stored version.
  await newVisitor("shop.localhost", "/");
  await sleep(TTL_SECONDS * 1000 + 500);
  for (let i = 0; i < 3; i++) {
    assert.equal((await newVisitor("shop.localhost", "/")).version, latest.version);
    await sleep(POLL_MS);
  }
});

test("the edge passes a host through untouched when the tenant's config does not claim it", async () => {
  const host = "x.localhost";
  const shop = await latestOf("shop");
  assert.ok(!shop.config.hostnames.includes(host), `shop claims ${host}`);
  // A stray `host:` key, as a half-published change could leave for a moment.
  putKv(stateDir, { [`host:${host}`]: "shop" });
  const since = Date.now();

  const direct = await request({ port: pipeline.origin.port, host, path: "/" });
  const page = await request({ port: pipeline.edge.port, host, path: "/" });
  assert.equal(page.status, direct.status);
  assert.equal(page.body, direct.body, "the origin's answer, unchanged");
  assert.equal(stickyCookie(page), undefined, "no sticky cookie on an unclaimed host");
  // The worker's own endpoint is not answered there either: the origin gets the request.
  const endpoint = await request({ port: pipeline.edge.port, host, path: "/_cohort/assignments?path=%2F" });
  assert.equal(endpoint.status, direct.status, endpoint.body);
  assert.equal(stickyCookie(endpoint), undefined);
  assert.ok(
    await eventually(
      () => logEvents(pipeline.edge, "host_not_claimed").some((line) => line.host === host && line.tenant === "shop"),
      10_000,
    ),
    "the worker logs host_not_claimed",
  );

  // No exposure either: a new visitor on shop's own host afterwards is one new unit in the
  // tenant's holdout records (every new unit gets one), and the only one since the stray key.
  const control = await newVisitor("shop.localhost", "/");
  assert.equal(control.version, shop.version);
  const token = readToken("shop", SECRET);
  const unitsSince = async () =>
    (await results(pipeline.collector, "shop", "_holdout", token, `?from=${since}`)).variants.reduce(
      (/** @type {number} */ sum, /** @type {{ exposed_units: number }} */ v) => sum + v.exposed_units,
      0,
    );
  assert.ok(await eventually(async () => (await unitsSince()) >= 1, 30_000, 250), "the control unit never arrived");
  await sleep(2000); // anything sent before the control unit has arrived by now
  assert.equal(await unitsSince(), 1);
});
