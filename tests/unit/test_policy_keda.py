"""The KEDA baselines (`keda` on request rate, `keda-latency` on the objective's latency) against
cases worked by hand from the KEDA and Kubernetes documentation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sloscale.autoscale.policies import AutoscalingSpec, Objective, ReplicaState, Snapshot
from sloscale.autoscale.policies.keda import KedaLatencyPolicy, KedaPolicy

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


# metricType Value on the objective's p95, threshold = the SLO target (150 ms): the ratio
# multiplies the READY count, ceil(ready * p95 / 150) outside the tolerance.
@pytest.mark.parametrize(
    ("replicas", "p95_ms", "rps", "expected"),
    [
        (ReplicaState(4, 4), 300.0, 50.0, 8),  # ratio 2: ceil(8), allowed by max(4 + 4, 8)
        (ReplicaState(4, 4), 160.0, 50.0, 4),  # ratio 1.07: tolerance
        (ReplicaState(4, 4), 75.0, 50.0, 2),  # ratio 0.5: first recommendation, taken
        (ReplicaState(6, 3, starting=3), 300.0, 50.0, 6),  # ceil(2 * 3 ready) = 6: no more yet
        (ReplicaState(2, 2), 900.0, 50.0, 6),  # ceil(12), rate-limited to max(2 + 4, 4)
        (ReplicaState(5, 5), None, 0.0, 1),  # no requests: NaN reads 0 -> ceil(0), min 1
        (ReplicaState(5, 5), None, None, 5),  # no scrape at all: hold
    ],
)
def test_keda_latency_by_hand(replicas: ReplicaState, p95_ms: float | None, rps: float | None,
                              expected: int) -> None:
    snapshot = Snapshot(0.0, rps=rps, latency_ms=p95_ms, latency_mean_ms=p95_ms)
    decision = KedaLatencyPolicy(threshold_ms=150.0).decide(snapshot, replicas, SPEC, 0.0)
    assert decision.desired_replicas == expected


def test_keda_latency_reads_the_objective_s_statistic() -> None:
    mean_spec = AutoscalingSpec(maxReplicas=100, objective=Objective("mean", 100.0))
    snapshot = Snapshot(0.0, rps=10.0, latency_mean_ms=200.0, latency_ms=900.0)
    decision = KedaLatencyPolicy(threshold_ms=100.0).decide(snapshot, ReplicaState(3, 3),
                                                             mean_spec, 0.0)
    assert decision.details["usage_ratio"] == pytest.approx(2.0)
    assert decision.desired_replicas == 6


def test_keda_latency_scale_down_waits_for_the_window() -> None:
    policy, current, seen = KedaLatencyPolicy(threshold_ms=150.0), 4, []
    for now, p95_ms in [(0.0, 300.0), (15.0, 60.0), (299.0, 60.0), (301.0, 60.0)]:
        snapshot = Snapshot(now, rps=50.0, latency_ms=p95_ms)
        current = policy.decide(snapshot, ReplicaState(current, current), SPEC, now) \
            .desired_replicas
        seen.append(current)
    # 4 -> 8, then p95 60 ms recommends ceil(0.4 * 8) = 4, held by the 8 of t=0 for 300 s.
    assert seen == [8, 8, 8, 4]


def test_keda_holds_without_a_rate() -> None:
    decision = KedaPolicy(threshold_rps=10.0).decide(Snapshot(0.0), ReplicaState(5, 5), SPEC, 0.0)
    assert decision.desired_replicas == 5 and "holding" in decision.reason


@pytest.mark.parametrize("make", [lambda: KedaPolicy(threshold_rps=0.0),
                                  lambda: KedaLatencyPolicy(threshold_ms=-1.0)])
def test_keda_rejects_bad_threshold(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="threshold"):
        make()
