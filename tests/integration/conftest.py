"""Fixtures for integration tests: a real Triton serving the example CNN, a real Prometheus.

Nothing here skips: a missing binary fails the test with the command that installs it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_support import BATCHED, EXAMPLE, UNBATCHED

from sloscale_runtime.builder import BuildOptions, build
from sloscale_runtime.errors import TritonError
from sloscale_runtime.triton import TritonServer, find_triton_home, free_port


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("repository")
    build(BuildOptions(EXAMPLE, (1, 3, 32, 32), BATCHED, out))
    build(BuildOptions(EXAMPLE, (1, 3, 32, 32), UNBATCHED, out, dynamic_batching=False))
    return out


@pytest.fixture(scope="session")
def triton(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    try:
        find_triton_home()
    except TritonError as error:
        pytest.fail(f"{error} (integration tests need the real server)")
    with TritonServer(repository, tmp_path_factory.mktemp("triton")) as server:
        yield server


def scrape_config(triton_metrics_port: int) -> str:
    return (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: triton\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{triton_metrics_port}']\n"
    )


@pytest.fixture(scope="session")
def prometheus(triton: TritonServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on loopback scraping the Triton fixture every second; yields its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not on PATH; run `make system-deps` (Debian package prometheus)")
    workdir = tmp_path_factory.mktemp("prometheus")
    (workdir / "prometheus.yml").write_text(scrape_config(triton.ports.metrics))
    port = free_port()
    log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 (closed after the process)
    process = subprocess.Popen(
        [binary, f"--config.file={workdir / 'prometheus.yml'}",
         f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{url}/-/ready", process, workdir / "prometheus.log")
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"prometheus not ready at {url}:\n{log.read_text()[-2000:]}")
