"""Tune each baseline as a user would: its main knob over a grid, on the shared traces.

The question a user asks is not whether sloscale beats KEDA's default, but whether it beats
the best KEDA they could configure. The user's choice is modelled as: among the settings that
meet the objective in at least GOAL_WINDOWS of windows on every tuning trace, the cheapest
(replica-hours against each trace's oracle, summed); if none does, the one whose worst trace
meets the most windows, the cheaper on a tie.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sloscale.autoscale.policies import TUNING, grid_names
from sloscale.sim.compare import Comparison

GOAL_WINDOWS = 0.99

Row = dict[str, Any]


def choose(rows_by_value: dict[float, list[Row]], goal: float = GOAL_WINDOWS) -> float:
    """The knob value a user would keep, from one score row per tuning trace per value."""
    def cost(value: float) -> float:
        return sum(row["replica_hours_vs_oracle"] for row in rows_by_value[value])

    def worst(value: float) -> float:
        return min(row["windows_meeting_objective"] for row in rows_by_value[value])

    meeting = [value for value in rows_by_value if worst(value) >= goal]
    if meeting:
        return min(meeting, key=cost)
    return min(rows_by_value, key=lambda value: (-worst(value), cost(value)))


def tune(run_traces: Callable[[list[str]], list[Comparison]]) -> tuple[dict[str, float], str]:
    """Every baseline's grid through `run_traces` (one Comparison per tuning trace): the
    chosen value per baseline and a printable table of the grid."""
    names = [name for base in TUNING for name in grid_names(base)]
    comparisons = run_traces(names)
    chosen: dict[str, float] = {}
    lines = [f"{'setting':<36} " + " ".join(f"{c.document['trace']['name'][:22]:>28}"
                                            for c in comparisons),
             f"{'':<36} " + " ".join(f"{'windows ok  x oracle':>28}" for _ in comparisons)]
    for base, knob in TUNING.items():
        rows = {value: [c.document["policies"][name] for c in comparisons]
                for value, name in zip(knob.grid, grid_names(base), strict=True)}
        chosen[base] = choose(rows)
        for value, name in zip(knob.grid, grid_names(base), strict=True):
            mark = " <- tuned" if value == chosen[base] else ""
            mark += " (documented default)" if value == knob.default else ""
            cells = " ".join(f"{row['windows_meeting_objective']:>18.4f} "
                             f"{row['replica_hours_vs_oracle']:>9.3f}" for row in rows[value])
            lines.append(f"{name:<36} {cells}{mark}")
    return chosen, "\n".join(lines)
