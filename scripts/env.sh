# Sourced by the scripts: shared environment for builds and tests.
# CI clones the repository afresh for every run; building into a cache outside the clone lets it
# reuse compiled dependencies instead of rebuilding the world (cargo keys its cache by path).
if [[ -n "${CI:-}" && -z "${CARGO_TARGET_DIR:-}" ]]; then
  export CARGO_TARGET_DIR="$HOME/.cache/cohort/target"
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
target_dir() { echo "${CARGO_TARGET_DIR:-$PWD/target}"; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
