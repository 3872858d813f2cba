"""HPA and KEDA against cases worked by hand from the Kubernetes and KEDA documentation."""

from __future__ import annotations

import pytest

from sloscale.autoscale.policies import AutoscalingSpec, Objective, ReplicaState, Snapshot
from sloscale.autoscale.policies.hpa import (
    HpaBehavior,
    HpaPolicy,
    HpaState,
    average_value_replicas,
    scale_down_limit,
    scale_up_limit,
    usage_ratio_replicas,
)
from sloscale.autoscale.policies.keda import KedaPolicy

SPEC = AutoscalingSpec(minReplicas=1, maxReplicas=100, objective=Objective("p95", 200.0))


@pytest.mark.parametrize(
    ("current", "ready", "ratio", "expected"),
    [
        (4, 4, 1.5, 6),  # ceil(4 * 1.5)
        (4, 4, 1.05, 4),  # within the 10% tolerance
        (4, 4, 0.91, 4),  # within the tolerance downwards
        (4, 4, 0.5, 2),
        (5, 3, 2.0, 6),  # uses ready pods, not the current count
        (10, 10, 1.11, 12),  # ceil(11.1)
    ],
)
def test_usage_ratio_replicas(current: int, ready: int, ratio: float, expected: int) -> None:
    assert usage_ratio_replicas(current, ready, ratio) == expected


@pytest.mark.parametrize(
    ("current", "usage", "target", "expected"),
    [
        (2, 100.0, 10.0, 10),  # ceil(100 / 10)
        (10, 105.0, 10.0, 10),  # ratio 1.05: tolerance keeps 10
        (10, 120.0, 10.0, 12),
        (4, 10.0, 10.0, 1),
    ],
)
def test_average_value_replicas(current: int, usage: float, target: float, expected: int) -> None:
    assert average_value_replicas(current, usage, target) == expected


@pytest.mark.parametrize(
    ("current", "events_up", "expected"),
    [
        (2, [], 6),  # max(2 + 4 pods, 2 * 200%) = max(6, 4)
        (10, [], 20),  # max(10 + 4, 10 * 200%) = 20
        (8, [(95.0, 4)], 8),  # 4 added in the last 15 s: period start 4 -> max(8, 8)
    ],
)
def test_scale_up_limit(current: int, events_up: list[tuple[float, int]], expected: int) -> None:
    state = HpaState(scale_up_events=events_up)
    limit = scale_up_limit(current, HpaBehavior().scale_up, state, now=100.0)
    assert limit == expected


def test_scale_down_limit_percent_100_allows_min() -> None:
    assert scale_down_limit(10, HpaBehavior().scale_down, HpaState(), now=0.0) == 0


def _run(policy: HpaPolicy | KedaPolicy, steps: list[tuple[float, Snapshot, int]]) -> list[int]:
    current, out = steps[0][2], []
    for now, snapshot, _ in steps:
        decision = policy.decide(snapshot, ReplicaState(current, current), SPEC, now)
        current = decision.desired_replicas
        out.append(current)
    return out


def test_hpa_scale_up_is_rate_limited_then_scale_down_waits_300s() -> None:
    high = Snapshot(0.0, rps=10.0, latency_ms=2000.0, latency_mean_ms=1000.0)
    low = Snapshot(0.0, rps=10.0, latency_ms=50.0, latency_mean_ms=40.0)
    steps = [(0.0, high, 2), (15.0, high, 0), (30.0, low, 0), (45.0, low, 0), (330.0, low, 0),
             (345.0, low, 0)]
    # 2 -> 6 (4 pods per 15 s) -> 12 (100% per 15 s); low latency then recommends fewer, but
    # scale-down stabilization keeps the highest recommendation of the last 300 s.
    result = _run(HpaPolicy(), steps)
    assert result[:2] == [6, 12]
    assert result[2] == 12 and result[3] == 12  # stabilization keeps the max of 300 s
    assert result[4] < 12  # the high recommendations are older than 300 s now


def test_hpa_holds_without_latency() -> None:
    decision = HpaPolicy().decide(Snapshot(0.0, rps=0.0), ReplicaState(5, 5), SPEC, 0.0)
    assert decision.desired_replicas == 5
    assert "holding" in decision.reason


def test_keda_follows_rate_per_replica() -> None:
    policy = KedaPolicy(threshold_rps=10.0)
    decision = policy.decide(Snapshot(0.0, rps=55.0), ReplicaState(2, 2), SPEC, 0.0)
    # ceil(55 / 10) = 6, allowed by max(2 + 4, 2 * 2) = 6
    assert decision.desired_replicas == 6


# KEDA's Prometheus scaler with metricType AverageValue becomes an HPA External metric:
# desired = ceil(query result / threshold), kept when within the 10% tolerance of
# current * threshold, then the HPA behavior defaults. Threshold 10 rps in every row.
@pytest.mark.parametrize(
    ("current", "rps", "earlier", "expected"),
    [
        (2, 100.0, [], 6),  # ceil(100 / 10) = 10, but scale-up allows max(2 + 4, 2 * 2) = 6
        (10, 150.0, [], 15),  # ceil(15): max(10 + 4, 20) allows it
        (10, 108.0, [], 10),  # 108 / 100 = 1.08: inside the tolerance
        (10, 89.0, [], 9),  # 0.89: outside, ceil(8.9) = 9
        (10, 30.0, [], 3),  # first recommendation: nothing older to stabilize on
        (10, 30.0, [(-200.0, 10)], 10),  # a 10 recommended 200 s ago is inside the 300 s window
        (10, 30.0, [(-301.0, 10)], 3),  # ... and 301 s ago it is not
        (1, 0.0, [], 1),  # ceil(0) = 0, clamped to minReplicas
    ],
)
def test_keda_by_hand(current: int, rps: float, earlier: list[tuple[float, int]],
                      expected: int) -> None:
    policy = KedaPolicy(threshold_rps=10.0)
    policy.state.recommendations = list(earlier)
    decision = policy.decide(Snapshot(0.0, rps=rps), ReplicaState(current, current), SPEC, 0.0)
    assert decision.desired_replicas == expected


def test_keda_holds_without_a_rate() -> None:
    decision = KedaPolicy(threshold_rps=10.0).decide(Snapshot(0.0), ReplicaState(5, 5), SPEC, 0.0)
    assert decision.desired_replicas == 5 and "holding" in decision.reason


def test_keda_rejects_bad_threshold() -> None:
    with pytest.raises(ValueError, match="threshold_rps"):
        KedaPolicy(threshold_rps=0.0)
