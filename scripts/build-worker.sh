#!/usr/bin/env bash
# Builds the edge worker into build/ with worker-build, using the locally installed wasm-bindgen,
# esbuild and wasm-opt (worker-build would otherwise download them, which fails offline).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
worker-build --release
# The function-name section only serves stack traces; drop it (~130 KiB of the upload).
# The shipped Wasm carries no function names; a profiling build keeps them
# (COHORT_KEEP_WASM_NAMES=1, set by `BENCH_PROFILE=... scripts/bench-edge.sh`).
if [[ "${COHORT_KEEP_WASM_NAMES:-}" != 1 ]]; then
  python3 scripts/strip-wasm-names.py build/index_bg.wasm
fi
