"""What a KEDA user applies, as data: a GPU Deployment and a Prometheus-triggered ScaledObject.

Shared by the KEDA e2e tests and `make compare`, so that both run KEDA as its guides
configure it, against the emulated Triton pods' metrics in Prometheus.
"""

from __future__ import annotations

from typing import Any

from hack.localcluster.nodes import gpu_deployment
from sloscale.api import SERVICE_LABEL
from sloscale.autoscale.promql import PROM_SERVICE_LABEL


def deployment(name: str, namespace: str, replicas: int = 1) -> dict[str, Any]:
    """A GPU Deployment like the ones sloscale renders; the emulator serves its pods (it
    finds them by the service label)."""
    return gpu_deployment(name, namespace, {SERVICE_LABEL: name}, replicas)


def _selector(namespace: str, service: str) -> str:
    return f'namespace="{namespace}",{PROM_SERVICE_LABEL}="{service}"'


def rate_query(namespace: str, service: str, window_s: float = 15.0) -> str:
    """Requests per second the service served: the Prometheus scaler's own example shape."""
    window = f"{max(1, round(window_s))}s"
    return f"sum(rate(nv_inference_request_success{{{_selector(namespace, service)}}}[{window}]))"


def p95_query(namespace: str, service: str) -> str:
    """The service's p95 in ms, from Triton's per-pod summaries, as sloscale reads it (the
    slowest pod's)."""
    selector = f'{_selector(namespace, service)},quantile="0.95"'
    return f"max(nv_inference_request_summary_us{{{selector}}}) / 1000"


def scaled_object(
    name: str,
    namespace: str,
    target: str,
    prometheus_url: str,
    *,
    min_replicas: int,
    max_replicas: int,
    query: str,
    threshold: float,
    metric_type: str = "AverageValue",
    behavior: dict[str, Any] | None = None,
    target_api: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A ScaledObject with one Prometheus trigger on `target`: a Deployment, or the
    (apiVersion, kind) in `target_api` (any resource with a scale subresource).

    `metric_type`: AverageValue divides the query among replicas (a rate); Value compares it
    as it is (a latency). `behavior`: the HPA's, left to its defaults when None.
    """
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": target} | (
            {} if target_api is None else {"apiVersion": target_api[0], "kind": target_api[1]}
        ),
        "minReplicaCount": min_replicas,
        "maxReplicaCount": max_replicas,
        "pollingInterval": 5,
        "triggers": [
            {
                "type": "prometheus",
                "metricType": metric_type,
                "metadata": {
                    "serverAddress": prometheus_url,
                    "query": query,
                    "threshold": f"{threshold:g}",
                },
            }
        ],
    }
    if behavior is not None:
        spec["advanced"] = {"horizontalPodAutoscalerConfig": {"behavior": behavior}}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
