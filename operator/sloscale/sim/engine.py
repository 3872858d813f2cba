"""The simulator: replay arrivals through a service's pods under a policy.

Each pod is a Triton dynamic batcher with its own queue (sim/batcher.py); a Service-like
balancer sends each request to a pod that is Ready when it arrives (random per request by
default, as kube-proxy does per connection; or the less busy of two, as Envoy's least-request).
Time moves from one scrape or decision to the next: the requests of that span are routed, the
batches that start within it are dispatched, and a scrape sees the requests finished by then.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np

from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, ReplicaState, Snapshot
from sloscale.sim import batcher
from sloscale.sim.batcher import PodQueues
from sloscale.sim.cluster import ColdStart, Pods
from sloscale.sim.metrics import Scraper
from sloscale.sim.service import ServiceModel

Balancer = Literal["random", "least-requests"]
BALANCERS: dict[str, int] = {"random": batcher.ROUTE_RANDOM,
                             "least-requests": batcher.ROUTE_LEAST_REQUESTS}


class Driver(Protocol):
    """A policy (or the oracle's schedule): the same interface the operator calls."""

    name: str
    metrics_window_s: float | None
    interval_s: float | None

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision: ...


@dataclass(frozen=True)
class SimConfig:
    cold_start: ColdStart = field(default_factory=lambda: ColdStart(60.0))
    scrape_interval_s: float = 5.0
    gpu_budget: int | None = None
    drain_s: float = 120.0  # decisions go on this long after the last arrival
    initial_replicas: int = 0  # Ready at time 0 (at least minReplicas): a service already up
    seed: int = 0
    balancer: Balancer = "random"
    # What the operator's loop sees, opt-in (None/0: the simulator's own, ideal view).
    # A decision at t reads the scrapes up to t - metrics_lag_s (Prometheus' scrape, the
    # emulator's step, the loop's tick); rates over metrics_window_s (the operator bounds the
    # policy's window by the objective's); and the percentile as the operator's PromQL reads
    # it: the largest of each pod's own summary over pod_summary_window_s (Triton's per-pod
    # quantiles, max across pods), not the service's percentile.
    metrics_lag_s: float = 0.0
    metrics_window_s: float | None = None
    pod_summary_window_s: float | None = None

    def __post_init__(self) -> None:
        if self.balancer not in BALANCERS:
            raise ValueError(f"--balancer must be one of {', '.join(BALANCERS)}")
        if self.scrape_interval_s <= 0:
            raise ValueError(f"--scrape-interval-s must be > 0, got {self.scrape_interval_s}")


@dataclass
class RunResult:
    name: str
    arrivals_s: np.ndarray
    admitted_s: np.ndarray  # arrival times of admitted requests, sorted
    latency_ms: np.ndarray  # per admitted request (every one finishes: queues drain at the end)
    queue_ms: np.ndarray  # the part of latency_ms spent queued (batching delay included)
    rejected_s: np.ndarray
    timeline_s: np.ndarray  # at each decision
    ready: np.ndarray
    replicas: np.ndarray  # asked for (ready + starting + pending)
    replica_seconds: float  # of scheduled pods, and deleted ones until their queue is empty
    scaling_actions: int


class Fleet:
    """Pods and their batchers under one Service: routing, dispatch, cost of draining pods."""

    def __init__(self, arrivals_s: np.ndarray, service: ServiceModel, config: SimConfig,
                 pods: Pods) -> None:
        self.arrivals_s = arrivals_s
        self.service = service
        self.pods = pods
        self.queues = PodQueues(len(arrivals_s))
        draws = np.random.default_rng([config.seed, 1]).random((len(arrivals_s), 2))
        self.draws = draws  # the same per request for every policy (common random numbers)
        self.batch = service.batcher_args(arrivals_s, config.seed)  # likewise batch times
        self.mode = BALANCERS[config.balancer]
        self.rejected = np.zeros(len(arrivals_s), dtype=np.bool_)
        self.routed = 0  # requests sent so far (admitted or rejected)
        self.rejected_count = 0
        self.draining: dict[int, float] = {}  # deleted pod -> when it was deleted
        self.drain_seconds = 0.0

    def serve(self, first: int, last: int, until: float) -> None:
        """Route requests first..last-1, then dispatch every batch that starts by `until`."""
        self.queues.ensure_pods(self.pods.created)
        ids, ready_s = self.pods.by_ready_time()
        batch = self.batch
        if last > first:
            batcher.route(first, last, self.arrivals_s, self.draws, ids, ready_s, self.mode,
                          self.service.max_queue_size or 0, *batch,
                          *self.queues.pod_arrays(), *self.queues.request_arrays(),
                          *self.queues.routing_arrays(), self.rejected)
            self.routed = last
            self.rejected_count += int(self.rejected[first:last].sum())
        batcher.advance_all(self.pods.created, until, self.arrivals_s, *batch,
                            *self.queues.pod_arrays(), *self.queues.request_arrays())
        self._charge_drained()

    def delete(self, pod_ids: list[int], now: float) -> None:
        for pod in pod_ids:
            self.draining[pod] = now

    def _charge_drained(self) -> None:
        done = [pod for pod in self.draining if self.queues.queued[pod] == 0]
        for pod in done:
            self.drain_seconds += max(0.0, float(self.queues.free_s[pod]) - self.draining.pop(pod))

    def finish(self) -> None:
        """Every queued request is served (no more arrivals), draining pods charged."""
        self.serve(len(self.arrivals_s), len(self.arrivals_s), np.inf)


class Completions:
    """Feeds the scraper: requests whose batch has finished by each scrape, in that order."""

    def __init__(self, fleet: Fleet) -> None:
        n = len(fleet.arrivals_s)
        self.fleet = fleet
        self.latency_ms = np.full(n, np.inf)
        self.queue_ms = np.full(n, np.inf)
        self.finish_s = np.full(n, np.inf)  # in completion order, as latency_ms
        self.pod = np.full(n, -1, dtype=np.int64)
        self.count = 0
        self.seen = 0  # log entries taken so far
        self.carry = np.empty(0, dtype=np.int64)  # dispatched, finishing after the last scrape

    def collect(self, now: float) -> int:
        queues = self.fleet.queues
        log_len = int(queues.log_len[0])
        candidates = np.concatenate((self.carry, queues.log[self.seen:log_len]))
        self.seen = log_len
        finish = queues.finish_s[candidates]
        finished = finish <= now
        done = candidates[finished][np.argsort(finish[finished], kind="stable")]
        self.carry = candidates[~finished]
        arrivals = self.fleet.arrivals_s[done]
        end = self.count + len(done)
        self.latency_ms[self.count:end] = (queues.finish_s[done] - arrivals) * 1000.0
        self.queue_ms[self.count:end] = (queues.start_s[done] - arrivals) * 1000.0
        self.finish_s[self.count:end] = queues.finish_s[done]
        self.pod[self.count:end] = queues.pod_of[done]
        self.count = end
        return end

    def max_pod_percentile(self, now: float, window_s: float, percentile: float) -> float | None:
        """The largest per-pod percentile over requests finished in (now - window_s, now]."""
        lo = int(np.searchsorted(self.finish_s[:self.count], now - window_s, side="right"))
        hi = int(np.searchsorted(self.finish_s[:self.count], now, side="right"))
        if hi <= lo:
            return None
        pods, latency = self.pod[lo:hi], self.latency_ms[lo:hi]
        return max(float(np.percentile(latency[pods == pod], percentile))
                   for pod in np.unique(pods))


def _boundaries(end_s: float, scrape_s: float, decide_s: float) -> np.ndarray:
    scrapes = np.arange(0.0, end_s, scrape_s)
    decisions = np.arange(0.0, end_s, decide_s)
    return np.append(np.unique(np.round(np.concatenate((scrapes, decisions)), 9)), end_s)


def _on_grid(now: float, step_s: float) -> bool:
    return abs(now / step_s - round(now / step_s)) < 1e-6


def simulate(
    arrivals_s: np.ndarray, driver: Driver, spec: AutoscalingSpec, service: ServiceModel,
    config: SimConfig,
) -> RunResult:
    """Replay `arrivals_s` (sorted seconds) through the service under `driver`."""
    arrivals_s = np.ascontiguousarray(arrivals_s, dtype=np.float64)
    end_s = (float(arrivals_s[-1]) if len(arrivals_s) else 0.0) + config.drain_s
    rng = np.random.default_rng(config.seed)
    pods = Pods.warm(spec.clamp(max(spec.minReplicas, config.initial_replicas)),
                     config.cold_start, rng, config.gpu_budget)
    fleet = Fleet(arrivals_s, service, config, pods)
    completions = Completions(fleet)
    scraper = Scraper(completions.latency_ms, completions.queue_ms)
    decide_s = driver.interval_s or spec.interval
    window_s = config.metrics_window_s or driver.metrics_window_s or spec.objective.window
    bounds = _boundaries(end_s, config.scrape_interval_s, decide_s)
    first_arrival = np.searchsorted(arrivals_s, bounds, side="left")
    timeline: list[tuple[float, int, int]] = []
    replica_seconds, actions = 0.0, 0
    for k in range(len(bounds) - 1):
        now, until = float(bounds[k]), float(bounds[k + 1])
        if _on_grid(now, config.scrape_interval_s):
            completed = completions.collect(now)
            in_servers = fleet.routed - fleet.rejected_count - completed
            scraper.record(now, completed, fleet.rejected_count, in_servers)
        if _on_grid(now, decide_s):
            replicas = pods.state(now)
            snapshot = _observe(scraper, completions, now, window_s, spec, config)
            desired = spec.clamp(driver.decide(snapshot, replicas, spec, now).desired_replicas)
            if desired != replicas.current:
                actions += 1
                fleet.delete(pods.scale_to(desired, now), now)
            timeline.append((now, replicas.ready, desired))
        replica_seconds += pods.scheduled * (until - now)
        fleet.serve(int(first_arrival[k]), int(first_arrival[k + 1]), until)
    fleet.finish()
    return _result(driver.name, fleet, timeline, replica_seconds + fleet.drain_seconds, actions)


def _observe(scraper: Scraper, completions: Completions, now: float, window_s: float,
             spec: AutoscalingSpec, config: SimConfig) -> Snapshot:
    """The snapshot a decision at `now` reads (see SimConfig for the operator's view)."""
    snapshot = scraper.snapshot(now - config.metrics_lag_s, window_s, spec.objective.percentile)
    percentile = spec.objective.percentile
    if config.pod_summary_window_s is None or percentile is None or snapshot.rps is None:
        return snapshot
    tail = completions.max_pod_percentile(snapshot.time, config.pod_summary_window_s, percentile)
    return replace(snapshot, latency_ms=tail)


def _result(name: str, fleet: Fleet, timeline: list[tuple[float, int, int]],
            replica_seconds: float, actions: int) -> RunResult:
    queues, arrivals = fleet.queues, fleet.arrivals_s
    admitted = ~fleet.rejected
    latency_ms = (queues.finish_s[admitted] - arrivals[admitted]) * 1000.0
    queue_ms = (queues.start_s[admitted] - arrivals[admitted]) * 1000.0
    return RunResult(
        name, arrivals, arrivals[admitted], latency_ms, queue_ms, arrivals[fleet.rejected],
        np.array([t for t, _, _ in timeline]), np.array([r for _, r, _ in timeline]),
        np.array([d for _, _, d in timeline]), replica_seconds, actions,
    )
