"""Finding another autoscaler on a service's Deployment: HPAs, KEDA ScaledObjects, KEDA's HPAs."""

from __future__ import annotations

from typing import Any

import pytest

from sloscale.autoscale.conflicts import competing_autoscaler


def _hpa(name: str, target: str, kind: str = "Deployment", owner: str | None = None) -> dict:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:  # as KEDA's controller sets it on keda-hpa-NAME
        meta["ownerReferences"] = [
            {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": owner,
             "controller": True, "blockOwnerDeletion": True, "uid": "u"},
        ]  # fmt: skip
    return {"metadata": meta, "spec": {"scaleTargetRef": {"kind": kind, "name": target}}}


def _scaled(name: str, target: str, kind: str | None = None) -> dict:
    ref = {"name": target} if kind is None else {"kind": kind, "name": target}
    return {"metadata": {"name": name}, "spec": {"scaleTargetRef": ref}}


@pytest.mark.parametrize(
    ("hpas", "scaled_objects", "expected"),
    [
        ([], [], None),
        ([_hpa("web", "web")], [], "HorizontalPodAutoscaler/web"),
        ([_hpa("other", "other")], [], None),
        ([_hpa("web", "web", kind="StatefulSet")], [], None),
        ([], [_scaled("so", "web")], "ScaledObject/so"),  # KEDA's default kind: Deployment
        ([], [_scaled("so", "web", kind="StatefulSet")], None),
        # Real KEDA: the ScaledObject and the HPA it made; reported as the ScaledObject.
        ([_hpa("keda-hpa-so", "web", owner="so")], [_scaled("so", "web")], "ScaledObject/so"),
        # ScaledObjects unreadable (403: sloscale's RBAC without keda.sh): the owner says it.
        ([_hpa("keda-hpa-so", "web", owner="so")], [], "ScaledObject/so"),
    ],
)
def test_competing_autoscaler(hpas: list, scaled_objects: list, expected: str | None) -> None:
    assert competing_autoscaler("web", hpas, scaled_objects) == expected
