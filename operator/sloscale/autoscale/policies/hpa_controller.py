"""The Kubernetes HPA controller's arithmetic, shared by every HPA-based baseline (hpa, keda).

Reimplemented from kubernetes/kubernetes pkg/controller/podautoscaler: replica_calculator.go
(replicas from a metric: calcPlainMetricReplicas for Pods metrics, getUsageRatioReplicaCount
for Object and External `Value` targets, GetExternalPerPodMetricReplicas for External
`AverageValue` targets, all with the 10% tolerance of --horizontal-pod-autoscaler-tolerance)
and horizontal.go (stabilizeRecommendationWithBehaviors, then
convertDesiredReplicasWithBehaviorRate with calculateScaleUpLimitWithScalingRules and
calculateScaleDownLimitWithBehaviors). The behavior defaults are those of
https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#default-behavior.
Unlike horizontal.go, the clock is an argument and the memory is an explicit dataclass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from sloscale.autoscale.policies.base import AutoscalingSpec

TOLERANCE = 0.1
# The controller's --horizontal-pod-autoscaler-sync-period: how often an HPA decides.
SYNC_PERIOD_S = 15.0


@dataclass(frozen=True)
class HpaScalingPolicy:
    type: Literal["Pods", "Percent"]
    value: int
    period_s: float


@dataclass(frozen=True)
class HpaScalingRules:
    stabilization_s: float
    policies: tuple[HpaScalingPolicy, ...]
    select_policy: Literal["Max", "Min"] = "Max"


@dataclass(frozen=True)
class HpaBehavior:
    """`spec.behavior` of an autoscaling/v2 HPA; the defaults are the documented ones."""

    scale_up: HpaScalingRules = HpaScalingRules(
        0.0, (HpaScalingPolicy("Pods", 4, 15.0), HpaScalingPolicy("Percent", 100, 15.0))
    )
    scale_down: HpaScalingRules = HpaScalingRules(
        300.0, (HpaScalingPolicy("Percent", 100, 15.0),)
    )


@dataclass
class HpaState:
    """The controller's memory: raw recommendations and past scale events, with timestamps."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_up_events: list[tuple[float, int]] = field(default_factory=list)
    scale_down_events: list[tuple[float, int]] = field(default_factory=list)


def within_tolerance(usage_ratio: float) -> bool:
    return abs(1.0 - usage_ratio) <= TOLERANCE


def usage_ratio_replicas(current: int, ready: int, usage_ratio: float) -> int:
    """replica_calculator.getUsageRatioReplicaCount (Object metrics, External `Value` targets):
    `ceil(usage_ratio * readyPods)` outside the tolerance."""
    if current != 0 and within_tolerance(usage_ratio):
        return current
    return math.ceil(usage_ratio * ready) if current != 0 else math.ceil(usage_ratio)


def average_value_replicas(current: int, usage: float, target_per_pod: float) -> int:
    """replica_calculator.GetExternalPerPodMetricReplicas (External `AverageValue` targets, what
    KEDA creates by default): `ceil(usage / target)` whatever the current count."""
    if current == 0:
        return math.ceil(usage / target_per_pod)
    if within_tolerance(usage / (target_per_pod * current)):
        return current
    return math.ceil(usage / target_per_pod)


def plain_metric_replicas(
    current: int, ready: int, missing: int, unready: int, value_per_pod: float, target: float
) -> int | None:
    """replica_calculator.calcPlainMetricReplicas (Pods metrics, `AverageValue` target) when each
    of the `ready` pods reports `value_per_pod`; `missing` pods run without the metric yet and
    `unready` ones are Pending. On a scale-up both count as reporting 0, on a scale-down the
    missing ones as reporting the target; a change of direction or a ratio within the tolerance
    keeps `current`. None when no pod reports (the controller errors and leaves the scale)."""
    if ready <= 0:
        return None
    usage_ratio = value_per_pod / target
    scale_up_with_unready = unready > 0 and usage_ratio > 1.0
    if not scale_up_with_unready and missing == 0:
        return current if within_tolerance(usage_ratio) else math.ceil(usage_ratio * ready)
    total, pods = value_per_pod * ready, ready
    if missing and usage_ratio < 1.0:
        total, pods = total + target * missing, pods + missing
    elif missing and usage_ratio > 1.0:
        pods += missing
    if scale_up_with_unready:
        pods += unready
    new_ratio = total / pods / target
    flipped = (usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio)
    if within_tolerance(new_ratio) or flipped:
        return current
    new_replicas = math.ceil(new_ratio * pods)
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        return current
    return new_replicas


