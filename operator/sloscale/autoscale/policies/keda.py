"""KEDA baselines: the Prometheus scaler on request rate (`keda`) and on latency (`keda-latency`).

KEDA turns a ScaledObject's trigger into an HPA on an External metric whose target type is the
trigger's `metricType` (kedacore/keda pkg/scalers/prometheus_scaler.go GetMetricSpecForScaling;
the ScaledObject reference, https://keda.sh/docs/2.16/reference/scaledobject-spec/#triggers,
kedacore/keda-docs content/docs/2.16/reference/scaledobject-spec.md). The default is
`AverageValue`: the HPA divides the query's value by the threshold, `ceil(value / threshold)`
whatever the current count, so the query must be something that pods share out (a rate, a
queue length). `Value` compares the value itself with the threshold and multiplies the ready
count by the ratio, `ceil(ready * value / threshold)`: the reference's own example for a value
that does not divide among pods is an average time (20 ms against 5 ms on 3 replicas gives 12).
A latency query therefore needs `metricType: Value`; left at the default it would ask for
`ceil(p95 / target)` pods (1 or 2) whatever the load. Either way the HPA's tolerance and behavior
defaults apply unchanged (hpa_controller); KEDA's own polling only matters for scaling from 0.
An empty or NaN query result reads 0 (`ignoreNullValues` defaults to true in ExecutePromQuery).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sloscale.autoscale.policies.base import (
    AutoscalingSpec,
    Decision,
    ReplicaState,
    Snapshot,
    hold,
    objective_value,
)
from sloscale.autoscale.policies.hpa_controller import (
    SYNC_PERIOD_S,
    HpaBehavior,
    HpaState,
    average_value_replicas,
    normalize,
    usage_ratio_replicas,
)


@dataclass
class KedaPolicy:
    """metricType AverageValue on `sum(rate(requests[window]))`, the Prometheus scaler's own
    example query; `threshold_rps`: requests/s each replica should carry."""

    threshold_rps: float
    behavior: HpaBehavior = field(default_factory=HpaBehavior)
    state: HpaState = field(default_factory=HpaState)
    name: str = "keda"
    metrics_window_s: float | None = None  # the objective's window (the scaler doc's is 2m)
    interval_s: float | None = SYNC_PERIOD_S

    def __post_init__(self) -> None:
        if self.threshold_rps <= 0:
            raise ValueError(f"keda threshold_rps must be > 0, got {self.threshold_rps}")

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        if snapshot.rps is None:
            return hold(replicas, spec, "no request-rate metric: holding")
        raw = average_value_replicas(replicas.current, snapshot.rps, self.threshold_rps)
        desired = normalize(self.state, self.behavior, spec, replicas.current, raw, now)
        return Decision(
            desired, f"{snapshot.rps:.1f} rps / {self.threshold_rps:.1f} per replica",
            {"raw_replicas": raw},
        )


@dataclass
class KedaLatencyPolicy:
    """metricType Value on the objective's latency (e.g. histogram_quantile(0.95, ...) over the
    objective's window); `threshold_ms`: the threshold, the SLO target as such users set it."""

    threshold_ms: float
    behavior: HpaBehavior = field(default_factory=HpaBehavior)
    state: HpaState = field(default_factory=HpaState)
    name: str = "keda-latency"
    metrics_window_s: float | None = None  # the objective's own window
    interval_s: float | None = SYNC_PERIOD_S

    def __post_init__(self) -> None:
        if self.threshold_ms <= 0:
            raise ValueError(f"keda-latency threshold_ms must be > 0, got {self.threshold_ms}")

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        if snapshot.rps is None:
            return hold(replicas, spec, "no metrics: holding")
        latency_ms = objective_value(snapshot, spec)
        value_ms = 0.0 if latency_ms is None else latency_ms  # NaN (no requests) reads 0
        ratio = value_ms / self.threshold_ms
        raw = usage_ratio_replicas(replicas.current, replicas.ready, ratio)
        desired = normalize(self.state, self.behavior, spec, replicas.current, raw, now)
        return Decision(
            desired, f"{spec.objective.latency} {value_ms:.0f}ms / {self.threshold_ms:.0f}ms",
            {"usage_ratio": ratio, "raw_replicas": raw},
        )
