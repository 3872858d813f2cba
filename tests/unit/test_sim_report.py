"""Scoring: windows meeting the objective, Pareto dominance."""

from __future__ import annotations

import numpy as np
import pytest

from sloscale.autoscale.policies import AutoscalingSpec, Objective
from sloscale.sim.engine import RunResult
from sloscale.sim.report import (
    latency_model_error,
    pareto_dominates,
    score,
    windows_meeting_objective,
)

SPEC = AutoscalingSpec(maxReplicas=100, objective=Objective("p95", 100.0))


def _run(admitted: list[float], latency: list[float], rejected: list[float]) -> RunResult:
    arrivals = np.sort(np.array(admitted + rejected))
    empty = np.zeros(1)
    return RunResult("x", arrivals, np.array(admitted), np.array(latency),
                     np.zeros(len(admitted)), np.array(rejected), empty, empty, empty, 7200.0, 3)


def test_windows_by_arrival_minute() -> None:
    # minute 0: 20 fast requests; minute 1: 19 fast + 1 slow (p95 interpolates above 100);
    # minute 2: fast, but one of two rejected
    fast0 = [float(t) for t in range(20)]
    minute1 = [60.0 + t for t in range(20)]  # the objective's window: 60 s by default
    run = _run(fast0 + minute1 + [130.0], [10.0] * 20 + [10.0] * 19 + [5000.0] + [10.0],
               [131.0])
    assert windows_meeting_objective(run, SPEC) == pytest.approx(1 / 3)


def test_score_counts_rejected_as_missed() -> None:
    run = _run([0.0, 1.0, 2.0], [50.0, 150.0, 50.0], [3.0])
    row = score(run, SPEC, oracle_replica_hours=1.0)
    assert row["requests_within_slo"] == pytest.approx(0.5)
    assert row["replica_hours"] == pytest.approx(2.0) and row["replica_hours_vs_oracle"] == 2.0
    assert (row["rejected"], row["scaling_actions"]) == (1, 3)


@pytest.mark.parametrize(
    ("ours", "other", "expected"),
    [
        ((0.99, 10.0), (0.98, 10.0), True),
        ((0.99, 9.0), (0.99, 10.0), True),
        ((0.99, 10.0), (0.99, 10.0), False),  # equal: not better on either
        ((0.999, 11.0), (0.98, 10.0), False),  # better SLO, more cost: a trade-off
    ],
)
def test_pareto(ours: tuple[float, float], other: tuple[float, float], expected: bool) -> None:
    def row(pair: tuple[float, float]) -> dict[str, float]:
        return {"windows_meeting_objective": pair[0], "replica_hours": pair[1]}

    assert pareto_dominates(row(ours), row(other)) is expected


def test_the_latency_model_is_judged_by_what_the_pods_reported() -> None:
    details = [
        {"demand_rps": 10.0, "latency_ms": 100.0, "modelled_latency_ms": 100.0},  # 1.0
        {"demand_rps": 10.0, "latency_ms": 150.0, "modelled_latency_ms": 100.0},  # 1.5
        {"demand_rps": 10.0, "latency_ms": 90.0, "modelled_latency_ms": 100.0},  # 0.9
        {"demand_rps": 0.0, "latency_ms": 0.0, "modelled_latency_ms": 40.0},  # no traffic
        {"demand_rps": 10.0, "latency_ms": 100.0, "modelled_latency_ms": None},  # no model
    ]
    error = latency_model_error(details)
    assert error is not None
    assert error["decisions"] == 3
    assert error["ratio_median"] == pytest.approx(1.0)
    assert error["within_25pct"] == pytest.approx(2 / 3)
    assert latency_model_error([{"demand_rps": 1.0, "latency_ms": 5.0}]) is None
