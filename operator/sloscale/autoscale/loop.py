"""The periodic loop that wires source -> policy -> actuator for every InferenceService at once.

One task for all services: per tick, one batch of PromQL, one list of each kind of object,
then a pure decision per service (`tick.decide_tick`) and the writes it calls for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sloscale.api import SERVICE_LABEL
from sloscale.autoscale.config import parse_autoscaling, policy_rate_window_s, read_capacity_profile
from sloscale.autoscale.conflicts import competing_autoscaler
from sloscale.autoscale.metrics import Fetched
from sloscale.autoscale.policies import make_policy
from sloscale.autoscale.policies.base import AutoscalingSpec, Policy
from sloscale.autoscale.policies.slo import UNSCHEDULABLE_BACKOFF_S
from sloscale.autoscale.promql import ServiceKey, ServiceMetrics
from sloscale.autoscale.replicas import census
from sloscale.autoscale.status import autoscaling_status, write_cause
from sloscale.autoscale.telemetry import AutoscalerMetrics
from sloscale.autoscale.tick import TickOutcome, decide_tick, invalid_config

log = logging.getLogger(__name__)
PROFILE_CACHE_S = 60.0
# Status and scale writes in flight at once per tick.
WRITE_CONCURRENCY = 8
# As long as the slo policy keeps below a schedulable ceiling after seeing Pending pods.
UNSCHEDULABLE_MEMORY_S = UNSCHEDULABLE_BACKOFF_S


class MetricsSource(Protocol):
    """Where the loop's numbers come from (autoscale/metrics.py: Prometheus)."""

    async def fetch_async(self, now: float, window_s: float | None = None) -> Fetched: ...


class AutoscalerKube(Protocol):
    """The Kubernetes reads and writes of a tick (autoscale/kube.py); blocking, so the loop
    calls them in worker threads."""

    def list_inference_services(self) -> list[dict[str, Any]]: ...
    def snapshot_workloads(self, service_label: str) -> dict[str, Any]: ...
    def config_map(self, namespace: str, name: str) -> dict[str, str] | None: ...
    def scale(self, namespace: str, name: str, replicas: int) -> None: ...
    def event(self, service: dict[str, Any], reason: str, message: str) -> None: ...
    def write_status(self, service: dict[str, Any], autoscaling: dict[str, Any],
                     outcome: TickOutcome, now: float) -> None: ...
    def newest(self, service: dict[str, Any]) -> dict[str, Any]:
        """The watched service with this process's own last status write in it, where the
        watch has not delivered that write yet."""
        ...


@dataclass(frozen=True)
class Parsed:
    """A service's spec.autoscaling parsed once per change, with what the loop derives."""

    version: tuple[str, Any]  # (uid, generation): a new one means the spec changed
    spec: AutoscalingSpec | None  # None: the settings are invalid, `error` says why
    error: str | None
    interval_s: float
    window_s: float


def parse(service: dict[str, Any], version: tuple[str, Any], tick_s: float) -> Parsed:
    try:
        spec = parse_autoscaling(service["spec"].get("autoscaling"))
    except ValueError as err:  # _decide reports it; the defaults keep the service on the grid
        return Parsed(version, None, str(err), tick_s, AutoscalingSpec().objective.window)
    return Parsed(version, spec, None, spec.interval, policy_rate_window_s(spec))


@dataclass
class ServiceMemory:
    """What the loop keeps per service between ticks: its policy (with state) and timing."""

    policy_name: str
    policy: Policy
    # The scheduler's last "cannot place" message and when it was seen.
    unschedulable: tuple[float, str] | None = None


@dataclass
class LoopSettings:
    tick_s: float = 5.0  # how often the loop wakes; each service decides on its own interval
    stale_after_s: float = 60.0


@dataclass(frozen=True)
class TickInputs:
    """Everything one tick's decisions read, fetched before any is made."""

    by_window: dict[float, Fetched]
    cluster: dict[str, Any]
    profiles: dict[tuple[str, str, str], str | None]  # (namespace, ConfigMap, key) -> text


