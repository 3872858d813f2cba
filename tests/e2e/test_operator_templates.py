"""e2e: an operator restricted to one namespace, rendering from a user's template ConfigMap."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from hack.localcluster.cluster import LocalCluster
from sloscale.render.templates import package_sources
from tests.e2e.operator_process import (
    OperatorProcess,
    get_json,
    install_api,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.e2e
NS = "e2e-templates"
UNWATCHED = "e2e-unwatched"
NETWORK_POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ name | tojson }}
  namespace: {{ namespace | tojson }}
  labels: {{ labels | tojson }}
spec:
  podSelector: {matchLabels: {{ selector | tojson }}}
  ingress:
    - ports: [{port: {{ ports.http | tojson }}}, {port: {{ ports.grpc | tojson }}}]
"""


def isvc(name: str, namespace: str) -> str:
    return json.dumps({"apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
                       "metadata": {"name": name, "namespace": namespace},
                       "spec": {"model": {"name": "m", "storageUri": "gs://bucket/m"}}})


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    install_api(cluster, NS, UNWATCHED)
    data = {**package_sources(), "networkpolicy.yaml.j2": NETWORK_POLICY}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "sloscale-templates", "namespace": NS}, "data": data}
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(configmap))
    log = tmp_path_factory.mktemp("operator-templates") / "operator.log"
    process = OperatorProcess(cluster, log, "--namespace", NS,
                              "--templates-configmap", f"{NS}/sloscale-templates").start()
    try:
        yield process
    finally:
        process.stop()


def test_configmap_templates_render_extra_children(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: our platform adds a NetworkPolicy to every service through our own templates."""
    cluster.kubectl("apply", "--server-side", "-f", "-", input=isvc("custom", NS))
    wait_ready(cluster, NS, "custom")
    policy = wait_for(lambda: get_json(cluster, "-n", NS, "networkpolicy", "custom"),
                      what="NetworkPolicy from the user's template")
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "serving.sloscale.io/inferenceservice": "custom"}
    assert policy["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    operator.assert_alive()


def test_other_namespaces_are_left_alone(
        cluster: LocalCluster, operator: OperatorProcess) -> None:
    """Story: with --namespace, an operator never touches services outside its namespaces."""
    cluster.kubectl("apply", "--server-side", "-f", "-", input=isvc("elsewhere", UNWATCHED))
    cluster.kubectl("apply", "--server-side", "-f", "-", input=isvc("watched", NS))
    wait_ready(cluster, NS, "watched")  # the operator is up and converging its namespace
    time.sleep(3)  # a watching operator creates a Deployment within a second or two
    assert get_json(cluster, "-n", UNWATCHED, "deployment", "elsewhere") is None
    found = get_json(cluster, "-n", UNWATCHED, "inferenceservice", "elsewhere") or {}
    assert "status" not in found
