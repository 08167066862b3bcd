#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets: config parsing, condition evaluation, cookie
# decoding) for FUZZ_SECONDS (default 60), each from a corpus seeded with the shared vectors.
# `make test` runs it for 15 s per target; `make fuzz` for as long as you give it. A crash fails the
# run and leaves its input in fuzz/artifacts/TARGET/ (replay: cargo fuzz run TARGET FILE).
#
# libFuzzer needs sanitizer flags only nightly rustc accepts: the nightly toolchain when one is
# installed (these machines have one), else the pinned stable one with RUSTC_BOOTSTRAP=1, which
# unlocks the same flags. cargo-fuzz is installed from crates.io if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seconds="${FUZZ_SECONDS:-60}"
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  step "installing cargo-fuzz $CARGO_FUZZ_VERSION (about a minute, once)"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
if rustup toolchain list | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
  echo "fuzz.sh: no nightly toolchain; using $(rustc --version) with RUSTC_BOOTSTRAP=1"
fi
# Out of the clone, so a fresh clone reuses the instrumented build (the flags differ from the
# workspace's, so it never shares the workspace's target directory).
fuzz_target_dir="$(target_dir)/fuzz"

# The corpus lives under fuzz/corpus (ignored by git) and grows across local runs.
seed() {
  local target=$1 dir="fuzz/corpus/$1"
  mkdir -p "$dir"
  case "$target" in
    config_parse) cp examples/tenants/*.json "$dir/" ;;
    cookie_decode) python3 - "$dir" <<'PY'
import json, sys
for i, case in enumerate(json.load(open("testdata/cookies.json"))["valid"]):
    open(f"{sys.argv[1]}/v{i}", "w").write(case["value"])
PY
      ;;
    condition_eval) python3 - "$dir" <<'PY'
import json, sys
for i, case in enumerate(json.load(open("testdata/conditions.json"))["cases"]):
    open(f"{sys.argv[1]}/c{i}", "w").write(json.dumps(case["condition"]) + "\n" + json.dumps(case["attributes"]))
PY
      ;;
  esac
}

summary=()
for target in config_parse condition_eval cookie_decode; do
  step "fuzzing $target for ${seconds}s"
  seed "$target"
  log="$(mktemp)"
  status=0
  cargo "${toolchain[@]}" fuzz run --fuzz-dir fuzz --target-dir "$fuzz_target_dir" "$target" "fuzz/corpus/$target" \
    -- -max_total_time="$seconds" -max_len=8192 >"$log" 2>&1 || status=$?
  if (( status != 0 )) || ! grep -q '^Done [0-9]* runs' "$log"; then
    tail -60 "$log" >&2
    echo "FAIL: fuzz target $target crashed or did not run (exit $status; a crashing input is under fuzz/artifacts/$target/)" >&2
    rm -f "$log"
    exit 1
  fi
  summary+=("$target: $(grep -o '^Done [0-9]* runs in [0-9]* second(s)' "$log")")
  rm -f "$log"
done
step "fuzzing: every target ran clean"
printf '  %s\n' "${summary[@]}"
