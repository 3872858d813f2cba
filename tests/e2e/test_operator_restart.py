"""e2e: restarting the operator over a converged fleet writes nothing, and puts back drift.

Writes are read from the API server's audit log (every request the operator's clients made:
its own, user agent "sloscale", and kopf's), and cross-checked by the objects' resource
versions, which any write that changed content would have moved.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from hack.localcluster.cluster import LocalCluster
from tests.e2e.operator_process import (
    audit_events,
    fleet_service,
    get_json,
    install_api,
    running_operator,
    wait_for,
)

pytestmark = pytest.mark.e2e
NS = "e2e-restart"
SERVICES = 50
AUTOSCALING_INTERVAL_S = 5
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# The Kubernetes client's default agent too: an operator that did not name itself.
OPERATOR_AGENTS = ("sloscale", "kopf/", "OpenAPI-Generator/")
HAND_IMAGE = "example.com/hand-edited:1"
KINDS = "inferenceservices,deployments,services,poddisruptionbudgets"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def operator_writes(cluster: LocalCluster, since: str) -> list[str]:
    """'verb resource[/sub] name' of every write the operator made since `since`."""
    found = []
    for event in audit_events(cluster, since):
        ref = event.get("objectRef") or {}
        if (event.get("verb") not in WRITE_VERBS or ref.get("namespace") != NS
                or not event.get("userAgent", "").startswith(OPERATOR_AGENTS)):
            continue
        sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
        found.append(f"{event['verb']} {ref.get('resource')}{sub} {ref.get('name', '')}")
    return found


def versions(cluster: LocalCluster) -> dict[str, str]:
    listed = get_json(cluster, "-n", NS, KINDS) or {"items": []}
    return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for o in listed["items"] if o["kind"] != "Service" or o["metadata"].get(
                "ownerReferences")}


def resumed(log: Path, offset: int) -> int:
    with log.open("rb") as handle:
        handle.seek(offset)
        return handle.read().count(b"Resuming is processed")


def quiet(cluster: LocalCluster, seconds: float = 5.0) -> bool:
    """No operator write in the last `seconds`."""
    since = datetime.fromtimestamp(datetime.now(UTC).timestamp() - seconds, UTC)
    return not operator_writes(cluster, since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def test_restart_over_converged_services_writes_nothing_and_puts_back_drift(
        cluster: LocalCluster, tmp_path: Path) -> None:
    """Story: I upgrade or restart the operator; my 50 services see no write, except the one
    whose Deployment was edited by hand meanwhile, which is put back."""
    install_api(cluster, NS)
    manifests = tmp_path / "services.yaml"
    manifests.write_text(yaml.safe_dump_all([fleet_service(NS, f"r-{i:02d}", i)
                                                for i in range(SERVICES)]))
    log = tmp_path / "operator.log"
    # No Prometheus there: the autoscaler decides to hold, and says so in the status.
    with running_operator(cluster, log, NS, "--prometheus-url", "http://127.0.0.1:9",
                          "--autoscaler-tick-s", "1") as operator:
        cluster.kubectl("apply", "--server-side", "-f", str(manifests))
        cluster.kubectl("wait", "-n", NS, "--for=condition=Ready", "--timeout=240s",
                        "inferenceservice", "--all", timeout=250)
        wait_for(lambda: quiet(cluster), 120, "the operator to stop writing")

        for drift in (False, True):
            operator.stop()
            if drift:  # a hand edit while no operator runs
                cluster.kubectl("patch", "-n", NS, "deployment", "r-07", "--type=json", "-p",
                                json.dumps([{"op": "replace", "value": HAND_IMAGE, "path":
                                             "/spec/template/spec/containers/0/image"}]))
            before = versions(cluster)
            offset, since = log.stat().st_size, _now()
            operator.start()
            wait_for(lambda: resumed(log, offset) >= SERVICES, 120,  # noqa: B023
                     "every service to be resumed")
            time.sleep(AUTOSCALING_INTERVAL_S * 2)  # every service decided again, twice
            wait_for(lambda: quiet(cluster), 60, "the operator to stop writing")
            writes = operator_writes(cluster, since)
            after = versions(cluster)
            changed = sorted(k for k in before if after.get(k) != before[k])
            if not drift:
                assert writes == [], writes
                assert changed == [], changed
            else:
                deployment = get_json(cluster, "-n", NS, "deployment", "r-07") or {}
                images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
                assert HAND_IMAGE not in images
                # Put back, and the service's status may tell of the rollout: r-07 alone.
                assert "patch deployments r-07" in writes, writes
                assert all(w.endswith(" r-07") for w in writes
                           if not w.startswith("create events")), writes
                assert set(changed) <= {"Deployment/r-07", "InferenceService/r-07"}, changed
                assert "Deployment/r-07" in changed
