"""Fitting the simulator's ServiceModel from Triton's statistics: parsing, deltas, the line."""

from __future__ import annotations

from typing import Any

import pytest

from sloscale_runtime import fit
from sloscale_runtime.errors import TritonError


def phase(count: int, ms: float) -> dict[str, int]:
    return {"count": count, "ns": int(ms * 1e6)}


def batch(size: int, count: int, infer_ms: float) -> dict[str, Any]:
    """One batch_stats entry; input and output copies take 0.1 ms per execution each."""
    return {"batch_size": size, "compute_input": phase(count, 0.1 * count),
            "compute_infer": phase(count, infer_ms), "compute_output": phase(count, 0.1 * count)}


def stats(batches: list[dict[str, Any]], requests: int = 0, server_ms: float = 0.0
          ) -> dict[str, Any]:
    """A model_stats entry; server_ms is split between queue and compute_infer."""
    inference = {name: phase(requests, 0.0) for name in
                 ("success", "queue", "compute_input", "compute_infer", "compute_output")}
    inference["queue"] = phase(requests, server_ms / 2)
    inference["compute_infer"] = phase(requests, server_ms / 2)
    return {"name": "m", "version": "1", "inference_stats": inference, "batch_stats": batches}


def test_batch_timings_are_deltas_with_all_compute_phases() -> None:
    before = stats([batch(1, 10, 100.0), batch(4, 2, 50.0)])
    after = stats([batch(1, 30, 300.0), batch(4, 2, 50.0), batch(8, 5, 250.0)])
    assert fit.batch_timings(before, after) == [
        fit.BatchTiming(1, 20, pytest.approx(10.2)),  # (200 ms + 2 + 2) / 20
        fit.BatchTiming(8, 5, pytest.approx(50.2)),
    ]  # size 4 ran no batch in between: left out


def test_server_time_per_request() -> None:
    before, after = stats([], 10, 100.0), stats([], 30, 500.0)
    assert fit.server_ms_per_request(before, after) == pytest.approx(20.0)
    with pytest.raises(TritonError, match="no successful request"):
        fit.server_ms_per_request(before, before)


def test_fit_line_recovers_base_and_per_item() -> None:
    timings = [fit.BatchTiming(s, 10, 12.0 + 3.0 * s) for s in (1, 2, 4, 8, 16)]
    base, per_item, residual = fit.fit_line(timings)
    assert (base, per_item, residual) == (pytest.approx(12.0), pytest.approx(3.0),
                                          pytest.approx(0.0, abs=1e-9))


def test_fit_line_weighs_each_size_by_its_executions() -> None:
    # 12 + 3 x size, but size 3 ran once on a busy moment: it barely moves the line.
    timings = [fit.BatchTiming(1, 500, 15.0), fit.BatchTiming(3, 1, 100.0),
               fit.BatchTiming(16, 500, 60.0)]
    base, per_item, _ = fit.fit_line(timings)
    assert (base, per_item) == (pytest.approx(12.0, abs=0.2), pytest.approx(3.0, abs=0.02))


def test_fit_line_needs_two_sizes() -> None:
    with pytest.raises(ValueError, match="two sizes"):
        fit.fit_line([fit.BatchTiming(1, 50, 10.0)])


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"max_batch_size": 16, "dynamic_batching": {"max_queue_delay_microseconds": "100"}},
         (16, 0.1)),
        ({"max_batch_size": 8, "dynamic_batching": {}}, (8, 0.0)),
    ],
)
def test_batching_limits(config: dict[str, Any], expected: tuple[int, float]) -> None:
    assert fit.batching_limits(config) == expected


@pytest.mark.parametrize("config", [{"max_batch_size": 0}, {"max_batch_size": 8}])
def test_batching_limits_refuse_a_model_without_dynamic_batching(config: dict[str, Any]) -> None:
    with pytest.raises(TritonError, match="does not batch dynamically"):
        fit.batching_limits({"name": "m", **config})


def test_model_stats_picks_the_model() -> None:
    response = {"model_stats": [{"name": "a"}, {"name": "m", "batch_stats": []}]}
    assert fit.model_stats(response, "m") == {"name": "m", "batch_stats": []}
    with pytest.raises(TritonError, match="one entry for 'x'"):
        fit.model_stats(response, "x")


def test_max_rps_runs_full_batches() -> None:
    service = fit.ServiceFit(20.0, 5.0, 16, 0.1, 1.0, 0.0, ())
    assert service.max_rps == pytest.approx(16 / 0.1)
