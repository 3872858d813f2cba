"""The oracle: a clairvoyant, cold-start-aware pod schedule that meets the objective in every
window, certified by replaying it through the same simulator.

1. Need: window by window, in time order and carrying the pods' queues over, the fewest Ready
   pods per bucket that keep the window's percentile within the target (first one count for
   the whole window, by bisection, then each bucket lowered as far as the window allows). The
   search runs the same batchers and balancer as the simulator, so the objective's allowance
   (a p95 lets 5 % be slow) is used wherever it saves pods.
2. Cover: the cheapest schedule of pods giving that need, a cold start ahead (`schedule`: each
   layer of the need keeps its pod through a gap shorter than the cold start and restarts it a
   cold start ahead otherwise).
3. Certify: the schedule is replayed by the simulator; a window that misses (the replay's pods
   differ from the search's: bridged pods, other routing draws) gets one more pod in each of its
   buckets, and the replay repeats until every window is met.
The oracle is a feasible schedule, not a proof of optimality: sim/bound.py gives the bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, ReplicaState, Snapshot
from sloscale.sim import batcher
from sloscale.sim.batcher import PodQueues
from sloscale.sim.engine import RunResult, SimConfig, simulate
from sloscale.sim.objective import MISSED_MS, meets, window_verdicts
from sloscale.sim.service import ServiceModel

BUCKET_S = 10.0
MAX_ROUNDS = 30


@dataclass(frozen=True)
class OracleSchedule:
    bucket_s: float
    alive: np.ndarray  # pods scheduled (starting or Ready) in each bucket
    replica_seconds: float


@dataclass
class Oracle:
    plan: OracleSchedule
    run: RunResult  # the certifying replay
    rounds: int  # replays it took


def _layer_alive(mask: np.ndarray, cold_buckets: int) -> np.ndarray:
    """One layer: when its pod must exist, start-up included (pods needed at 0 are warm)."""
    alive = mask.copy()
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    for k, first in enumerate(starts.tolist()):
        gap_start = int(ends[k - 1]) if k else None
        if gap_start is not None and first - gap_start <= cold_buckets:
            alive[gap_start:first] = True  # bridging is cheaper than a restart
        else:
            alive[max(0, first - cold_buckets):first] = True  # scheduled a cold start ahead
    return alive


def schedule(needed: np.ndarray, bucket_s: float, cold_start_s: float) -> OracleSchedule:
    """The minimum-cost schedule of pods covering `needed`, honouring the cold start."""
    cold_buckets = int(math.ceil(cold_start_s / bucket_s))
    alive = np.zeros(len(needed), dtype=np.int64)
    for level in range(1, int(needed.max(initial=0)) + 1):
        alive += _layer_alive(needed >= level, cold_buckets)
    return OracleSchedule(bucket_s, alive, float(alive.sum()) * bucket_s)


class NeedSearch:
    """Replays one window at a time through per-pod batchers with chosen Ready counts."""

    def __init__(self, arrivals_s: np.ndarray, spec: AutoscalingSpec, service: ServiceModel,
                 seed: int, bucket_s: float) -> None:
        self.arrivals_s = np.ascontiguousarray(arrivals_s, dtype=np.float64)
        self.spec, self.service, self.bucket_s = spec, service, bucket_s
        self.queues = PodQueues(len(arrivals_s), spec.maxReplicas)
        self.draws = np.random.default_rng([seed, 1]).random((len(arrivals_s), 2))
        self.rejected = np.zeros(len(arrivals_s), dtype=np.bool_)
        self.pods = np.arange(spec.maxReplicas, dtype=np.int64)
        self.always_ready = np.full(spec.maxReplicas, -np.inf)
        self.batch = service.batcher_args(arrivals_s, seed)

    def _run(self, first_bucket: int, counts: list[int], until: float) -> None:
        for offset, count in enumerate(counts):
            lo_s = (first_bucket + offset) * self.bucket_s
            first, last = np.searchsorted(self.arrivals_s, [lo_s, lo_s + self.bucket_s])
            self.rejected[first:last] = False
            batcher.route(int(first), int(last), self.arrivals_s, self.draws,
                          self.pods[:count], self.always_ready[:count], batcher.ROUTE_RANDOM,
                          self.service.max_queue_size or 0, *self.batch,
                          *self.queues.pod_arrays(), *self.queues.request_arrays(),
                          *self.queues.routing_arrays(), self.rejected)
            end_s = until if offset == len(counts) - 1 else lo_s + self.bucket_s
            batcher.advance_all(len(self.pods), end_s, self.arrivals_s, *self.batch,
                                *self.queues.pod_arrays(), *self.queues.request_arrays())

    def window(self, first_bucket: int, n_buckets: int, lowest: int) -> list[int]:
        """The Ready counts for one window's buckets; the queues move on to its end."""
        start_s = first_bucket * self.bucket_s
        first, last = np.searchsorted(self.arrivals_s,
                                      [start_s, start_s + n_buckets * self.bucket_s])
        saved = self.queues.snapshot()

        def ok(counts: list[int]) -> bool:
            self.queues.restore(saved)
            self._run(first_bucket, counts, np.inf)
            latency = (self.queues.finish_s[first:last] - self.arrivals_s[first:last]) * 1000.0
            latency[self.rejected[first:last]] = MISSED_MS
            return meets(latency, self.spec.objective)

        top = self.spec.maxReplicas
        uniform = _smallest(lowest, top, lambda n: ok([n] * n_buckets))
        counts = [uniform] * n_buckets
        if last > first and uniform > lowest:
            for j in range(n_buckets):
                counts[j] = _smallest(lowest, counts[j],
                                      lambda n, j=j: ok(counts[:j] + [n] + counts[j + 1:]))
        self.queues.restore(saved)
        self._run(first_bucket, counts, start_s + n_buckets * self.bucket_s)
        return counts


