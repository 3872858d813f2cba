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

    close_at_fraction: how far into the running batch (as a fraction of its service time) the
    instance takes the next one, which is then closed with what is queued and waits for the
    running batch to end. 1.0 is the ideal batcher (the next batch closes when the running one
    ends). Triton 2.51's python backend on a CPU takes it earlier, between half-way and two
    thirds in (docs/sim-fidelity.md); `sloscale_runtime.fit` measures it and
    sloscale.sim.fidelity fits it.
    """

    base_ms: float = 40.0
    per_item_ms: float = 20.0
    max_batch: int = 8
    max_queue_delay_ms: float = 5.0
    max_queue_size: int | None = None
    close_at_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.base_ms < 0 or self.per_item_ms < 0 or self.base_ms + self.per_item_ms <= 0:
            raise ValueError("--service-ms-base and --service-ms-per-item must be >= 0, one > 0")
        if self.max_batch < 1:
            raise ValueError(f"--max-batch must be >= 1, got {self.max_batch}")
        if self.max_queue_delay_ms < 0:
            raise ValueError(f"--max-queue-delay-ms must be >= 0, got {self.max_queue_delay_ms}")
        if self.max_queue_size is not None and self.max_queue_size < 1:
            raise ValueError(f"--max-queue-size must be >= 1, got {self.max_queue_size}")
        if not 0.0 <= self.close_at_fraction <= 1.0:
            raise ValueError(
                f"--close-at-fraction must be within [0, 1], got {self.close_at_fraction}")

    def batcher_seconds(self) -> tuple[float, float, int, float, float]:
        """(base, per item, max batch, batching delay) in seconds and the close fraction: the
        batcher kernels' parameters."""
        return (self.base_ms / 1000.0, self.per_item_ms / 1000.0, self.max_batch,
                self.max_queue_delay_ms / 1000.0, self.close_at_fraction)

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
