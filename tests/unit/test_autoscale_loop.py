"""The autoscaler loop through fakes of its two clients: fetch, decide, write, per tick."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sloscale.autoscale import loop as loop_module
from sloscale.autoscale.loop import AutoscalerLoop, LoopSettings
from sloscale.autoscale.metrics import Fetched
from sloscale.autoscale.promql import ServiceKey
from sloscale.autoscale.telemetry import AutoscalerMetrics
from sloscale.autoscale.tick import TickOutcome
from tests.unit.capacity_profiles import capacity_profile

NS = "ml"
NOW = 1_000_000.0
PROFILE = capacity_profile(10.0)


def service(name: str, generation: int = 1, **autoscaling: Any) -> dict[str, Any]:
    settings = {"enabled": True, "objective": {"targetMs": 200}, "policy": "keda",
                "interval": "5s", "capacityProfile": {"maxRpsPerReplica": 10}, **autoscaling}
    return {"metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}",
                         "generation": generation, "resourceVersion": "1"},
            "spec": {"autoscaling": settings}}


def ready_pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": f"{name}-pod", "namespace": NS},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True"}]}}


class FakeKube:
    """The loop's Kubernetes client: objects held in memory, every call recorded in order."""

    def __init__(self, *services: dict[str, Any], replicas: int = 1) -> None:
        self.services = list(services)
        self.replicas = replicas
        self.config_maps: dict[tuple[str, str], dict[str, str]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.statuses: dict[str, dict[str, Any]] = {}
        self.written_from: list[Any] = []  # the status of each copy handed to write_status

    def list_inference_services(self) -> list[dict[str, Any]]:
        self.calls.append(("list", None))
        return self.services

    def snapshot_workloads(self, service_label: str) -> dict[str, Any]:
        self.calls.append(("snapshot", None))
        keys = [ServiceKey(NS, s["metadata"]["name"]) for s in self.services]
        return {"pods": {k: [ready_pod(k.name)] * self.replicas for k in keys},
                "deployments": {k: {"spec": {"replicas": self.replicas}} for k in keys},
                "hpas": {}, "scaled_objects": {}}

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        self.calls.append(("config_map", name))
        return self.config_maps.get((namespace, name))

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        self.calls.append(("scale", (name, replicas)))

    def event(self, service: dict[str, Any], reason: str, message: str) -> None:
        self.calls.append(("event", reason))

    def write_status(self, service: dict[str, Any], autoscaling: dict[str, Any],
                     outcome: TickOutcome, now: float) -> None:
        self.calls.append(("status", service["metadata"]["name"]))
        self.written_from.append(service.get("status"))
        self.statuses[service["metadata"]["name"]] = {
            "autoscaling": autoscaling,
            "conditions": [{"type": c.type, "status": "True" if c.status else "False",
                            "reason": c.reason, "message": c.message}
                           for c in outcome.conditions]}

    def newest(self, service: dict[str, Any]) -> dict[str, Any]:
        """As the operator's client: `services` are a watch that never shows our writes; our
        last status write is remembered and merged in."""
        written = self.statuses.get(service["metadata"]["name"])
        if written is None:
            return service
        return {**service, "status": {**(service.get("status") or {}), **written}}

    def named(self, call: str) -> list[Any]:
        return [arg for kind, arg in self.calls if kind == call]


class FakeSource:
    """Prometheus as the loop sees it: one vector per query, the same for every window."""

    def __init__(self, rps: dict[str, float] | None = None, error: str | None = None) -> None:
        self.rps = rps or {}
        self.error = error
        self.windows: list[float | None] = []

    async def fetch_async(self, now: float, window_s: float | None = None) -> Fetched:
        self.windows.append(window_s)
        if self.error is not None:
            return Fetched(now, error=self.error)
        keys = {ServiceKey(NS, name): value for name, value in self.rps.items()}
        return Fetched(now, {"rps": keys, "last_sample": dict.fromkeys(keys, now - 5),
                             "latency_p95_ms": dict.fromkeys(keys, 90.0),
                             "latency_mean_ms": dict.fromkeys(keys, 60.0)})


def new_loop(kube: FakeKube, source: FakeSource, clock: list[float]) -> AutoscalerLoop:
    return AutoscalerLoop(source, kube, AutoscalerMetrics(), LoopSettings(tick_s=5.0),
                          clock=lambda: clock[0])


def tick(loop: AutoscalerLoop, now: float) -> dict[str, TickOutcome]:
    return {key.name: outcome for key, outcome in asyncio.run(loop.tick(now))}


def test_a_busy_service_is_scaled_with_an_event_and_a_status() -> None:
    kube, source = FakeKube(service("a")), FakeSource({"a": 35.0})
    loop = new_loop(kube, source, [0.0])
    outcomes = tick(loop, NOW + 60)
    # KEDA's AverageValue: ceil(35 rps / (0.7 x 10 rps per replica)) = 5 replicas.
    assert outcomes["a"].desired_replicas == 5
    assert kube.named("scale") == [("a", 5)] and kube.named("event") == ["Scaled"]
    assert kube.statuses["a"]["autoscaling"]["desiredReplicas"] == 5
    # The write is counted by what made it news: the replicas the service had no word on.
    writes = loop.metrics.registry.get_sample_value(
        "sloscale_autoscaler_status_writes_total", {"cause": "desiredReplicas"})
    assert writes == 1.0


def test_a_decision_already_written_is_not_written_again_while_the_watch_lags() -> None:
    """The watched copy never shows the loop's own writes (a watch behind in a burst of
    creations): unchanged decisions are judged against what was written, and not rewritten."""
    kube, source = FakeKube(service("a")), FakeSource({"a": 5.0})
    loop = new_loop(kube, source, [0.0])
    for step in range(12):  # a minute: four decisions at a 15 s interval
        tick(loop, NOW + 5 * step)
    decided = sum(sample.value for metric in loop.metrics.registry.collect()
                  if metric.name == "sloscale_autoscaler_decisions" for sample in metric.samples
                  if sample.name.endswith("_total"))
    assert decided >= 4
    assert kube.named("status") == ["a"]
    # A real change is written, from the watched copy (the client merges our last write in
    # itself; a copy already merged would read as a watch that caught up).
    source.rps = {"a": 35.0}
    for step in range(12, 18):
        tick(loop, NOW + 5 * step)
    assert len(kube.named("status")) > 1  # the fake never scales: each decision is news
    assert kube.written_from == [None] * len(kube.named("status"))


def test_missing_metrics_hold_and_say_so() -> None:
    kube, source = FakeKube(service("a"), replicas=3), FakeSource(error="connection refused")
    outcomes = tick(new_loop(kube, source, [0.0]), NOW + 60)
    assert (outcomes["a"].desired_replicas, outcomes["a"].current_replicas) == (3, 3)
    assert kube.named("scale") == []
    conditions = {c["type"]: c for c in kube.statuses["a"]["conditions"]}
    assert conditions["MetricsAvailable"]["reason"] == "PrometheusUnavailable"


def test_invalid_settings_hold_and_name_the_field() -> None:
    kube = FakeKube(service("a", minReplicas=5, maxReplicas=2), replicas=2)
    outcomes = tick(new_loop(kube, FakeSource({"a": 35.0}), [0.0]), NOW + 60)
    assert outcomes["a"].desired_replicas == 2 and kube.named("scale") == []
    condition = kube.statuses["a"]["conditions"][0]
    assert condition["reason"] == "InvalidAutoscalingConfig"
    assert "minReplicas must not exceed maxReplicas" in condition["message"]


def test_each_spec_is_parsed_once_per_change(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real = loop_module.parse_autoscaling

    def counting(raw: Any) -> Any:
        parsed.append(raw["policy"])
        return real(raw)

    monkeypatch.setattr(loop_module, "parse_autoscaling", counting)
    kube, source = FakeKube(service("a"), service("b")), FakeSource({"a": 5.0, "b": 5.0})
    loop = new_loop(kube, source, [0.0])
    for step in range(6):
        tick(loop, NOW + 5 * step)
    assert parsed == ["keda", "keda"]  # one per service, however many ticks
    kube.services[0] = service("a", generation=2, policy="hpa")
    tick(loop, NOW + 30)
    assert parsed == ["keda", "keda", "hpa"]


def test_configmap_profiles_are_read_in_the_fetch_phase_and_cached() -> None:
    """The decisions run on the operator's event loop: no client call may happen in them."""
    ref = {"configMapRef": {"name": "profile", "key": "capacity.json"}}
    kube = FakeKube(service("a", capacityProfile=ref))
    kube.config_maps[(NS, "profile")] = {"capacity.json": json.dumps(PROFILE)}
    clock = [0.0]
    loop = new_loop(kube, FakeSource({"a": 35.0}), clock)
    decided_with_calls: list[int] = []
    decide = loop._decide

    def watched(*args: Any) -> Any:
        before = len(kube.calls)
        result = decide(*args)
        decided_with_calls.append(len(kube.calls) - before)
        return result

    loop._decide = watched  # type: ignore[method-assign]
    assert tick(loop, NOW + 60)["a"].desired_replicas == 5  # capacity 10 from the profile
    assert decided_with_calls == [0]
    assert [kind for kind, _ in kube.calls][:4] == ["list", "snapshot", "config_map", "scale"]
    clock[0] = 30.0
    tick(loop, NOW + 120)
    assert kube.named("config_map") == ["profile"]  # cached for a minute
    clock[0] = 61.0
    tick(loop, NOW + 180)
    assert kube.named("config_map") == ["profile", "profile"]


def test_a_missing_profile_leaves_a_baseline_without_capacity_holding() -> None:
    ref = {"configMapRef": {"name": "gone", "key": "capacity.json"}}
    kube = FakeKube(service("a", capacityProfile=ref), replicas=2)
    outcomes = tick(new_loop(kube, FakeSource({"a": 35.0}), [0.0]), NOW + 60)
    assert outcomes["a"].desired_replicas == 2 and kube.named("scale") == []
    assert "needs spec.capacityRpsPerReplica" in kube.statuses["a"]["conditions"][0]["message"]


def test_services_share_one_query_batch_per_rate_window() -> None:
    kube = FakeKube(service("a"), service("b"), service("c", policy="slo"))
    source = FakeSource({"a": 5.0, "b": 5.0, "c": 5.0})
    tick(new_loop(kube, source, [0.0]), NOW + 60)
    assert sorted(w for w in source.windows if w is not None) == [30.0, 60.0]
