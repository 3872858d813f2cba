"""A capacity profile as `sloscale runtime profile` writes it, for the autoscaler's tests."""

from __future__ import annotations

from typing import Any

from sloscale_runtime.capacity import SCHEMA


def capacity_profile(max_rps_at_target: float | None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "model": {"name": "m", "backend": "python", "max_batch_size": 8},
        "hardware": {"kind": "cpu", "description": "test", "cpu_count": 2},
        "batching": {"dynamic": True, "preferred_batch_sizes": [], "max_queue_delay_us": 100},
        "load": {"protocol": "http", "mode": "concurrency", "batch_per_request": 1,
                 "step_duration_s": 5},
        "objective": {"percentile": 95, "slo_ms": 50},
        "points": [],
        "max_rps_at_target": max_rps_at_target,
        "measured_at": "2026-11-22T07:00:00+00:00",
    }  # fmt: skip
