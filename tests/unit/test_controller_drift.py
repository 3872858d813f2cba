"""Drift detection for child events, and status writes that skip no-op patches."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from sloscale.controller.drift import contains, drifted, status_only_refresh_ok
from sloscale.controller.reconcile import refresh_status
from tests.unit.render_cases import CASES, render_case


@pytest.mark.parametrize(
    ("live", "wanted", "holds"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        ({}, {"a": 1}, False),
        ({}, {"a": None, "b": {}, "c": []}, True),  # the server drops empty values
        ({"r": "1"}, {"r": 1}, True),  # quantities come back as strings
        ({"r": "true"}, {"r": True}, False),
        ({"l": [{"n": 1, "p": "TCP"}]}, {"l": [{"n": 1}]}, True),  # defaults added
        ({"l": [{"n": 1}, {"n": 2}]}, {"l": [{"n": 1}]}, False),  # an extra item
        ({"l": [{"n": 2}]}, {"l": [{"n": 1}]}, False),
        ({"l": "x"}, {"l": ["x"]}, False),
        ("scalar", {"a": 1}, False),
    ],
)
def test_contains(live: Any, wanted: Any, holds: bool) -> None:
    assert contains(live, wanted) is holds


def served(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest as the API server returns it: defaults, metadata and status added."""
    live = copy.deepcopy(manifest)
    live["metadata"].update(uid="u-1", resourceVersion="42", generation=1,
                            managedFields=[{"manager": "sloscale"}],
                            annotations={**live["metadata"].get("annotations", {}),
                                         "deployment.kubernetes.io/revision": "1"})
    live["status"] = {"readyReplicas": 1}
    if live["kind"] == "Deployment":
        pod = live["spec"]["template"]["spec"]
        pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst")
        for container in pod["containers"]:
            container["terminationMessagePath"] = "/dev/termination-log"
            for port in container.get("ports", []):
                port.setdefault("protocol", "TCP")
    return live


CASE = "autoscaled-min3-pdb"


def child(kind: str) -> dict[str, Any]:
    return next(m for m in render_case(CASE) if m["kind"] == kind)


@pytest.mark.parametrize("kind", ["Deployment", "Service", "PodDisruptionBudget"])
def test_a_served_child_has_not_drifted(kind: str) -> None:
    assert not drifted(render_case(CASE), served(child(kind)))


def edited(kind: str, edit: Any) -> dict[str, Any]:
    live = served(child(kind))
    edit(live)
    return live


@pytest.mark.parametrize(
    ("kind", "edit"),
    [
        ("Deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
            image="evil:latest")),
        ("Deployment", lambda d: d["metadata"]["labels"].clear()),
        ("Deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0]["args"].pop()),
        ("Service", lambda s: s["spec"]["ports"].pop()),
        ("Service", lambda s: s["spec"].update(selector={"app": "other"})),
        ("PodDisruptionBudget", lambda p: p["metadata"].update(ownerReferences=[])),
    ],
    ids=["image", "labels", "args", "port", "selector", "owner"],
)
def test_an_edited_child_has_drifted(kind: str, edit: Any) -> None:
    assert drifted(render_case(CASE), edited(kind, edit))


def test_a_child_no_longer_rendered_counts_as_drifted() -> None:
    pdb = served(child("PodDisruptionBudget"))
    without_pdb = [m for m in render_case(CASE) if m["kind"] != "PodDisruptionBudget"]
    assert drifted(without_pdb, pdb)


@pytest.mark.parametrize(
    ("reason", "ok"),
    [("AllReplicasReady", True), ("RollingOut", True), ("Creating", True),
     ("SecretNotFound", False), ("ApplyFailed", False), ("InvalidSpec", False), (None, False)],
)
def test_status_only_refresh_only_without_a_problem(reason: str | None, ok: bool) -> None:
    status = {"conditions": [{"type": "Ready", "reason": reason}]} if reason else {}
    assert status_only_refresh_ok(status) is ok


class StatusRecorder:
    """Serves one Deployment and records status patches (the reconcile's Cluster, reduced)."""

    def __init__(self, deployment: dict[str, Any]) -> None:
        self.deployment = deployment
        self.patches: list[dict[str, Any]] = []

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.deployment

    observed = get  # no watch here: what a read would return

    def newest(self, body: dict[str, Any]) -> dict[str, Any]:
        return body  # no write of ours newer than what the test hands in

    def patch_status(self, namespace: str, name: str, status: dict[str, Any],
                     resource_version: str | None = None) -> None:
        self.patches.append(status)


def test_status_is_patched_only_when_it_changes() -> None:
    body = {"metadata": {"name": "auto3", "namespace": "default", "generation": 2,
                         "resourceVersion": "7"},
            "spec": CASES[CASE]["spec"]}
    deployment = served(child("Deployment"))
    deployment["spec"]["replicas"] = 3  # the autoscaler's field
    deployment["status"] = {"replicas": 3, "readyReplicas": 2, "availableReplicas": 2,
                            "updatedReplicas": 3, "observedGeneration": 1}
    recorder = StatusRecorder(deployment)
    now = datetime(2026, 11, 23, tzinfo=UTC)
    first = refresh_status(recorder, body, now)  # type: ignore[arg-type]
    assert len(recorder.patches) == 1 and first["readyReplicas"] == 2
    body["status"] = first
    refresh_status(recorder, body, now)  # type: ignore[arg-type]
    assert len(recorder.patches) == 1, "an unchanged status is not written again"
    deployment["status"]["readyReplicas"] = 3
    deployment["status"]["availableReplicas"] = 3
    third = refresh_status(recorder, body, now)  # type: ignore[arg-type]
    assert len(recorder.patches) == 2
    assert {c["type"]: c["status"] for c in third["conditions"]}["Ready"] == "True"
