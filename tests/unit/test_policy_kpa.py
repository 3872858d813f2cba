"""Knative KPA against cases worked by hand from knative/serving's autoscaler.go, and a steady
state on a constant load in the simulator (the old target limit-cycled)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sloscale.autoscale.policies import (
    AutoscalingSpec,
    Objective,
    ReplicaState,
    Snapshot,
    make_policy,
)
from sloscale.autoscale.policies.kpa import (
    KpaPolicy,
    KpaSettings,
    KpaState,
    estimate,
    in_flight,
    scale,
)
from sloscale.sim.compare import Recorded
from sloscale.sim.engine import SimConfig, simulate
from sloscale.sim.profile import profiled_spec
from sloscale.sim.service import ServiceModel

SETTINGS = KpaSettings(target_concurrency=10.0, target_utilization=1.0)


@pytest.mark.parametrize(
    ("stable", "panic", "ready", "expected", "panicking"),
    [
        (25.0, 25.0, 3, 3, False),  # ceil(25 / 10)
        (25.0, 25.0, 10, 5, False),  # wants 3, max scale-down rate 2 allows 10 / 2 = 5
        (40.0, 10.0, 2, 4, False),  # the stable window drives outside panic
        (10.0, 60.0, 3, 6, True),  # panic window: 6 pods >= 200% of 3 -> panic, take 6
        (10.0, 50.0, 3, 1, False),  # 5 pods = 167% of 3: no panic, stable says 1
        (10.0, 51.0, 3, 6, True),  # ceil(5.1) = 6 pods, 200%: the threshold reads the ceiling
    ],
)
def test_scale(stable: float, panic: float, ready: int, expected: int, panicking: bool) -> None:
    assert scale(KpaState(), SETTINGS, 10.0, stable, panic, ready, now=0.0) == (expected,
                                                                                 panicking)


def test_panic_never_scales_down_until_a_stable_window_passes() -> None:
    state = KpaState()
    assert scale(state, SETTINGS, 10.0, 10.0, 80.0, 2, now=0.0) == (8, True)
    assert scale(state, SETTINGS, 10.0, 10.0, 10.0, 8, now=30.0) == (8, True)  # still panicking
    assert scale(state, SETTINGS, 10.0, 10.0, 10.0, 8, now=61.0) == (4, False)  # halved at most


def test_panic_takes_the_larger_of_stable_and_panic() -> None:
    state = KpaState(panic_time=0.0, max_panic_pods=2)
    assert scale(state, SETTINGS, 10.0, 50.0, 30.0, 10, now=10.0) == (5, True)


def test_scale_down_delay_keeps_the_highest_count_of_the_delay() -> None:
    settings = replace(SETTINGS, scale_down_delay_s=60.0)
    state = KpaState()
    seen = [scale(state, settings, 10.0, stable, stable, 5, now)[0]
            for now, stable in [(0.0, 50.0), (30.0, 10.0), (61.0, 10.0)]]
    # 5, then 2 (10 in flight, halving allowed) delayed to 5 until t=0 leaves the 60 s window.
    assert seen == [5, 5, 2]


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (Snapshot(0.0, rps=50.0, latency_mean_ms=200.0), 10.0),  # Little's law
        (Snapshot(0.0, rps=50.0, pending=3.0), 3.0),  # nothing finished: the backlog
        (Snapshot(0.0, rps=0.0), 0.0),
        (Snapshot(0.0, rps=5.0), None),
        (Snapshot(0.0), None),
    ],
)
def test_in_flight(snapshot: Snapshot, expected: float | None) -> None:
    assert in_flight(snapshot) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("observations", "expected"),
    [
        ([(40.0, 4, 0, 100.0)], 2.0),  # 10 rps per pod <= 20: 20 rps x 100 ms
        ([(40.0, 4, 0, 100.0), (60.0, 4, 0, 150.0)], 3.0),  # a higher load within capacity
        ([(60.0, 4, 0, 150.0), (40.0, 4, 0, 100.0)], 3.0),  # a lower one does not replace it
        ([(40.0, 4, 0, 100.0), (120.0, 4, 0, 180.0)], 2.0),  # above capacity: says nothing
        ([(40.0, 4, 0, 100.0), (80.0, 4, 0, 250.0)], 2.0),  # over the 200 ms target: a backlog
        ([(60.0, 2, 2, 150.0)], None),  # pods starting: the load per pod is not known
    ],
)
def test_estimate_uses_the_highest_load_within_capacity(
        observations: list[tuple[float, int, int, float]], expected: float | None) -> None:
    state, result = KpaState(), None
    for rps, ready, starting, mean_ms in observations:
        snapshot = Snapshot(0.0, rps=rps, latency_mean_ms=mean_ms)
        replicas = ReplicaState(ready + starting, ready, starting)
        result = estimate(state, snapshot, replicas, capacity_rps=20.0, target_ms=200.0)
    assert result == pytest.approx(expected)


def test_policy_averages_samples_over_the_stable_window() -> None:
    policy = KpaPolicy(SETTINGS)
    spec = AutoscalingSpec(maxReplicas=50)
    for t in range(0, 60, 2):
        rps = 100.0 if t < 30 else 300.0  # 10 then 30 in flight at 100 ms
        decision = policy.decide(Snapshot(float(t), rps=rps, latency_mean_ms=100.0),
                                 ReplicaState(3, 3), spec, float(t))
    # stable (10 * 15 + 30 * 15) / 30 = 20 -> 2; panic 30 -> 3 = 100% of 3: no panic. But it
    # started over 3 ready pods, so in panic at 3 (newAutoscaler) for its first 60 s.
    assert decision.details["stable"] == pytest.approx(20.0)
    assert decision.desired_replicas == 3
    later = policy.decide(Snapshot(62.0, rps=300.0, latency_mean_ms=100.0), ReplicaState(3, 3),
                          spec, 62.0)
    assert later.desired_replicas == 3  # the stable window now reads 30 in flight: 3 pods


def test_policy_holds_without_data() -> None:
    decision = KpaPolicy().decide(Snapshot(0.0), ReplicaState(4, 4),
                                  AutoscalingSpec(maxReplicas=100), 0.0)
    assert decision.desired_replicas == 4


def test_without_a_target_it_provisions_the_rate_until_it_has_an_estimate() -> None:
    policy = KpaPolicy(KpaSettings(target_concurrency=None, capacity_rps=10.0))
    overloaded = Snapshot(0.0, rps=100.0, latency_mean_ms=5000.0)  # 100 rps on one pod
    decision = policy.decide(overloaded, ReplicaState(1, 1), AutoscalingSpec(maxReplicas=100), 0.0)
    assert decision.desired_replicas == 10


def test_settings_need_a_target_or_a_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        KpaSettings(target_concurrency=None)


@pytest.mark.parametrize("load_test", [True, False], ids=["load-tested", "estimated"])
@pytest.mark.parametrize("replicas_worth", [4.0, 10.0])
def test_kpa_settles_on_a_constant_load(load_test: bool, replicas_worth: float) -> None:
    service = ServiceModel()
    spec = AutoscalingSpec(minReplicas=1, maxReplicas=60, objective=Objective("p95", 150.0),
                           coldStartSeconds=60.0)
    config = SimConfig(seed=4)
    spec = profiled_spec(service, spec, config)
    if not load_test:
        spec = replace(spec, meanLatencyMsAtCapacity=None)
    capacity = spec.capacityRpsPerReplica or 0.0
    rate, duration_s = replicas_worth * capacity, 2400.0
    rng = np.random.default_rng(11)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, int(rate * duration_s)))
    driver = Recorded(make_policy("kpa", spec))
    simulate(arrivals, driver, spec, service, config)
    last = [decision.desired_replicas for now, decision in driver.decisions
            if duration_s - 600.0 <= now < duration_s]
    # The old target (capacity x the SLO) swung between 1-2 and the maximum; a target a pod
    # can hold settles: in the last 10 minutes at most two neighbouring counts.
    assert len(set(last)) <= 2 and max(last) - min(last) <= 1, sorted(set(last))
    assert min(last) >= replicas_worth  # and enough pods for the load
