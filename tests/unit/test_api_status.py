"""Pure status: conditions from the observed Deployment, with the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sloscale.api.status import Observed, Problem, compute_status, desired_conditions

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 12, 5, 0, tzinfo=UTC)


def deployment(desired: int, ready: int, updated: int | None = None, total: int | None = None,
               generation: int = 2, seen: int = 2, stalled: bool = False) -> dict[str, Any]:
    conditions = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}] if stalled else []
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": desired},
        "status": {"observedGeneration": seen, "readyReplicas": ready, "availableReplicas": ready,
                   "updatedReplicas": desired if updated is None else updated,
                   "replicas": desired if total is None else total, "conditions": conditions},
    }


def summary(observed: Observed) -> dict[str, tuple[bool, str]]:
    return {kind: (ok, reason) for kind, ok, reason, _ in desired_conditions(observed)}


@pytest.mark.parametrize(
    ("observed", "ready", "available", "progressing"),
    [
        (Observed(1, None), (False, "Creating"), (False, "NoDeployment"), (True, "Creating")),
        (Observed(1, None, Problem("SecretNotFound", "no secret")),
         (False, "SecretNotFound"), (False, "NoDeployment"), (False, "SecretNotFound")),
        (Observed(2, deployment(2, 2)), (True, "AllReplicasReady"),
         (True, "MinimumReplicasAvailable"), (False, "RolloutComplete")),
        (Observed(2, deployment(2, 1)), (False, "RollingOut"),
         (True, "MinimumReplicasAvailable"), (True, "RollingOut")),
        (Observed(2, deployment(2, 0)), (False, "RollingOut"),
         (False, "NoReplicasAvailable"), (True, "RollingOut")),
        (Observed(2, deployment(2, 2, seen=1)), (False, "RollingOut"),
         (True, "MinimumReplicasAvailable"), (True, "RollingOut")),
        (Observed(2, deployment(2, 2, total=3)), (False, "RollingOut"),
         (True, "MinimumReplicasAvailable"), (True, "RollingOut")),
        (Observed(2, deployment(0, 0)), (True, "ScaledToZero"),
         (True, "MinimumReplicasAvailable"), (False, "RolloutComplete")),
        (Observed(2, deployment(2, 1, stalled=True)), (False, "ProgressDeadlineExceeded"),
         (True, "MinimumReplicasAvailable"), (False, "ProgressDeadlineExceeded")),
        (Observed(2, deployment(2, 2), Problem("RenderFailed", "bad template")),
         (False, "RenderFailed"), (True, "MinimumReplicasAvailable"), (False, "RenderFailed")),
    ],
)
def test_conditions(observed: Observed, ready: tuple[bool, str], available: tuple[bool, str],
                    progressing: tuple[bool, str]) -> None:
    assert summary(observed) == {"Ready": ready, "Available": available,
                                 "Progressing": progressing}


def test_transition_time_moves_only_on_flip() -> None:
    first = compute_status(Observed(1, deployment(2, 1)), {}, "sel", "url", 2, T0)
    same = compute_status(Observed(1, deployment(2, 1)), first, "sel", "url", 2, T1)
    flipped = compute_status(Observed(1, deployment(2, 2)), same, "sel", "url", 2, T1)
    times = {c["type"]: c["lastTransitionTime"] for c in same["conditions"]}
    assert times == {"Ready": "2026-01-01T12:00:00Z", "Available": "2026-01-01T12:00:00Z",
                     "Progressing": "2026-01-01T12:00:00Z"}
    flipped_times = {c["type"]: c["lastTransitionTime"] for c in flipped["conditions"]}
    assert flipped_times["Ready"] == "2026-01-01T12:05:00Z"
    assert flipped_times["Available"] == "2026-01-01T12:00:00Z"


def test_status_fields_and_foreign_conditions_kept() -> None:
    foreign = {"type": "MetricsAvailable", "status": "True", "reason": "Scraped",
               "lastTransitionTime": "2025-12-31T00:00:00Z"}
    status = compute_status(Observed(4, deployment(3, 2)), {"conditions": [foreign]},
                            "a=b", "http://x", 3, T0)
    assert (status["observedGeneration"], status["replicas"], status["readyReplicas"],
            status["desiredReplicas"], status["selector"], status["url"]) == (
        4, 3, 2, 3, "a=b", "http://x")
    assert foreign in status["conditions"]
    assert all(c["observedGeneration"] == 4 for c in status["conditions"][:3])
