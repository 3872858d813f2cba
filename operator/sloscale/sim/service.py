"""A Triton replica with dynamic batching: the parameters the batcher (sim/batcher.py) runs on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit


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
    ends). Triton 2.51's python backend on a CPU is better described batch by batch
    (early_close_share, below): one fraction for every batch, fitted at 0.55 to 0.7 on the
    same probes, gave its mean queue time but too even batch sizes (docs/sim-fidelity.md).

    batch_time_cv: how much one batch's time spreads around the line (coefficient of
    variation): each batch takes the line times a multiplier of mean 1 drawn from a lognormal
    with this cv (`batch_scales`). 0.0, the default, is the line exactly. Triton's batches on
    a CPU spread by about 0.1, with a long right tail when a neighbour preempts the model;
    sloscale_runtime.fit measures it from Triton's traces (docs/sim-fidelity.md).

    batch_time_tau_ms: how long a slow spell lasts. 0.0, the default, draws every batch's
    multiplier independently. Above 0, the log-multiplier is a stationary Ornstein-Uhlenbeck
    process in time with this correlation time (two batches dt apart correlate by
    exp(-dt / tau)), the marginal unchanged (lognormal, mean 1, cv batch_time_cv). Triton's
    slow batches come in runs: a neighbour's burst or a frequency step lasts several batches,
    and a run of slow batches queues far more than the same batches spread out. Fitted from
    the same traces (sloscale_runtime.fit.batch_time_tau_ms).

    early_close_share: the share of batches during which the instance takes the next batch at
    once (with what is queued when the running one starts, close fraction 0); the others take
    it at close_at_fraction. 0.0, the default, is close_at_fraction for every batch. Triton
    2.51's python backend on a CPU does either: its traced close times pile up near the
    running batch's start and near its end, and the sizes of its batches spread far wider
    than one fraction for all gives at the same mean size (docs/sim-fidelity.md). Drawn per
    batch from the seed, as the multipliers are.
    """

    base_ms: float = 40.0
    per_item_ms: float = 20.0
    max_batch: int = 8
    max_queue_delay_ms: float = 5.0
    max_queue_size: int | None = None
    close_at_fraction: float = 1.0
    batch_time_cv: float = 0.0
    batch_time_tau_ms: float = 0.0
    early_close_share: float = 0.0

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
        if not 0.0 <= self.batch_time_tau_ms < math.inf:
            raise ValueError(
                f"--batch-time-tau-ms must be >= 0 and finite, got {self.batch_time_tau_ms}")
        if not 0.0 <= self.early_close_share <= 1.0:
            raise ValueError(
                f"--early-close-share must be within [0, 1], got {self.early_close_share}")

    def batcher_args(self, arrivals_s: np.ndarray, seed: int) -> tuple[Any, ...]:
        """The batcher kernels' parameters for these arrivals: base, per item, max batch and
        batching delay in seconds, the close fractions and the multipliers (one per request,
        read by the batch it is the oldest of; drawn from the seed, the same for every policy
        replayed on those arrivals; a single value when they do not vary)."""
        rng = np.random.default_rng([seed, 2])
        scales = (self.correlated_batch_scales(arrivals_s, rng) if self.batch_time_tau_ms > 0
                  else self.batch_scales(len(arrivals_s), rng))
        return (self.base_ms / 1000.0, self.per_item_ms / 1000.0, self.max_batch,
                self.max_queue_delay_ms / 1000.0, self.close_fractions(len(arrivals_s), seed),
                scales)

    def close_fractions(self, count: int, seed: int) -> np.ndarray:
        """`count` close fractions, one per batch: 0.0 for early_close_share of them, else
        close_at_fraction; a single value when no batch closes early."""
        if self.early_close_share == 0.0:
            return np.array([self.close_at_fraction], dtype=np.float64)
        early = np.random.default_rng([seed, 3]).random(max(count, 1)) < self.early_close_share
        return np.where(early, 0.0, self.close_at_fraction)

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

    def correlated_batch_scales(self, times_s: np.ndarray,
                                rng: np.random.Generator) -> np.ndarray:
        """One multiplier per request, the batch_time_tau_ms process read at each arrival
        (`times_s`, sorted): the same lognormal marginal as `batch_scales`, neighbours in
        time alike. A batch reads its oldest request's, as with independent draws.

        A process of time, one per service, sampled at arrivals: it depends on the arrivals
        and the seed only, so every policy replayed on them sees the same batch times (common
        random numbers) without the batcher keeping a process per pod. Its pods are slow
        together, as pods sharing a machine are (the traces' slow spells are the machine's);
        pods on separate nodes would not be. Reasoned, not measured: with random routing each
        pod's own latencies have the same law either way, so a fleet's pooled p95 over a
        window far longer than tau (about 100 ms) barely moves; least-requests routing, which
        reads the other pods' queues, may see more."""
        if self.batch_time_cv == 0.0:
            return np.ones(1)
        times = np.asarray(times_s, dtype=np.float64)
        standard = ou_path(times if len(times) else np.zeros(1), self.batch_time_tau_ms / 1000.0,
                           rng.standard_normal(max(len(times), 1)))
        return self.scales_of(standard)

    def scales_of(self, standard: np.ndarray) -> np.ndarray:
        """Multipliers from standard normal values: lognormal of mean 1 and cv batch_time_cv."""
        sigma = float(np.sqrt(np.log1p(self.batch_time_cv ** 2)))
        return np.exp(sigma * np.asarray(standard) - sigma ** 2 / 2)

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


@njit(cache=True)
def ou_step(previous: float, dt_s: float, tau_s: float, innovation: float) -> float:
    """A standard (mean 0, variance 1) Ornstein-Uhlenbeck value dt_s after `previous`: exact
    for any gap, so the process stays stationary however irregular the samples."""
    keep = math.exp(-max(dt_s, 0.0) / tau_s)
    return keep * previous + math.sqrt(1.0 - keep * keep) * innovation


@njit(cache=True)
def ou_path(times_s: np.ndarray, tau_s: float,
            innovations: np.ndarray) -> np.ndarray:  # pragma: no cover (compiled)
    """The standard process at sorted `times_s`, from standard normal `innovations`."""
    path = np.empty(len(times_s))
    path[0] = innovations[0]  # stationary from the start
    for i in range(1, len(times_s)):
        path[i] = ou_step(path[i - 1], times_s[i] - times_s[i - 1], tau_s, innovations[i])
    return path
