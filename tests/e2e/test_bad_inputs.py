"""e2e: hostile InferenceServices are refused or reported, never crash the operator (issue 8).

Story: whatever a user (or a broken pipeline) applies, the API server names the bad field or
the operator says what is wrong in the Ready condition, and a healthy service beside them
is not touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hack.localcluster.cluster import LocalCluster
from tests.bad_inputs.corpus import Entry, entries
from tests.e2e.operator_process import (
    OperatorProcess,
    get_json,
    install_api,
    running_operator,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.e2e
NS = "e2e-bad-inputs"
HEALTHY = {
    "apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
    "metadata": {"name": "healthy"},
    "spec": {"model": {"name": "m", "storageUri": "s3://bucket/m"},
             "runtime": {"resources": {"requests": {"cpu": "100m"}}}, "replicas": 1},
}


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    install_api(cluster, NS)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(cluster, log, NS) as process:
        yield process


def apply(cluster: LocalCluster, manifest: dict[str, Any], *flags: str) -> tuple[int, str]:
    # JSON, never YAML text: the manifest's strings reach the API server byte for byte.
    result = cluster.kubectl("apply", "--server-side", "-n", NS, *flags, "-f", "-",
                             input=json.dumps(manifest), check=False, timeout=60)
    return result.returncode, result.stderr


def submit(cluster: LocalCluster, entry: Entry) -> str | None:
    """Apply one entry the way its outcome says; a problem as text, None when as expected."""
    code, stderr = apply(cluster, entry.manifest)
    if entry.outcome == "accepted":
        return None if code == 0 else f"refused: {stderr.strip()[:300]}"
    if code == 0:
        return "admitted"
    if entry.detail not in stderr:
        return f"refused without naming {entry.detail}: {stderr.strip()[:300]}"
    if entry.outcome == "pruned":
        # Server-side apply always refuses a field it cannot type; a plain create without
        # strict validation stores the object with the field dropped.
        result = cluster.kubectl("create", "--validate=false", "-n", NS, "-f", "-",
                                 input=json.dumps(entry.manifest), check=False)
        return None if result.returncode == 0 else f"not created: {result.stderr[:300]}"
    return None


def leaf(obj: Any, path: str) -> Any:
    """The value at a field path such as spec.runtime.env[0].secret, or None."""
    for part in path.replace("[", ".").replace("]", "").split("."):
        if isinstance(obj, list):
            obj = obj[int(part)] if part.isdigit() and int(part) < len(obj) else None
        elif isinstance(obj, dict):
            obj = obj.get(part)
        else:
            return None
    return obj


def ready_reason(isvc: dict[str, Any]) -> str | None:
    for condition in isvc.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return "Ready" if condition["status"] == "True" else str(condition["reason"])
    return None


def outcome_mismatches(cluster: LocalCluster, admitted: list[Entry]) -> dict[str, str]:
    listed = get_json(cluster, "-n", NS, "inferenceservices") or {"items": []}
    by_name = {item["metadata"]["name"]: item for item in listed["items"]}
    wrong = {}
    for entry in admitted:
        isvc = by_name.get(entry.manifest["metadata"]["name"], {})
        want = "Ready" if entry.outcome == "pruned" else entry.detail
        if entry.outcome == "pruned" and leaf(isvc, entry.detail) is not None:
            wrong[entry.name] = f"{entry.detail} was stored, not pruned"
        elif ready_reason(isvc) != want:
            wrong[entry.name] = f"Ready reason {ready_reason(isvc)}, want {want}"
    return wrong


def altered_values(cluster: LocalCluster, served: list[Entry]) -> dict[str, str]:
    """Services whose Deployment does not carry their stored args and env byte for byte.

    Compared with what the API server stored, not with the file: a server-side apply body is
    read as YAML, which folds a raw U+0085 into a space before sloscale ever sees it.
    """
    listed = get_json(cluster, "-n", NS, "deployments") or {"items": []}
    containers = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]
                  for d in listed["items"]}
    stored = get_json(cluster, "-n", NS, "inferenceservices") or {"items": []}
    specs = {item["metadata"]["name"]: item["spec"] for item in stored["items"]}
    wrong = {}
    for entry in served:
        runtime = specs[entry.manifest["metadata"]["name"]].get("runtime", {})
        triton = containers[entry.manifest["metadata"]["name"]]
        args = runtime.get("args", [])
        if triton.get("args", [])[len(triton.get("args", [])) - len(args):] != args:
            wrong[entry.name] = f"args {triton.get('args')!r}"
        if triton.get("env", []) != runtime.get("env", []):
            wrong[entry.name] = f"env {triton.get('env')!r}"
    return wrong


def deployment_version(cluster: LocalCluster) -> tuple[str, int, Any]:
    deployment = get_json(cluster, "-n", NS, "deployment", "healthy") or {}
    meta = deployment["metadata"]
    return meta["resourceVersion"], meta["generation"], deployment["spec"]


def test_bad_inputs_are_refused_or_reported_and_harm_nothing(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    assert apply(cluster, HEALTHY)[0] == 0
    wait_ready(cluster, NS, "healthy")
    before = deployment_version(cluster)
    corpus = entries()
    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = dict(zip([e.name for e in corpus],
                            pool.map(lambda e: submit(cluster, e), corpus), strict=True))
    wrong = {name: problem for name, problem in problems.items() if problem}
    assert not wrong, json.dumps(wrong, indent=1)
    admitted = [e for e in corpus if e.outcome != "rejected"]
    try:
        wait_for(lambda: not outcome_mismatches(cluster, admitted), timeout_s=120,
                 what="every admitted bad input to reach its expected status")
    except AssertionError:
        assert outcome_mismatches(cluster, admitted) == {}
    assert altered_values(cluster, [e for e in admitted if e.detail == "Ready"]) == {}
    operator.assert_alive()
    log = operator.log_path.read_text()
    assert "Traceback" not in log, log[-5000:]
    wait_ready(cluster, NS, "healthy", timeout_s=10)
    assert deployment_version(cluster) == before
