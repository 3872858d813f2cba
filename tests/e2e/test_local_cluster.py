"""The local control plane behaves like a real cluster with a GPU node pool.

User story: a developer (or a test) gets a real apiserver, scheduler and controllers on
loopback, with simulated GPU nodes whose pods are scheduled by the real scheduler and become
Ready the way a kubelet reports it.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from hack.localcluster import cluster as cluster_module
from hack.localcluster.cluster import LocalCluster, port_open
from hack.localcluster.errors import StepFailed
from hack.localcluster.nodes import GPU_RESOURCE, NodePool, gpu_deployment

pytestmark = pytest.mark.e2e


def _json(cluster: LocalCluster, *args: str) -> dict:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def _gpu_deployment(name: str, replicas: int, gpus: int = 1) -> dict:
    return gpu_deployment(name, "default", {"app": name}, replicas, gpus)


def _pods(cluster: LocalCluster, app: str) -> list[dict]:
    return _json(cluster, "get", "pods", "-n", "default", "-l", f"app={app}")["items"]


def _wait(predicate, timeout_s: float = 60, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_gpu_nodes_are_ready_with_allocatable_gpus(cluster: LocalCluster) -> None:
    nodes = _json(cluster, "get", "nodes", "-l", "sloscale.dev/pool=gpu")["items"]
    assert len(nodes) == NodePool().gpu_nodes
    for node in nodes:
        assert node["status"]["allocatable"][GPU_RESOURCE] == "8"
        assert _ready(node)
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"]
        assert {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"} in node["spec"][
            "taints"
        ]


def test_nodes_hold_leases_like_kubelets(cluster: LocalCluster) -> None:
    """Without lease renewals the node controller would mark nodes NotReady after 40 s."""
    leases = _json(cluster, "get", "leases", "-n", "kube-node-lease")["items"]
    nodes = _json(cluster, "get", "nodes")["items"]
    assert {lease["metadata"]["name"] for lease in leases} == {
        node["metadata"]["name"] for node in nodes
    }
    for lease in leases:
        assert lease["spec"]["renewTime"]
        assert lease["spec"]["leaseDurationSeconds"] == 40


def test_gpu_pods_get_scheduled_and_ready_and_excess_stays_unschedulable(
    cluster: LocalCluster,
) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(_gpu_deployment("fits", 3)))
    pods = _wait(
        lambda: (p := _pods(cluster, "fits")) and len(p) == 3 and all(map(_ready, p)) and p,
        what="3 Ready pods",
    )
    for pod in pods:
        assert pod["spec"]["nodeName"].startswith("gpu-node-")
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["containerStatuses"][0]["ready"] is True
        assert pod["status"]["podIP"]

    # 4 nodes x 8 GPUs = 32; 3 are taken. 5 pods of 8 GPUs: 3 fit (one per free-enough node:
    # the node hosting a 1-GPU pod has only 7 left), the rest stay Pending.
    cluster.kubectl("apply", "-f", "-", input=json.dumps(_gpu_deployment("toobig", 5, gpus=8)))

    def pending_unschedulable() -> list[dict]:
        pending = [p for p in _pods(cluster, "toobig") if p["status"].get("phase") == "Pending"]
        scheduled = [
            c
            for p in pending
            for c in p["status"].get("conditions", [])
            if c["type"] == "PodScheduled" and c["status"] == "False"
        ]
        return scheduled if len(pending) >= 2 and len(scheduled) == len(pending) else []

    conditions = _wait(pending_unschedulable, what="Unschedulable pods")
    for condition in conditions:
        assert condition["reason"] == "Unschedulable"
        assert "nvidia.com/gpu" in condition["message"]
    cluster.kubectl("delete", "deployment", "fits", "toobig", "--wait=false")


def test_controller_manager_replaces_a_deleted_pod(cluster: LocalCluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(_gpu_deployment("heal", 1)))
    first = _wait(lambda: [p for p in _pods(cluster, "heal") if _ready(p)], what="a Ready pod")[0]
    cluster.kubectl("delete", "pod", first["metadata"]["name"], "--wait=false")
    replacement = _wait(
        lambda: [
            p
            for p in _pods(cluster, "heal")
            if p["metadata"]["uid"] != first["metadata"]["uid"] and _ready(p)
        ],
        what="a replacement pod",
    )
    assert replacement[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    cluster.kubectl("delete", "deployment", "heal", "--wait=false")


CEL_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.sloscale.io"},
    "spec": {
        "group": "test.sloscale.io",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "min": {"type": "integer"},
                                    "max": {"type": "integer"},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.min <= self.max",
                                        "message": "min must be <= max",
                                    }
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_apiserver_enforces_cel_validation(cluster: LocalCluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(CEL_CRD))
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.test.sloscale.io", "--timeout=30s"
    )

    def widget(lo: int, hi: int) -> str:
        return json.dumps(
            {
                "apiVersion": "test.sloscale.io/v1",
                "kind": "Widget",
                "metadata": {"name": f"w-{lo}-{hi}", "namespace": "default"},
                "spec": {"min": lo, "max": hi},
            }
        )

    ok = _wait(
        lambda: (
            cluster.kubectl("apply", "-f", "-", input=widget(1, 2), check=False).returncode == 0
        ),
        timeout_s=20,
        what="the Widget kind to be served",
    )
    assert ok
    rejected = cluster.kubectl("apply", "-f", "-", input=widget(5, 2), check=False)
    assert rejected.returncode != 0
    assert "min must be <= max" in rejected.stderr


def test_apiserver_publishes_the_front_proxy_for_aggregated_apis(cluster: LocalCluster) -> None:
    """Extension API servers (KEDA's metrics, `up --keda`) read whom to trust from here."""
    data = _json(
        cluster, "get", "-n", "kube-system", "configmap", "extension-apiserver-authentication"
    )["data"]
    ca = (cluster.root / "pki" / "front-proxy-ca.crt").read_text()
    assert data["requestheader-client-ca-file"].strip() == ca.strip()
    assert json.loads(data["requestheader-allowed-names"]) == ["front-proxy-client"]
    assert json.loads(data["requestheader-username-headers"]) == ["X-Remote-User"]
    # Its own CA: a client cert of the cluster CA (admin's) cannot pass for the proxy.
    assert ca.strip() != (cluster.root / "pki" / "ca.crt").read_text().strip()


def test_second_cluster_gets_its_own_ports_and_stops_cleanly(
    cluster: LocalCluster, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    other = LocalCluster(tmp_path / "second", NodePool(gpu_nodes=1, cpu_nodes=0)).up()
    try:
        assert set(other.state.ports.values()).isdisjoint(cluster.state.ports.values())
        nodes = _json(other, "get", "nodes")["items"]
        assert [n["metadata"]["name"] for n in nodes] == ["gpu-node-0"]
        assert other.up() is other and other.is_running()  # idempotent
    finally:
        pids, ports = dict(other.state.pids), dict(other.state.ports)
        other.down()
    assert not any(cluster_module._alive(pid) for pid in pids.values())
    assert not any(port_open(port) for port in ports.values())
    other.down()  # idempotent
    assert cluster.is_running()


def test_component_that_cannot_bind_fails_with_its_log_and_leaves_nothing(
    tmp_path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        monkeypatch.setattr(cluster_module, "free_port", lambda: taken)
        broken = LocalCluster(tmp_path / "broken", NodePool(gpu_nodes=1, cpu_nodes=0))
        with pytest.raises(StepFailed) as failure:
            broken.up()
    assert failure.value.step == "start etcd"
    err = capsys.readouterr().err
    assert "address already in use" in err  # the component's own log is shown
    assert err.count("retrying with new ports") == 2  # then it gave up, naming the step
    assert not broken.state_file.exists()
    assert _processes_mentioning(str(tmp_path / "broken")) == []


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found
