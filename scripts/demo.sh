#!/usr/bin/env bash
# The main job: the whole pipeline on this machine. Installs what is missing, builds the cohort
# CLI, the edge worker and the dashboard, then starts the demo origin, the collector (SQLite) and
# the edge worker (wrangler dev) with the example tenants published to its local KV, sends
# simulated visitors through it, and prints the results and the dashboard's address.
# Ctrl-C stops everything it started. Ports: COHORT_DEMO_EDGE_PORT (8787),
# COHORT_DEMO_COLLECTOR_PORT (8790), COHORT_DEMO_ORIGIN_PORT (8791); COHORT_DEMO_VISITORS (4000).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/setup.sh --edge
step "building the cohort CLI (the dashboard is built into it) and the edge worker"
cargo build -p cohort-cli -p cohort-loadgen
bash scripts/build-worker.sh

step "validating the example tenants"
"$(target_dir)/debug/cohort" validate examples/tenants/*.json

export WRANGLER_SEND_METRICS=false
exec node scripts/pipeline.mjs
