#!/usr/bin/env bash
# Builds the browser engine into crates/browser/pkg (ES module + .wasm) for pages to import.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
out="${1:-crates/browser/pkg}"
cargo build --release --target wasm32-unknown-unknown -p cohort-browser
wasm-bindgen --target web --out-dir "$out" "$(target_dir)/wasm32-unknown-unknown/release/cohort_browser.wasm"
echo "browser package: $out ($(stat -c %s "$out/cohort_browser_bg.wasm") bytes of wasm)"
