// The npm package @cohort/engine as a site uses it: the tarball scripts/build-browser.sh packs is
// installed with `npm install` into a scratch site, whose page loads the package's module through
// an import map over real HTTP (a node server started here) in Debian's Chromium, builds an Engine
// from examples/tenants/shop.json and assigns visitors. Its answers are checked against pinned
// variants, against the native engine (`cohort explain --json`) over a grid of visitors, paths,
// attributes and times, and against testdata/evaluations.json; its declarations are type-checked
// with the example configs and the vectors' decisions as a TypeScript site would use them, and
// against the fields and values of schemas/tenant-config.schema.json.
//
//   bash scripts/build-browser.sh && cargo build -p cohort-cli && node --test tests/browser-package/
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

import { cohortBinary } from "../../scripts/lib/cohort.mjs";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { CHROMIUM, CHROMIUM_ARGS } from "../dashboard/check.mjs";

const PACKAGE = "@cohort/engine";
const SHOP_CONFIG = path.join(ROOT, "examples/tenants/shop.json");
const NEWS_CONFIG = path.join(ROOT, "examples/tenants/news.json");
const VECTORS = JSON.parse(fs.readFileSync(path.join(ROOT, "testdata/evaluations.json"), "utf8"));
/** The cases a page can ask about: pages cannot read the edge's HttpOnly sticky cookie. */
const PAGE_CASES = VECTORS.cases.filter((c) => !c.context.sticky?.length);
/** After every start date in shop.json, before every end date. */
const NOW = "2026-12-01T12:00:00Z";
/** Before `hero-banner` (2026-11-01) and `product-gallery` (2026-11-15) start. */
const BEFORE_START = "2026-10-15T12:00:00Z";
const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

/** The tarball scripts/build-browser.sh packs: build/cohort-engine-<workspace version>.tgz. */
function packedTarball() {
  const version = fs.readFileSync(path.join(ROOT, "Cargo.toml"), "utf8").match(/^version = "([^"]+)"/m)?.[1];
  const tarball = path.join(ROOT, "build", `cohort-engine-${version}.tgz`);
  assert.ok(fs.existsSync(tarball), `${tarball} is missing: run \`bash scripts/build-browser.sh\``);
  return tarball;
}

/** The site's page: what the package's README shows, with the outcome written into the page. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Shop</title>
  <link rel="icon" href="data:,">
  <script type="importmap">
    { "imports": { "${PACKAGE}": "/node_modules/${PACKAGE}/cohort_browser.js" } }
  </script>
  <script type="module">
    import init, { Engine, isEngineError } from "${PACKAGE}";
    try {
      await init();
      const config = await (await fetch("/tenants/shop.json")).json();
      const engine = Engine.fromConfig(config);
      const visit = new URLSearchParams(location.search);
      const attributes = { country: "DE", device: "mobile", app_version: "2.9.1" };
      const variants = engine.assign(visit.get("unit"), attributes, visit.get("path"), Date.parse(visit.get("now")));
      if (variants["hero-banner"] === "free-shipping") {
        document.querySelector("h1").textContent = "Free shipping on every order over €30";
      }
      document.querySelector("#variants").textContent = JSON.stringify(variants);
      // For the test's own calls through page.evaluate.
      window.cohort = { Engine, isEngineError, engine };
      document.body.dataset.state = "ready";
    } catch (error) {
      document.querySelector("#variants").textContent = String(error);
      document.body.dataset.state = "error";
    }
  </script>
</head>
<body>
  <h1>Welcome to the shop</h1>
  <pre id="variants"></pre>
</body>
</html>
`;

let site; // the scratch site directory
let server;
let baseUrl;
let browser;
let page;
/** Console messages, page errors and failed requests of the page. */
const problems = [];
/** The Content-Type each served path was answered with. */
const served = new Map();

