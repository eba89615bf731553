# The one task runner: the same verbs locally and in CI (.ci/run).
#
#   make setup   .venv with the package and its dev tools (quick when done)
#   make serve   run the gateway; pass flags with ARGS="--listen 127.0.0.1:50051"
#   make test    everything the tests need, then pytest (PYTEST_ARGS="-k e2e")
#   make lint    ruff, ruff format --check, mypy, buf lint, generated-code check
#   make proto   regenerate gateway/_proto from protos/
#   make bench   run the benchmarks; write docs/benchmarks.md (ARGS="--quick")
#   make tools   pinned buf (npm) and grpcurl (Go) into tools/ and .tools/
#   make clean   caches and build output; `make distclean` also drops .venv and tools

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# An optional constraints.txt (pip freeze of a known-good venv) pins every
# version, so that new releases of ruff, mypy or grpcio-tools cannot turn CI red.
CONSTRAINTS := $(wildcard constraints.txt)
# Keyed on the content of pyproject.toml (and constraints.txt), not mtimes: a
# fresh clone or a branch switch that leaves them alone does not reinstall.
SETUP_STAMP := $(VENV)/.setup-$(shell cat pyproject.toml $(CONSTRAINTS) | sha256sum | cut -c1-16)

# Pinned tools. buf comes from npm (version in tools/package.json and its lock
# file); grpcurl is built from source with the machine's Go.
GRPCURL_VERSION := v1.9.4
TOOLS_BIN := $(CURDIR)/.tools/bin
BUF := tools/node_modules/.bin/buf
BUF_STAMP := tools/node_modules/.installed
GRPCURL := $(TOOLS_BIN)/grpcurl
GRPCURL_STAMP := .tools/.grpcurl-$(GRPCURL_VERSION)

ARGS ?=
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup serve test lint proto bench tools clean distclean \
	lint-ruff lint-format lint-mypy lint-buf lint-proto

help:
	@sed -n '3,10s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,otel]' $(if $(CONSTRAINTS),--constraint $(CONSTRAINTS))
	@rm -f $(VENV)/.setup-*
	@touch $@

tools: $(BUF_STAMP) $(GRPCURL_STAMP)

$(BUF_STAMP): tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	$(BUF) --version
	@touch $@

$(GRPCURL_STAMP):
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) go install -trimpath \
		-ldflags "-s -w -X main.version=$(GRPCURL_VERSION)" \
		github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	$(GRPCURL) -version
	@rm -f .tools/.grpcurl-*
	@touch $@

serve: setup
	$(PY) -m gateway $(ARGS)

# The e2e tests find grpcurl through GATEWAY_GRPCURL, or on PATH.
test: export PATH := $(TOOLS_BIN):$(PATH)
test: export GATEWAY_GRPCURL := $(GRPCURL)
test: setup tools
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Every check runs as its own target, so `make -k lint` reports them all.
lint: lint-ruff lint-format lint-mypy lint-buf lint-proto

lint-ruff: setup
	$(VENV)/bin/ruff check .

lint-format: setup
	$(VENV)/bin/ruff format --check .

lint-mypy: setup
	$(VENV)/bin/mypy

lint-buf: $(BUF_STAMP)
	$(BUF) lint

lint-proto: setup
	$(PY) protos/generate.py --check

proto: setup
	$(PY) protos/generate.py

# --- Benchmarks (bench/): make bench writes docs/benchmarks.{md,json} and docs/bench-*.png ---
#
# Load comes from Go programs in their own processes: ghz (pinned, from the Go
# proxy) for unary calls and bench/streamclient for streams. A few minutes,
# bounded; ARGS="--quick" for a smoke run, ARGS="--only fanout" for one scenario.
GHZ_VERSION := v0.120.0
GHZ := $(TOOLS_BIN)/ghz
GHZ_STAMP := .tools/.ghz-$(GHZ_VERSION)
STREAMCLIENT := $(TOOLS_BIN)/bench-streamclient
BENCH_STAMP := $(VENV)/.bench-$(shell cat pyproject.toml $(CONSTRAINTS) | sha256sum | cut -c1-16)

.PHONY: bench-tools

bench: bench-tools
	timeout --kill-after=30s 20m $(PY) -m bench --ghz $(GHZ) --stream-client $(STREAMCLIENT) $(ARGS)

