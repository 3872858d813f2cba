"""A real Prometheus scrapes the real Triton; the operator's production PromQL agrees with the load.

User story: the numbers the autoscaler decides on (rate, mean latency from counters, p95 from
Triton's summaries, queue time, pending) are right for a real Triton under a known load.
"""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_api_client import PrometheusConnect
from runtime_support import BATCHED, TRITON_LABELS

from sloscale.autoscale.metrics import PrometheusSource
from sloscale.autoscale.promql import PROM_SERVICE_LABEL, ServiceKey
from sloscale_runtime import loadgen
from sloscale_runtime.triton import TritonServer

pytestmark = pytest.mark.integration
WINDOW_S = 10
LOAD_S = 18.0
CONCURRENCY = 4


def wait_for_scrapes(prom: PrometheusConnect, samples: int = 3) -> None:
    """Until Prometheus holds a few samples of the series: a range that starts before the first
    sample makes rate() extrapolate only half an interval there and read low."""
    expression = f'count_over_time(nv_inference_request_success{{model="{BATCHED}"}}[1m])'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = prom.custom_query(expression)
        if result and float(result[0]["value"][1]) >= samples:
            return
        time.sleep(0.5)
    pytest.fail(f"Prometheus has not scraped Triton's counters: {expression}")


def test_promql_matches_generated_load(triton: TritonServer, prometheus: str) -> None:
    url = triton.ports.http_url
    specs = loadgen.input_specs(loadgen.model_config("http", url, BATCHED))
    make = loadgen.request_factory("http", url, BATCHED, specs)
    prom = PrometheusConnect(url=prometheus, disable_ssl=True)
    loadgen.run_step(make, 1, duration_s=0.2, warmup_s=0.0)  # the series exists from here on
    wait_for_scrapes(prom)
    results: list[loadgen.StepResult] = []
    # Wall-clock timestamps, so that the client's count covers the very window PromQL evaluates.
    load = threading.Thread(target=lambda: results.append(
        loadgen.run_step(make, CONCURRENCY, LOAD_S, warmup_s=0.0, clock=time.time)))
    load.start()
    time.sleep(LOAD_S - 3)
    # 2 s back, so the scrapes at the window's end are stored even when they run late under load;
    # the window then lies inside the load, which began 13 s before it ends.
    at_s = time.time() - 2.0
    key = ServiceKey(TRITON_LABELS["namespace"], TRITON_LABELS[PROM_SERVICE_LABEL])
    fetched = PrometheusSource(prometheus, window_s=WINDOW_S).fetch(at_s)
    snapshot = fetched.for_service(key, "p95", stale_after_s=30).snapshot
    assert fetched.error is None and snapshot is not None, fetched
    observed = {
        "rps": snapshot.rps,
        "mean_ms": snapshot.latency_mean_ms,
        "p95_ms": snapshot.latency_ms,
        "queue_ms": snapshot.queue_ms,
        "pending": snapshot.pending,
    }
    load.join()
    step = results[0]
    in_window = [t for t in step.completed_at if at_s - WINDOW_S < t <= at_s]
    client_rps = len(in_window) / WINDOW_S
    client_mean_ms = sum(step.latencies_ms) / len(step.latencies_ms)
    assert step.errors == 0
    assert abs(observed["rps"] - client_rps) <= 0.10 * client_rps, (observed, client_rps)
    # Server-side times exclude the client and HTTP: positive, never above what the client saw.
    assert 0 < observed["mean_ms"] <= 1.1 * client_mean_ms, (observed, client_mean_ms)
    assert 0 < observed["p95_ms"] <= max(step.latencies_ms), observed
    assert 0 <= observed["queue_ms"] <= observed["mean_ms"], observed
    assert 0 <= observed["pending"] <= CONCURRENCY, observed
