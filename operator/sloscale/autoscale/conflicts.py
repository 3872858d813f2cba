"""Other autoscalers aimed at our Deployment (HPA, KEDA ScaledObject): found, never fought."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _targets(obj: Mapping[str, Any], deployment: str, ref_field: str) -> bool:
    ref = obj.get("spec", {}).get(ref_field) or {}
    kind = ref.get("kind", "Deployment")  # KEDA defaults the kind to Deployment
    return bool(kind == "Deployment" and ref.get("name") == deployment)


def _scaled_object_owner(hpa: Mapping[str, Any]) -> str | None:
    """The ScaledObject that controls this HPA (KEDA makes keda-hpa-NAME, owned by it)."""
    for ref in hpa.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "ScaledObject" and ref.get("controller"):
            return str(ref["name"])
    return None


def competing_autoscaler(
    deployment: str,
    hpas: Iterable[Mapping[str, Any]],
    scaled_objects: Iterable[Mapping[str, Any]],
) -> str | None:
    """'HorizontalPodAutoscaler/NAME' or 'ScaledObject/NAME' targeting the Deployment, or None.

    KEDA drives its own HPA (named keda-hpa-*), so a ScaledObject is reported as itself, and
    so is the HPA it owns: the user acts on the ScaledObject (deleting the HPA is undone by
    KEDA), also when sloscale may not read ScaledObjects.
    """
    for scaled in scaled_objects:
        if _targets(scaled, deployment, "scaleTargetRef"):
            return f"ScaledObject/{scaled['metadata']['name']}"
    for hpa in hpas:
        if _targets(hpa, deployment, "scaleTargetRef"):
            owner = _scaled_object_owner(hpa)
            if owner is not None:
                return f"ScaledObject/{owner}"
            return f"HorizontalPodAutoscaler/{hpa['metadata']['name']}"
    return None
