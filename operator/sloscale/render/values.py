"""Template values: everything a template needs, computed from the spec as JSON-safe data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sloscale.api import GROUP, SERVICE_LABEL
from sloscale.api.spec import GPU_RESOURCE, InferenceServiceSpec

MODEL_REPOSITORY = "/mnt/models"
PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
STARTUP_PERIOD_S = 10
DEFAULT_STORAGE_IMAGE = "kserve/storage-initializer:v0.14.1"
# Triton's image has the unprivileged user triton-server (uid 1000).
TRITON_UID = 1000


@dataclass(frozen=True)
class RenderOptions:
    """What rendering reads besides the user's object: operator-wide settings, and what the
    operator saw in the cluster."""

    storage_initializer_image: str = DEFAULT_STORAGE_IMAGE
    servicemonitor: bool = False
    # 'HorizontalPodAutoscaler/NAME' scaling the Deployment (an HPA, or KEDA's) while our
    # autoscaling is off: the replicas are its to set.
    scaled_by: str | None = None


def selector_labels(name: str) -> dict[str, str]:
    return {SERVICE_LABEL: name}


def service_url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc:{PORTS['http']}"


def triton_args(spec: InferenceServiceSpec, model_repository: str) -> list[str]:
    """Triton's arguments: only the named model is loaded, so readiness means it loaded."""
    return [
        f"--model-repository={model_repository}",
        "--strict-readiness=true",
        "--model-control-mode=explicit",
        f"--load-model={spec.model.name}",
        "--allow-metrics=true",
        "--metrics-config=summary_latencies=true",
        f"--http-port={PORTS['http']}",
        f"--grpc-port={PORTS['grpc']}",
        f"--metrics-port={PORTS['metrics']}",
        *spec.runtime.args,
    ]


def resources(spec: InferenceServiceSpec) -> dict[str, dict[str, Any]]:
    """The user's resources with the GPU count in both requests and limits."""
    out = {kind: dict(values) for kind, values in spec.runtime.resources.items()}
    gpus = spec.runtime.gpus
    if gpus is not None:
        out.setdefault("requests", {})[GPU_RESOURCE] = gpus
        out.setdefault("limits", {})[GPU_RESOURCE] = gpus
    return out


def tolerations(spec: InferenceServiceSpec) -> list[dict[str, Any]]:
    user = list(spec.runtime.tolerations)
    wants_gpu = spec.runtime.gpus not in (None, 0, "0")
    if wants_gpu and not any(t.get("key") == GPU_RESOURCE for t in user):
        user.append(dict(GPU_TOLERATION))
    return user


def storage(spec: InferenceServiceSpec, options: RenderOptions) -> dict[str, Any]:
    uri = spec.model.storage_uri
    if uri.startswith("pvc://"):
        claim, _, path = uri.removeprefix("pvc://").partition("/")
        return {"mode": "pvc", "claim": claim, "path": path, "uri": uri}
    secret = spec.model.credentials_secret_name
    env_from = [{"secretRef": {"name": secret}}] if secret else []
    return {"mode": "fetch", "uri": uri, "image": options.storage_initializer_image,
            "env_from": env_from}


def replicas(spec: InferenceServiceSpec, options: RenderOptions) -> int | None:
    """None when an autoscaler owns the Deployment's replicas (left out of our apply): ours,
    or another one aimed at the Deployment while ours is off (applying spec.replicas would
    undo each of its decisions)."""
    return None if spec.autoscaled or options.scaled_by else spec.replicas


def wants_pdb(spec: InferenceServiceSpec) -> bool:
    return spec.min_replicas > 1


def model_annotations(spec: InferenceServiceSpec) -> dict[str, str]:
    notes = {f"{GROUP}/model-format": spec.model.format or "unspecified"}
    if spec.model.version:
        notes[f"{GROUP}/model-version"] = spec.model.version
    return notes


def build_values(
    name: str, namespace: str, spec: InferenceServiceSpec, options: RenderOptions
) -> dict[str, Any]:
    """The template contract's inputs (documented in README, checked by load_templates)."""
    model = spec.model
    labels = {
        "app.kubernetes.io/name": "triton",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "sloscale",
        **selector_labels(name),
    }
    model_repository = MODEL_REPOSITORY
    store = storage(spec, options)
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "selector": selector_labels(name),
        "replicas": replicas(spec, options),
        "image": spec.runtime.image,
        "args": triton_args(spec, model_repository),
        "env": spec.runtime.env,
        "resources": resources(spec),
        "node_selector": spec.runtime.node_selector,
        "tolerations": tolerations(spec),
        "affinity": spec.runtime.affinity,
        "priority_class_name": spec.runtime.priority_class_name,
        "shm_size": spec.runtime.shm_size,
        "startup_failure_threshold": math.ceil(spec.runtime.startup_s / STARTUP_PERIOD_S),
        "model": {"name": model.name, "format": model.format, "version": model.version,
                  "storage_uri": model.storage_uri},
        "model_repository": model_repository,
        "storage": store,
        "pod_labels": {**spec.runtime.pod_labels, **labels},
        "pod_annotations": {**spec.runtime.pod_annotations, **model_annotations(spec)},
        "pod_security_context": {
            "runAsNonRoot": True, "runAsUser": TRITON_UID, "runAsGroup": TRITON_UID,
            "fsGroup": TRITON_UID, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "container_security_context": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
        },
        "ports": dict(PORTS),
    }
