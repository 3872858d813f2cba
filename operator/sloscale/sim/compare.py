"""Run every requested policy, the oracle and the lower bound on one trace: the document."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sloscale.autoscale.policies import make_policy
from sloscale.autoscale.policies.base import (
    AutoscalingSpec,
    Decision,
    Policy,
    ReplicaState,
    Snapshot,
)
from sloscale.sim.bound import lower_bound_replica_seconds
from sloscale.sim.engine import RunResult, SimConfig, simulate
from sloscale.sim.oracle import BUCKET_S, OracleSchedule, certify, initial_ready, search_need
from sloscale.sim.profile import FixedReplicas, profiled_spec
from sloscale.sim.report import latency_model_error, score, windows_meeting_objective
from sloscale.sim.service import ServiceModel
from sloscale.sim.traces import Trace


@dataclass
class Comparison:
    document: dict[str, Any]
    runs: list[RunResult]
    oracle: OracleSchedule


@dataclass
class Recorded:
    """A policy whose decisions are kept, (time, decision) each: its latency model is judged by
    what the pods then reported."""

    policy: Policy
    decisions: list[tuple[float, Decision]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def metrics_window_s(self) -> float | None:
        return self.policy.metrics_window_s

    @property
    def interval_s(self) -> float | None:
        return self.policy.interval_s

    def decide(self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec,
               now: float) -> Decision:
        decision = self.policy.decide(snapshot, replicas, spec, now)
        self.decisions.append((now, decision))
        return decision


def _progress(step: int, total: int, label: str, started: float) -> None:
    done = "#" * step + "." * (total - step)
    print(f"\r[{done}] {step}/{total} {label:<24} {time.monotonic() - started:6.1f}s",
          end="" if step < total else "\n", file=sys.stderr, flush=True)


# The windows a fixed fleet must meet to count as "the fleet a user would provision".
STATIC_WINDOWS = 0.99


def static_fleet(arrivals_s: np.ndarray, spec: AutoscalingSpec, service: ServiceModel,
                 config: SimConfig) -> tuple[int, RunResult]:
    """The smallest fixed fleet, chosen in hindsight, that meets the objective in
    STATIC_WINDOWS of the windows (maxReplicas if none does): what a team that provisions for
    the peak and never scales runs. Bisection: more pods never meet fewer windows here."""
    def run(pods: int) -> RunResult:
        fixed = replace(spec, minReplicas=pods, maxReplicas=pods)
        return simulate(arrivals_s, FixedReplicas(pods, name="static"), fixed, service,
                        replace(config, initial_replicas=pods))

    low, high = 1, spec.maxReplicas
    best = run(high)
    while low < high:
        middle = (low + high) // 2
        attempt = run(middle)
        if windows_meeting_objective(attempt, spec) >= STATIC_WINDOWS:
            high, best = middle, attempt
        else:
            low = middle + 1
    return high, best


def compare(trace: Trace, spec: AutoscalingSpec, service: ServiceModel, config: SimConfig,
            policies: list[str], progress: Callable[[int, int, str, float], None] | None = None,
            slo_profile: bool = True) -> Comparison:
    """Simulate each policy (fresh state, same seed) and the oracle's schedule on `trace`.

    Baselines take their thresholds from the capacity profile; `slo_profile=False` hides it
    from the slo policy, which then learns capacity online.
    """
    report = progress or _progress
    started = time.monotonic()
    if spec.capacityRpsPerReplica is None or spec.meanLatencyMsAtCapacity is None:
        spec = profiled_spec(service, spec, config)
    capacity = spec.capacityRpsPerReplica
    total = len(policies) + 2
    report(0, total, "oracle: search", started)
    need = search_need(trace.arrivals_s, trace.duration_s, spec, service, config.seed)
    # Every run starts with the pods the oracle needs before a cold start could pass: a
    # service already running, sized for the start of the trace.
    config = replace(config, initial_replicas=initial_ready(need, BUCKET_S,
                                                            config.cold_start.seconds))
    report(1, total, "oracle: certify", started)
    oracle = certify(trace.arrivals_s, need, spec, service, config)
    end_s = trace.duration_s + config.drain_s
    # The bound's proof rests on batches taking at least the line: with a spread, a lucky
    # batch runs faster, and no bound is claimed.
    bound_s = (lower_bound_replica_seconds(trace.arrivals_s, end_s, spec, service,
                                           config.cold_start.seconds)
               if service.batch_time_cv == 0.0 else None)
    runs, models = [], []
    for step, name in enumerate(policies, start=2):
        report(step, total, name, started)
        seen = spec if slo_profile or name != "slo" else replace(spec, capacityRpsPerReplica=None)
        driver = Recorded(make_policy(name, spec))
        runs.append(simulate(trace.arrivals_s, driver, seen, service, config))
        models.append(latency_model_error([d.details for _, d in driver.decisions]))
    static_pods, static_run = static_fleet(trace.arrivals_s, spec, service, config)
    report(total, total, "done", started)
    oracle_hours = oracle.run.replica_seconds / 3600.0
    oracle_score = score(oracle.run, spec, oracle_hours)
    oracle_score["certify_rounds"] = oracle.rounds
    document = {
        "trace": {
            "name": trace.name, "format": trace.format, "requests": int(len(trace.arrivals_s)),
            "duration_s": trace.duration_s,
            "peak_rps_1min": float(np.bincount((trace.arrivals_s // 60).astype(np.int64))
                                   .max(initial=0) / 60.0),
        },
        "objective": {"latency": spec.objective.latency, "target_ms": spec.objective.targetMs,
                      "window_s": spec.objective.window,
                      "cold_start_s": config.cold_start.seconds,
                      "capacity_rps_per_replica": capacity, "balancer": config.balancer},
        "oracle": oracle_score,
        "lower_bound": None if bound_s is None else {
            "replica_hours": bound_s / 3600.0,
            "replica_hours_vs_oracle": bound_s / 3600.0 / oracle_hours
            if oracle_hours > 0 else None},
        "static_fleet": {"replicas": static_pods, **score(static_run, spec, oracle_hours)},
        "policies": {run.name: {**score(run, spec, oracle_hours),
                                **({"latency_model": model} if model else {})}
                     for run, model in zip(runs, models, strict=True)},
        "elapsed_s": time.monotonic() - started,
    }
    return Comparison(document, [oracle.run, *runs], oracle.plan)
