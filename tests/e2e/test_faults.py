"""e2e fault tests: nothing is lost and nothing crashes (issue 8).

User story: an SRE runs sloscale through the failures a cluster really has: the operator
killed mid-work, the API server restarted, Prometheus gone for minutes, other writers racing
it, hand edits, deletions while it is down, garbage in its annotations. Each test names the
guarantee it proves; docs/operating.md, section "Reliability", lists them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from hack.localcluster.cluster import LocalCluster, free_port
from tests.e2e.autoscale_stack import Stack, outage_holds_replicas_and_recovers, running_stack
from tests.e2e.operator_process import OperatorProcess, get_json, install_api, wait_for
from tests.e2e.operator_process import wait_ready as wait_ready_in

pytestmark = pytest.mark.e2e
NS = "e2e-faults"
API_OUTAGE_S = 70
LABEL = "serving.sloscale.io/inferenceservice"
FLEET = 50
OUTAGE_S = 120.0  # "Prometheus down for minutes"
API = ("serving.sloscale.io", "v1alpha1")


def manifest(name: str, replicas: int = 1, **spec: Any) -> dict[str, Any]:
    """A CPU-only service (no GPU to wait for), fetched from s3 as kwok pretends."""
    return {"apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"model": {"name": "m", "format": "onnx", "storageUri": "s3://bucket/m"},
                     "runtime": {"resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}},
                     "replicas": replicas, **spec}}


def apply(cluster: LocalCluster, *objects: dict[str, Any]) -> None:
    items = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(items))


def items(cluster: LocalCluster, kind: str, *selector: str) -> list[dict[str, Any]]:
    found = get_json(cluster, "-n", NS, kind, *selector) or {"items": []}
    return list(found["items"])


def get(cluster: LocalCluster, kind: str, name: str) -> dict[str, Any] | None:
    return get_json(cluster, "-n", NS, kind, name)


def wait_ready(cluster: LocalCluster, *names: str, timeout_s: int = 120) -> None:
    for name in names:
        wait_ready_in(cluster, NS, name, timeout_s)


def uid_of(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else obj["metadata"]["uid"]


def owner_uids(obj: dict[str, Any]) -> list[str]:
    return [o["uid"] for o in obj["metadata"].get("ownerReferences") or []]


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for found in ((obj or {}).get("status") or {}).get("conditions") or []:
        if found["type"] == kind:
            return dict(found)
    return {}


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    """The operator, its autoscaler pointed at a port where nothing listens: autoscaled
    services hold (MetricsAvailable=False), as in the README's walkthrough."""
    install_api(cluster, NS)
    log = tmp_path_factory.mktemp("faults") / "operator.log"
    process = OperatorProcess(cluster, log, "--namespace", NS, "--prometheus-url",
                              f"http://127.0.0.1:{free_port()}", "--autoscaler-tick-s", "1")
    process.start()
    try:
        yield process
    finally:
        process.stop()
        print(log.read_text()[-8000:])
        cluster.kubectl("delete", "namespace", NS, "--wait=false")  # lighter for later modules


