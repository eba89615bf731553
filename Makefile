# The one task runner: the same verbs locally and in CI (.ci/run).
#
#   make setup   .venv with the package and its dev tools (quick when done)
#   make serve   run the gateway; pass flags with ARGS="--listen 127.0.0.1:50051"
#   make test    everything the tests need, then pytest (PYTEST_ARGS="-k e2e")
#   make lint    ruff, ruff format --check, mypy, buf lint, generated-code check
#   make proto   regenerate gateway/_proto from protos/
#   make bench   run the benchmarks, once bench/ exists
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
	$(PY) -m pip install --quiet -e '.[dev]' $(if $(CONSTRAINTS),--constraint $(CONSTRAINTS))
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

bench: setup
	@if [ -d bench ]; then \
		$(PY) -m bench $(ARGS); \
	else \
		echo "bench: no benchmarks yet (there is no bench/ package); nothing was measured"; \
	fi

clean:
	find . -path ./$(VENV) -prune -o -path ./tools/node_modules -prune \
		-o -type d -name __pycache__ -prune -exec rm -rf {} +
	rm -rf .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info

distclean: clean
	rm -rf $(VENV) .tools tools/node_modules
