"""Real KEDA on the local control plane, beside sloscale.

User stories: a platform team runs what it runs today, a KEDA ScaledObject with the Prometheus
scaler: the real KEDA operator turns it into an HPA, the real HPA controller reads the metric
through KEDA's external metrics API server (API aggregation), and the Deployment follows the
load up and back down. And an SRE who points both KEDA and sloscale at one Deployment sees
sloscale step aside, say so (AutoscalerConflict) and write nothing. And a team that keeps
KEDA in charge of an InferenceService (autoscaling off) aims it at the InferenceService: KEDA's
HPA scales it through its scale subresource and the operator renders that count.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hack.devtools.prometheus import LocalPrometheus, scrape_config
from hack.emulator.load import poisson_arrivals
from hack.emulator.runner import EmulatorRunner, ReplayTarget, kube_pod_lister
from hack.emulator.server import EmulatorServer, Registry
from hack.emulator.service import EmulatedService
from hack.kedaobjects import deployment, rate_query, scaled_object
from hack.localcluster import keda
from hack.localcluster.cluster import LocalCluster
from sloscale.api import AUTOSCALER_FIELD_MANAGER, GROUP, KIND, VERSION
from tests.e2e.autoscale_stack import CAPACITY_RPS, MODEL, Stack, isvc, running_stack
from tests.e2e.operator_process import get_json, wait_for

pytestmark = pytest.mark.e2e
NS = "e2e-keda"
NS_CONFLICT = "e2e-keda-conflict"
# Where KEDA's documentation leads users: a target of about 70 % of what one replica serves.
THRESHOLD_RPS = round(0.7 * CAPACITY_RPS, 1)


@pytest.fixture(scope="module")
def keda_cluster(cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The session's cluster with KEDA started on it; stopped after, its APIService removed
    first, so that the modules after this one run no KEDA process and keep a working
    discovery (KEDA's CRDs and RBAC stay: inert without the operator)."""
    keda.start(cluster)
    try:
        yield cluster
    finally:
        keda.stop(cluster)


def apply(cluster: LocalCluster, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))


def replicas(cluster: LocalCluster, namespace: str, name: str) -> int:
    dep = get_json(cluster, "-n", namespace, "deployment", name) or {}
    return int(dep.get("spec", {}).get("replicas", 0))


def keda_hpa(cluster: LocalCluster, namespace: str, scaled: str) -> dict[str, Any]:
    """KEDA's HPA for a ScaledObject, once KEDA made it (keda-hpa-NAME, owned by it)."""
    hpa = wait_for(
        lambda: get_json(cluster, "-n", namespace, "hpa", f"keda-hpa-{scaled}"),
        60, f"KEDA's HPA for ScaledObject/{scaled}",
    )  # fmt: skip
    owners = hpa["metadata"].get("ownerReferences", [])
    assert [(o["kind"], o["name"]) for o in owners] == [("ScaledObject", scaled)]
    return dict(hpa)


def external_metric(cluster: LocalCluster, namespace: str, scaled: str) -> float:
    """The metric as the HPA controller reads it: through the aggregated API to KEDA."""
    path = (
        f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/s0-prometheus"
        f"?labelSelector=scaledobject.keda.sh%2Fname%3D{scaled}"
    )
    items = json.loads(cluster.kubectl("get", "--raw", path).stdout)["items"]
    assert len(items) == 1, items
    quantity = items[0]["value"]  # a Kubernetes quantity: "12", "12500m"
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def rescaled_by_hpa(cluster: LocalCluster, namespace: str, hpa: str) -> list[str]:
    """The HPA controller's own record of its scale changes (Events on the HPA)."""
    selector = f"reason=SuccessfulRescale,involvedObject.name={hpa}"
    found = get_json(cluster, "-n", namespace, "events", "--field-selector", selector) or {}
    return [event["message"] for event in found.get("items", [])
            if event.get("source", {}).get("component") == "horizontal-pod-autoscaler"]  # fmt: skip


@pytest.fixture(scope="module")
def emulated(keda_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Registry, LocalPrometheus, Any]]:  # fmt: skip
    """The Triton-metrics emulator and a real Prometheus scraping its pods every second."""
    from kubernetes import config as kube_config

    root = tmp_path_factory.mktemp("keda")
    registry = Registry()
    server = EmulatorServer(registry).start()
    config = scrape_config(1, http_sd_urls=[f"http://{server.address}/targets"])
    prometheus = LocalPrometheus(root / "prometheus", config).start()
    api_client = kube_config.new_client_from_config(str(keda_cluster.kubeconfig))
    keda_cluster.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true",
                         timeout=120)  # fmt: skip
    keda_cluster.kubectl("create", "namespace", NS)
    try:
        yield registry, prometheus, api_client
    finally:
        prometheus.stop()
        server.stop()
        keda_cluster.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true",
                             check=False, timeout=180)  # fmt: skip


