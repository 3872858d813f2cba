"""A real Prometheus (Debian's package) on loopback, for the demo and the tests."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from sloscale.api import SERVICE_LABEL
from sloscale.autoscale.promql import PROM_SERVICE_LABEL


class PrometheusNotFound(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_config(
    scrape_interval_s: float,
    http_sd_urls: list[str] | None = None,
    static_targets: dict[str, list[str]] | None = None,
    target_labels: dict[str, str] | None = None,
    metric_relabel_configs: list[dict] | None = None,
) -> dict:
    """Prometheus configuration: discovery URLs (the emulator) and static jobs (Triton).

    `target_labels` are added to the static targets, as pod discovery would add namespace
    and inferenceservice to a real Triton pod (PodDiscovery, below, serves real pods to
    `http_sd_urls`).
    """
    interval = f"{max(1, round(scrape_interval_s))}s"
    jobs: list[dict] = []
    for index, url in enumerate(http_sd_urls or []):
        # Pods come and go every few seconds: look for them as often as we scrape.
        discovery = {"url": url, "refresh_interval": interval}
        jobs.append({"job_name": f"emulated-triton-{index}", "http_sd_configs": [discovery]})
    for job, addresses in (static_targets or {}).items():
        static = {"targets": addresses, "labels": dict(target_labels or {})}
        jobs.append(
            {
                "job_name": job,
                "static_configs": [static],
                "metric_relabel_configs": list(metric_relabel_configs or []),
            }
        )
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": jobs,
    }


class PodDiscovery:
    """Prometheus's HTTP service discovery for real pods: every pod of `namespace` with a
    container port named `metrics` and an address, labelled as the ServiceMonitor we render
    labels it (namespace, inferenceservice, pod). Debian's Prometheus is built without
    kubernetes_sd_configs, so this small server on 127.0.0.1 lists the pods for it."""

    def __init__(self, list_pods: Callable[[], list[dict]], namespace: str) -> None:
        self.list_pods, self.namespace = list_pods, namespace
        discovery = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                body = json.dumps(discovery.targets()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/targets"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def targets(self) -> list[dict]:
        found = []
        for pod in self.list_pods():
            address = pod.get("status", {}).get("podIP")
            ports = [port["containerPort"] for container in pod["spec"]["containers"]
                     for port in container.get("ports", []) if port.get("name") == "metrics"]
            if not address or not ports:
                continue
            labels = pod["metadata"].get("labels", {})
            found.append({"targets": [f"{address}:{ports[0]}"], "labels": {
                "namespace": self.namespace, "pod": pod["metadata"]["name"],
                PROM_SERVICE_LABEL: labels.get(SERVICE_LABEL, "")}})
        return found

    def start(self) -> PodDiscovery:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class LocalPrometheus:
    """Starts `prometheus` on 127.0.0.1 with a generated config; stop() ends it."""

    def __init__(self, root: Path, config: dict, port: int | None = None) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusNotFound(
                "`prometheus` is not on PATH: run `make install` (it installs Debian's "
                "prometheus package) or `apt-get install prometheus`"
            )
        self.binary = binary
        self.root = Path(root)
        self.config = config
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> LocalPrometheus:
        self.root.mkdir(parents=True, exist_ok=True)
        config_path = self.root / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        log = open(self.root / "prometheus.log", "ab")  # noqa: SIM115 - lives with the process
        self._proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited; see {self.root / 'prometheus.log'}")
            if self._ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus not ready after {timeout_s}s")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
