"""An emulated service: its Ready pods as replicas, the load spread over them (pure, clock in)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from sloscale.emulator.replica import SUMMARY_WINDOW_S, EmulatedReplica
from sloscale.sim.service import ServiceModel


@dataclass
class Ledger:
    """Ground truth the demo reports: every request's fate."""

    arrived: int = 0
    rejected: int = 0  # queue full, or no Ready pod to take it
    finished_at_s: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)


@dataclass
class EmulatedService:
    model: ServiceModel
    seed: int = 0
    summary_window_s: float = SUMMARY_WINDOW_S
    replicas: dict[str, EmulatedReplica] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def set_ready_pods(self, names: Iterable[str]) -> None:
        """Pods that turned Ready join with empty queues; pods gone take their queue along
        (their requests count as rejected, as clients of a killed pod see errors)."""
        wanted = set(names)
        for gone in [n for n in self.replicas if n not in wanted]:
            replica = self.replicas.pop(gone)
            self.ledger.rejected += len(replica.queue) + sum(
                len(b) for _, _, b in replica.in_flight
            )
        for name in sorted(wanted - set(self.replicas)):
            self.replicas[name] = EmulatedReplica(self.model, self.summary_window_s)

    def step(self, arrivals_s: np.ndarray, now: float) -> None:
        """Route `arrivals_s` (all <= now, sorted) to random Ready pods, then run to `now`."""
        names = sorted(self.replicas)
        self.ledger.arrived += len(arrivals_s)
        if not names:
            self.ledger.rejected += len(arrivals_s)
            return
        picks = self._rng.integers(0, len(names), size=len(arrivals_s))
        for arrival, pick in zip(arrivals_s, picks, strict=True):
            if not self.replicas[names[pick]].offer(float(arrival)):
                self.ledger.rejected += 1
        for replica in self.replicas.values():
            latencies = replica.advance(now)
            self.ledger.latency_ms += latencies
            self.ledger.finished_at_s += [now] * len(latencies)

    @property
    def waiting(self) -> int:
        return sum(
            len(r.queue) + sum(len(b) for _, _, b in r.in_flight) for r in self.replicas.values()
        )