def _smallest(low: int, high: int, good: Callable[[int], bool]) -> int:
    """The smallest n in [low, high] with good(n), assuming good is monotone; high if none."""
    while low < high:
        middle = (low + high) // 2
        if good(middle):
            high = middle
        else:
            low = middle + 1
    return high


def search_need(arrivals_s: np.ndarray, duration_s: float, spec: AutoscalingSpec,
                service: ServiceModel, seed: int, bucket_s: float = BUCKET_S) -> np.ndarray:
    """Ready pods needed in each bucket (step 1 of the module's docstring)."""
    window_s = spec.objective.window
    per_window = max(1, int(round(window_s / bucket_s)))
    n_buckets = int(math.ceil(duration_s / bucket_s)) + 1
    n_buckets += -n_buckets % per_window
    lowest = max(spec.minReplicas, 1)
    search = NeedSearch(arrivals_s, spec, service, seed, bucket_s)
    need = np.empty(n_buckets, dtype=np.int64)
    for first in range(0, n_buckets, per_window):
        need[first:first + per_window] = search.window(first, per_window, lowest)
    return need


def initial_ready(need: np.ndarray, bucket_s: float, cold_start_s: float) -> int:
    """Pods Ready at time 0: what the need asks for before a cold start could complete."""
    return int(need[:int(math.ceil(cold_start_s / bucket_s)) + 1].max(initial=0))


def certify(arrivals_s: np.ndarray, need: np.ndarray, spec: AutoscalingSpec,
            service: ServiceModel, config: SimConfig, bucket_s: float = BUCKET_S) -> Oracle:
    """Cover `need`, replay, add a pod to each bucket of every missed window, repeat."""
    need = need.copy()
    per_window = max(1, int(round(spec.objective.window / bucket_s)))
    for rounds in range(1, MAX_ROUNDS + 1):
        plan = schedule(need, bucket_s, config.cold_start.seconds)
        start = replace(config, initial_replicas=int(plan.alive[0]))
        run = simulate(arrivals_s, OracleDriver(plan), spec, service, start)
        missed = np.flatnonzero(~window_verdicts(run, spec))
        if len(missed) == 0 or rounds == MAX_ROUNDS:
            return Oracle(plan, run, rounds)
        for window in missed.tolist():
            lo = window * per_window
            need[lo:lo + per_window] = np.minimum(need[lo:lo + per_window] + 1, spec.maxReplicas)
    raise AssertionError("unreachable")


@dataclass
class OracleDriver:
    """Replays the oracle's schedule through the simulator (same interface as a policy)."""

    plan: OracleSchedule
    name: str = "oracle"
    metrics_window_s: float | None = None
    interval_s: float | None = None

    def __post_init__(self) -> None:
        self.interval_s = self.plan.bucket_s

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        index = min(int(round(now / self.plan.bucket_s)), len(self.plan.alive) - 1)
        return Decision(int(self.plan.alive[index]), "oracle schedule")
