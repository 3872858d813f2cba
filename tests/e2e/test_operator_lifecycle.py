"""e2e: a user applies InferenceServices and the operator converges them on a real cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.localcluster.cluster import LocalCluster
from tests.e2e.operator_process import (
    ROOT,
    OperatorProcess,
    get_json,
    install_api,
    running_operator,
    wait_for,
)
from tests.e2e.operator_process import wait_ready as wait_ready_in

pytestmark = pytest.mark.e2e
NS = "e2e-operator"
LABEL = "serving.sloscale.io/inferenceservice"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def service_names(path: Path) -> list[str]:
    return [d["metadata"]["name"] for d in yaml.safe_load_all(path.read_text())
            if d and d.get("kind") == "InferenceService"]


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    install_api(cluster, NS)
    # The Prometheus Operator's CRD, reduced to its name: ServiceMonitors are rendered only
    # where it exists.
    cluster.kubectl("apply", "--server-side", "-f", str(Path(__file__).parent /
                                                         "servicemonitor-crd.yaml"))
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(cluster, log, NS) as process:
        yield process


def wait_ready(cluster: LocalCluster, name: str, timeout_s: int = 120) -> None:
    wait_ready_in(cluster, NS, name, timeout_s)


def condition(cluster: LocalCluster, name: str, kind: str) -> dict[str, Any] | None:
    isvc = get_json(cluster, "-n", NS, "inferenceservice", name) or {}
    found = [c for c in isvc.get("status", {}).get("conditions", []) if c["type"] == kind]
    return found[0] if found else None


def uid_of(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else obj["metadata"]["uid"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_becomes_ready_with_owned_children(
        cluster: LocalCluster, operator: OperatorProcess, example: Path) -> None:
    """Story: I apply an example and kubectl wait --for=condition=Ready returns."""
    cluster.kubectl("apply", "--server-side", "-n", NS, "-f", str(example))
    for name in service_names(example):
        wait_ready(cluster, name)
        isvc = get_json(cluster, "-n", NS, "inferenceservice", name)
        assert isvc is not None
        for kind in ("deployment", "service"):
            child = get_json(cluster, "-n", NS, kind, name)
            assert child is not None, f"{kind} {name} missing"
            owners = child["metadata"]["ownerReferences"]
            assert [o["uid"] for o in owners] == [isvc["metadata"]["uid"]]
        pods = get_json(cluster, "-n", NS, "pods", "-l", f"{LABEL}={name}")
        assert pods is not None and pods["items"], f"no pods labelled {LABEL}={name}"
        status = isvc["status"]
        assert status["url"] == f"http://{name}.{NS}.svc:8000"
        assert status["selector"] == f"{LABEL}={name}"
        assert status["readyReplicas"] == status["desiredReplicas"]
        # kopf records the handled spec right after the handler returns, which can be just
        # after the status said Ready.
        wait_for(lambda name=name: "serving.sloscale.io/last-handled-configuration" in (
            get_json(cluster, "-n", NS, "inferenceservice", name) or {}).get(
                "metadata", {}).get("annotations", {}), timeout_s=30, what="kopf's annotation")
        annotations = (get_json(cluster, "-n", NS, "inferenceservice", name) or {})[
            "metadata"].get("annotations", {})
        assert not [key for key in annotations if key.startswith("kopf.zalando.org")]
    operator.assert_alive()


def test_converged_children_match_what_is_rendered(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """The drift check on child events must see a converged child as unchanged.

    Otherwise every rollout event of every service costs a full re-apply again (what made
    1,000 services take minutes to get their Deployments before the check existed).
    """
    from kubernetes import config as kube_config

    from sloscale.controller.drift import drifted
    from sloscale.controller.reconcile import Settings, rendered_children
    from sloscale.kube.client import Kube
    from sloscale.render.contract import load_package_templates
    from sloscale.render.values import DEFAULT_STORAGE_IMAGE

    kube = Kube(kube_config.new_client_from_config(str(cluster.kubeconfig)))
    settings = Settings(load_package_templates(), DEFAULT_STORAGE_IMAGE)
    for name in [n for path in EXAMPLES for n in service_names(path)]:
        wait_ready(cluster, name)
        isvc = kube.get_inferenceservice(NS, name)
        assert isvc is not None
        rendered = rendered_children(kube, settings, isvc)
        assert rendered is not None
        for manifest in rendered:
            live = kube.get(manifest["apiVersion"], manifest["kind"], NS, name)
            assert live is not None and not drifted(rendered, live), (name, manifest["kind"])


def test_servicemonitor_scrapes_the_metrics_port(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: with the Prometheus Operator installed, each service gets a ServiceMonitor."""
    wait_ready(cluster, "echo-python")
    monitor = get_json(cluster, "-n", NS, "servicemonitor", "echo-python")
    assert monitor is not None
    assert monitor["spec"]["selector"]["matchLabels"] == {LABEL: "echo-python"}
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    isvc = get_json(cluster, "-n", NS, "inferenceservice", "echo-python") or {}
    assert monitor["metadata"]["ownerReferences"][0]["uid"] == isvc["metadata"]["uid"]


