"""Kubernetes HPA on a latency metric, reimplemented from its documentation and controller.

The replica count follows `desired = ceil(readyPods * metric / target)` unless the ratio is within
the 10% tolerance; the result then goes through the HPA `behavior` defaults: scale-down
stabilization (the max recommendation of the last 300 s), scale-down rate 100% per 15 s,
scale-up rate max(100%, 4 pods) per 15 s (no scale-up stabilization). The controller syncs every
15 s (`interval`). Names follow pkg/controller/podautoscaler (replica_calculator.go,
horizontal.go) so that the two can be read side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from sloscale.autoscale.policies.base import (
    AutoscalingSpec,
    Decision,
    ReplicaState,
    Snapshot,
    hold,
)

TOLERANCE = 0.1


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


def usage_ratio_replicas(current: int, ready: int, usage_ratio: float) -> int:
    """replica_calculator.getUsageRatioReplicaCount for Object/Pods metrics."""
    if current != 0 and abs(1.0 - usage_ratio) <= TOLERANCE:
        return current
    return math.ceil(usage_ratio * ready) if current != 0 else math.ceil(usage_ratio)


def average_value_replicas(current: int, usage: float, target_per_pod: float) -> int:
    """replica_calculator.GetExternalPerPodMetricReplicas (AverageValue targets, used by KEDA)."""
    if current == 0:
        return math.ceil(usage / target_per_pod)
    usage_ratio = usage / (target_per_pod * current)
    if abs(1.0 - usage_ratio) <= TOLERANCE:
        return current
    return math.ceil(usage / target_per_pod)


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


def objective_value(snapshot: Snapshot, spec: AutoscalingSpec) -> float | None:
    """The latency the objective names: the percentile, or the mean."""
    if spec.objective.latency == "mean":
        return snapshot.latency_mean_ms
    return snapshot.latency_ms


@dataclass
class HpaPolicy:
    """HPA with the objective's latency as an Object metric whose target is `targetMs`."""

    behavior: HpaBehavior = field(default_factory=HpaBehavior)
    state: HpaState = field(default_factory=HpaState)
    name: str = "hpa"
    metrics_window_s: float | None = None
    interval_s: float | None = 15.0  # the controller's --horizontal-pod-autoscaler-sync-period

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        latency_ms = objective_value(snapshot, spec)
        if latency_ms is None:
            return hold(replicas, spec, "no latency metric: holding")
        ratio = latency_ms / spec.objective.targetMs
        raw = usage_ratio_replicas(replicas.current, replicas.ready, ratio)
        desired = normalize(self.state, self.behavior, spec, replicas.current, raw, now)
        return Decision(
            desired, f"latency {latency_ms:.0f}ms / target {spec.objective.targetMs:.0f}ms",
            {"usage_ratio": ratio, "raw_replicas": raw},
        )
