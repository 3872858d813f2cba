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
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hack.closedloop import predict
from hack.devtools.prometheus import LocalPrometheus, PodDiscovery, scrape_config
from hack.emulator.runner import ready_pod_names
from hack.localcluster import images, realnode
from hack.localcluster.cluster import LocalCluster
from hack.localcluster.nodes import NodePool
from sloscale.api import SERVICE_LABEL
from sloscale.autoscale.policies import AutoscalingSpec, Objective
from sloscale.autoscale.promql import PROM_SERVICE_LABEL
from sloscale.autoscale.replicas import cold_starts_s
from sloscale.render.values import PORTS
from sloscale.sim.cluster import ColdStart
from sloscale.sim.engine import SimConfig
from sloscale.sim.fidelity import service_model
from sloscale.sim.profile import profile_capacity
from sloscale_runtime import fit, loadgen
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
# The loop's model follows base + per image on a CPU (the simulator's fidelity model).
LOOP_SERVICE, LOOP_MODEL = "loop", "fixed_plus_per_image"
LOOP_MODEL_REF = f"{ROOT / 'examples' / 'models' / 'fixed_plus_per_image.py'}:make_model"
# Two pods' worth for a minute: one pod takes it until the next is Ready, three drain that.
LOOP_SLO_MS, LOOP_STEP_S, LOAD_PODS = 500.0, 60.0, 2.0
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
    build(BuildOptions(LOOP_MODEL_REF, (1, 3, 32, 32), LOOP_MODEL, out, format="python-onnx"))
    out.chmod(0o755)  # a temporary folder is private; the pod mounts this very folder
    return out


@pytest.fixture(scope="module")
def claim(node_cluster: LocalCluster, repository: Path) -> str:
    """A hostPath PersistentVolume bound to the claim the InferenceServices name; the claim."""
    for manifest in volume(repository):
        node_cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    return CLAIM


def volume(repository: Path) -> list[dict]:
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


