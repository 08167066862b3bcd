# The README's two commands. Each installs what it needs (scripts/setup.sh) and skips what is there.
.PHONY: demo test check bench bench-engine bench-edge bench-columnar soak fuzz mutants vectors

demo:          ## the whole pipeline: origin, collector, edge, simulated visitors, dashboard (Ctrl-C stops)
	bash scripts/demo.sh

test:          ## fmt, doc citations, clippy, native tests, alert rules (promtool), browser vector suite, worker size budget
	bash scripts/test.sh

check:         ## the inner loop, installs nothing: cargo fmt --check, clippy (warnings are errors), native tests
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace

bench:         ## Cohort vs the peers (engine native and Wasm, edge, collector): writes bench/RESULTS.md
	bash scripts/bench.sh

bench-engine:  ## the engine's own criterion benchmarks (bucket, evaluate, compile, cookie)
	cargo bench -p cohort-core --bench engine

bench-edge:    ## edge worker vs pass-through, HTMLRewriter vs lol_html, in workerd (bench/edge/results.md)
	bash scripts/bench-edge.sh

bench-columnar: ## results queries at 10,000,000 units: DuckDB beside SQLite and PostgreSQL (bench/columnar/results.md)
	bash scripts/bench-columnar.sh

soak:          ## 1,000,000 requests through edge and queue into the collector, with kill -9, a publish, KV and collector outages; exact accounts (bench/soak/results.md; make test runs 20,000)
	bash scripts/soak.sh

fuzz:          ## run each fuzz target for FUZZ_SECONDS (default 60; make test runs 15 s each)
	bash scripts/fuzz.sh

mutants:       ## cargo-mutants over core's and the collector's critical modules (hours): bench/mutants/RESULTS.md
	bash scripts/mutants.sh

vectors:       ## regenerate bucketing/cookie/evaluation vectors from the Python reference
	python3 testdata/reference.py
