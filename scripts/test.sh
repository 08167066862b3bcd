#!/usr/bin/env bash
# Every test: formatting, the JavaScript's lints and type checks (`npm run lint`), the documents'
# citations (scripts/check-claims.mjs), lints, native tests, a short run of each fuzz target, the
# Prometheus alert rules' unit tests, the vector suite in headless Chromium and against
# GrowthBook's SDK, the edge worker's release Wasm build against its size budget, and the browser
# engine's npm package built, packed and used from a page. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

WORKER_WASM_BUDGET=$((1024 * 1024))   # bytes; the edge worker ships to every POP
WORKER_GZIP_BUDGET=$((400 * 1024))    # what Cloudflare's upload limit counts

bash scripts/setup.sh --browser --edge --monitoring --durability --statistics --supply-chain

# Every test runner's output also goes to this log, summed up in the closing line.
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
counted() { "$@" 2>&1 | tee -a "$results"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "JavaScript: eslint, prettier, TypeScript checks (@ts-check)"
npm run -s lint

step "every file, benchmark, test and make target README, DESIGN and docs/ cite exists; every DESIGN figure has a source; every target says whether it is gated"
node scripts/check-claims.mjs
counted node --test --test-timeout=60000 --test-reporter=spec tests/tooling/

step "test vectors regenerated from the independent Python reference match the committed ones"
vectors="$(mktemp -d)"
python3 testdata/reference.py --out "$vectors"
for file in bucketing.json cookies.json evaluations.json; do
  diff -u "testdata/$file" "$vectors/$file" || { echo "FAIL: testdata/$file differs from what testdata/reference.py writes" >&2; exit 1; }
done
rm -rf "$vectors"

step "bot markers and their vectors are what scripts/generate-bots.mjs writes from the pinned isbot"
node scripts/generate-bots.mjs --check

step "statistics fixtures regenerated with scipy, statsmodels and gbstats match the committed ones"
fixtures="$(mktemp -d)"
"${STATISTICS_VENV:-$HOME/.cache/cohort/statistics-venv}/bin/python" testdata/statistics.py --out "$fixtures" >/dev/null
diff -u testdata/statistics.json "$fixtures/statistics.json" || { echo "FAIL: testdata/statistics.json differs from what testdata/statistics.py writes" >&2; exit 1; }
rm -rf "$fixtures"

step "supply chain: licenses, bans (one hmac generation), sources (cargo deny, deny.toml; advisories need the network)"
# --offline reads the crates from cargo's cache: fetch them first (a fresh machine has none yet).
cargo fetch --locked --quiet
cargo deny --workspace --offline check licenses bans sources

step "cargo clippy (native and wasm32), warnings are errors"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown -p cohort-edge -p cohort-browser -p cohort-core --lib -- -D warnings

step "native tests"
counted cargo test --workspace

step "fuzzing: each cargo-fuzz target for 15 s from the shared vectors (a crash fails the run)"
FUZZ_SECONDS=15 bash scripts/fuzz.sh

step "collector suite again on a throwaway PostgreSQL (installed if missing)"
counted bash scripts/postgres.sh cargo test -p cohort-collector --tests

step "Prometheus alert rules: syntax, then their unit tests (promtool)"
# promtool prints no test count, so these are not in the closing tally; a failure stops the run.
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml

step "vector suite and browser exports in headless Chromium (wasm-pack test)"
# wasm-pack runs wasm-bindgen-test's runner from the pinned wasm-bindgen CLI (scripts/setup.sh);
# `--mode no-install` keeps it from downloading another. Its output ends in cargo's test lines.
WASM_BINDGEN_TEST_TIMEOUT=120 \
  counted wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver --mode no-install crates/core --test vectors
counted wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver --mode no-install crates/browser

step "targeting conditions and growthbook-v2 bucketing against GrowthBook's own JavaScript SDK"
counted node --test --test-timeout=300000 --test-reporter=spec tests/conformance/

step "results dashboard (built into the collector binary) in headless Chromium"
bash scripts/build-dashboard.sh --check
cargo build -p cohort-cli -p cohort-loadgen
counted node --test --test-timeout=300000 --test-reporter=spec tests/dashboard/

step "the collector's OpenAPI description: valid by an independent validator, and every real answer matches it"
counted node --test --test-timeout=120000 --test-reporter=spec tests/api/

step "collector deployment files (Dockerfile, compose.yaml, systemd unit) start the binary as they describe, on PostgreSQL"
counted bash scripts/postgres.sh node --test --test-timeout=120000 --test-reporter=spec tests/deploy/

step "edge worker: size budget, wrangler deploy --dry-run of staging and production, end-to-end suite in real workerd"
bash scripts/build-worker.sh
size=$(stat -c %s build/index_bg.wasm)
gzipped=$(gzip -9 -c build/index_bg.wasm | wc -c)
echo "deployed worker: index_bg.wasm $size bytes, $gzipped gzipped (budgets $WORKER_WASM_BUDGET and $WORKER_GZIP_BUDGET)"
if (( size > WORKER_WASM_BUDGET || gzipped > WORKER_GZIP_BUDGET )); then
  echo "FAIL: the deployed worker is over its size budget" >&2
  exit 1
fi
for environment in staging production; do
  COHORT_COLLECTOR_URL=https://collector.example.com bash scripts/deploy-edge.sh "$environment" --dry-run
done
# tests/edge/delivery.test.mjs runs the real collector binary built for the dashboard step above.
WRANGLER_SEND_METRICS=false counted node --test --test-timeout=300000 --test-reporter=spec tests/edge/

step "soak, quick mode: 20,000 requests through edge and queue with kill -9, a publish, KV and collector outages; exact accounts"
WRANGLER_SEND_METRICS=false counted node --test --test-timeout=600000 --test-reporter=spec tests/soak/

step "the whole pipeline as make demo runs it: origin, collector, edge, cohort-loadgen, dashboard"
WRANGLER_SEND_METRICS=false counted node --test --test-timeout=300000 --test-reporter=spec tests/pipeline/

step "browser npm package @cohort/engine (wasm-pack --target web, size budget, npm pack)"
bash scripts/build-browser.sh

step "the packed npm package installed and used from a page in headless Chromium, against cohort explain and the vectors"
# Uses the cohort binary built for the dashboard step above.
counted node --test --test-timeout=300000 --test-reporter=spec tests/browser-package/

step "peer benchmarks, quick mode (make bench's harness, a few seconds per case)"
counted bash scripts/bench.sh --quick

step "results at scale, quick mode: make bench-columnar's SQLite statements and the layouts kept at ingest agree with the join"
python3 bench/columnar/run.py --units 20000 --engines sqlite --layouts

step "all tests passed"
# cargo prints `test result: ok. N passed; M failed`; node's spec reporter `ℹ pass N` / `ℹ fail M`.
awk '/^test result:/ { passed += $4; failed += $6 }
     /^ℹ pass / { passed += $3 } /^ℹ fail / { failed += $3 }
     END { printf "%d passed, %d failed\n", passed, failed }' "$results"
