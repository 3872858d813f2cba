"""One service's turn in a loop tick: the guards around the policy (pure, clock passed in).

The policy decides from metrics; this module decides whether its decision may be acted on:
missing metrics hold, unschedulable pods cap scale-up, another autoscaler wins, and
`recommend` mode only reports. Every outcome carries the conditions that explain it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, Policy
from sloscale.autoscale.promql import ServiceMetrics
from sloscale.autoscale.replicas import PodCensus


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


@dataclass(frozen=True)
class TickOutcome:
    desired_replicas: int
    current_replicas: int
    reason: str
    write: bool  # the actuator should set the Deployment's replicas to desired_replicas
    conditions: tuple[Condition, ...]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def changes_scale(self) -> bool:
        return self.write and self.desired_replicas != self.current_replicas


def _metrics_condition(metrics: ServiceMetrics) -> Condition:
    return Condition("MetricsAvailable", metrics.available, metrics.reason, metrics.message)


def decide_tick(
    policy: Policy,
    spec: AutoscalingSpec,
    mode: str,
    metrics: ServiceMetrics,
    pods: PodCensus,
    competitor: str | None,
    now: float,
    unschedulable_note: str | None = None,
) -> TickOutcome:
    """The guarded decision for one service.

    `unschedulable_note` is the scheduler's message from a recent tick that saw Pending
    pods: the policy keeps below what fits for a while, and the condition keeps saying why.
    """
    current = pods.state.current
    conditions = [_metrics_condition(metrics)]
    if competitor is not None:
        conditions.append(
            Condition(
                "AutoscalerConflict",
                True,
                "CompetingAutoscaler",
                f"{competitor} also scales this Deployment; sloscale leaves the replicas to it",
            )
        )
        return TickOutcome(current, current, "competing autoscaler", False, tuple(conditions))
    conditions.append(Condition("AutoscalerConflict", False, "NoCompetingAutoscaler", ""))

    if metrics.snapshot is None:
        # Never shrink on missing data; only the spec's own bounds may move the count.
        decision = Decision(spec.clamp(current), f"hold: {metrics.reason}", {})
    else:
        decision = policy.decide(metrics.snapshot, pods.state, spec, now)

    desired, limited = decision.desired_replicas, None
    if pods.state.pending > 0 or unschedulable_note:
        # Pods the scheduler cannot place: asking for more only adds Pending pods. The
        # policy may already have held back; the condition says why either way.
        if pods.state.pending > 0:
            desired = min(desired, current)
        message = pods.unschedulable_message or unschedulable_note
        limited = Condition(
            "ScalingLimited",
            True,
            "Unschedulable",
            message or f"{pods.state.pending} pods cannot be scheduled",
        )
    elif decision.desired_replicas >= spec.maxReplicas and metrics.snapshot is not None:
        limited = Condition(
            "ScalingLimited", True, "MaxReplicas", f"at maxReplicas ({spec.maxReplicas})"
        )
    conditions.append(limited or Condition("ScalingLimited", False, "WithinLimits", ""))
    reason = (
        decision.reason
        if limited is None or limited.reason != "Unschedulable"
        else (f"{decision.reason}; capped: pods unschedulable")
    )
    return TickOutcome(
        desired_replicas=desired,
        current_replicas=current,
        reason=reason,
        write=mode == "active",
        conditions=tuple(conditions),
        details=dict(decision.details),
    )


def invalid_config(current: int, message: str) -> TickOutcome:
    """The autoscaling settings cannot drive a policy: hold, and say what to fix."""
    return TickOutcome(
        desired_replicas=current,
        current_replicas=current,
        reason=f"hold: {message}",
        write=False,
        conditions=(Condition("ScalingActive", False, "InvalidAutoscalingConfig", message),),
    )