before(async () => {
  const tarball = packedTarball();
  cohortBinary(); // fails naming the missing binary and how to build it
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`bash scripts/setup.sh --browser\``);

  site = fs.mkdtempSync(path.join(os.tmpdir(), "cohort-browser-package-"));
  fs.writeFileSync(
    path.join(site, "package.json"),
    JSON.stringify({ name: "shop-site", private: true, type: "module" }, null, 2),
  );
  // The package has no dependencies, so the registry is never asked.
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], {
    cwd: site,
    stdio: ["ignore", "pipe", "pipe"],
  });
  fs.writeFileSync(path.join(site, "index.html"), PAGE);
  fs.mkdirSync(path.join(site, "tenants"));
  fs.copyFileSync(SHOP_CONFIG, path.join(site, "tenants/shop.json"));

  server = http.createServer((request, response) => {
    const pathname = decodeURIComponent(new URL(request.url ?? "/", "http://site").pathname);
    const file = path.join(site, pathname === "/" ? "index.html" : pathname);
    const type = CONTENT_TYPES[path.extname(file)];
    if (!file.startsWith(`${site}${path.sep}`) || !type || !fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
      response.writeHead(404).end();
      return;
    }
    served.set(pathname, type);
    response.writeHead(200, { "content-type": type });
    fs.createReadStream(file).pipe(response);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  baseUrl = `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (server.address()).port}`;

  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  page = await browser.newPage();
  page.on("console", (message) => {
    if (["error", "warning"].includes(message.type())) problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
});

after(async () => {
  await browser?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(() => resolve(undefined)) : resolve(undefined)));
  if (site) fs.rmSync(site, { recursive: true, force: true });
});

/** Opens the site's page for a visitor; resolves with what it shows once its script is done. */
async function visit(unit, pagePath, now = NOW) {
  const query = new URLSearchParams({ unit, path: pagePath, now });
  await page.goto(`${baseUrl}/?${query}`);
  await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state ?? ""));
  const shown = await page.evaluate(() => ({
    state: document.body.dataset.state,
    heading: document.querySelector("h1")?.textContent,
    variants: document.querySelector("#variants")?.textContent ?? "",
  }));
  assert.equal(shown.state, "ready", `the page failed: ${shown.variants}`);
  return { heading: shown.heading, variants: JSON.parse(shown.variants) };
}

test("npm install puts the package where a site imports it from, with its types and README", () => {
  const installed = path.join(site, "node_modules", PACKAGE);
  const manifest = JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8"));
  assert.equal(manifest.name, PACKAGE);
  assert.equal(manifest.license, "Apache-2.0");
  assert.equal(manifest.type, "module");
  assert.equal(manifest.types, "cohort_browser.d.ts");
  assert.deepEqual(manifest.exports["."], { types: "./cohort_browser.d.ts", default: "./cohort_browser.js" });
  assert.equal(manifest.dependencies, undefined, "the package has no dependencies");
  for (const file of ["cohort_browser.js", "cohort_browser_bg.wasm", "cohort_browser.d.ts", "README.md", "LICENSE"]) {
    assert.ok(fs.existsSync(path.join(installed, file)), `${file} is not in the installed package`);
  }
  const declarations = fs.readFileSync(path.join(installed, "cohort_browser.d.ts"), "utf8");
  for (const name of ["TenantConfig", "Decision", "EngineError", "EvaluationContext", "Assignments"]) {
    assert.match(declarations, new RegExp(`export (interface|type) ${name}\\b`));
  }
  assert.match(declarations, /static fromConfig\(config: TenantConfig\): Engine;/);
  assert.match(declarations, /decisions\(context: EvaluationContext\): Decision\[\];/);
});

test("the page assigns the shop's visitors the variants the edge would", async () => {
  const home = await visit("visitor-42", "/");
  assert.deepEqual(home.variants, {
    "hero-banner": "free-shipping",
    "app-upsell": "control",
    "black-friday-banner": "countdown",
  });
  assert.equal(home.heading, "Free shipping on every order over €30");
  const checkout = await visit("visitor-1001", "/checkout/payment");
  assert.deepEqual(checkout.variants, { "payment-methods": "wallet-first", "app-upsell": "banner" });
  assert.equal(checkout.heading, "Welcome to the shop");
  const product = await visit("visitor-1001", "/products/shoe-1");
  assert.deepEqual(product.variants, {
    "product-gallery": "control",
    "app-upsell": "banner",
    "black-friday-banner": "countdown",
  });
  // Before `hero-banner` starts: the unscheduled `app-upsell` and the stopped experiment's winner.
  const early = await visit("visitor-42", "/", BEFORE_START);
  assert.deepEqual(early.variants, { "app-upsell": "control", "black-friday-banner": "countdown" });
  // The module, the WebAssembly (as application/wasm, so it compiles while it streams) and the
  // config came over HTTP, with nothing logged.
  assert.equal(served.get(`/node_modules/${PACKAGE}/cohort_browser.js`), CONTENT_TYPES[".js"]);
  assert.equal(served.get(`/node_modules/${PACKAGE}/cohort_browser_bg.wasm`), CONTENT_TYPES[".wasm"]);
  assert.deepEqual(problems, []);
});

