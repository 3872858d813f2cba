"""Triton's per-request traces into batches, and the batch time's spread fitted from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sloscale_runtime.batch_trace import TracedBatch, batches, read_documents, trace_config_args
from sloscale_runtime.fit import batch_time_cv, batch_time_tau_ms


def request(trace_id: int, compute_start_ns: int | None, compute_end_ns: int | None
            ) -> list[dict[str, Any]]:
    """One request's trace as Triton 2.51 writes it: an entry per timestamp."""
    names = {"QUEUE_START": 1, "COMPUTE_START": compute_start_ns,
             "COMPUTE_END": compute_end_ns, "REQUEST_END": 10**12}
    return [{"id": trace_id, "model_name": "m", "model_version": 1},
            *({"id": trace_id, "timestamps": [{"name": name, "ns": ns}]}
              for name, ns in names.items() if ns is not None)]


def test_a_batch_is_the_requests_sharing_a_compute_start() -> None:
    documents = [
        request(1, 5_000_000, 25_000_000),
        request(1, 5_000_000, 25_000_000),  # a new file restarts the ids: another request
        request(2, 5_000_000, 25_000_000) + request(3, 40_000_000, 58_500_000),
        request(4, None, None),  # failed before computing: no batch
    ]
    assert batches(documents) == [TracedBatch(5_000_000, 3, 20.0),
                                  TracedBatch(40_000_000, 1, 18.5)]


def test_a_file_still_being_written_is_left_out(tmp_path: Path) -> None:
    whole, partial = tmp_path / "trace.json.0", tmp_path / "trace.json.1"
    whole.write_text(json.dumps(request(1, 0, 10**6)))
    partial.write_text(json.dumps(request(1, 0, 10**6))[:40])
    assert read_documents([whole, partial]) == [request(1, 0, 10**6)]


def test_tracing_starts_off_with_one_file_per_trace() -> None:
    args = trace_config_args(Path("/w/trace.json"))
    assert "--trace-config=triton,file=/w/trace.json" in args
    assert {"--trace-config=level=OFF", "--trace-config=log_frequency=1",
            "--trace-config=rate=1"} <= set(args)


def synthetic(cv: float, seed: int = 0) -> list[TracedBatch]:
    """Batches of sizes 1-4 on a 15 + 5 x size ms line (and six of size 9, too few to use),
    each times a lognormal multiplier of mean 1 and the given cv."""
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(np.log1p(cv ** 2))
    sizes = np.concatenate([rng.integers(1, 5, 1200), np.full(6, 9)])
    times = (15.0 + 5.0 * sizes) * rng.lognormal(-sigma ** 2 / 2, sigma, len(sizes))
    times[-6:] *= [0.3, 3.0] * 3  # a rare size, its own mean too loose to measure spread by
    return [TracedBatch(k, int(size), float(ms)) for k, (size, ms)
            in enumerate(zip(sizes, times, strict=True))]


@pytest.mark.parametrize("cv", [0.05, 0.1, 0.3])
def test_the_spread_is_recovered_from_traced_batches(cv: float) -> None:
    assert batch_time_cv(synthetic(cv)) == pytest.approx(cv, rel=0.1)


def test_the_spread_is_measured_around_each_sizes_mean_not_the_line() -> None:
    # Every size 20 % slower than some line and no spread at all: no spread is fitted.
    exact = [TracedBatch(k, 1 + k % 3, 1.2 * (15.0 + 5.0 * (1 + k % 3))) for k in range(300)]
    assert batch_time_cv(exact) == pytest.approx(0.0, abs=1e-12)


def test_too_few_traced_batches_fit_no_spread() -> None:
    assert batch_time_cv([]) == 0.0  # an untraced probe: the line exactly
    assert batch_time_cv(synthetic(0.3)[:30]) == 0.0


def in_spells(tau_ms: float, count: int = 1500, seed: int = 0) -> list[TracedBatch]:
    """Batches of sizes 1-4 on a 15 + 5 x size ms line, back to back with 0-20 ms idle between,
    each times a lognormal multiplier (cv 0.15) whose log is an Ornstein-Uhlenbeck process in
    time with correlation time tau_ms (0: independent), read at each batch's start."""
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(np.log1p(0.15 ** 2))
    found, start_ms, value = [], 0.0, float(rng.standard_normal())
    for _ in range(count):
        size = int(rng.integers(1, 5))
        ms = (15.0 + 5.0 * size) * np.exp(sigma * value - sigma ** 2 / 2)
        found.append(TracedBatch(int(start_ms * 1e6), size, float(ms)))
        gap_ms = ms + rng.uniform(0.0, 20.0)
        start_ms += gap_ms
        keep = np.exp(-gap_ms / tau_ms) if tau_ms > 0 else 0.0
        value = keep * value + np.sqrt(1 - keep ** 2) * float(rng.standard_normal())
    return found


@pytest.mark.parametrize("tau_ms", [40.0, 100.0, 200.0])
def test_the_slow_spells_length_is_recovered_from_traced_batches(tau_ms: float) -> None:
    fitted = [batch_time_tau_ms(in_spells(tau_ms, seed=seed)) for seed in range(3)]
    assert np.median(fitted) == pytest.approx(tau_ms, rel=0.2)


def test_independent_batches_fit_no_spells() -> None:
    assert batch_time_tau_ms(in_spells(0.0)) == 0.0
    assert batch_time_tau_ms(synthetic(0.3)) == 0.0  # one after the other, independent


def test_too_few_traced_batches_fit_no_spells() -> None:
    assert batch_time_tau_ms([]) == 0.0
    assert batch_time_tau_ms(in_spells(100.0)[:30]) == 0.0
