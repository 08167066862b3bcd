#!/usr/bin/env bash
# Mutation testing (cargo-mutants): each mutant is one small deliberate bug in the modules whose
# bugs would be silent (wrong buckets, forged cookies accepted, records lost or counted twice,
# wrong statistics); a mutant the tests do not catch is a gap in the tests. Writes the counts per
# module and every surviving mutant to bench/mutants/RESULTS.md (scripts/mutants-report.mjs).
#
#   bash scripts/mutants.sh                  every part (hours on 2 cores: not part of make test)
#   bash scripts/mutants.sh core             parts: core, collector-store, collector-stats
#   MUTANTS_SHARD=k/n bash scripts/mutants.sh collector-stats   every n-th mutant from the k-th
#                                                    (round-robin: one shard is a sample across every
#                                                    file; the report merges shards' outputs)
#   MUTANTS_ITERATE=1 bash scripts/mutants.sh core  after adding tests: retest only what the last run
#                                                    of that part did not catch (cargo-mutants
#                                                    --iterate; the report counts both runs)
#
# Outputs stay in $(target_dir)/mutants/<part>/mutants.out; the report reads every part there.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
CARGO_MUTANTS_VERSION=27.1.0

parts=("$@")
(( ${#parts[@]} )) || parts=(core collector-store collector-stats)
for part in "${parts[@]}"; do
  case "$part" in
    core | collector-store | collector-stats) ;;
    *) echo "mutants.sh: unknown part '$part' (core, collector-store or collector-stats)" >&2; exit 2 ;;
  esac
done

if ! cargo mutants --version 2>/dev/null | grep -q "$CARGO_MUTANTS_VERSION"; then
  step "installing cargo-mutants $CARGO_MUTANTS_VERSION (about 3 minutes, once)"
  cargo install cargo-mutants --version "$CARGO_MUTANTS_VERSION" --locked
fi

# What each part mutates, and which tests judge its mutants: the crate's unit tests and the
# integration suites that exercise those modules (the slow seeded simulations are left out: the
# statistics fixtures and unit tests check the same functions at literal values).
core_files=(bucket cookie secrets preview condition evaluate delivery/mod delivery/consumer)
collector_store_files=(ingest store/mod store/writer store/read store/configs store/monitor)
run_part() {
  local part=$1 package files=() test_args=()
  case "$part" in
    core)
      package=cohort-core
      for f in "${core_files[@]}"; do files+=(--file "crates/core/src/$f.rs"); done
      test_args=(--lib --tests)
      ;;
    collector-store)
      package=cohort-collector
      for f in "${collector_store_files[@]}"; do files+=(--file "crates/collector/src/$f.rs"); done
      test_args=(--lib --test ingest --test durability --test control --test results --test experiments --test analysis --test monitoring)
      ;;
    collector-stats)
      package=cohort-collector
      files=(--file crates/collector/src/stats.rs)
      test_args=(--lib --test statistics --test results --test analysis)
      ;;
  esac
  local out
  out="$(target_dir)/mutants/$part${MUTANTS_SHARD:+-${MUTANTS_SHARD/\//-of-}}"
  mkdir -p "$out"
  step "mutants: $package ($(printf '%s ' "${files[@]}" | sed 's/--file //g')) → $out"
  # Every mutant of the tree as it is now: the report counts these only, so mutants an earlier
  # `--iterate` run saw at lines that have since moved are not counted twice.
  cargo mutants --list --package "$package" "${files[@]}" ${MUTANTS_SHARD:+--shard "$MUTANTS_SHARD" --sharding round-robin} >"$out/list.txt"
  # Exit 2 (some mutants survived) and 3 (some timed out) are findings, reported below, not failures.
  local status=0
  cargo mutants --package "$package" "${files[@]}" --output "$out" --jobs 1 --timeout-multiplier 3 \
    --profile mutants ${MUTANTS_SHARD:+--shard "$MUTANTS_SHARD" --sharding round-robin} ${MUTANTS_ITERATE:+--iterate} \
    -- "${test_args[@]}" || status=$?
  if (( status != 0 && status != 2 && status != 3 )); then
    echo "FAIL: cargo mutants exited $status for $part (see $out/mutants.out/log)" >&2
    exit 1
  fi
}
for part in "${parts[@]}"; do run_part "$part"; done

node scripts/mutants-report.mjs --out bench/mutants/RESULTS.md "$(target_dir)/mutants"
