"""The closed loop on the local cluster, in real time, and the simulator's prediction of it.

One `ClosedLoop` holds the local control plane (kwok pods Ready after a GPU pod's cold
start), a real Prometheus, the Triton-metrics emulator and the operator; `run` applies an
InferenceService, replays arrivals to its Ready pods and samples the Deployment every second.
`predict` runs the simulator with the same spec, arrivals and the loop's own lags; `score`
judges both alike (sim/report.py), so that `make fidelity` and `make demo` compare like with
like.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from hack.devtools.prometheus import LocalPrometheus, scrape_config
from hack.emulator.runner import EmulatorRunner, ReplayTarget, kube_pod_lister
from hack.emulator.server import EmulatorServer, Registry
from hack.emulator.service import EmulatedService
from hack.localcluster.cluster import LocalCluster, free_port
from hack.localcluster.nodes import NodePool
from sloscale.api import SERVICE_LABEL
from sloscale.autoscale.config import parse_autoscaling, policy_rate_window_s
from sloscale.autoscale.policies import make_policy
from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, ReplicaState, Snapshot
from sloscale.sim.cluster import ColdStart
from sloscale.sim.engine import RunResult, SimConfig, simulate
from sloscale.sim.report import score
from sloscale.sim.service import ServiceModel

ROOT = Path(__file__).resolve().parent.parent
MODEL = "resnet"
SAMPLE_S = 1.0
# The loop's lags, as measured on this cluster (docs/design.md, "Closed loop vs simulator"):
# Prometheus scrapes every second and the operator ticks every second, so a decision reads
# metrics about a second old; a scale write reaches the emulator as a Ready pod about a
# second after kwok's delay (ReplicaSet, scheduler, the emulator's pod refresh).
SCRAPE_S = 1.0
METRICS_LAG_S = 1.0
READY_LAG_S = 1.0
SUMMARY_WINDOW_S = 30.0  # the emulated pods' latency summaries (emulator/replica.py)


def _say(message: str) -> None:
    print(f"[closed loop] {message}", flush=True)


@dataclass
class Sample:
    t: float
    desired: int
    ready: int
    # What the operator last saw and decided (status.autoscaling), for the timelines.
    seen_rps: float | None = None
    seen_ms: float | None = None
    reason: str = ""


@dataclass
class LoopRun:
    """What one closed-loop run measured: the emulator's ground truth and the Deployment."""

    arrivals_s: np.ndarray
    arrival_s: np.ndarray  # per served request
    latency_ms: np.ndarray
    finished_s: np.ndarray
    rejected_s: np.ndarray
    unfinished: int
    samples: list[Sample] = field(default_factory=list)
    # Pods created during the run, in creation order: seconds to Ready (NaN: deleted first).
    cold_starts_s: list[float] = field(default_factory=list)

    def as_result(self, name: str = "closed loop") -> RunResult:
        """The run in the simulator's terms, so that sim/report.py scores it."""
        order = np.argsort(self.arrival_s, kind="stable")
        t = np.array([s.t for s in self.samples])
        desired = np.array([s.desired for s in self.samples])
        ready = np.array([s.ready for s in self.samples])
        replica_s = float(np.sum(desired[:-1] * np.diff(t))) if len(t) > 1 else 0.0
        actions = int(np.count_nonzero(np.diff(desired))) if len(desired) > 1 else 0
        return RunResult(
            name,
            self.arrivals_s,
            self.arrival_s[order],
            self.latency_ms[order],
            np.zeros(len(order)),
            np.sort(self.rejected_s),
            t,
            ready,
            desired,
            replica_s,
            actions,
        )


def _parse_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def manifest(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An InferenceService with the given spec.autoscaling (the shipped example's shape)."""
    return {
        "apiVersion": "serving.sloscale.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": MODEL, "format": "pytorch", "storageUri": "s3://models/resnet50"},
            "runtime": {"resources": {"limits": {"nvidia.com/gpu": 1}}},
            "autoscaling": spec,
        },
    }


