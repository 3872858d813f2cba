"""Triton's Prometheus text exposition for one pod, from its cumulative counters (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

SUMMARY_QUANTILES = ("0.5", "0.9", "0.95", "0.99")


@dataclass
class PodCounters:
    """Cumulative values a Triton pod exports for one model (names follow Triton 2.51)."""

    success: int = 0
    failure: int = 0
    executions: int = 0
    inferences: int = 0
    request_duration_us: float = 0.0
    queue_duration_us: float = 0.0
    compute_infer_duration_us: float = 0.0
    pending: int = 0
    # Latest summary quantiles of request and queue time, in microseconds.
    request_summary_us: dict[str, float] = field(default_factory=dict)
    queue_summary_us: dict[str, float] = field(default_factory=dict)
    summary_count: int = 0
    summary_sum_us: float = 0.0


def _labels(model: str, **extra: str) -> str:
    pairs = {"model": model, "version": "1", **extra}
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _counter(name: str, help_text: str, model: str, value: float) -> list[str]:
    return [
        f"# HELP {name} {help_text}",
        f"# TYPE {name} counter",
        f"{name}{_labels(model)} {value:g}",
    ]


def render(model: str, pod: PodCounters) -> str:
    """The /metrics body a Triton server with summary_latencies=true would serve."""
    lines: list[str] = []
    lines += [
        "# HELP nv_inference_request_success Number of successful inference requests",
        "# TYPE nv_inference_request_success counter",
        f"nv_inference_request_success{_labels(model)} {pod.success}",
        "# HELP nv_inference_request_failure Number of failed inference requests",
        "# TYPE nv_inference_request_failure counter",
        f"nv_inference_request_failure{_labels(model, reason='REJECTED')} {pod.failure}",
    ]
    lines += _counter("nv_inference_count", "Number of inferences performed", model, pod.inferences)
    lines += _counter(
        "nv_inference_exec_count", "Number of model executions performed", model, pod.executions
    )
    lines += _counter(
        "nv_inference_request_duration_us",
        "Cumulative inference request duration in microseconds",
        model,
        pod.request_duration_us,
    )
    lines += _counter(
        "nv_inference_queue_duration_us",
        "Cumulative inference queuing duration in microseconds",
        model,
        pod.queue_duration_us,
    )
    lines += _counter(
        "nv_inference_compute_infer_duration_us",
        "Cumulative compute inference duration in microseconds",
        model,
        pod.compute_infer_duration_us,
    )
    lines += [
        "# HELP nv_inference_pending_request_count Instantaneous number of pending requests",
        "# TYPE nv_inference_pending_request_count gauge",
        f"nv_inference_pending_request_count{_labels(model)} {pod.pending}",
    ]
    for metric, quantiles in (
        ("nv_inference_request_summary_us", pod.request_summary_us),
        ("nv_inference_queue_summary_us", pod.queue_summary_us),
    ):
        lines += [
            f"# HELP {metric} Summary of latencies in microseconds",
            f"# TYPE {metric} summary",
        ]
        for quantile in SUMMARY_QUANTILES:
            value = quantiles.get(quantile)
            shown = "NaN" if value is None else f"{value:g}"
            lines.append(f"{metric}{_labels(model, quantile=quantile)} {shown}")
        lines.append(f"{metric}_count{_labels(model)} {pod.summary_count}")
        lines.append(f"{metric}_sum{_labels(model)} {pod.summary_sum_us:g}")
    return "\n".join(lines) + "\n"
