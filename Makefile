# The one task runner: the same verbs locally and in CI (.ci/run).
#
#   make setup   .venv with the package and its dev tools (quick when done)
#   make serve   run the gateway; pass flags with ARGS="--listen 127.0.0.1:50051"
#   make test    everything the tests need, then pytest (PYTEST_ARGS="-k e2e")
#   make lint    ruff, ruff format --check, mypy, buf lint + breaking, generated-code check, promtool
#   make proto   regenerate the Python code (gateway/_proto, the SDK's copy) from protos/
#   make bench   run the benchmarks; write docs/benchmarks.md (ARGS="--quick")
#   make tools   pinned buf (npm), grpcurl and promtool (Go) into tools/ and .tools/
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
SETUP_STAMP := $(VENV)/.setup-$(shell cat pyproject.toml venue/pyproject.toml $(CONSTRAINTS) | sha256sum | cut -c1-16)

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

$(SETUP_STAMP): pyproject.toml venue/pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,otel]' -e ./venue $(if $(CONSTRAINTS),--constraint $(CONSTRAINTS))
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
test: setup tools test-system-packages
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# nginx: the L7 proxy tests/e2e/test_nginx_proxy.py starts in front of the gateway.
# A Debian package, so installed with apt-get when missing and root (as in CI);
# anywhere else `make test` stops and says what to install, rather than letting
# pytest skip those tests.
.PHONY: test-system-packages
test-system-packages:
	@if ! command -v nginx >/dev/null && ! test -x /usr/sbin/nginx; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			tools/apt-install.sh nginx; \
		else \
			echo "make test needs nginx for tests/e2e/test_nginx_proxy.py;" \
				"install it (Debian/Ubuntu: sudo apt-get install nginx) and run make test again" >&2; \
			exit 1; \
		fi; \
	fi
	@# PostgreSQL: tests/pg_server.py starts its own server for the journal tests.
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			tools/apt-install.sh postgresql; \
		else \
			echo "make test needs PostgreSQL for the journal tests;" \
				"install it (Debian/Ubuntu: sudo apt-get install postgresql) and run make test again" >&2; \
			exit 1; \
		fi; \
	fi

# Every check runs as its own target, so `make -k lint` reports them all.
lint: lint-ruff lint-format lint-mypy lint-buf lint-proto

lint-ruff: setup
	$(VENV)/bin/ruff check .

lint-format: setup
	$(VENV)/bin/ruff format --check .

lint-mypy: setup
	$(VENV)/bin/mypy

# The API only grows: buf breaking compares protos/ with the previous commit
# (BREAKING_AGAINST overrides, e.g. a branch name). A clone without that history
# (shallow) is told so rather than passing silently.
BREAKING_AGAINST ?= HEAD~1
lint-buf: $(BUF_STAMP)
	$(BUF) lint
	@git rev-parse --verify --quiet '$(BREAKING_AGAINST)^{commit}' >/dev/null || \
		{ echo "buf breaking: no commit $(BREAKING_AGAINST) to compare with (shallow clone?)"; exit 1; }
	$(BUF) breaking protos --against '.git#ref=$(BREAKING_AGAINST),subdir=protos'

# Both committed Python copies (gateway/_proto, the SDK's); generate.py itself is
# outside mypy's packages, so it is checked here.
lint-proto: setup
	$(PY) protos/generate.py --check
	$(VENV)/bin/mypy protos/generate.py

proto: setup
	$(PY) protos/generate.py

# --- Benchmarks (bench/): make bench writes docs/benchmarks.{md,json} and docs/bench-*.png ---
#
# Load comes from Go programs in their own processes: ghz (pinned, from the Go
# proxy) for unary calls and bench/streamclient for streams. About half an hour
# on 2 cores, most of it writing the retention scenario's 10M-event journal;
# bounded at 60 min. ARGS="--quick" for a smoke run (a few minutes),
# ARGS="--only fanout" for one scenario.
GHZ_VERSION := v0.120.0
GHZ := $(TOOLS_BIN)/ghz
GHZ_STAMP := .tools/.ghz-$(GHZ_VERSION)
STREAMCLIENT := $(TOOLS_BIN)/bench-streamclient
BENCH_STAMP := $(VENV)/.bench-$(shell cat pyproject.toml $(CONSTRAINTS) | sha256sum | cut -c1-16)

