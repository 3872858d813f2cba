"""The latency model of one replica: the profile's curve, read at a per-pod rate and inverted
at the target, stretched by the capacity learned online."""

from __future__ import annotations

import math

import pytest

from sloscale.autoscale.policies.latency import LatencyCurve, predicted_ms

CURVE = LatencyCurve.of([(2.0, 40.0), (4.0, 60.0), (8.0, 100.0), (10.0, 200.0)])


def test_a_curve_sorts_its_points_and_never_falls() -> None:
    curve = LatencyCurve.of([(8.0, 80.0), (2.0, 40.0), (4.0, 110.0), (4.0, 90.0),
                             (0.0, 5.0), (3.0, math.nan), (6.0, -1.0), (5.0, None),
                             ("7", 50.0), (True, 30.0)])
    assert curve is not None
    assert curve.rps == (2.0, 4.0, 8.0)
    # Two measurements at 4 rps pool to 100 ms; 8 rps measured faster than that: both read
    # as their mean (one slow point does not lift the rest of the curve).
    assert curve.ms == (40.0, 90.0, 90.0)


def test_one_slow_light_point_is_pooled_not_carried_forward() -> None:
    curve = LatencyCurve.of([(1.0, 300.0), (2.0, 50.0), (3.0, 70.0), (4.0, 90.0)])
    assert curve is not None
    assert curve.ms == pytest.approx((127.5, 127.5, 127.5, 127.5))  # all four pooled
    warm = LatencyCurve.of([(1.0, 60.0), (2.0, 50.0), (3.0, 70.0), (4.0, 90.0)])
    assert warm is not None
    assert warm.ms == pytest.approx((55.0, 55.0, 70.0, 90.0))  # the target is still crossed


@pytest.mark.parametrize("points", [[], [(5.0, 50.0)], [(5.0, 50.0), (5.0, 60.0)],
                                    [(0.0, 10.0), (5.0, math.inf)]])
def test_fewer_than_two_usable_rates_make_no_curve(points: list[tuple[float, float]]) -> None:
    assert LatencyCurve.of(points) is None


@pytest.mark.parametrize(
    ("rps", "expected_ms"),
    [
        (1.0, 40.0),  # below the lightest point: its latency
        (2.0, 40.0),
        (3.0, 50.0),  # between points: linear
        (9.0, 150.0),
        (10.0, 200.0),
        (12.0, 300.0),  # past the heaviest: the last segment continued (50 ms per rps)
    ],
)
def test_latency_is_interpolated(rps: float, expected_ms: float) -> None:
    assert CURVE is not None
    assert CURVE.latency_ms(rps) == pytest.approx(expected_ms)


@pytest.mark.parametrize(
    ("target_ms", "expected_rps"),
    [(30.0, None), (40.0, 2.0), (80.0, 6.0), (150.0, 9.0), (500.0, 10.0)],
)
def test_rate_at_target_inverts_the_curve(target_ms: float, expected_rps: float | None) -> None:
    assert CURVE is not None
    assert CURVE.rate_at_ms(target_ms) == (None if expected_rps is None
                                           else pytest.approx(expected_rps))


def test_the_inverse_reads_back_the_target() -> None:
    assert CURVE is not None
    for target_ms in (45.0, 77.0, 120.0, 199.0):
        rate = CURVE.rate_at_ms(target_ms)
        assert rate is not None
        assert CURVE.latency_ms(rate) == pytest.approx(target_ms)


def test_prediction_shares_the_demand_among_the_pods() -> None:
    # 36 rps over 4 pods is 9 each, over 6 pods 6 each: the profile's own points while the
    # capacity is the profiled one.
    assert predicted_ms(CURVE, 9.0, 9.0, 150.0, 36.0, 4) == pytest.approx(150.0)
    assert predicted_ms(CURVE, 9.0, 9.0, 150.0, 36.0, 6) == pytest.approx(80.0)


def test_the_profiled_capacity_anchors_the_stretch_not_the_curves_crossing() -> None:
    # The profile named 8 rps (a measured point) for a 150 ms target the curve crosses at 9:
    # until something is learned, 8 rps a pod reads as the 100 ms measured there.
    assert predicted_ms(CURVE, 8.0, 8.0, 150.0, 32.0, 4) == pytest.approx(100.0)
    # Without a profiled capacity the crossing stands for it.
    assert predicted_ms(CURVE, None, 9.0, 150.0, 36.0, 6) == pytest.approx(80.0)


def test_a_learned_capacity_stretches_the_curve() -> None:
    # The pods reach the target at 4.5 rps, half the profile's 9: each of 8 pods carrying 4.5
    # rps shows what the profile showed at 9.
    assert predicted_ms(CURVE, 9.0, 4.5, 150.0, 36.0, 8) == pytest.approx(150.0)
    assert predicted_ms(CURVE, 9.0, 4.5, 150.0, 36.0, 12) == pytest.approx(80.0)


@pytest.mark.parametrize(
    ("curve", "profiled", "capacity", "target_ms", "pods"),
    [(None, 9.0, 9.0, 150.0, 4), (CURVE, 9.0, None, 150.0, 4), (CURVE, 9.0, 9.0, 150.0, 0),
     (CURVE, None, 9.0, 30.0, 4)],  # the last: no profiled capacity, no crossing either
)
def test_no_prediction_without_its_inputs(curve: LatencyCurve | None, profiled: float | None,
                                          capacity: float | None, target_ms: float,
                                          pods: int) -> None:
    assert predicted_ms(curve, profiled, capacity, target_ms, 36.0, pods) is None