def sloscale_owns_replicas(cluster: LocalCluster, name: str) -> bool:
    deployment = get_json(cluster, "-n", NS, "deployment", name, "--show-managed-fields") or {}
    for entry in deployment["metadata"]["managedFields"]:
        if entry["manager"] == "sloscale" and "f:replicas" in entry["fieldsV1"].get("f:spec", {}):
            return True
    return False


def test_replicas_left_to_autoscaler_when_autoscaling(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: with autoscaling on, the autoscaler's replica writes are not fought over."""
    wait_ready(cluster, "bert-onnx")
    wait_ready(cluster, "resnet-pytorch")
    assert not sloscale_owns_replicas(cluster, "bert-onnx")
    assert sloscale_owns_replicas(cluster, "resnet-pytorch")
    patch = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "bert-onnx", "namespace": NS},
                        "spec": {"replicas": 2}})
    cluster.kubectl("apply", "--server-side", "--field-manager=sloscale-autoscaler", "-f", "-",
                    input=patch)
    wait_ready(cluster, "bert-onnx")
    assert (get_json(cluster, "-n", NS, "deployment", "bert-onnx") or {})["spec"]["replicas"] == 2


def patch_spec(cluster: LocalCluster, name: str, spec: dict[str, Any]) -> None:
    cluster.kubectl("patch", "-n", NS, "inferenceservice", name, "--type=merge",
                    "-p", json.dumps({"spec": spec}))


def deployment_replicas(cluster: LocalCluster, name: str) -> int:
    return int((get_json(cluster, "-n", NS, "deployment", name) or {})["spec"]["replicas"])


def test_enabling_autoscaling_keeps_running_replicas(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: I turn autoscaling on; the running replicas stay until the autoscaler acts."""
    wait_ready(cluster, "resnet-pytorch")
    patch_spec(cluster, "resnet-pytorch", {"replicas": 3})
    wait_for(lambda: deployment_replicas(cluster, "resnet-pytorch") == 3, what="3 replicas")
    patch_spec(cluster, "resnet-pytorch", {"autoscaling": {
        "enabled": True, "minReplicas": 2, "objective": {"targetMs": 40}}})
    wait_for(lambda: not sloscale_owns_replicas(cluster, "resnet-pytorch"),
             what="replicas handed to the autoscaler")
    assert deployment_replicas(cluster, "resnet-pytorch") == 3
    patch_spec(cluster, "resnet-pytorch", {"replicas": 2, "autoscaling": {"enabled": False}})
    wait_for(lambda: sloscale_owns_replicas(cluster, "resnet-pytorch")
             and deployment_replicas(cluster, "resnet-pytorch") == 2,
             what="replicas back with sloscale")
    wait_ready(cluster, "resnet-pytorch")


def test_child_the_api_refuses_is_a_condition_not_a_crash(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: a bad affinity fails only that service, with the API server's reason."""
    manifest = {"apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
                "metadata": {"name": "bad-affinity", "namespace": NS},
                "spec": {"model": {"name": "m", "storageUri": "s3://bucket/m"},
                         "runtime": {"affinity": {"nodeAffinity": "not-an-object"}}}}
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))
    ready = wait_for(lambda: (c := condition(cluster, "bad-affinity", "Ready")) and
                     c["reason"] == "ApplyFailed" and c, what="ApplyFailed condition")
    assert "Deployment bad-affinity" in ready["message"]
    wait_ready(cluster, "echo-python")  # the others are untouched
    operator.assert_alive()
    cluster.kubectl("delete", "-n", NS, "inferenceservice", "bad-affinity")