@dataclass
class AutoscalerLoop:
    """Per tick: fetch (all I/O, off the event loop), decide (pure), then write."""

    source: MetricsSource
    kube: AutoscalerKube
    metrics: AutoscalerMetrics
    settings: LoopSettings = field(default_factory=LoopSettings)
    memory: dict[ServiceKey, ServiceMemory] = field(default_factory=dict)
    parsed: dict[ServiceKey, Parsed] = field(default_factory=dict)
    # ConfigMap-held capacity profiles, re-read once a minute rather than every decision.
    profiles: dict[tuple[str, str, str], tuple[float, str | None]] = field(default_factory=dict)
    # Multi-replica mode: whether this replica is the active peer (None: standalone).
    active: Callable[[], bool] | None = None
    # When each service decides next: on its own fixed grid (see first_due, next_due).
    due_at: dict[ServiceKey, float] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    async def run_forever(self, stopped: asyncio.Event) -> None:
        while not stopped.is_set():
            started = time.monotonic()
            try:
                if self.active is None or await asyncio.to_thread(self.active):
                    await self.tick(time.time())
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad tick
                log.exception("autoscaler tick failed; retrying next tick")
            elapsed = time.monotonic() - started
            self.metrics.loop_seconds.observe(elapsed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), max(0.1, self.settings.tick_s - elapsed))

    async def tick(self, now: float) -> list[tuple[ServiceKey, TickOutcome]]:
        services = await asyncio.to_thread(self.kube.list_inference_services)
        self._forget_deleted(services)
        due = [s for s in services if self._due(s, now)]
        for service in due:
            key = _key(service)
            self.due_at[key] = next_due(self.due_at[key], self.parsed[key].interval_s, now)
        if not due:
            return []
        inputs = await self._fetch(due, now)
        decided = []
        for service in due:
            try:
                outcome, metrics = self._decide(service, inputs, now)
                decided.append((service, outcome, metrics))
            except Exception:  # noqa: BLE001 - one bad object never stops the others
                log.exception("autoscaling %s failed this tick", _key(service))
        return await self._act_all(decided, now)

    async def _fetch(self, due: list[dict[str, Any]], now: float) -> TickInputs:
        """The tick's I/O: one batch of queries per distinct rate window (services share the
        usual few), the workloads, and the capacity profiles the due services reference."""
        by_window: dict[float, Fetched] = {}
        for window_s in sorted({self.parsed[_key(s)].window_s for s in due}):
            by_window[window_s] = await self.source.fetch_async(now, window_s)
            if by_window[window_s].error is not None:
                self.metrics.query_errors.inc()
        cluster = await asyncio.to_thread(self.kube.snapshot_workloads, SERVICE_LABEL)
        refs = set()
        for service in due:
            spec = self.parsed[_key(service)].spec
            if spec is not None and spec.capacityConfigMapRef is not None:
                refs.add((_key(service).namespace, *spec.capacityConfigMapRef))
        profiles = await asyncio.to_thread(self._read_profiles, refs)
        return TickInputs(by_window, cluster, profiles)

    def _read_profiles(
        self, refs: set[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], str | None]:
        """Each referenced profile's text (None: no such ConfigMap or key), cached a minute."""
        found = {}
        for ref in refs:
            cached = self.profiles.get(ref)
            if cached is None or self.clock() - cached[0] >= PROFILE_CACHE_S:
                namespace, name, key = ref
                data = self.kube.config_map(namespace, name)
                cached = (self.clock(), None if data is None else data.get(key))
                self.profiles[ref] = cached
            found[ref] = cached[1]
        return found

    async def _act_all(self, decided: list[tuple[dict[str, Any], TickOutcome, ServiceMetrics]],
                       now: float) -> list[tuple[ServiceKey, TickOutcome]]:
        """The writes, a few at a time: each waits on the API server, not on the CPU."""
        limit = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def act(service: dict[str, Any], outcome: TickOutcome,
                      metrics: ServiceMetrics) -> tuple[ServiceKey, TickOutcome] | None:
            async with limit:
                try:
                    await asyncio.to_thread(self._act, service, outcome, metrics, now)
                except Exception:  # noqa: BLE001 - one bad object never stops the others
                    log.exception("autoscaling %s failed this tick", _key(service))
                    return None
            return _key(service), outcome

        done = await asyncio.gather(*(act(*item) for item in decided))
        return [result for result in done if result is not None]

    # -- pure steps ------------------------------------------------------------------------
    def _due(self, service: dict[str, Any], now: float) -> bool:
        if not (service.get("spec", {}).get("autoscaling") or {}).get("enabled"):
            return False
        key = _key(service)
        meta = service["metadata"]
        version = (meta.get("uid", ""), meta.get("generation"))
        parsed = self.parsed.get(key)
        if parsed is None or parsed.version != version:
            parsed = self.parsed[key] = parse(service, version, self.settings.tick_s)
        if key not in self.due_at:
            self.due_at[key] = first_due(key, parsed.interval_s, self.settings.tick_s, now)
        return now >= self.due_at[key] - 0.5

    def _memory(self, key: ServiceKey, spec: AutoscalingSpec) -> ServiceMemory:
        memory = self.memory.get(key)
        if memory is None or memory.policy_name != spec.policy:
            memory = ServiceMemory(spec.policy, make_policy(spec.policy, spec))
            self.memory[key] = memory
        return memory

    def _forget_deleted(self, services: list[dict[str, Any]]) -> None:
        alive = {_key(s) for s in services}
        for key in [k for k in self.memory if k not in alive]:
            del self.memory[key]
            self.metrics.forget(key)
        for known in (self.due_at, self.parsed):
            for key in [k for k in known if k not in alive]:
                del known[key]

    def _decide(
        self, service: dict[str, Any], inputs: TickInputs, now: float
    ) -> tuple[TickOutcome, ServiceMetrics]:
        """One service's decision from what the fetch phase read: no I/O here."""
        key = _key(service)
        parsed = self.parsed[key]
        cluster = inputs.cluster
        deployment = cluster["deployments"].get(key)
        current = int((deployment or {}).get("spec", {}).get("replicas", 0) or 0)
        try:
            if parsed.spec is None:
                raise ValueError(parsed.error or "invalid spec.autoscaling")
            spec = self._with_profile(key, parsed.spec, inputs.profiles)
            memory = self._memory(key, spec)
        except ValueError as err:  # e.g. a baseline policy without the capacity it needs
            return invalid_config(current, str(err)), ServiceMetrics(None, "NotRead", "")
        pods = census(current, cluster["pods"].get(key, []))
        competitor = competing_autoscaler(
            key.name,
            cluster["hpas"].get(key.namespace, []),
            cluster["scaled_objects"].get(key.namespace, []),
        )
        fetched = inputs.by_window[parsed.window_s]
        metrics = fetched.for_service(key, spec.objective.latency, self.settings.stale_after_s)
        if pods.state.pending > 0:
            memory.unschedulable = (now, pods.unschedulable_message or "pods were Pending")
        note = None
        if memory.unschedulable and now - memory.unschedulable[0] < UNSCHEDULABLE_MEMORY_S:
            note = f"{memory.unschedulable[1]} (seen {now - memory.unschedulable[0]:.0f}s ago)"
        outcome = decide_tick(memory.policy, spec, spec.mode, metrics, pods, competitor, now,
                              note)
        latency = metrics.snapshot.latency_ms if metrics.snapshot else None
        self.metrics.record(key, outcome, latency, spec.objective.targetMs, pods.state.ready)
        if deployment is None:  # the controller has not created it yet: nothing to scale
            outcome = TickOutcome(current, current, "no Deployment yet", False, outcome.conditions)
        return outcome, metrics

    @staticmethod
    def _with_profile(key: ServiceKey, spec: AutoscalingSpec,
                      profiles: dict[tuple[str, str, str], str | None]) -> AutoscalingSpec:
        """Capacity and latency curve from a referenced ConfigMap; a missing or bad one only
        loses the seed."""
        if spec.capacityConfigMapRef is None:
            return spec
        name, _ = spec.capacityConfigMapRef
        text = profiles.get((key.namespace, *spec.capacityConfigMapRef))
        capacity, curve = None, None
        if text is None:
            log.warning("%s: capacity profile ConfigMap %s not found", key, name)
        else:
            try:
                capacity, curve = read_capacity_profile(
                    text, spec.objective.percentile, f"ConfigMap {key.namespace}/{name}")
            except ValueError as err:
                log.warning("%s: capacity profile in ConfigMap %s: %s", key, name, err)
        return dataclasses.replace(spec, capacityRpsPerReplica=capacity, latencyCurve=curve)

    # -- writes ---------------------------------------------------------------------------
    def _act(
        self, service: dict[str, Any], outcome: TickOutcome, metrics: ServiceMetrics, now: float
    ) -> None:
        key = _key(service)
        if outcome.changes_scale:
            self.kube.scale(key.namespace, key.name, outcome.desired_replicas)
            self.kube.event(
                service,
                "Scaled",
                f"replicas {outcome.current_replicas} -> {outcome.desired_replicas}: "
                f"{outcome.reason}",
            )
        # Judged against what we last wrote, not the watched copy: in a burst of creations the
        # watch lagged a decision behind, each decision looked new, and the same status was
        # written again (about 3 writes per service of an unchanged desiredReplicas), and the
        # history of decisions would have been rebuilt from a stale one. The write itself
        # starts from the watched copy: it merges our last write in again, and a copy that
        # already carries it would read as a caught-up watch and drop that write's answer.
        judged = self.kube.newest(service)
        autoscaling = autoscaling_status(judged, outcome, metrics, now)
        cause = write_cause(judged, autoscaling, outcome, now)
        if cause is not None:
            self.kube.write_status(service, autoscaling, outcome, now)
            self.metrics.status_writes.labels(cause).inc()


def first_due(key: ServiceKey, interval_s: float, tick_s: float, now: float) -> float:
    """When a service seen for the first time decides: within one interval, by its name.

    Services created together (a GitOps sync, an operator restart) would otherwise decide,
    and write their status, in the same tick every interval; spread by a hash of the name,
    each tick carries about tick/interval of them.
    """
    slots = max(1, int(interval_s // tick_s))
    return now + (zlib.crc32(f"{key.namespace}/{key.name}".encode()) % slots) * tick_s


def next_due(due_at: float, interval_s: float, now: float) -> float:
    """The next decision one interval after the scheduled one, not after the tick that ran it.

    Anchored so that a slow tick (the next starts late or at once) shifts no service into
    another's slot: measured from the decision time, one slow tick pushed every service due
    then into the same later tick, and within minutes all 1,000 decided together.
    """
    following = due_at + interval_s
    return following if following > now else now + interval_s


def _key(service: dict[str, Any]) -> ServiceKey:
    meta = service["metadata"]
    return ServiceKey(meta["namespace"], meta["name"])
