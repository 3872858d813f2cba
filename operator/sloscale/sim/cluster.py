"""A service's pods: cold starts, a GPU budget (extra pods stay Pending), scale-down order."""

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
    """Scheduled pods by the time they are (or will be) Ready, plus a count of Pending ones."""

    cold_start: ColdStart
    rng: np.random.Generator
    gpu_budget: int | None = None
    ready_at: list[float] = field(default_factory=list)
    pending: int = 0

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
        ready = sum(1 for t in self.ready_at if t <= now)
        return ReplicaState(self.scheduled + self.pending, ready, self.scheduled - ready,
                            self.pending)

    def scale_to(self, desired: int, now: float, instant: bool = False) -> None:
        """Create or delete pods; deletion takes Pending, then the newest (least ready) first."""
        missing = desired - self.scheduled - self.pending
        if missing > 0:
            self.pending += missing
        elif missing < 0:
            excess = -missing
            from_pending = min(excess, self.pending)
            self.pending -= from_pending
            excess -= from_pending
            if excess:
                self.ready_at.sort()
                del self.ready_at[len(self.ready_at) - excess:]
        self._schedule(now, instant)

    def _schedule(self, now: float, instant: bool) -> None:
        while self.pending and (self.gpu_budget is None or self.scheduled < self.gpu_budget):
            self.pending -= 1
            self.ready_at.append(now if instant else now + self.cold_start.draw(self.rng))

    def ready_times_after(self, now: float) -> np.ndarray:
        """Sorted times at which starting pods become Ready."""
        return np.sort(np.array([t for t in self.ready_at if t > now], dtype=np.float64))
