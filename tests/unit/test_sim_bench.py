"""The benchmark's held-out synthetic traces: seeded, and shaped as their docstrings say."""

from __future__ import annotations

import numpy as np
import pytest

from sloscale.sim.bench import HELDOUT, bursty_on_off, noisy_ramp
from sloscale.sim.traces import Trace


def per_minute_rps(trace: Trace) -> np.ndarray:
    return np.bincount((trace.arrivals_s // 60).astype(np.int64)) / 60.0


@pytest.mark.parametrize("make", HELDOUT)
def test_same_seed_same_trace_and_seed_matters(make) -> None:  # type: ignore[no-untyped-def]
    first, again, other = make(3, hours=0.5), make(3, hours=0.5), make(4, hours=0.5)
    np.testing.assert_array_equal(first.arrivals_s, again.arrivals_s)
    assert not np.array_equal(first.arrivals_s, other.arrivals_s)
    assert np.all(np.diff(first.arrivals_s) >= 0)


def test_bursty_on_off_has_a_floor_and_bursts() -> None:
    rps = per_minute_rps(bursty_on_off(0))
    assert 25.0 <= np.percentile(rps, 10) <= 35.0  # the 30 rps floor between bursts
    assert rps.max() > 150.0  # bursts rise at least 150 rps above it


def test_noisy_ramp_peaks_three_quarters_in() -> None:
    rps = per_minute_rps(noisy_ramp(0))
    busiest = int(np.argmax(np.convolve(rps, np.ones(10) / 10, mode="same")))
    assert 0.6 * len(rps) <= busiest <= 0.9 * len(rps)
    assert rps[:10].mean() < rps.max() / 4  # it starts low
