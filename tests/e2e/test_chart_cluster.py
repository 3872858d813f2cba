"""e2e: the chart and the plain-kubectl path on a real control plane, RBAC from the audit log.

User stories: a platform engineer installs, upgrades and uninstalls sloscale with Helm, or
applies crds/ and the rendered manifests with kubectl; the operator, running with nothing
but the chart's ServiceAccount, serves an InferenceService to Ready; every call it makes is
allowed and nothing dangerous is; two replicas peer and a standby takes over.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.localcluster.cluster import LocalCluster, free_port
from sloscale.controller.peering import PeeringGate, is_active
from tests.e2e.chart_support import (
    CHART,
    EVERYTHING,
    ROOT,
    ApiCall,
    audit_calls,
    can_i,
    helm,
    render_text,
    rendered,
    token_kubeconfig,
    tool,
)
from tests.e2e.kubeschemas import write_schemas
from tests.e2e.operator_process import OperatorProcess, get_json, wait_for, wait_ready

pytestmark = pytest.mark.e2e
RELEASE, RELEASE_NS, ACCOUNT = "ops", "sloscale-system", "ops-sloscale"
USER = f"system:serviceaccount:{RELEASE_NS}:{ACCOUNT}"
NS = "e2e-chart"
STAND_INS = [
    Path(__file__).parent / f"{kind}-crd.yaml" for kind in ("servicemonitor", "prometheusrule")
]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
# What the operator must never be able to do, whatever it runs.
FORBIDDEN = [
    ("get", "secrets", "--all-namespaces"), ("list", "secrets", "-n", NS),
    ("create", "pods", "--subresource=exec", "-n", NS), ("create", "pods", "-n", NS),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("impersonate", "users"), ("impersonate", "serviceaccounts", "-n", NS),
    ("delete", "inferenceservices.serving.sloscale.io", "-n", NS),
    ("delete", "deployments.apps", "-n", NS), ("update", "deployments.apps", "-n", NS),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
]  # fmt: skip


def closed_prometheus() -> str:
    """A Prometheus URL nothing answers: the autoscaler runs, holds, and says so."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def release(cluster: LocalCluster) -> Iterator[LocalCluster]:
    """`helm install` of the chart (everything on) into sloscale-system."""
    for crd in STAND_INS:
        cluster.kubectl("apply", "--server-side", "-f", str(crd))
    for namespace in (NS, RELEASE_NS):
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", timeout=120)
    cluster.kubectl("create", "namespace", NS)
    sets = [f"--set={s}" for s in (*EVERYTHING[1:], f"prometheus.url={closed_prometheus()}")]
    helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        RELEASE_NS,
        "--create-namespace",
        *sets,
        "--wait",
        "--timeout=120s",
        env=cluster.env,
    )
    try:
        yield cluster
    finally:
        helm("uninstall", RELEASE, "-n", RELEASE_NS, "--ignore-not-found", env=cluster.env)


def test_rendered_chart_examples_and_crds_pass_kubeconform_strict(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """Schemas made here: built-in kinds from this apiserver's OpenAPI, ours from crds/."""
    openapi = json.loads(cluster.kubectl("get", "--raw", "/openapi/v2", timeout=120).stdout)
    crd_files = [*sorted((ROOT / "crds").glob("*.yaml")), *STAND_INS]
    location = write_schemas(openapi, crd_files, tmp_path / "schemas")
    variants = [
        (),
        EVERYTHING,
        (*EVERYTHING, "replicaCount=2"),
        ("rbac.namespaced=true", "watchNamespaces={a,b}", "replicaCount=2"),
    ]
    manifests = [render_text(*sets) for sets in variants]
    manifests += [p.read_text() for p in [*EXAMPLES, *sorted((ROOT / "crds").glob("*.yaml"))]]

    def kubeconform(text: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("kubeconform"), "-strict", "-summary", "-schema-location", location, "-"],
            input=text,
            capture_output=True,
            text=True,
            timeout=120,
        )

    for text in manifests:
        result = kubeconform(text)
        assert result.returncode == 0, result.stdout + result.stderr
    typo = manifests[0].replace("readOnlyRootFilesystem", "readOnlyRootFilesytem")
    assert "readOnlyRootFilesytem" in kubeconform(typo).stdout  # strict: the typo is caught


