"""Reading one model's counters from a Triton /metrics page."""

from __future__ import annotations

import pytest

from sloscale_runtime import scrape

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
