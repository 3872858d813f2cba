"""The simulator: replay arrivals through replicas (fluid FIFO per tick) under a policy.

Time advances in ticks; within a tick the service is a fluid FIFO queue that dispatches up to
ready * max_rps * tick requests (dynamic batching reaches full batches under backlog). Between
two events (scrape, decision) the queue path is one vectorised Lindley recursion; each request's
completion time comes from the cumulative departures (searchsorted), so no per-request Python
runs. Latency = queueing + batching wait + batch service time at that tick's batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, ReplicaState, Snapshot
from sloscale.sim.cluster import ColdStart, Pods
from sloscale.sim.metrics import Scraper
from sloscale.sim.service import ServiceModel

SMOOTHING_S = 1.0


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
    tick_s: float = 0.1
    scrape_interval_s: float = 5.0
    gpu_budget: int | None = None
    drain_s: float = 120.0  # after the last arrival, so queued requests can finish
    initial_replicas: int = 0  # Ready at time 0 (at least minReplicas): a service already up
    seed: int = 0


@dataclass
class RunResult:
    name: str
    arrivals_s: np.ndarray
    admitted_s: np.ndarray  # arrival times of admitted requests, in FIFO order
    latency_ms: np.ndarray  # per admitted request; inf if it never finished
    queue_ms: np.ndarray  # the queueing part of latency_ms
    rejected_s: np.ndarray
    timeline_s: np.ndarray  # at each decision
    ready: np.ndarray
    replicas: np.ndarray  # asked for (ready + starting + pending)
    replica_seconds: float  # of scheduled pods (starting or ready): what the GPUs cost
    scaling_actions: int


def advance(
    queue: float, arrivals: np.ndarray, ready: np.ndarray, service: ServiceModel, tick_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Queue length after each tick and requests rejected per tick (bounded FIFO)."""
    capacity = ready * (service.max_rps * tick_s)
    bound = ready * float(service.queue_per_replica)
    walk = np.cumsum(arrivals - capacity)
    path = walk - np.minimum.accumulate(np.minimum(walk, -queue))
    if not (path > bound + 1e-9).any():
        return np.maximum(path, 0.0), np.zeros(len(arrivals), dtype=np.int64)
    path = np.empty(len(arrivals))
    rejected = np.zeros(len(arrivals), dtype=np.int64)
    for i in range(len(arrivals)):  # overload only: the bound makes the recursion non-linear
        over = queue + arrivals[i] - capacity[i] - bound[i]
        rejected[i] = min(int(arrivals[i]), max(0, math.ceil(over - 1e-9)))
        queue = max(0.0, queue + arrivals[i] - rejected[i] - capacity[i])
        path[i] = queue
    return path, rejected


@dataclass
class _Run:
    """The simulator's running totals and per-request arrays for one policy."""

    arrivals_s: np.ndarray
    first_of_tick: np.ndarray
    latency_ms: np.ndarray
    queue_ms: np.ndarray
    admitted_s: np.ndarray
    recent_rate: np.ndarray  # per-replica dispatch rate of the last SMOOTHING_S of ticks
    rejected_s: list[np.ndarray] = field(default_factory=list)
    queue: float = 0.0
    departed: float = 0.0
    admitted: int = 0
    completed: int = 0
    rejected: int = 0

    def admit(self, start: int, end: int, rejected: np.ndarray) -> None:
        lo, hi = self.first_of_tick[start], self.first_of_tick[end]
        if rejected.any():
            keep = np.ones(hi - lo, dtype=bool)
            for offset in np.flatnonzero(rejected):
                tick_end = self.first_of_tick[start + offset + 1] - lo
                keep[tick_end - rejected[offset]:tick_end] = False
            chunk = self.arrivals_s[lo:hi]
            self.rejected_s.append(chunk[~keep])
            arrived = chunk[keep]
            self.rejected += int(rejected.sum())
        else:
            arrived = self.arrivals_s[lo:hi]
        self.admitted_s[self.admitted:self.admitted + len(arrived)] = arrived
        self.admitted += len(arrived)

    def complete(self, start: int, cumulative: np.ndarray, departures: np.ndarray,
                 service_ms: np.ndarray, tick_s: float) -> None:
        """Give each request that finished in these ticks its completion time and latency."""
        last = min(self.admitted, int(math.floor(cumulative[-1] + 1e-6)))
        if last <= self.completed:
            return
        index = np.arange(self.completed, last)
        tick = np.minimum(np.searchsorted(cumulative, index + 1 - 1e-6), len(cumulative) - 1)
        before = np.concatenate(([self.departed], cumulative[:-1]))[tick]
        # A request leaves when the fluid reaches its start (arrival order), never before it came.
        share = np.clip((index - before) / np.maximum(departures[tick], 1e-12), 0.0, 1.0)
        finished = np.maximum((start + tick + share) * tick_s, self.admitted_s[index])
        waited_ms = (finished - self.admitted_s[index]) * 1000.0
        self.queue_ms[index] = waited_ms
        self.latency_ms[index] = waited_ms + service_ms[tick]
        self.completed = last


