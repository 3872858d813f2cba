"""`make bench-scale`: the operator with 1,000 InferenceServices on the local control plane.

Applies N services at a fixed rate, then measures what one autoscaler tick costs the
operator (CPU seconds, wall time), how many PromQL queries a tick sends, and the operator's
memory; also how long creation takes to reach a Deployment and all pods Ready. Prints
figures; asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from kubernetes import client, watch
from kubernetes import config as kube_config

from hack.devtools.prometheus import LocalPrometheus, scrape_config
from hack.emulator.exposition import PodCounters
from hack.emulator.runner import ready_pod_names
from hack.emulator.server import EmulatedPod, EmulatorServer, PodKey, Registry
from hack.localcluster.cluster import LocalCluster, free_port
from hack.localcluster.nodes import NodePool
from sloscale.api import GROUP, PLURAL, SERVICE_LABEL, VERSION
from sloscale_runtime.capacity import percentile_ms  # nearest rank: any unit

ROOT = Path(__file__).resolve().parent.parent
NS = "bench"
TICK_S = 5.0


def _service(index: int) -> dict:
    return {
        "apiVersion": "serving.sloscale.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": f"svc-{index:04d}", "namespace": NS},
        "spec": {
            "model": {"name": "m", "format": "python", "storageUri": "s3://models/m"},
            "runtime": {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
            "autoscaling": {
                "enabled": True, "minReplicas": 1, "maxReplicas": 1, "interval": "15s",
                "objective": {"targetMs": 200, "window": "60s"},
            },
        },
    }  # fmt: skip


class BulkEmulator:
    """Every Ready pod of every service serves steadily growing Triton counters."""

    def __init__(self, cluster: LocalCluster, registry: Registry) -> None:
        self.cluster, self.registry = cluster, registry
        self.counters: dict[PodKey, PodCounters] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> BulkEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(5):
            out = self.cluster.kubectl("get", "pods", "-n", NS, "-l", SERVICE_LABEL, "-o",
                                       "json", check=False, timeout=120)  # fmt: skip
            if out.returncode != 0:
                continue
            pods = json.loads(out.stdout)["items"]
            service_of = {
                p["metadata"]["name"]: p["metadata"]["labels"][SERVICE_LABEL] for p in pods
            }
            by_service: dict[str, dict[PodKey, EmulatedPod]] = {}
            for name in ready_pod_names(pods):
                key = PodKey(NS, name)
                c = self.counters.setdefault(key, PodCounters())
                c.success += 25  # 5 rps over the 5 s step, 40 ms each
                c.request_duration_us += 25 * 40_000
                c.request_summary_us = {"0.95": 60_000.0, "0.99": 80_000.0}
                by_service.setdefault(service_of[name], {})[key] = EmulatedPod(
                    service_of[name], "m", c
                )
            for service, emulated in by_service.items():
                self.registry.set_service_pods(NS, service, emulated)


def _metric(url: str, name: str, labels: str = "") -> float:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and labels in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _proc(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, RSS MB, peak RSS MB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return cpu_s, int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def _create_on_schedule(api: client.CustomObjectsApi, count: int, rate: int
                        ) -> dict[str, float]:
    """Create service i at t0 + i/rate (one request each); returns name -> time it was created."""
    created: dict[str, float] = {}
    t0 = time.monotonic()
    for index in range(count):
        time.sleep(max(0.0, t0 + index / rate - time.monotonic()))
        body = _service(index)
        api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
        created[body["metadata"]["name"]] = time.time()
    return created


def _watch_deployments(apps: client.AppsV1Api, resource_version: str, seen: dict[str, float],
                       stop: threading.Event) -> None:
    """Record when each Deployment's ADDED event reaches us (its creation, as a client sees it)."""
    while not stop.is_set():
        stream = watch.Watch().stream(apps.list_namespaced_deployment, NS, timeout_seconds=30,
                                      resource_version=resource_version)
        for event in stream:
            obj = event["object"]
            resource_version = obj.metadata.resource_version
            if event["type"] == "ADDED":
                seen.setdefault(obj.metadata.name, time.time())
            if stop.is_set():
                break


