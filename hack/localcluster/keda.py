"""KEDA on the local control plane: its pinned build, its manifests and its two processes.

KEDA runs as local processes, like every other component: the operator (ScaledObjects to
HPAs, scalers polled) and the external metrics API server that the HPA controller reads
through the apiserver's aggregation layer. Its admission webhooks stay off.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import build, pki
from .errors import StepFailed

if TYPE_CHECKING:
    from .cluster import LocalCluster

KEDA_VERSION = "v2.21.0"
KEDA_MODULE = "github.com/kedacore/keda/v2"
NAMESPACE = "keda"
SERVICE_ACCOUNT = "keda-operator"  # the identity KEDA's own RBAC binds (config/rbac)
METRICS_SERVICE = "keda-metrics-apiserver"
API_SERVICE = "v1beta1.external.metrics.k8s.io"
COMPONENTS = ("keda-operator", "keda-adapter")
# The components' probe and API ports (named after them), then the others they listen on.
PORTS = (*COMPONENTS, "keda-operator-grpc", "keda-operator-metrics", "keda-adapter-metrics")
# KEDA's own names for its binaries (its Makefile builds bin/keda and bin/keda-adapter).
BINARY_NAMES = {"operator": "keda", "adapter": "keda-adapter"}
TOKEN_DURATION = "8760h"  # a local cluster lives for hours at most; the token outlives it

KEDA_BUILD = build.GoBuild(
    "keda",
    (f"{KEDA_MODULE}/cmd/operator", f"{KEDA_MODULE}/cmd/adapter"),
    f"-s -w -X={KEDA_MODULE}/version.Version={KEDA_VERSION.lstrip('v')} "
    f"-X={KEDA_MODULE}/version.GitCommit={KEDA_VERSION}",
)

# From KEDA's module: its CRDs and the RBAC it ships for the operator and the metrics server.
MANIFEST_FILES = (
    "config/crd/bases/eventing.keda.sh_cloudeventsources.yaml",
    "config/crd/bases/eventing.keda.sh_clustercloudeventsources.yaml",
    "config/crd/bases/keda.sh_clustertriggerauthentications.yaml",
    "config/crd/bases/keda.sh_scaledjobs.yaml",
    "config/crd/bases/keda.sh_scaledobjects.yaml",
    "config/crd/bases/keda.sh_triggerauthentications.yaml",
    "config/rbac/role.yaml",
    "config/rbac/role_binding.yaml",
    "config/metrics-server/role.yaml",
    "config/metrics-server/role_binding.yaml",
)


def _manifest_name(relative: str) -> str:
    return relative.removeprefix("config/").replace("/", "_")


def _finish(install: Path) -> None:
    for package, name in BINARY_NAMES.items():
        os.replace(install / "bin" / package, install / "bin" / name)
    source = build.module_source("keda", KEDA_MODULE)
    out_dir = install / "manifests"
    out_dir.mkdir(parents=True, exist_ok=True)
    for relative in MANIFEST_FILES:
        if not (source / relative).is_file():
            raise StepFailed("copy KEDA manifests", f"{source / relative} not found", "")
        (out_dir / _manifest_name(relative)).write_bytes((source / relative).read_bytes())


TOOLSET = build.Toolset(
    name=f"keda-{KEDA_VERSION}",
    builds=(KEDA_BUILD,),
    recipe=(KEDA_VERSION, KEDA_BUILD, BINARY_NAMES, MANIFEST_FILES),
    binaries=tuple(BINARY_NAMES.values()),
    data_dir="manifests",
    finish=_finish,
)


# -- manifests ------------------------------------------------------------------------------
def module_manifests(install: Path) -> list[dict[str, Any]]:
    """KEDA's CRDs and RBAC as it ships them, read from the cached install."""
    docs: list[dict[str, Any]] = []
    for relative in MANIFEST_FILES:
        text = (install / "manifests" / _manifest_name(relative)).read_text()
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def local_manifests(ca_bundle: bytes, adapter_port: int) -> list[dict[str, Any]]:
    """What KEDA's Deployments would stand on, for processes on loopback instead.

    The APIService names an ExternalName Service: without kube-proxy a ClusterIP leads
    nowhere, and Endpoints may not hold a loopback address, but the aggregator dials an
    ExternalName Service's host at the APIService's port as it is.
    """
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": METRICS_SERVICE, "namespace": NAMESPACE},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": API_SERVICE},
            "spec": {
                "service": {"name": METRICS_SERVICE, "namespace": NAMESPACE, "port": adapter_port},
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "caBundle": base64.b64encode(ca_bundle).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def _token_kubeconfig(local: LocalCluster, token: str) -> dict[str, Any]:
    """KEDA's identity: its ServiceAccount's token, so that its own RBAC is all it may do."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sloscale-local",
                "cluster": {
                    "server": f"https://127.0.0.1:{local.state.ports['kube-apiserver']}",
                    "certificate-authority": str(local.root / "pki" / "ca.crt"),
                },
            }
        ],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [
            {"name": "keda", "context": {"cluster": "sloscale-local", "user": SERVICE_ACCOUNT}}
        ],
        "current-context": "keda",
    }


# -- processes ------------------------------------------------------------------------------
def _argv(bin_dir: Path, root: Path, certs: pki.Pki, ports: dict[str, int]) -> dict[str, list[str]]:
    kubeconfig = str(root / "kubeconfig")
    return {
        "keda-operator": [
            str(bin_dir / "keda"), f"--kubeconfig={kubeconfig}",
            f"--metrics-bind-address=127.0.0.1:{ports['keda-operator-metrics']}",
            f"--health-probe-bind-address=127.0.0.1:{ports['keda-operator']}",
            # The gRPC service the metrics server asks for each metric (mutual TLS).
            f"--metrics-service-bind-address=127.0.0.1:{ports['keda-operator-grpc']}",
            f"--cert-dir={certs.root}", f"--ca-dir={root / 'custom-ca'}",
            "--enable-cert-rotation=false", "--leader-elect=false",
            "--zap-log-level=info", "--zap-encoder=console",
        ],
        "keda-adapter": [
            str(bin_dir / "keda-adapter"), f"--kubeconfig={kubeconfig}",
            f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['keda-adapter']}",
            f"--cert-dir={certs.root}", f"--client-ca-file={certs.path('ca.crt')}",
            f"--tls-cert-file={certs.path('tls.crt')}",
            f"--tls-private-key-file={certs.path('tls.key')}",
            f"--metrics-service-address=127.0.0.1:{ports['keda-operator-grpc']}",
            # KEDA binds this one to every interface (":port"); it has no address flag.
            f"--port={ports['keda-adapter-metrics']}",
            "--zap-log-level=info", "--zap-encoder=console",
        ],
    }  # fmt: skip


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KUBECONFIG": str(root / "kubeconfig"),
        "WATCH_NAMESPACE": "",  # every namespace, as KEDA's default install
        "POD_NAMESPACE": NAMESPACE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
    }


def is_running(local: LocalCluster) -> bool:
    from .cluster import _alive

    pids = local.state.pids
    return all(name in pids and _alive(pids[name]) for name in COMPONENTS)


def start(local: LocalCluster) -> None:
    """Apply KEDA's CRDs, RBAC and APIService, then start its two processes (idempotent)."""
    if is_running(local):
        return
    from .cluster import free_port

    install = build.ensure_install(TOOLSET)
    root = local.root / "keda"
    (root / "custom-ca").mkdir(parents=True, exist_ok=True)
    certs = pki.service_cert(
        root / "certs",
        "keda",
        tuple(
            f"{svc}.{NAMESPACE}.svc{suffix}"
            for svc in (SERVICE_ACCOUNT, METRICS_SERVICE)
            for suffix in ("", ".cluster.local")
        )
        + ("localhost",),
    )
    ports = {name: free_port() for name in PORTS}
    local.state.ports.update(ports)
    manifests = [
        *local_manifests(certs.path("ca.crt").read_bytes(), ports["keda-adapter"]),
        *module_manifests(install),
    ]
    local.kubectl(
        "apply", "--server-side", "--field-manager=sloscale-localcluster", "-f", "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}),
    )  # fmt: skip
    token = local.kubectl(
        "create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, f"--duration={TOKEN_DURATION}"
    ).stdout.strip()
    kubeconfig = root / "kubeconfig"
    kubeconfig.touch(mode=0o600)
    kubeconfig.write_text(yaml.safe_dump(_token_kubeconfig(local, token), sort_keys=False))
    argv = _argv(install / "bin", root, certs, ports)
    env = _env(root)
    try:
        local.start_process("keda-operator", argv["keda-operator"], env, local.http_probe(
            ports["keda-operator"], "/readyz"))  # fmt: skip
        local.start_process("keda-adapter", argv["keda-adapter"], env, local.https_probe(
            ports["keda-adapter"], "/readyz"))  # fmt: skip
        _wait_api_available(local)
    except BaseException:
        with contextlib.suppress(StepFailed):
            stop(local)
        raise


def _wait_api_available(local: LocalCluster) -> None:
    result = local.kubectl(
        "wait", "--for=condition=Available", f"apiservice/{API_SERVICE}", "--timeout=60s",
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        status = local.kubectl("get", f"apiservice/{API_SERVICE}", "-o", "json", check=False)
        raise StepFailed(
            "register KEDA's external metrics API",
            f"{API_SERVICE} not Available: {result.stderr.strip()} {status.stdout[-1500:]}",
            f"read {local.logs / 'keda-adapter.log'} and {local.logs / 'kube-apiserver.log'}",
        )


def stop(local: LocalCluster) -> None:
    """Stop KEDA and unregister its API, leaving the rest of the cluster as it was.

    The APIService goes first: one whose server is gone fails every discovery in the
    cluster (namespace deletion and kopf among them).
    """
    local.kubectl("delete", "apiservice", API_SERVICE, "--ignore-not-found", check=False)
    for name in reversed(COMPONENTS):
        local.stop_process(name)
