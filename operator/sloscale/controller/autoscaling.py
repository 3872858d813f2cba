"""Starts and stops the one autoscaler loop inside the operator (kopf startup/cleanup)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kopf

from sloscale.api import SERVICE_LABEL
from sloscale.autoscale.kube import KubeAutoscalerClient
from sloscale.autoscale.loop import AutoscalerLoop, LoopSettings
from sloscale.autoscale.metrics import PrometheusSource
from sloscale.autoscale.promql import SCRAPE_S
from sloscale.autoscale.telemetry import AutoscalerMetrics
from sloscale.controller.shard_loop import owns_service
from sloscale.kube.watched import all_objects

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoscalerOptions:
    """What `sloscale run` puts in kopf's memo; no prometheus_url: autoscaling is not started."""

    prometheus_url: str | None = None
    metrics_address: str | None = None
    tick_s: float = 5.0
    scrape_interval_s: float = SCRAPE_S  # how often Prometheus scrapes the pods
    namespaces: list[str] | None = None
    # Multi-replica mode: the replica that may write (None: standalone, always this one).
    active: Callable[[], bool] | None = None


@dataclass
class RunningAutoscaler:
    """The started loop, kept in memo for cleanup to stop."""

    loop: AutoscalerLoop
    kube: KubeAutoscalerClient
    task: asyncio.Task[None]
    stopped: asyncio.Event


def _serve_metrics(metrics: AutoscalerMetrics, address: str) -> None:
    from prometheus_client import start_http_server

    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=metrics.registry)
    log.info("operator metrics on http://%s/metrics", address)


@kopf.on.startup()
async def start_autoscaler(memo: kopf.Memo,
                           inferenceservices: kopf.Index[tuple[str, str], dict[str, Any]],
                           owned_deployments: kopf.Index[tuple[str, str], dict[str, Any]],
                           **_: Any) -> None:
    options: AutoscalerOptions = memo.autoscaler_options
    metrics = AutoscalerMetrics()
    if options.metrics_address:
        _serve_metrics(metrics, options.metrics_address)
    if options.prometheus_url is None:
        log.warning("no --prometheus-url: autoscaling is off (spec.replicas rules)")
        return
    # The tick's services and Deployments are kopf's own watches of them (indexes.py).
    # Sharded, the tick's services are those of the shards this process holds now.
    kube = KubeAutoscalerClient(memo.kube, options.namespaces,
                                services=lambda: [
                                    isvc for isvc in all_objects(inferenceservices)
                                    if owns_service(memo, isvc["metadata"]["namespace"],
                                                    isvc["metadata"]["name"])],
                                deployments=lambda: all_objects(owned_deployments))
    kube.start_informers(SERVICE_LABEL)
    loop = AutoscalerLoop(
        PrometheusSource(options.prometheus_url, scrape_s=options.scrape_interval_s),
        kube,
        metrics,
        LoopSettings(tick_s=options.tick_s),
        active=options.active,
    )
    stopped = asyncio.Event()
    memo.autoscaler = RunningAutoscaler(
        loop, kube, asyncio.create_task(loop.run_forever(stopped)), stopped)
    log.info("autoscaler started: Prometheus %s, tick %.1fs", options.prometheus_url,
             options.tick_s)


@kopf.on.cleanup()
async def stop_autoscaler(memo: kopf.Memo, **_: Any) -> None:
    running: RunningAutoscaler | None = memo.get("autoscaler")
    if running is None:
        return
    running.stopped.set()
    running.kube.stop_informers()
    try:
        await asyncio.wait_for(running.task, timeout=10)
    except TimeoutError:
        running.task.cancel()
