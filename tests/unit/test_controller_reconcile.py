"""Pure helpers of the reconcile: field ownership, change detection, status conflicts."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from sloscale.controller.reconcile import (
    RenderCache,
    ServiceLocks,
    Settings,
    apply_children,
    comparable,
    owns_replicas,
    rendered_children,
    repair_patch,
    write_status,
)
from sloscale.kube.errors import StatusConflict
from sloscale.kube.status import STATUS_ATTEMPTS
from sloscale.render.contract import load_package_templates
from tests.unit.render_cases import CASES


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


class StoreWithARacingWriter:
    """The API server's optimistic concurrency for one InferenceService, as the reconcile sees
    it: a status patch with a stale resourceVersion is a 409; `race` writes of another client
    (the autoscaler's condition) land between the reconcile's read and its write."""

    def __init__(self, races: int) -> None:
        self.races = races
        self.isvc: dict[str, Any] = {
            "metadata": {"name": "a", "namespace": "ns", "generation": 2,
                         "resourceVersion": "10"},
            "status": {"conditions": []}}
        self.conflicts = 0

    def _bump(self) -> None:
        meta = self.isvc["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        if self.races > 0:
            self.races -= 1
            self.isvc["status"]["conditions"] = [
                {"type": "MetricsAvailable", "status": "False", "reason": "NoSamples",
                 "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
            self._bump()
        return {"metadata": {"generation": 1}, "spec": {"replicas": 1},
                "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                           "availableReplicas": 1, "updatedReplicas": 1}}

    observed = get  # no watch here: what a read would return

    def get_inferenceservice(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.isvc)

    def newest(self, body: dict[str, Any]) -> dict[str, Any]:
        return body  # no write of ours newer than what the test hands in

    def patch_status(self, namespace: str, name: str, status: dict[str, Any],
                     resource_version: str | None) -> None:
        if resource_version != self.isvc["metadata"]["resourceVersion"]:
            self.conflicts += 1
            raise StatusConflict(name)
        self.isvc["status"].update(status)
        self._bump()


NOW = datetime(2026, 1, 2, tzinfo=UTC)


def test_status_conflict_is_recomputed_keeping_the_other_writers_conditions() -> None:
    store = StoreWithARacingWriter(races=2)
    status = write_status(store, store.get_inferenceservice("ns", "a"), None, 1, NOW)
    assert store.conflicts == 2
    types = [c["type"] for c in store.isvc["status"]["conditions"]]
    assert types == ["Ready", "Available", "Progressing", "MetricsAvailable"]
    assert store.isvc["status"] == {**status, "conditions": store.isvc["status"]["conditions"]}


def test_status_conflict_past_the_attempts_is_raised_for_the_caller_to_retry() -> None:
    store = StoreWithARacingWriter(races=STATUS_ATTEMPTS)
    with pytest.raises(StatusConflict):
        write_status(store, store.get_inferenceservice("ns", "a"), None, 1, NOW)
    assert store.conflicts == STATUS_ATTEMPTS


def test_status_of_an_older_generation_is_not_written_over_a_newer_spec() -> None:
    store = StoreWithARacingWriter(races=1)
    stale = store.get_inferenceservice("ns", "a")
    store.isvc["metadata"]["generation"] = 3  # the spec changed: its own reconcile reports
    write_status(store, stale, None, 1, NOW)
    assert store.conflicts == 1 and store.isvc["status"]["conditions"][0]["type"] == (
        "MetricsAvailable")


def test_repair_patch_sets_what_we_render_on_the_version_read() -> None:
    rendered = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "a", "namespace": "ns", "labels": {"ours": "a"},
                             "ownerReferences": [{"uid": "owner"}]},
                "spec": {"selector": {"app": "a"},
                         "ports": [{"name": "http", "port": 8000}, {"name": "grpc", "port": 8001}]}}
    assert repair_patch(rendered, "7") == {
        "metadata": {"labels": {"ours": "a"}, "ownerReferences": [{"uid": "owner"}],
                     "resourceVersion": "7"},
        "spec": {"selector": {"app": "a"},
                 "ports": [{"name": "http", "port": 8000}, {"name": "grpc", "port": 8001}]}}


def test_render_cache_keeps_each_services_latest_rendering() -> None:
    cache = RenderCache(size=2)
    renders: list[str] = []

    def render(name: str) -> Any:
        return lambda: renders.append(name) or [{"kind": name}]

    first = cache.get(("a",), "v1", render("a1"))
    assert cache.get(("a",), "v1", render("a1")) is first
    cache.get(("a",), "v2", render("a2"))
    cache.get(("a",), "v1", render("a1"))  # replaced by v2's, not kept beside it
    assert renders == ["a1", "a2", "a1"]
    renders.clear()
    cache.get(("a",), "v2", render("a2"))  # a new spec replaces a's rendering ...
    cache.get(("b",), "v1", render("b1"))  # ... so b fits beside it
    cache.get(("a",), "v2", render("a2"))  # a is now the most recent; b goes next
    cache.get(("c",), "v1", render("c1"))
    cache.get(("a",), "v2", render("a2"))
    cache.get(("b",), "v1", render("b1"))
    cache.get(("a",), "v1", render("a1"))  # the old spec again: rendered again
    assert renders == ["a2", "b1", "c1", "b1", "a1"]
    cache.forget(("a",))  # deleted: its rendering goes at once
    cache.forget(("gone",))
    cache.get(("a",), "v1", render("a1"))
    assert renders[-1] == "a1" and len(renders) == 6


def test_a_services_reconciles_and_refreshes_run_one_at_a_time() -> None:
    """A reconcile holding service a's lock keeps a's refresh waiting (its status would be
    written over by the reconcile's older Deployment), not b's."""
    locks, order = ServiceLocks(), []
    holding, release = threading.Event(), threading.Event()

    def reconcile_a() -> None:
        with locks.held("a"):
            holding.set()
            release.wait(5)
            order.append("reconcile a")

    def refresh(uid: str) -> None:
        with locks.held(uid):
            order.append(f"refresh {uid}")

    first = threading.Thread(target=reconcile_a)
    first.start()
    assert holding.wait(5)
    waiting = threading.Thread(target=refresh, args=("a",))
    waiting.start()
    refresh("b")
    waiting.join(0.2)
    assert waiting.is_alive() and order == ["refresh b"]
    release.set()
    first.join(5)
    waiting.join(5)
    assert order == ["refresh b", "reconcile a", "refresh a"]
    assert "a" not in locks and "b" not in locks  # kept only while held or waited for


class Children:
    """An API server holding children by (kind, name), for apply_children."""

    def __init__(self, *existing: dict[str, Any]) -> None:
        self.objects = {(o["kind"], o["metadata"]["name"]): o for o in existing}

    def get(self, api_version: str, kind: str, namespace: str,
            name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get((kind, name)))

    observed = get  # no watch here: what a read would return

    def apply(self, manifest: dict[str, Any], field_manager: str = "") -> dict[str, Any]:
        self.objects[(manifest["kind"], manifest["metadata"]["name"])] = manifest
        return manifest


def child(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "spec": spec,
            "metadata": {"name": "svc", "namespace": "ns"}}


def test_one_event_per_reason_names_every_child() -> None:
    events: list[tuple[str, str, str]] = []
    post = lambda kind, reason, message: events.append((kind, reason, message))  # noqa: E731
    cluster = Children(child("Service", {"port": 1}), child("PodDisruptionBudget", {"m": 1}))
    rendered = [child("Deployment", {"replicas": 1}), child("ConfigMap", {"a": 1}),
                child("Service", {"port": 2}), child("PodDisruptionBudget", {"m": 1})]
    apply_children(cluster, rendered, post)  # type: ignore[arg-type]
    assert events == [("Normal", "Created", "created Deployment svc, ConfigMap svc"),
                      ("Normal", "Updated", "put back or changed Service svc")]
    events.clear()
    apply_children(cluster, rendered, post)  # type: ignore[arg-type]
    assert events == []


@pytest.mark.parametrize(
    ("watched_version", "written_version", "newer"),
    [("10", "12", True), ("12", "12", False), ("13", "12", False), ("10", "x1", False)],
)
def test_a_status_write_newer_than_the_watched_object_is_used(
        watched_version: str, written_version: str, newer: bool) -> None:
    from sloscale.kube.status import with_newer_write

    body = {"metadata": {"name": "a", "namespace": "ns", "resourceVersion": watched_version,
                         "generation": 1}, "spec": {"x": 1}, "status": {"old": True}}
    found = with_newer_write(body, (written_version, 2, {"new": True}))
    assert (found is not body) is newer
    if newer:
        assert found["status"] == {"new": True} and found["spec"] == {"x": 1}
        assert found["metadata"]["resourceVersion"] == written_version
        assert found["metadata"]["generation"] == 2


def test_status_answers_coming_back_out_of_order_leave_the_newest_to_merge() -> None:
    from sloscale.kube.status import WrittenStatuses

    written = WrittenStatuses()
    written.remember("ns", "a", {"metadata": {"resourceVersion": "12"}, "status": {"n": 12}})
    # an older write whose answer came back later
    written.remember("ns", "a", {"metadata": {"resourceVersion": "11"}, "status": {"n": 11}})
    watched = {"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "10"}}
    assert written.newest(watched)["status"] == {"n": 12}
    caught_up = {"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "12"}}
    assert written.newest(caught_up) is caught_up
    assert written.newest(watched) is watched  # the watch caught up: the answer was let go


class WithHpas:
    """A cluster that knows its HPAs (all in one namespace) and no ServiceMonitor CRD."""

    def __init__(self, *targets: str) -> None:
        self.hpas = [{"metadata": {"name": f"hpa-{t}", "namespace": "default"},
                      "spec": {"scaleTargetRef": {"kind": "Deployment", "name": t}}}
                     for t in targets]

    def hpas_near(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        return self.hpas

    def crd_exists(self, name: str) -> bool:
        return False


def test_a_deployment_another_autoscaler_scales_is_rendered_without_replicas() -> None:
    body = copy.deepcopy(CASES["example-pytorch-resnet"])  # autoscaling off, replicas set
    body["metadata"] |= {"namespace": "default", "uid": "u1"}
    name = body["metadata"]["name"]
    settings = Settings(templates=load_package_templates(), storage_initializer_image="init")

    def deployment_spec(cluster: WithHpas) -> dict[str, Any]:
        children = rendered_children(cluster, settings, body)  # type: ignore[arg-type]
        assert children is not None
        return children[0]["spec"]

    assert "replicas" not in deployment_spec(WithHpas(name))
    # Gone, or aimed elsewhere: spec.replicas again (the cache keys on what the cluster holds).
    assert deployment_spec(WithHpas())["replicas"] == body["spec"]["replicas"]
    assert deployment_spec(WithHpas("other"))["replicas"] == body["spec"]["replicas"]
