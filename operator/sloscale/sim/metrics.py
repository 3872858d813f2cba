"""What a policy sees: counters scraped every few seconds, rates and latencies over a window."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from sloscale.autoscale.policies.base import Snapshot


@dataclass
class Scraper:
    """Prometheus in miniature: samples of the service's counters at each scrape.

    `latency_ms` and `queue_ms` are per completed request in completion order (the simulator
    fills them as requests finish), so the requests finished between two scrapes are a slice.
    """

    latency_ms: np.ndarray
    queue_ms: np.ndarray
    times: list[float] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)

    def record(self, now: float, completed: int, rejected: int, queued: float) -> None:
        self.times.append(now)
        self.completed.append(completed)
        self.rejected.append(rejected)
        self.queued.append(queued)

    def snapshot(self, now: float, window_s: float, percentile: float | None) -> Snapshot:
        """Rates and latencies over `window_s` ending at the latest scrape (stale by up to one
        scrape interval); fields stay None until two scrapes span the window."""
        last = bisect.bisect_right(self.times, now) - 1  # lists: no O(n) array conversion
        if last < 1:
            return Snapshot(time=now)
        start_time = self.times[last] - window_s
        first = max(0, bisect.bisect_right(self.times, start_time) - 1)
        if first == last:
            first = last - 1
        span_s = self.times[last] - self.times[first]
        finished = (self.completed[last] + self.rejected[last]
                    - self.completed[first] - self.rejected[first])
        latencies = self.latency_ms[self.completed[first]:self.completed[last]]
        snapshot_time = self.times[last]
        peak = self._peak_rps(first, last)
        if len(latencies) == 0:
            return Snapshot(snapshot_time, rps=finished / span_s, pending=self.queued[last],
                            rps_peak=peak)
        queue = self.queue_ms[self.completed[first]:self.completed[last]]
        mean = float(latencies.mean())
        tail = mean if percentile is None else float(np.percentile(latencies, percentile))
        return Snapshot(snapshot_time, rps=finished / span_s, latency_mean_ms=mean,
                        latency_ms=tail, queue_ms=float(queue.mean()),
                        pending=self.queued[last], rps_peak=peak)

    def _peak_rps(self, first: int, last: int) -> float:
        """The highest rate between two consecutive scrapes in first..last."""
        return max(
            (self.completed[k + 1] + self.rejected[k + 1] - self.completed[k] - self.rejected[k])
            / (self.times[k + 1] - self.times[k])
            for k in range(first, last)
        )
