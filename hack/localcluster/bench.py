"""`make bench-cluster`: start-up time of the control plane and of one simulated GPU pod."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from .cluster import LocalCluster
from .nodes import NodePool

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bench", "namespace": "default"},
    "spec": {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        "containers": [
            {"name": "c", "image": "triton", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
        ],
    },
}


def _one_run(root: Path) -> tuple[float, float]:
    started = time.monotonic()
    cluster = LocalCluster(root, NodePool(startup_delay_s=0)).up()
    up_s = time.monotonic() - started
    try:
        started = time.monotonic()
        cluster.kubectl("apply", "-f", "-", input=json.dumps(POD))
        cluster.kubectl("wait", "--for=condition=Ready", "pod/bench", "--timeout=60s")
        return up_s, time.monotonic() - started
    finally:
        cluster.down()


def _row(name: str, values: list[float]) -> str:
    return (
        f"{name:<34} min {min(values):6.2f}s  median {statistics.median(values):6.2f}s  "
        f"max {max(values):6.2f}s"
    )


def run_bench(runs: int) -> None:
    up, pod = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="sloscale-bench-") as tmp:
            up_s, pod_s = _one_run(Path(tmp))
            up.append(up_s)
            pod.append(pod_s)
    print(f"local control plane, {runs} runs, warm binary cache:")
    print(_row("cluster-up to nodes Ready", up))
    print(_row("GPU pod create to Ready (no delay)", pod))
