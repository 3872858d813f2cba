"""Kubernetes scale writes (adapter): the Deployment's replicas under the autoscaler's own manager.

Server-side apply with field manager `sloscale-autoscaler` makes the autoscaler the owner of
exactly one field, `spec.replicas`; the operator's `sloscale` manager never applies it while
autoscaling is on, and a user's GitOps manifest (the InferenceService) never contains it.
"""

from __future__ import annotations

from typing import Any

from sloscale.api import AUTOSCALER_FIELD_MANAGER


def replicas_apply_body(namespace: str, name: str, replicas: int) -> dict[str, Any]:
    """The apply configuration: only the field this manager owns."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas},
    }


def scale(kube: Any, namespace: str, name: str, replicas: int) -> None:
    """Set the replicas; forced, so a hand `kubectl scale` is taken back (documented)."""
    kube.apply(replicas_apply_body(namespace, name, replicas), AUTOSCALER_FIELD_MANAGER)
