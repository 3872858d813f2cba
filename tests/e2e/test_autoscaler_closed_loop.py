"""The autoscaler in the running operator, closed loop on the local control plane.

User story: an SRE applies an InferenceService with a p95 objective; sloscale reads the
Triton metrics of its Ready pods from a real Prometheus, scales up when load steps up, holds
the objective once new pods are Ready, scales down stepwise when load drops, holds when
Prometheus is gone, stops at what the GPUs allow, and never fights the user's manifest.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hack.localcluster.cluster import LocalCluster
from sloscale.devtools.prometheus import LocalPrometheus, scrape_config
from sloscale.emulator.load import poisson_arrivals
from sloscale.emulator.runner import EmulatorRunner, ReplayTarget, kube_pod_lister
from sloscale.emulator.server import EmulatorServer, Registry
from sloscale.emulator.service import EmulatedService
from sloscale.sim.service import ServiceModel
from tests.e2e.operator_process import ROOT, OperatorProcess, get_json, wait_for

pytestmark = pytest.mark.e2e
NS = "e2e-autoscale"
SLO_MS = 250.0
MODEL = ServiceModel()  # 40 ms + 20 ms/item, batches of 8: 40 rps per replica at most
CAPACITY_RPS = MODEL.capacity_at(SLO_MS)


def isvc(name: str, max_replicas: int = 10, gpus: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "serving.sloscale.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "model": {"name": "m", "format": "pytorch", "storageUri": "s3://models/m"},
            "runtime": {"resources": {"limits": {"nvidia.com/gpu": gpus}}},
            "autoscaling": {
                "enabled": True,
                "minReplicas": 1,
                "maxReplicas": max_replicas,
                "objective": {"latency": "p95", "targetMs": SLO_MS, "window": "10s"},
                "interval": "2s",
                "coldStartSeconds": 3,
                "scaleDown": {"stabilizationSeconds": 10, "maxStep": 1},
                "capacityProfile": {"maxRpsPerReplica": round(CAPACITY_RPS, 2)},
            },
        },
    }


@dataclass
class Stack:
    cluster: LocalCluster
    registry: Registry
    server: EmulatorServer
    prometheus: LocalPrometheus
    operator: OperatorProcess
    api_client: Any
    root: Path

    def replay(self, name: str, phases: list[tuple[float, float]]) -> EmulatorRunner:
        manifest = isvc(name)
        return self.replay_manifest(manifest, phases)

    def replay_manifest(
        self, manifest: dict[str, Any], phases: list[tuple[float, float]]
    ) -> EmulatorRunner:
        name = manifest["metadata"]["name"]
        path = self.root / f"{name}.json"
        path.write_text(json.dumps(manifest))
        self.cluster.kubectl("apply", "--server-side", "-f", str(path))
        self.cluster.kubectl("wait", "-n", NS, "--for=condition=Ready", "--timeout=120s",
                             f"inferenceservice/{name}", timeout=130)  # fmt: skip
        runner = EmulatorRunner(
            ReplayTarget(NS, name, "m"),
            EmulatedService(MODEL, seed=7, summary_window_s=10),
            poisson_arrivals(phases, seed=11),
            self.registry,
            kube_pod_lister(self.api_client, NS, name),
        )
        return runner.start()


@pytest.fixture(scope="module")
def stack(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from kubernetes import config as kube_config

    root = tmp_path_factory.mktemp("autoscale")
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/inferenceservices.serving.sloscale.io")  # fmt: skip
    cluster.kubectl("create", "namespace", NS, check=False)
    registry = Registry()
    server = EmulatorServer(registry).start()
    config = scrape_config(1, http_sd_urls=[f"http://{server.address}/targets"])
    prometheus = LocalPrometheus(root / "prometheus", config).start()
    operator = OperatorProcess(
        cluster, root / "operator.log", "--namespace", NS, "--prometheus-url", prometheus.url,
        "--metrics-address", "127.0.0.1:0", "--autoscaler-tick-s", "1",
    ).start()  # fmt: skip
    api_client = kube_config.new_client_from_config(str(cluster.kubeconfig))
    try:
        yield Stack(cluster, registry, server, prometheus, operator, api_client, root)
    finally:
        operator.stop()
        prometheus.stop()
        server.stop()
        print((root / "operator.log").read_text()[-6000:])


def replicas(stack: Stack, name: str) -> int:
    dep = get_json(stack.cluster, "-n", NS, "deployment", name) or {}
    return int(dep.get("spec", {}).get("replicas", 0))


def condition(stack: Stack, name: str, kind: str) -> dict[str, Any]:
    obj = get_json(stack.cluster, "-n", NS, "inferenceservice", name) or {}
    for found in (obj.get("status") or {}).get("conditions", []):
        if found["type"] == kind:
            return dict(found)
    return {}


def p95_between(runner: EmulatorRunner, start_s: float, end_s: float) -> float:
    with runner.lock:
        done = np.asarray(runner.service.ledger.finished_at_s)
        latency = np.asarray(runner.service.ledger.latency_ms)
    inside = latency[(done >= start_s) & (done < end_s)]
    assert len(inside) > 50, f"too few requests finished in [{start_s}, {end_s})"
    return float(np.percentile(inside, 95))


def test_load_step_scales_up_holds_the_objective_then_scales_down_stepwise(
    stack: Stack,
) -> None:
    runner = stack.replay("step", [(20, 10.0), (90, 120.0), (100, 5.0)])
    try:
        needed = math.ceil(120.0 / CAPACITY_RPS)
        wait_for(lambda: replicas(stack, "step") >= needed, 60, f">= {needed} replicas")
        wait_for(lambda: runner.elapsed_s() > 100, 120, "the end of the high phase")
        # After the cold start the objective holds again (ground truth from the emulator).
        assert p95_between(runner, 80, 110) <= SLO_MS

        # GitOps: the autoscaler's replicas are not in the user's manifest's fields.
        path = str(stack.root / "step.json")
        diff = stack.cluster.kubectl("diff", "--server-side", "-f", path, check=False)
        assert diff.returncode == 0, diff.stdout + diff.stderr
        before = replicas(stack, "step")
        stack.cluster.kubectl("apply", "--server-side", "-f", path)
        assert replicas(stack, "step") == before

        # The load drops at 110 s; the 10 s rate window and the pods' summaries see only the
        # low load from about 125 s on. From then on: no step up, only steps down.
        wait_for(lambda: runner.elapsed_s() > 126, 45, "the metrics to see the drop")
        peak, series = replicas(stack, "step"), []
        deadline = time.monotonic() + 100
        while time.monotonic() < deadline and (not series or series[-1] > 1):
            series.append(replicas(stack, "step"))
            time.sleep(1)
        assert series[-1] < peak, f"never scaled down from {peak}: {series}"
        # Stepwise (scaleDown.maxStep = 1) and no flapping: once load is low, never up again.
        steps = [b - a for a, b in zip(series, series[1:], strict=False) if b != a]
        assert all(step == -1 for step in steps), f"not stepwise down by 1: {series}"
        obj = get_json(stack.cluster, "-n", NS, "inferenceservice", "step") or {}
        decisions = obj["status"]["autoscaling"]["decisions"]
        assert decisions and all("reason" in d and "from" in d for d in decisions)
        events = stack.cluster.kubectl(
            "get", "events", "-n", NS, "--field-selector", "reason=Scaled", "-o", "json"
        )
        assert json.loads(events.stdout)["items"], "no Scaled events"
    finally:
        runner.stop()


def test_prometheus_outage_holds_replicas_and_recovers(stack: Stack) -> None:
    runner = stack.replay("outage", [(400, 60.0)])
    try:
        wait_for(lambda: condition(stack, "outage", "MetricsAvailable").get("status") == "True",
                 60, "fresh metrics")  # fmt: skip
        wait_for(lambda: replicas(stack, "outage") >= 2, 60, "a scale-up")
        held = replicas(stack, "outage")
        stack.prometheus.stop()
        # (While Prometheus shuts down it may still answer, empty: NoSamples comes first.)
        gone = wait_for(
            lambda: (
                (c := condition(stack, "outage", "MetricsAvailable")).get("reason")
                == "PrometheusUnavailable"
                and c
            ),
            40,
            "MetricsAvailable=False, PrometheusUnavailable",
        )
        assert gone["status"] == "False" and "refused" in gone["message"].lower()
        for _ in range(10):  # held, while blind, even as the load keeps arriving
            assert replicas(stack, "outage") >= held
            time.sleep(1)
        stack.prometheus.start()
        wait_for(lambda: condition(stack, "outage", "MetricsAvailable").get("status") == "True",
                 60, "recovery")  # fmt: skip
    finally:
        runner.stop()
        if not stack.prometheus.running:  # the next tests need it
            stack.prometheus.start()
        stack.cluster.kubectl("delete", "inferenceservice", "outage", "-n", NS, "--wait=false")


def test_more_demand_than_gpus_stops_at_what_fits_and_says_so(stack: Stack) -> None:
    # 8 GPUs a replica: at most one replica per free node, far below what this load needs.
    manifest = isvc("gpu-bound", max_replicas=12, gpus=8)
    runner = stack.replay_manifest(manifest, [(300, 400.0)])
    try:
        limited = wait_for(
            lambda: (
                (c := condition(stack, "gpu-bound", "ScalingLimited")).get("reason")
                == "Unschedulable"
                and c
            ),
            120,
            "ScalingLimited=Unschedulable",
        )
        assert "nvidia.com/gpu" in limited["message"]
        capped = replicas(stack, "gpu-bound")
        time.sleep(8)
        assert replicas(stack, "gpu-bound") <= capped + 1  # no further asks beyond what fits
    finally:
        runner.stop()
        stack.cluster.kubectl("delete", "inferenceservice", "gpu-bound", "-n", NS, "--wait=false")
