"""The `keda` baseline (request rate, metricType AverageValue) against cases worked by hand from
the KEDA and Kubernetes documentation."""

from __future__ import annotations

import pytest

from sloscale.autoscale.policies import AutoscalingSpec, Objective, ReplicaState, Snapshot
from sloscale.autoscale.policies.keda import KedaPolicy

SPEC = AutoscalingSpec(minReplicas=1, maxReplicas=100, objective=Objective("p95", 150.0))


# KEDA's Prometheus scaler with metricType AverageValue becomes an HPA External metric:
# desired = ceil(query result / threshold), kept when within the 10% tolerance of
# current * threshold, then the HPA behavior defaults. Threshold 10 rps in every row.
@pytest.mark.parametrize(
    ("current", "rps", "earlier", "expected"),
    [
        (2, 100.0, [], 6),  # ceil(100 / 10) = 10, but scale-up allows max(2 + 4, 2 * 2) = 6
        (2, 55.0, [], 6),  # ceil(5.5) = 6, allowed
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
