"""The slo policy: hold without data, breach emergencies, look-ahead, slow release, budgets."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from sloscale.autoscale.policies import AutoscalingSpec, Objective, ReplicaState, Snapshot
from sloscale.autoscale.policies.slo import SloParams, SloPolicy, learn_capacity, trend_rps_per_s

SPEC = AutoscalingSpec(minReplicas=1, maxReplicas=100, objective=Objective("p95", 200.0),
                       interval=15.0, coldStartSeconds=60.0, capacityRpsPerReplica=10.0)


def snap(now: float, rps: float | None, latency_ms: float | None = 100.0,
         pending: float = 0.0) -> Snapshot:
    return Snapshot(now, rps=rps, latency_mean_ms=latency_ms, latency_ms=latency_ms,
                    pending=pending)


@pytest.mark.parametrize(
    ("snapshot", "replicas"),
    [(snap(0.0, None), ReplicaState(5, 5)), (snap(0.0, 10.0, None), ReplicaState(7, 7))],
)
def test_no_data_holds_never_zero(snapshot: Snapshot, replicas: ReplicaState) -> None:
    decision = SloPolicy().decide(snapshot, replicas, SPEC, 0.0)
    assert decision.desired_replicas == replicas.current
    assert "no metrics" in decision.reason


@pytest.mark.parametrize(
    ("rps", "expected"),
    [(40.0, 5), (80.0, 10), (8.0, 3)],  # ceil(rps / (10 * 0.8)); 8 rps: one pod down at most
)
def test_steady_demand_sets_replicas_at_target_utilization(rps: float, expected: int) -> None:
    policy = SloPolicy()
    policy.state.started = -1e9
    current = 4
    policy.state.demand = [(t, rps) for t in (-200.0, -100.0)]  # a calm past at this rate
    # 190 ms: neither healthy nor breached, so the profile's capacity (10 rps) stays as it is
    decision = policy.decide(snap(0.0, rps, latency_ms=190.0), ReplicaState(current, current),
                             SPEC, 0.0)
    assert decision.desired_replicas == expected


@pytest.mark.parametrize(
    ("capacity", "latency_ms", "expected"),
    [
        (None, 900.0, 18),  # no model: (900/200)^2 clamped to 3x the 6 ready pods
        (None, 210.0, 8),  # a mild breach: at least 1.2x -> ceil(7.2)
        (10.0, 900.0, 6),  # the model needs ceil(30 / 8) = 4: the emergency stops at 1.5x that
        (1.0, 900.0, 38),  # the model needs ceil(30 / 0.8) = 38, more than 3x ready: it wins
    ],
)
def test_breach_is_an_emergency(capacity: float | None, latency_ms: float, expected: int) -> None:
    spec = replace(SPEC, capacityRpsPerReplica=capacity)
    decision = SloPolicy().decide(snap(0.0, 30.0, latency_ms=latency_ms), ReplicaState(6, 6),
                                  spec, 0.0)
    assert decision.desired_replicas == expected
    assert decision.reason.startswith("breach") == (expected > 6)


def test_breach_does_not_stack_on_pods_already_starting() -> None:
    replicas = ReplicaState(current=18, ready=6, starting=12)
    decision = SloPolicy().decide(snap(0.0, 30.0, latency_ms=900.0), replicas, SPEC, 0.0)
    assert decision.desired_replicas == 18


def test_rising_demand_is_provisioned_a_cold_start_ahead() -> None:
    policy = SloPolicy()
    desired = 0
    for step, rps in enumerate([40.0, 50.0, 60.0, 70.0]):
        now = 15.0 * step
        desired = policy.decide(snap(now, rps), ReplicaState(9, 9), SPEC, now).desired_replicas
    # slope 2/3 rps per s over the horizon 75 s adds 50 rps, capped at half the demand (35):
    # 105 rps at 8 per replica -> 14 replicas (70 rps alone would need 9)
    assert desired == 14


def test_scale_down_waits_for_the_peak_to_pass_then_steps() -> None:
    policy = SloPolicy()
    current, history = 20, []
    for step in range(40):
        now = 15.0 * step
        rps = 160.0 if step < 2 else 20.0
        current = policy.decide(snap(now, rps), ReplicaState(current, current), SPEC,
                                now).desired_replicas
        history.append(current)
    assert history[:9] == [20] * 9  # the 160 rps peak (20 pods) is inside the 120 s window
    drops = [a - b for a, b in zip(history, history[1:], strict=False) if b < a]
    assert drops and max(drops) <= 1  # 5% of 20 per decision at most
    assert history[-1] == 3  # ceil(20 / 8)


def test_unschedulable_pods_are_not_asked_for_again() -> None:
    policy = SloPolicy()
    replicas = ReplicaState(current=12, ready=8, starting=0, pending=4)
    busy = 190.0  # neither healthy nor breached: capacity stays at the profile's 10 rps
    decision = policy.decide(snap(0.0, 200.0, busy), replicas, SPEC, 0.0)
    assert decision.desired_replicas == 8
    later = policy.decide(snap(15.0, 200.0, busy), ReplicaState(8, 8), SPEC, 15.0)
    assert later.desired_replicas == 8  # still within the back-off
    probe = policy.decide(snap(400.0, 200.0, busy), ReplicaState(8, 8), SPEC, 400.0)
    assert probe.desired_replicas == 25


@pytest.mark.parametrize(
    ("capacity", "load", "latency", "backlog", "expected"),
    [
        (10.0, 12.0, 100.0, False, 12.0),  # healthy at 12/replica: capacity is at least 12
        (10.0, 9.0, 300.0, False, 9.0 * 0.95),  # breach at 9: below 9
        (10.0, 2.0, 300.0, False, 8.0),  # one breach cuts at most 20%
        (10.0, 8.0, 300.0, True, 10.0),  # a backlog explains the breach: learn nothing
        (None, 6.0, 100.0, False, 6.0),
        (10.0, 9.0, 190.0, False, 10.0),  # neither healthy nor breached
    ],
)
def test_learn_capacity(capacity: float | None, load: float, latency: float, backlog: bool,
                        expected: float) -> None:
    learned = learn_capacity(capacity, load, latency, 200.0, backlog, SloParams())
    assert learned == pytest.approx(expected)


def test_learns_capacity_without_a_profile() -> None:
    spec = AutoscalingSpec(objective=Objective("p95", 200.0), capacityRpsPerReplica=None)
    policy = SloPolicy()
    policy.decide(snap(0.0, 50.0, latency_ms=100.0), ReplicaState(5, 5), spec, 0.0)
    policy.decide(snap(30.0, 50.0, latency_ms=100.0), ReplicaState(5, 5), spec, 30.0)
    assert policy.state.capacity_rps == pytest.approx(10.0)


@pytest.mark.parametrize(("values", "slope"), [([1, 2, 3, 4], 1.0), ([5, 5, 5], 0.0),
                                               ([3, 2, 1], -1.0), ([1, 2], 0.0)])
def test_trend(values: list[float], slope: float) -> None:
    assert trend_rps_per_s([(float(t), v) for t, v in enumerate(values)]) == pytest.approx(slope)


def test_state_copy_replays_the_same_decisions() -> None:
    policy = SloPolicy()
    for step in range(5):
        policy.decide(snap(15.0 * step, 30.0 + step), ReplicaState(5, 5), SPEC, 15.0 * step)
    twin = SloPolicy(state=copy.deepcopy(policy.state))
    for step in range(5, 12):
        now, snapshot = 15.0 * step, snap(15.0 * step, 60.0 - step, latency_ms=50.0 * step)
        assert (policy.decide(snapshot, ReplicaState(6, 6), SPEC, now)
                == twin.decide(snapshot, ReplicaState(6, 6), SPEC, now))


def test_breach_soon_after_a_scale_down_widens_the_scale_down_window() -> None:
    policy = SloPolicy()
    current = 20
    for step in range(12):  # calm at 40 rps: steps down after the 120 s window
        now = 15.0 * step
        current = policy.decide(snap(now, 40.0), ReplicaState(current, current), SPEC,
                                now).desired_replicas
    assert current < 20 and policy.state.last_scale_down is not None
    policy.decide(snap(180.0, 40.0, latency_ms=400.0), ReplicaState(current, current), SPEC,
                  180.0)
    assert policy.state.down_window_s == 240.0
    for step in range(13, 200):  # a long calm spell halves it back to the spec's
        now = 15.0 * step
        current = policy.decide(snap(now, 40.0), ReplicaState(current, current), SPEC,
                                now).desired_replicas
    assert policy.state.down_window_s == 120.0
