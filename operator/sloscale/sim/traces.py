"""Load request-arrival traces (Azure CSV, Mooncake JSONL, plain CSV) and stretch them."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the file and the line or field."""


@dataclass(frozen=True)
class Trace:
    name: str
    format: str
    arrivals_s: np.ndarray  # sorted seconds from the start of the trace

    @property
    def duration_s(self) -> float:
        return float(self.arrivals_s[-1]) if len(self.arrivals_s) else 0.0


def _parse_azure_time(text: str) -> float:
    # "2023-11-16 18:17:03.9799600": seven fractional digits, one more than %f takes.
    head, _, frac = text.strip().partition(".")
    stamp = datetime.strptime(head, "%Y-%m-%d %H:%M:%S").timestamp()
    return stamp + (float(f"0.{frac}") if frac else 0.0)


def _read_csv(path: Path) -> tuple[str, list[float]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if "TIMESTAMP" in fields:
            fmt, column, parse = "azure", "TIMESTAMP", _parse_azure_time
        elif "timestamp" in fields:
            fmt, column, parse = "csv", "timestamp", float
        else:
            raise TraceError(f"{path}: CSV header needs `timestamp` (seconds) or `TIMESTAMP`, "
                             f"found {fields}")
        times = []
        for line, row in enumerate(reader, start=2):
            try:
                times.append(parse(row[column]))
            except (TypeError, ValueError) as error:
                raise TraceError(f"{path}:{line}: bad {column} {row[column]!r}: {error}") from None
    return fmt, times


def _read_jsonl(path: Path) -> tuple[str, list[float]]:
    times = []
    with path.open() as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                times.append(float(json.loads(text)["timestamp"]) / 1000.0)
            except (ValueError, KeyError, TypeError) as error:
                raise TraceError(f"{path}:{line}: needs a numeric `timestamp` (ms): {error}") \
                    from None
    return "mooncake", times


def load_trace(path: str | Path) -> Trace:
    """Arrival times of a trace file, shifted to start at 0 and sorted."""
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: no such trace file")
    fmt, times = _read_jsonl(path) if path.suffix in (".jsonl", ".json") else _read_csv(path)
    if not times:
        raise TraceError(f"{path}: no requests in the trace")
    arrivals = np.sort(np.asarray(times, dtype=np.float64))
    return Trace(path.stem, fmt, arrivals - arrivals[0])


def stretch(
    trace: Trace, time_scale: float, rate_scale: float, rng: np.random.Generator,
    jitter_s: float = 10.0,
) -> Trace:
    """Stretch time by `time_scale` and multiply the request rate by `rate_scale`.

    Time stretching keeps the request count (so it lowers the rate); rate scaling copies each
    request floor(k) or ceil(k) times (the fraction drawn at random) and spreads each copy
    uniformly over `jitter_s`: k times the users do not all click in the same second, but the
    trace's minute-scale bursts stay.
    """
    if time_scale <= 0 or rate_scale <= 0:
        raise TraceError(f"--time-scale and --rate-scale must be > 0, got {time_scale}, "
                         f"{rate_scale}")
    base = trace.arrivals_s * time_scale
    whole, fraction = int(rate_scale), rate_scale - int(rate_scale)
    copies = np.full(len(base), whole, dtype=np.int64)
    copies += rng.random(len(base)) < fraction
    arrivals = np.repeat(base, copies)
    if rate_scale != 1.0 and len(arrivals):
        arrivals = arrivals + rng.uniform(0.0, jitter_s, len(arrivals))
    arrivals.sort()
    if len(arrivals):
        arrivals -= arrivals[0]
    return Trace(trace.name, trace.format, arrivals)


def tile(trace: Trace, times: int) -> Trace:
    """Repeat a trace back to back `times` times (a day from an hour)."""
    span = trace.duration_s + 1.0
    arrivals = np.concatenate([trace.arrivals_s + k * span for k in range(times)])
    return Trace(trace.name, trace.format, arrivals)