def _smoothed_rate(run: _Run, departures: np.ndarray, ready: np.ndarray, tick_s: float
                   ) -> np.ndarray:
    """Dispatch rate per ready replica over the last SMOOTHING_S: batch sizes follow the load
    of the last few batches, not one tick's Poisson noise (which would tie results to tick_s)."""
    per_replica = departures / (tick_s * np.maximum(ready, 1))
    history = np.concatenate((run.recent_rate, per_replica))
    width = len(run.recent_rate)
    if width == 0:
        return per_replica
    sums = np.cumsum(np.concatenate(([0.0], history)))
    smoothed = (sums[width + 1:] - sums[1:len(per_replica) + 1]) / width
    run.recent_rate = history[-width:]
    return smoothed


def simulate(
    arrivals_s: np.ndarray, driver: Driver, spec: AutoscalingSpec, service: ServiceModel,
    config: SimConfig,
) -> RunResult:
    """Replay `arrivals_s` (sorted seconds) through the service under `driver`."""
    tick_s = config.tick_s
    end_s = (float(arrivals_s[-1]) if len(arrivals_s) else 0.0) + config.drain_s
    n_ticks = int(math.ceil(end_s / tick_s)) + 1
    per_tick = np.bincount((arrivals_s / tick_s).astype(np.int64), minlength=n_ticks)
    per_tick = per_tick.astype(np.float64)
    run = _Run(arrivals_s, np.concatenate(([0], np.cumsum(per_tick))).astype(np.int64),
               np.full(len(arrivals_s), np.inf), np.full(len(arrivals_s), np.inf),
               np.empty(len(arrivals_s)), np.zeros(max(1, round(SMOOTHING_S / tick_s))))
    scraper = Scraper(run.latency_ms, run.queue_ms)
    rng = np.random.default_rng(config.seed)
    pods = Pods.warm(spec.clamp(max(spec.minReplicas, config.initial_replicas)),
                     config.cold_start, rng, config.gpu_budget)
    scrape_every = max(1, round(config.scrape_interval_s / tick_s))
    decide_every = max(1, round((driver.interval_s or spec.interval) / tick_s))
    bounds = np.union1d(np.arange(0, n_ticks, scrape_every), np.arange(0, n_ticks, decide_every))
    bounds = np.append(bounds, n_ticks)
    window_s = driver.metrics_window_s or spec.objective.window
    timeline: list[tuple[float, int, int]] = []
    replica_seconds, actions = 0.0, 0
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        now = start * tick_s
        if start % scrape_every == 0:
            scraper.record(now, run.completed, run.rejected, run.queue)
        if start % decide_every == 0:
            replicas = pods.state(now)
            snapshot = scraper.snapshot(now, window_s, spec.objective.percentile)
            desired = spec.clamp(driver.decide(snapshot, replicas, spec, now).desired_replicas)
            if desired != replicas.current:
                actions += 1
                pods.scale_to(desired, now)
            timeline.append((now, replicas.ready, desired))
        replica_seconds += pods.scheduled * (end - start) * tick_s
        _step(run, pods, per_tick, start, end, service, tick_s)
    return RunResult(
        driver.name, arrivals_s, run.admitted_s[:run.admitted], run.latency_ms[:run.admitted],
        run.queue_ms[:run.admitted],
        np.concatenate(run.rejected_s) if run.rejected_s else np.empty(0),
        np.array([t for t, _, _ in timeline]), np.array([r for _, r, _ in timeline]),
        np.array([d for _, _, d in timeline]), replica_seconds, actions,
    )


def _step(run: _Run, pods: Pods, per_tick: np.ndarray, start: int, end: int,
          service: ServiceModel, tick_s: float) -> None:
    now = start * tick_s
    tick_starts = np.arange(start, end) * tick_s
    ready = pods.state(now).ready + np.searchsorted(
        pods.ready_times_after(now), tick_starts, side="right")
    arrivals = per_tick[start:end]
    path, rejected = advance(run.queue, arrivals, ready.astype(np.float64), service, tick_s)
    previous = np.concatenate(([run.queue], path[:-1]))
    departures = np.maximum(previous + arrivals - rejected - path, 0.0)
    cumulative = run.departed + np.cumsum(departures)
    run.admit(start, end, rejected)
    rate = _smoothed_rate(run, departures, ready, tick_s)
    run.complete(start, cumulative, departures, service.latency_ms(rate), tick_s)
    run.queue, run.departed = float(path[-1]), float(cumulative[-1])