bench-tools: setup $(BENCH_STAMP) $(GHZ_STAMP) $(STREAMCLIENT)

$(BENCH_STAMP): $(SETUP_STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]' $(if $(CONSTRAINTS),--constraint $(CONSTRAINTS))
	@rm -f $(VENV)/.bench-*
	@touch $@

$(GHZ_STAMP):
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) go install -trimpath -ldflags "-s -w -X main.version=$(GHZ_VERSION)" \
		github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)
	$(GHZ) --version
	@rm -f .tools/.ghz-*
	@touch $@

$(STREAMCLIENT): bench/streamclient/main.go bench/streamclient/go.mod bench/streamclient/go.sum
	@mkdir -p $(TOOLS_BIN)
	cd bench/streamclient && go build -trimpath -o $@ .

clean:
	find . -path ./$(VENV) -prune -o -path ./tools/node_modules -prune \
		-o -type d -name __pycache__ -prune -exec rm -rf {} +
	rm -rf .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info

distclean: clean
	rm -rf $(VENV) .tools tools/node_modules

# --- Clients (clients/): stubs for every language, the Python SDK, examples ---
#
#   make clients         regenerate every language's stubs from protos/ (buf.gen.yaml)
#   make clients-check   fail if any committed stub is stale (part of `make lint`)
#   make clients-tools   the pinned code generators (part of `make tools`)
#   make clients-setup   the examples' dependencies: Go modules, npm, Maven, crates (part of `make test`)
#
# Every generator is a local plugin, pinned here or in a lock file: there is no
# network beyond the package registries, so no remote buf plugins.
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
# protoc itself only for its builtin Java generator; both from Maven Central.
# protoc-gen-grpc-java: 1.79.0 is the newest whose linux-x86_64 binary Maven
# Central serves here (1.84.2 and 1.85.0 are refused).
PROTOC_VERSION := 4.36.2
GRPC_JAVA_PLUGIN_VERSION := 1.79.0
MAVEN_DEPENDENCY_PLUGIN := org.apache.maven.plugins:maven-dependency-plugin:3.8.1
MAVEN_ARCH := $(shell uname -m | sed -e 's/^x86_64$$/x86_64/' -e 's/^aarch64$$/aarch_64/')
MVN := mvn -B -q --no-transfer-progress
# Rust: protoc-gen-prost (messages) and protoc-gen-tonic (the tonic client), from
# crates.io with their own lock files. The two are released together, one version.
PROTOC_GEN_PROST_VERSION := 0.5.0
CARGO := cargo
CLIENTS_TS_STAMP := clients/typescript/node_modules/.installed
CLIENT_CODEGEN_STAMP := .tools/.codegen-go-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GO_GRPC_VERSION)-java-$(PROTOC_VERSION)-$(GRPC_JAVA_PLUGIN_VERSION)
CLIENT_RUST_CODEGEN_STAMP := .tools/.rust-codegen-$(PROTOC_GEN_PROST_VERSION)
# Generated stub directories, relative to the repo root: `make clients` empties them first.
CLIENT_GEN_DIRS := clients/go/gen clients/typescript/src/gen \
	clients/java/src/main/java/io/executiongateway/execution \
	clients/python/src/gateway_client/_proto clients/rust/src/gen
SDK_STAMP := $(VENV)/.sdk-$(shell cat clients/python/pyproject.toml $(CONSTRAINTS) | sha256sum | cut -c1-16)
CLIENTS_SETUP_STAMP := .tools/.clients-setup-$(shell cat clients/go/go.sum clients/java/pom.xml \
	clients/typescript/package-lock.json clients/rust/Cargo.lock 2>/dev/null | sha256sum | cut -c1-16)

.PHONY: clients clients-check clients-tools clients-setup lint-clients lint-sdk-mypy lint-rust

# The SDK (clients/python) is installed, editable, into the same .venv.
setup: $(SDK_STAMP)
tools: clients-tools
test: clients-setup
lint: lint-clients

$(SDK_STAMP): $(SETUP_STAMP) clients/python/pyproject.toml
	$(PY) -m pip install --quiet -e clients/python $(if $(CONSTRAINTS),--constraint $(CONSTRAINTS))
	@rm -f $(VENV)/.sdk-*
	@touch $@

