"""Guards around the policy: missing metrics hold, unschedulable caps, conflicts, recommend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from sloscale.autoscale.conflicts import competing_autoscaler
from sloscale.autoscale.policies.base import (
    AutoscalingSpec,
    Decision,
    ReplicaState,
    Snapshot,
)
from sloscale.autoscale.promql import ServiceMetrics
from sloscale.autoscale.replicas import PodCensus, census, census_fields, replicas_fields
from sloscale.autoscale.tick import decide_tick

SPEC = AutoscalingSpec(minReplicas=1, maxReplicas=10)
FRESH = ServiceMetrics(Snapshot(time=100.0, rps=50.0, latency_ms=80.0), "MetricsFresh", "ok")
MISSING = ServiceMetrics(None, "PrometheusUnavailable", "connection refused")


@dataclass
class WantsFixed:
    """A policy that always asks for the same count: isolates the guards under test."""

    wanted: int
    name: str = "fixed"
    metrics_window_s: float | None = None
    state: object = None

    def decide(self, snapshot, replicas, spec, now):  # type: ignore[no-untyped-def]
        return Decision(self.wanted, f"wants {self.wanted}", {"rps": snapshot.rps})


def _pods(current: int, ready: int, pending: int = 0, message: str | None = None) -> PodCensus:
    return PodCensus(ReplicaState(current, ready, 0, pending), message)


def _conditions(outcome) -> dict[str, tuple[bool, str]]:  # type: ignore[no-untyped-def]
    return {c.type: (c.status, c.reason) for c in outcome.conditions}


@pytest.mark.parametrize(
    ("policy_wants", "metrics", "current", "expected", "reason_part"),
    [
        (6, FRESH, 4, 6, "wants 6"),
        (1, FRESH, 4, 1, "wants 1"),
        (1, MISSING, 4, 4, "hold: PrometheusUnavailable"),  # never shrink without data
        (1, MISSING, 0, 1, "hold"),  # but the spec's minimum still applies
        (20, MISSING, 12, 10, "hold"),  # and so does its maximum
    ],
)
def test_policy_decision_and_hold(policy_wants, metrics, current, expected, reason_part) -> None:  # type: ignore[no-untyped-def]
    outcome = decide_tick(
        WantsFixed(policy_wants), SPEC, "active", metrics, _pods(current, current), None, 100.0
    )
    assert outcome.desired_replicas == expected
    assert reason_part in outcome.reason
    assert _conditions(outcome)["MetricsAvailable"][0] is metrics.available
    assert outcome.write


def test_unschedulable_pods_stop_scale_up_and_say_why() -> None:
    message = "0/5 nodes are available: 4 Insufficient nvidia.com/gpu"
    outcome = decide_tick(
        WantsFixed(9), SPEC, "active", FRESH, _pods(6, 4, pending=2, message=message), None, 1.0
    )
    assert outcome.desired_replicas == 6
    assert _conditions(outcome)["ScalingLimited"] == (True, "Unschedulable")
    assert message in [c.message for c in outcome.conditions]


def test_recently_unschedulable_keeps_saying_so_after_pending_pods_are_gone() -> None:
    note = "0/5 nodes are available: 4 Insufficient nvidia.com/gpu (seen 20s ago)"
    outcome = decide_tick(WantsFixed(4), SPEC, "active", FRESH, _pods(4, 4), None, 1.0, note)
    assert outcome.desired_replicas == 4
    assert _conditions(outcome)["ScalingLimited"] == (True, "Unschedulable")
    assert note in [c.message for c in outcome.conditions]


def test_unschedulable_pods_do_not_block_scale_down() -> None:
    outcome = decide_tick(WantsFixed(3), SPEC, "active", FRESH, _pods(6, 4, pending=2), None, 1.0)
    assert outcome.desired_replicas == 3
    # Even when the policy itself held back, the condition says what limits the service.
    held = decide_tick(WantsFixed(6), SPEC, "active", FRESH, _pods(6, 4, pending=2), None, 1.0)
    assert _conditions(held)["ScalingLimited"] == (True, "Unschedulable")


def test_competing_autoscaler_wins() -> None:
    outcome = decide_tick(
        WantsFixed(9), SPEC, "active", FRESH, _pods(2, 2), "HorizontalPodAutoscaler/web", 1.0
    )
    assert (outcome.desired_replicas, outcome.write) == (2, False)
    assert _conditions(outcome)["AutoscalerConflict"] == (True, "CompetingAutoscaler")


def test_recommend_mode_reports_without_writing() -> None:
    outcome = decide_tick(WantsFixed(7), SPEC, "recommend", FRESH, _pods(2, 2), None, 1.0)
    assert (outcome.desired_replicas, outcome.write, outcome.changes_scale) == (7, False, False)


def _pod(phase: str = "Running", ready: bool = True, scheduled: str | None = None, **meta):  # type: ignore[no-untyped-def]
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if scheduled is not None:
        conditions = [
            {"type": "PodScheduled", "status": "False", "reason": scheduled, "message": "no GPU"}
        ]
    return {"metadata": meta, "status": {"phase": phase, "conditions": conditions}}


def test_census_counts_each_kind_of_pod() -> None:
    pods = [
        _pod(),
        _pod(),
        _pod(ready=False),
        _pod("Pending", scheduled="Unschedulable"),
        _pod(deletionTimestamp="2026-11-22T00:00:00Z"),
        _pod("Failed", ready=False),
    ]
    result = census(5, pods)
    assert result.state == ReplicaState(current=5, ready=2, starting=1, pending=1)
    assert result.unschedulable_message == "no GPU"
    # The loop lists pods reduced to census_fields: the count must not change.
    assert census(5, [census_fields(p) for p in pods]) == result


def _timed_pod(scheduled_at: str, ready_at: str | None) -> dict:
    conditions = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": scheduled_at}]
    if ready_at is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": ready_at})
    return {"metadata": {}, "status": {"phase": "Running", "conditions": conditions}}


def test_census_measures_the_cold_start_from_the_ready_pods() -> None:
    pods = [_timed_pod("2026-12-02T10:00:00Z", f"2026-12-02T10:00:{seconds:02d}Z")
            for seconds in (30, 40, 45, 50)] + [_timed_pod("2026-12-02T10:00:00Z", None)]
    # p90 of 30, 40, 45, 50 s (nearest rank): 50; the pod not Ready yet tells nothing
    state = census(5, [census_fields(p) for p in pods]).state
    assert state.cold_start_s == 50.0
    assert census(1, [_pod()]).state.cold_start_s is None  # no times: unknown, not 0


def test_reduced_objects_keep_identity_and_drop_the_rest() -> None:
    pod = _pod(deletionTimestamp="2026-11-22T00:00:00Z")
    pod["spec"] = {"containers": [{"name": "triton", "image": "x" * 1000}]}
    pod["metadata"]["managedFields"] = [{"manager": "kubelet"}]
    reduced = census_fields(pod)
    assert "spec" not in reduced and "managedFields" not in reduced["metadata"]
    assert reduced["metadata"]["deletionTimestamp"] == "2026-11-22T00:00:00Z"
    deployment = {"metadata": {"name": "a", "namespace": "n", "labels": {"l": "a"},
                               "annotations": {"big": "y" * 1000}},
                  "spec": {"replicas": 3, "template": {}}, "status": {"readyReplicas": 2}}
    assert replicas_fields(deployment) == {
        "metadata": {"name": "a", "namespace": "n", "labels": {"l": "a"}},
        "spec": {"replicas": 3}}


def test_first_decisions_of_services_created_together_are_spread() -> None:
    from sloscale.autoscale.loop import first_due
    from sloscale.autoscale.promql import ServiceKey

    keys = [ServiceKey("ns", f"svc-{i:04d}") for i in range(1000)]
    offsets = [first_due(k, 15.0, 5.0, 1000.0) - 1000.0 for k in keys]
    assert set(offsets) == {0.0, 5.0, 10.0}  # every slot of one interval, none later
    assert max(offsets.count(o) for o in set(offsets)) < 400  # about a third each
    assert first_due(keys[0], 15.0, 5.0, 1000.0) == first_due(keys[0], 15.0, 5.0, 1000.0)
    assert first_due(keys[0], 3.0, 5.0, 1000.0) == 1000.0  # interval below a tick: at once


@pytest.mark.parametrize(
    ("hpas", "scaled", "expected"),
    [
        ([], [], None),
        (
            [
                {
                    "metadata": {"name": "h"},
                    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}},
                }
            ],
            [],
            "HorizontalPodAutoscaler/h",
        ),
        (
            [
                {
                    "metadata": {"name": "h"},
                    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "other"}},
                }
            ],
            [],
            None,
        ),
        (
            [
                {
                    "metadata": {"name": "h"},
                    "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "web"}},
                }
            ],
            [],
            None,
        ),
        (
            [],
            [{"metadata": {"name": "so"}, "spec": {"scaleTargetRef": {"name": "web"}}}],
            "ScaledObject/so",
        ),
    ],
)
def test_competing_autoscaler_detection(hpas, scaled, expected) -> None:  # type: ignore[no-untyped-def]
    assert competing_autoscaler("web", hpas, scaled) == expected


def test_operator_metrics_expose_decisions_and_replicas() -> None:
    from prometheus_client import generate_latest

    from sloscale.autoscale.promql import ServiceKey
    from sloscale.autoscale.telemetry import AutoscalerMetrics, reason_kind

    metrics = AutoscalerMetrics()
    key = ServiceKey("prod", "bert")
    outcome = decide_tick(WantsFixed(6), SPEC, "active", FRESH, _pods(4, 4), None, 100.0)
    metrics.record(key, outcome, 80.0, 250.0, ready_replicas=3)
    page = generate_latest(metrics.registry).decode()
    labels = 'inferenceservice="bert",namespace="prod"'
    assert f"sloscale_desired_replicas{{{labels}}} 6.0" in page
    assert f"sloscale_current_replicas{{{labels}}} 4.0" in page
    assert f"sloscale_ready_replicas{{{labels}}} 3.0" in page
    assert f"sloscale_metrics_available{{{labels}}} 1.0" in page
    assert f"sloscale_observed_latency_ms{{{labels}}} 80.0" in page
    metrics.record(key, outcome, None, 250.0)  # metrics gone: no stale latency left behind
    assert "sloscale_observed_latency_ms{" not in generate_latest(metrics.registry).decode()
    assert f'sloscale_autoscaler_decisions_total{{{labels},reason="wants"}} 1.0' in page
    metrics.forget(key)
    assert "sloscale_desired_replicas{" not in generate_latest(metrics.registry).decode()
    assert reason_kind("hold: PrometheusUnavailable") == "hold"


def test_status_is_rewritten_only_when_something_an_sre_reads_changed() -> None:
    from sloscale.autoscale.status import write_cause

    outcome = decide_tick(WantsFixed(4), SPEC, "active", FRESH, _pods(4, 4), None, 100.0)
    conditions = [{"type": c.type, "status": "True" if c.status else "False", "reason": c.reason}
                  for c in outcome.conditions]
    written = {
        "desiredReplicas": 4,
        "decisions": [{"to": 4}],
        "lastDecision": {"time": "2026-11-22T07:00:00Z"},
        "observed": {"rps": 50},
    }
    service = {"status": {"autoscaling": written, "conditions": conditions}}
    now = datetime(2026, 11, 22, 7, 0, 30, tzinfo=UTC).timestamp()
    fresh = {**written, "observed": {"rps": 51}}
    assert write_cause(service, fresh, outcome, now) is None  # only numbers moved, 30 s old
    assert write_cause(service, fresh, outcome, now + 31) is None  # a minute old, within 5 %
    moved = {**written, "observed": {"rps": 60}}
    assert write_cause(service, moved, outcome, now) is None  # moved, but only 30 s old
    assert write_cause(service, moved, outcome, now + 31) == "observed"  # old and moved
    assert write_cause(service, {**written, "observed": {"rps": 50, "latencyMs": 9}}, outcome,
                       now + 31) == "observed"  # a figure that was missing
    pruned = {**written, "observed": {"rps": 50, "available": True, "time": "t"}}
    assert write_cause(service, pruned, outcome, now + 31) is None  # the CRD drops those
    assert write_cause(service, {**fresh, "desiredReplicas": 5}, outcome, now) == (
        "desiredReplicas")
    assert write_cause(service, {**fresh, "decisions": []}, outcome, now) == "decisions"
    blind = decide_tick(WantsFixed(4), SPEC, "active", MISSING, _pods(4, 4), None, 100.0)
    assert write_cause(service, fresh, blind, now) == "condition:MetricsAvailable"
    unwritten = {"status": {"autoscaling": {**written, "lastDecision": {}},
                            "conditions": conditions}}
    assert write_cause(unwritten, fresh, outcome, now) == "first"


def test_slow_ticks_do_not_herd_services_into_one_tick() -> None:
    """Ticks come late after a heavy one; each service must keep its own slot anyway."""
    import random

    from sloscale.autoscale.loop import first_due, next_due
    from sloscale.autoscale.promql import ServiceKey

    rng = random.Random(0)
    keys = [ServiceKey("ns", f"svc-{i:04d}") for i in range(1000)]
    due_at = {k: first_due(k, 15.0, 5.0, 0.0) for k in keys}
    now, per_tick = 0.0, []
    for _ in range(200):
        due = [k for k in keys if now >= due_at[k] - 0.5]
        for key in due:
            due_at[key] = next_due(due_at[key], 15.0, now)
        per_tick.append(len(due))
        now += rng.choice([5.0, 5.0, 5.0, 6.5, 0.1, 4.6])  # a late tick, a catch-up tick
    assert sum(per_tick) > 1000 * 200 * 5.0 / 15.0 * 0.8  # everyone keeps deciding
    assert max(per_tick[20:]) < 700, max(per_tick[20:])  # no tick takes (nearly) everyone


def test_next_due_keeps_the_grid_and_skips_what_was_missed() -> None:
    from sloscale.autoscale.loop import next_due

    assert next_due(100.0, 15.0, 101.3) == 115.0  # decided a bit late: the grid stays
    assert next_due(100.0, 15.0, 130.0) == 145.0  # far behind: start again from now
