"""spec.autoscaling as admitted by the CRD, read into the policies' spec."""

from __future__ import annotations

import pytest

from sloscale.autoscale.config import duration_s, policy_rate_window_s, policy_spec, rate_window_s
from sloscale.autoscale.policies import AutoscalingSpec


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
    spec = policy_spec(
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


def test_missing_fields_keep_policy_defaults() -> None:
    spec = policy_spec({"enabled": True, "objective": {"targetMs": 100}})
    assert spec.objective.targetMs == 100.0
    assert spec.capacityRpsPerReplica is None
    assert spec.minReplicas >= 0 and spec.maxReplicas >= spec.minReplicas


def test_capacity_profile_json() -> None:
    import json

    from sloscale.autoscale.config import capacity_from_profile
    from sloscale_runtime.capacity import SCHEMA

    profile = {
        "schema": SCHEMA,
        "model": {"name": "m", "backend": "python", "max_batch_size": 8},
        "hardware": {"kind": "cpu", "description": "test", "cpu_count": 2},
        "batching": {"dynamic": True, "preferred_batch_sizes": [], "max_queue_delay_us": 100},
        "load": {"protocol": "http", "mode": "concurrency", "batch_per_request": 1,
                 "step_duration_s": 5},
        "objective": {"percentile": 95, "slo_ms": 50},
        "points": [],
        "max_rps_at_target": 42.5,
        "measured_at": "2026-11-22T07:00:00+00:00",
    }  # fmt: skip
    assert capacity_from_profile(json.dumps(profile)) == 42.5
    assert capacity_from_profile(json.dumps({**profile, "max_rps_at_target": None})) is None
    for bad in ("not json", json.dumps({**profile, "max_rps_at_target": -1}), "{}"):
        with pytest.raises(ValueError, match="cm/p"):
            capacity_from_profile(bad, "cm/p")
    spec = policy_spec({"capacityProfile": {"configMapRef": {"name": "p", "key": "k"}}}, 12.0)
    assert spec.capacityRpsPerReplica == 12.0


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
    assert policy_rate_window_s(policy_spec(raw)) == expected_s


def test_admitted_spec_without_step_rules_keeps_the_policys_own() -> None:
    from sloscale.api.spec import parse_spec

    admitted = parse_spec(
        {
            "model": {"name": "m", "storageUri": "s3://models/m"},
            "autoscaling": {"enabled": True, "objective": {"targetMs": 100}},
        }
    )  # fmt: skip (the operator's twin of the apiserver's defaulting)
    assert admitted.autoscaling is not None
    spec = policy_spec(admitted.autoscaling.raw)
    assert spec.scaleUp == AutoscalingSpec().scaleUp  # no CRD default caps a burst
    assert spec.scaleDown == AutoscalingSpec().scaleDown
