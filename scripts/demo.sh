#!/usr/bin/env bash
# The main job, for now: build everything and explain the example tenants' assignments for a few
# sample visitors. Later work grows this into the full local edge + collector demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/setup.sh
step "building the cohort CLI, the edge worker (wasm32) and the browser engine"
cargo build --release -p cohort-cli
cargo build --release --target wasm32-unknown-unknown -p cohort-edge
bash scripts/build-browser.sh
cohort="$(target_dir)/release/cohort"

step "validating the example tenants"
"$cohort" validate examples/tenants/*.json

now="2026-12-01T12:00:00Z"
step "shop.example: where do four visitors land? (at $now)"
"$cohort" explain --config examples/tenants/shop.json --now "$now" --unit 3f9a1c0e5b7d4a2c8e6f0b1d2c3a4e5f \
  --url https://shop.example/checkout/payment --attr country=DE --attr device=mobile --attr plan=free
"$cohort" explain --config examples/tenants/shop.json --now "$now" --unit 7c2e9b4a1f3d5e6c8a0b2d4f6e8a1c3b \
  --url https://shop.example/products/trail-shoes --attr country=US --attr device=desktop
"$cohort" explain --config examples/tenants/shop.json --now "$now" --unit visitor-from-an-app \
  --url https://shop.example/ --attr country=GB --attr app_version=3.2.0
"$cohort" explain --config examples/tenants/shop.json --now "$now" --unit 3f9a1c0e5b7d4a2c8e6f0b1d2c3a4e5f \
  --url https://shop.example/checkout/payment --force checkout-flow=one-page

step "news.example: two readers"
"$cohort" explain --config examples/tenants/news.json --now "$now" --unit reader-1 \
  --url https://news.example/politics/2026/11/budget --attr country=FR --attr subscriber=false
"$cohort" explain --config examples/tenants/news.json --now "$now" --unit reader-2 \
  --url https://news.example/ --attr country=US --attr subscriber=true
