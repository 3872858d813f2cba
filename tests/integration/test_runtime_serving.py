"""The example CNN built by runtime/, served by a real Triton: numbers, batching, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from runtime_support import BATCHED, EXAMPLE, ONNX, ROOT, UNBATCHED

from sloscale_runtime import capacity, loadgen, scrape
from sloscale_runtime.errors import TritonError
from sloscale_runtime.loader import load_model
from sloscale_runtime.triton import TritonServer

pytestmark = pytest.mark.integration
# Triton runs the same TorchScript graph on the same CPU; the bound covers reassociated sums.
RTOL, ATOL = 1e-4, 1e-5


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("model", [BATCHED, UNBATCHED, ONNX])
def test_outputs_match_torch_eager(triton: TritonServer, protocol: str, model: str) -> None:
    images = np.random.default_rng(7).standard_normal((3, 3, 32, 32)).astype(np.float32)
    url = triton.ports.http_url if protocol == "http" else triton.ports.grpc_url
    got = loadgen.infer(protocol, url, model, images)
    with torch.inference_mode():
        expected = load_model(EXAMPLE)(torch.from_numpy(images)).numpy()
    assert got.shape == (3, 10)
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("model", "batches"),
                         [(BATCHED, True), (UNBATCHED, False), (ONNX, True)])
def test_dynamic_batching_really_batches(triton: TritonServer, model: str, batches: bool) -> None:
    names = {scrape.EXEC_COUNT, scrape.REQUEST_SUCCESS}
    before = scrape.model_counters(triton.ports.metrics_url, model, names)
    specs = loadgen.input_specs(loadgen.model_config("http", triton.ports.http_url, model))
    make = loadgen.request_factory("http", triton.ports.http_url, model, specs)
    step = loadgen.run_step(make, concurrency=8, duration_s=2.0, warmup_s=0.5)
    after = scrape.model_counters(triton.ports.metrics_url, model, names)
    executions = after[scrape.EXEC_COUNT] - before.get(scrape.EXEC_COUNT, 0)
    successes = after[scrape.REQUEST_SUCCESS] - before.get(scrape.REQUEST_SUCCESS, 0)
    assert step.errors == 0 and successes >= len(step.latencies_ms) > 0
    if batches:
        assert executions < successes
    else:
        assert executions == successes


def run_cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sloscale.cli", "runtime", *args],
                          capture_output=True, text=True, timeout=timeout_s, cwd=ROOT)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_profile_cli_writes_profile_and_plot(triton: TritonServer, tmp_path: Path,
                                             protocol: str) -> None:
    out = tmp_path / "profile.json"
    url = triton.ports.http_url if protocol == "http" else triton.ports.grpc_url
    result = run_cli("profile", "--url", url, "--protocol", protocol, "--model", BATCHED,
                     "--slo-ms", "1000", "--percentile", "95", "--out", str(out),
                     "--levels", "1,2", "--step-s", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    profile = capacity.from_json(out.read_text(), source=str(out))
    assert [p.concurrency for p in profile.points] == [1, 2]
    assert profile.max_rps_at_target == max(p.throughput_rps for p in profile.points) > 0
    assert profile.batching["dynamic"] is True and profile.model["name"] == BATCHED
    assert profile.load["protocol"] == protocol
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_cli_names_unknown_model(triton: TritonServer, tmp_path: Path) -> None:
    result = run_cli("profile", "--url", triton.ports.http_url, "--model", "nope",
                     "--slo-ms", "10", "--out", str(tmp_path / "p.json"), "--no-progress")
    assert result.returncode == 1 and "'nope'" in result.stderr
    assert not (tmp_path / "p.json").exists()


def test_serve_cli_prints_urls_and_stops_on_ctrl_c(repository: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sloscale.cli", "runtime", "serve", "--repository",
         str(repository)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env=dict(os.environ),
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "Ctrl-C" in line:
            break
    http_url = next(line.split()[-1] for line in lines if line.strip().startswith("http "))
    with urllib.request.urlopen(f"{http_url}/v2/models/{BATCHED}/ready") as response:
        assert response.status == 200
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and "Triton stopped." in rest


def test_broken_model_fails_start_with_triton_log(tmp_path: Path) -> None:
    model_dir = tmp_path / "repo" / "broken" / "1"
    model_dir.mkdir(parents=True)
    (model_dir / "model.py").write_text("raise ImportError('missing dependency xyz')\n")
    (model_dir.parent / "config.pbtxt").write_text('backend: "python"\n')
    with pytest.raises(TritonError, match="xyz"):
        TritonServer(tmp_path / "repo", tmp_path).start(ready_timeout_s=60)
