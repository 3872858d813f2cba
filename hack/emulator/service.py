"""An emulated service: its Ready pods as replicas, the load spread over them (pure, clock in)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from hack.emulator.replica import SUMMARY_WINDOW_S, EmulatedReplica
from sloscale.sim.service import ServiceModel


@dataclass
class Ledger:
    """Ground truth the demo reports: every request's fate."""

    arrived: int = 0
    rejected: int = 0  # queue full, or no Ready pod to take it
    rejected_at_s: list[float] = field(default_factory=list)  # their arrival times
    arrival_s: list[float] = field(default_factory=list)  # per served request, as below
    finished_at_s: list[float] = field(default_factory=list)  # when its batch finished
    latency_ms: list[float] = field(default_factory=list)

    def reject(self, arrivals_s: Iterable[float]) -> None:
        arrivals = [float(t) for t in arrivals_s]
        self.rejected += len(arrivals)
        self.rejected_at_s += arrivals

    def served(self, done: list[tuple[float, float]]) -> None:
        for arrival, finish in done:
            self.arrival_s.append(arrival)
            self.finished_at_s.append(finish)
            self.latency_ms.append((finish - arrival) * 1000.0)


@dataclass
class EmulatedService:
    model: ServiceModel
    seed: int = 0
    summary_window_s: float = SUMMARY_WINDOW_S
    replicas: dict[str, EmulatedReplica] = field(default_factory=dict)
    # Pods deleted with work left: out of the Service, they finish their queue (graceful
    # termination), as the simulator's deleted pods do; their metrics are no longer scraped.
    draining: list[EmulatedReplica] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def set_ready_pods(self, names: Iterable[str]) -> None:
        """Pods that turned Ready join with empty queues; pods gone leave the balancer and
        drain what they hold."""
        wanted = set(names)
        for gone in [n for n in self.replicas if n not in wanted]:
            replica = self.replicas.pop(gone)
            if replica.waiting:
                self.draining.append(replica)
        for name in sorted(wanted - set(self.replicas)):
            self.replicas[name] = EmulatedReplica(self.model, self.summary_window_s,
                                                  rng=self._rng.spawn(1)[0])

    def step(self, arrivals_s: np.ndarray, now: float) -> None:
        """Route `arrivals_s` (all <= now, sorted) to random Ready pods, then run to `now`."""
        names = sorted(self.replicas)
        self.ledger.arrived += len(arrivals_s)
        if not names:
            self.ledger.reject(arrivals_s)
        else:
            picks = self._rng.integers(0, len(names), size=len(arrivals_s))
            for arrival, pick in zip(arrivals_s, picks, strict=True):
                if not self.replicas[names[pick]].offer(float(arrival)):
                    self.ledger.reject([arrival])
        for replica in [*self.replicas.values(), *self.draining]:
            self.ledger.served(replica.advance(now))
        self.draining = [replica for replica in self.draining if replica.waiting]

    @property
    def waiting(self) -> int:
        return sum(replica.waiting for replica in [*self.replicas.values(), *self.draining])
