"""KEDA Prometheus scaler on request rate per replica (metricType AverageValue).

KEDA turns the ScaledObject into an HPA on an External metric with an AverageValue target
(kedacore/keda pkg/scalers/prometheus_scaler.go GetMetricSpecForScaling; the default metricType
in https://keda.sh/docs/2.16/reference/scaledobject-spec/#triggers), so
`desired = ceil(rps / threshold)` (unless within the 10% tolerance of the current count) and the
HPA behavior defaults apply unchanged (hpa_controller); KEDA's own polling only matters for
scaling from zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, ReplicaState, Snapshot, hold
from sloscale.autoscale.policies.hpa_controller import (
    SYNC_PERIOD_S,
    HpaBehavior,
    HpaState,
    average_value_replicas,
    normalize,
)


@dataclass
class KedaPolicy:
    """`threshold_rps`: the ScaledObject's threshold, requests/s each replica should carry."""

    threshold_rps: float
    behavior: HpaBehavior = field(default_factory=HpaBehavior)
    state: HpaState = field(default_factory=HpaState)
    name: str = "keda"
    metrics_window_s: float | None = None
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
