"""The objective, judged per window: does a window's latency percentile stay within target?

Windows are the objective's `window` by arrival time; a rejected request counts as missed
(MISSED_MS). The report, the oracle's search and its certification all judge with this.
"""

from __future__ import annotations

import numpy as np

from sloscale.autoscale.policies.base import AutoscalingSpec, Objective
from sloscale.sim.engine import RunResult

MISSED_MS = 1e12  # latency given to rejected requests


def objective_ms(latency_ms: np.ndarray, objective: Objective) -> float:
    percentile = objective.percentile
    if percentile is None:
        return float(latency_ms.mean())
    return float(np.percentile(latency_ms, percentile))


def meets(latency_ms: np.ndarray, objective: Objective) -> bool:
    """An empty window meets the objective."""
    return len(latency_ms) == 0 or objective_ms(latency_ms, objective) <= objective.targetMs


def window_verdicts(run: RunResult, spec: AutoscalingSpec) -> np.ndarray:
    """Per window of the objective (by arrival): whether it met the objective."""
    window_s = spec.objective.window
    if len(run.arrivals_s) == 0:
        return np.ones(0, dtype=bool)
    n_windows = int(run.arrivals_s[-1] // window_s) + 1
    bounds = np.searchsorted(run.admitted_s, np.arange(n_windows + 1) * window_s)
    rejected = np.bincount((run.rejected_s // window_s).astype(np.int64), minlength=n_windows)
    verdicts = np.ones(n_windows, dtype=bool)
    for k in range(n_windows):
        values = run.latency_ms[bounds[k]:bounds[k + 1]]
        if rejected[k]:
            values = np.concatenate((values, np.full(rejected[k], MISSED_MS)))
        verdicts[k] = meets(values, spec.objective)
    return verdicts