class ClosedLoop:
    """The local cluster, Prometheus, the emulator and the operator; stop() undoes start()."""

    def __init__(
        self, out: Path, cold_start_s: float, cold_start_jitter_s: float, keda: bool = False
    ) -> None:
        self.out = out
        self.cold_start = ColdStart(cold_start_s, cold_start_jitter_s)
        self.keda = keda  # also the real KEDA on the cluster (`make compare`)
        self.stack: list[Callable[[], object]] = []

    def start(self) -> ClosedLoop:
        from kubernetes import client
        from kubernetes import config as kube_config

        _say("starting the local control plane (the first run builds it: about 9 minutes"
             + (", KEDA 8-16 more)" if self.keda else ")"))
        pool = NodePool(
            startup_delay_s=self.cold_start.seconds, startup_jitter_s=self.cold_start.jitter_s
        )
        self.cluster = LocalCluster(self.out / "cluster", pool, keda=self.keda).up()
        self.stack.append(self.cluster.down)
        self.cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        self.cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        self.registry = Registry()
        server = EmulatorServer(self.registry).start()
        self.stack.append(server.stop)
        config = scrape_config(SCRAPE_S, http_sd_urls=[f"http://{server.address}/targets"])
        prometheus = LocalPrometheus(self.out / "prometheus", config).start()
        self.stack.append(prometheus.stop)
        self.prometheus_url = prometheus.url
        _say(f"Prometheus on {prometheus.url}, emulated Triton pods on http://{server.address}")
        self.api_client = kube_config.new_client_from_config(str(self.cluster.kubeconfig))
        self.apps = client.AppsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self._start_operator(prometheus.url)
        return self

    def _start_operator(self, prometheus_url: str) -> None:
        log = open(self.out / "operator.log", "w")  # noqa: SIM115 - lives with the process
        self.metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
        env = {**self.cluster.env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "sloscale", "run", "--prometheus-url", prometheus_url,
             "--metrics-address", self.metrics_url.split("/")[2], "--autoscaler-tick-s", "1",
             "--scrape-interval-s", f"{SCRAPE_S:g}"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        self.stack.append(lambda: (proc.terminate(), proc.wait(timeout=20)))
        _say(f"operator started (log: {self.out / 'operator.log'})")

    def stop(self) -> None:
        for stop in reversed(self.stack):
            try:
                stop()
            except Exception as err:  # noqa: BLE001 - stop the rest regardless
                print(f"[closed loop] while stopping: {err}", file=sys.stderr)
        self.stack.clear()

    def replicas(self, namespace: str, name: str) -> tuple[int, int]:
        """(spec.replicas, readyReplicas) of the service's Deployment, (0, 0) before it exists."""
        try:
            dep = self.apps.read_namespaced_deployment(name, namespace, _preload_content=False)
        except Exception:  # noqa: BLE001 - not created yet, or an API hiccup: none
            return 0, 0
        body = json.loads(dep.data)
        ready = (body.get("status") or {}).get("readyReplicas") or 0
        return int(body["spec"].get("replicas", 0)), int(ready)

    def seen(self, namespace: str, name: str) -> tuple[float | None, float | None, str]:
        """(rps, latency ms) the operator last observed and its last decision's reason."""
        try:
            isvc = self.custom.get_namespaced_custom_object(
                "serving.sloscale.io", "v1alpha1", namespace, "inferenceservices", name
            )
        except Exception:  # noqa: BLE001 - diagnostics only
            return None, None, ""
        autoscaling = (isvc.get("status") or {}).get("autoscaling") or {}
        observed = autoscaling.get("observed") or {}
        reason = str((autoscaling.get("lastDecision") or {}).get("reason", ""))
        return observed.get("rps"), observed.get("latencyMs"), reason

    def _pods_started(self, namespace: str, name: str, pods: dict[str, list[Any]]) -> None:
        """Note each pod's creation time and, once Ready, its seconds from creation to Ready
        (kwok's cold start as it came out), in `pods` by uid."""
        try:
            listed = self.core.list_namespaced_pod(
                namespace, label_selector=f"{SERVICE_LABEL}={name}", _preload_content=False
            )
        except Exception:  # noqa: BLE001 - diagnostics only
            return
        for pod in json.loads(listed.data)["items"]:
            created = _parse_time(pod["metadata"]["creationTimestamp"])
            entry = pods.setdefault(
                pod["metadata"]["uid"], [created, pod["metadata"]["name"], None]
            )
            for condition in (pod.get("status") or {}).get("conditions") or []:
                if (
                    entry[2] is None
                    and condition["type"] == "Ready"
                    and condition["status"] == "True"
                ):
                    entry[2] = _parse_time(condition["lastTransitionTime"]) - created

    def run(
        self,
        isvc: dict[str, Any],
        arrivals_s: np.ndarray,
        tail_s: float,
        on_sample: Callable[[EmulatorRunner, Sample], None] | None = None,
        companions: tuple[dict[str, Any], ...] = (),
    ) -> LoopRun:
        """Apply `isvc`, wait for Ready, replay `arrivals_s` in real time until `tail_s` after
        the last one, sampling the Deployment every second; then delete the service.

        `isvc` may also be a plain Deployment (what a KEDA user runs), and `companions` what
        scales it (a ScaledObject): applied once it is Ready, deleted first."""
        name = isvc["metadata"]["name"]
        view = None if on_sample is None else (lambda _, runner, sample: on_sample(runner, sample))
        return self.run_together([Contender(isvc, companions)], arrivals_s, tail_s, view)[name]

    def run_together(
        self,
        contenders: list[Contender],
        arrivals_s: np.ndarray,
        tail_s: float,
        on_sample: Callable[[str, EmulatorRunner, Sample], None] | None = None,
    ) -> dict[str, LoopRun]:
        """`run` for several systems at once, side by side: each gets the same arrivals from
        the same moment, its own emulated pods; the runs by workload name."""
        for contender in contenders:
            self._apply(contender)
        replays = [self._replay(c.workload, arrivals_s) for c in contenders]
        end_s = replays[0].runner.duration_s + tail_s
        for replay in replays:
            replay.runner.start()
        try:
            while replays[0].runner.elapsed_s() < end_s:
                tick = time.monotonic()
                for replay in replays:
                    self._sample(replay, on_sample)
                time.sleep(max(0.0, SAMPLE_S - (time.monotonic() - tick)))
        finally:
            for replay in replays:
                replay.runner.stop()
        runs = {replay.name: replay.measured() for replay in replays}
        for contender in contenders:
            self._delete(contender)
        return runs

    def _apply(self, contender: Contender) -> None:
        """Apply the workload, wait until it is Ready, then what scales it."""
        isvc, namespace, name = contender.workload, contender.namespace, contender.name
        kind = isvc["kind"].lower()
        self.cluster.kubectl("create", "namespace", namespace, check=False)
        (self.out / f"{name}.json").write_text(
            json.dumps([isvc, *contender.companions], indent=2))
        self.cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(isvc))
        self.cluster.kubectl("wait", "--for=condition=Ready" if kind == "inferenceservice"
                             else "--for=condition=Available", f"{kind}/{name}",
                             "-n", namespace, "--timeout=180s", timeout=190)  # fmt: skip
        for companion in contender.companions:
            self.cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(companion))

    def _replay(self, workload: dict[str, Any], arrivals_s: np.ndarray) -> _Replay:
        namespace, name = workload["metadata"]["namespace"], workload["metadata"]["name"]
        service = EmulatedService(ServiceModel(), seed=0, summary_window_s=SUMMARY_WINDOW_S)
        runner = EmulatorRunner(
            ReplayTarget(namespace, name, MODEL),
            service,
            arrivals_s,
            self.registry,
            kube_pod_lister(self.api_client, namespace, name),
        )
        replay = _Replay(namespace, name, service, runner)
        self._pods_started(namespace, name, replay.pods)
        replay.first_pods = set(replay.pods)  # Ready before the replay: the warm minReplicas
        return replay

    def _sample(self, replay: _Replay,
                on_sample: Callable[[str, EmulatorRunner, Sample], None] | None) -> None:
        namespace, name = replay.namespace, replay.name
        desired, ready = self.replicas(namespace, name)
        now = replay.runner.elapsed_s()
        replay.samples.append(Sample(now, desired, ready, *self.seen(namespace, name)))
        self._pods_started(namespace, name, replay.pods)
        if on_sample is not None:
            on_sample(name, replay.runner, replay.samples[-1])

    def _delete(self, contender: Contender) -> None:
        for obj in (*contender.companions, contender.workload):
            self.cluster.kubectl(
                "delete",
                obj["kind"].lower(),
                obj["metadata"]["name"],
                "-n",
                contender.namespace,
                "--wait=true",
                "--timeout=120s",
                check=False,
                timeout=130,
            )


