#!/usr/bin/env bash
# Every test: formatting, lints, native tests, the vector suite in headless Chromium, and the
# edge worker's release Wasm build against its size budget. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

WORKER_WASM_BUDGET=$((1024 * 1024))   # bytes; the edge worker ships to every POP

bash scripts/setup.sh --browser

# Every test runner's output also goes to this log, summed up in the closing line.
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
counted() { "$@" 2>&1 | tee -a "$results"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (native and wasm32), warnings are errors"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown -p cohort-edge -p cohort-browser -p cohort-core --lib -- -D warnings

step "native tests"
counted cargo test --workspace

step "collector suite again on a throwaway PostgreSQL (installed if missing)"
counted bash scripts/postgres.sh cargo test -p cohort-collector --tests

step "vector suite in headless Chromium (wasm-bindgen-test)"
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
WASM_BINDGEN_TEST_TIMEOUT=120 \
  counted cargo test --target wasm32-unknown-unknown -p cohort-core --test vectors
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  counted cargo test --target wasm32-unknown-unknown -p cohort-browser

step "edge worker release build (wasm32 + wasm-bindgen) within ${WORKER_WASM_BUDGET} bytes"
cargo build --release --target wasm32-unknown-unknown -p cohort-edge
bundle="$(target_dir)/worker-bundle"
rm -rf "$bundle"
wasm-bindgen --target web --out-dir "$bundle" "$(target_dir)/wasm32-unknown-unknown/release/cohort_edge.wasm"
size=$(stat -c %s "$bundle/cohort_edge_bg.wasm")
echo "cohort_edge_bg.wasm: $size bytes, $(gzip -9 -c "$bundle/cohort_edge_bg.wasm" | wc -c) gzipped (budget $WORKER_WASM_BUDGET)"
if (( size > WORKER_WASM_BUDGET )); then
  echo "FAIL: the edge worker's .wasm is over its size budget" >&2
  exit 1
fi

step "browser package (wasm-bindgen --target web)"
bash scripts/build-browser.sh

step "all tests passed"
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$results"