test("decisions, evaluate and assign in the page equal the native engine's (cohort explain)", async () => {
  const attributeSets = [
    { country: "DE", device: "mobile", app_version: "2.9.1" },
    { country: "US", device: "desktop" },
    { country: "CN", device: "mobile", app_version: "2.0.5" },
  ];
  const contexts = [];
  // visitor-13 and visitor-19 are in the shop's holdout.
  for (let visitor = 0; visitor < 20; visitor++) {
    for (const pagePath of ["/", "/checkout/payment", "/products/shoe-1", "/search"]) {
      for (const attributes of attributeSets) {
        for (const now of [NOW, BEFORE_START]) {
          contexts.push({ unit: `visitor-${visitor}`, path: pagePath, attributes, now: Date.parse(now) });
        }
      }
    }
  }
  // A QA preview of a draft experiment.
  contexts.push({
    unit: "visitor-3",
    path: "/search",
    attributes: attributeSets[0],
    now: Date.parse(NOW),
    forced: { "search-ranking-v2": "ltr" },
  });

  const native = contexts.map((context) => {
    const args = ["explain", "--config", SHOP_CONFIG, "--unit", context.unit, "--url", context.path, "--json"];
    args.push("--now", new Date(context.now).toISOString());
    for (const [key, value] of Object.entries(context.attributes)) args.push("--attr", `${key}=${value}`);
    for (const [key, value] of Object.entries(context.forced ?? {})) args.push("--force", `${key}=${value}`);
    return JSON.parse(execFileSync(cohortBinary(), args, { encoding: "utf8" }));
  });

  const inPage = await page.evaluate((contexts) => {
    const { engine } = /** @type {any} */ (window).cohort;
    return contexts.map((context) => ({
      decisions: engine.decisions(context),
      evaluated: JSON.parse(engine.evaluate(JSON.stringify(context))),
      assigned: { ...engine.assign(context.unit, context.attributes, context.path, context.now) },
    }));
  }, contexts);

  const sources = new Set();
  const reasons = new Set();
  contexts.forEach((context, i) => {
    const where = JSON.stringify(context);
    assert.deepEqual(inPage[i].decisions, native[i], where);
    assert.deepEqual(inPage[i].evaluated, native[i], where);
    // `assign` takes no QA overrides: without them, it gives the assigned decisions' variants.
    if (!context.forced) {
      const expected = Object.fromEntries(
        native[i].filter((d) => "variant" in d).map((d) => [d.experiment, d.variant]),
      );
      assert.deepEqual(inPage[i].assigned, expected, where);
    }
    for (const decision of native[i]) {
      if ("variant" in decision) sources.add(decision.source);
      else reasons.add(decision.reason);
    }
  });
  // The grid reaches every path through the shop's config the browser can take.
  assert.deepEqual([...sources].sort(), ["bucketed", "forced", "winner"]);
  for (const reason of [
    "path_not_matched",
    "not_targeted",
    "not_started",
    "holdout",
    "outside_layer",
    "outside_coverage",
  ]) {
    assert.ok(reasons.has(reason), `no visitor was excluded for ${reason}`);
  }
});

test("the packaged engine matches the evaluation vectors", async () => {
  const results = await page.evaluate(
    ({ config, contexts }) => {
      const { Engine } = /** @type {any} */ (window).cohort;
      const engine = Engine.fromConfig(config);
      return { version: engine.version, decisions: contexts.map((context) => engine.decisions(context)) };
    },
    { config: VECTORS.config, contexts: PAGE_CASES.map((c) => c.context) },
  );
  assert.equal(results.version, VECTORS.config.version);
  assert.ok(PAGE_CASES.length >= 20);
  PAGE_CASES.forEach((c, i) => assert.deepEqual(results.decisions[i], c.expected, JSON.stringify(c.context)));
});

