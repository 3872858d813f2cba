"""The `hpa` baseline: NVIDIA's queue:compute ratio per pod, worked by hand."""

from __future__ import annotations

import pytest

from sloscale.autoscale.policies import AutoscalingSpec, Objective, ReplicaState, Snapshot
from sloscale.autoscale.policies.hpa import HpaPolicy, queue_compute_ratio

SPEC = AutoscalingSpec(minReplicas=1, maxReplicas=100, objective=Objective("p95", 200.0))


def snap(rps: float | None, mean_ms: float | None = None, queue_ms: float | None = None,
         time: float = 0.0) -> Snapshot:
    return Snapshot(time, rps=rps, latency_mean_ms=mean_ms, queue_ms=queue_ms)


@pytest.mark.parametrize(
    ("snapshot", "ready", "expected"),
    [
        (snap(40.0, 150.0, 50.0), 4, 0.5),  # 50 ms queued / 100 ms computing
        (snap(40.0, 200.0, 100.0), 2, 1.0),  # the guide's target
        (snap(40.0, 60.0, 0.0), 4, 0.0),
        (snap(0.0), 4, 0.0),  # idle pods: counters did not move, 0 / clamp_min(0, 1)
        (snap(None), 4, None),  # no scrape yet
        (snap(40.0), 4, None),  # requests but no latency data
    ],
)
def test_queue_compute_ratio(snapshot: Snapshot, ready: int, expected: float | None) -> None:
    assert queue_compute_ratio(snapshot, ready) == pytest.approx(expected)


def test_a_request_that_only_queued_hits_the_rule_s_clamp() -> None:
    # compute 0 ms: the rule divides by clamp_min(0, 1) us/s, the queue's us/s stays.
    ratio = queue_compute_ratio(snap(10.0, 50.0, 50.0), 1)
    assert ratio == pytest.approx(50.0 * 1000.0 * 10.0)


@pytest.mark.parametrize(
    ("replicas", "ratio", "expected"),
    [
        (ReplicaState(2, 2), 3.0, 6),  # ceil(3 * 2), allowed by max(2 + 4, 2 * 2)
        (ReplicaState(2, 2), 1.08, 2),  # tolerance
        (ReplicaState(8, 8), 0.5, 4),  # first recommendation: nothing to stabilize on
        # 4 pods still loading their model report no metric: on a scale-up they count 0, so
        # (2 * 3) / 6 = 1.0 and the HPA waits for them instead of asking for 6 more.
        (ReplicaState(6, 2, starting=4), 3.0, 6),
        (ReplicaState(3, 0, starting=3), 3.0, 3),  # nobody reports: hold
    ],
)
def test_hpa_decides_on_the_ratio(replicas: ReplicaState, ratio: float, expected: int) -> None:
    snapshot = snap(10.0, 100.0 * (1 + ratio), 100.0 * ratio)  # compute 100 ms
    decision = HpaPolicy().decide(snapshot, replicas, SPEC, 0.0)
    assert decision.desired_replicas == expected


def test_hpa_scale_up_is_rate_limited_then_scale_down_waits_300s() -> None:
    policy, current, seen = HpaPolicy(), 2, []
    high, low = snap(10.0, 500.0, 400.0), snap(10.0, 101.0, 1.0)  # ratio 4, then 0.01
    for now, snapshot in [(0.0, high), (15.0, high), (30.0, low), (45.0, low), (310.0, low),
                          (316.0, low)]:
        current = policy.decide(snapshot, ReplicaState(current, current), SPEC, now) \
            .desired_replicas
        seen.append(current)
    # 2 -> 6 (4 pods per 15 s) -> 12 (100% per 15 s; the recommendation was ceil(4 * 6) = 24);
    # low ratios then recommend 1, but the 300 s window keeps the 24 of t=15 s (so 12 stays)
    # until it is older than 300 s.
    assert seen == [6, 12, 12, 12, 12, 1]


def test_hpa_holds_without_data() -> None:
    decision = HpaPolicy().decide(snap(None), ReplicaState(5, 5), SPEC, 0.0)
    assert decision.desired_replicas == 5
    assert "holding" in decision.reason


def test_hpa_rejects_bad_target() -> None:
    with pytest.raises(ValueError, match="target_ratio"):
        HpaPolicy(target_ratio=0.0)
