# sloscale: every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON3 ?= python3
VENV := $(shell $(PYTHON3) hack/pyenv.py path)
PY := $(VENV)/bin/python
# The clone's own source comes first, ahead of anything installed in the shared venv.
export PYTHONPATH := $(CURDIR)/operator:$(CURDIR)/runtime:$(CURDIR)
export PATH := $(VENV)/bin:$(PATH)
CLUSTER_DIR ?= $(CURDIR)/.sloscale/cluster
TRACES ?= $(CURDIR)/examples/traces

.PHONY: image image-tools docs tools chart demo fidelity compare bench bench-cluster help install venv binaries test test-unit test-e2e lint cluster-up cluster-down cluster-clean crds golden bench-operator system-deps test-integration bench-runtime

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: venv binaries system-deps tools image-tools ## install everything the project needs (Python deps, cluster binaries, checkov, podman)
	@[ "$$(command -v sloscale)" = "$(CURDIR)/bin/sloscale" ] || \
	  echo "sloscale: bin/sloscale runs this clone; put it on your PATH with: export PATH=\"$(CURDIR)/bin:\$$PATH\""

venv: ## create the cached Python environment with the project's dependencies
	@$(PYTHON3) hack/pyenv.py ensure >/dev/null

binaries: venv ## build (once, cached) etcd, Kubernetes, kwok, helm, kubeconform, KEDA and the kubelet from Go modules
	@$(PY) -m hack.localcluster build --keda --real-node >/dev/null

demo: install ## the main job: sloscale and the real KEDA side by side on a replayed trace, on the local simulated GPU cluster, in real time (about 15 minutes)
	$(PY) -m hack.demo

fidelity: install ## the closed loop and the simulator on the same two trace segments, side by side (about 17 minutes)
	$(PY) -m hack.fidelity

compare: install ## sloscale and the real KEDA on one trace segment, one after another, with the simulator's predictions (about 35 minutes)
	$(PY) -m hack.compare $(if $(SEGMENTS),--segments $(SEGMENTS)) $(if $(SYSTEMS),--systems $(SYSTEMS))

test: install image lint ## lint (ruff, the import-layer contracts), then the whole test suite (unit, integration, e2e)
	$(PY) -m pytest -ra

test-unit: venv ## run only the unit tests
	$(PY) -m pytest -ra tests/unit

test-e2e: install image ## run only the e2e tests on the local control plane
	$(PY) -m pytest -ra tests/e2e

lint: venv ## ruff over the Python code, and the import-layer contracts in pyproject.toml (lint-imports)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

cluster-up: install ## start the local control plane (KEDA=1: with KEDA; REAL_NODE=1: with a real node); prints `export KUBECONFIG=...`
	@$(PY) -m hack.localcluster up --dir $(CLUSTER_DIR) $(if $(KEDA),--keda) $(if $(REAL_NODE),--real-node)

cluster-down: venv ## stop the local control plane started by cluster-up
	@$(PY) -m hack.localcluster down --dir $(CLUSTER_DIR)

cluster-clean: cluster-down ## also delete the cluster's state and the cached binaries
	@rm -rf $(CLUSTER_DIR)
	@$(PY) -m hack.localcluster clean-cache

bench: bench-cluster ## print every benchmark's figures (not tests: nothing is asserted)

bench-cluster: install ## time cluster start-up and a simulated GPU pod's way to Ready
	@$(PY) -m hack.localcluster bench --runs 3 2>/dev/null

crds: venv ## regenerate crds/ from the InferenceService schema (operator/sloscale/api/schema.py)
	$(PY) -m sloscale.api.crd --out crds

docs: venv ## regenerate docs/reference.md (the InferenceService reference) from the schema
	$(PY) -m sloscale.api.reference --out docs/reference.md

tools: venv ## checkov in its own cached venv (it pins its own libraries)
	@$(PYTHON3) hack/pyenv.py tool checkov >/dev/null

golden: venv ## rewrite the rendering golden files (tests/unit/golden/) for review in the diff
	SLOSCALE_UPDATE_GOLDEN=1 $(PY) -m pytest -q tests/unit/test_render_golden.py

bench-operator: install ## time the operator: N InferenceServices to Ready, drift repair latency
	@$(PY) -m tests.e2e.bench_operator 20 5

.PHONY: bench-autoscale bench-scale bench-fidelity
bench: bench-autoscale bench-fidelity bench-operator bench-scale

bench-scale: install ## 1,000 InferenceServices: tick cost, PromQL per tick, operator RSS, time to Ready
	@$(PY) -m hack.bench_scale --services 1000 --rate 20

bench-autoscale: venv ## autoscaling benchmark: shared traces, all policies vs the oracle, the slo ablations, parameter sweep and season, 24 h speed run
	@$(PY) -m sloscale.sim.bench --traces $(TRACES) --out $(CURDIR)/.sloscale/bench --ablations --slo-sweep --season \
		--fidelity $(CURDIR)/.sloscale/bench-fidelity/fidelity.json

bench-fidelity: venv system-deps ## the simulator against a real Triton: p50/p95 at 30/60/85 % load (writes .sloscale/bench-fidelity/)
	@$(PY) -m sloscale.sim.fidelity_bench --out $(CURDIR)/.sloscale/bench-fidelity

system-deps: venv ## install Prometheus, containerd and the CNI plugins (apt) and the pytriton wheel's tritonserver (cached)
	@PYTHON=$(PY) bash hack/install-system-deps.sh

test-integration: venv system-deps ## only the integration tests (real Triton, real Prometheus)
	$(PY) -m pytest -ra -m integration tests/integration

bench-runtime: venv system-deps ## profile the example models with and without dynamic batching (prints figures, writes out/runtime-bench/)
	$(PY) -m sloscale_runtime.bench --out out/runtime-bench --model examples/models/small_cnn.py:make_model --slo-ms 10
	$(PY) -m sloscale_runtime.bench --out out/runtime-bench --model examples/models/wide_mlp.py:make_model --slo-ms 50 --levels 1,4,8,16,24,32,48

image: venv image-tools ## build the operator image (podman; Debian base cached), tag sloscale:<version>, save out/sloscale-<version>.oci.tar
	@$(PY) -m hack.image build >/dev/null

image-tools: venv # podman, runc and mmdebstrap (apt), for `make image`
	@$(PY) -m hack.image tools

chart: binaries ## copy crds/ into the Helm chart and lint it (helm lint --strict); `make image` builds the image it runs
	cp crds/*.yaml charts/sloscale/crds/
	$(shell $(PY) -m hack.localcluster build 2>/dev/null)/helm lint --strict charts/sloscale
