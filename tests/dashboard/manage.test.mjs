// The dashboard's Manage section in a real browser: the real `cohort collector` binary on a free
// loopback port with a temp SQLite file and a small tenant config (imported as version 1, author
// `collector`), no edge KV (so no version goes live, and the page says why), driven in Debian's
// Chromium with an admin token (`cohort token --admin`) and with the read token. Every change is
// previewed (a dry run) before it is confirmed; what the page shows is checked against the
// collector's config API.
//
//   bash scripts/build-dashboard.sh && cargo build -p cohort-cli && node --test tests/dashboard/
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { cohortBinary, startCohortCollector } from "../../scripts/lib/cohort.mjs";
import { freePort } from "../../scripts/lib/http.mjs";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { assertPrerequisites, openDashboard } from "./check.mjs";

const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || "target");
const SCREENSHOTS = path.join(TARGET, "screenshots");
const SECRET = "manage-suite-platform-secret-0123456789";
const TENANT = "manage-shop";
const AUTHOR = "ana@example.com";
/** Every wait in the page has this deadline. */
const WAIT_MS = 30_000;

const CONFIG = {
  schema: 1,
  tenant: TENANT,
  version: 1,
  hostnames: ["manage-shop.example"],
  hash_key: "00112233445566778899aabbccddeeff",
  experiments: [
    {
      key: "cta",
      name: "Call to action colour",
      status: "running",
      coverage: 2000,
      variants: [
        { key: "control", weight: 5000 },
        { key: "green", weight: 5000 },
      ],
    },
    {
      key: "hero",
      name: "Hero copy",
      status: "running",
      variants: [
        { key: "control", weight: 3400 },
        { key: "short", weight: 3300 },
        { key: "long", weight: 3300 },
      ],
    },
    {
      key: "banner",
      name: "Spring banner",
      status: "draft",
      variants: [
        { key: "control", weight: 5000 },
        { key: "wide", weight: 5000 },
      ],
    },
  ],
};

/** `cohort token --tenant TENANT [args]`. */
const cohortToken = (...args) =>
  execFileSync(cohortBinary(), ["token", "--tenant", TENANT, ...args], {
    env: { ...process.env, COHORT_SECRET: SECRET },
  })
    .toString()
    .trim();

let dir;
let collector;
let readToken = "";
let adminToken = "";