def test_pdb_follows_replicas(cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: a PodDisruptionBudget exists only while more than one replica runs."""
    wait_ready(cluster, "resnet-pytorch")
    assert get_json(cluster, "-n", NS, "pdb", "resnet-pytorch") is not None
    cluster.kubectl("scale", "-n", NS, "inferenceservice/resnet-pytorch", "--replicas=1")
    wait_for(lambda: get_json(cluster, "-n", NS, "pdb", "resnet-pytorch") is None,
             what="PDB removed at 1 replica")
    wait_for(lambda: (get_json(cluster, "-n", NS, "deployment", "resnet-pytorch") or {}
                      ).get("spec", {}).get("replicas") == 1, what="Deployment scaled to 1")
    cluster.kubectl("scale", "-n", NS, "inferenceservice/resnet-pytorch", "--replicas=2")
    wait_for(lambda: get_json(cluster, "-n", NS, "pdb", "resnet-pytorch") is not None,
             what="PDB back at 2 replicas")
    wait_ready(cluster, "resnet-pytorch")


def test_drift_is_repaired(cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: someone deletes the Service and hand-edits the image; both are put back."""
    wait_ready(cluster, "echo-python")
    old_uid = uid_of(get_json(cluster, "-n", NS, "service", "echo-python"))
    cluster.kubectl("delete", "-n", NS, "service", "echo-python")
    wait_for(lambda: uid_of(get_json(cluster, "-n", NS, "service", "echo-python")) not in (
        None, old_uid), what="Service recreated")
    cluster.kubectl("set", "image", "-n", NS, "deployment/echo-python", "triton=evil:latest")
    cluster.kubectl("label", "-n", NS, "deployment/echo-python", "team=ml")

    def image_restored() -> bool:
        deployment = get_json(cluster, "-n", NS, "deployment", "echo-python") or {}
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        return container["image"].startswith("nvcr.io/nvidia/tritonserver:")

    wait_for(image_restored, what="image put back")
    deployment = get_json(cluster, "-n", NS, "deployment", "echo-python") or {}
    assert deployment["metadata"]["labels"]["team"] == "ml"  # fields others own stay
    wait_ready(cluster, "echo-python")


def test_missing_secret_is_a_condition_then_heals(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: the credentials Secret is missing; I see why, create it, and it becomes Ready."""
    manifest = {"apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
                "metadata": {"name": "needs-secret", "namespace": NS},
                "spec": {"model": {"name": "m", "storageUri": "s3://bucket/m",
                                   "credentialsSecretName": "absent-secret"}}}
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))
    ready = wait_for(lambda: (c := condition(cluster, "needs-secret", "Ready")) and
                     c["reason"] == "SecretNotFound" and c, what="SecretNotFound condition")
    assert ready["status"] == "False" and "absent-secret" in ready["message"]
    events = get_json(cluster, "-n", NS, "events", "--field-selector",
                      "involvedObject.name=needs-secret,reason=SecretNotFound") or {}
    assert any(e["type"] == "Warning" for e in events["items"])
    assert get_json(cluster, "-n", NS, "deployment", "needs-secret") is None
    cluster.kubectl("create", "secret", "generic", "-n", NS, "absent-secret",
                    "--from-literal=AWS_ACCESS_KEY_ID=x")
    wait_ready(cluster, "needs-secret", timeout_s=120)
    operator.assert_alive()


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"model": {"name": "m", "storageUri": "ftp://host/m"}}, "spec.model.storageUri"),
        ({"model": {"name": "m", "storageUri": "s3://bucket/m"},
          "autoscaling": {"enabled": True, "minReplicas": 4, "maxReplicas": 2,
                          "objective": {"targetMs": 10}}}, "spec.autoscaling.minReplicas"),
        ({"model": {"name": "m", "storageUri": "s3://bucket/m"},
          "autoscaling": {"enabled": True}}, "spec.autoscaling.objective"),
        ({"model": {"name": "m", "storageUri": "s3://bucket/m"},
          "autoscaling": {"objective": {"targetMs": -1}}}, "spec.autoscaling.objective.targetMs"),
        ({"model": {"name": "m", "storageUri": "s3://bucket/m"}, "replicas": -1},
         "spec.replicas"),
        ({"model": {"name": "m", "storageUri": "s3://bucket/m"},
          "runtime": {"shmSize": "lots"}}, "spec.runtime.shmSize"),
    ],
)
def test_admission_rejects_invalid_objects_naming_the_field(
        cluster: LocalCluster, operator: OperatorProcess, spec: dict[str, Any], field: str
) -> None:
    """Story: a typo is refused by kubectl with the field it concerns."""
    manifest = {"apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
                "metadata": {"name": "invalid", "namespace": NS}, "spec": spec}
    result = cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest),
                             check=False)
    assert result.returncode != 0
    assert field in result.stderr, result.stderr


def count(cluster: LocalCluster, kind: str) -> int:
    return len((get_json(cluster, "-n", NS, kind, "-l", LABEL) or {"items": []})["items"])


def created_events(cluster: LocalCluster) -> int:
    events = get_json(cluster, "-n", NS, "events", "--field-selector", "reason=Created,"
                      "involvedObject.kind=InferenceService") or {"items": []}
    return sum(int(e.get("count") or 1) for e in events["items"])


def test_restart_resumes_without_duplicates(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: the operator restarts; nothing is duplicated and every service stays Ready."""
    names = [n for path in EXAMPLES for n in service_names(path)]
    for name in names:
        wait_ready(cluster, name)
    kinds = ("deployments", "services", "replicasets", "pdb")
    before = {kind: count(cluster, kind) for kind in kinds}
    created_before = created_events(cluster)
    operator.stop()
    operator.start()
    wait_for(lambda: operator.log_path.read_text().count("Resuming is processed") >= len(names),
             what="every service resumed")
    for name in names:
        wait_ready(cluster, name)
    assert {kind: count(cluster, kind) for kind in kinds} == before
    assert created_events(cluster) == created_before
    operator.assert_alive()


def test_deleting_the_service_collects_its_children(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: I delete an InferenceService and its Deployment, Service and pods go too."""
    wait_ready(cluster, "resnet-pytorch")
    cluster.kubectl("delete", "-n", NS, "inferenceservice", "resnet-pytorch", "--wait=true")
    for kind in ("deployment", "service", "pdb"):
        wait_for(lambda kind=kind: get_json(cluster, "-n", NS, kind, "resnet-pytorch") is None,
                 what=f"{kind} garbage-collected")
    wait_for(lambda: not (get_json(cluster, "-n", NS, "pods", "-l",
                                   f"{LABEL}=resnet-pytorch") or {"items": [1]})["items"],
             what="pods gone")
    operator.assert_alive()


def test_autoscaler_lists_read_every_page(
        cluster: LocalCluster, operator: OperatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop lists in pages; with a page of one object, every object must still be read."""
    from kubernetes import config as kube_config

    from sloscale.autoscale import kube as autoscale_kube
    from sloscale.kube.client import Kube

    monkeypatch.setattr(autoscale_kube, "LIST_PAGE", 1)
    listed = (get_json(cluster, "-n", NS, "inferenceservices") or {"items": []})["items"]
    names = [item["metadata"]["name"] for item in listed]
    assert len(names) > 2
    lister = autoscale_kube.KubeAutoscalerClient(
        Kube(kube_config.new_client_from_config(str(cluster.kubeconfig))), [NS])
    assert sorted(s["metadata"]["name"] for s in lister.list_inference_services()) == sorted(
        names)
    snapshot = lister.snapshot_workloads(LABEL)
    deployments = (get_json(cluster, "-n", NS, "deployments", "-l", LABEL) or {})["items"]
    assert sorted(key.name for key in snapshot["deployments"]) == sorted(
        d["metadata"]["name"] for d in deployments)
    pods = (get_json(cluster, "-n", NS, "pods", "-l", LABEL) or {"items": []})["items"]
    assert sum(len(found) for found in snapshot["pods"].values()) == len(pods) > 2


def test_autoscaler_informers_follow_the_api_server(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """The loop's pods and Deployments come from watches: a new Deployment and its pod show
    up, a deleted one goes, with no list in between."""
    from kubernetes import config as kube_config

    from sloscale.autoscale import kube as autoscale_kube
    from sloscale.kube.client import Kube

    watcher = autoscale_kube.KubeAutoscalerClient(
        Kube(kube_config.new_client_from_config(str(cluster.kubeconfig))), [NS])
    watcher.start_informers(LABEL)
    try:
        wait_for(lambda: watcher._informed("deployments") is not None, what="informers in sync")
        name = "informer-probe"
        manifest = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "labels": {LABEL: name}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {LABEL: name}},
                     "template": {"metadata": {"labels": {LABEL: name}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}},
        }  # fmt: skip

        def names(kind: str) -> set[str]:
            return {i["metadata"]["labels"][LABEL] for i in watcher._informed(kind) or []}

        cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        wait_for(lambda: name in names("deployments") and name in names("pods"),
                 what="the new Deployment and its pod seen by watch")
        cluster.kubectl("delete", "-n", NS, "deployment", name, "--wait=true")
        wait_for(lambda: name not in names("deployments"), what="the deletion seen by watch")
    finally:
        watcher.stop_informers()
