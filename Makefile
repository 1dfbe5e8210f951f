# berth: build, end-to-end tests and the demo. The e2e suites and the demo need root.
CARGO ?= cargo

.PHONY: build release test demo fixtures fmt clippy

build:
	$(CARGO) build --bin berth

release:
	$(CARGO) build --release --bin berth

# The suites run the debug binary (target/debug/berth, or $$BERTH_BIN) inside sandbox hosts.
test:
	$(CARGO) build --bin berth && $(CARGO) nextest run --workspace

fixtures:
	tests/fixtures/build-image.sh target/berth-fixtures

demo:
	scripts/demo.sh

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