.PHONY: bench-tools

bench: bench-tools
	timeout --kill-after=30s 60m $(PY) -m bench --ghz $(GHZ) --stream-client $(STREAMCLIENT) $(ARGS)

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
#   make clients         regenerate the committed stubs: Go (buf.gen.yaml) and Python (make proto)
#   make clients-check   fail if a committed stub is stale (part of `make lint`)
#   make clients-tools   the pinned Go generators; the TypeScript client's npm packages (part of `make tools`)
#   make clients-setup   fetch every example's dependencies and build it once (part of `make test`)
#
# Generated code is committed only where the ecosystem expects it (Go, Python).
# Java (protobuf-maven-plugin in pom.xml), TypeScript (`npm run build`) and Rust
# (build.rs, with protox: no protoc) generate theirs when they build, with
# generators pinned in their own build files; nothing to install here for them.
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
MVN := mvn -B -q --no-transfer-progress
CARGO := cargo
CLIENTS_TS_STAMP := clients/typescript/node_modules/.installed
CLIENT_CODEGEN_STAMP := .tools/.codegen-go-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GO_GRPC_VERSION)
# The committed Go stubs, relative to the repo root: `make clients` empties it first.
CLIENT_GO_GEN := clients/go/gen
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

clients-tools: $(CLIENTS_TS_STAMP) $(CLIENT_CODEGEN_STAMP)

# ts-proto and buf (to parse the protos) are the TypeScript client's own dev dependencies.
$(CLIENTS_TS_STAMP): clients/typescript/package.json clients/typescript/package-lock.json
	npm ci --prefix clients/typescript --no-audit --no-fund --loglevel=error
	@touch $@

$(CLIENT_CODEGEN_STAMP):
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) go install -trimpath google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS_BIN) go install -trimpath google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@rm -f .tools/.codegen-*
	@touch $@

clients: proto $(BUF_STAMP) clients-tools
	rm -rf $(CLIENT_GO_GEN)
	$(BUF) generate

# Regenerate Go into a scratch directory and compare; lint-proto checks both Python copies.
clients-check: lint-proto $(BUF_STAMP) $(CLIENT_CODEGEN_STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BUF) generate -o "$$tmp" && \
	if ! diff -r -q "$$tmp/$(CLIENT_GO_GEN)" $(CLIENT_GO_GEN); then \
		echo "client stubs are stale: run 'make clients' and commit"; exit 1; \
	fi && \
	echo "client stubs are current"

lint-clients: clients-check lint-sdk-mypy lint-rust

# The Rust example: rustfmt and clippy (warnings are errors), offline on the locked crates.
lint-rust: clients-setup
	cd clients/rust && $(CARGO) fmt --check && $(CARGO) clippy --quiet --frozen --all-targets -- -D warnings

# The SDK has its own strict mypy config (clients/python/pyproject.toml).
lint-sdk-mypy: setup
	cd clients/python && $(CURDIR)/$(VENV)/bin/mypy

clients-setup: clients-tools $(CLIENTS_SETUP_STAMP)

# Each build generates its stubs, so this also proves that the generators resolve.
# Maven's run fetches what the tests' offline (-o) runs need, protoc included.
$(CLIENTS_SETUP_STAMP):
	cd clients/go && go mod download && go build ./...
	cd clients/typescript && npm run --silent build
	cd clients/java && $(MVN) package dependency:resolve-plugins -DskipTests
	cd clients/rust && $(CARGO) build --quiet --locked --examples
	@rm -f .tools/.clients-setup-*
	@touch $@

