"""The demand forecast: errors realised a horizon later, their quantile at the level."""

from __future__ import annotations

import pytest

from sloscale.autoscale.policies.demand import DemandHistory, forecast_rps

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
    assert forecast_rps(demand, 10.0, 12.0, 0.95, 20, 2.0) == 30.0
    assert forecast_rps(demand, 10.0, 45.0, 0.95, 20, 2.0) == 45.0
    assert forecast_rps(DemandHistory(), 10.0, 12.0, 0.95, 20, 2.0) == 12.0


def test_the_first_traffic_teaches_nothing_while_its_rate_windows_fill() -> None:
    # Idle, then traffic whose first rates read a fraction of it (2 rps), then the real 10 rps:
    # the records made within 15 s of the first traffic would realise ratios of 5.
    demand = DemandHistory(settle_s=15.0)
    for now, base in [(0.0, 0.0), (10.0, 2.0), (20.0, 10.0), (30.0, 10.0), (40.0, 10.0),
                      (50.0, 10.0), (60.0, 10.0)]:
        demand.record(now, base, base, HORIZON_S, MEMORY_S)
    assert [start for start, _, _ in demand.errors] == [30.0, 40.0]
    assert DemandHistory().settle_s == 0.0  # without a window: every record teaches
