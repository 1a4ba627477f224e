# flowtrace — the targets CI and developers use.
#   make test    everything CI checks: format, lints, feature builds, all tests
#   make demo    a traced function under a local Lambda emulator, and `flowtrace inspect`
#   make bench   criterion benchmarks (figures go in BENCHMARKS.md)

CARGO ?= cargo
FIXTURES := tests/fixtures
# Cap parallel test threads: the end-to-end tests start real processes.
TEST_THREADS ?= 4

.PHONY: all build test fmt-check clippy features unit-tests template-lint demo bench fmt clean

all: build

build:
	$(CARGO) build --workspace --all-targets

test: fmt-check clippy features template-lint unit-tests

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

# Every feature combination of the public crates builds.
features:
	$(CARGO) check -p flowtrace --no-default-features
	$(CARGO) check -p flowtrace --no-default-features --features concurrency
	$(CARGO) check -p flowtrace --all-features

# cfn-lint comes from PyPI; installed on first use.
template-lint:
	@command -v cfn-lint >/dev/null 2>&1 || python3 -m pip install --quiet cfn-lint
	cfn-lint template.yaml

unit-tests:
	$(CARGO) test --workspace -- --test-threads=$(TEST_THREADS)

demo:
	$(CARGO) build -q -p hello -p flowtrace-cli -p flowtrace-tests --bin demo --bin flowtrace --bin hello
	$(CARGO) run -q -p flowtrace-tests --bin demo
	@for event in sqs-batch-3 apigw-http-route-traceparent kinesis-json-reserved; do \
		echo "\$$ flowtrace inspect $(FIXTURES)/$$event.json"; \
		$(CARGO) run -q -p flowtrace-cli -- inspect $(FIXTURES)/$$event.json || exit 1; \
		echo; \
	done

bench:
	$(CARGO) bench -p flowtrace --bench wrapper

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
