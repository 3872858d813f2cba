"""Capacity profile: what one replica sustains within a latency target (schema, math, JSON).

The autoscaler reads `max_rps_at_target` from this JSON (an InferenceService names it through a
ConfigMap {name, key}, or copies it inline as maxRpsPerReplica). All functions here are pure.
Schema (version SCHEMA), every key always present:

  schema             "sloscale.io/capacity-profile/v1"
  model              {name, backend, max_batch_size}
  hardware           {kind: "cpu"|"gpu", description, cpu_count}
  batching           {dynamic: bool, preferred_batch_sizes: [int], max_queue_delay_us: int|null}
  load               {protocol: "http"|"grpc", mode: "concurrency", batch_per_request,
                      step_duration_s}
  objective          {percentile: 50|95|99, slo_ms}
  points             [{concurrency, throughput_rps, p50_ms, p95_ms, p99_ms, requests, errors}]
                     one per load step, in the order measured
  max_rps_at_target  highest throughput_rps among error-free points whose chosen percentile is
                     <= slo_ms; null when no point met the target (never 0: no data means hold)
  measured_at        ISO 8601 UTC time of the measurement
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from sloscale_runtime.errors import RuntimeInputError

SCHEMA = "sloscale.io/capacity-profile/v1"
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class CurvePoint:
    concurrency: int
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    errors: int

    def latency_ms(self, percentile: int) -> float:
        return float(getattr(self, f"p{percentile}_ms"))


@dataclass(frozen=True)
class CapacityProfile:
    model: dict[str, Any]
    hardware: dict[str, Any]
    batching: dict[str, Any]
    load: dict[str, Any]
    objective: dict[str, Any]
    points: tuple[CurvePoint, ...]
    max_rps_at_target: float | None
    measured_at: str
    schema: str = SCHEMA


def percentile_ms(latencies_ms: list[float], percentile: float) -> float:
    """Nearest-rank percentile (the value a fraction `percentile`% of requests stay under)."""
    if not latencies_ms:
        return math.nan
    ordered = sorted(latencies_ms)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize_step(
    concurrency: int, latencies_ms: list[float], duration_s: float, errors: int
) -> CurvePoint:
    """One curve point from the latencies of the requests that completed during a step."""
    if duration_s <= 0:
        raise ValueError("duration_s must be positive")
    return CurvePoint(
        concurrency=concurrency,
        throughput_rps=len(latencies_ms) / duration_s,
        p50_ms=percentile_ms(latencies_ms, 50),
        p95_ms=percentile_ms(latencies_ms, 95),
        p99_ms=percentile_ms(latencies_ms, 99),
        requests=len(latencies_ms),
        errors=errors,
    )


def max_rps_at_target(
    points: list[CurvePoint] | tuple[CurvePoint, ...], percentile: int, slo_ms: float
) -> float | None:
    """Highest throughput among error-free points meeting the target; None when none does."""
    check_objective(percentile, slo_ms)
    meeting = [
        p.throughput_rps
        for p in points
        if p.errors == 0 and p.requests > 0 and p.latency_ms(percentile) <= slo_ms
    ]
    return max(meeting) if meeting else None


def past_saturation(point: CurvePoint, percentile: int, slo_ms: float, factor: float = 2.0) -> bool:
    """Stop a sweep once latency is well past the target: more load only queues."""
    return point.errors > 0 or point.latency_ms(percentile) > factor * slo_ms


def check_objective(percentile: int, slo_ms: float) -> None:
    if percentile not in PERCENTILES:
        raise RuntimeInputError(f"--percentile: {percentile} not one of {PERCENTILES}")
    if not slo_ms > 0:
        raise RuntimeInputError(f"--slo-ms: must be positive, got {slo_ms}")


def to_json(profile: CapacityProfile) -> str:
    data = asdict(profile)
    data["points"] = [asdict(p) for p in profile.points]
    ordered = {"schema": data.pop("schema"), **data}
    return json.dumps(ordered, indent=2, allow_nan=False) + "\n"


_REQUIRED = ("model", "hardware", "batching", "load", "objective", "points", "max_rps_at_target",
             "measured_at")


def from_json(text: str, *, source: str = "profile") -> CapacityProfile:
    """Parse and check a profile; errors name the source and the field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RuntimeInputError(f"{source}: not JSON: {error}") from error
    if not isinstance(data, dict):
        raise RuntimeInputError(f"{source}: top level must be an object")
    if data.get("schema") != SCHEMA:
        raise RuntimeInputError(f"{source}: schema must be {SCHEMA!r}, got {data.get('schema')!r}")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise RuntimeInputError(f"{source}: missing field(s) {', '.join(missing)}")
    max_rps = data["max_rps_at_target"]
    if max_rps is not None and (not isinstance(max_rps, int | float) or max_rps <= 0):
        raise RuntimeInputError(f"{source}: max_rps_at_target must be a positive number or null")
    try:
        points = tuple(CurvePoint(**p) for p in data["points"])
    except TypeError as error:
        raise RuntimeInputError(f"{source}: points: {error}") from error
    return CapacityProfile(
        **{key: data[key] for key in _REQUIRED if key not in ("points", "max_rps_at_target")},
        points=points,
        max_rps_at_target=None if max_rps is None else float(max_rps),
    )