@dataclass(frozen=True)
class Contender:
    """One system of a run: the workload (an InferenceService, or a plain Deployment) and
    what scales it besides the operator (a ScaledObject)."""

    workload: dict[str, Any]
    companions: tuple[dict[str, Any], ...] = ()

    @property
    def namespace(self) -> str:
        return str(self.workload["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.workload["metadata"]["name"])


@dataclass
class _Replay:
    """One system's replay in progress: its emulated pods, samples and pods seen."""

    namespace: str
    name: str
    service: EmulatedService
    runner: EmulatorRunner
    samples: list[Sample] = field(default_factory=list)
    pods: dict[str, list[Any]] = field(default_factory=dict)
    first_pods: set[str] = field(default_factory=set)

    def measured(self) -> LoopRun:
        with self.runner.lock:
            ledger = self.service.ledger
            return LoopRun(
                self.runner.arrivals_s,
                np.asarray(ledger.arrival_s),
                np.asarray(ledger.latency_ms),
                np.asarray(ledger.finished_at_s),
                np.asarray(ledger.rejected_at_s),
                self.service.waiting,
                self.samples,
                [
                    float("nan") if ready_s is None else ready_s
                    for uid, (_, _, ready_s) in sorted(self.pods.items(),
                                                       key=lambda kv: kv[1][:2])
                    if uid not in self.first_pods
                ],
            )


@dataclass
class Recorder:
    """A policy that notes what it saw and decided at each decision (the timelines)."""

    policy: Any
    seen: list[tuple[float, float | None, float | None, int, str]] = field(default_factory=list)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.policy, attribute)

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        decision = self.policy.decide(snapshot, replicas, spec, now)
        self.seen.append(
            (now, snapshot.rps, snapshot.latency_ms, decision.desired_replicas, decision.reason)
        )
        return decision


@dataclass
class ReplayedColdStarts(ColdStart):
    """The cold starts a closed-loop run drew, in pod creation order, then random ones.

    A cold start of 45 +- 15 s is one draw per pod; on a bursty segment whether one pod is
    Ready before a burst decides the run. Replaying the draws the loop got compares the
    models, not two dice.
    """

    measured_s: list[float] = field(default_factory=list)

    def draw(self, rng: np.random.Generator) -> float:
        while self.measured_s:
            seconds = self.measured_s.pop(0)
            if np.isfinite(seconds):
                return seconds + READY_LAG_S
        return super().draw(rng)


def predict(
    isvc: dict[str, Any],
    arrivals_s: np.ndarray,
    cold_start: ColdStart,
    tail_s: float,
    recorder: list[Any] | None = None,
    cold_starts_s: list[float] | None = None,
    seed: int = 0,
    policy: str | None = None,
    service: ServiceModel | None = None,
) -> RunResult:
    """The simulator's prediction of `run`: same spec and arrivals, the loop's lags and view.

    `cold_starts_s`: the pods' cold starts a run measured (else drawn with `seed`);
    `recorder`, if given, receives (time, rps, latency ms, desired, reason) per decision;
    `policy` models something other than the spec's own (a real KEDA: `keda-latency`);
    `service` the pods (default: the emulator's model).
    """
    spec = parse_autoscaling(isvc["spec"]["autoscaling"])
    config = SimConfig(
        ReplayedColdStarts(
            cold_start.seconds + READY_LAG_S, cold_start.jitter_s, list(cold_starts_s or [])
        ),
        seed=seed,
        scrape_interval_s=SCRAPE_S,
        drain_s=tail_s,
        initial_replicas=spec.minReplicas,
        metrics_lag_s=METRICS_LAG_S,
        metrics_window_s=policy_rate_window_s(spec),
        pod_summary_window_s=SUMMARY_WINDOW_S,
    )
    driver = Recorder(make_policy(policy or spec.policy, spec))
    run = simulate(arrivals_s, driver, spec, service or ServiceModel(), config)
    if recorder is not None:
        recorder.extend(driver.seen)
    return run


FIGURES = (
    ("windows meeting p95", "windows_meeting_objective", "{:.1%}"),
    ("requests within SLO", "requests_within_slo", "{:.1%}"),
    ("replica-minutes", "replica_minutes", "{:.1f}"),
    ("peak replicas", "peak_replicas", "{:.0f}"),
    ("scaling actions", "scaling_actions", "{:.0f}"),
)


def scores(run: RunResult, spec: AutoscalingSpec) -> dict[str, float]:
    figures = score(run, spec, 1.0)
    figures["replica_minutes"] = run.replica_seconds / 60.0
    figures["p95_ms"] = float(np.percentile(run.latency_ms, 95)) if len(run.latency_ms) else 0.0
    return figures


def comparison_table(
    measured: dict[str, float], predicted: dict[str, float], drawn: dict[str, float]
) -> str:
    """The closed loop, the simulator with the cold starts the loop drew, the difference
    (windows and requests in points, cost in %), and the simulator with cold starts of its
    own (the median of SEEDS runs): what it predicts before the run."""
    lines = [
        f"  {'':<22} {'closed loop':>12} {'simulator':>12} {'difference':>12} "
        f"{'sim, own draws':>15}"
    ]
    for label, key, fmt in FIGURES:
        ours, theirs = measured[key], predicted[key]
        if fmt.endswith("%}"):
            diff = f"{(theirs - ours) * 100:+.1f} pt"
        elif key == "replica_minutes":
            diff = f"{(theirs - ours) / ours:+.1%}" if ours else "-"
        else:
            diff = f"{theirs - ours:+.0f}"
        lines.append(
            f"  {label:<22} {fmt.format(ours):>12} {fmt.format(theirs):>12} {diff:>12} "
            f"{fmt.format(drawn[key]):>15}"
        )
    return "\n".join(lines)


SEEDS = 5


def predict_drawn(
    isvc: dict[str, Any], arrivals_s: np.ndarray, cold_start: ColdStart, tail_s: float
) -> dict[str, float]:
    """The simulator's figures with cold starts of its own: the median over SEEDS seeds."""
    spec = parse_autoscaling(isvc["spec"]["autoscaling"])
    runs = [
        scores(predict(isvc, arrivals_s, cold_start, tail_s, seed=seed), spec)
        for seed in range(SEEDS)
    ]
    return {key: float(np.median([run[key] for run in runs])) for key in runs[0]}


def within_goal(measured: dict[str, float], predicted: dict[str, float]) -> bool:
    """The fidelity goal: within 5 points of windows met and 10 % of replica-minutes."""
    windows = abs(predicted["windows_meeting_objective"] - measured["windows_meeting_objective"])
    cost = measured["replica_minutes"]
    return windows <= 0.05 and abs(predicted["replica_minutes"] - cost) <= 0.10 * cost
