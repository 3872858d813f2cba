"""Capacity profile math and JSON: percentiles, the max rate at target, the schema checks."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from sloscale_runtime import capacity
from sloscale_runtime.bench import compute_us_per_request
from sloscale_runtime.capacity import CurvePoint
from sloscale_runtime.errors import RuntimeInputError
from sloscale_runtime.profiler import batching_of, make_profile


def point(c: int, rps: float, p95: float, errors: int = 0, requests: int = 100) -> CurvePoint:
    return CurvePoint(c, rps, p95 / 2, p95, p95 * 1.5, requests, errors)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 95, 5.0),
        ([float(v) for v in range(1, 101)], 95, 95.0),
        ([float(v) for v in range(1, 101)], 50, 50.0),
        ([float(v) for v in range(100, 0, -1)], 99, 99.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 95, 4.0),
    ],
)
def test_percentile_nearest_rank(values: list[float], q: int, expected: float) -> None:
    assert capacity.percentile_ms(values, q) == expected


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(capacity.percentile_ms([], 95))


def test_summarize_step() -> None:
    got = capacity.summarize_step(4, [float(v) for v in range(1, 201)], 2.0, errors=1)
    assert (got.throughput_rps, got.p50_ms, got.p95_ms, got.p99_ms, got.requests, got.errors) == (
        100.0, 100.0, 190.0, 198.0, 200, 1)


CURVE = [point(1, 100, 5), point(2, 180, 8), point(4, 300, 12), point(8, 320, 30)]


@pytest.mark.parametrize(
    ("points", "q", "slo_ms", "expected"),
    [
        (CURVE, 95, 10, 180.0),
        (CURVE, 95, 12, 300.0),
        (CURVE, 95, 100, 320.0),
        (CURVE, 95, 4, None),
        (CURVE, 50, 6, 300.0),
        (CURVE, 99, 12, 180.0),
        ([point(1, 100, 5), point(2, 500, 5, errors=3)], 95, 10, 100.0),
        ([point(1, 0, 5, requests=0)], 95, 10, None),
        ([], 95, 10, None),
    ],
)
def test_max_rps_at_target(points: list[CurvePoint], q: int, slo_ms: float,
                           expected: float | None) -> None:
    assert capacity.max_rps_at_target(points, q, slo_ms) == expected


@pytest.mark.parametrize(("q", "slo_ms", "message"), [(90, 10, "percentile"), (95, 0, "slo-ms")])
def test_bad_objective(q: int, slo_ms: float, message: str) -> None:
    with pytest.raises(RuntimeInputError, match=message):
        capacity.max_rps_at_target(CURVE, q, slo_ms)


@pytest.mark.parametrize(
    ("p", "expected"),
    [(point(4, 300, 12), False), (point(4, 300, 21), True), (point(4, 300, 5, errors=1), True)],
)
def test_past_saturation(p: CurvePoint, expected: bool) -> None:
    assert capacity.past_saturation(p, 95, 10) is expected


TRITON_CONFIG = {
    "name": "cnn", "backend": "python", "max_batch_size": 16,
    "dynamic_batching": {"preferred_batch_size": [4, 8], "max_queue_delay_microseconds": 2000},
}


def sample_profile() -> capacity.CapacityProfile:
    return make_profile(TRITON_CONFIG, CURVE, "http", 95, 10.0, 5.0,
                        {"kind": "cpu", "description": "test", "cpu_count": 2},
                        dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))


def test_profile_json_round_trip_and_top_level_key() -> None:
    profile = sample_profile()
    text = capacity.to_json(profile)
    data = json.loads(text)
    assert data["schema"] == capacity.SCHEMA
    assert data["max_rps_at_target"] == 180.0
    assert data["measured_at"] == "2026-01-02T03:04:05+00:00"
    assert data["batching"] == {"dynamic": True, "preferred_batch_sizes": [4, 8],
                                "max_queue_delay_us": 2000}
    assert capacity.from_json(text) == profile


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, {"dynamic": False, "preferred_batch_sizes": [], "max_queue_delay_us": None}),
        ({"dynamic_batching": {}}, {"dynamic": True, "preferred_batch_sizes": [],
                                    "max_queue_delay_us": 0}),
    ],
)
def test_batching_of(config: dict[str, object], expected: dict[str, object]) -> None:
    assert batching_of(config) == expected


def _mutated(**changes: object) -> str:
    data = json.loads(capacity.to_json(sample_profile()))
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v != "DELETE"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{nope", "not JSON"),
        ("[]", "top level"),
        (_mutated(schema="v0"), "schema"),
        (_mutated(points="DELETE"), "missing field.*points"),
        (_mutated(max_rps_at_target=-1), "max_rps_at_target"),
        (_mutated(max_rps_at_target="fast"), "max_rps_at_target"),
        (_mutated(points=[{"concurrency": 1}]), "points"),
    ],
)
def test_from_json_rejects(text: str, message: str) -> None:
    with pytest.raises(RuntimeInputError, match=rf"cm/profile\.json: .*{message}"):
        capacity.from_json(text, source="cm/profile.json")


@pytest.mark.parametrize(
    ("compute_us", "requests", "executions", "expected"),
    [(1000.0, 10, 10, 100.0), (4000.0, 10, 5, 200.0), (8000.0, 8, 1, 125.0)],
)
def test_compute_us_per_request(compute_us: float, requests: float, executions: float,
                                expected: float) -> None:
    assert compute_us_per_request(compute_us, requests, executions) == expected


def test_compute_us_per_request_without_requests_is_nan() -> None:
    assert math.isnan(compute_us_per_request(0.0, 0, 0))
