"""A Triton replica with dynamic batching, as a fluid model: throughput and latency vs load."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A request arriving at a busy replica first waits for the batch in progress: half of one.
RESIDUAL = 0.5


@dataclass(frozen=True)
class ServiceModel:
    """Batch service time base_ms + per_item_ms * size, up to max_batch, FIFO queue per replica.

    Triton's dynamic batcher waits up to max_queue_delay_ms to fill a batch when the replica is
    idle; a request arriving to a full queue (queue_per_replica) is rejected.
    """

    base_ms: float = 40.0
    per_item_ms: float = 20.0
    max_batch: int = 8
    max_queue_delay_ms: float = 5.0
    queue_per_replica: int = 512

    def __post_init__(self) -> None:
        if self.base_ms < 0 or self.per_item_ms < 0 or self.base_ms + self.per_item_ms <= 0:
            raise ValueError("--service-ms-base and --service-ms-per-item must be >= 0, one > 0")
        if self.max_batch < 1:
            raise ValueError(f"--max-batch must be >= 1, got {self.max_batch}")

    @property
    def max_rps(self) -> float:
        """Throughput of one replica running full batches back to back."""
        return self.max_batch / ((self.base_ms + self.per_item_ms * self.max_batch) / 1000.0)

    def batch_size(self, rps_per_replica: np.ndarray) -> np.ndarray:
        """Steady batch size at a dispatch rate: B = rate * (a + b*B), within [1, max_batch]."""
        rate = np.asarray(rps_per_replica, dtype=np.float64)
        a, b = self.base_ms / 1000.0, self.per_item_ms / 1000.0
        denominator = 1.0 - rate * b
        with np.errstate(divide="ignore", invalid="ignore"):
            size = np.where(denominator > 0, rate * a / denominator, self.max_batch)
        return np.clip(size, 1.0, self.max_batch)

    def latency_ms(self, rps_per_replica: np.ndarray) -> np.ndarray:
        """Mean latency at a steady per-replica rate (no backlog): the batch in progress
        (on average half a batch time, RESIDUAL), batching wait, then the request's own batch."""
        rate = np.asarray(rps_per_replica, dtype=np.float64)
        size = self.batch_size(rate)
        service = (1.0 + RESIDUAL) * (self.base_ms + self.per_item_ms * size)
        with np.errstate(divide="ignore"):
            fill_ms = np.where(rate > 0, 1000.0 * self.max_batch / np.maximum(rate, 1e-12),
                               np.inf)
        wait = np.where(size < self.max_batch, 0.5 * np.minimum(self.max_queue_delay_ms, fill_ms),
                        0.0)
        return service + wait

    def capacity_at(self, target_ms: float) -> float:
        """Largest per-replica rps whose latency stays within target_ms (the capacity profile)."""
        if float(self.latency_ms(np.array([1e-6]))[0]) > target_ms:
            raise ValueError(f"the SLO {target_ms} ms is below the service time at zero load")
        low, high = 0.0, self.max_rps * (1 - 1e-9)
        for _ in range(60):
            middle = (low + high) / 2
            if float(self.latency_ms(np.array([middle]))[0]) <= target_ms:
                low = middle
            else:
                high = middle
        return low