clients-tools: $(CLIENTS_TS_STAMP) $(CLIENT_CODEGEN_STAMP) $(CLIENT_RUST_CODEGEN_STAMP)

$(CLIENTS_TS_STAMP): clients/typescript/package.json clients/typescript/package-lock.json
	npm ci --prefix clients/typescript --no-audit --no-fund --loglevel=error
	@touch $@

$(CLIENT_CODEGEN_STAMP):
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) go install -trimpath google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS_BIN) go install -trimpath google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(MVN) $(MAVEN_DEPENDENCY_PLUGIN):copy -DoutputDirectory="$$tmp" \
		-Dartifact=com.google.protobuf:protoc:$(PROTOC_VERSION):exe:linux-$(MAVEN_ARCH) && \
	$(MVN) $(MAVEN_DEPENDENCY_PLUGIN):copy -DoutputDirectory="$$tmp" \
		-Dartifact=io.grpc:protoc-gen-grpc-java:$(GRPC_JAVA_PLUGIN_VERSION):exe:linux-$(MAVEN_ARCH) && \
	install -m 755 "$$tmp"/protoc-$(PROTOC_VERSION)-*.exe $(TOOLS_BIN)/protoc && \
	install -m 755 "$$tmp"/protoc-gen-grpc-java-$(GRPC_JAVA_PLUGIN_VERSION)-*.exe $(TOOLS_BIN)/protoc-gen-grpc-java
	$(TOOLS_BIN)/protoc --version
	@rm -f .tools/.codegen-*
	@touch $@

# Built from source (about 2 minutes on two cores); --locked uses the crates' own lock files.
$(CLIENT_RUST_CODEGEN_STAMP):
	@mkdir -p $(TOOLS_BIN)
	$(CARGO) install --quiet --locked --root $(CURDIR)/.tools --version $(PROTOC_GEN_PROST_VERSION) \
		protoc-gen-prost protoc-gen-tonic
	@rm -f .tools/.rust-codegen-*
	@touch $@

clients: setup $(BUF_STAMP) clients-tools
	rm -rf $(CLIENT_GEN_DIRS)
	$(BUF) generate 2> >(grep -v '^Writing mypy to' >&2)

# Regenerate into a scratch directory and compare with the committed copy.
clients-check: setup $(BUF_STAMP) clients-tools
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BUF) generate -o "$$tmp" 2> >(grep -v '^Writing mypy to' >&2) && \
	stale=0 && for dir in $(CLIENT_GEN_DIRS); do \
		diff -r -q -x __pycache__ "$$tmp/$$dir" "$$dir" || stale=1; \
	done && \
	if [ $$stale = 1 ]; then echo "client stubs are stale: run 'make clients' and commit"; exit 1; fi && \
	echo "client stubs are current"

lint-clients: clients-check lint-sdk-mypy lint-rust

# The Rust example: rustfmt and clippy (warnings are errors), offline on the locked crates.
lint-rust: clients-setup
	cd clients/rust && $(CARGO) fmt --check && $(CARGO) clippy --quiet --frozen --all-targets -- -D warnings

# The SDK has its own strict mypy config (clients/python/pyproject.toml).
lint-sdk-mypy: setup
	cd clients/python && $(CURDIR)/$(VENV)/bin/mypy

clients-setup: clients-tools $(CLIENTS_SETUP_STAMP)

$(CLIENTS_SETUP_STAMP):
	cd clients/go && go mod download && go build ./...
	cd clients/java && $(MVN) package dependency:resolve-plugins -DskipTests
	cd clients/rust && $(CARGO) build --quiet --locked --examples
	@rm -f .tools/.clients-setup-*
	@touch $@

# --- Operations (deploy/): Kubernetes manifests checked against the API schemas ---
#
#   make lint-deploy   kubernetes-validate --strict (schemas ship in the PyPI package: no network)
#
# tests/e2e/test_deploy_files.py checks the same files in more depth (flags, drain budget).
.PHONY: lint-deploy
lint: lint-deploy

DEPLOY_MANIFESTS := $(filter-out %/kustomization.yaml,$(wildcard deploy/kubernetes/*.yaml))

lint-deploy: setup
	$(VENV)/bin/kubernetes-validate --strict --quiet $(DEPLOY_MANIFESTS)
