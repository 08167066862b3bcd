#!/usr/bin/env bash
# `make soak`: 1,000,000 requests through the edge worker and its delivery queue into the real
# collector (release build), with the collector killed twice, a config published, KV failing and
# the collector answering 500/429 while the load runs; every account checked exactly against the
# load generator's ground truth (docs/soak.md). Writes bench/soak/results.md. Arguments go to
# bench/soak/run.mjs (`--requests N`, `--concurrency N`, `--seed N`; `--quick` is what
# `make test` runs, through tests/soak/).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/setup.sh --edge
step "building the edge worker and the release collector"
bash scripts/build-worker.sh
cargo build --release -p cohort-cli
step "soak"
node bench/soak/run.mjs --release --report bench/soak/results.md "$@"
