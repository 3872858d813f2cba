"""The real tools the chart tests drive: helm, promtool, kubectl auth, the apiserver's audit log."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hack.localcluster import build
from hack.localcluster.cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "sloscale"
# Every optional part on: what checkov, kubeconform and promtool should see.
EVERYTHING = (
    "prometheus.url=http://prometheus.monitoring:9090",
    "metrics.serviceMonitor.enabled=true",
    "prometheusRule.enabled=true",
    "dashboards.enabled=true",
)


def tool(name: str) -> str:
    return str(build.ensure_install() / "bin" / name)


def helm(
    *args: str, check: bool = True, env: dict[str, str] | None = None, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [tool("helm"), *args], capture_output=True, text=True, timeout=timeout_s, env=env
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}:\n{result.stderr}")
    return result


def render_text(*sets: str, release: str = "ops", namespace: str = "sloscale-system") -> str:
    args = [f"--set={s}" for s in sets]
    return helm("template", release, str(CHART), "--namespace", namespace, *args).stdout


def rendered(
    *sets: str, release: str = "ops", namespace: str = "sloscale-system"
) -> list[dict[str, Any]]:
    text = render_text(*sets, release=release, namespace=namespace)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} rendered"
    return found[0]


def rule_groups(*sets: str) -> list[dict[str, Any]]:
    """The PrometheusRule's groups, as a Prometheus rule file holds them."""
    docs = rendered("prometheusRule.enabled=true", *sets)
    return list(one(docs, "PrometheusRule")["spec"]["groups"])


def token_kubeconfig(cluster: LocalCluster, namespace: str, account: str, out: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount (a token from TokenRequest)."""
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, "--duration=2h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": admin["clusters"][0]["name"],
                                                   "user": account}}],
        "current-context": account,
    }  # fmt: skip
    out.write_text(yaml.safe_dump(config))
    return out


@dataclass(frozen=True, order=True)
class ApiCall:
    """One kind of request the apiserver saw: verb on resource[/subresource] in a scope."""

    verb: str
    group: str
    resource: str
    namespace: str  # "" for cluster-scoped or all-namespaces requests

    def can_i_args(self, namespace: str | None = None) -> list[str]:
        """`kubectl auth can-i` arguments, in `namespace` instead of the call's own if given."""
        resource, _, subresource = self.resource.partition("/")
        what = f"{resource}.{self.group}" if self.group else resource
        where = self.namespace if namespace is None else namespace
        scope = ["-n", where] if where else ["--all-namespaces"]
        return [self.verb, what, *scope, *([f"--subresource={subresource}"] if subresource else [])]


def audit_calls(
    cluster: LocalCluster, username: str, since: str = ""
) -> tuple[set[ApiCall], set[ApiCall]]:
    """Every resource request `username` made (from the audit log) and those it was refused.

    `since` is an RFC 3339 time: earlier requests (say, of an earlier run) are left out.
    """
    calls: set[ApiCall] = set()
    refused: set[ApiCall] = set()
    for line in (cluster.logs / "audit.log").read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef")
        if event.get("user", {}).get("username") != username or not ref:
            continue
        if event.get("requestReceivedTimestamp", "") < since:
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        call = ApiCall(event["verb"], ref.get("apiGroup", ""), resource, ref.get("namespace", ""))
        calls.add(call)
        code = event.get("responseStatus", {}).get("code")
        if code == 403:
            refused.add(call)
        if call.verb == "patch" and code == 201:  # server-side apply created it: `create` too
            calls.add(ApiCall("create", call.group, call.resource, call.namespace))
    return calls, refused


def can_i(cluster: LocalCluster, user: str, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", f"--as={user}", *args, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {args}: {result.stderr}"
    if answer == "no" and "doesn't have a resource type" in result.stderr:
        # kubectl resolves names by discovery; ask RBAC directly for an API not installed
        # here (KEDA's ScaledObjects: the operator lists them in case they exist).
        return access_review(cluster, user, *args)
    return answer == "yes"


def access_review(cluster: LocalCluster, user: str, verb: str, what: str, *scope: str) -> bool:
    resource, _, group = what.partition(".")
    attributes = {"verb": verb, "group": group, "resource": resource}
    if scope[:1] == ("-n",):
        attributes["namespace"] = scope[1]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "resourceAttributes": attributes},
    }
    result = cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review))
    return bool(json.loads(result.stdout)["status"].get("allowed"))


# PromQL words that are not metric names: keywords, and label lists after by/on/....
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric (or recorded series) names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if not call and word.lower() not in _KEYWORDS:
            names.add(word)
    return names
