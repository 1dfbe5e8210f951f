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
	$(CARGO) build --bin berth --features failpoints && $(CARGO) nextest run --workspace --no-fail-fast

fixtures:
	tests/fixtures/build-image.sh target/berth-fixtures

demo:
	scripts/demo.sh

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Benchmarks (bench/bench.sh, bench/README.md), berth beside Docker, podman/netavark, the CNI
# plugins and bare runc: `run --rm` per mode; bridge endpoint setup/teardown at 0/100/500/1000
# endpoints; 1-1000 published ports; 50 concurrent starts; iperf3 and sockperf data path;
# macvlan; memory. Writes bench/results/DATE.md and PNG plots. Root.
# bench: full runs, installs its tools and peers (~25 min); bench-quick: few runs, installs
# nothing, skips absent peers (~3 min; .ci/run runs it). BENCH_FIGURES=run,ports,... picks
# modules; BERTH_BIN=PATH times another binary.
.PHONY: bench bench-quick
bench:
	bench/bench.sh --full

bench-quick:
	bench/bench.sh --quick

# The benchmark's own logic (fallback timer, report arithmetic and verdicts); no root needed.
.PHONY: bench-selftest
bench-selftest:
	bench/selftest.sh
