"""Demand over a horizon as a distribution, learned from the service's own forecast errors.

At each decision the policy records the demand it sees (the window's rate plus the backlog)
and the peak short-window rate. The level at a decision is the mean demand over the horizon
before it (one window's rate is 0 between the requests of an on/off service, a horizon's mean
is not). Once a horizon H has passed after a record, the highest short-window rate seen during
that horizon, divided by the record's level, is one realised error: how much higher than the
level the demand rose before a pod asked for then could have served. The forecast for the
coming horizon is the level now times the q-quantile of the errors remembered at levels near
it: a service whose load jumps often keeps a high ratio, a steady one a ratio near 1 (the
errors depend on the level: a quiet on/off service jumps by more than a busy one).

Once the history covers a day, the same errors also say what followed this minute of the day
before (and, once it covers a week, of the week before): a rise that recurs at one hour, a
morning ramp, a nightly batch, is foreseen from its time, not only from its share of all rises
(`SeasonalRatios`). Pure: the state is explicit, the clock is passed in.
"""

from __future__ import annotations

import bisect
import math
import statistics
from array import array
from dataclasses import dataclass, field

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
MINUTE_S = 60.0
# A week of minutes and the minutes around a week ago: 40 kB a service at most (float32).
SEASON_MINUTES = int(WEEK_S // MINUTE_S) + 2


@dataclass
class SeasonalRatios:
    """The largest forecast error realised in each minute of the last week, by the time of its
    record: what followed the same minute yesterday and a week ago.

    Grows with the history covered (nothing kept for a service whose history is short) and
    drops the minutes older than a week. A minute without a realised error reads 0: nothing
    known. Read as the median of three minutes (the one a lag ago and its neighbours): a rise
    at a fixed hour realises high ratios in the minutes before it, a one-off burst in one.
    """

    first_minute: int | None = None  # the minute of ratios[0]
    ratios: array = field(default_factory=lambda: array("f"))

    def add(self, at_s: float, ratio: float) -> None:
        minute = int(at_s // MINUTE_S)
        if self.first_minute is None:
            self.first_minute = minute
        index = minute - self.first_minute
        if index < 0:  # older than what is kept
            return
        if index >= len(self.ratios):
            self.ratios.extend([0.0] * (index + 1 - len(self.ratios)))
        self.ratios[index] = max(self.ratios[index], ratio)
        excess = len(self.ratios) - SEASON_MINUTES
        if excess > 0:
            del self.ratios[:excess]
            self.first_minute += excess

    def ratio(self, now_s: float, covered_s: float) -> float | None:
        """What followed this minute a day ago and, once a week is covered, a week ago: the
        smaller of the two (a rise on both lags recurs; one on one lag alone was an incident,
        or yesterday was another kind of day). None before a day is covered."""
        lags = [lag for lag in (DAY_S, WEEK_S) if covered_s >= lag]
        if not lags or self.first_minute is None:
            return None
        return min(self._around(now_s - lag) for lag in lags)

    def _around(self, at_s: float) -> float:
        index = int(at_s // MINUTE_S) - (self.first_minute or 0)
        near = [self.ratios[i] if 0 <= i < len(self.ratios) else 0.0
                for i in (index - 1, index, index + 1)]
        return statistics.median(near)


@dataclass
class DemandHistory:
    """Decisions seen (time, level rps, peak short-window rps) and the errors realised from
    them."""

    seen: list[tuple[float, float, float]] = field(default_factory=list)  # time, level, peak
    # (time recorded, log of the level then, ratio realised)
    errors: list[tuple[float, float, float]] = field(default_factory=list)
    resolved: int = 0  # records of `seen` whose horizon has passed
    realised: int = 0  # records whose horizon has passed, ever (an idle one teaches too)
    bases: list[tuple[float, float]] = field(default_factory=list)  # demand over the horizon
    first_s: float | None = None  # the first record of traffic
    settle_s: float = 0.0  # how long after it rates are partial (their windows still filling)
    seasonal: SeasonalRatios = field(default_factory=SeasonalRatios)

    def record(self, now: float, base_rps: float, peak_rps: float, horizon_s: float,
               memory_s: float) -> float:
        """Add this decision's demand, realise the errors whose horizon has passed, forget
        errors older than `memory_s`; returns the level now."""
        if self.first_s is None and base_rps > 0:
            self.first_s = now
        self.bases.append((now, base_rps))
        while self.bases and self.bases[0][0] <= now - horizon_s:
            self.bases.pop(0)
        level = sum(b for _, b in self.bases) / len(self.bases)
        self.seen.append((now, level, max(base_rps, peak_rps)))
        self._realise(now, horizon_s)
        cut = bisect.bisect_left(self.errors, (now - memory_s, -math.inf, -math.inf))
        del self.errors[:cut]
        return level

    def _realise(self, now: float, horizon_s: float) -> None:
        seen = self.seen
        while self.resolved < len(seen) and seen[self.resolved][0] + horizon_s <= now:
            start, base, _ = seen[self.resolved]
            later = [peak for t, _, peak in seen[self.resolved + 1:] if t <= start + horizon_s]
            # The first traffic's rates come from windows still filling: they read a fraction
            # of the demand, and the real load that follows would teach ratios of tens there.
            settled = self.first_s is not None and start - self.first_s >= self.settle_s
            if later and base > 0 and settled:
                self.errors.append((start, math.log(base), max(later) / base))
                self.seasonal.add(start, max(later) / base)
            self.resolved += 1
            self.realised += 1
        # Records older than every pending horizon are no longer needed.
        drop = max(0, self.resolved - 1)
        if drop > 64:
            del self.seen[:drop]
            self.resolved -= drop

    def ratio(self, quantile: float, level_rps: float, neighbours: int, factor: float) -> float:
        """The q-quantile of the ratios realised from the `neighbours` records whose level was
        closest to `level_rps`, within `factor` of it (a quiet service jumps by more than a
        busy one: the errors depend on the level), never below 1 (1 with none)."""
        if not self.errors or level_rps <= 0:
            return 1.0
        here = math.log(level_rps)
        close = [e for e in self.errors if abs(e[1] - here) <= math.log(factor)]
        if not close:  # never seen near this level: nothing to scale by
            return 1.0
        nearest = sorted(close, key=lambda e: abs(e[1] - here))[:neighbours]
        ratios = sorted(r for _, _, r in nearest)
        rank = min(len(ratios) - 1, max(0, math.ceil(quantile * len(ratios)) - 1))
        return max(1.0, ratios[rank])


    def seasonal_ratio(self, now: float) -> float | None:
        """What followed this minute of the day (and week) before; None until a day is
        covered since the first traffic."""
        if self.first_s is None:
            return None
        return self.seasonal.ratio(now, now - self.first_s)


@dataclass(frozen=True)
class Forecast:
    rps: float
    bound_by: str  # "peak now", "forecast errors" or "season"


def forecast_rps(history: DemandHistory, level_rps: float, peak_rps: float, quantile: float,
                 neighbours: int, factor: float, now: float | None = None) -> Forecast:
    """The q-quantile of the peak short-window demand over the horizon: the level scaled by the
    error quantile at this level, or by what followed this minute a day (and a week) before
    when that is higher (with `now`, once the history covers a day); never below the peak seen
    now."""
    by_errors = level_rps * history.ratio(quantile, level_rps, neighbours, factor)
    seasonal = None if now is None else history.seasonal_ratio(now)
    by_season = level_rps * seasonal if seasonal is not None else 0.0
    return max(Forecast(peak_rps, "peak now"), Forecast(by_errors, "forecast errors"),
               Forecast(by_season, "season"), key=lambda f: f.rps)
