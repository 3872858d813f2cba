"""e2e: the chart's operator pod on the real node, from the image `make image` built.

User story: a platform engineer installs sloscale with Helm, pinning the operator to a node
with the chart's nodeSelector and tolerations; the pod runs for real (containerd, runc),
becomes Ready through its real probes, runs read-only as uid 65532, reaches the API server
the in-cluster way (the `kubernetes` Service and its ServiceAccount token), converges an
InferenceService, and `helm uninstall` takes it away without leaving a container behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml

from hack import image
from hack.localcluster import images, realnode
from hack.localcluster.cluster import LocalCluster
from hack.localcluster.nodes import NodePool
from tests.e2e.chart_support import CHART, ROOT, helm
from tests.e2e.operator_process import get_json, wait_for, wait_ready

pytestmark = pytest.mark.e2e
RELEASE, RELEASE_NS, NS = "ops", "sloscale-system", "e2e-real-chart"
ACCOUNT = f"system:serviceaccount:{RELEASE_NS}:{RELEASE}-sloscale"
EXAMPLE = ROOT / "examples" / "python-echo.yaml"
SERVICE = "echo-python"


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Kwok's GPU node for the service's Triton pods, the real one for the operator."""
    pool = NodePool(gpu_nodes=1, cpu_nodes=1)
    with LocalCluster(tmp_path_factory.mktemp("real-chart"), pool, real_node=True) as local:
        yield local


@pytest.fixture(scope="module")
def release(node_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`helm install` with the operator image imported into the node; the operator pod's name."""
    image_id = image.built_image_id()
    assert image_id and image.archive_path().exists(), "run `make image` (make test does)"
    images.import_archive(node_cluster, image.archive_path())
    values = tmp_path_factory.mktemp("values") / "real-node.yaml"
    values.write_text(yaml.safe_dump({
        "image": {"tag": image.version(), "pullPolicy": "Never"},
        "nodeSelector": realnode.NODE_SELECTOR,
        "tolerations": [realnode.TOLERATION],
    }))  # fmt: skip
    helm("install", RELEASE, str(CHART), "-n", RELEASE_NS, "--create-namespace",
         "-f", str(values), "--wait", "--timeout=180s", env=node_cluster.env,
         timeout_s=200)  # fmt: skip
    pods = get_json(node_cluster, "-n", RELEASE_NS, "pods", "-l",
                    "app.kubernetes.io/instance=" + RELEASE) or {}  # fmt: skip
    (pod,) = pods["items"]
    try:
        yield str(pod["metadata"]["name"])
    finally:
        helm("uninstall", RELEASE, "-n", RELEASE_NS, "--ignore-not-found", env=node_cluster.env)


def operator_pod(cluster: LocalCluster, name: str) -> dict:
    return get_json(cluster, "-n", RELEASE_NS, "pod", name) or {}


def test_the_operator_pod_runs_on_the_real_node_ready_through_its_probes(
    node_cluster: LocalCluster, release: str
) -> None:
    pod = operator_pod(node_cluster, release)
    assert pod["spec"]["nodeName"] == realnode.NODE_NAME
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] and status["started"] and "running" in status["state"]
    assert status["containerID"].startswith("containerd://")
    assert status["imageID"], "containerd reports the image it runs"
    probes = pod["spec"]["containers"][0]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/healthz"  # the kubelet's own probe


def test_the_operator_runs_read_only_as_65532(node_cluster: LocalCluster, release: str) -> None:
    def exec_(*argv: str) -> tuple[int, str]:
        result = node_cluster.kubectl("exec", "-n", RELEASE_NS, release, "--", *argv, check=False)
        return result.returncode, result.stdout + result.stderr

    assert exec_("id", "-u") == (0, "65532\n")
    code, out = exec_("touch", "/opt/written")
    assert code != 0 and "Read-only file system" in out
    assert exec_("touch", "/tmp/written")[0] == 0  # its emptyDir


def test_it_reaches_the_api_server_with_its_token_and_converges_a_service(
    node_cluster: LocalCluster, release: str
) -> None:
    node_cluster.kubectl("create", "namespace", NS)
    node_cluster.kubectl("apply", "--server-side", "-n", NS, "-f", str(EXAMPLE))
    deployment = wait_for(lambda: get_json(node_cluster, "-n", NS, "deployment", SERVICE), 120,
                          f"deployment/{SERVICE} made by the operator pod")  # fmt: skip
    assert deployment["metadata"]["ownerReferences"][0]["name"] == SERVICE
    wait_ready(node_cluster, NS, SERVICE)
    # The apiserver saw the ServiceAccount, from the pod's own address on the node's bridge.
    pod_ip = operator_pod(node_cluster, release)["status"]["podIP"]
    events = [json.loads(line) for line in (node_cluster.logs / "audit.log").open()]
    ours = [e for e in events if e["user"]["username"] == ACCOUNT]
    applied = [e for e in ours if e["verb"] == "patch"  # server-side apply
               and e.get("objectRef", {}).get("resource") == "deployments"]  # fmt: skip
    assert applied and all(e["responseStatus"]["code"] < 300 for e in applied)
    assert {ip for e in ours for ip in e.get("sourceIPs", [])} == {pod_ip}


def test_helm_uninstall_removes_the_pod_and_its_containers(
    node_cluster: LocalCluster, release: str
) -> None:
    assert realnode._running_tasks(node_cluster)
    helm("uninstall", RELEASE, "-n", RELEASE_NS, "--wait", "--timeout=120s",
         env=node_cluster.env)  # fmt: skip
    wait_for(lambda: not operator_pod(node_cluster, release), 120, "the operator pod gone")
    wait_for(lambda: not realnode._running_tasks(node_cluster), 60, "no container running")
    assert get_json(node_cluster, "-n", RELEASE_NS, "deployment", f"{RELEASE}-sloscale") is None
