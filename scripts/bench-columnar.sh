#!/usr/bin/env bash
# `make bench-columnar`: the two statements of a results request at 10,000,000 exposed units on
# DuckDB (embedded, columnar) beside SQLite and PostgreSQL (a throwaway server), same schema, same
# data, same answers (bench/columnar/run.py). Writes bench/columnar/results.md; arguments go to
# run.py (`--units N`, `--engines duckdb,sqlite,postgres`). Takes about half an hour here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/setup.sh --columnar
venv="${COLUMNAR_VENV:-$HOME/.cache/cohort/columnar-venv}"
bash scripts/postgres.sh "$venv/bin/python" bench/columnar/run.py --layouts --report bench/columnar/results.md "$@"
