#!/usr/bin/env bash
# Builds the browser engine into crates/browser/pkg (ES module + .wasm) for pages to import.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
out="${1:-crates/browser/pkg}"
# Its own profile: the release profile's opt-level "s" is for the edge worker's size budget; a page
# evaluates on every navigation, and opt-level 3 made `Engine.evaluate` about 1.5x faster for 1%
# more Wasm (bench/js/engine.mjs). A separate profile keeps its own target dir, so building the
# browser package and the worker never rebuild each other's dependencies.
cargo build --target wasm32-unknown-unknown -p cohort-browser --profile browser \
  --config 'profile.browser.inherits="release"' --config 'profile.browser.opt-level=3'
wasm-bindgen --target web --out-dir "$out" "$(target_dir)/wasm32-unknown-unknown/browser/cohort_browser.wasm"
# Size budget: every page that runs experiments in the browser downloads this file. 594,637 bytes
# (208,658 gzipped) before the per-request attribute cache, the page API, the direct config reader
# and the regex shortcuts; 701,361 (244,951) with them.
BROWSER_WASM_BUDGET=$((768 * 1024))
BROWSER_GZIP_BUDGET=$((280 * 1024))
size=$(stat -c %s "$out/cohort_browser_bg.wasm")
gzipped=$(gzip -9 -c "$out/cohort_browser_bg.wasm" | wc -c)
echo "browser package: $out ($size bytes of wasm, $gzipped gzipped; budgets $BROWSER_WASM_BUDGET and $BROWSER_GZIP_BUDGET)"
if (( size > BROWSER_WASM_BUDGET || gzipped > BROWSER_GZIP_BUDGET )); then
  echo "FAIL: the browser build is over its size budget" >&2
  exit 1
fi
