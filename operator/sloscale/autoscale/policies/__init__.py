"""Autoscaling policies (pure: no kopf, no Kubernetes client, no HTTP) and their registry."""

from __future__ import annotations

from sloscale.autoscale.policies.base import (
    AutoscalingSpec,
    Decision,
    Objective,
    Policy,
    ReplicaState,
    ScalingRules,
    Snapshot,
)
from sloscale.autoscale.policies.hpa import HpaPolicy
from sloscale.autoscale.policies.keda import KedaLatencyPolicy, KedaPolicy
from sloscale.autoscale.policies.kpa import KpaPolicy, KpaSettings
from sloscale.autoscale.policies.slo import SloPolicy

POLICY_NAMES = ("slo", "hpa", "keda", "keda-latency", "kpa")

# Baselines get thresholds the way their users set them: a share of the profiled capacity.
BASELINE_UTILIZATION = 0.7


def make_policy(name: str, spec: AutoscalingSpec) -> Policy:
    """A fresh policy (with fresh state) by name; baselines are tuned from the capacity profile."""
    capacity = spec.capacityRpsPerReplica
    if name == "slo":
        return SloPolicy()
    if name == "hpa":
        return HpaPolicy()
    if name == "keda":
        if capacity is None:
            raise ValueError("policy keda needs spec.capacityRpsPerReplica for its threshold")
        return KedaPolicy(threshold_rps=capacity * BASELINE_UTILIZATION)
    if name == "keda-latency":
        # The threshold is the objective's target, as SLO-minded users set it.
        return KedaLatencyPolicy(threshold_ms=spec.objective.targetMs)
    if name == "kpa":
        if capacity is None:
            raise ValueError("policy kpa needs spec.capacityRpsPerReplica for its target")
        # The target a load test gives: in flight per pod at capacity (Little's law on the MEAN
        # latency there; None: the policy estimates it); scale-down-delay covers a cold start.
        mean_ms = spec.meanLatencyMsAtCapacity
        return KpaPolicy(KpaSettings(
            target_concurrency=None if mean_ms is None else capacity * mean_ms / 1000.0,
            target_utilization=BASELINE_UTILIZATION, scale_down_delay_s=spec.coldStartSeconds,
            capacity_rps=capacity))
    raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICY_NAMES)}")


__all__ = [
    "POLICY_NAMES", "AutoscalingSpec", "Decision", "Objective", "Policy", "ReplicaState",
    "ScalingRules", "Snapshot", "make_policy",
]
