"""`make compare`'s pure parts: the real KEDA configured as sloscale's baselines model it."""

from __future__ import annotations

import numpy as np
import pytest

from hack.compare import SYSTEMS, first_scale_up_s, keda_objects, spec_for
from sloscale.autoscale.config import parse_autoscaling
from sloscale.autoscale.policies import make_policy

CAPACITY_RPS = 23.8


@pytest.mark.parametrize("system", [s for s in SYSTEMS if s.keda_metric is not None])
def test_the_scaled_object_has_the_threshold_of_the_policy_that_models_it(system) -> None:  # type: ignore[no-untyped-def]
    spec = parse_autoscaling(spec_for(system, CAPACITY_RPS))
    policy = make_policy(system.policy, spec)
    _, (scaled,) = keda_objects(system, "svc", CAPACITY_RPS, "http://127.0.0.1:9090")
    trigger = scaled["spec"]["triggers"][0]
    modelled = getattr(policy, "threshold_rps", None) or policy.threshold_ms  # type: ignore[attr-defined]
    assert float(trigger["metadata"]["threshold"]) == pytest.approx(modelled, abs=0.01)
    assert trigger["metricType"] == ("AverageValue" if system.keda_metric == "rate" else "Value")
    # No behavior: the HPA's defaults, as the policy's HpaBehavior() models them.
    assert "advanced" not in scaled["spec"]
    assert "scaleDown" not in spec_for(system, CAPACITY_RPS)


@pytest.mark.parametrize(
    ("rates", "t", "desired", "expected"),
    [
        # 5 rps for 30 s, then 50 rps: the 10 s mean passes 23.8 at t = 34 s; up at 40 s.
        ([(30, 5), (30, 50)], [0, 20, 40, 50], [1, 1, 3, 3], 6.0),
        ([(30, 5), (30, 50)], [0, 20, 40], [1, 2, 2], None),  # rose before the burst only
        ([(60, 5)], [0, 30], [1, 2], None),  # no burst
    ],
)
def test_burst_to_first_scale_up(rates, t, desired, expected) -> None:  # type: ignore[no-untyped-def]
    arrivals = np.concatenate(
        [start + np.arange(0, duration, 1.0 / rate) for start, (duration, rate) in
         zip(np.cumsum([0] + [d for d, _ in rates[:-1]]), rates, strict=True)]
    )  # fmt: skip
    got = first_scale_up_s(arrivals, np.asarray(t, float), np.asarray(desired), CAPACITY_RPS)
    assert got == expected
