"""Score a simulated run against the objective and format the table and the JSON document."""

from __future__ import annotations

from typing import Any

import numpy as np

from sloscale.autoscale.policies.base import AutoscalingSpec
from sloscale.sim.engine import RunResult
from sloscale.sim.objective import window_verdicts


def windows_meeting_objective(run: RunResult, spec: AutoscalingSpec) -> float:
    """Share of the objective's windows (by arrival) whose latency is within target."""
    verdicts = window_verdicts(run, spec)
    return float(verdicts.mean()) if len(verdicts) else 1.0


def windows_by_day(run: RunResult, spec: AutoscalingSpec) -> list[float]:
    """Share of the objective's windows met, per day of the run (by window start)."""
    verdicts = window_verdicts(run, spec)
    day = (np.arange(len(verdicts)) * spec.objective.window // 86400.0).astype(np.int64)
    return [float(verdicts[day == d].mean()) for d in range(int(day.max(initial=-1)) + 1)]


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


def latency_model_error(details: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How the slo policy's latency model read the pods: the percentile they reported over
    the one the model gave at their peak rate, per decision with traffic (None without a model).
    Ratios above 1: slower than modelled (bursts, cold starts, a backlog the curve omits)."""
    ratios = np.array([d["latency_ms"] / d["modelled_latency_ms"] for d in details
                       if d.get("modelled_latency_ms") and d.get("demand_rps")
                       and d.get("latency_ms")])
    if not len(ratios):
        return None
    p10, median, p90 = np.percentile(ratios, (10, 50, 90))
    return {"decisions": len(ratios), "ratio_p10": float(p10), "ratio_median": float(median),
            "ratio_p90": float(p90),
            "within_25pct": float(np.mean((ratios >= 0.8) & (ratios <= 1.25)))}


def format_table(document: dict[str, Any]) -> str:
    """A fixed-width table of the JSON document's policies, the oracle and the lower bound."""
    header = (f"{'policy':<19} {'within SLO':>10} {'windows ok':>10} {'replica-h':>10} "
              f"{'vs oracle':>9} {'actions':>8} {'rejected':>9} {'peak':>5}")
    lines = [header, "-" * len(header)]
    rows = dict(document["policies"])
    rows["oracle"] = document["oracle"]
    if "static_fleet" in document:  # documents written before it have none
        rows[f"static ({document['static_fleet']['replicas']} pods)"] = document["static_fleet"]
    for name, row in rows.items():
        ratio = row.get("replica_hours_vs_oracle")
        lines.append(
            f"{name:<19} {row['requests_within_slo']:>10.4f} "
            f"{row['windows_meeting_objective']:>10.4f} {row['replica_hours']:>10.2f} "
            f"{(f'{ratio:.3f}' if ratio is not None else '-'):>9} {row['scaling_actions']:>8} "
            f"{row['rejected']:>9} {row['peak_replicas']:>5}")
    bound = document.get("lower_bound")
    if bound is not None:
        ratio = bound.get("replica_hours_vs_oracle")
        lines.append(f"{'lower bound':<19} {'':>10} {'':>10} {bound['replica_hours']:>10.2f} "
                     f"{(f'{ratio:.3f}' if ratio is not None else '-'):>9}")
    return "\n".join(lines)


def pareto_dominates(ours: dict[str, Any], other: dict[str, Any]) -> bool:
    """At least as many windows meeting the objective at no more replica-hours, and strictly
    better in one of the two."""
    no_worse = (ours["windows_meeting_objective"] >= other["windows_meeting_objective"]
                and ours["replica_hours"] <= other["replica_hours"])
    better = (ours["windows_meeting_objective"] > other["windows_meeting_objective"]
              or ours["replica_hours"] < other["replica_hours"])
    return no_worse and better
