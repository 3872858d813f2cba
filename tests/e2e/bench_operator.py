"""`make bench-operator`: how fast the operator converges on the local control plane.

Not a test: it prints figures and asserts nothing. Pods become Ready without simulated cold
start, so the figures are the operator's and the control plane's own latency.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hack.localcluster.cluster import LocalCluster
from hack.localcluster.nodes import NodePool
from tests.e2e.operator_process import OperatorProcess, get_json, install_api, wait_for

NS = "bench"


def isvc(name: str) -> dict[str, object]:
    return {"apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"model": {"name": "m", "storageUri": "s3://bucket/m", "format": "onnx"},
                     "runtime": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}}


def all_ready(cluster: LocalCluster, count: int) -> float:
    started = time.monotonic()
    items = {"items": [isvc(f"svc-{i:03d}") for i in range(count)], "apiVersion": "v1",
             "kind": "List"}
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(items))
    cluster.kubectl("wait", "-n", NS, "--for=condition=Ready", "--all", "--timeout=300s",
                    "inferenceservice", timeout=310)
    return time.monotonic() - started


def repair_s(cluster: LocalCluster, name: str) -> float:
    old = (get_json(cluster, "-n", NS, "service", name) or {})["metadata"]["uid"]
    started = time.monotonic()
    cluster.kubectl("delete", "-n", NS, "service", name, "--wait=false")
    wait_for(lambda: (s := get_json(cluster, "-n", NS, "service", name)) is not None
             and s["metadata"]["uid"] != old, timeout_s=60, what="Service recreated")
    return time.monotonic() - started


def main(count: int = 20, repairs: int = 5) -> int:
    with tempfile.TemporaryDirectory(prefix="sloscale-bench-op-") as tmp:
        cluster = LocalCluster(Path(tmp), NodePool(startup_delay_s=0)).up()
        operator = OperatorProcess(cluster, Path(tmp) / "operator.log")
        try:
            install_api(cluster, NS)
            operator.start()
            ready_s = all_ready(cluster, count)
            repairs_s = [repair_s(cluster, f"svc-{i:03d}") for i in range(repairs)]
        finally:
            operator.stop()
            cluster.down()
    print(f"operator on the local control plane, {count} InferenceServices, no cold start:")
    print(f"  apply {count} at once -> all Ready          {ready_s:6.2f}s")
    print(f"  deleted Service recreated ({repairs} runs)   median "
          f"{statistics.median(repairs_s):5.2f}s  max {max(repairs_s):5.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:])))
