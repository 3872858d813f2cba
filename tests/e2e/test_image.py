"""e2e: the operator image, run the way the chart runs it, serves an InferenceService.

User story: a platform engineer builds the image (`make image`), runs it against a cluster
with the chart's settings (uid 65532, read-only root filesystem with a writable /tmp, all
capabilities dropped) and sees it converge a service, answer its probes and its scrape, and
stop cleanly when Kubernetes sends SIGTERM. The image is the one `make image` last built from
this clone (its ID in out/image-id: other clones may re-tag sloscale:<version>); podman runs
it on the host network, since the local API server listens on 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hack import image
from hack.localcluster.cluster import LocalCluster, free_port
from tests.e2e.operator_process import ROOT, get_json, install_api, wait_for, wait_ready

pytestmark = pytest.mark.e2e
NS = "e2e-image"
SERVICE = "bert-onnx"  # autoscaled on a GPU: the renderer and the autoscaler both run
EXAMPLE = ROOT / "examples" / "onnx-bert.yaml"
GRACE_S = 30  # Kubernetes' default terminationGracePeriodSeconds; the chart keeps it


@dataclass
class Container:
    name: str
    metrics_url: str
    health_url: str

    def logs(self) -> str:
        result = subprocess.run(["podman", "logs", self.name], capture_output=True, text=True,
                                check=False)
        return result.stdout + result.stderr

    def state(self) -> str:
        return subprocess.run(["podman", "inspect", "--format", "{{.State.Status}}", self.name],
                              capture_output=True, text=True, check=False).stdout.strip()


def built_image() -> str:
    """The image `make image` built; the test fails (never skips) when it is missing."""
    image_id = image.built_image_id()
    assert image_id, "no out/image-id: run `make image` (make test does)"
    exists = subprocess.run(["podman", "image", "exists", image_id], check=False)
    assert exists.returncode == 0, f"image {image_id[:12]} is not in podman: run `make image`"
    return image_id


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except (urllib.error.URLError, ConnectionError) as error:
        return getattr(error, "code", 0), ""


@pytest.fixture(scope="module")
def container(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Container]:
    image_id = built_image()
    install_api(cluster, NS)
    # One file with the certificates inlined: the container sees nothing else of the host.
    kubeconfig = tmp_path_factory.mktemp("image") / "kubeconfig"
    kubeconfig.write_text(cluster.kubectl("config", "view", "--raw", "--flatten",
                                          "--minify").stdout)
    kubeconfig.chmod(0o644)  # readable by uid 65532, in a folder only root can list
    metrics_port, health_port = free_port(), free_port()
    closed_prometheus = f"http://127.0.0.1:{free_port()}"  # the autoscaler holds, says so
    name = f"sloscale-e2e-{metrics_port}"
    subprocess.run(
        ["podman", "run", "--detach", "--name", name, *image.run_flags(),
         "--network", "host", "--read-only", "--tmpfs", "/tmp:rw,size=64m",
         "--user", "65532:65532", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
         "--volume", f"{kubeconfig}:/etc/sloscale/kubeconfig:ro",
         "--env", "KUBECONFIG=/etc/sloscale/kubeconfig",
         image_id, "run", "--namespace", NS, f"--prometheus-url={closed_prometheus}",
         "--autoscaler-tick-s=1", f"--metrics-address=127.0.0.1:{metrics_port}",
         f"--health-address=127.0.0.1:{health_port}"],
        check=True, capture_output=True, text=True)
    running = Container(name, f"http://127.0.0.1:{metrics_port}/metrics",
                        f"http://127.0.0.1:{health_port}/healthz")
    try:
        yield running
    finally:
        print(running.logs()[-5000:])
        subprocess.run(["podman", "rm", "--force", "--time", "0", name], check=False,
                       capture_output=True)
        cluster.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true",
                        check=False, timeout=180)


def test_image_answers_its_probes(container: Container) -> None:
    """The chart's startup, liveness and readiness probes ask /healthz."""
    started = time.monotonic()
    wait_for(lambda: get(container.health_url)[0] == 200, timeout_s=60, what="/healthz")
    print(f"/healthz answered {time.monotonic() - started:.1f}s after the test asked")


def test_image_converges_an_inferenceservice(cluster: LocalCluster,
                                             container: Container) -> None:
    """kubectl apply of an example; kubectl wait --for=condition=Ready returns; drift heals."""
    cluster.kubectl("apply", "--server-side", "-n", NS, "-f", str(EXAMPLE))
    wait_ready(cluster, NS, SERVICE)
    isvc = get_json(cluster, "-n", NS, "inferenceservice", SERVICE) or {}
    for kind in ("deployment", "service"):
        child = get_json(cluster, "-n", NS, kind, SERVICE)
        assert child is not None, f"{kind} missing"
        assert [o["uid"] for o in child["metadata"]["ownerReferences"]] == [
            isvc["metadata"]["uid"]]

    def service_uid() -> str | None:
        service = get_json(cluster, "-n", NS, "service", SERVICE)
        return None if service is None else service["metadata"]["uid"]

    deleted = service_uid()
    cluster.kubectl("delete", "-n", NS, "service", SERVICE)
    wait_for(lambda: service_uid() not in (None, deleted), what="the deleted Service back")


def test_image_runs_the_autoscaler_and_serves_metrics(cluster: LocalCluster,
                                                       container: Container) -> None:
    """With Prometheus unreachable the loop holds and says so, in the status and /metrics."""
    def reported() -> bool:
        isvc = get_json(cluster, "-n", NS, "inferenceservice", SERVICE) or {}
        return any(c["type"] == "MetricsAvailable" and c["reason"] == "PrometheusUnavailable"
                   for c in (isvc.get("status") or {}).get("conditions", []))

    cluster.kubectl("apply", "--server-side", "-n", NS, "-f", str(EXAMPLE))  # if run alone
    wait_for(reported, what="the autoscaler's status on the service")
    series = f'sloscale_metrics_available{{inferenceservice="{SERVICE}",namespace="{NS}"}} 0.0'

    def scraped() -> str | None:
        status, text = get(container.metrics_url)
        return text if status == 200 and series in text else None

    text = wait_for(scraped, what=f"{series} on /metrics")
    assert "sloscale_prometheus_query_errors_total" in text
    assert "ModuleNotFoundError" not in container.logs()  # every dependency is in the image


def test_image_stops_cleanly_on_sigterm(container: Container) -> None:
    """What the kubelet does on a rollout: SIGTERM to PID 1, SIGKILL after the grace period."""
    assert container.state() == "running", container.logs()
    started = time.monotonic()
    subprocess.run(["podman", "kill", "--signal", "TERM", container.name], check=True,
                   capture_output=True)
    waited = subprocess.run(["podman", "wait", container.name], capture_output=True,
                            text=True, timeout=GRACE_S, check=True)
    stopped_s = time.monotonic() - started
    print(f"stopped {stopped_s:.1f}s after SIGTERM")
    assert waited.stdout.strip() == "0", container.logs()[-3000:]
    assert stopped_s < GRACE_S
