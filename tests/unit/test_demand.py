"""The demand forecast: errors realised a horizon later, their quantile at the level."""

from __future__ import annotations

import pytest

from sloscale.autoscale.policies.demand import (
    DAY_S,
    MINUTE_S,
    SEASON_MINUTES,
    WEEK_S,
    DemandHistory,
    SeasonalRatios,
    forecast_rps,
)

HORIZON_S, MEMORY_S = 20.0, 1000.0


def history(records: list[tuple[float, float, float]]) -> DemandHistory:
    demand = DemandHistory()
    for now, base, peak in records:
        demand.record(now, base, peak, HORIZON_S, MEMORY_S)
    return demand


# Every 10 s at 10 rps; the window at 20 s peaks at 30. The records at 0 and 10 s saw it
# within their horizon (ratio 3), those at 20 and 30 s did not (ratio 1).
JUMP = [(0.0, 10.0, 10.0), (10.0, 10.0, 10.0), (20.0, 10.0, 30.0), (30.0, 10.0, 10.0),
        (40.0, 10.0, 10.0), (50.0, 10.0, 10.0)]


def test_errors_are_realised_once_their_horizon_has_passed() -> None:
    demand = history(JUMP)
    assert [ratio for _, _, ratio in demand.errors] == [3.0, 3.0, 1.0, 1.0]


@pytest.mark.parametrize(("quantile", "ratio"), [(0.5, 1.0), (0.75, 3.0), (0.95, 3.0)])
def test_the_ratio_is_the_quantile_of_the_errors(quantile: float, ratio: float) -> None:
    assert history(JUMP).ratio(quantile, 10.0, 20, 2.0) == ratio


def test_errors_learned_at_another_level_do_not_apply() -> None:
    demand = history(JUMP)
    assert demand.ratio(0.95, 100.0, 20, 2.0) == 1.0  # ten times busier: nothing known
    assert demand.ratio(0.95, 15.0, 20, 2.0) == 3.0  # within a factor of 2


def test_the_level_is_the_mean_over_the_horizon() -> None:
    demand = DemandHistory()
    levels = [demand.record(t, base, base, HORIZON_S, MEMORY_S)
              for t, base in [(0.0, 0.0), (10.0, 30.0), (20.0, 0.0), (30.0, 60.0)]]
    assert levels == [0.0, 15.0, 15.0, 30.0]  # the last: (0 + 60) / 2, the 10 s one is out


def test_old_errors_are_forgotten() -> None:
    demand = DemandHistory()
    for now, base, peak in JUMP:
        demand.record(now, base, peak, HORIZON_S, memory_s=25.0)
    assert [start for start, _, _ in demand.errors] == [30.0]


def test_the_forecast_is_never_below_the_peak_seen_now() -> None:
    demand = history(JUMP)
    assert forecast_rps(demand, 10.0, 12.0, 0.95, 20, 2.0).rps == 30.0
    assert forecast_rps(demand, 10.0, 45.0, 0.95, 20, 2.0).rps == 45.0
    assert forecast_rps(DemandHistory(), 10.0, 12.0, 0.95, 20, 2.0).rps == 12.0


def test_the_first_traffic_teaches_nothing_while_its_rate_windows_fill() -> None:
    # Idle, then traffic whose first rates read a fraction of it (2 rps), then the real 10 rps:
    # the records made within 15 s of the first traffic would realise ratios of 5.
    demand = DemandHistory(settle_s=15.0)
    for now, base in [(0.0, 0.0), (10.0, 2.0), (20.0, 10.0), (30.0, 10.0), (40.0, 10.0),
                      (50.0, 10.0), (60.0, 10.0)]:
        demand.record(now, base, base, HORIZON_S, MEMORY_S)
    assert [start for start, _, _ in demand.errors] == [30.0, 40.0]
    assert DemandHistory().settle_s == 0.0  # without a window: every record teaches


NINE_S = 9 * 3600.0


