"""kind-config.yaml gives laptop users the GPU pool the local control plane simulates."""

from __future__ import annotations

from pathlib import Path

import yaml

from hack.localcluster.nodes import GPU_TAINT, NodePool, node_manifests

ROOT = Path(__file__).resolve().parents[2]


def test_kind_cluster_has_the_local_pools_labels_taint_and_demo_ports() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [node["role"] for node in config["nodes"]]
    assert roles.count("control-plane") == 1 and roles.count("worker") >= 2
    local_gpu = next(
        n for n in node_manifests(NodePool()) if n["metadata"]["name"].startswith("gpu-node")
    )["metadata"]["labels"]
    wanted = {k: v for k, v in local_gpu.items() if k.startswith(("nvidia.com/", "sloscale."))}
    gpu_workers = [
        n for n in config["nodes"] if n.get("labels", {}).get("sloscale.dev/pool") == "gpu"
    ]
    assert gpu_workers, "no worker carries the GPU pool's labels"
    for worker in gpu_workers:
        labels = worker["labels"]
        assert {k: labels.get(k) for k in wanted} == wanted
        join = yaml.safe_load(worker["kubeadmConfigPatches"][0])
        assert join["nodeRegistration"]["taints"] == [dict(GPU_TAINT)]
    ports = {m["hostPort"]: m for m in config["nodes"][0]["extraPortMappings"]}
    assert set(ports) == {9090, 3000}  # Prometheus and Grafana for the dashboards
    assert all(m["listenAddress"] == "127.0.0.1" for m in ports.values())
