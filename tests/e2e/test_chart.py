"""The Helm chart renders, lints and refuses typos, with the real helm (no cluster needed).

User story: a platform engineer installs sloscale with `helm install`; a wrong value fails at
install time with the field named, and the chart's CRDs are the ones the API ships.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from hack.localcluster import build

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "sloscale"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = build.ensure_install() / "bin" / "helm"
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}:\n{result.stderr}")
    return result


def rendered(*sets: str) -> list[dict]:
    args = [f"--set={s}" for s in sets]
    out = helm("template", "ops", str(CHART), "--namespace", "sloscale-system", *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_lint_strict_passes() -> None:
    helm("lint", "--strict", str(CHART))


def test_chart_crds_are_the_apis_crds() -> None:
    shipped = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    assert shipped == sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    for name in shipped:
        assert (CHART / "crds" / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), (
            f"charts/sloscale/crds/{name} differs from crds/{name}: copy it (make chart)"
        )


def test_default_install_is_cluster_wide_non_root_and_least_privilege() -> None:
    docs = rendered("prometheus.url=http://prometheus.monitoring:9090")
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount",
    ]  # fmt: skip
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "--prometheus-url=http://prometheus.monitoring:9090" in container["args"]
    rules = next(d for d in docs if d["kind"] == "ClusterRole")["rules"]
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert ("", "secrets") not in granted  # never Secrets cluster-wide
    assert all("*" not in rule["verbs"] and "escalate" not in rule["verbs"] for rule in rules)


def test_namespaced_mode_uses_roles_in_each_watched_namespace() -> None:
    docs = rendered("rbac.namespaced=true", "watchNamespaces={team-a,team-b}")
    roles = [d for d in docs if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    cluster_role = next(d for d in docs if d["kind"] == "ClusterRole")
    resources = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert resources == {"customresourcedefinitions", "namespaces"}
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


@pytest.mark.parametrize(
    ("value", "named"),
    [("imagee.tag=x", "imagee"), ("replicaCount=3", "replicaCount"),
     ("prometheus.url=ftp://x", "url"), ("metrics.port=80", "port")],
)  # fmt: skip
def test_schema_rejects_bad_values_naming_them(value: str, named: str) -> None:
    result = helm("template", "ops", str(CHART), f"--set={value}", check=False)
    assert result.returncode != 0
    assert named in result.stderr