def test_keda_scales_a_deployment_up_as_load_rises_and_down_as_it_falls(
    keda_cluster: LocalCluster, emulated: tuple[Registry, LocalPrometheus, Any]
) -> None:
    registry, prometheus, api_client = emulated
    cluster, name, high_rps = keda_cluster, "rate", 60.0
    apply(cluster, deployment(name, NS))
    cluster.kubectl("rollout", "status", "-n", NS, f"deployment/{name}", "--timeout=60s")
    apply(cluster, scaled_object(
        name, NS, name, prometheus.url, min_replicas=1, max_replicas=6,
        query=rate_query(NS, name), threshold=THRESHOLD_RPS,
        # The HPA's default 300 s down-stabilization, shortened so the test is quick.
        behavior={"scaleDown": {"stabilizationWindowSeconds": 15}},
    ))  # fmt: skip
    hpa = keda_hpa(cluster, NS, name)
    assert hpa["spec"]["metrics"][0]["type"] == "External"
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 15

    low_s, high_s = 20.0, 100.0
    runner = EmulatorRunner(
        ReplayTarget(NS, name, "m"),
        EmulatedService(MODEL, seed=3, summary_window_s=10),
        poisson_arrivals([(low_s, 4.0), (high_s, high_rps), (150.0, 4.0)], seed=5),
        registry,
        kube_pod_lister(api_client, NS, name),
    ).start()
    try:
        # Up: ceil(60 / threshold) replicas; one replica serves at most 40 rps, so the metric
        # may first read less and the HPA take two steps. Sync every 15 s, 2 s cold start.
        needed = math.ceil(high_rps / THRESHOLD_RPS)
        wait_for(lambda: replicas(cluster, NS, name) >= needed, 90, f">= {needed} replicas")
        up_at_s = runner.elapsed_s()
        assert low_s < up_at_s < low_s + high_s, f"scaled up at {up_at_s:.0f} s"
        assert external_metric(cluster, NS, name) > THRESHOLD_RPS
        assert rescaled_by_hpa(cluster, NS, f"keda-hpa-{name}")  # the real HPA controller did it
        peak = max(replicas(cluster, NS, name), needed)
        assert peak <= 6

        # Down: after the drop, back to one replica (15 s rate window, 15 s sync and 15 s
        # stabilization), never above the peak on the way.
        wait_for(lambda: runner.elapsed_s() > low_s + high_s, high_s + 30, "the drop")
        series = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not series or series[-1] > 1):
            series.append(replicas(cluster, NS, name))
            time.sleep(1)
        print(f"KEDA: {needed} replicas at {up_at_s:.0f} s; after the drop: {series}")
        assert series[-1] == 1, f"not back to 1 replica after the load fell: {series}"
        assert max(series) <= peak
        assert runner.elapsed_s() < low_s + high_s + 150  # down while the low load still ran
    finally:
        runner.stop()
        cluster.kubectl("delete", "scaledobject", name, "-n", NS, "--wait=true", check=False)


@pytest.fixture(scope="module")
def sloscale_stack(keda_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Stack]:  # fmt: skip
    with running_stack(keda_cluster, tmp_path_factory.mktemp("conflict"), NS_CONFLICT) as stack:
        try:
            yield stack
        finally:
            keda_cluster.kubectl("delete", "namespace", NS_CONFLICT, "--ignore-not-found",
                                 "--wait=true", check=False, timeout=180)  # fmt: skip


def _manager_times(cluster: LocalCluster, namespace: str, name: str, manager: str) -> list[float]:
    dep = get_json(cluster, "-n", namespace, "deployment", name) or {}
    return [
        datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
        for entry in dep.get("metadata", {}).get("managedFields", [])
        if entry.get("manager") == manager and "time" in entry
    ]


def test_sloscale_leaves_a_deployment_that_keda_scales_and_says_so(
    sloscale_stack: Stack,
) -> None:
    stack, name, pinned = sloscale_stack, "contested", 2
    path: Path = stack.root / f"{name}.json"
    path.write_text(json.dumps(isvc(name, NS_CONFLICT)))
    stack.cluster.kubectl("apply", "--server-side", "-f", str(path))
    stack.cluster.kubectl("wait", "-n", NS_CONFLICT, "--for=condition=Ready", "--timeout=120s",
                          f"inferenceservice/{name}", timeout=130)  # fmt: skip
    # KEDA pins the Deployment at 2 (min = max): whatever sloscale would want, KEDA's HPA
    # holds 2, so any write of sloscale's would show as a count other than 2.
    apply(stack.cluster, scaled_object(
        "rival", NS_CONFLICT, name, stack.prometheus.url, min_replicas=pinned,
        max_replicas=pinned, query=rate_query(NS_CONFLICT, name), threshold=THRESHOLD_RPS,
    ))  # fmt: skip
    keda_hpa(stack.cluster, NS_CONFLICT, "rival")
    conflict = wait_for(
        lambda: (c := stack.condition(name, "AutoscalerConflict")).get("status") == "True" and c,
        60, "AutoscalerConflict=True",
    )  # fmt: skip
    seen_at = time.time()
    assert conflict["reason"] == "CompetingAutoscaler"
    assert "ScaledObject/rival" in conflict["message"]
    wait_for(lambda: stack.replicas(name) == pinned, 60, f"KEDA's {pinned} replicas")

    # Load that sloscale alone would meet with about 5 replicas, for 40 s.
    runner = stack.replay_manifest(json.loads(path.read_text()), [(45.0, 120.0)])
    try:
        samples = []
        while runner.elapsed_s() < 40:
            samples.append(stack.replicas(name))
            time.sleep(1)
        assert set(samples) == {pinned}, f"replicas moved under KEDA's pin: {samples}"
        assert stack.condition(name, "AutoscalerConflict").get("status") == "True"
        # And not one write of the autoscaler's field manager since it saw the conflict
        # (managedFields times have whole seconds).
        writes = _manager_times(stack.cluster, NS_CONFLICT, name, AUTOSCALER_FIELD_MANAGER)
        assert all(at <= seen_at + 1 for at in writes), (writes, seen_at)
        stack.operator.assert_alive()
    finally:
        runner.stop()


