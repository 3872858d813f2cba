"""The production PromQL, evaluated by a real Prometheus scraping emulated Triton pods.

User story: the operator reads every service's rate, latency, queue time and backlog in one
batch of queries, and tells a stopped Prometheus or a vanished service from a quiet one.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hack.devtools.prometheus import LocalPrometheus, scrape_config
from hack.emulator.exposition import PodCounters
from hack.emulator.server import EmulatedPod, EmulatorServer, PodKey, Registry
from sloscale.autoscale.metrics import PrometheusSource
from sloscale.autoscale.promql import ServiceKey

pytestmark = pytest.mark.integration

RATE_PER_POD = {"a-0": 20, "a-1": 28, "b-0": 4}  # per second; whole requests per 0.25 s tick
SERVICE_OF = {"a-0": "alpha", "a-1": "alpha", "b-0": "beta"}
LATENCY_US = {"a-0": 40_000.0, "a-1": 60_000.0, "b-0": 10_000.0}
SCRAPE_S = 1
P95_US = {"a-0": 90_000.0, "a-1": 150_000.0, "b-0": 20_000.0}


def _drive(registry: Registry, stop: threading.Event) -> None:
    """Advance each pod's counters by what its rate owes since the last step, as Triton would
    under a steady load (by elapsed time, so a late thread on a busy machine loses nothing)."""
    counters = {pod: PodCounters() for pod in RATE_PER_POD}
    owed = dict.fromkeys(RATE_PER_POD, 0.0)
    last = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        for pod, rate in RATE_PER_POD.items():
            owed[pod] += rate * (now - last)
            done, owed[pod] = int(owed[pod]), owed[pod] - int(owed[pod])
            c = counters[pod]
            c.success += done
            c.request_duration_us += done * LATENCY_US[pod]
            c.queue_duration_us += done * 2_000.0
            c.pending = 3 if pod == "a-1" else 0
            c.request_summary_us = {"0.95": P95_US[pod], "0.99": P95_US[pod] * 1.5}
            registry.update(PodKey("prod", pod), EmulatedPod(SERVICE_OF[pod], "m", c))
        last = now
        stop.wait(0.25)


def _wait_for_full_window(prom_url: str, window_s: int) -> None:
    """Until Prometheus holds samples over the whole rate window: a window that begins before
    the first scrape makes rate() read low (it extrapolates only half an interval there)."""
    from prometheus_api_client import PrometheusConnect

    client = PrometheusConnect(url=prom_url, disable_ssl=True)
    query = f"min(count_over_time(nv_inference_request_success[{window_s + 3}s]))"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = client.custom_query(query)
        if result and float(result[0]["value"][1]) >= window_s + 2:
            return
        time.sleep(0.5)
    pytest.fail(f"Prometheus never held {window_s + 2} samples of every pod")


@pytest.fixture()
def prometheus_over_emulator(tmp_path: Path):  # type: ignore[no-untyped-def]
    registry = Registry()
    server = EmulatorServer(registry).start()
    stop = threading.Event()
    driver = threading.Thread(target=_drive, args=(registry, stop), daemon=True)
    driver.start()
    config = scrape_config(SCRAPE_S, http_sd_urls=[f"http://{server.address}/targets"])
    prom = LocalPrometheus(tmp_path / "prom", config).start()
    try:
        yield prom, registry
    finally:
        stop.set()
        prom.stop()
        server.stop()


def test_batched_queries_give_each_services_numbers(prometheus_over_emulator) -> None:  # type: ignore[no-untyped-def]
    prom, _ = prometheus_over_emulator
    source = PrometheusSource(prom.url, window_s=10, scrape_s=SCRAPE_S)
    _wait_for_full_window(prom.url, 10)
    fetched = source.fetch(time.time())
    assert fetched.error is None
    assert len(fetched.vectors) == 8  # one query per metric, for every service at once

    alpha = fetched.for_service(ServiceKey("prod", "alpha"), "p95", stale_after_s=30).snapshot
    beta = fetched.for_service(ServiceKey("prod", "beta"), "p99", stale_after_s=30).snapshot
    assert alpha is not None and beta is not None
    assert alpha.rps == pytest.approx(48.0, rel=0.10)
    assert beta.rps == pytest.approx(4.0, rel=0.10)
    # Mean from counters: rate-weighted (20 x 40 ms + 28 x 60 ms) / 48 = 51.7 ms.
    assert alpha.latency_mean_ms == pytest.approx(2480 / 48, rel=0.05)
    assert alpha.latency_ms == pytest.approx(150.0)  # max of the pods' p95
    assert beta.latency_ms == pytest.approx(30.0)  # p99 = 1.5 x 20 ms
    assert alpha.queue_ms == pytest.approx(2.0, rel=0.05)
    assert alpha.pending == 3
    # A steady load: its peak rate between two scrapes is its rate (the subquery is valid PromQL).
    assert alpha.rps_peak == pytest.approx(48.0, rel=0.25)

    missing = fetched.for_service(ServiceKey("prod", "gamma"), "p95", stale_after_s=30)
    assert (missing.available, missing.reason) == (False, "NoSamples")


def test_stopped_prometheus_is_reported_not_raised(prometheus_over_emulator) -> None:  # type: ignore[no-untyped-def]
    prom, _ = prometheus_over_emulator
    source = PrometheusSource(prom.url, window_s=10, timeout_s=2)
    prom.stop()
    fetched = source.fetch(time.time())
    assert fetched.error is not None
    result = fetched.for_service(ServiceKey("prod", "alpha"), "p95", stale_after_s=30)
    assert (result.available, result.reason) == (False, "PrometheusUnavailable")
    assert result.message == f"cannot connect to Prometheus at {prom.url} (connection refused)"


def test_backtest_replays_a_real_range(prometheus_over_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sloscale.cli import main

    prom, _ = prometheus_over_emulator
    time.sleep(16)
    end = time.time()
    spec = tmp_path / "alpha.yaml"
    spec.write_text(
        "apiVersion: serving.sloscale.io/v1alpha1\nkind: InferenceService\n"
        "metadata: {name: alpha, namespace: prod}\n"
        "spec: {autoscaling: {enabled: true, interval: 2s, policy: keda,\n"
        "  objective: {targetMs: 100, window: 10s}, capacityProfile: {maxRpsPerReplica: 10}}}\n"
    )
    png = tmp_path / "bt.png"
    code = main(
        ["backtest", "--prometheus", prom.url, "--inferenceservice", "prod/alpha",
         "--from", str(end - 4), "--to", str(end), "--spec", str(spec), "--png", str(png)]
    )  # fmt: skip
    assert code == 0
    assert png.stat().st_size > 10_000
    from sloscale.autoscale.backtest import ACTUAL_PODS_QUERY, replay
    from sloscale.autoscale.config import parse_autoscaling
    from sloscale.autoscale.metrics import PrometheusSource

    autoscaling = {
        "policy": "keda",
        "interval": "2s",
        "objective": {"targetMs": 100, "window": "10s"},
        "capacityProfile": {"maxRpsPerReplica": 10},
    }
    source = PrometheusSource(prom.url, window_s=10)
    matrices = source.fetch_range(end - 4, end, 2, {"actual_pods": ACTUAL_PODS_QUERY})
    rows = replay(matrices, ServiceKey("prod", "alpha"), parse_autoscaling(autoscaling), 30)
    assert len(rows) >= 2
    assert {r.actual for r in rows} == {2}  # the two emulated alpha pods
    # 48 rps at 7 rps a replica (KEDA threshold = 0.7 x capacity) wants ceil(48 / 7) = 7;
    # the HPA behaviour KEDA runs under may take it there in more than one step.
    assert 2 < rows[-1].recommended <= 7
