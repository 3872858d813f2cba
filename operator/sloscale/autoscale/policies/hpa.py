"""The `hpa` baseline: Kubernetes HPA on Triton's queue:compute ratio, as NVIDIA's guide sets it.

NVIDIA's Triton-on-Kubernetes guide (triton-inference-server/tutorials,
Deployment/Kubernetes/TensorRT-LLM_Autoscaling_and_Load_Balancing: README.md "Triton Metrics
Prometheus Rule" and chart/templates/horizontal-pod-autoscaler.yaml) scales Triton with an
autoscaling/v2 HPA on one `Pods` metric, `triton:queue_compute:ratio`, target
`type: AverageValue, averageValue: 1000m` (1.0), no `behavior` (so the defaults), the metric
being a per-pod recording rule (the guide's triton-metrics_prometheus-rule.yaml, also in
Deployment/Kubernetes/EKS_Multinode_Triton_TRTLLM/multinode_helm_chart/):

    rate(nv_inference_queue_duration_us[1m])
      / clamp_min(rate(nv_inference_compute_infer_duration_us[1m]), 1)

The guide picks it because it is "hardware and model independent": time waiting in the queue
over time computing. From a Snapshot, queue = `queue_ms` and compute = `latency_mean_ms -
queue_ms` per request; both rates carry the same request rate, so the ratio of the rates is the
ratio of the means, and every Ready pod (the Service spreads requests evenly) reports the same
value. The HPA averages it over the pods that report it and scales by calcPlainMetricReplicas
(see hpa_controller): a starting pod serves no metrics until its model is loaded (missing), an
unschedulable one is Pending (unready).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, ReplicaState, Snapshot, hold
from sloscale.autoscale.policies.hpa_controller import (
    SYNC_PERIOD_S,
    HpaBehavior,
    HpaState,
    normalize,
    plain_metric_replicas,
)

# The guide's averageValue: 1000m.
GUIDE_TARGET_RATIO = 1.0
# The recording rule's rate(...[1m]).
RULE_WINDOW_S = 60.0
# clamp_min(..., 1): a compute rate below 1 us/s counts as 1 us/s (an idle pod reads 0).
MIN_COMPUTE_US_PER_S = 1.0


def queue_compute_ratio(snapshot: Snapshot, ready: int) -> float | None:
    """The recording rule's value for one of `ready` pods sharing the load; None: no data."""
    if snapshot.rps is None:
        return None
    if snapshot.rps == 0:
        return 0.0  # counters that did not move: 0 / clamp_min(0, 1)
    if snapshot.queue_ms is None or snapshot.latency_mean_ms is None:
        return None
    per_pod_rps = snapshot.rps / max(ready, 1)
    queue_us_per_s = snapshot.queue_ms * 1000.0 * per_pod_rps
    compute_ms = max(snapshot.latency_mean_ms - snapshot.queue_ms, 0.0)
    compute_us_per_s = compute_ms * 1000.0 * per_pod_rps
    return queue_us_per_s / max(compute_us_per_s, MIN_COMPUTE_US_PER_S)


@dataclass
class HpaPolicy:
    """`target_ratio`: the HPA's averageValue for triton:queue_compute:ratio."""

    target_ratio: float = GUIDE_TARGET_RATIO
    behavior: HpaBehavior = field(default_factory=HpaBehavior)
    state: HpaState = field(default_factory=HpaState)
    name: str = "hpa"
    metrics_window_s: float | None = RULE_WINDOW_S
    interval_s: float | None = SYNC_PERIOD_S

    def __post_init__(self) -> None:
        if self.target_ratio <= 0:
            raise ValueError(f"hpa target_ratio must be > 0, got {self.target_ratio}")

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        ratio = queue_compute_ratio(snapshot, replicas.ready)
        if ratio is None:
            return hold(replicas, spec, "no queue:compute metric: holding")
        raw = plain_metric_replicas(replicas.current, replicas.ready, replicas.starting,
                                    replicas.pending, ratio, self.target_ratio)
        if raw is None:
            return hold(replicas, spec, "no Ready pod reports the metric: holding")
        desired = normalize(self.state, self.behavior, spec, replicas.current, raw, now)
        return Decision(
            desired, f"queue:compute {ratio:.3f} / target {self.target_ratio:g} per pod",
            {"queue_compute_ratio": ratio, "raw_replicas": raw},
        )
