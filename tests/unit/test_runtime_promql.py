"""PromQL strings over Triton metrics (exact text, escaping, grouping) and /metrics parsing."""

from __future__ import annotations

import pytest

from sloscale_runtime import promql, scrape

M = {"model": "cnn"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (promql.request_rate(M, "30s"),
         'sum(rate(nv_inference_request_success{model="cnn"}[30s]))'),
        (promql.request_rate({"namespace": "a", "model": "b"}, "1m", ("namespace",)),
         'sum by (namespace)(rate(nv_inference_request_success{model="b",namespace="a"}[1m]))'),
        (promql.mean_latency_ms(M, "1m"),
         'sum(rate(nv_inference_request_duration_us{model="cnn"}[1m])) / '
         'sum(rate(nv_inference_request_success{model="cnn"}[1m])) / 1000'),
        (promql.mean_queue_ms(M, "1m"),
         'sum(rate(nv_inference_queue_duration_us{model="cnn"}[1m])) / '
         'sum(rate(nv_inference_request_success{model="cnn"}[1m])) / 1000'),
        (promql.latency_quantile_ms(M, 95),
         'max(nv_inference_request_summary_us{model="cnn",quantile="0.95"}) / 1000'),
        (promql.latency_quantile_ms(M, 99, ("service",)),
         'max by (service)(nv_inference_request_summary_us{model="cnn",quantile="0.99"}) / 1000'),
        (promql.pending_requests(M), 'sum(nv_inference_pending_request_count{model="cnn"})'),
        (promql.pending_requests({}), "sum(nv_inference_pending_request_count{})"),
    ],
)
def test_expressions(expression: str, expected: str) -> None:
    assert expression == expected


def test_label_values_are_escaped() -> None:
    assert promql.selector({"model": 'a"}) or vector(1) #\\'}) == (
        '{model="a\\"}) or vector(1) #\\\\"}'
    )


def test_unknown_quantile() -> None:
    with pytest.raises(ValueError, match="percentile 42"):
        promql.latency_quantile_ms(M, 42)


METRICS = """# HELP nv_inference_exec_count Number of model executions
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="cnn",version="1"} 10
nv_inference_exec_count{model="cnn",version="2"} 5
nv_inference_exec_count{model="other",version="1"} 99
# HELP nv_inference_request_success Number of successful requests
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="cnn",version="1"} 40
# HELP nv_inference_request_summary_us Summary
# TYPE nv_inference_request_summary_us summary
nv_inference_request_summary_us{model="cnn",version="1",quantile="0.5"} 900
"""


@pytest.mark.parametrize(
    ("model", "names", "expected"),
    [
        ("cnn", {scrape.EXEC_COUNT, scrape.REQUEST_SUCCESS},
         {scrape.EXEC_COUNT: 15.0, scrape.REQUEST_SUCCESS: 40.0}),
        ("other", {scrape.EXEC_COUNT, scrape.REQUEST_SUCCESS}, {scrape.EXEC_COUNT: 99.0}),
        ("missing", {scrape.EXEC_COUNT}, {}),
    ],
)
def test_parse_model_counters(model: str, names: set[str], expected: dict[str, float]) -> None:
    assert scrape.parse_model_counters(METRICS, model, names) == expected
