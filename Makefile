# flowtrace — the targets CI and developers use.
#   make test    everything CI checks: format, lints, feature builds, template lint, all tests
#   make demo    the blog site under `flowtrace local`: one post, one trace, health and cost
#   make layer   the Lambda layer zip (x86_64; `make layer ARCH=arm64` where aarch64 std exists)
#   make bench   criterion benchmarks (figures go in BENCHMARKS.md)

CARGO ?= cargo
PYTHON ?= python3
PIP := $(PYTHON) -m pip install --quiet --disable-pip-version-check
FIXTURES := tests/fixtures
# The end-to-end tests start real processes; keep them from starving each other on 2 cores.
TEST_THREADS ?= 4
ARCH ?= x86_64

.PHONY: all build test fmt-check clippy features template-lint test-deps demo-deps unit-tests demo layer bench fmt clean

all: build

build:
	$(CARGO) build --workspace --all-targets

test: fmt-check clippy features template-lint test-deps unit-tests

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

# Every feature combination of the public crates builds.
features:
	$(CARGO) check -p flowtrace --no-default-features
	$(CARGO) check -p flowtrace --no-default-features --features concurrency
	$(CARGO) check -p flowtrace --no-default-features --features reqwest
	$(CARGO) check -p flowtrace --no-default-features --features aws-sqs
	$(CARGO) check -p flowtrace --all-features
	$(CARGO) check -p flowtrace-reqwest --no-default-features
	$(CARGO) check -p flowtrace-extension
	$(CARGO) check -p flowtrace-aws --no-default-features
	for service in sns sqs kinesis dynamodb eventbridge lambda from-env; do \
		$(CARGO) check -p flowtrace-aws --no-default-features --features $$service || exit 1; \
	done
	$(CARGO) check -p flowtrace-contract
	$(CARGO) check -p flowtrace-contract --features mask

# cfn-lint and the SAM CLI come from PyPI, installed on first use; the SAM CLI in a venv of its
# own (its pins would fight moto's). `sam validate --lint` runs offline.
SAM_VENV := target/sam-venv
SAM := $(SAM_VENV)/bin/sam
template-lint:
	@command -v cfn-lint >/dev/null 2>&1 || $(PIP) cfn-lint
	cfn-lint template.yaml
	@test -x $(SAM) || { $(PYTHON) -m venv $(SAM_VENV) && $(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli; }
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM) validate --lint --template template.yaml

# What the tests need beside cargo: from PyPI, moto's server (the AWS tests and `flowtrace
# local`) and the Python OpenTelemetry SDK (a Python function's spans through the extension);
# from Debian, Chromium (the HTML report's render test).
test-deps: demo-deps
	@$(PYTHON) -c "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http" 2>/dev/null \
		|| $(PIP) opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

demo-deps:
	@$(PYTHON) -c "import moto.server, flask_cors" 2>/dev/null || $(PIP) 'moto[server]'

# All features, so every AWS service's moto tests run.
unit-tests:
	FLOWTRACE_REQUIRE_PYTHON=1 FLOWTRACE_REQUIRE_CHROMIUM=1 \
		$(CARGO) test --workspace --all-features --no-fail-fast -- --test-threads=$(TEST_THREADS)

# The blog site (template.yaml) under `flowtrace local`; writes target/flowtrace/spans.jsonl
# and target/flowtrace/report.html. FLOWTRACE_DEMO_VERBOSE=1 shows the functions' logs.
demo: demo-deps
	$(CARGO) build -q -p flowtrace-cli -p flowtrace-extension -p blog-site -p hello -p flowtrace-tests --bins
	$(CARGO) run -q -p flowtrace-tests --bin demo

# The layer: extensions/flowtrace-extension, built by cargo-lambda (with zig, for Amazon Linux's
# glibc), size-tuned. Both come from PyPI.
LAMBDA_ARCH_FLAG := $(if $(filter arm64,$(ARCH)),--arm64,)
layer:
	@command -v cargo-lambda >/dev/null 2>&1 || $(PIP) cargo-lambda ziglang
	CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
		CARGO_PROFILE_RELEASE_STRIP=true \
		cargo lambda build --release --extension --offline $(LAMBDA_ARCH_FLAG) -p flowtrace-extension
	rm -f layer/flowtrace-layer-$(ARCH).zip
	cd target/lambda && $(PYTHON) -m zipfile -c ../../layer/flowtrace-layer-$(ARCH).zip extensions/
	@echo "layer/flowtrace-layer-$(ARCH).zip:"; ls -l target/lambda/extensions/flowtrace-extension
	@echo "newest glibc symbol needed:"; objdump -T target/lambda/extensions/flowtrace-extension \
		| grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1

bench:
	$(CARGO) bench -p flowtrace --bench wrapper
	$(CARGO) bench -p flowtrace-reqwest --bench client
	$(CARGO) bench -p flowtrace-aws --features sqs,dynamodb,kinesis --bench interceptor
	$(CARGO) bench -p flowtrace-extension --bench forward
	$(CARGO) bench -p flowtrace-tests --bench extension_process

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
