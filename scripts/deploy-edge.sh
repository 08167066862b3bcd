#!/usr/bin/env bash
# Deploys the edge worker to one of wrangler.toml's environments (docs/edge.md, "Deploying").
#
#   COHORT_COLLECTOR_URL=https://collector.example.com bash scripts/deploy-edge.sh staging
#   COHORT_COLLECTOR_URL=https://collector.example.com bash scripts/deploy-edge.sh production --dry-run
#
# COHORT_COLLECTOR_URL is where the worker's queue consumer delivers beacons (its COLLECTOR_URL);
# it is an https URL outside the committed config because it is the operator's. A real deploy needs
# wrangler logged in (`npx wrangler login`, or CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID) and,
# once per environment, the queues and the platform secret:
#   npx wrangler queues create cohort-beacons[-staging] && npx wrangler queues create cohort-beacons-dlq[-staging]
#   npx wrangler secret put COHORT_SECRET --env ENV
# --dry-run builds and bundles without uploading (offline) into $(target_dir)/deploy-ENV and prints
# the upload's size and gzip size, the figure Cloudflare limits.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

usage() {
  echo "usage: COHORT_COLLECTOR_URL=https://… bash scripts/deploy-edge.sh staging|production [--dry-run]" >&2
  exit 2
}
environment="${1:-}"
[[ "$environment" == staging || "$environment" == production ]] || usage
dry_run=false
case "${2:-}" in
  "") ;;
  --dry-run) dry_run=true ;;
  *) echo "deploy-edge.sh: unknown argument '$2'" >&2; usage ;;
esac
(( $# <= 2 )) || usage
url="${COHORT_COLLECTOR_URL:-}"
if [[ ! "$url" =~ ^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^[:space:]]*)?$ ]]; then
  echo "deploy-edge.sh: COHORT_COLLECTOR_URL must be the collector's https URL (got '${url}')" >&2
  exit 2
fi

args=(deploy --env "$environment" --var "COLLECTOR_URL:${url%/}")
if $dry_run; then
  out="$(target_dir)/deploy-$environment"
  rm -rf "$out"
  args+=(--dry-run --outdir "$out")
fi
WRANGLER_SEND_METRICS=false node_modules/.bin/wrangler "${args[@]}"