test("a refused config or argument throws an EngineError naming what is wrong", async () => {
  const shop = JSON.parse(fs.readFileSync(SHOP_CONFIG, "utf8"));
  shop.experiments[1].variants[1].weight = 4000;
  const caught = await page.evaluate((config) => {
    const { Engine, isEngineError, engine } = /** @type {any} */ (window).cohort;
    const describe = (call) => {
      try {
        call();
        return null;
      } catch (thrown) {
        // What a site reads off a caught EngineError.
        const error = /** @type {any} */ (thrown);
        return {
          isEngineError: isEngineError(error),
          isError: error instanceof Error,
          name: error.name,
          kind: error.kind,
          path: error.path,
          message: error.message,
        };
      }
    };
    const cyclic = { country: "DE" };
    cyclic.self = cyclic;
    return {
      config: describe(() => Engine.fromConfig(config)),
      configText: describe(() => new Engine("{")),
      context: describe(() => engine.decisions({ path: "/" })),
      attributes: describe(() => engine.assign("visitor-1", cyclic, "/")),
      stillAssigns: { ...engine.assign("visitor-42", {}, "/", Date.parse("2026-12-01T12:00:00Z")) },
      otherError: isEngineError(new Error("not ours")),
    };
  }, shop);
  assert.deepEqual(caught.config, {
    isEngineError: true,
    isError: true,
    name: "EngineError",
    kind: "config",
    path: "experiments[1].variants",
    message: "experiments[1].variants: weights sum to 9000, expected 10000",
  });
  assert.equal(caught.configText.kind, "config");
  assert.equal(caught.configText.path, "");
  assert.equal(caught.context.kind, "context");
  assert.equal(caught.context.path, undefined);
  assert.match(caught.context.message, /^context: missing field `unit`/);
  assert.equal(caught.attributes.kind, "attributes");
  assert.match(caught.attributes.message, /^attributes: not serialisable: /);
  assert.deepEqual(caught.stillAssigns, { "hero-banner": "free-shipping", "black-friday-banner": "countdown" });
  assert.equal(caught.otherError, false);
});

/**
 * TypeScript assertions that the config declarations have the fields, required fields and enum
 * values of schemas/tenant-config.schema.json, which `cohort schema` generates from the engine's
 * config types: each schema object or enum names the declaration it must equal.
 * @returns {string}
 */
function schemaAssertions() {
  const schema = JSON.parse(fs.readFileSync(path.join(ROOT, "schemas/tenant-config.schema.json"), "utf8"));
  const union = (values) => (values.length ? values.map((v) => JSON.stringify(v)).join(" | ") : "never");
  const lines = [];
  // Each assertion is named after what it compares, which a failure's line then shows.
  const object = (label, declaration, definition) => {
    const fields = union(Object.keys(definition.properties));
    const required = union(definition.required ?? []);
    lines.push(`export const ${label}HasTheSchemasFields: Same<keyof ${declaration}, ${fields}> = true;`);
    lines.push(
      `export const ${label}RequiresWhatTheSchemaRequires: Same<RequiredKeys<${declaration}>, ${required}> = true;`,
    );
  };
  const enumeration = (label, declaration, definition) => {
    const values = union(definition.oneOf.map((v) => v.const));
    lines.push(`export const ${label}HasTheSchemasValues: Same<${declaration}, ${values}> = true;`);
  };
  const objects = {
    EdgeConfig: "EdgeConfig",
    ExperimentConfig: "ExperimentConfig",
    LayerConfig: "LayerConfig",
    LayerSlotConfig: `NonNullable<ExperimentConfig["layer"]>`,
    MetricConfig: "MetricConfig",
    VariantConfig: "VariantConfig",
  };
  const enums = {
    HashMode: "HashMode",
    InsertPosition: "InsertPosition",
    MetricDirection: `NonNullable<MetricConfig["direction"]>`,
    MetricKind: `MetricConfig["kind"]`,
    Status: "ExperimentStatus",
  };
  object("TenantConfig", "TenantConfig", schema);
  for (const [name, definition] of Object.entries(schema.$defs)) {
    if (name === "Action") {
      const tags = definition.oneOf.map((variant) => variant.properties.type.const);
      lines.push(`export const ActionHasTheSchemasTypes: Same<Action["type"], ${union(tags)}> = true;`);
      for (const variant of definition.oneOf) {
        const tag = variant.properties.type.const;
        const label = `Action_${tag}`;
        object(label, `Extract<Action, { type: ${JSON.stringify(tag)} }>`, variant);
      }
    } else if (objects[name]) object(name, objects[name], definition);
    else if (enums[name]) enumeration(name, enums[name], definition);
    else assert.fail(`schemas/tenant-config.schema.json defines ${name}, which no declaration is checked against`);
  }
  return lines.join("\n");
}

