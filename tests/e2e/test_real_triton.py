"""e2e: a real Triton pod, rendered from an InferenceService, on the real node.

User story: an ML engineer builds a torch model into a Triton repository with
`sloscale runtime build --format python-onnx`, puts it on a volume (a PersistentVolumeClaim) and
applies an InferenceService that asks for the CPU node. The operator renders the Deployment;
the pod starts the real Triton of the image built here (the nvidia-pytriton wheel's server,
its python backend, onnxruntime; no torch), goes Ready through Triton's own readiness
endpoint, is scraped by Prometheus at the pod's address, and answers inference requests with
what torch computes.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from hack.devtools.prometheus import LocalPrometheus, scrape_config
from hack.localcluster import images, realnode
from hack.localcluster.cluster import LocalCluster
from hack.localcluster.nodes import NodePool
from sloscale.api import SERVICE_LABEL
from sloscale.autoscale.promql import PROM_SERVICE_LABEL
from sloscale.render.values import PORTS
from sloscale_runtime import loadgen
from sloscale_runtime.builder import BuildOptions, build
from sloscale_runtime.loader import load_model
from tests.e2e.operator_process import (
    ROOT,
    get_json,
    install_api,
    running_operator,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.e2e
NS, SERVICE, MODEL, CLAIM = "e2e-real-triton", "cnn", "small_cnn", "models"
EXAMPLE = f"{ROOT / 'examples' / 'models' / 'small_cnn.py'}:make_model"
# Triton runs the ONNX export of the same graph on the same CPU: reassociated float32 sums.
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    pool = NodePool(gpu_nodes=0, cpu_nodes=1)
    with LocalCluster(tmp_path_factory.mktemp("real-triton"), pool, real_node=True) as local:
        install_api(local, NS)
        yield local


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model repository, built as a user would, readable by Triton's uid."""
    out = tmp_path_factory.mktemp("repository")
    build(BuildOptions(EXAMPLE, (1, 3, 32, 32), MODEL, out, format="python-onnx"))
    out.chmod(0o755)  # a temporary folder is private; the pod mounts this very folder
    return out


def volume(repository: Path) -> list[dict]:
    """A hostPath PersistentVolume bound to the claim the InferenceService names."""
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "e2e-models"},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"],
                   "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                   "hostPath": {"path": str(repository), "type": "Directory"},
                   "claimRef": {"namespace": NS, "name": CLAIM}}}
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": CLAIM, "namespace": NS},
           "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "",
                    "volumeName": "e2e-models", "resources": {"requests": {"storage": "1Gi"}}}}
    return [pv, pvc]


def service(image_ref: str) -> dict:
    return {
        "apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
        "metadata": {"name": SERVICE, "namespace": NS},
        "spec": {
            "model": {"name": MODEL, "format": "python", "storageUri": f"pvc://{CLAIM}"},
            "runtime": {
                "image": image_ref,  # CPU variant: no GPU asked for, the real node selected
                "nodeSelector": dict(realnode.NODE_SELECTOR),
                "tolerations": [dict(realnode.TOLERATION)],
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            },
            "replicas": 1,
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def pod_ip(node_cluster: LocalCluster, repository: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The InferenceService Ready on the real node; the address of its one pod."""
    triton = images.ensure_triton()
    images.import_archive(node_cluster, triton.archive)
    for manifest in volume(repository):
        node_cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(node_cluster, log, NS):
        node_cluster.kubectl("apply", "-f", "-", input=json.dumps(service(triton.ref)))
        try:
            wait_ready(node_cluster, NS, SERVICE, timeout_s=300)
        except Exception:
            print(node_cluster.kubectl("describe", "pods", "-n", NS, check=False).stdout)
            raise
        pods = get_json(node_cluster, "-n", NS, "pods", "-l",
                        f"{SERVICE_LABEL}={SERVICE}") or {}
        (pod,) = pods["items"]
        assert pod["spec"]["nodeName"] == realnode.NODE_NAME
        yield pod["status"]["podIP"]
        node_cluster.kubectl("delete", "inferenceservice", "-n", NS, SERVICE, "--wait=true",
                             timeout=120)


def test_the_rendered_pod_runs_triton_ready_through_its_own_endpoint(pod_ip: str) -> None:
    url = f"http://{pod_ip}:{PORTS['http']}"
    with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=10) as answer:
        assert answer.status == 200
    with urllib.request.urlopen(f"{url}/v2/models/{MODEL}/config", timeout=10) as answer:
        config = json.load(answer)
    assert config["backend"] == "python" and config["max_batch_size"] == 16


def infer(pod_ip: str, batch: np.ndarray) -> np.ndarray:
    return loadgen.infer("http", f"{pod_ip}:{PORTS['http']}", MODEL, batch)


def test_it_answers_what_torch_computes(pod_ip: str) -> None:
    batch = np.random.default_rng(3).standard_normal((4, 3, 32, 32)).astype(np.float32)
    got = infer(pod_ip, batch)
    with torch.inference_mode():
        expected = load_model(EXAMPLE)(torch.from_numpy(batch)).numpy()
    assert got.shape == (4, 10)
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_prometheus_scrapes_it_at_the_pod_address(
        pod_ip: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    sent = 3
    for seed in range(sent):
        infer(pod_ip, np.random.default_rng(seed).standard_normal((1, 3, 32, 32),
                                                                  dtype=np.float32))
    target = f"{pod_ip}:{PORTS['metrics']}"
    config = scrape_config(1, static_targets={"triton": [target]},
                           target_labels={"namespace": NS, PROM_SERVICE_LABEL: SERVICE})
    with LocalPrometheus(tmp_path_factory.mktemp("prometheus"), config) as prometheus:
        def query(promql: str) -> list[dict]:
            url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
            with urllib.request.urlopen(url, timeout=10) as answer:
                return list(json.load(answer)["data"]["result"])

        counted = (f'sum(nv_inference_request_success{{model="{MODEL}",'
                   f'{PROM_SERVICE_LABEL}="{SERVICE}"}})')
        found = wait_for(lambda: query(counted), 60, "a scrape of the pod")
        assert float(found[0]["value"][1]) >= sent
        (up,) = query('up{job="triton"}')
        assert up["metric"]["instance"] == target and up["value"][1] == "1"
