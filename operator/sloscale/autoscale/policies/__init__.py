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
from sloscale.autoscale.policies.registry import (
    POLICY_NAMES,
    TUNED,
    TUNED_NAMES,
    TUNING,
    Knob,
    grid_names,
    make_policy,
    metrics_window_s,
)

__all__ = [
    "POLICY_NAMES", "TUNED", "TUNED_NAMES", "TUNING", "AutoscalingSpec", "Decision", "Knob",
    "Objective", "Policy", "ReplicaState", "ScalingRules", "Snapshot", "grid_names",
    "make_policy", "metrics_window_s",
]