def _change_in_period(events: list[tuple[float, int]], period_s: float, now: float) -> int:
    return sum(change for time, change in events if time > now - period_s)


def scale_up_limit(current: int, rules: HpaScalingRules, state: HpaState, now: float) -> int:
    """horizontal.calculateScaleUpLimitWithScalingRules."""
    proposals = []
    for policy in rules.policies:
        added = _change_in_period(state.scale_up_events, policy.period_s, now)
        deleted = _change_in_period(state.scale_down_events, policy.period_s, now)
        start = current - added + deleted
        if policy.type == "Pods":
            proposals.append(start + policy.value)
        else:
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
    return max(proposals) if rules.select_policy == "Max" else min(proposals)


def scale_down_limit(current: int, rules: HpaScalingRules, state: HpaState, now: float) -> int:
    """horizontal.calculateScaleDownLimitWithBehaviors ("Max" = the largest change = lowest)."""
    proposals = []
    for policy in rules.policies:
        added = _change_in_period(state.scale_up_events, policy.period_s, now)
        deleted = _change_in_period(state.scale_down_events, policy.period_s, now)
        start = current + deleted - added
        if policy.type == "Pods":
            proposals.append(start - policy.value)
        else:
            proposals.append(int(start * (1 - policy.value / 100)))
    return min(proposals) if rules.select_policy == "Max" else max(proposals)


def stabilize(
    state: HpaState, behavior: HpaBehavior, current: int, desired: int, now: float
) -> int:
    """horizontal.stabilizeRecommendationWithBehaviors: min over the up window, max over down."""
    up, down = desired, desired
    for time, recommendation in state.recommendations:
        if time > now - behavior.scale_up.stabilization_s:
            up = min(up, recommendation)
        if time > now - behavior.scale_down.stabilization_s:
            down = max(down, recommendation)
    keep_s = max(behavior.scale_up.stabilization_s, behavior.scale_down.stabilization_s)
    state.recommendations = [r for r in state.recommendations if r[0] > now - keep_s]
    state.recommendations.append((now, desired))
    return min(max(current, up), down)


def normalize(
    state: HpaState, behavior: HpaBehavior, spec: AutoscalingSpec, current: int, desired: int,
    now: float,
) -> int:
    """Stabilize, apply the rate limits and the min/max bounds, and record the scale event."""
    stabilized = stabilize(state, behavior, current, desired, now)
    result = stabilized
    if stabilized > current:
        limit = max(scale_up_limit(current, behavior.scale_up, state, now), current)
        result = min(stabilized, limit, spec.maxReplicas)
    elif stabilized < current:
        limit = min(scale_down_limit(current, behavior.scale_down, state, now), current)
        result = max(stabilized, limit, spec.minReplicas)
    result = spec.clamp(result)
    _record_event(state, current, result, now)
    return result


def _record_event(state: HpaState, current: int, new: int, now: float) -> None:
    horizon = now - 1800.0  # longer than any period the behavior can name
    state.scale_up_events = [e for e in state.scale_up_events if e[0] > horizon]
    state.scale_down_events = [e for e in state.scale_down_events if e[0] > horizon]
    if new > current:
        state.scale_up_events.append((now, new - current))
    elif new < current:
        state.scale_down_events.append((now, current - new))
