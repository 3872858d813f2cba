"""The latency model of one replica: the objective's latency against its per-pod arrival rate.

A Triton replica with dynamic batching serves a light load in about one batch time and queues
once its batches fill; between the two its percentile rises with the rate it is sent, and how
fast depends on the batch time A + B x size, the largest batch and the queue delay. Rather than
a closed form for that queue, the model is the curve the capacity profile measured (`sloscale
runtime profile` on Triton; the simulator's own load test of its service model): the
objective's latency at each rate a load test sent one replica. Behind a Service each of N pods
sees a 1/N share of the demand, so N pods at demand D predict curve(D / N).

Burstiness enters through the rate the curve is read at: the policy reads it at the peak
short-window rate, not the window's mean.

The profile is corrected online by stretching its rate axis: when what the pods report says a
replica reaches the target at capacity c where the profile said c0, the curve is read at
rate x c0 / c (a replica twice as slow as profiled shows at x what the profile showed at 2x).
Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyCurve:
    """The objective's latency (ms) at each per-pod rate (rps) measured, rates rising."""

    rps: tuple[float, ...]
    ms: tuple[float, ...]

    @classmethod
    def of(cls, points: Iterable[tuple[object, object]]) -> LatencyCurve | None:
        """A curve from measured (rps, ms) pairs; None with fewer than two usable rates.

        Pairs that are not finite positive numbers are dropped (a profile is user input).
        Latency never falls as the load rises: where a load test measured a heavier load
        faster than a lighter one, both read as their mean (isotonic regression, pooling
        adjacent violators), so one slow warm-up point does not lift the whole curve.
        """
        usable = sorted((float(r), float(m)) for r, m in points
                        if positive_number(r) and positive_number(m))
        rates: list[float] = []
        pools: list[list[float]] = []  # latencies measured at each rate
        for rate, latency in usable:
            if rates and rate == rates[-1]:
                pools[-1].append(latency)
            else:
                rates.append(rate)
                pools.append([latency])
        if len(rates) < 2:
            return None
        return cls(tuple(rates), tuple(_non_decreasing([sum(p) / len(p) for p in pools])))

    def latency_ms(self, rps_per_pod: float) -> float:
        """The latency at a per-pod rate: interpolated between the measured points; the
        lightest point's below them; past the heaviest, the last segment's slope continued (a
        lower bound there: a queue past capacity grows faster than any line)."""
        rates, latencies = self.rps, self.ms
        if rps_per_pod <= rates[0]:
            return latencies[0]
        last = len(rates) - 1
        i = next((k for k in range(1, last + 1) if rates[k] >= rps_per_pod), last)
        slope = (latencies[i] - latencies[i - 1]) / (rates[i] - rates[i - 1])
        return latencies[i - 1] + slope * (rps_per_pod - rates[i - 1])

    def rate_at_ms(self, target_ms: float) -> float | None:
        """The highest per-pod rate whose latency stays within `target_ms` (interpolated); the
        heaviest point's rate when every point does (no evidence past it); None when even the
        lightest load is slower."""
        rates, latencies = self.rps, self.ms
        if latencies[0] > target_ms:
            return None
        above = next((k for k, m in enumerate(latencies) if m > target_ms), None)
        if above is None:
            return rates[-1]
        low, high = above - 1, above
        share = (target_ms - latencies[low]) / (latencies[high] - latencies[low])
        return rates[low] + share * (rates[high] - rates[low])


def predicted_ms(curve: LatencyCurve | None, profiled_rps: float | None,
                 capacity_rps: float | None, target_ms: float, demand_rps: float,
                 pods: int) -> float | None:
    """The objective's latency `pods` replicas show at `demand_rps`: the profile's curve read
    at the per-pod rate x profiled / learned capacity (where the capacity has not moved, the
    profile's own points); None without a curve, a capacity or a pod. Without a profiled
    capacity the curve's own crossing of the target stands for it."""
    if curve is None or capacity_rps is None or capacity_rps <= 0 or pods <= 0:
        return None
    profiled = profiled_rps if profiled_rps else curve.rate_at_ms(target_ms)
    if profiled is None:
        return None
    return curve.latency_ms(demand_rps / pods * profiled / capacity_rps)


def positive_number(value: object) -> bool:
    """A finite number above zero (not a bool, not None, not text: profiles are user input)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def _non_decreasing(values: list[float]) -> list[float]:
    """The closest non-decreasing sequence in least squares (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, count]
    for value in values:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            previous = blocks[-1]
            total = previous[1] + count
            previous[0] = (previous[0] * previous[1] + mean * count) / total
            previous[1] = total
    return [mean for mean, count in blocks for _ in range(int(count))]
