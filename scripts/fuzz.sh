#!/usr/bin/env bash
# Runs each fuzz target for FUZZ_SECONDS (default 60). Needs the nightly toolchain (present on
# these machines) and cargo-fuzz, which this installs if missing. Not part of CI: fuzzing is
# open-ended; run it after touching parsing, conditions or the cookie codec.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
for target in config_parse condition_eval cookie_decode; do
  echo "==> fuzzing $target for ${seconds}s"
  mkdir -p "fuzz/corpus/$target"
  # Seed the corpus with the shared vectors so the fuzzer starts from realistic inputs.
  case "$target" in
    config_parse) cp examples/tenants/*.json "fuzz/corpus/$target/" ;;
    cookie_decode) python3 -c 'import json,sys; [open(f"fuzz/corpus/cookie_decode/v{i}","w").write(c["value"]) for i,c in enumerate(json.load(open("testdata/cookies.json"))["valid"])]' ;;
    condition_eval) python3 -c 'import json; [open(f"fuzz/corpus/condition_eval/c{i}","w").write(json.dumps(c["condition"])+"\n"+json.dumps(c["attributes"])) for i,c in enumerate(json.load(open("testdata/conditions.json"))["cases"])]' ;;
  esac
  cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds" -max_len=8192
done
