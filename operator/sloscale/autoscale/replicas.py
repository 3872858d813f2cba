"""What a service's pods say about its capacity: ready, starting, unschedulable (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sloscale.autoscale.policies.base import ReplicaState


@dataclass(frozen=True)
class PodCensus:
    """The replica state the policy reads, plus the scheduler's words when pods cannot fit."""

    state: ReplicaState
    unschedulable_message: str | None = None


def _condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def _is_true(condition: Mapping[str, Any] | None) -> bool:
    return condition is not None and condition.get("status") == "True"


def census(desired: int, pods: Iterable[Mapping[str, Any]]) -> PodCensus:
    """Count the pods of one Deployment; terminating pods are not capacity any more."""
    ready = starting = pending = 0
    message = None
    for pod in pods:
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        scheduled = _condition(pod, "PodScheduled")
        if scheduled is not None and scheduled.get("status") == "False":
            if scheduled.get("reason") == "Unschedulable":
                pending += 1
                message = message or scheduled.get("message")
            else:
                starting += 1
        elif _is_true(_condition(pod, "Ready")):
            ready += 1
        else:
            starting += 1
    return PodCensus(ReplicaState(desired, ready, starting, pending), message)
