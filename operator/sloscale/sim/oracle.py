"""The offline oracle: the cheapest pod schedule that carries the whole trace at the objective.

Knowing every arrival, the oracle needs ceil(rate / capacity_at_target) replicas in each bucket.
It pays for a pod from the moment it is scheduled (cold start included), so it decomposes the
need into layers (the h-th pod is needed wherever need >= h) and, in each layer, keeps a pod
through a gap shorter than the cold start (restarting would cost more) and stops it otherwise.
With interchangeable pods and a fixed start-up cost, this is the minimum: the lower bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, ReplicaState, Snapshot


@dataclass(frozen=True)
class OracleSchedule:
    bucket_s: float
    needed: np.ndarray  # replicas needed Ready in each bucket
    alive: np.ndarray  # pods scheduled (starting or Ready) in each bucket
    replica_seconds: float


def needed_replicas(arrivals_s: np.ndarray, duration_s: float, bucket_s: float,
                    capacity_rps: float, min_replicas: int) -> np.ndarray:
    """Ready replicas each bucket needs: its mean arrival rate over the capacity at target."""
    n_buckets = int(math.ceil(duration_s / bucket_s)) + 1
    counts = np.bincount((arrivals_s / bucket_s).astype(np.int64), minlength=n_buckets)
    need = np.ceil(counts / bucket_s / capacity_rps - 1e-9).astype(np.int64)
    return np.maximum(need, min_replicas)


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
    return OracleSchedule(bucket_s, needed, alive, float(alive.sum()) * bucket_s)


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
