"""Run every requested policy and the oracle on one trace and assemble the result document."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sloscale.autoscale.policies import make_policy
from sloscale.autoscale.policies.base import AutoscalingSpec
from sloscale.sim.engine import RunResult, SimConfig, simulate
from sloscale.sim.oracle import OracleDriver, OracleSchedule, needed_replicas, schedule
from sloscale.sim.profile import profile_capacity
from sloscale.sim.report import score
from sloscale.sim.service import ServiceModel
from sloscale.sim.traces import Trace

ORACLE_BUCKET_S = 10.0


@dataclass
class Comparison:
    document: dict[str, Any]
    runs: list[RunResult]
    oracle: OracleSchedule


def plan_oracle(trace: Trace, spec: AutoscalingSpec, capacity_rps: float,
                cold_start_s: float) -> OracleSchedule:
    need = needed_replicas(trace.arrivals_s, trace.duration_s, ORACLE_BUCKET_S, capacity_rps,
                           spec.minReplicas)
    return schedule(np.minimum(need, spec.maxReplicas), ORACLE_BUCKET_S, cold_start_s)


def _progress(step: int, total: int, label: str, started: float) -> None:
    done = "#" * step + "." * (total - step)
    print(f"\r[{done}] {step}/{total} {label:<24} {time.monotonic() - started:6.1f}s",
          end="" if step < total else "\n", file=sys.stderr, flush=True)


def compare(trace: Trace, spec: AutoscalingSpec, service: ServiceModel, config: SimConfig,
            policies: list[str], progress: Callable[[int, int, str, float], None] | None = None,
            slo_profile: bool = True) -> Comparison:
    """Simulate each policy (fresh state, same seed) and the oracle's schedule on `trace`.

    Baselines take their thresholds from the capacity profile; `slo_profile=False` hides it
    from the slo policy, which then learns capacity online.
    """
    report = progress or _progress
    started = time.monotonic()
    capacity = spec.capacityRpsPerReplica or profile_capacity(service, spec, config)
    plan = plan_oracle(trace, spec, capacity, config.cold_start.seconds)
    # Every run starts with the pods the first minute needs Ready: a service already running.
    config = replace(config, initial_replicas=int(plan.needed[:int(60 / ORACLE_BUCKET_S)].max()))
    total = len(policies) + 1
    report(0, total, "oracle", started)
    oracle_run = simulate(trace.arrivals_s, OracleDriver(plan), spec, service, config)
    runs = []
    for step, name in enumerate(policies, start=1):
        report(step, total, name, started)
        seen = spec if slo_profile or name != "slo" else replace(spec, capacityRpsPerReplica=None)
        runs.append(simulate(trace.arrivals_s, make_policy(name, spec), seen, service, config))
    report(total, total, "done", started)
    oracle_hours = plan.replica_seconds / 3600.0
    oracle_score = score(oracle_run, spec, oracle_hours)
    # The plan's cost is the bound; the replay (same pods through the simulator) checks its SLO.
    oracle_score["replay_replica_hours"] = oracle_score["replica_hours"]
    oracle_score["replica_hours"], oracle_score["replica_hours_vs_oracle"] = oracle_hours, 1.0
    document = {
        "trace": {
            "name": trace.name, "format": trace.format, "requests": int(len(trace.arrivals_s)),
            "duration_s": trace.duration_s,
            "peak_rps_1min": float(np.bincount((trace.arrivals_s // 60).astype(np.int64))
                                   .max(initial=0) / 60.0),
        },
        "objective": {"latency": spec.objective.latency, "target_ms": spec.objective.targetMs,
                      "cold_start_s": config.cold_start.seconds,
                      "capacity_rps_per_replica": capacity},
        "oracle": oracle_score,
        "policies": {run.name: score(run, spec, oracle_hours) for run in runs},
        "elapsed_s": time.monotonic() - started,
    }
    return Comparison(document, [oracle_run, *runs], plan)
