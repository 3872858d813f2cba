"""The autoscaler's own Prometheus metrics (the operator's /metrics)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sloscale.autoscale.promql import ServiceKey
from sloscale.autoscale.tick import TickOutcome


class AutoscalerMetrics:
    """Decisions by reason, desired vs actual replicas, latency vs target, loop health."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ("namespace", "inferenceservice")
        self.decisions = Counter(
            "sloscale_autoscaler_decisions",
            "Autoscaling decisions, by the kind of reason behind them",
            (*labels, "reason"),
            registry=self.registry,
        )
        self.desired = Gauge(
            "sloscale_desired_replicas", "Replicas the autoscaler wants", labels,
            registry=self.registry,
        )  # fmt: skip
        self.current = Gauge(
            "sloscale_current_replicas", "Replicas the Deployment asks for", labels,
            registry=self.registry,
        )  # fmt: skip
        self.ready = Gauge(
            "sloscale_ready_replicas", "Pods of the service that are Ready", labels,
            registry=self.registry,
        )  # fmt: skip
        self.metrics_available = Gauge(
            "sloscale_metrics_available",
            "1 while Prometheus has fresh Triton samples for the service, else 0 (it holds)",
            labels, registry=self.registry,
        )  # fmt: skip
        self.latency = Gauge(
            "sloscale_observed_latency_ms", "The objective's latency statistic as observed",
            labels, registry=self.registry,
        )  # fmt: skip
        self.target = Gauge(
            "sloscale_latency_target_ms", "The objective's latency target", labels,
            registry=self.registry,
        )  # fmt: skip
        self.loop_seconds = Histogram(
            "sloscale_autoscaler_loop_duration_seconds", "Time one loop tick took",
            registry=self.registry,
        )  # fmt: skip
        self.status_writes = Counter(
            "sloscale_autoscaler_status_writes",
            "status.autoscaling writes, by what made the decision news (desiredReplicas, "
            "decisions, condition:<type>, first, observed)",
            ("cause",), registry=self.registry,
        )  # fmt: skip
        self.query_errors = Counter(
            "sloscale_prometheus_query_errors", "Ticks whose Prometheus queries failed",
            registry=self.registry,
        )  # fmt: skip

    def record(
        self,
        key: ServiceKey,
        outcome: TickOutcome,
        latency_ms: float | None,
        target_ms: float,
        ready_replicas: int | None = None,
    ) -> None:
        labels = (key.namespace, key.name)
        self.decisions.labels(*labels, reason_kind(outcome.reason)).inc()
        self.desired.labels(*labels).set(outcome.desired_replicas)
        self.current.labels(*labels).set(outcome.current_replicas)
        self.target.labels(*labels).set(target_ms)
        if ready_replicas is not None:
            self.ready.labels(*labels).set(ready_replicas)
        for condition in outcome.conditions:
            if condition.type == "MetricsAvailable":
                self.metrics_available.labels(*labels).set(1 if condition.status else 0)
        if latency_ms is not None:
            self.latency.labels(*labels).set(latency_ms)
        else:  # no fresh metrics: an old value would read as today's latency (and page)
            _remove(self.latency, key)

    def forget(self, key: ServiceKey) -> None:
        gauges = (
            self.desired,
            self.current,
            self.ready,
            self.metrics_available,
            self.latency,
            self.target,
        )
        for metric in gauges:
            _remove(metric, key)


def _remove(metric: Gauge, key: ServiceKey) -> None:
    with contextlib.suppress(KeyError):  # never recorded for this service
        metric.remove(key.namespace, key.name)


def reason_kind(reason: str) -> str:
    """A bounded label value: the reason's first word ('hold', 'scale-up', ...)."""
    head = reason.split(":", 1)[0].split(";", 1)[0].strip().split(" ", 1)[0]
    return head[:40] or "unknown"
