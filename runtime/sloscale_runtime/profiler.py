"""Sweep concurrency against a running Triton and write the capacity profile (JSON + PNG)."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sloscale_runtime import capacity, loadgen
from sloscale_runtime.capacity import CapacityProfile, CurvePoint

DEFAULT_LEVELS = (1, 2, 4, 8, 16, 32)


def hardware_description(gpu: bool = False) -> dict[str, Any]:
    return {
        "kind": "gpu" if gpu else "cpu",
        "description": _cpu_model() or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count() or 0,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def batching_of(config: dict[str, Any]) -> dict[str, Any]:
    dynamic = config.get("dynamic_batching")
    return {
        "dynamic": dynamic is not None,
        "preferred_batch_sizes": [int(s) for s in (dynamic or {}).get("preferred_batch_size", [])],
        "max_queue_delay_us": (
            int(dynamic.get("max_queue_delay_microseconds", 0)) if dynamic is not None else None
        ),
    }


def sweep(
    protocol: str,
    url: str,
    model: str,
    percentile: int,
    slo_ms: float,
    levels: tuple[int, ...] = DEFAULT_LEVELS,
    step_s: float = 5.0,
    progress: bool = True,
) -> tuple[dict[str, Any], list[CurvePoint]]:
    """Measure one curve point per concurrency level; stop early past saturation."""
    capacity.check_objective(percentile, slo_ms)
    config = loadgen.model_config(protocol, url, model)
    make_request = loadgen.request_factory(protocol, url, model, loadgen.input_specs(config))
    points: list[CurvePoint] = []
    bar = tqdm(levels, desc=f"profile {model}", unit="step", disable=not progress)
    for level in bar:
        step = loadgen.run_step(make_request, level, step_s)
        point = capacity.summarize_step(level, step.latencies_ms, step.duration_s, step.errors)
        points.append(point)
        bar.set_postfix(c=level, rps=f"{point.throughput_rps:.0f}",
                        **{f"p{percentile}_ms": f"{point.latency_ms(percentile):.1f}"})
        if step.first_error:
            bar.write(f"concurrency {level}: {step.errors} errors, first: {step.first_error}")
        if capacity.past_saturation(point, percentile, slo_ms):
            break
    return config, points


def make_profile(
    config: dict[str, Any],
    points: list[CurvePoint],
    protocol: str,
    percentile: int,
    slo_ms: float,
    step_s: float,
    hardware: dict[str, Any],
    now: dt.datetime,
) -> CapacityProfile:
    """Assemble the profile from measured points; `now` is passed in, not read."""
    return CapacityProfile(
        model={
            "name": config.get("name", ""),
            "backend": config.get("backend", ""),
            "max_batch_size": int(config.get("max_batch_size", 0)),
        },
        hardware=hardware,
        batching=batching_of(config),
        load={"protocol": protocol, "mode": "concurrency", "batch_per_request": 1,
              "step_duration_s": step_s},
        objective={"percentile": percentile, "slo_ms": slo_ms},
        points=tuple(points),
        max_rps_at_target=capacity.max_rps_at_target(points, percentile, slo_ms),
        measured_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
    )