# --- Operations (deploy/): manifests, alert rules and the dashboard, checked ---
#
#   make lint-deploy   kubernetes-validate --strict (schemas ship in the PyPI package: no network)
#   make lint-alerts   promtool check rules, and the rules' unit tests (deploy/prometheus)
#
# tests/e2e/test_deploy_files.py checks the manifests in more depth (flags, drain
# budget); tests/e2e/test_observability_files.py checks that the dashboard and the
# alerts name only metrics a live gateway exports, and the dashboard's PromQL.
.PHONY: lint-deploy lint-alerts
lint: lint-deploy lint-alerts

DEPLOY_MANIFESTS := $(filter-out %/kustomization.yaml,$(wildcard deploy/kubernetes/*.yaml))
# The HA variant on PostgreSQL (two replicas per shard): checked the same way.
DEPLOY_MANIFESTS += $(filter-out %/kustomization.yaml,$(wildcard deploy/kubernetes-ha/*.yaml))

lint-deploy: setup
	$(VENV)/bin/kubernetes-validate --strict --quiet $(DEPLOY_MANIFESTS)

# promtool, built from the Go module proxy like grpcurl. Prometheus numbers its Go
# module v0.3XX.Y for release 3.XX.Y: module v0.316.0 is Prometheus 3.16.0.
# remove_all_sd (Prometheus's own build tag) leaves out the cloud service
# discoveries (AWS, Azure, GCE, ...), which promtool needs only to check scrape
# configs: a smaller, quicker build with the same rule checks.
PROMTOOL_VERSION := 3.16.0
PROMTOOL_MODULE_VERSION := v0.316.0
PROMTOOL := $(TOOLS_BIN)/promtool
PROMTOOL_STAMP := .tools/.promtool-$(PROMTOOL_VERSION)
tools: $(PROMTOOL_STAMP)
test: export GATEWAY_PROMTOOL := $(PROMTOOL)

$(PROMTOOL_STAMP):
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) go install -trimpath -tags remove_all_sd \
		-ldflags "-s -w -X github.com/prometheus/common/version.Version=$(PROMTOOL_VERSION)" \
		github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_MODULE_VERSION)
	$(PROMTOOL) --version | head -n1
	@rm -f .tools/.promtool-*
	@touch $@

lint-alerts: $(PROMTOOL_STAMP)
	$(PROMTOOL) check rules deploy/prometheus/alerts.yaml
	cd deploy/prometheus && $(PROMTOOL) test rules alerts.test.yaml

# Scaling with shards (bench/shards.py): CPU per order of each shard process,
# one gateway vs two under the same total load; prints JSON. docs/operations.md
# has the figures and the projection.
.PHONY: bench-shards
bench-shards: bench-tools
	timeout --kill-after=30s 10m $(PY) -m bench.shards --ghz $(GHZ) $(ARGS)

# --- FIX (tests/fix): QuickFIX's example acceptors, the FIX tests' counterparties ---
#
# executor and ordermatch are built from Debian's libquickfix-doc sources against
# libquickfix-dev (about a minute; cached under .tools/quickfix-<hash>). Installed
# with apt-get when missing and root, as nginx is; elsewhere `make test` says what
# to install rather than letting the FIX tests skip.
.PHONY: test-fix-packages fix-acceptors
test-system-packages: test-fix-packages
test: fix-acceptors

test-fix-packages:
	@if [ ! -f /usr/include/quickfix/Session.h ] || \
		[ ! -d /usr/share/doc/libquickfix-doc/examples ] || ! command -v g++ >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			tools/apt-install.sh libquickfix-dev libquickfix-doc g++; \
		else \
			echo "make test needs QuickFIX for tests/fix: install it (Debian/Ubuntu:" \
				"sudo apt-get install libquickfix-dev libquickfix-doc g++) and run make test again" >&2; \
			exit 1; \
		fi; \
	fi

fix-acceptors: test-fix-packages
	bash tests/fix/build_acceptors.sh
