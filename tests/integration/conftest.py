"""Fixtures for integration tests: a real Triton serving the example CNN and the simulator's
fidelity model, a real Prometheus.

Nothing here skips: a missing binary fails the test with the command that installs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_support import BATCHED, EXAMPLE, ONNX, TRITON_LABELS, UNBATCHED

from hack.devtools.prometheus import LocalPrometheus, PrometheusNotFound, scrape_config
from sloscale.sim import fidelity_bench
from sloscale_runtime.builder import BuildOptions, build
from sloscale_runtime.errors import TritonError
from sloscale_runtime.triton import TritonServer, find_triton_home


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("repository")
    build(BuildOptions(EXAMPLE, (1, 3, 32, 32), BATCHED, out))
    build(BuildOptions(EXAMPLE, (1, 3, 32, 32), UNBATCHED, out, dynamic_batching=False))
    build(BuildOptions(EXAMPLE, (1, 3, 32, 32), ONNX, out, format="python-onnx"))
    build(fidelity_bench.build_options(out))
    return out


@pytest.fixture(scope="session")
def triton(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    try:
        find_triton_home()
    except TritonError as error:
        pytest.fail(f"{error} (integration tests need the real server)")
    with TritonServer(repository, tmp_path_factory.mktemp("triton")) as server:
        yield server


@pytest.fixture(scope="session")
def prometheus(triton: TritonServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on loopback scraping the Triton fixture every second; yields its URL."""
    # Labelled as pod discovery would label an InferenceService's pod, which serves one
    # model: the other models' series (the twins, the fidelity model) are dropped so
    # the service's numbers are its own.
    drop_twin = {"source_labels": ["model"], "action": "drop",
                 "regex": f"{UNBATCHED}|{ONNX}|{fidelity_bench.MODEL_NAME}"}
    config = scrape_config(
        1, static_targets={"triton": [f"127.0.0.1:{triton.ports.metrics}"]},
        target_labels=TRITON_LABELS, metric_relabel_configs=[drop_twin],
    )
    try:
        prometheus = LocalPrometheus(tmp_path_factory.mktemp("prometheus"), config).start()
    except (PrometheusNotFound, RuntimeError) as error:
        pytest.fail(f"{error} (integration tests need the real server)")
    try:
        yield prometheus.url
    finally:
        prometheus.stop()
