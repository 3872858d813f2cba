"""Pure helpers of the reconcile: field ownership and change detection."""

from __future__ import annotations

from typing import Any

import pytest

from sloscale.controller.reconcile import comparable, owns_replicas


def managed(*entries: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"managedFields": [
        {"manager": manager, "operation": "Apply", "fieldsV1": fields}
        for manager, fields in entries]}}


@pytest.mark.parametrize(
    ("deployment", "manager", "owns"),
    [
        (managed(("sloscale", {"f:spec": {"f:replicas": {}}})), "sloscale", True),
        (managed(("sloscale", {"f:spec": {"f:template": {}}})), "sloscale", False),
        (managed(("sloscale-autoscaler", {"f:spec": {"f:replicas": {}}})), "sloscale", False),
        (managed(("sloscale-autoscaler", {"f:spec": {"f:replicas": {}}})),
         "sloscale-autoscaler", True),
        ({"metadata": {}}, "sloscale", False),
    ],
)
def test_owns_replicas(deployment: dict[str, Any], manager: str, owns: bool) -> None:
    assert owns_replicas(deployment, manager) is owns


@pytest.mark.parametrize(
    ("after", "changed"),
    [
        ({"metadata": {"name": "a", "resourceVersion": "9", "managedFields": [1]},
          "spec": {"x": 1}, "status": {"ready": 3}}, False),
        ({"metadata": {"name": "a", "resourceVersion": "9"}, "spec": {"x": 2}}, True),
        ({"metadata": {"name": "a", "labels": {"l": "v"}}, "spec": {"x": 1}}, True),
    ],
)
def test_only_real_changes_count(after: dict[str, Any], changed: bool) -> None:
    before = {"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 1},
              "status": {"ready": 1}}
    assert (comparable(before) != comparable(after)) is changed
