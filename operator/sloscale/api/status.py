"""Pure status: conditions and replica counts from the observed Deployment, clock passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

Condition = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """Something only the operator can see (bad spec, missing Secret, template failure)."""

    reason: str
    message: str


@dataclass(frozen=True)
class Observed:
    generation: int
    deployment: dict[str, Any] | None
    problem: Problem | None = None


def _rollout(deployment: dict[str, Any]) -> tuple[int, int, int, bool]:
    """(desired, ready, available, done) of a Deployment as the API reports it."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {}) or {}
    desired = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0) or 0)
    available = int(status.get("availableReplicas", 0) or 0)
    updated = int(status.get("updatedReplicas", 0) or 0)
    total = int(status.get("replicas", 0) or 0)
    seen = int(status.get("observedGeneration", 0) or 0) >= int(
        deployment.get("metadata", {}).get("generation", 0) or 0
    )
    done = seen and updated == desired and total == desired and available == desired
    return desired, ready, available, done


def _deadline_exceeded(deployment: dict[str, Any]) -> bool:
    for condition in (deployment.get("status", {}) or {}).get("conditions", []) or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == (
            "ProgressDeadlineExceeded"
        ):
            return True
    return False


def desired_conditions(observed: Observed) -> list[tuple[str, bool, str, str]]:
    """(type, status, reason, message) for Ready, Available and Progressing."""
    dep, problem = observed.deployment, observed.problem
    if dep is None:
        reason, message = (problem.reason, problem.message) if problem else (
            "Creating", "the Deployment does not exist yet")
        return [("Ready", False, reason, message),
                ("Available", False, "NoDeployment", "the Deployment does not exist"),
                ("Progressing", problem is None, reason, message)]
    desired, ready, available, done = _rollout(dep)
    is_available = available >= 1 or desired == 0
    avail = ("Available", is_available,
             "MinimumReplicasAvailable" if is_available else "NoReplicasAvailable",
             f"{available}/{desired} replicas available")
    if problem is not None:
        return [("Ready", False, problem.reason, problem.message), avail,
                ("Progressing", False, problem.reason, problem.message)]
    if _deadline_exceeded(dep):
        message = f"rollout stalled with {ready}/{desired} replicas ready"
        return [("Ready", False, "ProgressDeadlineExceeded", message), avail,
                ("Progressing", False, "ProgressDeadlineExceeded", message)]
    if not done:
        message = f"rolling out: {ready}/{desired} replicas ready"
        return [("Ready", False, "RollingOut", message), avail,
                ("Progressing", True, "RollingOut", message)]
    ready_reason = "ScaledToZero" if desired == 0 else "AllReplicasReady"
    return [("Ready", True, ready_reason, f"{ready}/{desired} replicas ready"), avail,
            ("Progressing", False, "RolloutComplete", "the latest spec is rolled out")]


# The controller's conditions, then the autoscaler's; any other after them, as found.
CONDITION_ORDER = {kind: rank for rank, kind in enumerate(
    ("Ready", "Available", "Progressing", "MetricsAvailable", "AutoscalerConflict",
     "ScalingLimited"))}


def merge_conditions(
    previous: list[Condition], wanted: list[tuple[str, bool, str, str]], generation: int,
    now: datetime,
) -> list[Condition]:
    """New condition list; lastTransitionTime moves only when a status flips."""
    before = {c.get("type"): c for c in previous if isinstance(c, dict)}
    merged = []
    for kind, ok, reason, message in wanted:
        status = "True" if ok else "False"
        old = before.pop(kind, None)
        changed = old is None or old.get("status") != status
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ") if changed else old["lastTransitionTime"]
        merged.append({"type": kind, "status": status, "reason": reason, "message": message,
                       "observedGeneration": generation, "lastTransitionTime": stamp})
    # Conditions others own (MetricsAvailable, ScalingLimited from the autoscaler) stay.
    merged += [c for c in before.values() if c.get("lastTransitionTime")]
    # One order whoever writes: with each writer's own first, the controller and the
    # autoscaler each found the other's list "changed" and rewrote it in its own order.
    return sorted(merged, key=lambda c: CONDITION_ORDER.get(c.get("type"), len(CONDITION_ORDER)))


def compute_status(
    observed: Observed, previous: dict[str, Any], selector: str, url: str, desired: int,
    now: datetime,
) -> dict[str, Any]:
    """The status subresource's fields the operator owns."""
    dep = observed.deployment or {}
    dep_status = dep.get("status", {}) or {}
    conditions = merge_conditions(
        list(previous.get("conditions", []) or []), desired_conditions(observed),
        observed.generation, now,
    )
    return {
        "observedGeneration": observed.generation,
        "conditions": conditions,
        "replicas": int(dep_status.get("replicas", 0) or 0),
        "readyReplicas": int(dep_status.get("readyReplicas", 0) or 0),
        "desiredReplicas": desired,
        "selector": selector,
        "url": url,
    }