def run(services: int, rate: int, settle_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="sloscale-scale-") as tmp:
        root = Path(tmp)
        nodes = max(2, services // 200 + 1)
        pool = NodePool(gpu_nodes=0, cpu_nodes=nodes, pods_per_node=250, startup_delay_s=1)
        cluster = LocalCluster(root / "cluster", pool).up()
        stack = [cluster.down]
        try:
            cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
            cluster.kubectl("wait", "--for=condition=Established", "crd", "--all")
            cluster.kubectl("create", "namespace", NS)
            registry = Registry()
            server = EmulatorServer(registry).start()
            stack.append(server.stop)
            bulk = BulkEmulator(cluster, registry).start()
            stack.append(bulk.stop)
            prom = LocalPrometheus(
                root / "prom", scrape_config(15, http_sd_urls=[f"http://{server.address}/targets"])
            ).start()
            stack.append(prom.stop)
            metrics_port = free_port()
            log = open(root / "operator.log", "wb")  # noqa: SIM115
            operator = subprocess.Popen(
                [sys.executable, "-m", "sloscale", "run", "--prometheus-url", prom.url,
                 "--metrics-address", f"127.0.0.1:{metrics_port}",
                 "--autoscaler-tick-s", str(TICK_S)],
                env={**cluster.env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            stack.append(lambda: (operator.terminate(), operator.wait(30)))
            time.sleep(5)
            api_client = kube_config.new_client_from_config(str(cluster.kubeconfig))
            seen: dict[str, float] = {}
            stop_watch = threading.Event()
            apps = client.AppsV1Api(api_client)
            listed = apps.list_namespaced_deployment(NS).metadata.resource_version
            threading.Thread(target=_watch_deployments, args=(apps, listed, seen, stop_watch),
                             daemon=True).start()  # fmt: skip
            cpu_start, _, _ = _proc(operator.pid)
            started = time.monotonic()
            applied = _create_on_schedule(client.CustomObjectsApi(api_client), services, rate)
            applied_s = time.monotonic() - started
            print(f"created {services} InferenceServices in {applied_s:.1f}s "
                  f"({services / applied_s:.1f}/s, goal {rate}/s)", flush=True)
            deadline = time.monotonic() + 1800
            ready = 0
            while time.monotonic() < deadline:
                out = cluster.kubectl(
                    "get",
                    "deployments",
                    "-n",
                    NS,
                    "-o",
                    "jsonpath={.items[*].status.readyReplicas}",
                    timeout=120,
                )
                ready = sum(int(x) for x in out.stdout.split())
                if ready >= services:
                    break
                time.sleep(5)
            all_ready_s = time.monotonic() - started
            cpu_ready, _, peak_ready = _proc(operator.pid)
            stop_watch.set()
            # The first decisions write every service's status once; measure after that storm.
            time.sleep(settle_s)
            delays = sorted(seen[n] - applied[n] for n in applied if n in seen)
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            prom_url = f"{prom.url}/metrics"
            q0 = _metric(prom_url, "prometheus_http_requests_total", 'handler="/api/v1/query"')
            n0 = _metric(url, "sloscale_autoscaler_loop_duration_seconds_count")
            s0 = _metric(url, "sloscale_autoscaler_loop_duration_seconds_sum")
            cpu0, _, _ = _proc(operator.pid)
            time.sleep(12 * TICK_S)
            q1 = _metric(prom_url, "prometheus_http_requests_total", 'handler="/api/v1/query"')
            n1 = _metric(url, "sloscale_autoscaler_loop_duration_seconds_count")
            s1 = _metric(url, "sloscale_autoscaler_loop_duration_seconds_sum")
            cpu1, rss, peak = _proc(operator.pid)
            ticks = max(1.0, n1 - n0)
            print(f"\nscale benchmark: {services} InferenceServices, autoscaler tick {TICK_S:g}s")
            print(
                f"  creation -> Deployment exists   p50 {percentile_ms(delays, 50):.2f}s  "
                f"p99 {percentile_ms(delays, 99):.2f}s  max {delays[-1]:.2f}s  "
                f"({len(delays)}/{services} seen)"
            )
            print(f"  operator CPU, first create to all Ready  {cpu_ready - cpu_start:.0f}s "
                  f"over {all_ready_s:.0f}s; peak RSS by then {peak_ready:.0f} MB")
            print(
                f"  all pods Ready after            {all_ready_s:.0f}s from the first apply "
                f"({ready}/{services})"
            )
            print(
                f"  loop tick wall time (mean)      {(s1 - s0) / ticks:.3f}s over {ticks:.0f} ticks"
            )
            print(
                f"  operator CPU per tick           {(cpu1 - cpu0) / ticks:.3f}s "
                "(whole process: kopf watches included)"
            )
            print(f"  PromQL queries per tick         {(q1 - q0) / ticks:.1f}")
            print(f"  operator RSS now / peak         {rss:.0f} MB / {peak:.0f} MB")
        finally:
            for stop in reversed(stack):
                try:
                    stop()
                except Exception as err:  # noqa: BLE001
                    print(f"while stopping: {err}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-scale", description=__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=20, help="InferenceServices applied per second")
    parser.add_argument("--settle-s", type=float, default=120.0,
                        help="wait this long after all are Ready before measuring ticks")
    args = parser.parse_args(argv)
    run(args.services, args.rate, args.settle_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
