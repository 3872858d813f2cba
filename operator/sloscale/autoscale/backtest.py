"""Backtest: a Prometheus range replayed through a policy in recommend mode (pure core)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sloscale.autoscale.policies import make_policy
from sloscale.autoscale.policies.base import AutoscalingSpec, ReplicaState
from sloscale.autoscale.promql import ServiceKey, parse_vector, snapshot_for

# Pods that reported Triton metrics at each step: what actually served, whatever scaled it.
ACTUAL_PODS_QUERY = "count by (namespace, inferenceservice) (nv_inference_request_success)"


def _step_key(stamp: float | str) -> float:
    """Prometheus answers range steps in milliseconds: match them at that precision."""
    return round(float(stamp), 3)


@dataclass(frozen=True)
class BacktestRow:
    time: float
    actual: int | None
    recommended: int
    reason: str
    rps: float | None
    latency_ms: float | None


def vectors_at(
    matrices: Mapping[str, list[dict]], key: ServiceKey
) -> dict[float, dict[str, dict[ServiceKey, float]]]:
    """Range results (one matrix per query) regrouped as instant vectors per timestamp."""
    by_time: dict[float, dict[str, dict[ServiceKey, float]]] = {}
    for name, series_list in matrices.items():
        for series in series_list:
            for stamp, value in series.get("values", []):
                sample = {"metric": series.get("metric", {}), "value": [stamp, value]}
                parsed = parse_vector([sample])
                if key in parsed:
                    by_time.setdefault(_step_key(stamp), {}).setdefault(name, {})[key] = parsed[key]
    return by_time


def replay(
    matrices: Mapping[str, list[dict]],
    key: ServiceKey,
    spec: AutoscalingSpec,
    stale_after_s: float,
) -> list[BacktestRow]:
    """Decide at every step Prometheus answered, as the operator would have.

    Load and latency are what happened; the replica count the policy sees is its own last
    recommendation (the actual count at the first step), so policies that remember their
    own scale events (HPA's rate limits) are not misled by events that never happened.
    """
    policy = make_policy(spec.policy, spec)
    grouped = vectors_at(matrices, key)
    rows: list[BacktestRow] = []
    for now in sorted(grouped):
        vectors = grouped[now]
        actual_value = vectors.get("actual_pods", {}).get(key)
        actual = int(actual_value) if actual_value is not None else None
        current = rows[-1].recommended if rows else (actual if actual is not None else 1)
        metrics = snapshot_for(key, vectors, spec.objective.latency, now, stale_after_s)
        state = ReplicaState(current=current, ready=current)
        if metrics.snapshot is None:
            recommended, reason = spec.clamp(current), f"hold: {metrics.reason}"
        else:
            decision = policy.decide(metrics.snapshot, state, spec, now)
            recommended, reason = decision.desired_replicas, decision.reason
        snapshot = metrics.snapshot
        rows.append(
            BacktestRow(
                now,
                actual,
                recommended,
                reason,
                snapshot.rps if snapshot else None,
                snapshot.latency_ms if snapshot else None,
            )
        )
    return rows
