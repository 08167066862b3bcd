#!/usr/bin/env bash
# Installs what building and testing Cohort needs on a fresh machine, skipping what is present.
# Safe to run repeatedly; every step checks before it installs.
#
#   scripts/setup.sh            toolchain, wasm target, wasm-bindgen CLI
#   scripts/setup.sh --browser  also Chromium + ChromeDriver (browser tests) and wasm-pack, which
#                               builds and packs the npm package and runs the wasm-bindgen-test suites
#   scripts/setup.sh --edge     also worker-build, the npm tooling (wrangler/workerd, esbuild, wasm-opt,
#                               and eslint, prettier and typescript for `npm run lint`)
#                               and the sqlite3 shell (the delivery test reads the collector's database)
#   scripts/setup.sh --monitoring  also promtool (Debian's prometheus package), which checks and
#                                  unit-tests deploy/prometheus/alerts.yml
#   scripts/setup.sh --durability  also strace (Debian), which crates/cli/tests/durability.rs runs
#                                  the collector under to see it fsync before every 2xx
#   scripts/setup.sh --supply-chain  also cargo-deny (crates.io), which checks deny.toml's license,
#                                    ban and source rules offline
#   scripts/setup.sh --statistics  also a Python environment with the pinned scipy, statsmodels and
#                                  GrowthBook's gbstats (testdata/statistics-requirements.txt), in
#                                  $STATISTICS_VENV, which regenerates testdata/statistics.json
#   scripts/setup.sh --columnar    also a Python environment with the pinned DuckDB
#                                  (bench/columnar/requirements.txt), in $COLUMNAR_VENV, for
#                                  `make bench-columnar`
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal the `wasm-bindgen` pin in Cargo.toml
WASM_PACK_VERSION=0.15.1       # uses the wasm-bindgen CLI above from PATH instead of downloading one
WORKER_BUILD_VERSION=0.8.7     # pairs with the `worker` crate version in Cargo.toml
CARGO_DENY_VERSION=0.20.2      # reads deny.toml
GBSTATS_VERSION=0.8.0          # testdata/statistics.py's independent implementation of the sequential tests
# Outside the checkout, so a fresh clone reuses it; keyed by the requirements it was made from.
STATISTICS_VENV="${STATISTICS_VENV:-$HOME/.cache/cohort/statistics-venv}"
COLUMNAR_VENV="${COLUMNAR_VENV:-$HOME/.cache/cohort/columnar-venv}"
want_browser=false
want_edge=false
want_monitoring=false
want_durability=false
want_supply_chain=false
want_statistics=false
want_columnar=false
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=true ;;
    --edge) want_edge=true ;;
    --monitoring) want_monitoring=true ;;
    --durability) want_durability=true ;;
    --supply-chain) want_supply_chain=true ;;
    --statistics) want_statistics=true ;;
    --columnar) want_columnar=true ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^$toolchain"; then
  step "installing Rust $toolchain"
  rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy
fi
for component in rustfmt clippy; do
  if ! rustup component list --toolchain "$toolchain" --installed | grep -q "^$component"; then
    step "adding $component to $toolchain"
    rustup component add "$component" --toolchain "$toolchain"
  fi
done
if ! rustup target list --toolchain "$toolchain" --installed | grep -q '^wasm32-unknown-unknown$'; then
  step "adding wasm32-unknown-unknown to $toolchain"
  rustup target add wasm32-unknown-unknown --toolchain "$toolchain"
fi

# Debian packages: the package lists are refreshed once per run, before the first install.
apt_lists_fresh=false
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ! $apt_lists_fresh; then
    apt-get update -qq
    apt_lists_fresh=true
  fi
  apt-get install -y -qq "$@" >/dev/null
}

if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
  step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes, once)"
  # --locked fails on the registry mirror here: a locked dependency version is missing.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

if $want_browser && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  step "installing Chromium and ChromeDriver from Debian"
  apt_install chromium chromium-driver
fi
if $want_browser && [[ "$(wasm-pack --version 2>/dev/null || true)" != "wasm-pack $WASM_PACK_VERSION" ]]; then
  step "installing wasm-pack $WASM_PACK_VERSION (about 2 minutes, once)"
  cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked
fi
if $want_edge; then
  if [[ "$(worker-build --version 2>/dev/null || true)" != "$WORKER_BUILD_VERSION" ]]; then
    step "installing worker-build $WORKER_BUILD_VERSION (about 3 minutes, once)"
    cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
  fi
  # Skipped while node_modules is newer than the lockfile it was installed from.
  if [[ ! -x node_modules/.bin/wrangler || package-lock.json -nt node_modules/.package-lock.json ]]; then
    step "installing npm tooling (wrangler/workerd, esbuild, binaryen, eslint, prettier, typescript)"
    npm ci --no-audit --no-fund
  fi
  if ! command -v sqlite3 >/dev/null 2>&1; then
    step "installing the sqlite3 shell from Debian"
    apt_install sqlite3
  fi
fi
if $want_monitoring && ! command -v promtool >/dev/null 2>&1; then
  step "installing promtool (Debian's prometheus package)"
  # Only promtool is wanted, but the package's scripts start a Prometheus server unless
  # policy-rc.d forbids it. Container images usually ship one that does; otherwise put one in place
  # for the install (exit 101: "action forbidden") and remove it afterwards, even on failure.
  policy=/usr/sbin/policy-rc.d
  made_policy=false
  if [[ ! -e $policy ]]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    trap 'exit 130' INT # bash runs the EXIT trap on `exit`, not when a signal kills it
    trap 'exit 143' TERM
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=true
  fi
  # Without recommends: prometheus-node-exporter would be one more daemon.
  apt_install --no-install-recommends prometheus
  if $made_policy; then
    rm -f "$policy"
    trap - EXIT INT TERM
  fi
  # Keep the server from starting at boot, and stop one a permissive policy-rc.d let start.
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  else
    update-rc.d prometheus disable >/dev/null 2>&1 || true
    server_pid=$(cat /run/prometheus/prometheus.pid 2>/dev/null || true)
    if [[ -n $server_pid && "$(cat "/proc/$server_pid/comm" 2>/dev/null || true)" == prometheus ]]; then
      # It may exit on its own in between; then there is nothing to stop.
      kill "$server_pid" 2>/dev/null || true
      for _ in $(seq 100); do
        [[ "$(cat "/proc/$server_pid/comm" 2>/dev/null || true)" == prometheus ]] || break
        sleep 0.1
      done
    fi
    rm -f /run/prometheus/prometheus.pid
  fi
fi
if $want_durability && ! command -v strace >/dev/null 2>&1; then
  step "installing strace from Debian"
  apt_install strace
fi
if $want_supply_chain && [[ "$(cargo deny --version 2>/dev/null || true)" != "cargo-deny $CARGO_DENY_VERSION" ]]; then
  step "installing cargo-deny $CARGO_DENY_VERSION (about 6 minutes, once)"
  cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked
fi
if $want_statistics; then
  stamp="$STATISTICS_VENV/requirements.txt"
  if ! cmp -s testdata/statistics-requirements.txt "$stamp" 2>/dev/null; then
    step "creating the statistics environment ($STATISTICS_VENV: scipy, statsmodels, gbstats $GBSTATS_VERSION; PyPI)"
    python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
    rm -rf "$STATISTICS_VENV"
    python3 -m venv "$STATISTICS_VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$STATISTICS_VENV"; }
    "$STATISTICS_VENV/bin/pip" install -q -r testdata/statistics-requirements.txt
    "$STATISTICS_VENV/bin/pip" install -q --no-deps "gbstats==$GBSTATS_VERSION"
    cp testdata/statistics-requirements.txt "$stamp"
  fi
fi
if $want_columnar; then
  stamp="$COLUMNAR_VENV/requirements.txt"
  if ! cmp -s bench/columnar/requirements.txt "$stamp" 2>/dev/null; then
    step "creating the columnar benchmark's environment ($COLUMNAR_VENV: DuckDB; PyPI)"
    rm -rf "$COLUMNAR_VENV"
    python3 -m venv "$COLUMNAR_VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$COLUMNAR_VENV"; }
    "$COLUMNAR_VENV/bin/pip" install -q -r bench/columnar/requirements.txt
    cp bench/columnar/requirements.txt "$stamp"
  fi
fi
step "setup complete"