def test_sigkill_mid_reconcile_then_restart_converges_with_no_duplicate_or_orphan(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: the operator's node dies while it creates 50 services; its replacement
    finishes the job, and every service has exactly one of each child, owned by it."""
    names = [f"fleet-{i:02d}" for i in range(FLEET)]
    apply(cluster, *[manifest(name, replicas=2) for name in names])

    def fleet(kind: str) -> list[dict[str, Any]]:
        return [i for i in items(cluster, kind, "-l", LABEL)
                if i["metadata"]["labels"][LABEL].startswith("fleet-")]

    deadline = time.monotonic() + 60
    while len(fleet("deployments")) < 3:  # polled tightly: the kill must land mid-way
        assert time.monotonic() < deadline, "the operator created no Deployment in 60 s"
    operator.kill()
    at_kill = {kind: len(fleet(kind)) for kind in ("deployments", "services", "pdb")}
    ready_at_kill = sum(condition(i, "Ready").get("status") == "True"
                        for i in items(cluster, "inferenceservices"))
    assert min(at_kill.values()) < FLEET, f"killed too late to prove anything: {at_kill}"
    assert ready_at_kill < FLEET

    operator.start()
    cluster.kubectl("wait", "-n", NS, "--for=condition=Ready", "--all", "--timeout=240s",
                    "inferenceservices", timeout=250)
    services = {i["metadata"]["name"]: i["metadata"]["uid"]
                for i in items(cluster, "inferenceservices")}
    assert sorted(services) == names
    for kind in ("deployments", "services", "pdb"):
        children = fleet(kind)
        per_service = Counter(c["metadata"]["labels"][LABEL] for c in children)
        assert per_service == Counter(names), f"{kind}: not exactly one per service"
        for child in children:  # owned by the live service it is labelled for, by uid
            assert owner_uids(child) == [services[child["metadata"]["labels"][LABEL]]]
    deployments = {d["metadata"]["uid"] for d in fleet("deployments")}
    replicasets = fleet("replicasets")
    assert Counter(r["metadata"]["labels"][LABEL] for r in replicasets) == Counter(names)
    assert {uid for r in replicasets for uid in owner_uids(r)} == deployments
    pods = fleet("pods")
    assert Counter(p["metadata"]["labels"][LABEL] for p in pods) == Counter(names * 2)
    print(f"killed with {at_kill} children of {FLEET} and {ready_at_kill} Ready")
    operator.assert_alive()
    cluster.kubectl("delete", "-n", NS, "inferenceservices", "--all", "--wait=true",
                    timeout=120)


def test_apiserver_restart_watches_recover_and_changes_in_the_gap_are_handled(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: the API server is away for over a minute (an upgrade); the operator keeps
    running, its watches come back, and what changed while they reconnected is converged."""
    apply(cluster, manifest("gap-edit"), manifest("gap-drift"))
    wait_ready(cluster, "gap-edit", "gap-drift")
    pid = operator.process.pid if operator.process else None
    service_uid = uid_of(get(cluster, "service", "gap-drift"))
    cluster.stop_component("kube-apiserver")
    assert cluster.kubectl("get", "namespace", NS, check=False, timeout=20).returncode != 0
    # Longer than kopf's own retries of a failed request (about 54 s), after which it would
    # let the error stop its watchers (handlers.ApiBackoffs keeps retrying every 30 s).
    time.sleep(API_OUTAGE_S)
    cluster.start_component("kube-apiserver")
    # At once, while the operator's watches are still backing off and reconnecting.
    cluster.kubectl("patch", "-n", NS, "inferenceservice", "gap-edit", "--type=merge",
                    "-p", json.dumps({"spec": {"replicas": 2}}))
    apply(cluster, manifest("gap-new"))
    cluster.kubectl("delete", "-n", NS, "service", "gap-drift")

    wait_for(lambda: ((get(cluster, "deployment", "gap-edit") or {}).get("spec") or {}
                      ).get("replicas") == 2, 90, "the edit made in the gap")
    wait_for(lambda: uid_of(get(cluster, "service", "gap-drift")) not in (None, service_uid),
             90, "the Service deleted in the gap put back")
    wait_for(lambda: get(cluster, "deployment", "gap-new") is not None, 90,
             "the service created in the gap rendered")
    # Pods becoming Ready again is the local control plane's own recovery after a long
    # outage (its scheduler and node leases), not the operator's; only gap-drift, whose pods
    # were never touched, must report Ready from the restored children.
    wait_ready(cluster, "gap-drift")
    operator.assert_alive()
    assert operator.process is not None and operator.process.pid == pid, "operator restarted"


class ForeignStatusWriter:
    """Another controller on the same status (as the autoscaler is): reads, adds its own
    condition, writes with the resourceVersion, retries its 409s, and checks that each write
    it made is still there when it reads again (a write lost to a stale overwrite shows)."""

    def __init__(self, api_client: Any, name: str) -> None:
        from kubernetes import client

        self.custom, self.name = client.CustomObjectsApi(api_client), name
        self.api_exception = client.ApiException
        self.stop, self.written, self.conflicts, self.lost = threading.Event(), 0, 0, []
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                self._write_once()
        except Exception as error:  # reported by the test, not lost in a thread
            self.error = error

    def _write_once(self) -> None:
        obj = self.custom.get_namespaced_custom_object(*API, NS, "inferenceservices",
                                                       self.name)
        seen = condition(obj, "FaultTest").get("message")
        if self.written and seen != str(self.written):
            self.lost.append((self.written, seen))
        others = [c for c in (obj.get("status") or {}).get("conditions") or []
                  if c["type"] != "FaultTest"]
        mine = {"type": "FaultTest", "status": "True", "reason": "Writing",
                "message": str(self.written + 1),
                "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        patch = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                 "status": {"conditions": [*others, mine]}}
        try:
            self.custom.patch_namespaced_custom_object_status(
                *API, NS, "inferenceservices", self.name, patch)
            self.written += 1
        except self.api_exception as error:
            if error.status != 409:
                raise
            self.conflicts += 1


def hammer_deployment_annotations(api_client: Any, name: str,
                                  stop: threading.Event) -> threading.Thread:
    """A third writer, on the child: each change wakes the operator's drift repair."""
    from kubernetes import client

    apps = client.AppsV1Api(api_client)

    def run() -> None:
        tick = 0
        while not stop.is_set():
            tick += 1
            apps.patch_namespaced_deployment(
                name, NS, {"metadata": {"annotations": {"fault-test/tick": str(tick)}}})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def conflicts_retried(operator: OperatorProcess) -> int:
    return operator.log_path.read_text().count("conflict (409), re-reading and retrying")


def test_write_conflicts_are_retried_and_nothing_is_lost(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: other controllers write the same status and child while I change the spec;
    every 409 is recomputed and retried: the last spec wins, nobody's write is dropped."""
    from kubernetes import config as kube_config

    api_client = kube_config.new_client_from_config(str(cluster.kubeconfig))
    apply(cluster, manifest("contended"))
    wait_ready(cluster, "contended")
    before = conflicts_retried(operator)
    writer = ForeignStatusWriter(api_client, "contended")
    writer.thread.start()
    stop_child = threading.Event()
    child_writer = hammer_deployment_annotations(api_client, "contended", stop_child)
    try:
        step, deadline = 0, time.monotonic() + 90
        while conflicts_retried(operator) == before or step < 4:
            assert time.monotonic() < deadline, "no status write of the operator conflicted"
            step += 1
            cluster.kubectl("patch", "-n", NS, "inferenceservice", "contended", "--type=merge",
                            "-p", json.dumps({"spec": {"replicas": 1 + step % 3, "runtime": {
                                "args": [f"--log-verbose={step}"]}}}))
            time.sleep(1)
        stop_child.set()
        child_writer.join(10)
        # The last change is made, and must come through, while the status is still contended.
        last = {"replicas": 3, "runtime": {"args": ["--log-verbose=99"]}}
        cluster.kubectl("patch", "-n", NS, "inferenceservice", "contended", "--type=merge",
                        "-p", json.dumps({"spec": last}))

        def converged() -> bool:
            isvc = get(cluster, "inferenceservice", "contended") or {}
            deployment = get(cluster, "deployment", "contended") or {}
            status = isvc.get("status") or {}
            triton = deployment["spec"]["template"]["spec"]["containers"][0]
            return (deployment["spec"]["replicas"] == 3 and "--log-verbose=99" in triton["args"]
                    and status.get("observedGeneration") == isvc["metadata"]["generation"]
                    and status.get("desiredReplicas") == 3
                    and condition(isvc, "Ready").get("status") == "True")

        wait_for(converged, 90, "the last spec, rolled out and reported")
    finally:
        writer.stop.set()
        stop_child.set()
        writer.thread.join(10)
    assert writer.error is None, writer.error
    assert writer.lost == [], f"the operator overwrote another writer's status: {writer.lost}"
    assert writer.written > 10
    final = get(cluster, "inferenceservice", "contended")
    assert condition(final, "FaultTest")["message"] == str(writer.written)
    print(f"{conflicts_retried(operator) - before} operator status conflicts retried; the other "
          f"writer wrote {writer.written} times with {writer.conflicts} conflicts")
    operator.assert_alive()


def test_hand_edits_and_deletions_of_children_are_put_back(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: someone edits the Service's ports, the Deployment's image, args and labels,
    and deletes the PDB; all of it is put back, and a label others added stays."""
    apply(cluster, manifest("drifty", replicas=2))
    wait_ready(cluster, "drifty")
    service, deployment = get(cluster, "service", "drifty"), get(cluster, "deployment", "drifty")
    assert service is not None and deployment is not None
    pdb_uid = uid_of(get(cluster, "pdb", "drifty"))
    assert pdb_uid is not None
    triton = deployment["spec"]["template"]["spec"]["containers"][0]

    cluster.kubectl("patch", "-n", NS, "service", "drifty", "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/ports/0/port", "value": 9999}]))
    cluster.kubectl("patch", "-n", NS, "deployment", "drifty", "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
          "value": "evil:latest"},
         {"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": ["--x"]}]))
    cluster.kubectl("label", "-n", NS, "deployment/drifty", "--overwrite",
                    "app.kubernetes.io/managed-by=someone-else", "team=ml")
    cluster.kubectl("label", "-n", NS, "service/drifty", f"{LABEL}-")
    cluster.kubectl("delete", "-n", NS, "pdb", "drifty")

    def put_back() -> bool:
        now_service = get(cluster, "service", "drifty") or {}
        now_deployment = get(cluster, "deployment", "drifty") or {}
        now_triton = now_deployment["spec"]["template"]["spec"]["containers"][0]
        return (now_service["spec"]["ports"] == service["spec"]["ports"]
                and now_service["metadata"]["labels"] == service["metadata"]["labels"]
                and (now_triton["image"], now_triton["args"]) == (triton["image"], triton["args"])
                and now_deployment["metadata"]["labels"] == {
                    **deployment["metadata"]["labels"], "team": "ml"}
                and uid_of(get(cluster, "pdb", "drifty")) not in (None, pdb_uid))

    wait_for(put_back, 60, "every hand edit put back, the deleted PDB recreated")
    wait_ready(cluster, "drifty")
    operator.assert_alive()


def deployment_replicas(cluster: LocalCluster, name: str) -> int:
    return int(((get(cluster, "deployment", name) or {}).get("spec") or {}).get("replicas", -1))


def test_manual_scale_follows_the_documented_owner(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: with autoscaling off, `kubectl scale infsvc` scales and a `kubectl scale
    deployment` is reverted to spec.replicas; with autoscaling on, the autoscaler owns the
    replicas: the operator never resets them to spec.replicas, the autoscaler keeps its bounds."""
    apply(cluster, manifest("by-hand", replicas=2),
          manifest("by-autoscaler", replicas=1, autoscaling={
              "enabled": True, "minReplicas": 2, "maxReplicas": 3,
              "objective": {"targetMs": 100}, "interval": "2s"}))
    wait_ready(cluster, "by-hand")
    cluster.kubectl("scale", "-n", NS, "deployment/by-hand", "--replicas=5")
    wait_for(lambda: deployment_replicas(cluster, "by-hand") == 2, 60, "a hand scale reverted")
    cluster.kubectl("scale", "-n", NS, "inferenceservice/by-hand", "--replicas=3")
    wait_for(lambda: deployment_replicas(cluster, "by-hand") == 3, 60, "the scale subresource")
    wait_ready(cluster, "by-hand")

    wait_for(lambda: deployment_replicas(cluster, "by-autoscaler") == 2, 60, "minReplicas")
    wait_for(lambda: condition(get(cluster, "inferenceservice", "by-autoscaler"),
                               "MetricsAvailable").get("reason") == "PrometheusUnavailable",
             30, "the autoscaler blind (nothing listens at its Prometheus URL)")
    cluster.kubectl("scale", "-n", NS, "deployment/by-autoscaler", "--replicas=6")
    seen = wait_for(lambda: (n := deployment_replicas(cluster, "by-autoscaler")) <= 3 and [n],
                    60, "the autoscaler's bound (maxReplicas 3) back on the hand scale")
    assert seen == [3], "blind, the autoscaler holds what it finds, within its bounds"
    deployment = get_json(cluster, "-n", NS, "deployment", "by-autoscaler",
                          "--show-managed-fields") or {}
    owners = [e["manager"] for e in deployment["metadata"]["managedFields"]
              if "f:replicas" in (e.get("fieldsV1") or {}).get("f:spec", {})]
    assert owners == ["sloscale-autoscaler"]
    for _ in range(5):  # spec.replicas (1) is not the operator's to apply while autoscaled
        assert deployment_replicas(cluster, "by-autoscaler") == 3
        time.sleep(1)
    operator.assert_alive()


def test_deleted_while_the_operator_is_down_is_collected_and_never_recreated(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: I delete services while the operator is down; the deletion completes at once
    (no finalizer waits for it), the children go with it, and a restart brings none back."""
    names = ["gone-a", "gone-b", "gone-c"]
    apply(cluster, *[manifest(name, replicas=2) for name in names])
    wait_ready(cluster, *names)
    for name in names:
        assert not (get(cluster, "inferenceservice", name) or {})["metadata"].get("finalizers")
    operator.kill()
    cluster.kubectl("delete", "-n", NS, "inferenceservice", *names, "--wait=true",
                    "--timeout=30s", timeout=40)

    def children_left() -> list[str]:
        return [f"{kind}/{i['metadata']['name']}"
                for kind in ("deployments", "services", "pdb", "replicasets", "pods")
                for i in items(cluster, kind, "-l", f"{LABEL} in ({','.join(names)})")]

    wait_for(lambda: not children_left(), 60, "the children garbage-collected")
    operator.start()
    apply(cluster, manifest("after-restart"))
    wait_ready(cluster, "after-restart")  # the restarted operator has caught up
    assert children_left() == []
    operator.assert_alive()


def test_garbage_in_kopf_annotations_does_not_stop_the_operator(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: someone writes invalid JSON into the operator's annotation; the operator logs
    it, handles the object as new, and keeps serving it and every other one."""
    apply(cluster, manifest("garbled"))
    wait_ready(cluster, "garbled")
    key = "serving.sloscale.io/last-handled-configuration"
    cluster.kubectl("annotate", "-n", NS, "inferenceservice", "garbled", "--overwrite",
                    f"{key}={{not json")
    cluster.kubectl("patch", "-n", NS, "inferenceservice", "garbled", "--type=merge",
                    "-p", json.dumps({"spec": {"replicas": 2}}))
    wait_for(lambda: deployment_replicas(cluster, "garbled") == 2, 60, "the edit handled")
    wait_ready(cluster, "garbled")
    annotations = (get(cluster, "inferenceservice", "garbled") or {})["metadata"]["annotations"]
    assert json.loads(annotations[key])["spec"]["replicas"] == 2  # written afresh
    assert "annotation ignored" in operator.log_path.read_text()
    operator.assert_alive()


@pytest.fixture
def prometheus_stack(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[Stack]:
    with running_stack(cluster, tmp_path_factory.mktemp("faults-prom"),
                       "e2e-faults-prom") as stack:
        yield stack


def test_prometheus_down_for_minutes_holds_replicas_and_recovers(
        prometheus_stack: Stack) -> None:
    """Story: Prometheus is down for two minutes under load; the replica count never moves
    (sampled every second), MetricsAvailable=False says why, and it recovers by itself."""
    outage_holds_replicas_and_recovers(prometheus_stack, "blind", OUTAGE_S)
