"""Starts and stops the one autoscaler loop inside the operator (kopf startup/cleanup)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kopf

from sloscale.api import SERVICE_LABEL
from sloscale.autoscale.loop import AutoscalerLoop, LoopSettings
from sloscale.autoscale.metrics import PrometheusSource
from sloscale.autoscale.telemetry import AutoscalerMetrics

log = logging.getLogger(__name__)


@dataclass
class AutoscalerWiring:
    """Set by `sloscale run`; None prometheus_url means autoscaling is not started."""

    prometheus_url: str | None = None
    metrics_address: str | None = None
    tick_s: float = 5.0
    namespaces: list[str] | None = None
    # Multi-replica mode: the replica that may write (None: standalone, always this one).
    active: Callable[[], bool] | None = None
    loop: AutoscalerLoop | None = None
    task: asyncio.Task[None] | None = None
    stopped: asyncio.Event | None = None


WIRING = AutoscalerWiring()


def _serve_metrics(metrics: AutoscalerMetrics, address: str) -> None:
    from prometheus_client import start_http_server

    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=metrics.registry)
    log.info("operator metrics on http://%s/metrics", address)


@kopf.on.startup()
async def start_autoscaler(**_: Any) -> None:
    from sloscale.autoscale.kube import KubeAutoscalerClient
    from sloscale.controller.handlers import Wiring

    metrics = AutoscalerMetrics()
    if WIRING.metrics_address:
        _serve_metrics(metrics, WIRING.metrics_address)
    if WIRING.prometheus_url is None:
        log.warning("no --prometheus-url: autoscaling is off (spec.replicas rules)")
        return
    assert Wiring.kube is not None, "sloscale run wires the Kubernetes adapter first"
    kube = KubeAutoscalerClient(Wiring.kube, WIRING.namespaces)
    kube.start_informers(SERVICE_LABEL)
    WIRING.loop = AutoscalerLoop(
        PrometheusSource(WIRING.prometheus_url),
        kube,
        metrics,
        LoopSettings(tick_s=WIRING.tick_s),
        active=WIRING.active,
    )
    WIRING.stopped = asyncio.Event()
    WIRING.task = asyncio.create_task(WIRING.loop.run_forever(WIRING.stopped))
    log.info("autoscaler started: Prometheus %s, tick %.1fs", WIRING.prometheus_url, WIRING.tick_s)


@kopf.on.cleanup()
async def stop_autoscaler(**_: Any) -> None:
    if WIRING.task is None or WIRING.stopped is None:
        return
    WIRING.stopped.set()
    if WIRING.loop is not None:
        WIRING.loop.kube.stop_informers()
    try:
        await asyncio.wait_for(WIRING.task, timeout=10)
    except TimeoutError:
        WIRING.task.cancel()
