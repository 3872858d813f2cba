"""e2e: a real node in the local cluster (`up --real-node`): containerd and a kubelet.

User story: a developer needs a pod that really runs, not one kwok walks through its phases:
a pod that selects and tolerates the real node is scheduled there, runs an image built on this
machine (no registry), becomes Ready through a real probe, and its log and an exec reach it
through the API server and the kubelet. Pods that do not ask for the node stay off it. And
stopping the cluster leaves no process, mount, bridge or CNI state behind.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from hack.localcluster import images, podnet, realnode
from hack.localcluster.cluster import LocalCluster, _alive
from hack.localcluster.nodes import NodePool
from tests.e2e.operator_process import get_json, wait_for

pytestmark = pytest.mark.e2e
NS = "e2e-real-node"
GREETING = "hello from the real node"
# Writes its log line, then marks itself ready for the exec probe, then sleeps until SIGTERM.
HELLO_COMMAND = [
    "/bin/bash", "-c",
    f"echo '{GREETING}'; touch /tmp/ready; trap 'exit 0' TERM; "
    "while :; do sleep 3600 & wait $!; done",
]  # fmt: skip


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster of its own: the last test stops it and looks at what is left."""
    pool = NodePool(gpu_nodes=0, cpu_nodes=1)
    with LocalCluster(tmp_path_factory.mktemp("real-node"), pool, real_node=True) as local:
        local.kubectl("create", "namespace", NS)
        yield local


def pod(name: str, image: str, on_real_node: bool = True, tolerate: bool = True) -> dict:
    spec: dict = {
        "containers": [{
            "name": "hello", "image": image, "imagePullPolicy": "Never",
            "readinessProbe": {"exec": {"command": ["test", "-e", "/tmp/ready"]},
                               "periodSeconds": 1},
        }],
        "terminationGracePeriodSeconds": 5,
    }  # fmt: skip
    if on_real_node:
        spec["nodeSelector"] = dict(realnode.NODE_SELECTOR)
    if tolerate:
        spec["tolerations"] = [dict(realnode.TOLERATION)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": spec}  # fmt: skip


def apply(cluster: LocalCluster, manifest: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def ready(cluster: LocalCluster, name: str) -> dict | None:
    found = get_json(cluster, "-n", NS, "pod", name)
    conditions = (found or {}).get("status", {}).get("conditions", [])
    return (
        found if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else None
    )


def test_the_real_node_is_labelled_tainted_and_ready(node_cluster: LocalCluster) -> None:
    node = get_json(node_cluster, "node", realnode.NODE_NAME)
    assert node is not None
    assert node["metadata"]["labels"][realnode.LABEL] == "true"
    assert realnode.TAINT in node["spec"]["taints"]
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert ipaddress.ip_address(addresses["InternalIP"]).is_private


def test_a_pod_from_a_local_image_runs_is_ready_and_answers_logs_and_exec(
    node_cluster: LocalCluster,
) -> None:
    hello = images.ensure_image("e2e-hello", HELLO_COMMAND)
    images.import_archive(node_cluster, hello.archive)
    apply(node_cluster, pod("hello", hello.ref))
    running = wait_for(lambda: ready(node_cluster, "hello"), 120, "pod/hello Ready")
    assert running["spec"]["nodeName"] == realnode.NODE_NAME
    # An address on the node's bridge, and containerd runs the container (and its sandbox).
    node = get_json(node_cluster, "node", realnode.NODE_NAME) or {}
    node_ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    subnet = ipaddress.ip_network(f"{node_ip}/24", strict=False)
    assert ipaddress.ip_address(running["status"]["podIP"]) in subnet
    assert len(realnode._running_tasks(node_cluster)) == 2
    # The log, as `kubectl logs` reads it: apiserver -> kubelet -> the container's log file.
    api = client.CoreV1Api(config.new_client_from_config(str(node_cluster.kubeconfig)))
    log = api.read_namespaced_pod_log("hello", NS, container="hello")
    assert log.strip() == GREETING
    # exec: apiserver -> kubelet -> containerd's stream server -> runc exec in the container.
    result = node_cluster.kubectl("exec", "-n", NS, "hello", "--", "cat", "/proc/1/cmdline")
    assert "sleep 3600" in result.stdout.replace("\0", " ")


def test_pods_that_do_not_ask_for_the_real_node_stay_off_it(node_cluster: LocalCluster) -> None:
    apply(node_cluster, pod("plain", "localhost/never-pulled:1", on_real_node=False,
                            tolerate=False))  # fmt: skip
    apply(node_cluster, pod("untolerated", "localhost/never-pulled:1", tolerate=False))
    placed = wait_for(
        lambda: (get_json(node_cluster, "-n", NS, "pod", "plain") or {}).get("spec", {})
        .get("nodeName"), 60, "pod/plain scheduled",
    )  # fmt: skip
    assert placed == "cpu-node-0"  # kwok's
    pending = wait_for(
        lambda: next((c for c in (get_json(node_cluster, "-n", NS, "pod", "untolerated") or {})
                      .get("status", {}).get("conditions", []) if c["type"] == "PodScheduled"),
                     None), 60, "pod/untolerated judged by the scheduler",
    )  # fmt: skip
    assert (pending["status"], pending["reason"]) == ("False", "Unschedulable")


def nat_rules(bridge: str) -> list[str]:
    listed = subprocess.run(["iptables", "-w", "-t", "nat", "-S", "PREROUTING"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    return [rule for rule in listed.splitlines() if f"-i {bridge} " in rule]


def _shims(socket: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and b"containerd-shim" in argv[0] and str(socket).encode() in argv:
            found.append(int(proc.name))
    return found


def test_stopping_the_cluster_leaves_no_process_mount_bridge_or_cni_state(
    node_cluster: LocalCluster,
) -> None:
    socket = realnode.socket_path(node_cluster)
    bridge = podnet.network_name(node_cluster.root)
    pids = {name: node_cluster.state.pids[name] for name in realnode.COMPONENTS}
    shims = _shims(socket)
    assert shims, "a running pod has a shim"
    assert realnode.mounts_under(node_cluster.root), "a running pod has mounts"
    assert podnet.bridge_exists(bridge)
    assert list(podnet.CNI_CACHE_DIR.glob(f"{bridge}-*")), "the CNI plugins cache results"
    assert nat_rules(bridge), "pods reach the kubernetes Service through the node's DNAT rule"
    node_cluster.down()
    assert not [name for name, pid in pids.items() if _alive(pid)]
    assert not [pid for pid in shims if _alive(pid)]
    assert not _shims(socket)
    assert realnode.mounts_under(node_cluster.root) == []
    assert not podnet.bridge_exists(bridge)
    assert not list(podnet.CNI_CACHE_DIR.glob(f"{bridge}-*"))
    assert not nat_rules(bridge)
    # The pods were stopped through the CRI, so the IPAM plugin released their addresses.
    ipam = node_cluster.root / "node" / "cni" / "ipam" / bridge
    assert not [name for name in os.listdir(ipam) if name.startswith("10.")]
