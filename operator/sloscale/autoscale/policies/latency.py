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
    def of(cls, points: Iterable[tuple[float, float]]) -> LatencyCurve | None:
        """A curve from measured (rps, ms) pairs; None with fewer than two usable rates.

        Pairs that are not finite and positive are dropped. Latency never falls as the load
        rises, so a point measured faster than a lighter one is read as the lighter one's (a
        load test's noise, not a replica that speeds up under load).
        """
        usable = sorted((float(r), float(m)) for r, m in points
                        if math.isfinite(r) and math.isfinite(m) and r > 0 and m > 0)
        rates: list[float] = []
        latencies: list[float] = []
        for rate, latency in usable:
            if rates and rate == rates[-1]:
                latencies[-1] = max(latencies[-1], latency)
                continue
            rates.append(rate)
            latencies.append(max(latency, latencies[-1]) if latencies else latency)
        if len(rates) < 2:
            return None
        return cls(tuple(rates), tuple(latencies))

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


def predicted_ms(curve: LatencyCurve | None, capacity_rps: float | None, target_ms: float,
                 demand_rps: float, pods: int) -> float | None:
    """The objective's latency `pods` replicas show at `demand_rps`, the profile's curve
    stretched so that it reaches the target at the capacity learned online; None without a
    curve, a capacity or a pod."""
    if curve is None or capacity_rps is None or capacity_rps <= 0 or pods <= 0:
        return None
    profiled = curve.rate_at_ms(target_ms)
    if profiled is None:
        return None
    return curve.latency_ms(demand_rps / pods * profiled / capacity_rps)
