"""Synthetic arrivals for tests: Poisson requests at a piecewise-constant rate (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def poisson_arrivals(phases: Sequence[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """Arrival times for consecutive (duration_s, rate_rps) phases, sorted, from t = 0."""
    rng = np.random.default_rng(seed)
    chunks, start = [], 0.0
    for duration_s, rate_rps in phases:
        if duration_s < 0 or rate_rps < 0:
            raise ValueError(f"phase ({duration_s}, {rate_rps}): both must be >= 0")
        count = rng.poisson(rate_rps * duration_s)
        chunks.append(start + np.sort(rng.uniform(0.0, duration_s, count)))
        start += duration_s
    return np.concatenate(chunks) if chunks else np.empty(0)