def service(name: str, model: str, image_ref: str, cpu: str = "500m") -> dict:
    return {
        "apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "model": {"name": model, "format": "python", "storageUri": f"pvc://{CLAIM}"},
            "runtime": {
                "image": image_ref,  # CPU variant: no GPU asked for, the real node selected
                "nodeSelector": dict(realnode.NODE_SELECTOR),
                "tolerations": [dict(realnode.TOLERATION)],
                "resources": {"requests": {"cpu": cpu, "memory": "256Mi"},
                              "limits": {"cpu": cpu}},
            },
            "replicas": 1,
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def prometheus(node_cluster: LocalCluster,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """Every second, the namespace's pods as the API server lists them, scraped at their own
    addresses (as a ServiceMonitor's Prometheus would find them)."""
    def list_pods() -> list[dict]:
        return list((get_json(node_cluster, "-n", NS, "pods") or {}).get("items", []))

    discovery = PodDiscovery(list_pods, NS).start()
    config = scrape_config(1, http_sd_urls=[discovery.url])
    try:
        with LocalPrometheus(tmp_path_factory.mktemp("prometheus"), config) as running:
            yield running
    finally:
        discovery.stop()


@pytest.fixture(scope="module")
def operator(node_cluster: LocalCluster, prometheus: LocalPrometheus,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(node_cluster, log, NS, "--prometheus-url", prometheus.url,
                          "--autoscaler-tick-s", "1", "--scrape-interval-s", "1"):
        yield


@pytest.fixture(scope="module")
def triton_image(node_cluster: LocalCluster) -> str:
    triton = images.ensure_triton()
    images.import_archive(node_cluster, triton.archive)
    return triton.ref


def service_pods(cluster: LocalCluster, name: str) -> list[dict]:
    return list((get_json(cluster, "-n", NS, "pods", "-l", f"{SERVICE_LABEL}={name}")
                 or {}).get("items", []))


def ready_pods(cluster: LocalCluster, name: str) -> list[dict]:
    pods = service_pods(cluster, name)
    ready = set(ready_pod_names(pods))
    return [p for p in pods if p["metadata"]["name"] in ready]


def deploy(cluster: LocalCluster, manifest: dict) -> list[dict]:
    """Apply an InferenceService and wait for it as a user does; its Ready pods."""
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    name = manifest["metadata"]["name"]
    try:
        wait_ready(cluster, NS, name, timeout_s=300)
    except Exception:
        print(cluster.kubectl("describe", "pods", "-n", NS, check=False).stdout)
        raise
    return ready_pods(cluster, name)


@pytest.fixture(scope="module")
def pod_ip(node_cluster: LocalCluster, claim: str, triton_image: str,
           operator: None) -> Iterator[str]:
    """The InferenceService Ready on the real node; the address of its one pod."""
    (pod,) = deploy(node_cluster, service(SERVICE, MODEL, triton_image))
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


def query(prometheus: LocalPrometheus, promql: str) -> list[dict]:
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as answer:
        return list(json.load(answer)["data"]["result"])


def test_prometheus_finds_and_scrapes_it_at_the_pod_address(
        pod_ip: str, prometheus: LocalPrometheus) -> None:
    stats = f"http://{pod_ip}:{PORTS['http']}/v2/models/{MODEL}/stats"
    with urllib.request.urlopen(stats, timeout=10) as answer:
        before = json.load(answer)["model_stats"][0]["inference_stats"]["success"]["count"]
    sent = 3
    for seed in range(sent):
        infer(pod_ip, np.random.default_rng(seed).standard_normal((1, 3, 32, 32),
                                                                  dtype=np.float32))
    counted = (f'sum(nv_inference_request_success{{model="{MODEL}",'
               f'{PROM_SERVICE_LABEL}="{SERVICE}",namespace="{NS}"}}) >= {before + sent}')
    wait_for(lambda: query(prometheus, counted), 60, f"a scrape counting {sent} more requests")
    (up,) = query(prometheus, f'up{{{PROM_SERVICE_LABEL}="{SERVICE}"}}')
    assert up["metric"]["instance"] == f"{pod_ip}:{PORTS['metrics']}"
    assert up["value"][1] == "1"


class PodSender:
    """A Service's random balancing done by hand (there is no kube-proxy here): each request
    goes to one of the Ready pods, the list read from the API server every second."""

    def __init__(self, cluster: LocalCluster, name: str, model: str) -> None:
        self.cluster, self.name, self.model = cluster, name, model
        self.clients: dict[str, tuple[Any, Any]] = {}
        self.ready: list[str] = []
        self.chosen: list[str] = []  # the pod address of each request, in sending order
        self.rng = np.random.default_rng(5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh_loop, daemon=True)

    def start(self) -> PodSender:
        self._refresh()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for _, close in self.clients.values():
            close()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self._refresh()
            except Exception as error:  # noqa: BLE001 - a missed refresh: try again in 1 s
                print(f"pod list refresh failed: {error!r}")

    def _refresh(self) -> None:
        addresses = [p["status"]["podIP"] for p in ready_pods(self.cluster, self.name)]
        for address in addresses:
            if address not in self.clients:
                url = f"{address}:{PORTS['grpc']}"
                specs = loadgen.input_specs(
                    loadgen.model_config("http", f"{address}:{PORTS['http']}", self.model))
                self.clients[address] = loadgen.async_request_factory(url, self.model, specs)
        self.ready = addresses

    def send(self, on_done: Any) -> None:
        ready = self.ready  # the refresh thread swaps the list; read it once
        address = ready[int(self.rng.integers(len(ready)))]
        self.chosen.append(address)
        self.clients[address][0](on_done)


def autoscaling(capacity_rps: float) -> dict:
    return {"enabled": True, "minReplicas": 1, "maxReplicas": 3,
            "objective": {"latency": "p95", "targetMs": LOOP_SLO_MS, "window": "10s"},
            "interval": "2s", "coldStartSeconds": 10,
            "scaleDown": {"stabilizationSeconds": 30, "maxStep": 1},
            "capacityProfile": {"maxRpsPerReplica": round(capacity_rps, 2)}}


def served_per_pod(sent_s: np.ndarray, latency_ms: np.ndarray, pods: int,
                   window: tuple[float, float]) -> float:
    """Requests finished per second per pod over `window` (seconds from the step's start)."""
    finished = sent_s + latency_ms / 1000.0
    inside = (finished >= window[0]) & (finished < window[1])
    return float(np.count_nonzero(inside)) / (window[1] - window[0]) / max(1, pods)


def test_the_loop_scales_real_triton_and_the_emulator_predicts_it(
        node_cluster: LocalCluster, claim: str, triton_image: str, operator: None,
        prometheus: LocalPrometheus) -> None:
    """Story: the user profiles one pod, turns autoscaling on with that capacity, and traffic
    steps up to two pods' worth; the operator scales the real Deployment, new Triton pods
    start on the real node and take traffic. The emulator's view of the same step (the
    simulator with the model fitted on that pod) is printed beside it."""
    manifest = service(LOOP_SERVICE, LOOP_MODEL, triton_image, cpu="100m")
    (pod,) = deploy(node_cluster, manifest)
    address = pod["status"]["podIP"]
    fitted = fit.measure_service(f"{address}:{PORTS['http']}", f"{address}:{PORTS['grpc']}",
                                 LOOP_MODEL, step_s=2.0)
    model = service_model(fitted)
    spec = AutoscalingSpec(maxReplicas=3, objective=Objective("p95", LOOP_SLO_MS))
    capacity = profile_capacity(model, spec, SimConfig())
    manifest["spec"]["autoscaling"] = autoscaling(capacity)
    node_cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    wait_for(lambda: query(prometheus, f'up{{{PROM_SERVICE_LABEL}="{LOOP_SERVICE}"}} == 1'),
             60, "the loop's pod scraped")

    rate = LOAD_PODS * capacity
    arrivals = loadgen.poisson_arrivals(rate, LOOP_STEP_S, np.random.default_rng(9))
    sender = PodSender(node_cluster, LOOP_SERVICE, LOOP_MODEL).start()
    try:
        result = loadgen.run_open_loop(sender.send, arrivals, drain_timeout_s=120.0)
    finally:
        sender.stop()
    replicas = int((get_json(node_cluster, "-n", NS, "deployment", LOOP_SERVICE) or {})
                   ["spec"]["replicas"])
    on_node = {p["spec"]["nodeName"] for p in ready_pods(node_cluster, LOOP_SERVICE)}
    served = len(set(sender.chosen))

    created = sorted(service_pods(node_cluster, LOOP_SERVICE),
                     key=lambda pod: pod["metadata"]["creationTimestamp"])
    cold_starts = cold_starts_s(created)[1:]  # the pods the loop added
    predicted = predict(manifest, arrivals, ColdStart(10.0, 3.0), tail_s=10.0,
                        cold_starts_s=cold_starts, service=model)
    assert result.errors == 0, result.first_error
    assert replicas >= 2 and served >= 2, (replicas, served)
    tail = (LOOP_STEP_S - 20.0, LOOP_STEP_S)  # no request failed: every latency is finite
    real_p95 = float(np.percentile(result.latency_ms, 95))
    late = predicted.admitted_s >= tail[0]
    print(f"\nreal Triton vs emulator, {rate:.0f} rps for {LOOP_STEP_S:.0f} s (one pod "
          f"profiled at {capacity:.1f} rps within p95 {LOOP_SLO_MS:g} ms; fit "
          f"{fitted.base_ms:.1f} + {fitted.per_item_ms:.1f} x size ms):")
    real_tail = result.sent_s >= tail[0]
    print(f"  p95 latency, whole step  real {real_p95:.0f} ms, emulated "
          f"{np.percentile(predicted.latency_ms, 95):.0f} ms")
    print(f"  p95 latency, last 20 s   real "
          f"{np.percentile(result.latency_ms[real_tail], 95):.0f} ms, emulated "
          f"{np.percentile(predicted.latency_ms[late], 95):.0f} ms")
    print(f"  cold starts (scheduled -> Ready) {', '.join(f'{c:.1f}' for c in cold_starts)} s;"
          f" sender at most {result.max_late_ms:.0f} ms late")
    real_served = served_per_pod(result.sent_s, result.latency_ms, served, tail)
    emulated_served = served_per_pod(predicted.admitted_s, predicted.latency_ms,
                                     int(predicted.ready[-1]), tail)
    print(f"  served per pod, last 20 s  real {real_served:.1f} rps, emulated "
          f"{emulated_served:.1f} rps")
    print(f"  replicas at the end      real {replicas}, emulated {int(predicted.replicas[-1])}; "
          f"pods that took traffic {served}; errors {result.errors}")
    assert on_node == {realnode.NODE_NAME}

