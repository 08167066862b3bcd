#!/usr/bin/env bash
# Builds the browser engine into the npm package @cohort/engine (ES module, .wasm, TypeScript
# declarations, crates/browser/README.md) with wasm-pack, checks the .wasm against its size budget
# and packs the package with `npm pack`:
#
#   bash scripts/build-browser.sh [PACKAGE_DIR [TARBALL_DIR]]
#
# PACKAGE_DIR defaults to crates/browser/pkg, TARBALL_DIR to build/ (cohort-engine-VERSION.tgz).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
out="${1:-crates/browser/pkg}"
tarballs="${2:-build}"
# Its own profile: the release profile's opt-level "s" is for the edge worker's size budget; a page
# evaluates on every navigation, and opt-level 3 made `Engine.evaluate` about 1.5x faster for 1%
# more Wasm (bench/js/engine.mjs). A separate profile keeps its own target dir, so building the
# browser package and the worker never rebuild each other's dependencies. wasm-pack passes what
# follows `--` to cargo; its settings for this profile are crates/browser/Cargo.toml's
# `[package.metadata.wasm-pack.profile.custom]`. `--mode no-install`: the wasm-bindgen CLI is
# scripts/setup.sh's (pinned, on PATH); wasm-pack must not try to download another.
# wasm-pack resolves a relative --out-dir against the crate, so it gets an absolute one.
mkdir -p "$out"
wasm-pack build crates/browser --mode no-install --target web --out-dir "$(realpath "$out")" --profile browser \
  -- --config 'profile.browser.inherits="release"' --config 'profile.browser.opt-level=3'
# Size budget: every page that runs experiments in the browser downloads this file. 594,637 bytes
# (208,658 gzipped) before the per-request attribute cache, the page API, the direct config reader
# and the regex shortcuts; 701,361 (244,951) with them; 707,726 (246,871) with the object exports
# (`Engine.fromConfig`, `decisions`, `isEngineError`) and the typed errors.
BROWSER_WASM_BUDGET=$((768 * 1024))
BROWSER_GZIP_BUDGET=$((280 * 1024))
size=$(stat -c %s "$out/cohort_browser_bg.wasm")
gzipped=$(gzip -9 -c "$out/cohort_browser_bg.wasm" | wc -c)
echo "browser package: $out ($size bytes of wasm, $gzipped gzipped; budgets $BROWSER_WASM_BUDGET and $BROWSER_GZIP_BUDGET)"
if (( size > BROWSER_WASM_BUDGET || gzipped > BROWSER_GZIP_BUDGET )); then
  echo "FAIL: the browser build is over its size budget" >&2
  exit 1
fi
node scripts/pack-browser.mjs "$out" "$tarballs"