def ratios_at(*minutes: tuple[float, float]) -> SeasonalRatios:
    season = SeasonalRatios()
    for at_s, ratio in minutes:
        season.add(at_s, ratio)
    return season


def test_the_season_reads_what_followed_this_minute_a_day_before() -> None:
    # Ratios of 3 in the three minutes from 8:59 on day one, 1 elsewhere.
    season = ratios_at((NINE_S - 600, 1.0), *[(NINE_S + k * MINUTE_S, 3.0) for k in (-1, 0, 1)],
                       (NINE_S + 600, 1.0))
    assert season.ratio(DAY_S + NINE_S, covered_s=DAY_S) == 3.0
    assert season.ratio(DAY_S + NINE_S - 300, covered_s=DAY_S) == 0.0  # nothing recorded then
    assert season.ratio(DAY_S + NINE_S, covered_s=DAY_S - 1) is None  # not a day yet


def test_a_burst_in_one_minute_alone_is_not_a_season() -> None:
    season = ratios_at((NINE_S - MINUTE_S, 1.0), (NINE_S, 5.0), (NINE_S + MINUTE_S, 1.0))
    assert season.ratio(DAY_S + NINE_S, covered_s=DAY_S) == 1.0  # the median of 1, 5, 1


def test_with_a_week_covered_a_rise_must_recur_on_both_lags() -> None:
    around_nine = [(k * MINUTE_S, 3.0) for k in (-1, 0, 1)]
    week_ago = [(NINE_S + at, r) for at, r in around_nine]
    yesterday = [(6 * DAY_S + NINE_S + at, 2.0) for at, r in around_nine]
    season = ratios_at(*week_ago, *yesterday)
    now = WEEK_S + NINE_S
    assert season.ratio(now, covered_s=DAY_S) == 2.0  # yesterday alone
    assert season.ratio(now, covered_s=WEEK_S) == 2.0  # the smaller of the two
    once = ratios_at(*yesterday)  # nothing a week ago: an incident, not a season
    assert once.ratio(now, covered_s=WEEK_S) == 0.0


def test_the_season_keeps_a_week() -> None:
    season = ratios_at((0.0, 2.0), (WEEK_S + 10 * MINUTE_S, 1.0))
    assert len(season.ratios) == SEASON_MINUTES
    assert season.first_minute == int((WEEK_S + 10 * MINUTE_S) // MINUTE_S) - SEASON_MINUTES + 1
    season.add(0.0, 9.0)  # older than what is kept: dropped
    assert max(season.ratios) == 1.0


def test_a_rise_at_the_same_hour_every_day_is_foreseen_on_the_second() -> None:
    """Records every 15 s at 10 rps; the peak short-window rate 30 from 9:00 to 9:03 daily.
    Errors are forgotten within the hour, so without the season the rise is a surprise."""
    demand, step = DemandHistory(), 15.0
    forecasts = {}
    for k in range(int((DAY_S + NINE_S) // step) + 1):
        now = k * step
        of_day = now % DAY_S
        peak = 30.0 if NINE_S <= of_day < NINE_S + 180 else 10.0
        level = demand.record(now, 10.0, peak, HORIZON_S, MEMORY_S)
        if of_day in (NINE_S - 150, NINE_S - 30):
            forecasts[(int(now // DAY_S), of_day)] = (
                forecast_rps(demand, level, peak, 0.9, 20, 2.0, now),
                forecast_rps(demand, level, peak, 0.9, 20, 2.0))
    first, second = forecasts[(0, NINE_S - 30)], forecasts[(1, NINE_S - 30)]
    assert first[0].rps == first[1].rps == 10.0  # day one: no season yet
    assert second[0].rps == 30.0 and second[0].bound_by == "season"
    assert second[1].rps == 10.0  # without `now`, no season
    early = forecasts[(1, NINE_S - 150)]
    assert early[0].rps == 10.0  # two and a half minutes before: nothing followed then
