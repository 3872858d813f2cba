"""`make demo`: the whole loop on the local simulated GPU cluster, in about five minutes.

Starts (or reuses) the local control plane, a real Prometheus, the operator with its
autoscaler, and the Triton-metrics emulator; applies an InferenceService; replays a real
request trace compressed from an hour to about five minutes; shows what the autoscaler sees
and does; ends with a summary table and a PNG of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hack.localcluster.cluster import LocalCluster, free_port
from hack.localcluster.errors import StepFailed
from hack.localcluster.nodes import NodePool
from sloscale.autoscale.policies import AutoscalingSpec, Objective
from sloscale.devtools.prometheus import LocalPrometheus, scrape_config
from sloscale.emulator.runner import EmulatorRunner, ReplayTarget, kube_pod_lister
from sloscale.emulator.server import EmulatorServer, Registry
from sloscale.emulator.service import EmulatedService
from sloscale.sim.engine import SimConfig
from sloscale.sim.profile import profile_capacity
from sloscale.sim.service import ServiceModel
from sloscale.sim.traces import load_trace, stretch

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE, NAME, MODEL = "default", "demo-resnet", "resnet"
COMPRESSION = 12.0  # one hour of trace in five minutes; every time constant shrinks alike


@dataclass
class Timeline:
    """What the live view printed, kept for the summary and the plot."""

    t: list[float] = field(default_factory=list)
    load_rps: list[float] = field(default_factory=list)
    desired: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    observed_ms: list[float] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def demo_service(slo_ms: float, cold_start_s: float, capacity_rps: float) -> dict:
    """The InferenceService the demo applies: the shipped example's shape, time-compressed."""
    return {
        "apiVersion": "serving.sloscale.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "model": {"name": MODEL, "format": "pytorch", "storageUri": "s3://models/resnet50"},
            "runtime": {"resources": {"limits": {"nvidia.com/gpu": 1}}},
            "autoscaling": {
                "enabled": True,
                "minReplicas": 1,
                "maxReplicas": 24,
                "objective": {"latency": "p95", "targetMs": slo_ms, "window": "10s"},
                "interval": "2s",
                "coldStartSeconds": cold_start_s,
                "scaleUp": {"stabilizationSeconds": 0, "maxStep": 8},
                "scaleDown": {"stabilizationSeconds": round(300 / COMPRESSION), "maxStep": 2},
                # What `sloscale runtime profile` measures for this model at the objective.
                "capacityProfile": {"maxRpsPerReplica": round(capacity_rps, 1)},
            },
        },
    }


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.stack: list = []  # things to stop, last started first
        self.timeline = Timeline()

    # -- setup ------------------------------------------------------------------------------
    def start_cluster(self) -> LocalCluster:
        _say("starting the local control plane (the first run builds it: about 9 minutes)")
        cold_start_s = 60.0 / COMPRESSION
        pool = NodePool(startup_delay_s=cold_start_s, startup_jitter_s=0.5)
        cluster = LocalCluster(self.out / "cluster", pool).up()
        self.stack.append(cluster.down)
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        return cluster

    def start_emulator_and_prometheus(self, cluster: LocalCluster) -> tuple[EmulatorRunner, str]:
        trace = load_trace(self.args.trace)
        replay = stretch(
            trace, 1.0 / COMPRESSION, self.args.rate_scale, np.random.default_rng(0), 0.05
        )
        arrivals = replay.arrivals_s
        _say(
            f"trace {Path(self.args.trace).name}: {len(trace.arrivals_s)} requests over "
            f"{trace.duration_s / 60:.0f} min, replayed x{self.args.rate_scale:g} in "
            f"{arrivals[-1] / 60:.1f} min"
        )
        registry = Registry()
        server = EmulatorServer(registry).start()
        self.stack.append(server.stop)
        config = scrape_config(1, http_sd_urls=[f"http://{server.address}/targets"])
        prometheus = LocalPrometheus(self.out / "prometheus", config).start()
        self.stack.append(prometheus.stop)
        _say(f"Prometheus on {prometheus.url}, emulated Triton pods on http://{server.address}")
        from kubernetes import config as kube_config

        api_client = kube_config.new_client_from_config(str(cluster.kubeconfig))
        # Triton's latency summaries forget old requests; compressed time forgets faster.
        service = EmulatedService(ServiceModel(), seed=0, summary_window_s=60.0 / COMPRESSION)
        runner = EmulatorRunner(
            ReplayTarget(NAMESPACE, NAME, MODEL), service, arrivals, registry,
            kube_pod_lister(api_client, NAMESPACE, NAME),
        )  # fmt: skip
        return runner, prometheus.url

    def start_operator(self, cluster: LocalCluster, prometheus_url: str) -> None:
        log = open(self.out / "operator.log", "w")  # noqa: SIM115 - lives with the process
        self.metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
        env = {**cluster.env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "sloscale", "run", "--prometheus-url", prometheus_url,
             "--metrics-address", self.metrics_url.split("/")[2], "--autoscaler-tick-s", "1"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        self.stack.append(lambda: (proc.terminate(), proc.wait(timeout=20)))
        _say(f"operator started (log: {self.out / 'operator.log'})")

    # -- the run ----------------------------------------------------------------------------
    def observe(self, cluster: LocalCluster, runner: EmulatorRunner) -> None:
        isvc = json.loads(
            cluster.kubectl("get", "inferenceservice", NAME, "-n", NAMESPACE, "-o", "json").stdout
        )
        autoscaling = (isvc.get("status") or {}).get("autoscaling") or {}
        deployment = cluster.kubectl(
            "get", "deployment", NAME, "-n", NAMESPACE, "-o", "json", check=False
        )
        spec_replicas = ready = 0
        if deployment.returncode == 0:
            dep = json.loads(deployment.stdout)
            spec_replicas = int(dep["spec"].get("replicas", 0))
            ready = int((dep.get("status") or {}).get("readyReplicas", 0) or 0)
        now = runner.elapsed_s()
        window = runner.arrivals_s[(runner.arrivals_s > now - 5) & (runner.arrivals_s <= now)]
        observed = self._observed_latency_ms()
        last = (autoscaling.get("lastDecision") or {}).get("reason", "")
        tl = self.timeline
        tl.t.append(now)
        tl.load_rps.append(len(window) / 5.0)
        tl.desired.append(spec_replicas)
        tl.ready.append(ready)
        tl.observed_ms.append(float(observed))
        tl.decisions.append(last)
        replicas = f"{ready:2d}/{spec_replicas:2d}"
        print(
            f"  t={now:5.0f}s  load {tl.load_rps[-1]:6.1f} rps  replicas {replicas} ready/desired"
            f"  p95 {observed:6.0f} ms (SLO {self.args.slo_ms:.0f})  {last[:60]}",
            flush=True,
        )

    def _observed_latency_ms(self) -> float:
        """The latency the autoscaler saw last, from the operator's own /metrics."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2) as response:
                page = response.read().decode()
        except OSError:
            return float("nan")
        for line in page.splitlines():
            if line.startswith("sloscale_observed_latency_ms{") and f'"{NAME}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return float("nan")

    def run(self) -> int:
        try:
            cluster = self.start_cluster()
            runner, prometheus_url = self.start_emulator_and_prometheus(cluster)
            self.start_operator(cluster, prometheus_url)
            capacity = profile_capacity(ServiceModel(), AutoscalingSpec(maxReplicas=100,
                objective=Objective("p95", self.args.slo_ms)), SimConfig())
            manifest = demo_service(self.args.slo_ms, 60.0 / COMPRESSION, capacity)
            (self.out / "inferenceservice.json").write_text(json.dumps(manifest, indent=2))
            cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))
            cluster.kubectl("wait", "--for=condition=Ready", f"inferenceservice/{NAME}",
                            "-n", NAMESPACE, "--timeout=120s")  # fmt: skip
            _say("InferenceService Ready; replaying the trace (Ctrl-C stops early)")
            runner.start()
            self.stack.append(runner.stop)
            while not runner.done():
                self.observe(cluster, runner)
                time.sleep(3)
            from hack.demo_report import report

            report(self.timeline, runner.service.ledger, self.args.slo_ms, self.out)
            return 0
        except StepFailed as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            _say("interrupted")
            return 130
        finally:
            # A second Ctrl-C must not cut the teardown short and leave servers behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for stop in reversed(self.stack):
                try:
                    stop()
                except Exception as err:  # noqa: BLE001 - stop the rest regardless
                    print(f"[demo] while stopping: {err}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--trace", default=str(ROOT / "examples/traces/azure_llm_2023_code.csv"))
    parser.add_argument("--rate-scale", type=float, default=3.0, help="multiply the request rate")
    parser.add_argument("--slo-ms", type=float, default=250.0, help="p95 latency objective")
    parser.add_argument("--out", default=str(ROOT / ".sloscale/demo"))
    return Demo(parser.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
