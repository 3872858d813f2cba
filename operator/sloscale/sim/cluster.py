"""A service's pods: cold starts, a GPU budget (extra pods stay Pending), scale-down order.

Pods are numbered as they are scheduled, so that each keeps its own queue in the simulator;
a deleted pod leaves the Service at once and finishes what it has queued (graceful
termination), which the simulator charges until its queue is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sloscale.autoscale.policies.base import ReplicaState


@dataclass
class ColdStart:
    """Seconds from scheduling to Ready: fixed, or uniform within +- jitter_s."""

    seconds: float
    jitter_s: float = 0.0

    def draw(self, rng: np.random.Generator) -> float:
        if self.jitter_s <= 0:
            return self.seconds
        return max(0.0, float(rng.uniform(self.seconds - self.jitter_s,
                                          self.seconds + self.jitter_s)))


@dataclass
class Pods:
    """Scheduled pods (id -> when it is, or will be, Ready), plus a count of Pending ones."""

    cold_start: ColdStart
    rng: np.random.Generator
    gpu_budget: int | None = None
    ready_at: dict[int, float] = field(default_factory=dict)
    cold_start_s: dict[int, float] = field(default_factory=dict)  # of pods scheduled, not warm
    pending: int = 0
    created: int = 0  # ids handed out so far

    @classmethod
    def warm(cls, count: int, cold_start: ColdStart, rng: np.random.Generator,
             gpu_budget: int | None = None) -> Pods:
        """`count` pods already Ready at time 0 (a service that has been running)."""
        pods = cls(cold_start, rng, gpu_budget)
        pods.scale_to(count, now=0.0, instant=True)
        return pods

    @property
    def scheduled(self) -> int:
        return len(self.ready_at)

    def state(self, now: float) -> ReplicaState:
        ready = sum(1 for t in self.ready_at.values() if t <= now)
        return ReplicaState(self.scheduled + self.pending, ready, self.scheduled - ready,
                            self.pending, self._cold_start_p90(now))

    def _cold_start_p90(self, now: float) -> float | None:
        """What the loop measures: p90 of scheduled -> Ready over the scheduled pods that are
        Ready (pods Ready from the start have no cold start to tell)."""
        seen = [s for pod, s in self.cold_start_s.items()
                if pod in self.ready_at and self.ready_at[pod] <= now]
        return float(np.percentile(seen, 90)) if seen else None

    def scale_to(self, desired: int, now: float, instant: bool = False) -> list[int]:
        """Create or delete pods; deletion takes Pending, then the newest (least ready) first.
        Returns the ids of the pods deleted."""
        missing = desired - self.scheduled - self.pending
        deleted: list[int] = []
        if missing > 0:
            self.pending += missing
        elif missing < 0:
            excess = -missing
            from_pending = min(excess, self.pending)
            self.pending -= from_pending
            excess -= from_pending
            if excess:
                newest = sorted(self.ready_at, key=lambda pod: (self.ready_at[pod], pod))
                deleted = newest[len(newest) - excess:]
                for pod in deleted:
                    del self.ready_at[pod]
                    self.cold_start_s.pop(pod, None)
        self._schedule(now, instant)
        return deleted

    def _schedule(self, now: float, instant: bool) -> None:
        while self.pending and (self.gpu_budget is None or self.scheduled < self.gpu_budget):
            self.pending -= 1
            if instant:
                self.ready_at[self.created] = now
            else:
                self.cold_start_s[self.created] = self.cold_start.draw(self.rng)
                self.ready_at[self.created] = now + self.cold_start_s[self.created]
            self.created += 1

    def by_ready_time(self) -> tuple[np.ndarray, np.ndarray]:
        """Scheduled pods' ids and Ready times, earliest Ready first (the Service's view)."""
        ids = np.fromiter(self.ready_at, dtype=np.int64, count=len(self.ready_at))
        times = np.fromiter(self.ready_at.values(), dtype=np.float64, count=len(self.ready_at))
        order = np.argsort(times, kind="stable")
        return ids[order], times[order]
