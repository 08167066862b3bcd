#!/usr/bin/env bash
# Edge worker benchmark: the Cohort worker against a pass-through worker and GrowthBook's edge
# worker (@growthbook/edge-cloudflare) on the shared peer workload (bench/workload.json), and
# workerd's native HTMLRewriter against lol_html compiled into the Wasm. Each worker is bundled with
# `wrangler deploy --dry-run`; all bundles are served by one plain `workerd serve` on loopback (not
# `wrangler dev`, whose proxy costs more CPU per request than the workers) and loaded with wrk,
# round by round, with workerd's CPU time read from /proc around every run (bench/edge/README.md).
# Writes bench/edge/results.md.
#
#   bash scripts/bench-edge.sh                                   (or `make bench-edge`)
#   BENCH_QUICK=1 BENCH_JSON_OUT=/tmp/edge.json bash scripts/bench-edge.sh   (test command)
#
# Environment: BENCH_DURATION (s per 16-connection run, default 5), BENCH_LATENCY_DURATION (s per
# 1-connection latency run, default 2), BENCH_ROUNDS (default 6), BENCH_WARMUP (s, default 3),
# BENCH_SKIP_BUILD=1 (reuse build/ and the rewrite workers' builds), BENCH_OUT (default
# bench/edge/results.md), BENCH_KEEP=1 (keep the scratch dir: bundles, config.capnp, logs,
# results.json), BENCH_JSON_OUT (also write the figures as JSON to this file), BENCH_PEERS_ONLY=1
# (only pass-through, Cohort and GrowthBook on the workload, no rewrite workers built or run,
# results.md into the scratch dir unless BENCH_OUT is set; about 3.5 minutes), BENCH_QUICK=1 (peers
# only, 2 s runs, 1 round: about 30 s after the builds).
# Defaults take about 11 minutes after the builds (15 targets × 6 rounds × 7 s, plus warm-ups and
# bundling); the builds add about 1 minute when nothing changed. Many short rounds rather than a
# few long ones: ratios are taken per round, and this shared machine's speed drifts between rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/setup.sh --edge >/dev/null
if ! command -v wrk >/dev/null; then
  step "installing wrk from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
  step "building the Cohort worker (build/)"
  # A profile names the Wasm's functions; the release build strips them (rebuilt by the next run).
  COHORT_KEEP_WASM_NAMES=${BENCH_PROFILE:+1} bash scripts/build-worker.sh
fi
# The peer workload's tenant must be a valid config (run.mjs checks it translates bench/workload.json).
cargo run -q -p cohort-cli -- validate bench/edge/tenant-workload.json

if [[ -z "${BENCH_SKIP_BUILD:-}" && "${BENCH_QUICK:-}" != 1 && "${BENCH_PEERS_ONLY:-}" != 1 ]]; then
  # The rewriter comparison's workers: one crate, lol_html by default, native HTMLRewriter with
  # --features native. Own target dir so it never touches the main workspace's.
  export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
  export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
  export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
  export CARGO_TARGET_DIR=/tmp/lolhtml-target
  for variant in lol native; do
    step "building the $variant rewrite worker (bench/edge/lol-html-worker/build-$variant)"
    features=(--no-default-features --features "$variant")
    (cd bench/edge/lol-html-worker && worker-build --release --out-dir "build-$variant" . "${features[@]}")
    # Same as scripts/build-worker.sh does for the Cohort worker, so sizes compare fairly.
    python3 scripts/strip-wasm-names.py "bench/edge/lol-html-worker/build-$variant/index_bg.wasm"
  done
  unset CARGO_TARGET_DIR
fi

work=$(mktemp -d /tmp/cohort-bench-edge.XXXXXX)
runner=""
cleanup() {
  # Stop what we started, by process id: the runner, then anything it left (pids it recorded).
  if [[ -n "$runner" ]]; then kill -TERM "$runner" 2>/dev/null || true; fi
  if [[ -f "$work/pids" ]]; then
    while read -r pid; do
      [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
    done <"$work/pids"
  fi
  if [[ -n "${BENCH_KEEP:-}" ]]; then echo "scratch dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "benchmarking (scratch: $work)"
# Bounded: wrk runs have their own time limits; `timeout` caps the whole run at 15 minutes.
# Profile mode (BENCH_PROFILE) talks to workerd's inspector over Node's WebSocket (flagged on Node 20).
BENCH_WORK="$work" timeout --signal=TERM 900 node ${BENCH_PROFILE:+--experimental-websocket} bench/edge/run.mjs &
runner=$!
wait "$runner"
runner=""