def ready_without_autoscaling(stack: Stack, name: str) -> None:
    """An InferenceService with autoscaling off (spec.replicas 1), Ready."""
    manifest = isvc(name, NS_CONFLICT)
    manifest["spec"]["autoscaling"]["enabled"] = False
    apply(stack.cluster, manifest)
    stack.cluster.kubectl("wait", "-n", NS_CONFLICT, "--for=condition=Ready", "--timeout=120s",
                          f"inferenceservice/{name}", timeout=130)  # fmt: skip
    assert stack.replicas(name) == 1


def test_keda_scales_an_inference_service_through_its_scale_subresource(
    sloscale_stack: Stack,
) -> None:
    stack, name, pinned = sloscale_stack, "external", 3
    ready_without_autoscaling(stack, name)  # spec.replicas rules: KEDA sets it
    # Pinned (min = max) so that the count KEDA sets is known; it reaches the Deployment only
    # through the InferenceService's spec.replicas and the operator's render.
    apply(stack.cluster, scaled_object(
        "outer", NS_CONFLICT, name, stack.prometheus.url, min_replicas=pinned,
        max_replicas=pinned, query=rate_query(NS_CONFLICT, name), threshold=THRESHOLD_RPS,
        target_api=(f"{GROUP}/{VERSION}", KIND),
    ))  # fmt: skip
    try:
        hpa = keda_hpa(stack.cluster, NS_CONFLICT, "outer")
        assert hpa["spec"]["scaleTargetRef"]["kind"] == KIND
        wait_for(lambda: stack.replicas(name) == pinned, 90, f"KEDA's {pinned} replicas")
        service = get_json(stack.cluster, "-n", NS_CONFLICT, "inferenceservice", name) or {}
        assert service["spec"]["replicas"] == pinned  # set by the HPA, not by hand
        samples = []
        for _ in range(15):  # and it stays: nothing puts the manifest's 1 back
            samples.append(stack.replicas(name))
            time.sleep(1)
        assert set(samples) == {pinned}, f"replicas moved: {samples}"
        stack.operator.assert_alive()
    finally:
        stack.cluster.kubectl("delete", "scaledobject", "outer", "-n", NS_CONFLICT,
                              "--wait=true", check=False)  # fmt: skip


def test_with_autoscaling_off_a_scaled_object_on_the_deployment_keeps_its_replicas(
    sloscale_stack: Stack,
) -> None:
    """Autoscaling off, KEDA aimed at the Deployment itself (what a KEDA user writes): the
    operator leaves the replicas to KEDA's HPA, and puts spec.replicas back once it goes."""
    stack, name, pinned = sloscale_stack, "kedaowned", 3
    ready_without_autoscaling(stack, name)
    apply(stack.cluster, scaled_object(
        "direct", NS_CONFLICT, name, stack.prometheus.url, min_replicas=pinned,
        max_replicas=pinned, query=rate_query(NS_CONFLICT, name), threshold=THRESHOLD_RPS,
    ))  # fmt: skip
    try:
        keda_hpa(stack.cluster, NS_CONFLICT, "direct")
        wait_for(lambda: stack.replicas(name) == pinned, 90, f"KEDA's {pinned} replicas")
        samples = []
        for _ in range(20):  # the operator's drift repair used to put the 1 back each time
            samples.append(stack.replicas(name))
            time.sleep(1)
        assert set(samples) == {pinned}, f"replicas fought over: {samples}"
        service = get_json(stack.cluster, "-n", NS_CONFLICT, "inferenceservice", name) or {}
        assert service["spec"]["replicas"] == 1  # the manifest is left as the user wrote it
    finally:
        stack.cluster.kubectl("delete", "scaledobject", "direct", "-n", NS_CONFLICT,
                              "--wait=true", check=False)  # fmt: skip
    # KEDA deletes its HPA with the ScaledObject: spec.replicas rules again.
    wait_for(lambda: stack.replicas(name) == 1, 60, "spec.replicas (1) back after KEDA left")
    stack.operator.assert_alive()
