"""e2e: two operator processes share a fleet through shard Leases on a real control plane.

User story: one Python process no longer holds my whole fleet. I run two (`sloscale run
--shards 2`, the chart's `shards: 2`); each works on about half of my services, never both on
one, and when one dies the other takes its half over within a lease period, without
rewriting what was already converged. Who wrote what is read from the API server's audit
log: each process names itself in its user agent ("sloscale (<identity>)").
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config

from hack.localcluster.cluster import LocalCluster
from sloscale.controller.shards import ShardLeases, shard_of
from tests.e2e.operator_process import (
    OperatorProcess,
    audit_events,
    fleet_service,
    get_json,
    install_api,
    wait_for,
)

pytestmark = pytest.mark.e2e
NS = "e2e-shards"
SERVICES = 200
LEASE_S = 6.0
WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})
CHILDREN = frozenset({"deployments", "services", "poddisruptionbudgets", "inferenceservices"})
HAND_IMAGE = "example.com/hand-edited:1"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def holders(cluster: LocalCluster) -> dict[str, str]:
    listed = get_json(cluster, "-n", NS, "leases") or {"items": []}
    return {lease["metadata"]["name"]: lease["spec"].get("holderIdentity") or ""
            for lease in listed["items"] if lease["metadata"]["name"].startswith("sloscale-shard-")}


def owners(cluster: LocalCluster) -> dict[str, str]:
    """Each child's name -> its InferenceService's name (services map to themselves)."""
    found = {f"s-{i:03d}": f"s-{i:03d}" for i in range(SERVICES)}
    listed = get_json(cluster, "-n", NS, "deployments,services,poddisruptionbudgets") or {}
    for item in listed.get("items", []):
        for ref in item["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "InferenceService":
                found[item["metadata"]["name"]] = ref["name"]
    return found


def writes(cluster: LocalCluster, since: str) -> list[tuple[str, str, str, int]]:
    """(writer, resource, object name, response code) of the operators' writes to services
    and their children: the writer from "sloscale (<identity>)"."""
    found = []
    for event in audit_events(cluster, since):
        ref, agent = event.get("objectRef") or {}, event.get("userAgent", "")
        if (event.get("verb") in WRITE_VERBS and ref.get("namespace") == NS
                and ref.get("resource") in CHILDREN and agent.startswith("sloscale (")):
            found.append((agent.removeprefix("sloscale (").split(")")[0],
                          ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource")
                                             else ""),
                          ref.get("name", ""), event.get("responseStatus", {}).get("code", 0)))
    return found


def quiet(cluster: LocalCluster, seconds: float = 5.0) -> bool:
    since = datetime.fromtimestamp(time.time() - seconds, UTC)
    return not writes(cluster, since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def test_leases_split_between_members_and_a_dead_ones_shard_is_taken_over(
        cluster: LocalCluster) -> None:
    """The Lease rounds alone, two members in one test process against the real API."""
    install_api(cluster, NS)
    api = client.CoordinationV1Api(kube_config.new_client_from_config(str(cluster.kubeconfig)))
    a, b = (ShardLeases(api, NS, who, shards=2, duration_s=5.0) for who in ("lease-a", "lease-b"))
    assert a.round() == {0, 1}  # alone: everything
    assert b.round() == set()  # all held
    a.round()  # a sees two members: releases its second shard
    assert a.held() == {0}
    assert b.round() == {1}
    assert holders(cluster) == {"sloscale-shard-0": "lease-a", "sloscale-shard-1": "lease-b"}
    # a second round changes nothing
    assert a.round() == set() and b.round() == set() and (a.held(), b.held()) == ({0}, {1})
    # a stops renewing (dead): b waits out the lease, then holds both
    started = time.monotonic()
    while b.held() != {0, 1}:
        b.round()
        assert time.monotonic() - started < 5.0 * 2.5, "not taken over"
        time.sleep(b.retry_s)
    taken_s = time.monotonic() - started
    assert taken_s > 5.0 - 1.0, taken_s  # not before a's lease had run out
    assert not a.owns(0)  # a, had it lived on without renewing, had stopped acting itself
    b.release_all()
    assert holders(cluster) == {"sloscale-shard-0": "", "sloscale-shard-1": ""}


def test_two_processes_split_200_services_and_one_takes_over_when_the_other_dies(
        cluster: LocalCluster, tmp_path: Path) -> None:
    install_api(cluster, NS)
    processes = {
        who: OperatorProcess(cluster, tmp_path / f"{who}.log", "--namespace", NS, "--shards", "2",
                             "--shard-lease-namespace", NS, "--shard-lease-s", str(LEASE_S),
                             "--prometheus-url", "http://127.0.0.1:9", "--autoscaler-tick-s", "1",
                             env={"POD_ID": who}).start()
        for who in ("shard-a", "shard-b")}
    try:
        wait_for(lambda: sorted(holders(cluster).values()) == ["shard-a", "shard-b"], 60,
                 "each process to hold one shard")
        holder = {int(name.rsplit("-", 1)[1]): who for name, who in holders(cluster).items()}
        since = _now()
        manifests = tmp_path / "services.yaml"
        manifests.write_text(yaml.safe_dump_all([fleet_service(NS, f"s-{i:03d}", i)
                                                for i in range(SERVICES)]))
        cluster.kubectl("apply", "--server-side", "-f", str(manifests))
        cluster.kubectl("wait", "-n", NS, "--for=condition=Ready", "--timeout=400s",
                        "inferenceservice", "--all", timeout=410)
        wait_for(lambda: quiet(cluster), 120, "the operators to stop writing")

        # Every service was written by the holder of its shard alone, each object created once.
        owner_of = owners(cluster)
        writers: dict[str, set[str]] = defaultdict(set)
        created: dict[tuple[str, str], int] = defaultdict(int)
        for who, resource, name, code in writes(cluster, since):
            writers[owner_of.get(name, name)].add(who)
            created[(resource, name)] += code == 201
        expected = {f"s-{i:03d}": {holder[shard_of(NS, f"s-{i:03d}", 2)]} for i in range(SERVICES)}
        assert dict(writers) == expected
        split = sorted(sum(1 for w in expected.values() if w == {who}) for who in processes)
        assert split[0] > SERVICES * 0.35, split  # about half each
        assert max(created.values()) == 1, [k for k, v in created.items() if v > 1]
        print(f"split {split}; {sum(created.values())} objects created, each once")

        # One dies; the other holds both shards within a lease period and a renewal round.
        dead, survivor = "shard-b", "shard-a"
        died = time.monotonic()
        processes[dead].kill()
        wait_for(lambda: set(holders(cluster).values()) == {survivor}, LEASE_S * 3,
                 "the survivor to take the dead process's shard")
        taken_s = time.monotonic() - died
        print(f"taken over {taken_s:.1f}s after the kill (lease {LEASE_S:.0f}s)")
        assert taken_s <= LEASE_S * 1.2 + 2.0, taken_s  # + 2 s: kubectl's polling, a busy box
        orphan = next(f"s-{i:03d}" for i in range(SERVICES) if i % 5
                      and holder[shard_of(NS, f"s-{i:03d}", 2)] == dead)
        since = _now()
        time.sleep(5.0)  # the takeover's reconciles and two autoscaler rounds
        wait_for(lambda: quiet(cluster), 60, "the survivor to stop writing")
        # Converged services taken over: checked, nothing rewritten.
        assert writes(cluster, since) == []

        # ... and they are the survivor's now: a hand edit of the dead one's service is put back.
        cluster.kubectl("patch", "-n", NS, "deployment", orphan, "--type=json", "-p", json.dumps(
            [{"op": "replace", "value": HAND_IMAGE,
              "path": "/spec/template/spec/containers/0/image"}]))
        wait_for(lambda: HAND_IMAGE not in json.dumps(
            get_json(cluster, "-n", NS, "deployment", orphan)), 60, "the edit put back")
        assert {who for who, *_ in writes(cluster, since)} == {survivor}
        processes[survivor].assert_alive()
    finally:
        for process in processes.values():
            process.stop()
        for who in processes:
            print(f"--- {who}\n" + (tmp_path / f"{who}.log").read_text()[-3000:])
        cluster.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true",
                        check=False, timeout=180)