before(async () => {
  assertPrerequisites();
  readToken = cohortToken();
  adminToken = cohortToken("--admin", AUTHOR);
  assert.ok(adminToken.startsWith(`${AUTHOR}~`), `an admin token is LABEL~MAC: ${adminToken}`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-manage-test-"));
  const configFile = path.join(dir, `${TENANT}.json`);
  fs.writeFileSync(configFile, JSON.stringify(CONFIG, null, 2));
  collector = await startCohortCollector({
    port: await freePort(),
    database: path.join(dir, "cohort.db"),
    secret: SECRET,
    args: ["--tenant-config", configFile],
  });
});

after(async () => {
  if (collector) {
    const { code } = await collector.stop();
    assert.equal(code, 0, `cohort collector exits 0 on SIGTERM: ${collector.log.join("")}`);
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The tenant's config API from Node: resolves with the status and the JSON answer.
 * @param {string} apiPath
 * @param {{ token?: string, method?: string, body?: unknown }} [options]
 */
async function configApi(apiPath, { token = readToken, method = "GET", body } = {}) {
  const response = await fetch(`${collector.url}/v1/tenants/${TENANT}${apiPath}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** The latest stored version and the history, as the API has them. */
async function stored() {
  const [current, history] = await Promise.all([configApi("/config"), configApi("/config/history")]);
  assert.equal(current.status, 200, JSON.stringify(current.body));
  assert.equal(history.status, 200, JSON.stringify(history.body));
  return { current: current.body, versions: history.body.versions };
}

/** What the dashboard manages of each experiment; the rest of the document is the collector's. */
const essentials = (experiments) =>
  experiments.map((e) => ({
    key: e.key,
    name: e.name ?? null,
    status: e.status,
    winner: e.winner ?? null,
    coverage: e.coverage ?? 10000,
    variants: e.variants.map((v) => [v.key, v.weight]),
  }));

/**
 * Opens the dashboard signed in with `token`; resolves once the Manage section shows `version`.
 * @param {string} token
 * @param {number} version
 * @param {{ width: number, height: number }} [viewport]
 * @param {string} [baseUrl] the suite's collector unless given
 */
async function openManage(token, version, viewport, baseUrl = collector.url) {
  const opened = await openDashboard({ baseUrl, tenant: TENANT, token, viewport });
  opened.page.setDefaultTimeout(WAIT_MS);
  try {
    await waitForManage(opened.page, version);
  } catch (error) {
    await opened.close();
    throw error;
  }
  return opened;
}

/** Resolves once the Manage section has loaded `version` (and the results view is ready too). */
async function waitForManage(page, version) {
  await page.waitForFunction(
    (expected) => {
      const section = document.querySelector('[data-testid="manage"]');
      return (
        section instanceof HTMLElement &&
        section.dataset.state === "ready" &&
        section.dataset.version === expected &&
        document.body.dataset.state === "ready"
      );
    },
    String(version),
    { timeout: WAIT_MS },
  );
}

/** Resolves once the preview panel is in `state`: "previewed" or "refused". */
async function waitForPreview(page, state) {
  await page.waitForFunction(
    (expected) => document.querySelector('[data-testid="change-preview"]')?.getAttribute("data-state") === expected,
    state,
    { timeout: WAIT_MS },
  );
}

/** Everything the Manage section shows, read from the page. */
function readManage() {
  const text = (node, testid) => node.querySelector(`[data-testid="${testid}"]`)?.textContent?.trim() ?? null;
  const attribute = (node, testid, name) => node.querySelector(`[data-testid="${testid}"]`)?.getAttribute(name) ?? null;
  const section = /** @type {HTMLElement} */ (document.querySelector('[data-testid="manage"]'));
  return {
    hidden: section.hidden,
    version: text(section, "config-version"),
    live: text(section, "config-live"),
    publishError: text(section, "publish-error-message"),
    attempts: text(section, "publish-attempts"),
    retryShown: section.querySelector('[data-testid="retry-publish"]') !== null,
    message: text(section, "manage-message"),
    messageIsError: section.querySelector('[data-testid="manage-message"]')?.classList.contains("error") ?? false,
    experiments: [...section.querySelectorAll('[data-testid="config-experiment"]')].map((row) => ({
      key: text(row, "config-key"),
      name: text(row, "config-name"),
      status: text(row, "config-status"),
      coverage: text(row, "config-coverage"),
      variants: text(row, "config-variants"),
    })),
    controls: [...section.querySelectorAll('[data-testid="experiment-controls"]')].map((row) => ({
      experiment: row.getAttribute("data-experiment"),
      actions: [...row.querySelectorAll('button[data-testid^="action-"]')].map((b) => b.textContent),
      winners: [...row.querySelectorAll('[data-testid="stop-winner"] option')].map((o) => o.textContent),
      coverage: /** @type {HTMLInputElement | null} */ (row.querySelector('[data-testid="ramp-coverage"]'))?.value,
      weights: [...row.querySelectorAll('[data-testid="weight-input"]')].map((input) => [
        input.getAttribute("data-variant"),
        /** @type {HTMLInputElement} */ (input).value,
      ]),
    })),
    history: [...section.querySelectorAll('[data-testid="history-row"]')].map((row) => ({
      version: text(row, "history-version"),
      author: text(row, "history-author"),
      comment: text(row, "history-comment"),
      state: text(row, "history-state"),
      summary: text(row, "history-summary"),
      moves: row.querySelector('[data-testid="history-moves"]') !== null,
      rollback: row.querySelector('[data-testid="rollback"]') !== null,
    })),
    preview: (() => {
      const panel = /** @type {HTMLElement} */ (section.querySelector('[data-testid="change-preview"]'));
      if (panel.hidden) return null;
      const force = /** @type {HTMLInputElement | null} */ (panel.querySelector('[data-testid="force-change"]'));
      const confirm = /** @type {HTMLButtonElement} */ (panel.querySelector('[data-testid="confirm-change"]'));
      return {
        state: panel.dataset.state,
        title: text(panel, "preview-title"),
        version: attribute(panel, "preview-version", "data-version"),
        diff: [...panel.querySelectorAll('[data-testid="diff-experiment"]')].map((item) => ({
          experiment: item.getAttribute("data-experiment"),
          changes: [...item.querySelectorAll('[data-testid^="diff-"]')].map((change) => [
            change.getAttribute("data-testid"),
            change.textContent,
          ]),
        })),
        moves: [...panel.querySelectorAll('[data-testid="moves-unit"]')].map((item) => item.textContent),
        movesWarning: panel.querySelector('[data-testid="moves-warning"]') !== null,
        error: panel.querySelector('[data-testid="preview-error"]')
          ? {
              stage: attribute(panel, "preview-error", "data-stage"),
              code: attribute(panel, "preview-error", "data-code"),
              status: attribute(panel, "preview-error", "data-status"),
              message: text(panel, "preview-error-message"),
            }
          : null,
        force: force ? force.checked : null,
        confirmDisabled: confirm.disabled,
      };
    })(),
  };
}

/** The controls row of one experiment. */
const controlsOf = (page, key) => page.locator(`[data-testid="experiment-controls"][data-experiment="${key}"]`);

/** Problems the page reported apart from the refusals a test asked for (HTTP `statuses`). */
const unexpected = (problems, statuses = []) =>
  problems.filter(
    (line) => !statuses.some((status) => line.startsWith(`HTTP ${status} `) || line.includes(`status of ${status} `)),
  );

test("signed in with an admin token, Manage shows version 1 as imported, not yet live and why, and the results still load", async () => {
  const { page, problems, close } = await openManage(adminToken, 1);
  try {
    const seen = await page.evaluate(readManage);
    assert.equal(seen.hidden, false);
    assert.equal(await page.evaluate(() => document.body.dataset.state), "ready", "an admin token reads results");
    assert.equal(await page.getByTestId("experiment").count(), 3, "one results card per configured experiment");
    assert.equal(seen.version, "1");
    assert.equal(seen.live, "not yet live");
    assert.equal(seen.attempts, "0 publish attempts so far; the collector keeps retrying.");
    assert.equal(seen.retryShown, true);
    assert.deepEqual(seen.experiments, [
      {
        key: "cta",
        name: "Call to action colour",
        status: "running",
        coverage: "20%",
        variants: "control 50% / green 50%",
      },
      {
        key: "hero",
        name: "Hero copy",
        status: "running",
        coverage: "100%",
        variants: "control 34% / short 33% / long 33%",
      },
      { key: "banner", name: "Spring banner", status: "draft", coverage: "100%", variants: "control 50% / wide 50%" },
    ]);
    const cta = seen.controls.find((c) => c.experiment === "cta");
    assert.deepEqual(cta?.actions, ["Start", "Pause", "Stop", "Ramp", "Set weights"]);
    assert.deepEqual(cta?.winners, ["no winner", "control", "green"]);
    assert.equal(cta?.coverage, "20");
    assert.deepEqual(cta?.weights, [
      ["control", "50"],
      ["green", "50"],
    ]);
    assert.deepEqual(seen.history, [
      {
        version: "1",
        author: "collector",
        comment: "imported from --tenant-config at start-up",
        state: "pending",
        summary: "first version",
        moves: false,
        rollback: false,
      },
    ]);

    // This collector publishes nowhere: a retry says so, and the version stays not yet live.
    await page.getByTestId("retry-publish").click();
    // The click shows "Publishing version 1…" until the collector answers. The publish error can
    // show from a render before that answer (CI read the page with the message still pending),
    // so wait for the answer itself.
    await page.waitForFunction(
      () => !document.querySelector('[data-testid="manage-message"]')?.textContent?.startsWith("Publishing"),
      null,
      { timeout: WAIT_MS },
    );
    await page.getByTestId("publish-error-message").waitFor({ state: "visible", timeout: WAIT_MS });
    const retried = await page.evaluate(readManage);
    const publish = await configApi("/config/publish", { token: adminToken, method: "POST" });
    assert.equal(publish.status, 200);
    assert.equal(publish.body.live, false);
    assert.match(publish.body.publish_error, /publishes to no edge KV/);
    assert.equal(retried.publishError, publish.body.publish_error);
    assert.equal(retried.message, "Version 1 is still not live.");
    assert.equal(retried.live, "not yet live");
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

/**
 * A stand-in for Cloudflare's KV bulk API on a free loopback port: it refuses every call until
 * `accept` is set. Resolves with its URL, the switch, the writes it saw and close().
 */
async function startKvStandIn() {
  const state = { accept: false, writes: 0 };
  const server = http.createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      if (request.method === "PUT") state.writes += 1;
      const answer = state.accept
        ? { success: true, errors: [], result: { unsuccessful_keys: [] } }
        : { success: false, errors: [{ code: 10013, message: "KV is unavailable (stand-in)" }] };
      response.writeHead(state.accept ? 200 : 503, { "content-type": "application/json" });
      response.end(JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const address = /** @type {import("node:net").AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${address.port}`,
    state,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}

test("a version the edge's KV refused shows the error and the attempts; Retry publish makes it live", async () => {
  const kv = await startKvStandIn();
  const kvDir = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-manage-kv-test-"));
  /** @type {Awaited<ReturnType<typeof startCohortCollector>> | undefined} */
  let publishing;
  try {
    const configFile = path.join(kvDir, `${TENANT}.json`);
    fs.writeFileSync(configFile, JSON.stringify(CONFIG));
    // The collector reads the KV API token only from its environment, which it inherits from ours.
    process.env.CLOUDFLARE_API_TOKEN = "stand-in-token";
    try {
      publishing = await startCohortCollector({
        port: await freePort(),
        database: path.join(kvDir, "cohort.db"),
        secret: SECRET,
        args: [
          ...["--tenant-config", configFile],
          ...["--kv-account-id", "standinaccount", "--kv-namespace-id", "standinnamespace"],
          ...["--kv-api-base", kv.url, "--publish-retry-seconds", "3600"],
        ],
      });
    } finally {
      delete process.env.CLOUDFLARE_API_TOKEN;
    }
    const baseUrl = publishing.url;
    const latest = async () => {
      const response = await fetch(`${baseUrl}/v1/tenants/${TENANT}/config`, {
        headers: { authorization: `Bearer ${readToken}` },
      });
      assert.equal(response.status, 200);
      return response.json();
    };
    // The retry loop's first tick publishes at start-up, and fails.
    const deadline = Date.now() + WAIT_MS;
    let failed = await latest();
    while (failed.publish_attempts === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      failed = await latest();
    }
    assert.equal(failed.publish_attempts, 1, "one failed publish at start-up");
    assert.match(failed.publish_error, /KV is unavailable \(stand-in\)/);

    const { page, problems, close } = await openManage(adminToken, 1, undefined, baseUrl);
    try {
      let seen = await page.evaluate(readManage);
      assert.equal(seen.live, "not yet live");
      assert.equal(seen.publishError, failed.publish_error);
      assert.equal(seen.attempts, "1 publish attempt so far; the collector keeps retrying.");
      assert.equal(seen.history[0].state, "pending");

      kv.state.accept = true;
      await page.getByTestId("retry-publish").click();
      await page.waitForFunction(
        () => document.querySelector('[data-testid="config-state"]')?.getAttribute("data-live") === "true",
        null,
        { timeout: WAIT_MS },
      );
      seen = await page.evaluate(readManage);
      const live = await latest();
      assert.equal(live.live, true);
      const since = await page.evaluate((ms) => {
        const date = new Date(ms);
        const pad = (n) => String(n).padStart(2, "0");
        return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
      }, live.published_at_ms);
      assert.ok(seen.live?.startsWith(`live at the edge since ${since}`), `${seen.live} (published at ${since})`);
      assert.equal(seen.publishError, null);
      assert.equal(seen.retryShown, false, "nothing to retry once live");
      assert.equal(seen.message, "Version 1 is live at the edge.");
      assert.equal(seen.history[0].state, "live");
      assert.equal(kv.state.writes, 2, "the start-up attempt and the retry");
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  } finally {
    if (publishing) {
      const { code } = await publishing.stop();
      assert.equal(code, 0, `cohort collector exits 0 on SIGTERM: ${publishing.log.join("")}`);
    }
    await kv.close();
    fs.rmSync(kvDir, { recursive: true, force: true });
  }
});

test("ramping cta from 20% to 50% previews the coverage change without a warning, then stores version 2 by its author", async () => {
  const { page, problems, close } = await openManage(adminToken, 1);
  try {
    await controlsOf(page, "cta").getByTestId("ramp-coverage").fill("50");
    await controlsOf(page, "cta").getByTestId("action-ramp").click();
    await waitForPreview(page, "previewed");
    const { preview } = await page.evaluate(readManage);
    assert.deepEqual(preview, {
      state: "previewed",
      title: "Preview: Ramp cta to 50%",
      version: "2",
      diff: [{ experiment: "cta", changes: [["diff-coverage", "coverage 20% → 50%"]] }],
      moves: [],
      movesWarning: false,
      error: null,
      force: null,
      confirmDisabled: false,
    });
    assert.equal((await stored()).versions.length, 1, "a preview stores nothing");

    const comment = "cta looked healthy at 20% for a week";
    await page.getByTestId("change-comment").fill(comment);
    await page.getByTestId("confirm-change").click();
    await waitForManage(page, 2);
    const seen = await page.evaluate(readManage);
    assert.equal(seen.preview, null, "the preview closes once the change is stored");
    assert.equal(seen.message, "Stored version 2 (Ramp cta to 50%).");
    assert.equal(seen.version, "2");
    assert.equal(seen.live, "not yet live");
    assert.match(seen.publishError ?? "", /publishes to no edge KV/, "the store's publish error shows");
    assert.equal(seen.experiments.find((e) => e.key === "cta")?.coverage, "50%");
    assert.deepEqual(seen.history[0], {
      version: "2",
      author: AUTHOR,
      comment,
      state: "pending",
      summary: "cta: coverage 20% → 50%",
      moves: false,
      rollback: false,
    });
    assert.deepEqual(
      seen.history.map((row) => [row.version, row.state, row.rollback]),
      [
        ["2", "pending", false],
        ["1", "never live", true],
      ],
    );

    const { current, versions } = await stored();
    assert.equal(current.version, 2);
    assert.equal(current.config.experiments.find((e) => e.key === "cta").coverage, 5000);
    assert.equal(versions[0].author, AUTHOR);
    assert.equal(versions[0].comment, comment);
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("lowering coverage is refused until forced: the preview warns that it moves units, a confirm without Force is refused", async () => {
  const lower = { action: "ramp", coverage: 3000, dry_run: true };
  const refused = await configApi("/experiments/cta/lifecycle", { token: adminToken, method: "POST", body: lower });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, "moves_units");
  const forced = await configApi("/experiments/cta/lifecycle", {
    token: adminToken,
    method: "POST",
    body: { ...lower, force: true },
  });
  assert.equal(forced.status, 200);
  assert.deepEqual(forced.body.moves_units, ["experiment `cta`: lowering coverage drops units from the experiment"]);

  const { page, problems, close } = await openManage(adminToken, 2);
  try {
    await controlsOf(page, "cta").getByTestId("ramp-coverage").fill("30");
    await controlsOf(page, "cta").getByTestId("action-ramp").click();
    await waitForPreview(page, "refused");
    let { preview } = await page.evaluate(readManage);
    assert.deepEqual(preview?.error, {
      stage: "preview",
      code: "moves_units",
      status: "409",
      message: refused.body.error.message,
    });
    assert.equal(preview?.force, false, "Force is offered, not ticked");
    assert.equal(preview?.confirmDisabled, true, "nothing to confirm before a preview");
    assert.equal(preview?.movesWarning, false);

    // Ticking Force previews again with force: the diff, and the warning listing what moves.
    await page.getByTestId("force-change").check();
    await waitForPreview(page, "previewed");
    ({ preview } = await page.evaluate(readManage));
    assert.equal(preview?.version, "3");
    assert.deepEqual(preview?.diff, [{ experiment: "cta", changes: [["diff-coverage", "coverage 50% → 30%"]] }]);
    assert.equal(preview?.movesWarning, true);
    assert.deepEqual(preview?.moves, forced.body.moves_units);
    assert.equal(preview?.force, true);
    assert.equal(preview?.error, null);

    // Without Force the collector refuses the real request too, and stores nothing.
    await page.getByTestId("force-change").uncheck();
    await page.getByTestId("change-comment").fill("halve the exposure while support catches up");
    await page.getByTestId("confirm-change").click();
    await waitForPreview(page, "refused");
    ({ preview } = await page.evaluate(readManage));
    assert.deepEqual(preview?.error, {
      stage: "confirm",
      code: "moves_units",
      status: "409",
      message: refused.body.error.message,
    });
    assert.equal(preview?.movesWarning, true, "the preview stays");
    assert.equal((await stored()).versions.length, 2, "nothing stored without force");

    await page.getByTestId("force-change").check();
    await page.getByTestId("confirm-change").click();
    await waitForManage(page, 3);
    const seen = await page.evaluate(readManage);
    assert.equal(seen.experiments.find((e) => e.key === "cta")?.coverage, "30%");
    assert.deepEqual(
      [seen.history[0].version, seen.history[0].summary, seen.history[0].moves, seen.history[0].comment],
      ["3", "cta: coverage 50% → 30%", true, "halve the exposure while support catches up"],
    );
    const { current, versions } = await stored();
    assert.equal(current.version, 3);
    assert.equal(current.config.experiments.find((e) => e.key === "cta").coverage, 3000);
    assert.equal(versions[0].moves_units, true);
    assert.deepEqual(unexpected(problems, [409]), []);
  } finally {
    await close();
  }
});

test("a change the lifecycle does not allow shows the collector's reason and offers nothing to confirm", async () => {
  const { page, problems, close } = await openManage(adminToken, 3);
  try {
    await controlsOf(page, "banner").getByTestId("action-pause").click();
    await waitForPreview(page, "refused");
    const { preview } = await page.evaluate(readManage);
    assert.deepEqual(preview?.error, {
      stage: "preview",
      code: "invalid_transition",
      status: "409",
      message: "only a running experiment can be paused; `banner` is draft",
    });
    assert.equal(preview?.force, null, "Force is offered only for changes that move units");
    assert.equal(preview?.confirmDisabled, true);
    await page.getByTestId("cancel-change").click();
    assert.equal((await page.evaluate(readManage)).preview, null);
    assert.equal((await stored()).current.version, 3);
    assert.deepEqual(unexpected(problems, [409]), []);
  } finally {
    await close();
  }
});

test("new weights (forced) and a stop with a winner show their diffs and are stored as typed", async () => {
  const { page, problems, close } = await openManage(adminToken, 3);
  try {
    const hero = controlsOf(page, "hero");
    for (const [variant, percent] of [
      ["control", "20"],
      ["short", "40"],
      ["long", "40"],
    ])
      await hero.locator(`[data-testid="weight-input"][data-variant="${variant}"]`).fill(percent);
    await hero.getByTestId("action-weights").click();
    await waitForPreview(page, "refused");
    assert.equal((await page.evaluate(readManage)).preview?.error?.code, "moves_units");
    await page.getByTestId("force-change").check();
    await waitForPreview(page, "previewed");
    let { preview } = await page.evaluate(readManage);
    assert.equal(preview?.version, "4");
    assert.deepEqual(preview?.diff, [
      {
        experiment: "hero",
        changes: [["diff-weights", "weights control 34% / short 33% / long 33% → control 20% / short 40% / long 40%"]],
      },
    ]);
    assert.deepEqual(preview?.moves, ["experiment `hero`: changing weights buckets units into other variants"]);
    await page.getByTestId("confirm-change").click();
    await waitForManage(page, 4);

    await hero.getByTestId("stop-winner").selectOption("short");
    await hero.getByTestId("action-stop").click();
    await waitForPreview(page, "previewed");
    ({ preview } = await page.evaluate(readManage));
    assert.equal(preview?.title, "Preview: Stop hero, serving short to everyone");
    assert.deepEqual(preview?.diff, [
      {
        experiment: "hero",
        changes: [
          ["diff-status", "running → stopped"],
          ["diff-winner", "winner none → short"],
        ],
      },
    ]);
    assert.equal(preview?.movesWarning, false);
    await page.getByTestId("confirm-change").click();
    await waitForManage(page, 5);
    const seen = await page.evaluate(readManage);
    assert.equal(seen.experiments.find((e) => e.key === "hero")?.status, "stopped · serves short");
    assert.equal(seen.history[0].summary, "hero: running → stopped, winner none → short");
    assert.equal(
      seen.history[1].summary,
      "hero: weights control 34% / short 33% / long 33% → control 20% / short 40% / long 40%",
    );
    assert.equal(seen.history[1].moves, true);

    const heroStored = (await stored()).current.config.experiments.find((e) => e.key === "hero");
    assert.equal(heroStored.status, "stopped");
    assert.equal(heroStored.winner, "short");
    assert.deepEqual(
      heroStored.variants.map((v) => v.weight),
      [2000, 4000, 4000],
    );
    assert.deepEqual(unexpected(problems, [409]), []);
  } finally {
    await close();
  }
});

test("rolling back to version 1 from the history previews the way back and stores version 1's experiments as a new version", async () => {
  const { page, problems, close } = await openManage(adminToken, 5);
  try {
    const first = await configApi("/config/versions/1");
    assert.equal(first.status, 200);
    const before = (await stored()).current;
    assert.notDeepEqual(essentials(before.config.experiments), essentials(first.body.config.experiments));

    await page.locator('[data-testid="history-row"][data-version="1"] [data-testid="rollback"]').click();
    // cta goes back from 30% to 20%: that moves units, so the dry run is refused until forced.
    await waitForPreview(page, "refused");
    assert.equal((await page.evaluate(readManage)).preview?.error?.code, "moves_units");
    await page.getByTestId("force-change").check();
    await waitForPreview(page, "previewed");
    const { preview } = await page.evaluate(readManage);
    assert.equal(preview?.title, "Preview: Roll back to version 1");
    assert.equal(preview?.version, "6");
    assert.deepEqual(preview?.diff, [
      { experiment: "cta", changes: [["diff-coverage", "coverage 30% → 20%"]] },
      {
        experiment: "hero",
        changes: [
          ["diff-status", "stopped → running"],
          ["diff-winner", "winner short → none"],
          ["diff-weights", "weights control 20% / short 40% / long 40% → control 34% / short 33% / long 33%"],
        ],
      },
    ]);
    // hero restarts with other weights than it last ran with (version 4): its units that kept a
    // sticky entry while it was stopped would be rebucketed, so that is flagged too.
    assert.deepEqual(preview?.moves, [
      "experiment `cta`: lowering coverage drops units from the experiment",
      "experiment `hero`: changing weights buckets units into other variants (since version 4, when it last ran)",
    ]);
    await page.getByTestId("confirm-change").click();
    await waitForManage(page, 6);

    const seen = await page.evaluate(readManage);
    assert.equal(seen.history[0].author, AUTHOR);
    assert.equal(seen.history[0].comment, "rollback to version 1", "the collector's comment when none is typed");
    assert.equal(seen.history.length, 6);
    const { current } = await stored();
    assert.equal(current.version, 6);
    assert.deepEqual(essentials(current.config.experiments), essentials(first.body.config.experiments));
    assert.deepEqual(unexpected(problems, [409]), []);
  } finally {
    await close();
  }
});

test("with the read token the controls show the collector's 403 and nothing is stored", async () => {
  const forbidden = await configApi("/experiments/cta/lifecycle", {
    token: readToken,
    method: "POST",
    body: { action: "pause", dry_run: true },
  });
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.body.error.code, "forbidden");
  const before = await stored();

  const { page, problems, close } = await openManage(readToken, before.current.version);
  try {
    const seen = await page.evaluate(readManage);
    assert.deepEqual(
      seen.controls.map((c) => c.actions.length),
      [5, 5, 5],
      "the controls show: the collector decides",
    );
    await controlsOf(page, "cta").getByTestId("action-pause").click();
    await waitForPreview(page, "refused");
    const { preview } = await page.evaluate(readManage);
    assert.deepEqual(preview?.error, {
      stage: "preview",
      code: "forbidden",
      status: "403",
      message: forbidden.body.error.message,
    });
    assert.equal(preview?.confirmDisabled, true);
    assert.equal(preview?.force, null);

    await page.getByTestId("retry-publish").click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="manage-message"]')?.classList.contains("error") === true,
      null,
      { timeout: WAIT_MS },
    );
    const retried = await page.evaluate(readManage);
    assert.equal(retried.message, forbidden.body.error.message);

    const after = await stored();
    assert.equal(after.versions.length, before.versions.length, "nothing stored");
    assert.equal(after.current.version, before.current.version);
    assert.deepEqual(unexpected(problems, [403]), []);
    assert.equal(problems.filter((line) => line.startsWith("HTTP 403 ")).length, 2, problems.join("\n"));
  } finally {
    await close();
  }
});

test("on a 360 px phone the Manage section, a preview with its warning and the history fit without horizontal scrolling", async () => {
  const version = (await stored()).current.version;
  const { page, problems, close } = await openManage(adminToken, version, { width: 360, height: 740 });
  try {
    const hero = controlsOf(page, "hero");
    for (const [variant, percent] of [
      ["control", "50"],
      ["short", "25"],
      ["long", "25"],
    ])
      await hero.locator(`[data-testid="weight-input"][data-variant="${variant}"]`).fill(percent);
    await hero.getByTestId("action-weights").click();
    await waitForPreview(page, "refused");
    await page.getByTestId("force-change").check();
    await waitForPreview(page, "previewed");
    assert.equal((await page.evaluate(readManage)).preview?.movesWarning, true);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, "manage-phone-360.png"), fullPage: true });
    assert.equal(overflow, 0, "the page is no wider than the viewport");
    // Each experiment's controls stay inside the viewport, not in a scrolled-away column.
    const widest = await page.evaluate(() =>
      Math.max(
        ...[...document.querySelectorAll('[data-testid="experiment-controls"] button')].map(
          (button) => button.getBoundingClientRect().right,
        ),
      ),
    );
    assert.ok(widest <= 360, `controls end at ${widest} px`);
    await page.getByTestId("cancel-change").click();
    assert.equal((await stored()).current.version, version, "a preview stores nothing");
    assert.deepEqual(unexpected(problems, [409]), []);
  } finally {
    await close();
  }
});
