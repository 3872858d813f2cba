"""The oracle: hand-worked schedules, its replay costs what it planned, and it is a lower bound."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sloscale.autoscale.policies import AutoscalingSpec, Objective, make_policy
from sloscale.sim.compare import compare
from sloscale.sim.engine import SimConfig, simulate
from sloscale.sim.oracle import OracleDriver, needed_replicas, schedule
from sloscale.sim.report import score
from sloscale.sim.service import ServiceModel
from sloscale.sim.traces import Trace


@pytest.mark.parametrize(
    ("needed", "cold_buckets", "alive"),
    [
        # a gap of 2 buckets, cold start 3: keep the pods (a restart would cost more); the
        # second pod, needed before a cold start could pass, is warm from time 0
        ([1, 2, 0, 0, 2, 1], 3, [2, 2, 2, 2, 2, 1]),
        # the same gap with a cold start of 1: stop both, restart them one bucket ahead
        ([1, 2, 0, 0, 2, 1], 1, [2, 2, 0, 2, 2, 1]),
        # a pod needed at bucket 5 is scheduled 2 buckets ahead
        ([1, 1, 1, 1, 1, 3], 2, [1, 1, 1, 3, 3, 3]),
        ([0, 0, 0], 2, [0, 0, 0]),
    ],
)
def test_schedule_by_hand(needed: list[int], cold_buckets: int, alive: list[int]) -> None:
    plan = schedule(np.array(needed), bucket_s=10.0, cold_start_s=10.0 * cold_buckets)
    assert plan.alive.tolist() == alive
    assert plan.replica_seconds == pytest.approx(10.0 * sum(alive))


def test_needed_replicas_uses_the_mean_rate_per_bucket() -> None:
    arrivals = np.concatenate([np.linspace(0, 9.99, 250), np.linspace(10, 19.99, 10)])
    need = needed_replicas(arrivals, 20.0, 10.0, capacity_rps=10.0, min_replicas=1)
    assert need.tolist() == [3, 1, 1]  # 25 rps -> 3; 1 rps -> 1; the empty tail -> min 1


def _bursty_trace() -> Trace:
    rng = np.random.default_rng(5)
    rates = [40.0, 300.0, 60.0, 500.0, 80.0, 20.0]
    parts = [np.cumsum(rng.exponential(1 / r, int(r * 180))) % 180 + 180 * k
             for k, r in enumerate(rates)]
    return Trace("bursty", "csv", np.sort(np.concatenate(parts)))


def test_oracle_replay_costs_what_it_planned() -> None:
    trace, service = _bursty_trace(), ServiceModel()
    spec = AutoscalingSpec(maxReplicas=100, objective=Objective("p95", 150.0),
                           capacityRpsPerReplica=20.0)
    plan = schedule(needed_replicas(trace.arrivals_s, trace.duration_s, 10.0, 20.0, 1), 10.0,
                    60.0)
    config = SimConfig(initial_replicas=int(plan.alive[0]), drain_s=0.0)
    run = simulate(trace.arrivals_s, OracleDriver(plan), spec, service, config)
    assert run.replica_seconds == pytest.approx(plan.replica_seconds, rel=0.02)


def test_oracle_never_costs_more_than_a_run_meeting_the_slo() -> None:
    trace, service = _bursty_trace(), ServiceModel()
    spec = AutoscalingSpec(maxReplicas=100, objective=Objective("p95", 150.0),
                           capacityRpsPerReplica=20.0)
    result = compare(trace, spec, service, SimConfig(), ["slo", "hpa", "keda", "kpa"],
                     progress=lambda *args: None)
    rows = list(result.document["policies"].values())
    # A fixed fleet large enough for the peak always meets the SLO: at least one run qualifies.
    ample = replace(spec, minReplicas=40, maxReplicas=40)
    run = simulate(trace.arrivals_s, make_policy("keda", ample), ample, service,
                   SimConfig(initial_replicas=40))
    rows.append(score(run, ample, result.document["oracle"]["replica_hours"]))
    meeting = [row for row in rows if row["requests_within_slo"] >= 0.99]
    assert meeting
    for row in meeting:
        assert row["replica_hours"] >= result.document["oracle"]["replica_hours"]
