"""Policies by name: our `slo`, the baselines as their documentation configures them, each
baseline's main knob with the grid a benchmark tunes it over, and the `<name>-tuned` variants."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from sloscale.autoscale.policies.base import AutoscalingSpec, Policy
from sloscale.autoscale.policies.hpa import GUIDE_TARGET_RATIO, HpaPolicy
from sloscale.autoscale.policies.keda import KedaLatencyPolicy, KedaPolicy
from sloscale.autoscale.policies.kpa import KpaPolicy, KpaSettings
from sloscale.autoscale.policies.slo import SloParams, SloPolicy

# What the simulator compares: ours and each baseline as documented.
POLICY_NAMES = ("slo", "hpa", "keda", "keda-latency", "kpa")
TUNED_SUFFIX = "-tuned"


@dataclass(frozen=True)
class Knob:
    """A baseline's main setting: `make_policy(base, spec, **{name: value})` overrides it."""

    name: str
    default: float  # the value the upstream documentation gives
    grid: tuple[float, ...]  # what a tuning run tries (the default among them)


# Grids span both sides of each default. hpa's reaches down to 0.03: where requests wait only
# for the batch in progress, the ratio sits near the batching's share of latency and rises
# only at saturation (Triton counts that wait as queue time, so its ratio starts higher).
TUNING: dict[str, Knob] = {
    # averageValue of triton:queue_compute:ratio per pod
    "hpa": Knob("target_ratio", GUIDE_TARGET_RATIO, (0.03, 0.04, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)),
    # threshold (rps per replica) as a share of capacityRpsPerReplica; the usual utilization
    # target: 70% of the profiled capacity per replica.
    "keda": Knob("threshold_utilization", 0.7, (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)),
    # threshold (ms) as a share of objective.targetMs
    "keda-latency": Knob("threshold_fraction", 1.0, (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)),
    # container-concurrency-target-percentage / 100
    "kpa": Knob("target_utilization", 0.7, (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)),
}
TUNED_NAMES = tuple(f"{base}{TUNED_SUFFIX}" for base in TUNING)
# The best value of each baseline's knob, chosen by `make bench-autoscale`'s grid run (sim/tune.py
# says how a user's choice is modelled; docs/benchmarks.md has the grid, 2026-12-02) and
# copied here so that `sloscale simulate` runs the same variants; the benchmark says when its
# grid no longer agrees.
TUNED: dict[str, float] = {"hpa": 0.1, "keda": 0.4, "keda-latency": 0.6, "kpa": 0.3}


def grid_names(base: str) -> list[str]:
    """One name per value of the baseline's grid: `base[knob=value]`, as make_policy takes."""
    knob = TUNING[base]
    return [f"{base}[{knob.name}={value:g}]" for value in knob.grid]


def _split(name: str) -> tuple[str, dict[str, float]]:
    """`base[knob=value]` -> (base, {knob: value}); any other name -> (name, {})."""
    if not (name.endswith("]") and "[" in name):
        return name, {}
    base, setting = name[:-1].split("[", 1)
    knob, _, value = setting.partition("=")
    try:
        return base, {knob: float(value)}
    except ValueError:
        raise ValueError(f"policy {name!r}: {value!r} is not a number") from None


def make_policy(name: str, spec: AutoscalingSpec, **overrides: float) -> Policy:
    """A fresh policy (with fresh state) by name.

    Baselines take their thresholds from the spec's capacity profile and objective; `overrides`
    (or a name `base[knob=value]`) set a baseline's knob (TUNING[name].name) and then name the
    policy `name[knob=value]`, so that the runs of a grid stay apart; `<base>-tuned` uses
    TUNED[base].
    """
    name, named = _split(name)
    overrides = {**named, **overrides}
    if name.endswith(TUNED_SUFFIX) and name in TUNED_NAMES:
        base = name.removesuffix(TUNED_SUFFIX)
        if overrides:
            raise ValueError(f"{name} takes its value from TUNED; pass overrides to {base}")
        if base not in TUNED:
            raise ValueError(f"{name}: no tuned {TUNING[base].name} yet (TUNED has no {base!r});"
                             f" run the benchmark's grid first")
        return _build(base, spec, TUNED[base], name)
    if name == "slo":
        return _slo(overrides)
    knob = TUNING.get(name)
    if knob is None:
        raise ValueError(f"unknown policy {name!r}; choose one of "
                         f"{', '.join(POLICY_NAMES + TUNED_NAMES)}")
    unknown = set(overrides) - {knob.name}
    if unknown:
        raise ValueError(f"policy {name} takes only {knob.name}, got {sorted(unknown)}")
    if knob.name in overrides:
        value = overrides[knob.name]
        return _build(name, spec, value, f"{name}[{knob.name}={value:g}]")
    return _build(name, spec, knob.default, name)


_CLASSES: dict[str, type] = {"slo": SloPolicy, "hpa": HpaPolicy, "keda": KedaPolicy,
                             "keda-latency": KedaLatencyPolicy, "kpa": KpaPolicy}


def metrics_window_s(name: str) -> float | None:
    """The rate window the policy `name` reads its metrics over (None: the objective's), known
    without building the policy (a keda without its capacity cannot be built)."""
    base = _split(name)[0]
    if base in TUNED_NAMES:
        base = base.removesuffix(TUNED_SUFFIX)
    policy = _CLASSES.get(base)
    if policy is None:
        raise ValueError(f"unknown policy {name!r}; choose one of "
                         f"{', '.join(POLICY_NAMES + TUNED_NAMES)}")
    window_s: float | None = policy.metrics_window_s  # type: ignore[attr-defined]
    return window_s


def _slo(overrides: dict[str, float]) -> SloPolicy:
    """`slo`, or `slo[param=value]` with one of SloParams' fields set (the ablations)."""
    known = {f.name for f in fields(SloParams)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"policy slo takes only {', '.join(sorted(known))}, got {sorted(unknown)}")
    if not overrides:
        return SloPolicy()
    label = ",".join(f"{k}={v:g}" for k, v in overrides.items())
    types = {f.name: type(getattr(SloParams(), f.name)) for f in fields(SloParams)}
    typed = {k: v if types[k] in (float, type(None)) else types[k](v)
             for k, v in overrides.items()}
    return SloPolicy(params=replace(SloParams(), **typed), name=f"slo[{label}]")


def _capacity(spec: AutoscalingSpec, name: str) -> float:
    if spec.capacityRpsPerReplica is None:
        raise ValueError(f"policy {name} needs spec.capacityRpsPerReplica")
    return spec.capacityRpsPerReplica


def _build(base: str, spec: AutoscalingSpec, value: float, name: str) -> Policy:
    if base == "hpa":
        return HpaPolicy(target_ratio=value, name=name)
    if base == "keda":
        return KedaPolicy(threshold_rps=_capacity(spec, base) * value, name=name)
    if base == "keda-latency":
        return KedaLatencyPolicy(threshold_ms=spec.objective.targetMs * value, name=name)
    return KpaPolicy(kpa_settings(spec, value), name=name)


def kpa_settings(spec: AutoscalingSpec, target_utilization: float) -> KpaSettings:
    """The KPA as a user with a load test sets it: target = the in-flight requests one pod
    holds at capacity (capacity x mean latency there), scale-down-delay = the cold start."""
    capacity = _capacity(spec, "kpa")
    mean_ms = spec.meanLatencyMsAtCapacity
    return KpaSettings(
        target_concurrency=None if mean_ms is None else capacity * mean_ms / 1000.0,
        target_utilization=target_utilization,
        scale_down_delay_s=spec.coldStartSeconds,
        capacity_rps=capacity,
    )
