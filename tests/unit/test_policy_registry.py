"""The policy registry: names, how each baseline is configured from the spec, knobs and tuning."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sloscale.autoscale.policies import (
    POLICY_NAMES,
    TUNED,
    TUNED_NAMES,
    TUNING,
    AutoscalingSpec,
    Objective,
    grid_names,
    make_policy,
)
from sloscale.autoscale.policies.hpa import HpaPolicy
from sloscale.autoscale.policies.keda import KedaLatencyPolicy, KedaPolicy
from sloscale.autoscale.policies.kpa import KpaPolicy
from sloscale.autoscale.policies.slo import SloPolicy
from sloscale.simulate_cmd import POLICY_CHOICES

SPEC = AutoscalingSpec(maxReplicas=100, objective=Objective("p95", 150.0), coldStartSeconds=60.0,
                       capacityRpsPerReplica=20.0, meanLatencyMsAtCapacity=120.0)


def test_names() -> None:
    assert POLICY_NAMES == ("slo", "hpa", "keda", "keda-latency", "kpa")
    assert TUNED_NAMES == ("hpa-tuned", "keda-tuned", "keda-latency-tuned", "kpa-tuned")
    assert set(POLICY_CHOICES) == {*POLICY_NAMES, *TUNED_NAMES, "all", "all-tuned"}


@pytest.mark.parametrize("base", list(TUNING))
def test_every_baseline_has_a_tuned_value_from_its_grid(base: str) -> None:
    assert TUNED[base] in TUNING[base].grid


def test_a_grid_name_builds_that_setting() -> None:
    names = grid_names("keda")
    assert names[0] == "keda[threshold_utilization=0.4]"
    policy = make_policy(names[0], SPEC)
    assert isinstance(policy, KedaPolicy) and policy.threshold_rps == pytest.approx(8.0)
    with pytest.raises(ValueError, match="not a number"):
        make_policy("keda[threshold_utilization=lots]", SPEC)


@pytest.mark.parametrize("base", list(TUNING))
def test_each_knob_s_default_is_in_its_grid(base: str) -> None:
    knob = TUNING[base]
    assert knob.default in knob.grid and list(knob.grid) == sorted(set(knob.grid))


def test_baselines_as_documented() -> None:
    hpa = make_policy("hpa", SPEC)
    assert isinstance(hpa, HpaPolicy) and hpa.target_ratio == 1.0  # the guide's 1000m
    keda = make_policy("keda", SPEC)
    assert isinstance(keda, KedaPolicy) and keda.threshold_rps == pytest.approx(14.0)  # 70%
    latency = make_policy("keda-latency", SPEC)
    assert isinstance(latency, KedaLatencyPolicy) and latency.threshold_ms == 150.0
    kpa = make_policy("kpa", SPEC)
    assert isinstance(kpa, KpaPolicy)
    assert kpa.settings.target_concurrency == pytest.approx(2.4)  # 20 rps x 120 ms
    assert kpa.settings.target_utilization == 0.7
    assert kpa.settings.scale_down_delay_s == 60.0  # the cold start
    assert [p.name for p in map(lambda n: make_policy(n, SPEC), POLICY_NAMES)] == \
        list(POLICY_NAMES)


def test_kpa_without_a_load_test_estimates_its_target() -> None:
    kpa = make_policy("kpa", replace(SPEC, meanLatencyMsAtCapacity=None))
    assert isinstance(kpa, KpaPolicy)
    assert kpa.settings.target_concurrency is None and kpa.settings.capacity_rps == 20.0


@pytest.mark.parametrize(
    ("name", "knob", "value", "attribute", "expected"),
    [
        ("hpa", "target_ratio", 0.2, "target_ratio", 0.2),
        ("keda", "threshold_utilization", 0.9, "threshold_rps", 18.0),
        ("keda-latency", "threshold_fraction", 0.8, "threshold_ms", 120.0),
    ],
)
def test_overrides_set_the_knob_and_name_the_run(name: str, knob: str, value: float,
                                                 attribute: str, expected: float) -> None:
    policy = make_policy(name, SPEC, **{knob: value})
    assert getattr(policy, attribute) == pytest.approx(expected)
    assert policy.name == f"{name}[{knob}={value:g}]"


def test_kpa_override_sets_the_target_utilization() -> None:
    policy = make_policy("kpa", SPEC, target_utilization=0.9)
    assert isinstance(policy, KpaPolicy) and policy.settings.target_utilization == 0.9


def test_a_tuned_variant_needs_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(TUNED, "kpa")
    with pytest.raises(ValueError, match="no tuned"):
        make_policy("kpa-tuned", SPEC)


def test_slo_takes_its_parameters_by_name() -> None:
    policy = make_policy("slo[neighbours=5]", SPEC)
    assert isinstance(policy, SloPolicy) and policy.name == "slo[neighbours=5]"
    assert policy.params.neighbours == 5 and isinstance(policy.params.neighbours, int)
    assert make_policy("slo[use_forecast=0]", SPEC).params.use_forecast is False


def test_tuned_variants_read_tuned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TUNED, "keda", 0.85)
    policy = make_policy("keda-tuned", SPEC)
    assert isinstance(policy, KedaPolicy) and policy.name == "keda-tuned"
    assert policy.threshold_rps == pytest.approx(17.0)


@pytest.mark.parametrize(
    ("name", "spec", "overrides", "message"),
    [
        ("keda-tuned", SPEC, {"threshold_utilization": 0.8}, "takes its value from TUNED"),
        ("keda", SPEC, {"target_ratio": 0.8}, "takes only threshold_utilization"),
        ("slo", SPEC, {"target_ratio": 0.8}, "policy slo takes only"),
        ("nope", SPEC, {}, "unknown policy"),
        ("keda", replace(SPEC, capacityRpsPerReplica=None), {}, "capacityRpsPerReplica"),
        ("kpa", replace(SPEC, capacityRpsPerReplica=None), {}, "capacityRpsPerReplica"),
    ],
)
def test_refusals_name_the_problem(name: str, spec: AutoscalingSpec, overrides: dict[str, float],
                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_policy(name, spec, **overrides)


@pytest.mark.parametrize("name", ["hpa", "keda-latency"])
def test_baselines_without_a_profile(name: str) -> None:
    assert make_policy(name, replace(SPEC, capacityRpsPerReplica=None)).name == name
