"""Real-time emulator run: replays arrivals against the Ready pods the API reports."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hack.emulator.server import EmulatedPod, PodKey, Registry
from hack.emulator.service import EmulatedService
from sloscale.api import SERVICE_LABEL

log = logging.getLogger(__name__)


def ready_pod_names(pods: list[dict[str, Any]]) -> list[str]:
    """Pods Ready as the kubelet (kwok) reports them, not being deleted."""
    names = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        conditions = pod.get("status", {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            names.append(pod["metadata"]["name"])
    return names


@dataclass
class ReplayTarget:
    namespace: str
    service: str
    model: str


class EmulatorRunner:
    """Every `step_s`: new arrivals to the service, pods refreshed every `pods_every_s`."""

    def __init__(
        self,
        target: ReplayTarget,
        service: EmulatedService,
        arrivals_s: np.ndarray,
        registry: Registry,
        list_pods: Callable[[], list[dict[str, Any]]],
        step_s: float = 0.25,
        pods_every_s: float = 1.0,
    ) -> None:
        self.target, self.service, self.registry = target, service, registry
        self.arrivals_s = np.sort(np.asarray(arrivals_s, dtype=np.float64))
        self.list_pods, self.step_s, self.pods_every_s = list_pods, step_s, pods_every_s
        self.started_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="emulator")
        self.lock = threading.Lock()  # held while the service's state changes

    @property
    def duration_s(self) -> float:
        return float(self.arrivals_s[-1]) if len(self.arrivals_s) else 0.0

    def elapsed_s(self) -> float:
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at

    def start(self) -> EmulatorRunner:
        self.started_at = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def done(self) -> bool:
        return self.elapsed_s() > self.duration_s + 5.0 or not self._thread.is_alive()

    def _sync_pods(self) -> None:
        try:
            names = ready_pod_names(self.list_pods())
        except Exception as err:  # noqa: BLE001 - keep the last known pods on API hiccups
            log.warning("emulator could not list pods: %s", err)
            return
        with self.lock:
            self.service.set_ready_pods(names)
            pods = {
                PodKey(self.target.namespace, name): EmulatedPod(
                    self.target.service, self.target.model, replica.counters
                )
                for name, replica in self.service.replicas.items()
            }
        self.registry.set_service_pods(self.target.namespace, self.target.service, pods)

    def _run(self) -> None:
        sent, last_sync = 0, float("-inf")
        while not self._stop.is_set():
            now = self.elapsed_s()
            if now - last_sync >= self.pods_every_s:
                self._sync_pods()
                last_sync = now
            upto = int(np.searchsorted(self.arrivals_s, now, side="right"))
            with self.lock:
                self.service.step(self.arrivals_s[sent:upto], now)
            sent = upto
            if now > self.duration_s + 5.0:
                return
            self._stop.wait(self.step_s)


def kube_pod_lister(api_client: Any, namespace: str, service: str) -> Callable[[], list[dict]]:
    """A pod lister for one service, raw JSON (no model objects: cheap at 4 calls a second)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)

    def list_pods() -> list[dict[str, Any]]:
        response = core.list_namespaced_pod(
            namespace, label_selector=f"{SERVICE_LABEL}={service}", _preload_content=False
        )
        return list(json.loads(response.data)["items"])

    return list_pods
