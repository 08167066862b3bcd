#!/usr/bin/env bash
# Mutation testing (cargo-mutants): each mutant is one small deliberate bug in the modules whose
# bugs would be silent (wrong buckets, forged cookies accepted, records lost or counted twice,
# wrong statistics); a mutant the tests do not catch is a gap in the tests. Writes the counts per
# module and every surviving mutant to bench/mutants/RESULTS.md (scripts/mutants-report.mjs).
#
#   bash scripts/mutants.sh            core and collector (hours on 2 cores: not part of make test)
#   bash scripts/mutants.sh core       one of: core, collector
#   MUTANTS_SHARD=k/n bash scripts/mutants.sh core   the k-th of n slices (runs can be split and
#                                                    their outputs merged by the report)
#
# Outputs stay in $(target_dir)/mutants/<part>/mutants.out; the report reads every part there.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
CARGO_MUTANTS_VERSION=27.1.0

parts=("$@")
(( ${#parts[@]} )) || parts=(core collector)
for part in "${parts[@]}"; do
  case "$part" in core | collector) ;; *) echo "mutants.sh: unknown part '$part' (core or collector)" >&2; exit 2 ;; esac
done

if ! cargo mutants --version 2>/dev/null | grep -q "$CARGO_MUTANTS_VERSION"; then
  step "installing cargo-mutants $CARGO_MUTANTS_VERSION (about 3 minutes, once)"
  cargo install cargo-mutants --version "$CARGO_MUTANTS_VERSION" --locked
fi

# What each part mutates, and which of its tests judge the mutants: every test target of the crate
# except the slow end-to-end simulations, whose checks the faster suites repeat.
core_files=(bucket cookie secrets preview condition evaluate delivery/mod delivery/consumer)
collector_files=(ingest stats store/mod store/writer store/read store/configs store/monitor)
run_part() {
  local part=$1 package files=() test_args=()
  case "$part" in
    core)
      package=cohort-core
      for f in "${core_files[@]}"; do files+=(--file "crates/core/src/$f.rs"); done
      test_args=(--lib --tests)
      ;;
    collector)
      package=cohort-collector
      for f in "${collector_files[@]}"; do files+=(--file "crates/collector/src/$f.rs"); done
      test_args=(--lib --test ingest --test durability --test results --test statistics --test experiments --test monitoring --test control)
      ;;
  esac
  local out
  out="$(target_dir)/mutants/$part${MUTANTS_SHARD:+-${MUTANTS_SHARD/\//-of-}}"
  mkdir -p "$out"
  step "mutants: $package ($(printf '%s ' "${files[@]}" | sed 's/--file //g')) → $out"
  # Exit 2 means "some mutants survived": that is the finding, reported below, not a failure.
  local status=0
  cargo mutants --package "$package" "${files[@]}" --output "$out" --jobs 1 --timeout-multiplier 3 \
    --profile mutants ${MUTANTS_SHARD:+--shard "$MUTANTS_SHARD"} -- "${test_args[@]}" || status=$?
  if (( status != 0 && status != 2 )); then
    echo "FAIL: cargo mutants exited $status for $part (see $out/mutants.out/log)" >&2
    exit 1
  fi
}
for part in "${parts[@]}"; do run_part "$part"; done

node scripts/mutants-report.mjs --out bench/mutants/RESULTS.md "$(target_dir)/mutants"