test("the declarations type the example configs and the vectors' decisions, match the config's schema and refuse what the engine would", () => {
  const literal = (file) => fs.readFileSync(file, "utf8").trim();
  // The vectors also try attributes that are not an object, which the engine reads as none and
  // the declarations refuse (below).
  const objectContexts = PAGE_CASES.map((c) => c.context).filter((c) => c.attributes?.constructor === Object);
  assert.ok(objectContexts.length >= 20);
  const source = `import init, { Engine, isEngineError } from "${PACKAGE}";
import type { Action, Assignments, Decision, EdgeConfig, EngineErrorKind, EvaluationContext, ExclusionReason,
  ExperimentConfig, ExperimentStatus, HashMode, InsertPosition, LayerConfig, MetricConfig, TenantConfig,
  VariantConfig } from "${PACKAGE}";

// \`satisfies\` checks each literal against the type: a field the type lacks, a missing one or a
// string outside a union fails.
export const shop = ${literal(SHOP_CONFIG)} satisfies TenantConfig;
export const news = ${literal(NEWS_CONFIG)} satisfies TenantConfig;
export const vectors = ${JSON.stringify(VECTORS.config)} satisfies TenantConfig;
export const contexts = ${JSON.stringify(objectContexts)} satisfies EvaluationContext[];
export const decisions = ${JSON.stringify(VECTORS.cases.map((c) => c.expected))} satisfies Decision[][];

const variants = [{ key: "control", weight: 5000 }, { key: "treatment", weight: 5000 }];
// @ts-expect-error \`live\` is not a status
export const unknownStatus = { key: "x", status: "live", variants } satisfies ExperimentConfig;
// @ts-expect-error \`weigth\` is not a field
export const misspeltField = { key: "control", weigth: 5000 } satisfies VariantConfig;
// @ts-expect-error an insert_html action has a position
export const missingPosition = { type: "insert_html", selector: "body", html: "<p>hi</p>" } satisfies Action;
// @ts-expect-error a decision has a variant or a reason
export const neither = { experiment: "x", bucket: 3 } satisfies Decision;
// @ts-expect-error attributes are an object; the engine reads anything else as none, the types refuse it
export const textAttributes = { unit: "u", attributes: "country=DE" } satisfies EvaluationContext;
// @ts-expect-error the schema is 1
export const otherSchema = { ...shop, schema: 2 } satisfies TenantConfig;

// The config declarations have the generated JSON Schema's fields, required fields and values.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type RequiredKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? never : K }[keyof T];
${schemaAssertions()}

export async function assignOnPage(config: TenantConfig, unit: string): Promise<string | undefined> {
  await init();
  let engine: Engine;
  try {
    engine = Engine.fromConfig(config);
  } catch (error) {
    if (isEngineError(error)) {
      const kind: EngineErrorKind = error.kind;
      throw new Error(\`\${kind} at \${error.path ?? "-"}: \${error.message}\`);
    }
    throw error;
  }
  for (const decision of engine.decisions({ unit, path: "/", attributes: { country: "DE" } })) {
    if ("variant" in decision) {
      const bucket: number | null = decision.bucket;
      console.log(decision.experiment, decision.variant, decision.source, bucket);
    } else {
      const reason: ExclusionReason = decision.reason;
      console.log(decision.experiment, reason);
    }
  }
  const assigned: Assignments = engine.assign(unit, { country: "DE" }, "/", Date.now());
  return assigned["hero-banner"];
}
`;
  fs.writeFileSync(path.join(site, "site.ts"), source);
  fs.writeFileSync(
    path.join(site, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: "nodenext",
        target: "es2022",
        // wasm-bindgen declares `[Symbol.dispose]` on Engine (`using engine = ...`).
        lib: ["es2022", "dom", "esnext.disposable"],
        types: [],
        // The package's own declarations are checked too.
        skipLibCheck: false,
      },
      files: ["site.ts"],
    }),
  );
  try {
    execFileSync(path.join(ROOT, "node_modules/.bin/tsc"), ["-p", site], { cwd: site, encoding: "utf8" });
  } catch (error) {
    const { stdout, stderr } = /** @type {{ stdout: string, stderr: string }} */ (error);
    // tsc names lines only: show each refused line's start, which names the assertion.
    const lines = source.split("\n");
    const refused = [...stdout.matchAll(/^site\.ts\((\d+),/gm)].map(
      (m) => `  ${lines[Number(m[1]) - 1].slice(0, 160)}`,
    );
    assert.fail(`tsc refused the site's TypeScript:\n${stdout}${stderr}\nat:\n${refused.join("\n")}`);
  }
});
