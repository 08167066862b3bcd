#!/usr/bin/env bash
# `make bench`: Cohort side by side with the peers people would pick instead, in one run on this
# machine, then bench/RESULTS.md from the figures:
#   1. engine, native: Cohort vs unleash-yggdrasil, launchdarkly-server-sdk-evaluation, growthbook-rust,
#      on the shared workload and across targeting shapes (the matrix)
#   2. engine, Wasm vs JS: Cohort's browser build vs @growthbook/growthbook in Node
#   3. edge, one workerd: pass-through vs Cohort vs GrowthBook's edge worker, same origin, same wrk
#   4. collector: signed HTTP ingest vs the same rows written straight into the database (the
#      floors), latency at 80 % of saturation, and the results query at 1 M and 10 M exposed units
#      (COHORT_BENCH_UNITS), on SQLite and on a throwaway PostgreSQL (scripts/postgres.sh)
#
#   bash scripts/bench.sh           full run (writes bench/RESULTS.md)
#   bash scripts/bench.sh --quick   the test command's smoke run: a few seconds per case, debug
#                                   builds where criterion allows; writes target/bench-quick/RESULTS.md
#
# Figures from a machine that is doing other work are noisy; every ratio compares cases measured
# in the same run, alternating where the harness can.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

quick=false
for arg in "$@"; do
  case "$arg" in
    --quick) quick=true ;;
    *) echo "bench.sh: unknown argument '$arg' (expected --quick)" >&2; exit 2 ;;
  esac
done

if $quick; then
  figures="$(target_dir)/bench-quick"
  report="$figures/RESULTS.md"
else
  figures="$(target_dir)/bench-figures"
  report="bench/RESULTS.md"
fi
rm -rf "$figures"
mkdir -p "$figures"
bash scripts/setup.sh --edge
started=$(date +%s)

step "1/4 engine, native: Cohort vs unleash-yggdrasil, launchdarkly-server-sdk-evaluation, growthbook-rust (the workload, then the matrix of targeting shapes)"
if $quick; then
  # Both benches in test mode: every assignment check and one iteration of every case (no
  # figures); --tests adds the allocation test (benches/tests/allocations.rs).
  cargo test -p cohort-benches --benches --tests
else
  # One target at a time, each once: a bare `cargo bench -p cohort-benches` would run both.
  COHORT_BENCH_OUT="$figures/native.json" cargo bench -p cohort-benches --bench peers
  COHORT_MATRIX_OUT="$figures/matrix.json" cargo bench -p cohort-benches --bench matrix
fi

step "2/4 engine, Wasm vs JS: Cohort's browser build vs @growthbook/growthbook in Node"
bash scripts/build-browser.sh "$figures/browser-pkg"
node bench/js/engine.mjs --pkg "$figures/browser-pkg" --out "$figures/js.json" $($quick && echo --quick)

step "3/4 edge: pass-through, Cohort and GrowthBook's edge worker in one workerd"
BENCH_PEERS_ONLY=1 BENCH_QUICK=$($quick && echo 1 || echo 0) BENCH_JSON_OUT="$figures/edge.json" \
  BENCH_OUT="$figures/edge-results.md" bash scripts/bench-edge.sh

step "4/4 collector: signed ingest over HTTP vs the same rows straight into SQLite and into PostgreSQL"
# scripts/postgres.sh starts the throwaway server and names it in COHORT_TEST_DATABASE_URL.
collector_bench=(env COHORT_BENCH_JSON="$figures/collector.json")
if $quick; then
  # Without `--bench` the benchmark runs its short mode (1 s phases, 20,000 units).
  collector_bench+=(cargo test -p cohort-collector --bench ingest)
else
  # Results at 1 M and at 10 M exposed units (the second size adds about 17 minutes here).
  collector_bench+=(COHORT_BENCH_CONNECTIONS=8 COHORT_BENCH_SECONDS=10
    COHORT_BENCH_UNITS="${COHORT_BENCH_UNITS:-1000000,10000000}" cargo bench -p cohort-collector --bench ingest)
fi
bash scripts/postgres.sh bash -c 'COHORT_BENCH_POSTGRES_URL="$COHORT_TEST_DATABASE_URL" "$@"' _ "${collector_bench[@]}"

elapsed=$(( $(date +%s) - started ))
node bench/report.mjs --figures "$figures" --out "$report" --seconds "$elapsed" $($quick && echo --quick)
step "bench: $report written in ${elapsed} s"
