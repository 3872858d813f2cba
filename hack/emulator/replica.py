"""One emulated Triton pod: a FIFO queue and a dynamic batcher, request by request (pure).

Service time per batch is base_ms + per_item_ms * size (the simulator's ServiceModel), times a
multiplier drawn from `rng` when the model has a batch_time_cv (ServiceModel.batch_scales; with
a batch_time_tau_ms, the replica's own slow-spell process read at each batch's oldest request,
as the simulator reads its service's: sim/service.py); an idle batcher waits up to
max_queue_delay_ms for a batch to fill; the next batch closes once close_at_fraction of the
running one has passed (at once for early_close_share of the batches, drawn from `rng`) and
starts when it ends (sim/batcher.py's rules); a full queue rejects. Time only moves when
`advance(now)` is called, so it runs in real time (the demo) or faster (tests).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from hack.emulator.exposition import PodCounters
from sloscale.sim.service import ServiceModel, ou_step

SUMMARY_WINDOW_S = 30.0  # Triton's summaries age out old observations; so do ours


@dataclass
class EmulatedReplica:
    model: ServiceModel
    summary_window_s: float = SUMMARY_WINDOW_S
    counters: PodCounters = field(default_factory=PodCounters)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    queue: deque[float] = field(default_factory=deque)  # arrival times, oldest first
    # The batch_time_tau_ms process: its last value (standard normal) and when it was read.
    spell: tuple[float, float] | None = None
    free_at: float = 0.0  # when the last batch dispatched finishes
    take_at: float = 0.0  # when the instance can take the next batch
    in_flight: list[tuple[float, float, list[float]]] = field(default_factory=list)
    # (finish time, latency ms, queue ms) of recent completions, for the summaries.
    recent: deque[tuple[float, float, float]] = field(default_factory=deque)

    def offer(self, arrival_s: float) -> bool:
        """A request arrives; False if the queue is full (Triton rejects it)."""
        if len(self.queue) >= (self.model.max_queue_size or float("inf")):
            self.counters.failure += 1
            return False
        self.queue.append(arrival_s)
        return True

    def advance(self, now: float) -> list[tuple[float, float]]:
        """Dispatch the batches that close by `now`; return (arrival s, finish s) of the
        requests completed by then.

        Callers offer every arrival up to `now` first, so a closing time <= now is final.
        """
        delay_s = self.model.max_queue_delay_ms / 1000.0
        size_cap = self.model.max_batch
        while self.queue:
            earliest = max(self.take_at, self.queue[0])
            full_at = self.queue[size_cap - 1] if len(self.queue) >= size_cap else float("inf")
            # An instance that can take a batch closes a full one at once, else when the
            # oldest has waited.
            closed = max(earliest, min(self.queue[0] + delay_s, full_at))
            if closed > now:
                break
            size = 0
            while size < size_cap and size < len(self.queue) and self.queue[size] <= closed:
                size += 1
            batch = [self.queue.popleft() for _ in range(size)]
            start = max(closed, self.free_at)
            scale = self._batch_scale(batch[0])
            service_s = self.model.batch_ms(size) / 1000.0 * scale
            self.free_at = start + service_s
            self.take_at = start + self._close_fraction() * service_s
            self.in_flight.append((self.free_at, start, batch))
            self.counters.executions += 1
        return self._complete(now)

    def _close_fraction(self) -> float:
        """How far into this batch the next one closes: at once for early_close_share of the
        batches, else at close_at_fraction (ServiceModel.close_fractions)."""
        share = self.model.early_close_share
        if share and self.rng.random() < share:
            return 0.0
        return self.model.close_at_fraction

    def _batch_scale(self, oldest_s: float) -> float:
        """The multiplier of a batch whose oldest request arrived at `oldest_s`."""
        if self.model.batch_time_tau_ms == 0.0 or self.model.batch_time_cv == 0.0:
            return float(self.model.batch_scales(1, self.rng)[0])
        innovation = float(self.rng.standard_normal())
        value = innovation if self.spell is None else ou_step(
            self.spell[0], oldest_s - self.spell[1], self.model.batch_time_tau_ms / 1000.0,
            innovation)
        self.spell = (value, oldest_s)
        return float(self.model.scales_of(np.array([value]))[0])

    def _complete(self, now: float) -> list[tuple[float, float]]:
        done, still = [], []
        for finish, start, batch in self.in_flight:
            if finish > now:
                still.append((finish, start, batch))
                continue
            for arrival in batch:
                latency_ms = (finish - arrival) * 1000.0
                queue_ms = (start - arrival) * 1000.0
                self._count(finish, latency_ms, queue_ms, finish - start)
                done.append((arrival, finish))
        self.in_flight = still
        self.counters.pending = len(self.queue)
        self._summarise(now)
        return done

    def _count(self, finish: float, latency_ms: float, queue_ms: float, compute_s: float) -> None:
        c = self.counters
        c.success += 1
        c.inferences += 1
        c.request_duration_us += latency_ms * 1000.0
        c.queue_duration_us += queue_ms * 1000.0
        c.compute_infer_duration_us += compute_s * 1e6
        c.summary_count += 1
        c.summary_sum_us += latency_ms * 1000.0
        self.recent.append((finish, latency_ms, queue_ms))

    @property
    def waiting(self) -> int:
        """Requests queued or in a running batch."""
        return len(self.queue) + sum(len(batch) for _, _, batch in self.in_flight)

    def _summarise(self, now: float) -> None:
        while self.recent and self.recent[0][0] < now - self.summary_window_s:
            self.recent.popleft()
        if not self.recent:
            self.counters.request_summary_us, self.counters.queue_summary_us = {}, {}
            return
        latencies = np.array([r[1] for r in self.recent]) * 1000.0
        queues = np.array([r[2] for r in self.recent]) * 1000.0
        quantiles = {"0.5": 50, "0.9": 90, "0.95": 95, "0.99": 99}
        self.counters.request_summary_us = {
            q: float(np.percentile(latencies, p)) for q, p in quantiles.items()
        }
        self.counters.queue_summary_us = {
            q: float(np.percentile(queues, p)) for q, p in quantiles.items()
        }
