"""Knative KPA against cases worked by hand from knative/serving's autoscaler documentation."""

from __future__ import annotations

import pytest

from sloscale.autoscale.policies import AutoscalingSpec, ReplicaState, Snapshot
from sloscale.autoscale.policies.kpa import KpaPolicy, KpaSettings, KpaState, concurrency, scale

SETTINGS = KpaSettings(target_concurrency=10.0, target_utilization=1.0)


@pytest.mark.parametrize(
    ("stable", "panic", "ready", "expected", "panicking"),
    [
        (25.0, 25.0, 3, 3, False),  # ceil(25 / 10)
        (25.0, 25.0, 10, 5, False),  # wants 3, max scale-down rate 2 allows 10 / 2 = 5
        (10.0, 60.0, 3, 6, True),  # panic window: 6 pods >= 200% of 3 -> panic, take 6
        (10.0, 50.0, 3, 1, False),  # 5 pods = 167% of 3: no panic, stable says 1
    ],
)
def test_scale(stable: float, panic: float, ready: int, expected: int, panicking: bool) -> None:
    desired, is_panic = scale(KpaState(), SETTINGS, stable, panic, ready, now=0.0)
    assert (desired, is_panic) == (expected, panicking)


def test_panic_never_scales_down_until_a_stable_window_passes() -> None:
    state = KpaState()
    assert scale(state, SETTINGS, 10.0, 80.0, 2, now=0.0) == (8, True)
    assert scale(state, SETTINGS, 10.0, 10.0, 8, now=30.0) == (8, True)  # still panicking
    assert scale(state, SETTINGS, 10.0, 10.0, 8, now=61.0) == (4, False)  # out, halved at most


def test_concurrency_is_littles_law() -> None:
    assert concurrency(Snapshot(0.0, rps=50.0, latency_mean_ms=200.0)) == pytest.approx(10.0)
    assert concurrency(Snapshot(0.0, rps=50.0)) is None
    assert concurrency(Snapshot(0.0, rps=0.0)) == 0.0


def test_policy_averages_samples_over_the_stable_window() -> None:
    policy = KpaPolicy(SETTINGS)
    spec = AutoscalingSpec(maxReplicas=50)
    for t in range(0, 60, 2):
        rps = 100.0 if t < 30 else 300.0  # concurrency 10 then 30 at 100 ms
        decision = policy.decide(Snapshot(float(t), rps=rps, latency_mean_ms=100.0),
                                 ReplicaState(2, 2), spec, float(t))
    # stable average (10 * 15 + 30 * 15) / 30 = 20 -> 2; panic window sees 30 -> 3 (150%).
    assert decision.details["stable"] == pytest.approx(20.0)
    assert decision.desired_replicas == 2


def test_policy_holds_without_data() -> None:
    decision = KpaPolicy().decide(Snapshot(0.0), ReplicaState(4, 4), AutoscalingSpec(), 0.0)
    assert decision.desired_replicas == 4
