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
echo "browser package: $out ($(stat -c %s "$out/cohort_browser_bg.wasm") bytes of wasm)"
