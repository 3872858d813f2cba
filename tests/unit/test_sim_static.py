"""The static fleet reference: the smallest fixed fleet meeting the objective in hindsight."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sloscale.autoscale.policies import AutoscalingSpec, Objective
from sloscale.sim.compare import STATIC_WINDOWS, static_fleet
from sloscale.sim.engine import SimConfig, simulate
from sloscale.sim.profile import FixedReplicas
from sloscale.sim.report import windows_meeting_objective
from sloscale.sim.service import ServiceModel

SERVICE = ServiceModel()
SPEC = AutoscalingSpec(maxReplicas=12, objective=Objective("p95", 150.0, window=30.0))
CONFIG = SimConfig(drain_s=10.0)


def _windows(arrivals: np.ndarray, pods: int) -> float:
    fixed = replace(SPEC, minReplicas=pods, maxReplicas=pods)
    run = simulate(arrivals, FixedReplicas(pods), fixed, SERVICE,
                   replace(CONFIG, initial_replicas=pods))
    return windows_meeting_objective(run, SPEC)


def test_the_static_fleet_is_the_smallest_that_meets_the_objective() -> None:
    rng = np.random.default_rng(3)
    # 20 rps, with a minute at 60 rps: the fleet must carry the busy minute.
    rate = np.r_[np.full(120, 20.0), np.full(60, 60.0), np.full(120, 20.0)]
    counts = rng.poisson(rate)
    arrivals = np.sort(np.repeat(np.arange(len(rate)), counts) + rng.random(counts.sum()))
    pods, run = static_fleet(arrivals, SPEC, SERVICE, CONFIG)
    brute = [n for n in range(1, SPEC.maxReplicas + 1) if _windows(arrivals, n) >= STATIC_WINDOWS]
    assert pods == brute[0]
    assert windows_meeting_objective(run, SPEC) >= STATIC_WINDOWS
    assert run.replica_seconds >= pods * 300.0  # the fleet runs the whole trace
