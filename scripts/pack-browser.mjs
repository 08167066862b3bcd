// Turns what `wasm-pack build --target web` wrote for crates/browser into the npm package
// `@cohort/engine` and packs it with `npm pack`. Run by scripts/build-browser.sh:
//
//   node scripts/pack-browser.mjs PACKAGE_DIR TARBALL_DIR
//
// wasm-pack takes the name, version, description, license and keywords from crates/browser's
// Cargo.toml but can only name the package after the crate. This rewrites package.json with the
// package's own name, an `exports` map (types first, as TypeScript's module resolution wants) and
// public access for the scope, in a fixed key order so that every build writes the same bytes. It
// fails instead of guessing when wasm-pack's output is not what it was written against (a field
// added, renamed or missing, a file not there), and when the tarball holds anything but the
// package's files.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const NAME = "@cohort/engine";
const GLUE = "cohort_browser.js";
const TYPES = "cohort_browser.d.ts";
const WASM = "cohort_browser_bg.wasm";
/** What wasm-pack 0.15 writes for a crate with a description, license and keywords. */
const WASM_PACK_FIELDS = [
  "name",
  "type",
  "description",
  "version",
  "license",
  "files",
  "main",
  "types",
  "sideEffects",
  "keywords",
];
/** What the tarball must hold: the files wasm-pack lists, and what npm always adds. */
const PACKED_FILES = [GLUE, TYPES, WASM, "LICENSE", "README.md", "package.json"].sort();

const [packageDir, tarballDir] = process.argv.slice(2);
if (!packageDir || !tarballDir) {
  console.error("usage: node scripts/pack-browser.mjs PACKAGE_DIR TARBALL_DIR");
  process.exit(2);
}

const manifestPath = path.join(packageDir, "package.json");
const generated = JSON.parse(fs.readFileSync(manifestPath, "utf8"));
assert.deepEqual(
  Object.keys(generated).sort(),
  [...WASM_PACK_FIELDS].sort(),
  `${manifestPath}: wasm-pack's fields changed; update scripts/pack-browser.mjs`,
);
assert.equal(generated.name, "cohort-browser", "wasm-pack names the package after the crate");
assert.equal(generated.type, "module", "--target web writes an ES module");
assert.equal(generated.main, GLUE);
assert.equal(generated.types, TYPES);
assert.deepEqual([...generated.files].sort(), [GLUE, TYPES, WASM].sort());
assert.equal(generated.license, "Apache-2.0", "the workspace's license (Cargo.toml)");
assert.match(generated.version, /^\d+\.\d+\.\d+$/);
for (const file of [GLUE, TYPES, WASM, "LICENSE", "README.md"]) {
  assert.ok(fs.existsSync(path.join(packageDir, file)), `${packageDir}/${file} is missing`);
}

const manifest = {
  name: NAME,
  version: generated.version,
  description: generated.description,
  license: generated.license,
  keywords: generated.keywords,
  type: "module",
  main: GLUE,
  module: GLUE,
  types: TYPES,
  exports: {
    ".": { types: `./${TYPES}`, default: `./${GLUE}` },
    // For pages and bundlers that serve or inline the WebAssembly themselves (`init({ module_or_path })`).
    [`./${WASM}`]: `./${WASM}`,
    "./package.json": "./package.json",
  },
  files: [GLUE, TYPES, WASM],
  sideEffects: generated.sideEffects,
  // A scoped package is private on the registry unless published as public.
  publishConfig: { access: "public" },
};
fs.writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);

fs.mkdirSync(tarballDir, { recursive: true });
const [packed] = JSON.parse(
  execFileSync("npm", ["pack", path.resolve(packageDir), "--json", "--pack-destination", path.resolve(tarballDir)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }),
);
const packedFiles = packed.files.map((/** @type {{ path: string }} */ file) => file.path).sort();
assert.deepEqual(packedFiles, PACKED_FILES, `${packed.filename} holds other files than the package's`);
const tarball = path.join(tarballDir, packed.filename);
console.log(`npm package: ${packed.id} in ${tarball} (${packed.size} bytes; ${packedFiles.join(", ")})`);
