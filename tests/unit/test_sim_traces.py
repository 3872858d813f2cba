"""Trace loading in the three formats users bring, and the rate/time stretching."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sloscale.sim.traces import TraceError, load_trace, stretch, tile

# The real traces ship in the repository; SLOSCALE_TRACES points the test at another folder.
TRACES = Path(os.environ.get("SLOSCALE_TRACES",
                             Path(__file__).resolve().parents[2] / "examples" / "traces"))


@pytest.mark.parametrize(
    ("name", "text", "fmt", "expected"),
    [
        ("a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
         "2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:05.4799600,3180,8\n",
         "azure", [0.0, 1.5]),
        ("m.jsonl", '{"timestamp": 2500, "input_length": 1, "output_length": 2}\n'
         '{"timestamp": 500, "input_length": 1, "output_length": 2}\n', "mooncake", [0.0, 2.0]),
        ("p.csv", "timestamp,input_tokens\n10.5,3\n12,4\n11,1\n", "csv", [0.0, 0.5, 1.5]),
        ("q.csv", "timestamp\n0\n", "csv", [0.0]),
    ],
)
def test_formats(tmp_path: Path, name: str, text: str, fmt: str, expected: list[float]) -> None:
    path = tmp_path / name
    path.write_text(text)
    trace = load_trace(path)
    assert trace.format == fmt
    np.testing.assert_allclose(trace.arrivals_s, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.csv", "time,x\n1,2\n", "needs `timestamp`"),
        ("bad2.csv", "timestamp\n1\nsoon\n", "bad2.csv:3: bad timestamp"),
        ("bad.jsonl", '{"timestamp": 1}\n{"ts": 2}\n', "bad.jsonl:2"),
        ("empty.csv", "timestamp\n", "no requests"),
    ],
)
def test_bad_traces_name_file_and_line(tmp_path: Path, name: str, text: str,
                                       message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TraceError, match=message):
        load_trace(path)


def test_missing_file() -> None:
    with pytest.raises(TraceError, match="no such trace file"):
        load_trace("/nonexistent/trace.csv")


@pytest.mark.parametrize(
    "path", sorted(p for p in TRACES.iterdir() if p.suffix in (".csv", ".jsonl")),
    ids=lambda p: p.name,
)
def test_shared_traces_load(path: Path) -> None:
    trace = load_trace(path)
    assert len(trace.arrivals_s) > 8000
    assert 3000 < trace.duration_s < 3700  # about one hour each
    assert np.all(np.diff(trace.arrivals_s) >= 0)


@pytest.mark.parametrize(("time_scale", "rate_scale"), [(1.0, 3.0), (2.0, 1.0), (24.0, 2.5)])
def test_stretch(time_scale: float, rate_scale: float) -> None:
    base = load_trace(TRACES / "azure_llm_2023_code.csv")
    scaled = stretch(base, time_scale, rate_scale, np.random.default_rng(0))
    assert len(scaled.arrivals_s) == pytest.approx(len(base.arrivals_s) * rate_scale, rel=0.02)
    assert scaled.duration_s == pytest.approx(base.duration_s * time_scale, rel=0.01, abs=10.0)
    assert np.all(np.diff(scaled.arrivals_s) >= 0)


def test_stretch_rejects_zero() -> None:
    base = load_trace(TRACES / "azure_llm_2023_code.csv")
    with pytest.raises(TraceError, match="rate-scale"):
        stretch(base, 1.0, 0.0, np.random.default_rng(0))


def test_tile_repeats_back_to_back() -> None:
    base = load_trace(TRACES / "mooncake_conversation_2024.jsonl")
    tiled = tile(base, 3)
    assert len(tiled.arrivals_s) == 3 * len(base.arrivals_s)
    assert tiled.duration_s == pytest.approx(3 * base.duration_s + 2, abs=1.0)
