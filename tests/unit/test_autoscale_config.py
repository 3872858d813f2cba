"""spec.autoscaling parsed once: the CRD schema's defaults, then the typed spec."""

from __future__ import annotations

import pytest

from sloscale.autoscale.config import (
    duration_s,
    parse_autoscaling,
    policy_rate_window_s,
    rate_window_s,
)
from sloscale.autoscale.policies import AutoscalingSpec, Objective


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15.0), ("1m", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), (30, 30.0)],
)
def test_duration(text, seconds) -> None:  # type: ignore[no-untyped-def]
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "fast", "1x", "15s ", "-5s"])
def test_bad_duration_names_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_s(text)


def test_full_spec() -> None:
    spec = parse_autoscaling(
        {
            "enabled": True,
            "mode": "active",
            "minReplicas": 2,
            "maxReplicas": 20,
            "objective": {"latency": "p99", "targetMs": 250, "window": "2m"},
            "policy": "kpa",
            "interval": "10s",
            "scaleUp": {"stabilizationSeconds": 0, "maxStep": 4},
            "scaleDown": {"stabilizationSeconds": 300, "maxStep": 1},
            "coldStartSeconds": 45,
            "capacityProfile": {"maxRpsPerReplica": 120.5},
        }
    )
    assert (spec.minReplicas, spec.maxReplicas, spec.policy, spec.interval) == (2, 20, "kpa", 10.0)
    assert (spec.objective.latency, spec.objective.targetMs, spec.objective.window) == (
        "p99",
        250.0,
        120.0,
    )
    assert (spec.scaleUp.maxStep, spec.scaleDown.stabilizationSeconds) == (4, 300.0)
    assert (spec.coldStartSeconds, spec.capacityRpsPerReplica) == (45.0, 120.5)


def test_missing_fields_take_the_schemas_defaults() -> None:
    spec = parse_autoscaling({"enabled": True, "objective": {"targetMs": 100}})
    assert spec.objective == Objective("p95", 100.0, 60.0)
    assert (spec.minReplicas, spec.maxReplicas, spec.policy, spec.interval, spec.mode) == (
        1, 8, "slo", 15.0, "active")
    assert spec.capacityRpsPerReplica is None and spec.capacityConfigMapRef is None


def test_the_typed_specs_defaults_are_the_schemas() -> None:
    """One set of defaults: what the simulator builds by hand is what the CRD admits."""
    from sloscale.api.schema import autoscaling_schema

    properties = autoscaling_schema()["properties"]
    spec = AutoscalingSpec()
    for field in ("minReplicas", "maxReplicas", "policy", "mode"):
        assert getattr(spec, field) == properties[field]["default"], field
    assert spec.interval == duration_s(properties["interval"]["default"])
    objective = properties["objective"]["properties"]
    assert spec.objective.latency == objective["latency"]["default"]
    assert spec.objective.window == duration_s(objective["window"]["default"])


@pytest.mark.parametrize(
    ("raw", "problem"),
    [({"enabled": True}, "spec.autoscaling.objective: objective is required"),
     ({"minReplicas": 5, "maxReplicas": 2}, "minReplicas must not exceed maxReplicas"),
     ({"interval": "soon"}, "spec.autoscaling.interval"),
     ({"policy": "magic"}, "spec.autoscaling.policy: must be one of")],
)
def test_settings_the_schema_refuses_name_the_field(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_autoscaling(raw)


def test_capacity_profile_json() -> None:
    import json

    from sloscale.autoscale.config import read_capacity_profile
    from tests.unit.capacity_profiles import capacity_profile

    profile = capacity_profile(42.5)
    assert read_capacity_profile(json.dumps(profile), 95.0) == (42.5, None)
    assert read_capacity_profile(json.dumps({**profile, "max_rps_at_target": None}),
                                 95.0) == (None, None)
    for bad in ("not json", json.dumps({**profile, "max_rps_at_target": -1}), "{}"):
        with pytest.raises(ValueError, match="cm/p"):
            read_capacity_profile(bad, 95.0, "cm/p")


def test_capacity_profile_points_are_the_latency_curve_at_the_objectives_percentile() -> None:
    import json

    from sloscale.autoscale.config import read_capacity_profile
    from tests.unit.capacity_profiles import capacity_profile

    def point(rps: float, p95_ms: float, errors: int = 0) -> dict[str, float]:
        return {"concurrency": 1, "throughput_rps": rps, "p50_ms": p95_ms / 2,
                "p95_ms": p95_ms, "p99_ms": p95_ms * 2, "requests": 100, "errors": errors}

    broken = {**point(30.0, 40.0), "requests": None}  # a hand-edited profile: left out too
    profile = {**capacity_profile(40.0),
               "points": [point(20.0, 30.0), point(40.0, 50.0), point(45.0, 20.0, errors=3),
                          broken, {**point(50.0, 60.0), "p99_ms": None}]}
    capacity, curve = read_capacity_profile(json.dumps(profile), 99.0)
    assert capacity == 40.0
    assert curve is not None
    # Only the two whole, error-free points remain (p99 = 2 x p95 in `point`).
    assert (curve.rps, curve.ms) == ((20.0, 40.0), (60.0, 100.0))
    assert read_capacity_profile(json.dumps(profile), None)[1] is None  # a mean objective
    spec = parse_autoscaling({"capacityProfile": {"configMapRef": {"name": "p", "key": "k"}}})
    assert (spec.capacityConfigMapRef, spec.capacityRpsPerReplica) == (("p", "k"), None)


@pytest.mark.parametrize(
    ("policy_window_s", "objective_window_s", "expected_s"),
    [
        (None, 60.0, 60.0),  # keda, keda-latency: the objective's window
        (30.0, 60.0, 30.0),  # slo: its own, as in the simulator
        (30.0, 10.0, 10.0),  # never longer than the objective (the user knows their scrapes)
        (2.0, 60.0, 30.0),  # kpa: at least two scrapes of the rendered ServiceMonitor
        (2.0, 10.0, 10.0),  # ... unless the objective itself is shorter
    ],
)
def test_rate_window(
    policy_window_s: float | None, objective_window_s: float, expected_s: float
) -> None:
    assert rate_window_s(policy_window_s, objective_window_s) == expected_s


# hpa: the 1m of NVIDIA's recording rule; keda: the objective's window.
@pytest.mark.parametrize(("policy", "expected_s"),
                         [("slo", 30.0), ("hpa", 60.0), ("keda", 120.0), ("kpa", 30.0)])
def test_policy_rate_window_is_the_simulators(policy: str, expected_s: float) -> None:
    raw = {"policy": policy, "objective": {"targetMs": 100, "window": "2m"},
           "capacityProfile": {"maxRpsPerReplica": 10}}  # fmt: skip
    assert policy_rate_window_s(parse_autoscaling(raw)) == expected_s


def test_admitted_spec_without_step_rules_keeps_the_policys_own() -> None:
    from sloscale.api.spec import parse_spec

    admitted = parse_spec(
        {
            "model": {"name": "m", "storageUri": "s3://models/m"},
            "autoscaling": {"enabled": True, "objective": {"targetMs": 100}},
        }
    )  # fmt: skip (the operator's twin of the apiserver's defaulting)
    spec = parse_autoscaling(admitted.autoscaling)
    assert spec.scaleUp == AutoscalingSpec().scaleUp  # no CRD default caps a burst
    assert spec.scaleDown == AutoscalingSpec().scaleDown
