"""Read one model's counters straight from a Triton /metrics endpoint (no Prometheus needed)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

EXEC_COUNT = "nv_inference_exec_count"
REQUEST_SUCCESS = "nv_inference_request_success"
COMPUTE_INFER_US = "nv_inference_compute_infer_duration_us"


def parse_model_counters(text: str, model: str, names: set[str]) -> dict[str, float]:
    """Counter values of `model` summed over versions; the parser's `_total` suffix ignored."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in names:
            continue
        for sample in family.samples:
            if sample.labels.get("model") == model:
                values[family.name] = values.get(family.name, 0.0) + sample.value
    return values


def model_counters(metrics_url: str, model: str, names: set[str]) -> dict[str, float]:
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        return parse_model_counters(response.read().decode(), model, names)
