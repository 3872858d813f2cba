"""Simulated node pool (kwok-managed Node objects) and the kwok stage configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}


@dataclass(frozen=True)
class NodePool:
    """Shape of the simulated cluster."""

    gpu_nodes: int = 4
    gpus_per_node: int = 8
    cpu_nodes: int = 1
    gpu_product: str = "NVIDIA-H100-80GB-HBM3"
    gpu_memory_mib: int = 81559
    instance_type: str = "p5.48xlarge"
    startup_delay_s: float = 2.0  # pod scheduled -> Ready (a GPU pod's cold start) ...
    startup_jitter_s: float = 0.0  # ... +- this, uniform
    pods_per_node: int = 110


def _node(name: str, labels: dict[str, str], capacity: dict[str, str], taints: list[Any]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "topology.kubernetes.io/zone": "local-a",
                **labels,
            },
        },
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def node_manifests(pool: NodePool) -> list[dict]:
    """Nodes carrying the labels, taint and extended resource a real GPU pool has."""
    gpu_labels = {
        "node.kubernetes.io/instance-type": pool.instance_type,
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": pool.gpu_product,
        "nvidia.com/gpu.count": str(pool.gpus_per_node),
        "nvidia.com/gpu.memory": str(pool.gpu_memory_mib),
        "sloscale.dev/pool": "gpu",
    }
    gpu_capacity = {
        "cpu": "192",
        "memory": "2048Gi",
        "ephemeral-storage": "8Ti",
        "pods": str(pool.pods_per_node),
        GPU_RESOURCE: str(pool.gpus_per_node),
    }
    cpu_capacity = {
        "cpu": "256",
        "memory": "1024Gi",
        "ephemeral-storage": "1Ti",
        "pods": str(pool.pods_per_node),
    }
    nodes = [
        _node(f"gpu-node-{i}", gpu_labels, gpu_capacity, [dict(GPU_TAINT)])
        for i in range(pool.gpu_nodes)
    ]
    cpu_labels = {"node.kubernetes.io/instance-type": "m7i.8xlarge", "sloscale.dev/pool": "cpu"}
    nodes += [_node(f"cpu-node-{i}", cpu_labels, cpu_capacity, []) for i in range(pool.cpu_nodes)]
    return nodes


def gpu_deployment(
    name: str, namespace: str, labels: dict[str, str], replicas: int = 1, gpus: int = 1
) -> dict[str, Any]:
    """A Deployment of Triton pods asking for GPUs and tolerating the pool's taint: the real
    scheduler places them on the GPU nodes, kwok runs them."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists"}],
                    "containers": [
                        {
                            "name": "triton",
                            "image": "nvcr.io/nvidia/tritonserver:24.10-py3",
                            "resources": {"limits": {GPU_RESOURCE: str(gpus)}},
                        }
                    ],
                },
            },
        },
    }


def _ready_delay(pool: NodePool) -> dict[str, int]:
    """kwok's delay for `startup_delay_s +- startup_jitter_s`, uniform.

    kwok draws uniformly between durationMilliseconds and jitterDurationMilliseconds, and
    when the latter is the smaller it uses that alone: jitter is an upper bound, not a +-.
    (Passing the +- as the bound made a 45 +- 15 s cold start 15 s, and 5 +- 0.5 s 0.5 s.)
    """
    low_s = max(0.0, pool.startup_delay_s - pool.startup_jitter_s)
    delay = {"durationMilliseconds": int(low_s * 1000)}
    if pool.startup_jitter_s:
        delay["jitterDurationMilliseconds"] = int(
            (pool.startup_delay_s + pool.startup_jitter_s) * 1000
        )
    return delay


def stage_config(stage_dir: Path, pool: NodePool) -> str:
    """kwok's stages with the pod start-up delay set to the pool's simulated cold start.

    Only the pod-ready stage waits (image pull + model load); kwok's other stages are made
    immediate, and deletion does not wait out the grace period (Triton exits on SIGTERM).
    """
    documents = []
    for path in sorted(stage_dir.glob("*.yaml")):
        stage = yaml.safe_load(path.read_text())
        delay = stage["spec"].get("delay")
        if delay is not None and stage["spec"]["resourceRef"]["kind"] == "Pod":
            if stage["metadata"]["name"] == "pod-ready":
                delay.update(_ready_delay(pool))
                if not pool.startup_jitter_s:
                    delay.pop("jitterDurationMilliseconds", None)
                delay.pop("jitterDurationFrom", None)
            else:
                delay["durationMilliseconds"] = 0
                delay.pop("jitterDurationMilliseconds", None)
                delay.pop("jitterDurationFrom", None)
        documents.append(stage)
    return yaml.safe_dump_all(documents, sort_keys=False)
