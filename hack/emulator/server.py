"""HTTP side of the emulator: one /metrics page per emulated pod, and Prometheus discovery.

Prometheus finds the pods through `http_sd_configs` pointed at `/targets`; each target
carries the labels Prometheus' Kubernetes pod discovery would give a Triton pod
(namespace, pod, inferenceservice), so the operator's production PromQL runs unchanged.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from hack.emulator.exposition import PodCounters, render
from sloscale.autoscale.promql import PROM_SERVICE_LABEL


@dataclass(frozen=True, order=True)
class PodKey:
    namespace: str
    pod: str


@dataclass
class EmulatedPod:
    service: str
    model: str
    counters: PodCounters


class Registry:
    """The pods being emulated, shared between the load driver and the HTTP handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pods: dict[PodKey, EmulatedPod] = {}

    def set_service_pods(
        self, namespace: str, service: str, pods: dict[PodKey, EmulatedPod]
    ) -> None:
        """Replace one service's pods, leaving other services' pods alone."""
        with self._lock:
            kept = {
                key: pod
                for key, pod in self._pods.items()
                if not (key.namespace == namespace and pod.service == service)
            }
            self._pods = {**kept, **pods}

    def update(self, key: PodKey, pod: EmulatedPod) -> None:
        with self._lock:
            self._pods[key] = pod

    def remove(self, key: PodKey) -> None:
        with self._lock:
            self._pods.pop(key, None)

    def snapshot(self) -> dict[PodKey, EmulatedPod]:
        with self._lock:
            return dict(self._pods)

    def page(self, key: PodKey) -> str | None:
        with self._lock:
            pod = self._pods.get(key)
            return None if pod is None else render(pod.model, pod.counters)


def targets(registry: Registry, address: str) -> list[dict]:
    """http_sd answer: one target group per pod, with its metrics path as a label."""
    return [
        {
            "targets": [address],
            "labels": {
                "__metrics_path__": f"/metrics/{key.namespace}/{key.pod}",
                "namespace": key.namespace,
                "pod": key.pod,
                PROM_SERVICE_LABEL: pod.service,
            },
        }
        for key, pod in sorted(registry.snapshot().items())
    ]


class EmulatorServer:
    """Serves the registry on 127.0.0.1 (port 0: the OS picks one)."""

    def __init__(self, registry: Registry, port: int = 0) -> None:
        self.registry = registry
        handler = _handler_for(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = int(self._httpd.server_address[1])
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> EmulatorServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler_for(server: EmulatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            parts = [unquote(p) for p in self.path.split("?")[0].strip("/").split("/")]
            if parts == ["targets"]:
                self._send(200, json.dumps(targets(server.registry, server.address)), "json")
            elif len(parts) == 3 and parts[0] == "metrics":
                page = server.registry.page(PodKey(parts[1], parts[2]))
                if page is None:
                    self._send(404, "no such pod\n", "plain")
                else:
                    self._send(200, page, "plain; version=0.0.4")
            else:
                self._send(404, "not found\n", "plain")

        def _send(self, status: int, body: str, kind: str) -> None:
            data = body.encode()
            self.send_response(status)
            family = "application" if kind == "json" else "text"
            self.send_header("Content-Type", f"{family}/{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            # The scraper may hang up (Prometheus stopping): nobody to answer then.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return  # Prometheus scrapes every few seconds: keep the demo's terminal quiet

    return Handler
