"""The slo policy: no data holds, breaches, demand level, look-ahead, release, budgets."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from sloscale.autoscale.policies import AutoscalingSpec, Objective, ReplicaState, Snapshot
from sloscale.autoscale.policies.slo import (
    SloParams,
    SloPolicy,
    learn_capacity,
    level_at,
    trend_rps_per_s,
)

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
    # ceil(rps / (10 * 0.7)); 8 rps needs 2, but a step down is at most max(1, 5% of 4)
    [(40.0, 6), (80.0, 12), (8.0, 3)],
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
        # A mild breach without a model teaches one (capacity below 30/6 * 0.95 = 4.75 rps),
        # which then asks ceil(30 / (4.75 * 0.7)) = 10.
        (None, 210.0, 10),
        (10.0, 900.0, 6),  # the model needs ceil(30 / 7) = 5: no multiplier on top of it
        (1.0, 900.0, 43),  # the model needs ceil(30 / 0.7) = 43: it wins
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


@pytest.mark.parametrize(
    ("latency_ms", "expected"),
    [
        (100.0, 5),  # no breach: the level, mean of 30 x5 and 60 = 35 rps -> ceil(35 / 7)
        (300.0, 9),  # a breach: the latest window, 60 rps -> ceil(60 / 7)
    ],
)
def test_a_breach_reads_the_latest_window_not_the_level(latency_ms: float, expected: int) -> None:
    policy = SloPolicy(params=SloParams(trend_confidence_z=100.0))  # no trend: the level alone
    for step in range(5):
        policy.decide(snap(15.0 * step, 30.0), ReplicaState(5, 5), SPEC, 15.0 * step)
    decision = policy.decide(snap(75.0, 60.0, latency_ms), ReplicaState(5, 5), SPEC, 75.0)
    assert decision.desired_replicas == expected


def test_noise_on_a_steady_load_does_not_move_the_fleet() -> None:
    policy, current, history = SloPolicy(), 9, []
    for step in range(30):
        now = 15.0 * step
        rps = 50.0 if step % 2 else 70.0  # 60 rps on average
        current = policy.decide(snap(now, rps), ReplicaState(current, current), SPEC,
                                now).desired_replicas
        history.append(current)
    # The first window (70 rps alone) asks for 10; once the level (90 s) holds the 50s too,
    # it is 60 rps: ceil(60 / 7) = 9, and the 70 rps windows no longer add a pod.
    assert history[0] == 10
    assert set(history[12:]) == {9}


def test_rising_demand_is_provisioned_a_cold_start_ahead() -> None:
    policy = SloPolicy()
    desired = 0
    for step, rps in enumerate([40.0, 50.0, 60.0, 70.0]):
        now = 15.0 * step
        desired = policy.decide(snap(now, rps), ReplicaState(9, 9), SPEC, now).desired_replicas
    # A clean line: slope 2/3 rps per s. The level is the mean (55) moved along the slope from
    # the samples' mean time (22.5 s ago) = 70 rps; the horizon (75 s) adds 50 rps, capped at
    # 20% of the level (14): 84 rps at 7 per replica -> 12 (70 rps alone would need 10).
    assert desired == 12


def test_scale_down_waits_for_the_peak_to_pass_then_steps() -> None:
    policy = SloPolicy()
    current, history = 23, []
    for step in range(40):
        now = 15.0 * step
        rps = 160.0 if step < 2 else 20.0
        current = policy.decide(snap(now, rps), ReplicaState(current, current), SPEC,
                                now).desired_replicas
        history.append(current)
    # 160 rps needs ceil(160 / 7) = 23; its level (t = 15 s) stays in the 120 s window
    # through t = 120 s (step 8), so nothing is released before step 9.
    assert history[:9] == [23] * 9
    steps_down = [(a, b) for a, b in zip(history, history[1:], strict=False) if b < a]
    assert steps_down and all(a - b <= max(1, int(0.05 * a)) for a, b in steps_down)
    assert history[9] == 22  # the window's peak level is now 113 rps (17), the step 5% (1)
    assert history[-1] == 3  # ceil(20 / 7)


def test_unschedulable_pods_are_not_asked_for_again() -> None:
    policy = SloPolicy()
    replicas = ReplicaState(current=12, ready=8, starting=0, pending=4)
    busy = 190.0  # neither healthy nor breached: capacity stays at the profile's 10 rps
    decision = policy.decide(snap(0.0, 200.0, busy), replicas, SPEC, 0.0)
    assert decision.desired_replicas == 8
    later = policy.decide(snap(15.0, 200.0, busy), ReplicaState(8, 8), SPEC, 15.0)
    assert later.desired_replicas == 8  # still within the back-off
    probe = policy.decide(snap(400.0, 200.0, busy), ReplicaState(8, 8), SPEC, 400.0)
    assert probe.desired_replicas == 29  # ceil(200 / 7)


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
    spec = AutoscalingSpec(maxReplicas=100, objective=Objective("p95", 200.0),
                           capacityRpsPerReplica=None)
    policy = SloPolicy()
    policy.decide(snap(0.0, 50.0, latency_ms=100.0), ReplicaState(5, 5), spec, 0.0)
    policy.decide(snap(30.0, 50.0, latency_ms=100.0), ReplicaState(5, 5), spec, 30.0)
    assert policy.state.capacity_rps == pytest.approx(10.0)


@pytest.mark.parametrize(("values", "slope"), [([1, 2, 3, 4], 1.0), ([5, 5, 5], 0.0),
                                               ([3, 2, 1], -1.0), ([1, 2], 0.0)])
def test_trend(values: list[float], slope: float) -> None:
    assert trend_rps_per_s([(float(t), v) for t, v in enumerate(values)]) == pytest.approx(slope)


@pytest.mark.parametrize(
    ("values", "slope"),
    [
        ([1, 2, 3, 4, 5], 1.0),  # a clean line: no error to subtract
        ([10, 14, 10, 14, 10, 14], 0.0),  # noise: slope 0.23, standard error 0.48
        ([0, 3, 4, 7, 8, 11], 1.9457),  # a noisy rise: slope 2.0857 less its error 0.1400
    ],
)
def test_trend_counts_only_what_the_noise_cannot_explain(values: list[float],
                                                           slope: float) -> None:
    samples = [(float(t), float(v)) for t, v in enumerate(values)]
    assert trend_rps_per_s(samples, confidence_z=1.0) == pytest.approx(slope, abs=1e-4)


@pytest.mark.parametrize(
    ("slope", "level"),
    [(0.0, 20.0), (1.0, 21.0)],  # mean 20 at the mean time 2 s, 1 s before now (3 s)
)
def test_level_is_the_window_mean_moved_along_the_trend(slope: float, level: float) -> None:
    samples = [(0.0, 99.0), (1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]  # 0 s is out of the window
    assert level_at(samples, 3.0, 2.5, slope) == pytest.approx(level)


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
