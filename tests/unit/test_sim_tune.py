"""How a user's choice of a baseline's knob is modelled: meet the goal everywhere, then cheapest."""

from __future__ import annotations

import pytest

from sloscale.sim.tune import choose


def rows(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"windows_meeting_objective": w, "replica_hours_vs_oracle": x} for w, x in pairs]


@pytest.mark.parametrize(
    ("grid", "chosen"),
    [
        # two settings meet 99% on both traces: the cheaper one, not the one meeting more
        ({0.4: rows((1.0, 3.0), (1.0, 3.0)), 0.6: rows((0.99, 2.0), (0.995, 2.5)),
          0.8: rows((0.90, 1.0), (1.0, 1.0))}, 0.6),
        # none meets 99% on both: the best worst trace, whatever it costs
        ({0.4: rows((0.95, 9.0), (0.97, 9.0)), 0.6: rows((0.98, 2.0), (0.90, 1.0))}, 0.4),
        # a tie on the worst trace: the cheaper
        ({0.4: rows((0.95, 3.0), (0.97, 3.0)), 0.6: rows((0.95, 2.0), (0.99, 2.0))}, 0.6),
    ],
)
def test_choose(grid: dict[float, list[dict[str, float]]], chosen: float) -> None:
    assert choose(grid) == chosen
