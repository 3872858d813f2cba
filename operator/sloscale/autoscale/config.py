"""The one parse of spec.autoscaling: the CRD schema's defaults, then the typed spec (pure)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from sloscale.api.openapi import Schema
from sloscale.api.schema import autoscaling_schema
from sloscale.api.validate import apply_defaults, validate
from sloscale.autoscale.policies import metrics_window_s
from sloscale.autoscale.policies.base import AutoscalingSpec, Objective, ScalingRules
from sloscale.autoscale.policies.latency import LatencyCurve, positive_number

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_s(text: str | float | int) -> float:
    """'15s', '1m30s', '500ms' or a number of seconds, to seconds."""
    if isinstance(text, int | float):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (use e.g. 15s, 1m30s, 500ms)")
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)


def _rules(raw: dict[str, Any] | None, default: ScalingRules) -> ScalingRules:
    if not raw:
        return default
    return ScalingRules(
        stabilizationSeconds=float(raw.get("stabilizationSeconds", default.stabilizationSeconds)),
        maxStep=int(raw.get("maxStep", default.maxStep)),
    )


# Prometheus needs two samples in a rate() range: two scrapes of the rendered ServiceMonitor
# (every 15 s). A policy that asks for less (KPA's 2 s) reads this much instead.
MIN_RATE_WINDOW_S = 30.0


def rate_window_s(policy_window_s: float | None, objective_window_s: float) -> float:
    """The PromQL rate window for a policy: its own (as in the simulator) when it asks for one,
    never longer than the objective's window (the user's statement of what their scrapes hold)
    and never shorter than two scrapes unless the objective itself is shorter."""
    if policy_window_s is None:
        return objective_window_s
    floor_s = min(MIN_RATE_WINDOW_S, objective_window_s)
    return max(min(policy_window_s, objective_window_s), floor_s)


def policy_rate_window_s(spec: AutoscalingSpec) -> float:
    """rate_window_s for the policy `spec` selects."""
    return rate_window_s(metrics_window_s(spec.policy), spec.objective.window)


def read_capacity_profile(profile_json: str, percentile: float | None,
                          source: str = "profile") -> tuple[float | None, LatencyCurve | None]:
    """max_rps_at_target of a capacity profile written by `sloscale runtime profile`, and its
    points as the latency curve at the objective's percentile (policies/latency.py).

    The capacity is None when the profile measured no point within its target; the curve is
    None for a mean objective (the profile records percentiles) or with fewer than two
    error-free points. ValueError naming the field when the text is not a valid profile.
    """
    from sloscale_runtime.capacity import from_json  # pure; one parser for the schema

    profile = from_json(profile_json, source=source)
    curve = None
    if percentile is not None:
        curve = LatencyCurve.of(
            (p.throughput_rps, getattr(p, f"p{int(percentile)}_ms")) for p in profile.points
            if p.errors == 0 and positive_number(p.requests))
    return profile.max_rps_at_target, curve


@cache
def _schema() -> Schema:
    return autoscaling_schema()


def parse_autoscaling(raw: dict[str, Any] | None) -> AutoscalingSpec:
    """spec.autoscaling as the API server admits it (the schema's defaults filled in), typed.

    ValueError names every field the schema refuses. Fields the schema leaves without a
    default (the step rules, coldStartSeconds) keep the policy's own. An inline
    capacityProfile.maxRpsPerReplica is the capacity; a configMapRef is kept for the loop to
    read (capacityRpsPerReplica stays None until it does).
    """
    admitted = apply_defaults(_schema(), raw or {})
    problems = validate(_schema(), admitted, "spec.autoscaling")
    if problems:
        raise ValueError("; ".join(problems))
    base = AutoscalingSpec()
    objective_raw = admitted.get("objective") or {}
    objective = Objective(
        latency=objective_raw.get("latency", base.objective.latency),
        targetMs=float(objective_raw.get("targetMs", base.objective.targetMs)),
        window=duration_s(objective_raw.get("window", base.objective.window)),
    )
    profile = admitted.get("capacityProfile") or {}
    capacity = profile.get("maxRpsPerReplica")
    ref = profile.get("configMapRef")
    return AutoscalingSpec(
        minReplicas=int(admitted["minReplicas"]),
        maxReplicas=int(admitted["maxReplicas"]),
        objective=objective,
        policy=str(admitted["policy"]),
        interval=duration_s(admitted["interval"]),
        scaleUp=_rules(admitted.get("scaleUp"), base.scaleUp),
        scaleDown=_rules(admitted.get("scaleDown"), base.scaleDown),
        coldStartSeconds=float(admitted.get("coldStartSeconds", base.coldStartSeconds)),
        capacityRpsPerReplica=float(capacity) if capacity is not None else None,
        mode=admitted["mode"],
        capacityConfigMapRef=(ref["name"], ref["key"]) if ref else None,
    )
