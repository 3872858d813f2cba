"""The autoscaler's PromQL: constant query count, parsing, staleness and missing data."""

from __future__ import annotations

import pytest

from sloscale.autoscale.promql import (
    PROM_SERVICE_LABEL,
    ServiceKey,
    parse_vector,
    queries,
    snapshot_for,
)

KEY = ServiceKey("prod", "resnet")


def _sample(value: str, namespace: str = "prod", name: str = "resnet") -> dict:
    return {"metric": {"namespace": namespace, PROM_SERVICE_LABEL: name}, "value": [1.0, value]}


def test_queries_are_a_fixed_set_grouped_by_namespace_and_service() -> None:
    built = queries(60)
    assert set(built) == {
        "rps",
        "latency_mean_ms",
        "queue_ms",
        "pending",
        "last_sample",
        "latency_p95_ms",
        "latency_p99_ms",
        "rps_peak",
    }
    for query in built.values():
        assert f"by (namespace, {PROM_SERVICE_LABEL})" in query
    assert "[60s]" in built["rps"]
    assert 'quantile="0.95"' in built["latency_p95_ms"]
    assert built["latency_p95_ms"].startswith("max by")  # conservative across pods
    # the peak of the rates between two scrapes over the window: a subquery, one per tick
    assert built["rps_peak"].startswith("max_over_time(") and "[60s:15s]" in built["rps_peak"]
    # Prometheus scraping every second: the peak of 1 s rates, as the simulator's scrapes
    assert "[10s:1s]" in queries(10, scrape_s=1.0)["rps_peak"]
    # a window shorter than the scrape interval still spans one step (else often no sample)
    assert "[15s:15s]" in queries(10)["rps_peak"]


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([_sample("12.5")], {KEY: 12.5}),
        ([_sample("NaN")], {}),  # 0/0 at zero load: no value, not zero
        ([_sample("+Inf")], {}),
        ([_sample("3"), _sample("4", name="bert")], {KEY: 3.0, ServiceKey("prod", "bert"): 4.0}),
        ([{"metric": {"namespace": "prod"}, "value": [1, "5"]}], {}),  # no service label
        ([{"metric": {"namespace": "prod", PROM_SERVICE_LABEL: "x"}}], {}),  # malformed sample
    ],
)
def test_parse_vector(samples: list[dict], expected: dict) -> None:
    assert parse_vector(samples) == expected


def _vectors(**values: float) -> dict[str, dict[ServiceKey, float]]:
    return {name: {KEY: value} for name, value in values.items()}


@pytest.mark.parametrize(
    ("vectors", "reason"),
    [
        ({}, "NoSamples"),
        (_vectors(last_sample=1000.0, rps=5.0), "StaleSamples"),  # 100 s old, limit 45
        (_vectors(last_sample=1090.0), "NoSamples"),  # scraped, but no rate yet
        (_vectors(last_sample=1090.0, rps=5.0), "MetricsFresh"),
    ],
)
def test_snapshot_availability(vectors: dict, reason: str) -> None:
    result = snapshot_for(KEY, vectors, "p95", now=1100.0, stale_after_s=45.0)
    assert result.reason == reason
    assert result.available == (reason == "MetricsFresh")


@pytest.mark.parametrize(
    ("latency", "expected_ms"), [("p95", 80.0), ("p99", 120.0), ("mean", 40.0)]
)
def test_snapshot_uses_the_objectives_latency(latency: str, expected_ms: float) -> None:
    vectors = _vectors(
        last_sample=1095.0,
        rps=30.0,
        latency_mean_ms=40.0,
        latency_p95_ms=80.0,
        latency_p99_ms=120.0,
        queue_ms=3.0,
        pending=2.0,
    )
    snapshot = snapshot_for(KEY, vectors, latency, now=1100.0, stale_after_s=45.0).snapshot
    assert snapshot is not None
    assert snapshot.latency_ms == expected_ms
    assert (snapshot.rps, snapshot.latency_mean_ms, snapshot.queue_ms, snapshot.pending) == (
        30.0,
        40.0,
        3.0,
        2.0,
    )


def test_missing_percentile_is_none_not_zero() -> None:
    vectors = _vectors(last_sample=1095.0, rps=0.0)
    snapshot = snapshot_for(KEY, vectors, "p95", now=1100.0, stale_after_s=45.0).snapshot
    assert snapshot is not None and snapshot.rps == 0.0 and snapshot.latency_ms is None
