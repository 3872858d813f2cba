"""`make bench-scale`: the operator with 1,000 InferenceServices on the local control plane.

Applies N services at a fixed rate, then measures what one autoscaler tick costs the
operator (CPU seconds, wall time), how many PromQL queries a tick sends, and the operator's
memory; also how long creation takes to reach a Deployment and all pods Ready. With
--restart, then restarts the operator over the converged fleet: how long until every service
was checked (kopf's resume handler) and decided by the autoscaler again, and every write the
operator made meanwhile (from the API server's audit log); --restarts N does it N times over
the same fleet and prints min / median / max. With --shards N, N operator
processes share the services through shard Leases: the figures per process. Prints figures;
asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
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
from sloscale.controller.shards import SHARD_PREFIX
from sloscale_runtime.capacity import percentile_ms  # nearest rank: any unit

ROOT = Path(__file__).resolve().parent.parent
NS = "bench"
TICK_S = 5.0
SERVICE_INTERVAL_S = 15.0
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# The operator's clients as the audit log names them: its own (sloscale), kopf's, and the
# Kubernetes client's default (operators older than the "sloscale" user agent; the
# benchmark's own client names itself "bench-scale").
OPERATOR_AGENTS = ("sloscale", "kopf/", "OpenAPI-Generator/")


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
    """Every Ready pod of every service serves 5 rps at 40 ms, steadily.

    The counters grow with the time a pod has been Ready, in small steps (ADVANCE_S), not by
    one listing's worth at each listing: listings take longer on a loaded machine, and counters
    stepped at their pace read as a rate that moved by 10 % and more between ticks, news to
    the autoscaler's observed figures (a status write) though nothing changed.
    """

    RPS, LATENCY_US, ADVANCE_S = 5.0, 40_000.0, 0.25

    def __init__(self, cluster: LocalCluster, registry: Registry) -> None:
        self.cluster, self.registry = cluster, registry
        self.counters: dict[PodKey, PodCounters] = {}
        self._served_s: dict[PodKey, float] = {}  # how long each pod has served
        self._ready: set[PodKey] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True),
                         threading.Thread(target=self._advance, daemon=True)]

    def start(self) -> BulkEmulator:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _advance(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.ADVANCE_S):
            now = time.monotonic()
            with self._lock:
                for key in self._ready:
                    self._served_s[key] = served = self._served_s[key] + now - last
                    c = self.counters[key]
                    c.success = int(self.RPS * served)
                    c.request_duration_us = c.success * self.LATENCY_US
            last = now

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
            ready = {PodKey(NS, name) for name in ready_pod_names(pods)}
            with self._lock:
                for key in ready:
                    c = self.counters.setdefault(key, PodCounters())
                    c.request_summary_us = {"0.95": 60_000.0, "0.99": 80_000.0}
                    self._served_s.setdefault(key, 0.0)
                    by_service.setdefault(service_of[key.pod], {})[key] = EmulatedPod(
                        service_of[key.pod], "m", c
                    )
                self._ready = ready  # a pod no longer Ready: its counters stand still
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


def _start_operator(cluster: LocalCluster, prom_url: str, metrics_port: int,
                    log_path: Path, shards: int = 0, identity: str = "bench-operator",
                    ) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    sharded = ["--shards", str(shards), "--shard-lease-namespace", NS] if shards else []
    return subprocess.Popen(
        [sys.executable, "-m", "sloscale", "run", "--prometheus-url", prom_url,
         "--metrics-address", f"127.0.0.1:{metrics_port}",
         "--autoscaler-tick-s", str(TICK_S), *sharded],
        env={**cluster.env, "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "POD_ID": identity},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


def _audit_now() -> str:
    """The audit log's own time format (RFC 3339, microseconds), for `since` comparisons."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1e6):06d}Z"


def operator_writes(audit_logs: list[Path], since: str, until: str) -> dict[str, int]:
    """Write requests the operator made in [since, until), by 'verb resource[/sub]'."""
    return _by_kind(writes_by_agent(audit_logs, since, until))


