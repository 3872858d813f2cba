"""The autoscaler's PromQL: one query per metric for every service, and their parsing.

Pure: builds query strings and turns Prometheus instant-vector results into per-service
snapshots. Talking to Prometheus is the job of `metrics.py`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sloscale.autoscale.policies.base import Snapshot

# Pods carry this label (see render); Prometheus' pod discovery turns it into a target label.
PROM_SERVICE_LABEL = "inferenceservice"
GROUP = f"namespace, {PROM_SERVICE_LABEL}"
QUANTILES = {"p95": "0.95", "p99": "0.99"}
DURATION = "nv_inference_request_duration_us"
# The ServiceMonitor's scrape interval (render/templates/servicemonitor.yaml.j2): the shortest
# span a rate can be taken over, the step of the peak short-window rate (`sloscale run
# --scrape-interval-s` when Prometheus scrapes the pods at another interval).
SCRAPE_S = 15.0
QUEUE = "nv_inference_queue_duration_us"


@dataclass(frozen=True, order=True)
class ServiceKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def _rate(metric: str, window: str) -> str:
    return f"sum by ({GROUP}) (rate({metric}[{window}]))"


def queries(window_s: float, scrape_s: float = SCRAPE_S) -> dict[str, str]:
    """Every query one tick runs: a fixed set, whatever the number of services.

    Latencies from counters are rate(duration)/rate(count); percentiles come from Triton's
    per-pod summaries and are aggregated with max across pods, the conservative choice
    (a service is as slow as its slowest replica's tail).
    """
    window = f"{max(1, round(window_s))}s"
    step = max(1, round(scrape_s))
    success = _rate("nv_inference_request_success", window)
    result = {
        "rps": success,
        "latency_mean_ms": f"{_rate(DURATION, window)} / {success} / 1000",
        "queue_ms": f"{_rate(QUEUE, window)} / {success} / 1000",
        "pending": f"sum by ({GROUP}) (nv_inference_pending_request_count)",
        # The highest rate between two scrapes within the window: how bursty it was.
        # Its range spans at least one step: subquery steps sit on multiples of the step, so a
        # window shorter than the scrape interval would often hold none and read as no data.
        "rps_peak": (f"max_over_time((sum by ({GROUP}) (irate(nv_inference_request_success"
                     f"[{3 * step}s])))[{max(step, round(window_s))}s:{step}s])"),
        # Newest sample time per service: what staleness is judged on.
        "last_sample": f"max by ({GROUP}) (timestamp(nv_inference_request_success))",
    }
    for name, quantile in QUANTILES.items():
        result[f"latency_{name}_ms"] = (
            f'max by ({GROUP}) (nv_inference_request_summary_us{{quantile="{quantile}"}}) / 1000'
        )
    return result


def parse_vector(result: Iterable[Mapping[str, Any]]) -> dict[ServiceKey, float]:
    """Instant-vector samples to values per service; NaN and +-Inf (0/0 at zero load) dropped."""
    values: dict[ServiceKey, float] = {}
    for sample in result:
        labels = sample.get("metric", {})
        namespace, name = labels.get("namespace"), labels.get(PROM_SERVICE_LABEL)
        if not namespace or not name:
            continue
        try:
            value = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if math.isfinite(value):
            values[ServiceKey(namespace, name)] = value
    return values


@dataclass(frozen=True)
class ServiceMetrics:
    """A service's snapshot, or why there is none (reason is a condition reason)."""

    snapshot: Snapshot | None
    reason: str
    message: str

    @property
    def available(self) -> bool:
        return self.snapshot is not None


def snapshot_for(
    key: ServiceKey,
    vectors: Mapping[str, Mapping[ServiceKey, float]],
    latency: str,
    now: float,
    stale_after_s: float,
) -> ServiceMetrics:
    """One service's snapshot from every query's parsed vector; judged for staleness."""
    last = vectors.get("last_sample", {}).get(key)
    if last is None:
        return ServiceMetrics(None, "NoSamples", f"Prometheus has no Triton samples for {key}")
    age_s = now - last
    if age_s > stale_after_s:
        return ServiceMetrics(None, "StaleSamples", f"newest sample for {key} is {age_s:.0f}s old")
    rps = vectors.get("rps", {}).get(key)
    if rps is None:
        return ServiceMetrics(None, "NoSamples", f"no request rate for {key} yet")
    percentile_ms = vectors.get(f"latency_{latency}_ms", {}).get(key)
    mean_ms = vectors.get("latency_mean_ms", {}).get(key)
    snapshot = Snapshot(
        time=now,
        rps=rps,
        latency_mean_ms=mean_ms,
        latency_ms=mean_ms if latency == "mean" else percentile_ms,
        queue_ms=vectors.get("queue_ms", {}).get(key),
        pending=vectors.get("pending", {}).get(key),
        rps_peak=vectors.get("rps_peak", {}).get(key),
    )
    return ServiceMetrics(snapshot, "MetricsFresh", f"newest sample {age_s:.0f}s old")
