# sloscale: every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON3 ?= python3
VENV := $(shell $(PYTHON3) hack/venv.py path)
PY := $(VENV)/bin/python
# The clone's own source comes first, ahead of anything installed in the shared venv.
export PYTHONPATH := $(CURDIR)/operator:$(CURDIR)/runtime:$(CURDIR)
export PATH := $(VENV)/bin:$(PATH)
CLUSTER_DIR ?= $(CURDIR)/.sloscale/cluster

.PHONY: help install venv binaries test test-unit test-e2e lint cluster-up cluster-down cluster-clean
.PHONY: system-deps test-integration bench-runtime

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: venv binaries system-deps ## install everything the project needs (Python deps, cluster binaries)

venv: ## create the cached Python environment with the project's dependencies
	@$(PYTHON3) hack/venv.py ensure >/dev/null

binaries: venv ## build (once, cached) etcd, Kubernetes, kwok, helm and kubeconform from Go modules
	@$(PY) -m hack.localcluster build >/dev/null

test: install ## run the whole test suite (unit, integration, e2e on the local control plane)
	$(PY) -m pytest -ra

test-unit: venv ## run only the unit tests
	$(PY) -m pytest -ra tests/unit

test-e2e: install ## run only the e2e tests on the local control plane
	$(PY) -m pytest -ra tests/e2e

lint: venv ## ruff over the Python code
	$(PY) -m ruff check .

cluster-up: install ## start the local control plane; prints `export KUBECONFIG=...`
	@$(PY) -m hack.localcluster up --dir $(CLUSTER_DIR)

cluster-down: venv ## stop the local control plane started by cluster-up
	@$(PY) -m hack.localcluster down --dir $(CLUSTER_DIR)

cluster-clean: cluster-down ## also delete the cluster's state and the cached binaries
	@rm -rf $(CLUSTER_DIR)
	@$(PY) -m hack.localcluster clean-cache

system-deps: venv ## install Prometheus (apt) and the pytriton wheel's tritonserver (cached)
	@PYTHON=$(PY) bash hack/install-system-deps.sh

test-integration: venv system-deps ## only the integration tests (real Triton, real Prometheus)
	$(PY) -m pytest -ra -m integration tests/integration

bench-runtime: venv system-deps ## profile the example models with and without dynamic batching (prints figures, writes out/runtime-bench/)
	$(PY) -m sloscale_runtime.bench --out out/runtime-bench --model examples/models/small_cnn.py:make_model --slo-ms 10
	$(PY) -m sloscale_runtime.bench --out out/runtime-bench --model examples/models/wide_mlp.py:make_model --slo-ms 50 --levels 1,4,8,16,24,32,48
