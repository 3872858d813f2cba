"""Score a simulated run against the objective and format the table and the JSON document."""

from __future__ import annotations

from typing import Any

import numpy as np

from sloscale.autoscale.policies.base import AutoscalingSpec
from sloscale.sim.engine import RunResult

MISSED_MS = 1e12  # latency given to rejected or unfinished requests


def windows_meeting_objective(run: RunResult, spec: AutoscalingSpec, window_s: float = 60.0
                              ) -> float:
    """Share of 1-minute windows (by arrival) whose objective latency is within target."""
    n_windows = int(run.arrivals_s[-1] // window_s) + 1 if len(run.arrivals_s) else 0
    if n_windows == 0:
        return 1.0
    latency = np.where(np.isfinite(run.latency_ms), run.latency_ms, MISSED_MS)
    order_bounds = np.searchsorted(run.admitted_s, np.arange(n_windows + 1) * window_s)
    rejected = np.bincount((run.rejected_s // window_s).astype(np.int64), minlength=n_windows)
    met = 0
    for k in range(n_windows):
        values = latency[order_bounds[k]:order_bounds[k + 1]]
        if rejected[k]:
            values = np.concatenate((values, np.full(rejected[k], MISSED_MS)))
        if len(values) == 0 or _objective(values, spec) <= spec.objective.targetMs:
            met += 1
    return met / n_windows


def _objective(values: np.ndarray, spec: AutoscalingSpec) -> float:
    percentile = spec.objective.percentile
    return float(values.mean() if percentile is None else np.percentile(values, percentile))


def score(run: RunResult, spec: AutoscalingSpec, oracle_replica_hours: float) -> dict[str, Any]:
    """The figures the issue names, per policy (fractions in 0..1)."""
    arrived = len(run.arrivals_s)
    within = int(np.count_nonzero(run.latency_ms <= spec.objective.targetMs))
    replica_hours = run.replica_seconds / 3600.0
    return {
        "requests_within_slo": within / arrived if arrived else 1.0,
        "windows_meeting_objective": windows_meeting_objective(run, spec),
        "replica_hours": replica_hours,
        "replica_hours_vs_oracle": replica_hours / oracle_replica_hours
        if oracle_replica_hours > 0 else None,
        "scaling_actions": run.scaling_actions,
        "rejected": len(run.rejected_s),
        "peak_replicas": int(run.replicas.max(initial=0)),
    }


def format_table(document: dict[str, Any]) -> str:
    """A fixed-width table of the JSON document's policies and the oracle."""
    header = (f"{'policy':<8} {'within SLO':>10} {'windows ok':>10} {'replica-h':>10} "
              f"{'vs oracle':>9} {'actions':>8} {'rejected':>9} {'peak':>5}")
    lines = [header, "-" * len(header)]
    rows = dict(document["policies"])
    rows["oracle"] = document["oracle"]
    for name, row in rows.items():
        ratio = row.get("replica_hours_vs_oracle")
        lines.append(
            f"{name:<8} {row['requests_within_slo']:>10.4f} "
            f"{row['windows_meeting_objective']:>10.4f} {row['replica_hours']:>10.2f} "
            f"{(f'{ratio:.3f}' if ratio is not None else '-'):>9} {row['scaling_actions']:>8} "
            f"{row['rejected']:>9} {row['peak_replicas']:>5}")
    return "\n".join(lines)


def pareto_dominates(ours: dict[str, Any], other: dict[str, Any]) -> bool:
    """No worse on SLO attainment and cost, better on at least one."""
    no_worse = (ours["requests_within_slo"] >= other["requests_within_slo"]
                and ours["replica_hours"] <= other["replica_hours"])
    better = (ours["requests_within_slo"] > other["requests_within_slo"]
              or ours["replica_hours"] < other["replica_hours"])
    return no_worse and better
