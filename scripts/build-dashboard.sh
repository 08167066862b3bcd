#!/usr/bin/env bash
# Refreshes the dashboard's vendored uPlot (www/dashboard/vendor/, committed, and built into the
# `cohort` binary by crates/collector/build.rs) from the version package.json pins. Run it after
# bumping uplot; `--check` instead fails when the committed copy is not that version's files
# (make test runs it). Installs the npm tooling only when node_modules lacks it.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[[ "${1:-}" == "--check" ]] && check=true
vendor=www/dashboard/vendor
# Skipped while node_modules is newer than the lockfile it was installed from (as in setup.sh).
if [[ ! -f node_modules/uplot/dist/uPlot.iife.min.js || package-lock.json -nt node_modules/.package-lock.json ]]; then
  printf '\033[1m==> %s\033[0m\n' "installing npm tooling (uPlot for the dashboard)"
  npm ci --no-audit --no-fund
fi
version=$(node -p 'require("./node_modules/uplot/package.json").version')
mkdir -p "$vendor"
for pair in dist/uPlot.iife.min.js:uPlot.iife.min.js dist/uPlot.min.css:uPlot.min.css LICENSE:uPlot.LICENSE.txt; do
  source_file="node_modules/uplot/${pair%%:*}"
  vendored="$vendor/${pair##*:}"
  if $check; then
    cmp -s "$source_file" "$vendored" || {
      echo "FAIL: $vendored is not uPlot $version's ${pair%%:*}: run bash scripts/build-dashboard.sh" >&2
      exit 1
    }
  else
    cp "$source_file" "$vendored"
  fi
done
echo "dashboard: www/dashboard ($(du -sk www/dashboard | cut -f1) KiB, uPlot $version)"
