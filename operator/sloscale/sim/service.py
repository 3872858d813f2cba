"""A Triton replica with dynamic batching: the parameters the batcher (sim/batcher.py) runs on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


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

    batch_time_cv: how much one batch's time spreads around the line (coefficient of
    variation): each batch takes the line times a multiplier of mean 1 drawn from a lognormal
    with this cv (`batch_scales`). 0.0, the default, is the line exactly. Triton's batches on
    a CPU spread by about 0.1, with a long right tail when a neighbour preempts the model;
    sloscale_runtime.fit measures it from Triton's traces (docs/sim-fidelity.md).
    """

    base_ms: float = 40.0
    per_item_ms: float = 20.0
    max_batch: int = 8
    max_queue_delay_ms: float = 5.0
    max_queue_size: int | None = None
    close_at_fraction: float = 1.0
    batch_time_cv: float = 0.0

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
        if not 0.0 <= self.batch_time_cv <= 2.0:
            raise ValueError(f"--batch-time-cv must be within [0, 2], got {self.batch_time_cv}")

    def batcher_args(self, requests: int, seed: int) -> tuple[Any, ...]:
        """The batcher kernels' parameters for `requests` arrivals: base, per item, max batch
        and batching delay in seconds, the close fraction, and the batch_scales (drawn from
        the seed, the same for every policy replayed on those arrivals)."""
        return (self.base_ms / 1000.0, self.per_item_ms / 1000.0, self.max_batch,
                self.max_queue_delay_ms / 1000.0, self.close_at_fraction,
                self.batch_scales(requests, np.random.default_rng([seed, 2])))

    def batch_scales(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """`count` multipliers of the line, one per batch: lognormal with mean 1 and cv
        batch_time_cv. With no spread, one 1.0 (the batcher reads it for every batch, and
        x * 1.0 is x: the line exactly, without an array per request).

        Lognormal because a batch's time is a product of slowdowns (cache, frequency, a
        neighbour's preemption), never below a floor near the line and with a right tail;
        Triton's traced batches have that shape (docs/sim-fidelity.md)."""
        if self.batch_time_cv == 0.0:
            return np.ones(1)
        sigma = float(np.sqrt(np.log1p(self.batch_time_cv ** 2)))
        return rng.lognormal(-sigma ** 2 / 2, sigma, max(count, 1))

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
