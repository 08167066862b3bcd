#!/usr/bin/env bash
# Puts the results dashboard's vendored files (uPlot, from package.json) into www/dashboard/vendor/,
# which `cohort collector --dashboard-dir www/dashboard` serves. Installs the npm tooling only when
# node_modules lacks it.
set -euo pipefail
cd "$(dirname "$0")/.."

vendor=www/dashboard/vendor
# Skipped while node_modules is newer than the lockfile it was installed from (as in setup.sh).
if [[ ! -f node_modules/uplot/dist/uPlot.iife.min.js || package-lock.json -nt node_modules/.package-lock.json ]]; then
  printf '\033[1m==> %s\033[0m\n' "installing npm tooling (uPlot for the dashboard)"
  npm ci --no-audit --no-fund
fi
mkdir -p "$vendor"
for file in uPlot.iife.min.js uPlot.min.css; do
  cp node_modules/uplot/dist/"$file" "$vendor/$file"
done
cp node_modules/uplot/LICENSE "$vendor/uPlot.LICENSE.txt"
echo "dashboard: www/dashboard ($(du -sk www/dashboard | cut -f1) KiB, uPlot $(node -p 'require("./node_modules/uplot/package.json").version'))"