def _by_kind(by_agent: Counter[tuple[str, str]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for (_, key), count in by_agent.items():
        counts[key] += count
    return dict(counts)


def writes_by_agent(audit_logs: list[Path], since: str, until: str
                    ) -> Counter[tuple[str, str]]:
    """The same writes by (user agent, 'verb resource[/sub]'): sharded, each process names
    itself in its agent."""
    counts: Counter[tuple[str, str]] = Counter()
    for path in audit_logs:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if '"verb":"get"' in line or '"verb":"list"' in line or '"verb":"watch"' in line:
                continue  # most of the log: not parsed
            event = json.loads(line)
            at = event.get("requestReceivedTimestamp", "")
            if not since <= at < until or event.get("verb") not in WRITE_VERBS:
                continue
            if not event.get("userAgent", "").startswith(OPERATOR_AGENTS):
                continue
            ref = event.get("objectRef") or {}
            what = ref.get("resource", "?") + (f"/{ref['subresource']}"
                                               if ref.get("subresource") else "")
            refused = (event.get("responseStatus") or {}).get("code") == 409
            counts[(event["userAgent"], f"{event['verb']} {what}{' (409)' if refused else ''}")] \
                += 1
    return counts


def _scrape(url: str) -> str:
    """The operator's /metrics page; empty while it does not answer."""
    try:
        return str(urllib.request.urlopen(url, timeout=10).read().decode())
    except OSError:
        return ""


def _services_decided(url: str) -> int:
    """Services with at least one autoscaling decision since the operator started."""
    decided = set()
    for line in _scrape(url).splitlines():
        if line.startswith("sloscale_autoscaler_decisions_total{") and \
                float(line.rsplit(" ", 1)[1]) > 0:
            labels = line[line.index("{") + 1:line.index("}")]
            decided.add(",".join(p for p in labels.split(",") if not p.startswith("reason=")))
    return len(decided)


def _status_writes_by_cause(url: str) -> dict[str, int]:
    """The autoscaler's status writes since its process started, by cause (its /metrics)."""
    causes = {}
    for line in _scrape(url).splitlines():
        if line.startswith("sloscale_autoscaler_status_writes_total{"):
            cause = line[line.index('cause="') + 7:line.index('"}')]
            causes[cause] = int(float(line.rsplit(" ", 1)[1]))
    return causes


def _resumed(log_path: Path, offset: int) -> int:
    """kopf's 'Resuming is processed' lines in the operator's log after `offset` bytes."""
    with log_path.open("rb") as log:
        log.seek(offset)
        return log.read().count(b"Resuming is processed")


def measure_restart(cluster: LocalCluster, operator: subprocess.Popen[bytes], services: int,
                    start: Callable[[], subprocess.Popen[bytes]], log_path: Path,
                    metrics_url: str,
                    ) -> tuple[subprocess.Popen[bytes], tuple[float | None, float | None, int]]:
    """Restart the operator over the converged fleet; print time to checked/decided, writes.

    The same span of the running operator, just before, is measured too: the autoscaler
    refreshes each service's observed figures once a minute, restart or not.
    """
    audit = [cluster.logs / "audit.log.1", cluster.logs / "audit.log"]
    before_since = _audit_now()
    time.sleep(30)
    before = operator_writes(audit, before_since, _audit_now())
    _stop(operator)
    offset = log_path.stat().st_size
    since = _audit_now()
    started = time.monotonic()
    operator = start()
    checked_s = decided_s = None
    deadline = started + 600
    while time.monotonic() < deadline and (checked_s is None or decided_s is None):
        # Not faster: each read of /metrics (a thousand services' series) costs the operator
        # CPU; at 0.5 s it was a tenth of the restart's samples in a profile.
        time.sleep(2.0)
        if checked_s is None and _resumed(log_path, offset) >= services:
            checked_s = time.monotonic() - started
        if decided_s is None and _services_decided(metrics_url) >= services:
            decided_s = time.monotonic() - started
    cpu_after, rss, _ = _proc(operator.pid)
    # Writes over the same span as the steady one above (30 s), from the restart.
    time.sleep(max(0.0, started + 30 - time.monotonic()))
    writes = operator_writes(audit, since, _audit_now())
    print(f"\nrestart over {services} converged InferenceServices")
    print(f"  every service checked (resumed)  {_s(checked_s)} after the restart")
    print(f"  every service decided again      {_s(decided_s)} after the restart "
          f"(each decides every {SERVICE_INTERVAL_S:g}s)")
    print(f"  operator CPU until then          {cpu_after:.1f}s (a new process); RSS {rss:.0f} MB")
    print(f"  operator writes, 30 s from the restart   {sum(writes.values())}  {writes}")
    print(f"  autoscaler status writes since the restart, by cause  "
          f"{_status_writes_by_cause(metrics_url)}")
    print(f"  operator writes, 30 s running before it  {sum(before.values())}  {before}",
          flush=True)
    return operator, (checked_s, decided_s, sum(writes.values()))


def print_restarts(figures: list[tuple[float | None, float | None, int]]) -> None:
    """min / median / max of the restarts' figures (a restart that never got there: 600 s)."""
    def spread(values: list[float]) -> str:
        return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"

    def seconds(value: float | None) -> float:
        return 600.0 if value is None else value

    print(f"\n{len(figures)} restarts, min / median / max")
    print(f"  every service checked     {spread([seconds(f[0]) for f in figures])} s")
    print(f"  every service decided     {spread([seconds(f[1]) for f in figures])} s")
    print(f"  writes, 30 s from restart {spread([float(f[2]) for f in figures])}")


def _s(seconds: float | None) -> str:
    return "never (600 s)" if seconds is None else f"{seconds:.1f}s"


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


@dataclass
class Operator:
    """One operator process of the benchmark (several when sharded)."""

    identity: str
    metrics_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def proc(self) -> tuple[float, float, float]:
        assert self.process is not None
        return _proc(self.process.pid)


def _wait_all_ready(cluster: LocalCluster, services: int) -> int:
    deadline = time.monotonic() + 1800
    ready = 0
    while time.monotonic() < deadline:
        out = cluster.kubectl("get", "deployments", "-n", NS, "-o",
                              "jsonpath={.items[*].status.readyReplicas}", timeout=120)
        ready = sum(int(x) for x in out.stdout.split())
        if ready >= services:
            break
        time.sleep(5)
    return ready


def _wait_shards_spread(cluster: LocalCluster, processes: int) -> None:
    """Until every process holds a shard (the first to start takes all, then hands over)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = cluster.kubectl("get", "leases", "-n", NS, "-o", "jsonpath={range .items[*]}"
                              "{.metadata.name}={.spec.holderIdentity}{' '}{end}", timeout=60)
        holders = {pair.split("=", 1)[1] for pair in out.stdout.split()
                   if pair.startswith(SHARD_PREFIX)} - {""}
        if len(holders) >= processes:
            return
        time.sleep(1)
    raise RuntimeError("the operator processes never each held a shard")


def _tick_figures(prom_url: str, operators: list[Operator]
                  ) -> tuple[float, list[tuple[float, float, float]]]:
    """Over 12 ticks: PromQL queries per tick; per process (ticks, mean tick wall s, CPU s
    per tick)."""
    def sample() -> tuple[float, list[tuple[float, float, float]]]:
        queries = _metric(prom_url, "prometheus_http_requests_total", 'handler="/api/v1/query"')
        return queries, [(_metric(o.url, "sloscale_autoscaler_loop_duration_seconds_count"),
                          _metric(o.url, "sloscale_autoscaler_loop_duration_seconds_sum"),
                          o.proc()[0]) for o in operators]

    q0, first = sample()
    time.sleep(12 * TICK_S)
    q1, last = sample()
    figures = []
    for (n0, s0, c0), (n1, s1, c1) in zip(first, last, strict=True):
        ticks = max(1.0, n1 - n0)
        figures.append((ticks, (s1 - s0) / ticks, (c1 - c0) / ticks))
    return (q1 - q0) / sum(f[0] for f in figures), figures


def run(services: int, rate: int, settle_s: float, restarts: int, shards: int = 0) -> None:
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
            operators = [Operator(f"bench-operator-{i}", free_port(),
                                  root / f"operator-{i}.log") for i in range(max(1, shards))]

            def start(op: Operator) -> subprocess.Popen[bytes]:
                op.process = _start_operator(cluster, prom.url, op.metrics_port, op.log_path,
                                             shards, op.identity)
                return op.process

            for op in operators:
                start(op)
                stack.append(lambda op=op: _stop(op.process))  # type: ignore[misc]
            time.sleep(5)
            if shards:
                _wait_shards_spread(cluster, len(operators))
            api_client = kube_config.new_client_from_config(str(cluster.kubeconfig))
            api_client.user_agent = "bench-scale"  # not one of OPERATOR_AGENTS
            seen: dict[str, float] = {}
            stop_watch = threading.Event()
            apps = client.AppsV1Api(api_client)
            listed = apps.list_namespaced_deployment(NS).metadata.resource_version
            threading.Thread(target=_watch_deployments, args=(apps, listed, seen, stop_watch),
                             daemon=True).start()  # fmt: skip
            cpu_start = [op.proc()[0] for op in operators]
            audit = [cluster.logs / "audit.log.1", cluster.logs / "audit.log"]
            since = _audit_now()
            started = time.monotonic()
            applied = _create_on_schedule(client.CustomObjectsApi(api_client), services, rate)
            applied_s = time.monotonic() - started
            print(f"created {services} InferenceServices in {applied_s:.1f}s "
                  f"({services / applied_s:.1f}/s, goal {rate}/s)", flush=True)
            ready = _wait_all_ready(cluster, services)
            all_ready_s = time.monotonic() - started
            until = _audit_now()
            by_cause = Counter[str]()  # the autoscaler's, over the same span as burst_writes
            for op in operators:
                by_cause.update(_status_writes_by_cause(op.url))
            by_agent = writes_by_agent(audit, since, until)  # one pass over a large log
            burst_writes = _by_kind(by_agent)
            at_ready = [op.proc() for op in operators]
            stop_watch.set()
            # The first decisions write every service's status once; measure after that storm.
            time.sleep(settle_s)
            delays = sorted(seen[n] - applied[n] for n in applied if n in seen)
            queries, ticks = _tick_figures(f"{prom.url}/metrics", operators)
            now = [op.proc() for op in operators]
            mode = f", {shards} shards (one process each)" if shards else ""
            print(f"\nscale benchmark: {services} InferenceServices, autoscaler tick "
                  f"{TICK_S:g}s{mode}")
            print(
                f"  creation -> Deployment exists   p50 {percentile_ms(delays, 50):.2f}s  "
                f"p99 {percentile_ms(delays, 99):.2f}s  max {delays[-1]:.2f}s  "
                f"({len(delays)}/{services} seen)"
            )
            cpu = [r[0] - c for r, c in zip(at_ready, cpu_start, strict=True)]
            print(f"  operator CPU, first create to all Ready  {sum(cpu):.0f}s "
                  f"({1000 * sum(cpu) / services:.0f} ms per service) over {all_ready_s:.0f}s; "
                  f"peak RSS by then {max(r[2] for r in at_ready):.0f} MB")
            print(
                f"  all pods Ready after            {all_ready_s:.0f}s from the first apply "
                f"({ready}/{services})"
            )
            per_service = {k: round(v / services, 2) for k, v in sorted(burst_writes.items())}
            print(f"  operator writes per service until then  "
                  f"{sum(burst_writes.values()) / services:.2f}  {per_service}")
            print("  of which the autoscaler's status writes, per service by cause  "
                  f"{ {k: round(v / services, 2) for k, v in sorted(by_cause.items())} }")
            for op, (n, wall, cpu_tick), (_, rss, peak), spent in zip(
                    operators, ticks, now, cpu, strict=True):
                who = f"  [{op.identity}] " if shards else "  "
                writes = sum(v for (agent, _), v in by_agent.items() if op.identity in agent)
                if shards:
                    print(f"{who}CPU to all Ready {spent:.0f}s, its writes {writes}")
                print(f"{who}loop tick wall time (mean)      {wall:.3f}s over {n:.0f} ticks")
                print(f"{who}operator CPU per tick           {cpu_tick:.3f}s "
                      "(whole process: kopf watches included)")
                print(f"{who}operator RSS now / peak         {rss:.0f} MB / {peak:.0f} MB",
                      flush=True)
            print(f"  PromQL queries per tick         {queries:.1f}")
            running, figures = operators[0], []
            for _ in range(0 if shards else restarts):
                running.process, measured = measure_restart(
                    cluster, running.process, services, lambda: start(running),
                    running.log_path, running.url)
                figures.append(measured)
            if len(figures) > 1:
                print_restarts(figures)
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
    parser.add_argument("--restart", action="store_const", const=1, dest="restarts",
                        default=0,
                        help="then restart the operator: time to check and decide every "
                             "service again, and the writes it makes")
    parser.add_argument("--restarts", type=int, dest="restarts",
                        help="restart N times over the same fleet; min / median / max")
    parser.add_argument("--shards", type=int, default=0,
                        help="N operator processes sharing the services (sloscale run --shards "
                             "N); the figures per process (not with --restart)")
    args = parser.parse_args(argv)
    if args.shards < 0 or args.restarts < 0 or (args.shards and args.restarts):
        parser.error("--shards and --restarts must be >= 0; a restart is not measured with "
                     "--shards")
    run(args.services, args.rate, args.settle_s, args.restarts, args.shards)
    return 0


if __name__ == "__main__":
    sys.exit(main())
