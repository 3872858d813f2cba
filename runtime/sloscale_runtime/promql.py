"""PromQL over Triton's metrics: the expressions the autoscaler evaluates, built from labels.

Latencies come out in milliseconds, rates in requests per second. Label values are escaped, never
pasted raw, and `group_by` lets one query answer for every service at once.
"""

from __future__ import annotations

QUANTILES = {50: "0.5", 90: "0.9", 95: "0.95", 99: "0.99"}  # Triton's summary quantiles


def selector(labels: dict[str, str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in sorted(labels.items())]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sum(expr: str, group_by: tuple[str, ...]) -> str:
    by = f" by ({', '.join(group_by)})" if group_by else ""
    return f"sum{by}({expr})"


def request_rate(labels: dict[str, str], window: str = "1m", group_by: tuple[str, ...] = ()) -> str:
    return _sum(f"rate(nv_inference_request_success{selector(labels)}[{window}])", group_by)


def mean_latency_ms(
    labels: dict[str, str], window: str = "1m", group_by: tuple[str, ...] = ()
) -> str:
    """Mean end-to-end request time from the duration and success counters."""
    duration = _sum(f"rate(nv_inference_request_duration_us{selector(labels)}[{window}])", group_by)
    return f"{duration} / {request_rate(labels, window, group_by)} / 1000"


def mean_queue_ms(
    labels: dict[str, str], window: str = "1m", group_by: tuple[str, ...] = ()
) -> str:
    queue = _sum(f"rate(nv_inference_queue_duration_us{selector(labels)}[{window}])", group_by)
    return f"{queue} / {request_rate(labels, window, group_by)} / 1000"


def latency_quantile_ms(
    labels: dict[str, str], percentile: int, group_by: tuple[str, ...] = ()
) -> str:
    """Worst pod's quantile from Triton's summaries (needs summary_latencies=true)."""
    if percentile not in QUANTILES:
        raise ValueError(f"percentile {percentile} not one of {sorted(QUANTILES)}")
    sel = selector(labels, f'quantile="{QUANTILES[percentile]}"')
    by = f" by ({', '.join(group_by)})" if group_by else ""
    return f"max{by}(nv_inference_request_summary_us{sel}) / 1000"


def pending_requests(labels: dict[str, str], group_by: tuple[str, ...] = ()) -> str:
    return _sum(f"nv_inference_pending_request_count{selector(labels)}", group_by)
