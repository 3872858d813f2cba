"""status.autoscaling as the loop writes it: what was seen, what was decided (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sloscale.autoscale.promql import ServiceMetrics
from sloscale.autoscale.tick import TickOutcome

DECISION_HISTORY = 10
STATUS_REFRESH_S = 60.0
# Observed figures within this fraction of the written ones are not news.
OBSERVED_TOLERANCE = 0.05
# The figures of status.autoscaling.observed the CRD keeps; the API server prunes the rest
# (time, available, reason), so comparing those would find news on every refresh.
OBSERVED_FIGURES = ("rps", "latencyMs", "queueMs", "pending")


def write_cause(
    service: dict[str, Any], autoscaling: dict[str, Any], outcome: TickOutcome, now: float
) -> str | None:
    """Why this decision's status is news, or None to skip the write: "desiredReplicas",
    "decisions", "condition:<type>", "first" (no decision written yet) or "observed".
    Skipped: writes that would only refresh the observed numbers, up to a minute old, or
    refresh them with figures within 5 % of the written ones.

    With a thousand services a write per decision would be the loop's main cost; what an
    SRE reads (decisions, conditions) is always written at once. A refresh every minute
    regardless was still one write per service a minute (17/s with a thousand) whether
    anything had moved or not, and on a restart it rewrote every service again.
    """
    status = service.get("status") or {}
    previous = status.get("autoscaling") or {}
    for field in ("desiredReplicas", "decisions"):
        if previous.get(field) != autoscaling[field]:
            return field
    seen = {c.get("type"): (c.get("status"), c.get("reason")) for c in status.get("conditions", [])}
    for condition in outcome.conditions:
        wanted = ("True" if condition.status else "False", condition.reason)
        if seen.get(condition.type) != wanted:
            return f"condition:{condition.type}"
    written = (previous.get("lastDecision") or {}).get("time")
    if written is None:
        return "first"
    if now - _parse_iso(written) >= STATUS_REFRESH_S and observed_moved(
            previous.get("observed") or {}, autoscaling.get("observed") or {}):
        return "observed"
    return None


def observed_moved(written: dict[str, Any], seen: dict[str, Any]) -> bool:
    """Whether `seen` tells more than `written`: a figure came or went, or moved by more
    than OBSERVED_TOLERANCE of itself."""
    for key in OBSERVED_FIGURES:
        old, new = written.get(key), seen.get(key)
        if old is None or new is None:
            if old is not new:
                return True
        elif abs(new - old) > OBSERVED_TOLERANCE * max(abs(old), abs(new)):
            return True
    return False


def _parse_iso(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def autoscaling_status(
    service: dict[str, Any], outcome: TickOutcome, metrics: ServiceMetrics, now: float
) -> dict[str, Any]:
    """status.autoscaling: what was seen, what was decided, and the last decisions."""
    previous = (service.get("status") or {}).get("autoscaling") or {}
    decision = {
        "time": _iso(now),
        "from": outcome.current_replicas,
        "to": outcome.desired_replicas,
        "reason": outcome.reason,
        "applied": outcome.write,
        "details": {k: v for k, v in outcome.details.items() if isinstance(v, int | float | str)},
    }
    history = list(previous.get("decisions") or [])
    if outcome.desired_replicas != outcome.current_replicas or not history:
        history = (history + [decision])[-DECISION_HISTORY:]
    snapshot = metrics.snapshot
    observed: dict[str, Any] = {"available": metrics.available, "reason": metrics.reason}
    if snapshot is not None:
        observed["time"] = _iso(snapshot.time)
        observed.update(
            {
                k: v
                for k, v in {
                    "rps": snapshot.rps,
                    "latencyMs": snapshot.latency_ms,
                    "queueMs": snapshot.queue_ms,
                    "pending": snapshot.pending,
                }.items()
                if v is not None
            }
        )
    return {
        "desiredReplicas": outcome.desired_replicas,
        "observed": observed,
        "lastDecision": decision,
        "decisions": history,
    }