def test_every_example_passes_server_side_dry_run(release: LocalCluster) -> None:
    for example in EXAMPLES:
        result = release.kubectl(
            "apply", "--dry-run=server", "-n", NS, "-f", str(example), check=False
        )
        assert result.returncode == 0, f"{example.name}: {result.stderr}"


def test_plain_kubectl_install_path(cluster: LocalCluster) -> None:
    """crds/ with server-side apply, then the manifests `helm template` renders."""
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    namespace = "sloscale-plain"
    cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", timeout=120)
    cluster.kubectl("create", "namespace", namespace)
    manifests = render_text(
        "prometheus.url=http://prometheus:9090", release="plain", namespace=namespace
    )
    cluster.kubectl("apply", "--server-side", "-f", "-", input=manifests)
    cluster.kubectl(
        "wait",
        "-n",
        namespace,
        "--for=condition=Available",
        "--timeout=90s",
        "deployment/plain-sloscale",
        timeout=100,
    )
    assert can_i(
        cluster,
        f"system:serviceaccount:{namespace}:plain-sloscale",
        "patch",
        "deployments.apps",
        "-n",
        NS,
    )
    cluster.kubectl("delete", "-f", "-", "--wait=true", input=manifests, timeout=120)
    assert get_json(cluster, "clusterrole", "plain-sloscale") is None
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.fixture(scope="module")
def audited(
    release: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> tuple[set[ApiCall], set[ApiCall]]:
    """The operator as the chart's ServiceAccount serves every example; its calls, audited."""
    folder = tmp_path_factory.mktemp("chart-operator")
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kubeconfig = token_kubeconfig(release, RELEASE_NS, ACCOUNT, folder / "kubeconfig")
    operator = OperatorProcess(
        release,
        folder / "operator.log",
        "--prometheus-url",
        closed_prometheus(),
        "--autoscaler-tick-s=1",
        env={"KUBECONFIG": str(kubeconfig)},
    ).start()
    try:
        for example in EXAMPLES:
            release.kubectl("apply", "--server-side", "-n", NS, "-f", str(example))
        for name in ("resnet-pytorch", "bert-onnx", "echo-python", "detector-tensorrt"):
            wait_ready(release, NS, name)
        assert get_json(release, "-n", NS, "servicemonitor", "echo-python") is not None
        # One replica needs no PodDisruptionBudget: the operator deletes the one it made.
        release.kubectl(
            "patch",
            "-n",
            NS,
            "infsvc",
            "resnet-pytorch",
            "--type=merge",
            "-p",
            '{"spec": {"replicas": 1}}',
        )
        wait_for(
            lambda: get_json(release, "-n", NS, "pdb", "resnet-pytorch") is None,
            what="the PodDisruptionBudget to go",
        )
        wait_for(
            lambda: autoscaler_reported(release, "bert-onnx"),
            what="the autoscaler's status on bert-onnx",
        )
        # A capacity profile in a ConfigMap: the autoscaler reads it on its next decision.
        release.kubectl(
            "create", "configmap", "-n", NS, "bert-profile", "--from-literal=profile.json={}"
        )
        release.kubectl(
            "patch",
            "-n",
            NS,
            "infsvc",
            "bert-onnx",
            "--type=merge",
            "-p",
            json.dumps(
                {
                    "spec": {
                        "autoscaling": {
                            "capacityProfile": {
                                "maxRpsPerReplica": None,
                                "configMapRef": {"name": "bert-profile", "key": "profile.json"},
                            }
                        }
                    }
                }
            ),
        )
        wait_for(
            lambda: ApiCall("get", "", "configmaps", NS) in audit_calls(release, USER, since)[0],
            what="the autoscaler to read the profile",
        )
        operator.assert_alive()
    finally:
        operator.stop()
        print((folder / "operator.log").read_text()[-4000:])
    return audit_calls(release, USER, since)


def autoscaler_reported(cluster: LocalCluster, name: str) -> bool:
    isvc = get_json(cluster, "-n", NS, "infsvc", name) or {}
    conditions = (isvc.get("status") or {}).get("conditions", [])
    return any(
        c["type"] == "MetricsAvailable" and c["reason"] == "PrometheusUnavailable"
        for c in conditions
    )


def test_operator_with_the_charts_identity_makes_only_allowed_calls(
    release: LocalCluster, audited: tuple[set[ApiCall], set[ApiCall]]
) -> None:
    calls, refused = audited
    # By design the only refusal: a cluster-wide install may not read Secrets.
    assert refused <= {ApiCall("get", "", "secrets", NS)}
    allowed = [c for c in calls if c not in refused]
    assert len(allowed) > 10, sorted(calls)  # the audit log saw the run
    denied = [c for c in allowed if not can_i(release, USER, *c.can_i_args())]
    assert denied == []


def granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# Granted for code paths this run may not reach, each named (kept short on purpose).
MAYBE_UNREACHED = {
    ("monitoring.coreos.com", "servicemonitors", "delete"): "reconcile._prune, with a "
    "template set that has no ServiceMonitor template",
    # One service's reconciles and refreshes no longer race each other; a 409 needs another
    # write (the autoscaler's, kopf's annotations) between a read and a write: timing.
    ("serving.sloscale.io", "inferenceservices", "get"): "kube.status.write_status re-reads "
    "after a 409 conflict",
}


def test_every_granted_permission_is_used(audited: tuple[set[ApiCall], set[ApiCall]]) -> None:
    """Least privilege: each (group, resource, verb) the ClusterRole grants was called."""
    calls, _ = audited
    role = next(d for d in rendered(*EVERYTHING) if d["kind"] == "ClusterRole")
    grants = granted(role["rules"])
    used = {(c.group, c.resource, c.verb) for c in calls}
    assert set(MAYBE_UNREACHED) <= grants  # each exemption still names a real grant
    assert grants - used <= set(MAYBE_UNREACHED)


def test_nothing_dangerous_is_allowed(release: LocalCluster) -> None:
    allowed = [args for args in FORBIDDEN if can_i(release, USER, *args)]
    assert allowed == []


def test_namespaced_install_serves_its_namespace_with_roles_only(
    release: LocalCluster, tmp_path: Path
) -> None:
    """rbac.namespaced=true: the operator, as that release's account, serves NS; audited."""
    namespace, account = "sloscale-nsd", "nsd-sloscale"
    user = f"system:serviceaccount:{namespace}:{account}"
    prometheus = closed_prometheus()
    sets = [
        "--set=rbac.namespaced=true",
        f"--set=watchNamespaces={{{NS}}}",
        f"--set=prometheus.url={prometheus}",
    ]
    helm(
        "install",
        "nsd",
        str(CHART),
        "-n",
        namespace,
        "--create-namespace",
        *sets,
        "--wait",
        "--timeout=120s",
        env=release.env,
    )
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kubeconfig = token_kubeconfig(release, namespace, account, tmp_path / "kubeconfig")
    operator = OperatorProcess(
        release,
        tmp_path / "operator.log",
        f"--namespace={NS}",
        f"--prometheus-url={prometheus}",
        "--autoscaler-tick-s=1",
        env={"KUBECONFIG": str(kubeconfig)},
    ).start()
    try:  # the examples are there from the cluster-wide run: resumed, then changed
        relabel_and_wait(release, "served-by", "the namespaced operator to reconcile")
        wait_for(
            lambda: ApiCall("list", "", "pods", NS) in audit_calls(release, user, since)[0],
            what="the autoscaler to list the namespace's pods",
        )
        operator.assert_alive()
        calls, refused = audit_calls(release, user, since)
        assert refused == set()  # Secrets included: a namespaced install may read them
        denied = [c for c in calls if not can_i(release, user, *c.can_i_args())]
        assert denied == []
        assert not can_i(release, user, "get", "secrets", "-n", "default")
        assert not can_i(release, user, "list", "pods", "--all-namespaces")
        docs = rendered(
            *[s.removeprefix("--set=") for s in sets], release="nsd", namespace=namespace
        )
        rules = [r for d in docs if d["kind"] in ("Role", "ClusterRole") for r in d["rules"]]
        # The shared rules are held to their use by the cluster-wide run; here, what only
        # this mode grants (Secrets, namespaces) must be used too.
        cluster_wide = next(d for d in rendered(*EVERYTHING) if d["kind"] == "ClusterRole")
        only_here = granted(rules) - granted(cluster_wide["rules"])
        assert only_here, "the namespaced mode grants nothing of its own?"
        assert only_here - {(c.group, c.resource, c.verb) for c in calls} == set()
    finally:
        operator.stop()
        print((tmp_path / "operator.log").read_text()[-3000:])
        helm("uninstall", "nsd", "-n", namespace, "--ignore-not-found", env=release.env)


def relabel_and_wait(cluster: LocalCluster, key: str, what: str) -> None:
    """Change echo-python's spec; whoever reconciles puts the label on its pods."""
    patch = {"spec": {"runtime": {"podLabels": {key: "yes"}}}}
    cluster.kubectl(
        "patch", "-n", NS, "infsvc", "echo-python", "--type=merge", "-p", json.dumps(patch)
    )
    wait_for(lambda: pod_label(cluster, "echo-python", key) == "yes", what=what)


def pod_label(cluster: LocalCluster, name: str, key: str) -> str | None:
    deployment = get_json(cluster, "-n", NS, "deployment", name) or {}
    labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels")
    return (labels or {}).get(key)


def peers(cluster: LocalCluster) -> dict[str, Any]:
    found = get_json(cluster, "clusterkopfpeering", "sloscale") or {}
    return dict(found.get("status") or {})


def test_upgrade_to_two_replicas_peers_then_uninstall_leaves_only_the_crds(
    release: LocalCluster, tmp_path: Path
) -> None:
    """helm upgrade to replicaCount=2, two peered operators, takeover; helm uninstall."""
    helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        RELEASE_NS,
        "--reuse-values",
        "--set=replicaCount=2",
        "--wait",
        "--timeout=120s",
        env=release.env,
    )
    assert can_i(release, USER, "patch", "clusterkopfpeerings.kopf.dev")
    kubeconfig = token_kubeconfig(release, RELEASE_NS, ACCOUNT, tmp_path / "kubeconfig")
    prometheus = closed_prometheus()

    def replica(pod: str, priority: int) -> OperatorProcess:
        return OperatorProcess(
            release,
            tmp_path / f"{pod}.log",
            "--peering=sloscale",
            f"--priority={priority}",
            f"--prometheus-url={prometheus}",
            env={"KUBECONFIG": str(kubeconfig), "POD_ID": pod},
        ).start()

    low, high = replica("replica-low", 10), replica("replica-high", 20)
    try:
        wait_for(
            lambda: {"replica-low", "replica-high"} <= set(peers(release)),
            what="both replicas in the peering object",
        )
        now = datetime.now().astimezone()
        assert is_active(peers(release), "replica-high", now)
        assert not is_active(peers(release), "replica-low", now)
        high.stop()  # a clean stop takes it out of the peering at once
        wait_for(lambda: "replica-high" not in peers(release), what="the high replica to leave")
        from kubernetes import client, config

        api = client.CustomObjectsApi(config.new_client_from_config(str(kubeconfig)))
        assert PeeringGate(api, "sloscale", "replica-low").active()
        release.kubectl(
            "apply", "--server-side", "-n", NS, "-f", str(ROOT / "examples" / "python-echo.yaml")
        )
        relabel_and_wait(release, "taken-over", "the standby to reconcile after the takeover")
        low.assert_alive()
    finally:
        for process in (low, high):
            process.stop()
        for name in ("replica-low", "replica-high"):
            print((tmp_path / f"{name}.log").read_text()[-2000:])
    helm("uninstall", RELEASE, "-n", RELEASE_NS, "--wait", env=release.env)
    for kind, name in (
        ("clusterrole", ACCOUNT),
        ("clusterrolebinding", ACCOUNT),
        ("clusterkopfpeering", "sloscale"),
    ):
        assert get_json(release, kind, name) is None, f"{kind} {name} left after uninstall"
    assert get_json(release, "-n", RELEASE_NS, "deployment", ACCOUNT) is None
    for crd in yaml.safe_load_all((CHART / "crds" / "kopf-peerings.yaml").read_text()):
        assert get_json(release, "crd", crd["metadata"]["name"]) is not None  # helm keeps CRDs
