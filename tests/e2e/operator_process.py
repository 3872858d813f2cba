"""The operator as a real process (`python -m sloscale run`) against the test cluster."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hack.localcluster.cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]


class OperatorProcess:
    def __init__(self, cluster: LocalCluster, log_path: Path, *args: str,
                 env: dict[str, str] | None = None) -> None:
        """`env` overrides the cluster's (e.g. KUBECONFIG with a ServiceAccount's token)."""
        self.cluster, self.log_path, self.args = cluster, log_path, args
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {**self.cluster.env,
               "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT / "runtime"),
                                              str(ROOT)]),
               **self.extra_env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sloscale", "run", *self.args],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no cleanup handlers, no last patches, as when a node dies."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def assert_alive(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log_path.read_text()


@contextlib.contextmanager
def running_operator(cluster: LocalCluster, log_path: Path, namespace: str,
                     *args: str) -> Iterator[OperatorProcess]:
    """The operator watching `namespace`, stopped afterwards with its log's tail printed.

    The namespace goes too: the session's cluster is shared, and a cluster-wide operator in a
    later module (the chart's) would otherwise work on what this one left behind.
    """
    process = OperatorProcess(cluster, log_path, "--namespace", namespace, *args).start()
    try:
        yield process
    finally:
        process.stop()
        print(log_path.read_text()[-5000:])
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true",
                        check=False, timeout=180)


def wait_for(predicate: Callable[[], Any], timeout_s: float = 90, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.5)


def fleet_service(namespace: str, name: str, index: int) -> dict[str, Any]:
    """One of a test fleet: autoscaled (to one replica: no Prometheus needed), but every fifth
    with two fixed replicas, so a PodDisruptionBudget too."""
    autoscaling = {"enabled": True, "minReplicas": 1, "maxReplicas": 1, "interval": "5s",
                   "objective": {"targetMs": 200}}
    return {"apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"model": {"name": "m", "format": "python", "storageUri": "s3://models/m"},
                     **({"replicas": 2} if index % 5 == 0 else {"autoscaling": autoscaling}),
                     "runtime": {"resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}}}


def audit_events(cluster: LocalCluster, since: str) -> Iterator[dict[str, Any]]:
    """The API server's audit events received at or after `since` (RFC 3339), oldest first,
    the rotated log's included."""
    for path in (cluster.logs / "audit.log.1", cluster.logs / "audit.log"):
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event.get("requestReceivedTimestamp", "") >= since:
                yield event


def get_json(cluster: LocalCluster, *args: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def install_api(cluster: LocalCluster, *namespaces: str) -> None:
    """The InferenceService CRD from crds/, established, and the namespaces a test uses."""
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/inferenceservices.serving.sloscale.io")
    for namespace in namespaces:  # fresh, also on a cluster reused between runs
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true",
                        timeout=120)
        cluster.kubectl("create", "namespace", namespace)


def wait_ready(cluster: LocalCluster, namespace: str, name: str, timeout_s: int = 120) -> None:
    """`kubectl wait --for=condition=Ready`, the way a user waits; on a timeout, what the
    service and its Deployment said (a rare stall is read from the failure, not re-run)."""
    try:
        cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready",
                        f"--timeout={timeout_s}s", f"inferenceservice/{name}",
                        timeout=timeout_s + 10)
    except RuntimeError as error:
        said = {kind: cluster.kubectl("get", "-n", namespace, kind, name, "--ignore-not-found",
                                      "-o", "jsonpath={.metadata.generation} {.status}",
                                      check=False).stdout
                for kind in ("inferenceservice", "deployment")}
        raise RuntimeError(f"{error}\nnow (generation status): {said}") from error
