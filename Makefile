# berth: build, end-to-end tests and the demo. The e2e suites and the demo need root.
CARGO ?= cargo

.PHONY: build release test demo fixtures fmt clippy

build:
	$(CARGO) build --bin berth

release:
	$(CARGO) build --release --bin berth

# The suites run the debug binary (target/debug/berth, or $$BERTH_BIN) inside sandbox hosts.
test:
	scripts/test-deps.sh
	$(CARGO) build --bin berth && $(CARGO) nextest run --workspace --no-fail-fast

fixtures:
	tests/fixtures/build-image.sh target/berth-fixtures

demo:
	scripts/demo.sh

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Benchmarks (bench/bench.sh, bench/README.md): `run --rm IMAGE true` per mode vs bare runc and
# podman; bridge endpoint setup/teardown at 0/100/500 endpoints vs the CNI plugins, 1000
# published ports, iperf3 throughput; macvlan endpoint cost and throughput. Root.
# bench: 30 runs, installs hyperfine/time/iperf3/podman if missing; bench-quick: few runs.
# BENCH_FIGURES=run,bridge,underlay picks figures.
.PHONY: bench bench-quick
bench:
	bench/bench.sh --full

bench-quick:
	bench/bench.sh --quick

# The benchmark's own logic (fallback timer, report arithmetic and verdicts); no root needed.
.PHONY: bench-selftest
bench-selftest:
	bench/selftest.sh
