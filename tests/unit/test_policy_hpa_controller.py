"""The HPA controller's rules against cases worked by hand from replica_calculator.go,
horizontal.go and the Kubernetes and KEDA documentation."""

from __future__ import annotations

import pytest

from sloscale.autoscale.policies import AutoscalingSpec
from sloscale.autoscale.policies.hpa_controller import (
    HpaBehavior,
    HpaState,
    average_value_replicas,
    normalize,
    plain_metric_replicas,
    scale_down_limit,
    scale_up_limit,
    stabilize,
    usage_ratio_replicas,
)

SPEC = AutoscalingSpec(minReplicas=1, maxReplicas=100)


@pytest.mark.parametrize(
    ("current", "ready", "ratio", "expected"),
    [
        (4, 4, 1.5, 6),  # ceil(4 * 1.5)
        (4, 4, 1.05, 4),  # within the 10% tolerance
        (4, 4, 0.91, 4),  # within the tolerance downwards
        (4, 4, 0.5, 2),
        (5, 3, 2.0, 6),  # uses ready pods, not the current count
        (10, 10, 1.11, 12),  # ceil(11.1)
        (3, 3, 4.0, 12),  # KEDA's reference, metricType Value: 3 * 20 ms / 5 ms
        (0, 0, 2.5, 3),  # from zero: ceil(ratio), no tolerance
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
        (3, 20.0, 5.0, 4),  # KEDA's reference, metricType AverageValue: 20 / 5 whatever the count
    ],
)
def test_average_value_replicas(current: int, usage: float, target: float, expected: int) -> None:
    assert average_value_replicas(current, usage, target) == expected


# calcPlainMetricReplicas with every ready pod reporting `value` against `target` 1.0.
@pytest.mark.parametrize(
    ("current", "ready", "missing", "unready", "value", "expected"),
    [
        (4, 4, 0, 0, 1.5, 6),  # ceil(1.5 * 4)
        (4, 4, 0, 0, 1.05, 4),  # tolerance
        (4, 4, 0, 0, 0.7, 3),  # ceil(2.8)
        (6, 4, 2, 0, 2.0, 8),  # scale-up: missing pods count 0 -> 8 / 6 pods -> ceil(1.33 * 6)
        (6, 4, 2, 0, 0.5, 4),  # scale-down: missing pods count the target -> 4 / 6 -> 4, not 2
        (6, 4, 2, 0, 0.95, 6),  # (3.8 + 2) / 6 = 0.97: within the tolerance
        (6, 4, 2, 0, 1.0, 6),  # exactly on target: missing pods not added, ratio 1
        (5, 2, 0, 3, 4.0, 8),  # unready pods count 0 on a scale-up: 8 / 5 = 1.6 -> 8
        (5, 2, 0, 3, 1.2, 5),  # 2.4 / 5 = 0.48: the direction flips, keep the count
        (10, 2, 0, 1, 2.0, 10),  # 4 / 3 = 1.33 -> 4 pods < 10 while above target: keep
        (5, 5, 0, 2, 0.5, 3),  # unready pods matter only on a scale-up: ceil(0.5 * 5)
        (4, 0, 4, 0, 0.0, None),  # no pod reports: the controller errors, nothing changes
    ],
)
def test_plain_metric_replicas(current: int, ready: int, missing: int, unready: int,
                               value: float, expected: int | None) -> None:
    assert plain_metric_replicas(current, ready, missing, unready, value, 1.0) == expected


@pytest.mark.parametrize(
    ("current", "events_up", "expected"),
    [
        (2, [], 6),  # max(2 + 4 pods, 2 * 200%) = max(6, 4)
        (10, [], 20),  # max(10 + 4, 10 * 200%) = 20
        (8, [(95.0, 4)], 8),  # 4 added in the last 15 s: period start 4 -> max(8, 8)
        (8, [(80.0, 4)], 16),  # added 20 s ago: outside the 15 s period
    ],
)
def test_scale_up_limit(current: int, events_up: list[tuple[float, int]], expected: int) -> None:
    state = HpaState(scale_up_events=events_up)
    assert scale_up_limit(current, HpaBehavior().scale_up, state, now=100.0) == expected


@pytest.mark.parametrize(
    ("current", "events_down", "expected"),
    [
        (10, [], 0),  # 100% per 15 s: anything down to 0 (min/max bounds apply later)
        (5, [(95.0, 5)], 0),  # 5 removed within the period: start 10, 100% of it may go
    ],
)
def test_scale_down_limit(current: int, events_down: list[tuple[float, int]],
                          expected: int) -> None:
    state = HpaState(scale_down_events=events_down)
    assert scale_down_limit(current, HpaBehavior().scale_down, state, now=100.0) == expected


@pytest.mark.parametrize(
    ("earlier", "current", "desired", "expected"),
    [
        ([], 10, 3, 3),  # nothing older: take it
        ([(-200.0, 10)], 10, 3, 10),  # a 10 within the 300 s down window
        ([(-301.0, 10)], 10, 3, 3),  # ... and outside it
        ([(-200.0, 7)], 10, 3, 7),  # the highest recent recommendation, not the current count
        ([(-10.0, 2)], 4, 9, 9),  # no up window by default: a scale-up is never held
    ],
)
def test_stabilize(earlier: list[tuple[float, int]], current: int, desired: int,
                   expected: int) -> None:
    state = HpaState(recommendations=list(earlier))
    assert stabilize(state, HpaBehavior(), current, desired, now=0.0) == expected
    assert state.recommendations[-1] == (0.0, desired)  # the raw recommendation is kept


def test_normalize_rate_limits_then_bounds_and_records_the_event() -> None:
    state = HpaState()
    assert normalize(state, HpaBehavior(), SPEC, 2, 50, now=0.0) == 6  # max(2 + 4, 4)
    assert normalize(state, HpaBehavior(), SPEC, 6, 50, now=15.0) == 12  # 100% per 15 s
    assert normalize(state, HpaBehavior(), SPEC, 12, 500, now=30.0) == 24
    assert state.scale_up_events == [(0.0, 4), (15.0, 6), (30.0, 12)]
    bounded = AutoscalingSpec(minReplicas=1, maxReplicas=20)
    assert normalize(HpaState(), HpaBehavior(), bounded, 12, 500, now=0.0) == 20
