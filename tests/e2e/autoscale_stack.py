"""The autoscaling stack for e2e tests: emulated Triton pods, a real Prometheus, the operator.

Shared by the closed-loop tests and the fault tests (a longer Prometheus outage); each
module runs its own stack in its own namespace.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.devtools.prometheus import LocalPrometheus, scrape_config
from hack.emulator.load import poisson_arrivals
from hack.emulator.runner import EmulatorRunner, ReplayTarget, kube_pod_lister
from hack.emulator.server import EmulatorServer, Registry
from hack.emulator.service import EmulatedService
from hack.localcluster.cluster import LocalCluster
from sloscale.autoscale.policies import AutoscalingSpec, Objective
from sloscale.sim.engine import SimConfig
from sloscale.sim.profile import profile_capacity
from sloscale.sim.service import ServiceModel
from tests.e2e.operator_process import ROOT, OperatorProcess, get_json, wait_for

SLO_MS = 250.0
MODEL = ServiceModel()  # 40 ms + 20 ms/item, batches of 8: 40 rps per replica at most
# One emulated pod's rps at the p95 target, profiled as the runtime profiles one Triton.
CAPACITY_RPS = profile_capacity(
    MODEL, AutoscalingSpec(maxReplicas=100, objective=Objective("p95", SLO_MS)), SimConfig())


def isvc(name: str, namespace: str, max_replicas: int = 10, gpus: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "serving.sloscale.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
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
    namespace: str
    registry: Registry
    server: EmulatorServer
    prometheus: LocalPrometheus
    operator: OperatorProcess
    api_client: Any
    root: Path

    def replay(self, name: str, phases: list[tuple[float, float]]) -> EmulatorRunner:
        return self.replay_manifest(isvc(name, self.namespace), phases)

    def replay_manifest(
        self, manifest: dict[str, Any], phases: list[tuple[float, float]]
    ) -> EmulatorRunner:
        name = manifest["metadata"]["name"]
        path = self.root / f"{name}.json"
        path.write_text(json.dumps(manifest))
        self.cluster.kubectl("apply", "--server-side", "-f", str(path))
        self.cluster.kubectl("wait", "-n", self.namespace, "--for=condition=Ready",
                             "--timeout=120s", f"inferenceservice/{name}", timeout=130)
        runner = EmulatorRunner(
            ReplayTarget(self.namespace, name, "m"),
            EmulatedService(MODEL, seed=7, summary_window_s=10),
            poisson_arrivals(phases, seed=11),
            self.registry,
            kube_pod_lister(self.api_client, self.namespace, name),
        )
        return runner.start()

    def replicas(self, name: str) -> int:
        dep = get_json(self.cluster, "-n", self.namespace, "deployment", name) or {}
        return int(dep.get("spec", {}).get("replicas", 0))

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        obj = get_json(self.cluster, "-n", self.namespace, "inferenceservice", name) or {}
        for found in (obj.get("status") or {}).get("conditions", []):
            if found["type"] == kind:
                return dict(found)
        return {}


@contextlib.contextmanager
def running_stack(cluster: LocalCluster, root: Path, namespace: str) -> Iterator[Stack]:
    """Emulator, Prometheus scraping it every second, and the operator watching `namespace`."""
    from kubernetes import config as kube_config

    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/inferenceservices.serving.sloscale.io")
    cluster.kubectl("create", "namespace", namespace, check=False)
    registry = Registry()
    server = EmulatorServer(registry).start()
    config = scrape_config(1, http_sd_urls=[f"http://{server.address}/targets"])
    prometheus = LocalPrometheus(root / "prometheus", config).start()
    operator = OperatorProcess(
        cluster, root / "operator.log", "--namespace", namespace, "--prometheus-url",
        prometheus.url, "--metrics-address", "127.0.0.1:0", "--autoscaler-tick-s", "1",
    ).start()
    api_client = kube_config.new_client_from_config(str(cluster.kubeconfig))
    try:
        yield Stack(cluster, namespace, registry, server, prometheus, operator, api_client, root)
    finally:
        operator.stop()
        prometheus.stop()
        server.stop()
        print((root / "operator.log").read_text()[-6000:])


def outage_holds_replicas_and_recovers(stack: Stack, name: str, outage_s: float) -> None:
    """Story: Prometheus goes away for `outage_s` under load; replicas are held, never
    dropped (sampled every second), MetricsAvailable=False says why, and it recovers."""
    runner = stack.replay(name, [(outage_s + 300, 60.0)])
    try:
        wait_for(lambda: stack.condition(name, "MetricsAvailable").get("status") == "True",
                 60, "fresh metrics")
        wait_for(lambda: stack.replicas(name) >= 2, 60, "a scale-up")
        before = stack.replicas(name)
        stack.prometheus.stop()
        # (While Prometheus shuts down it may still answer, empty: NoSamples comes first.)
        gone = wait_for(
            lambda: (c := stack.condition(name, "MetricsAvailable")).get("reason")
            == "PrometheusUnavailable" and c,
            40, "MetricsAvailable=False, PrometheusUnavailable",
        )
        assert gone["status"] == "False" and "refused" in gone["message"].lower()
        held = stack.replicas(name)
        assert held >= before
        samples, blind = [], []
        deadline = time.monotonic() + outage_s
        while time.monotonic() < deadline:  # held while blind, as the load keeps arriving
            samples.append(stack.replicas(name))
            blind.append(stack.condition(name, "MetricsAvailable").get("status"))
            time.sleep(1)
        assert samples and set(samples) == {held}, f"replicas moved while blind: {samples}"
        assert set(blind) == {"False"}, f"MetricsAvailable while Prometheus is down: {blind}"
        stack.operator.assert_alive()
        stack.prometheus.start()
        wait_for(lambda: stack.condition(name, "MetricsAvailable").get("status") == "True",
                 60, "recovery")
    finally:
        runner.stop()
        if not stack.prometheus.running:  # the next tests need it
            stack.prometheus.start()
        stack.cluster.kubectl("delete", "inferenceservice", name, "-n", stack.namespace,
                              "--wait=false")
