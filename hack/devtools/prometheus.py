"""A real Prometheus (Debian's package) on loopback, for the demo and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml


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
    and inferenceservice to a real Triton pod.
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
