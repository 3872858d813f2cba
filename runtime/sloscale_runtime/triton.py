"""Local Triton: find the tritonserver binary of the nvidia-pytriton wheel, start it, stop it.

The wheel pins numpy<2 while sloscale pins numpy 2, so it is not installed into the venv:
hack/install-system-deps.sh unpacks it (pip --no-deps) into $SLOSCALE_CACHE/pytriton-<version>.
The python backend needs its stub for this interpreter's version inside the backend folder;
we assemble such a folder from symlinks instead of copying or touching the wheel.
"""

from __future__ import annotations

import os
import signal
import site
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sloscale_runtime.batch_trace import trace_config_args
from sloscale_runtime.errors import TritonError

PYTRITON_VERSION = "0.7.0"
INSTALL_HINT = "run `make install` (hack/install-system-deps.sh installs it)"


@dataclass(frozen=True)
class Ports:
    http: int
    grpc: int
    metrics: int

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics}/metrics"


def cache_dir() -> Path:
    return Path(os.environ.get("SLOSCALE_CACHE", Path.home() / ".cache" / "sloscale"))


def find_triton_home() -> Path:
    """The wheel's `pytriton/tritonserver` folder ($SLOSCALE_TRITON_HOME overrides)."""
    override = os.environ.get("SLOSCALE_TRITON_HOME")
    home = (
        Path(override)
        if override
        else cache_dir() / f"pytriton-{PYTRITON_VERSION}" / "pytriton" / "tritonserver"
    )
    if not (home / "bin" / "tritonserver").is_file():
        raise TritonError(f"tritonserver not found under {home}; {INSTALL_HINT}")
    return home


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports() -> Ports:
    return Ports(free_port(), free_port(), free_port())


def prepare_backends(home: Path, workdir: Path, python_version: str) -> Path:
    """A backend folder whose python backend has the stub built for `python_version` (3.11)."""
    stub = home / "python_backend_stubs" / python_version / "triton_python_backend_stub"
    if not stub.is_file():
        raise TritonError(f"no python backend stub for Python {python_version} at {stub}")
    python_dir = workdir / "backends" / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for source in [stub, *sorted((home / "backends" / "python").glob("*.*"))]:
        link = python_dir / source.name
        if not link.exists():
            link.symlink_to(source)
    return workdir / "backends"


def server_command(
    binary: Path, repository: Path, backends: Path, ports: Ports, log_verbose: int = 0,
    trace_file: Path | None = None,
) -> list[str]:
    """tritonserver's command line: loopback only, summaries on, fail fast on a bad model;
    with a trace file, tracing that starts off (sloscale_runtime.batch_trace switches it on)."""
    return [
        str(binary),
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        "--http-address=127.0.0.1",
        f"--http-port={ports.http}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={ports.grpc}",
        "--metrics-address=127.0.0.1",
        f"--metrics-port={ports.metrics}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=false",
        "--metrics-config=summary_latencies=true",
        "--metrics-interval-ms=1000",
        "--exit-on-error=true",
        "--strict-readiness=true",
        "--exit-timeout-secs=5",
        f"--log-verbose={log_verbose}",
        *(trace_config_args(trace_file) if trace_file is not None else []),
    ]


def server_env(base: dict[str, str]) -> dict[str, str]:
    """Let the stub embed this interpreter and import torch/numpy from this venv."""
    env = dict(base)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, base.get("LD_LIBRARY_PATH")) if p)
    env["PYTHONHOME"] = sys.base_prefix
    paths = [*site.getsitepackages(), base.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def error_summary(log_text: str, max_lines: int = 30) -> str:
    """glog error lines (`E1122 ...`) and the final `error:` line; the tail when there are none."""
    lines = log_text.splitlines()
    errors = [
        line for line in lines
        if (line[:1] == "E" and line[1:5].isdigit()) or line.startswith("error:")
    ]
    return "\n".join((errors or lines)[-max_lines:])


class TritonServer:
    """One tritonserver process on loopback; use as a context manager."""

    def __init__(self, repository: Path, workdir: Path, ports: Ports | None = None) -> None:
        if not repository.is_dir():
            raise TritonError(f"--repository: not a folder: {repository}")
        self.repository = repository.resolve()
        self.workdir = workdir
        self.ports = ports or free_ports()
        self.log_path = workdir / "tritonserver.log"
        self.trace_path = workdir / "traces" / "trace.json"  # one file per trace, when on
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float = 120.0) -> TritonServer:
        home = find_triton_home()
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        backends = prepare_backends(home, self.workdir, version)
        self.trace_path.parent.mkdir(parents=True, exist_ok=True)
        command = server_command(home / "bin" / "tritonserver", self.repository, backends,
                                 self.ports, trace_file=self.trace_path)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=server_env(dict(os.environ))
            )
        self._wait_ready(ready_timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://{self.ports.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                code = self.process.returncode
                raise TritonError(f"tritonserver exited ({code}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        raise TritonError(f"tritonserver not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """Triton's error lines (why a model failed to load), else the last lines of its log."""
        if not self.log_path.exists():
            return ""
        return error_summary(self.log_path.read_text(errors="replace"), lines)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGINT first (Triton unloads models and exits cleanly), SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
