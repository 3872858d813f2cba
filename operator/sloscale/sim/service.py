"""A Triton replica with dynamic batching: the parameters the batcher (sim/batcher.py) runs on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceModel:
    """Batch service time base_ms + per_item_ms * size, up to max_batch, FIFO queue per replica.

    Triton's dynamic batcher waits up to max_queue_delay_ms (from the oldest request's arrival)
    for a batch to fill. Its queue is unbounded unless the model config sets
    `default_queue_policy.max_queue_size`; `max_queue_size` mirrors that (None: unbounded),
    and a request arriving to a full queue is rejected.
    """

    base_ms: float = 40.0
    per_item_ms: float = 20.0
    max_batch: int = 8
    max_queue_delay_ms: float = 5.0
    max_queue_size: int | None = None

    def __post_init__(self) -> None:
        if self.base_ms < 0 or self.per_item_ms < 0 or self.base_ms + self.per_item_ms <= 0:
            raise ValueError("--service-ms-base and --service-ms-per-item must be >= 0, one > 0")
        if self.max_batch < 1:
            raise ValueError(f"--max-batch must be >= 1, got {self.max_batch}")
        if self.max_queue_delay_ms < 0:
            raise ValueError(f"--max-queue-delay-ms must be >= 0, got {self.max_queue_delay_ms}")
        if self.max_queue_size is not None and self.max_queue_size < 1:
            raise ValueError(f"--max-queue-size must be >= 1, got {self.max_queue_size}")

    def batcher_seconds(self) -> tuple[float, float, int, float]:
        """(base, per item, max batch, batching delay) in seconds: the batcher kernels' units."""
        return (self.base_ms / 1000.0, self.per_item_ms / 1000.0, self.max_batch,
                self.max_queue_delay_ms / 1000.0)

    def batch_ms(self, size: int) -> float:
        return self.base_ms + self.per_item_ms * size

    @property
    def max_rps(self) -> float:
        """Throughput of one replica running full batches back to back: no replica serves more
        (size / batch time grows with size), which the lower bound rests on."""
        return self.max_batch / (self.batch_ms(self.max_batch) / 1000.0)

    @property
    def zero_load_ms(self) -> float:
        """A lone request: it waits the whole batching delay, then runs as a batch of one."""
        return self.max_queue_delay_ms + self.batch_ms(1)
