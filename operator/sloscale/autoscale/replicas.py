"""What a service's pods say about its capacity: ready, starting, unschedulable (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
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


def _metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    return {k: meta[k] for k in ("name", "namespace", "labels", "deletionTimestamp") if k in meta}


def census_fields(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A pod reduced to what `census` reads (the loop holds every pod of every service)."""
    status = pod.get("status", {}) or {}
    conditions = [c for c in status.get("conditions") or []
                  if c.get("type") in ("PodScheduled", "Ready")]
    return {"metadata": _metadata(pod),
            "status": {"phase": status.get("phase"), "conditions": conditions}}


def replicas_fields(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """A Deployment reduced to what the loop reads: who it is and its replicas."""
    return {"metadata": _metadata(deployment),
            "spec": {"replicas": (deployment.get("spec", {}) or {}).get("replicas")}}


def census(desired: int, pods: Iterable[Mapping[str, Any]]) -> PodCensus:
    """Count the pods of one Deployment; terminating pods are not capacity any more."""
    pods = list(pods)
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
    state = ReplicaState(desired, ready, starting, pending)
    return PodCensus(replace(state, cold_start_s=cold_start_p90(pods)), message)


def _since(start: Mapping[str, Any] | None, end: Mapping[str, Any] | None) -> float | None:
    try:
        begin = datetime.fromisoformat(str(start["lastTransitionTime"]))  # type: ignore[index]
        done = datetime.fromisoformat(str(end["lastTransitionTime"]))  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None
    seconds = (done - begin).total_seconds()
    return seconds if seconds >= 0 else None


def cold_starts_s(pods: Iterable[Mapping[str, Any]]) -> list[float]:
    """Seconds from scheduled to Ready of each Ready pod that tells it, in the pods' order."""
    return [
        s for pod in pods
        if _is_true(ready := _condition(pod, "Ready"))
        and _is_true(scheduled := _condition(pod, "PodScheduled"))
        and (s := _since(scheduled, ready)) is not None
    ]


def cold_start_p90(pods: Iterable[Mapping[str, Any]]) -> float | None:
    """p90 of scheduled -> Ready over the Ready pods (None when none tells it): the cold start
    the service really has, which the slo policy plans with."""
    seconds = sorted(cold_starts_s(pods))
    if not seconds:
        return None
    return seconds[min(len(seconds) - 1, math.ceil(0.9 * len(seconds)) - 1)]
