"""Pure: has a live child drifted from what the operator renders for it?

A child's watch events are mostly echoes of our own apply or of other controllers writing
status (a Deployment's ready count moves several times per rollout). Re-applying every child
on each of them multiplies the API calls per InferenceService; this check lets the handler
re-converge only when a field we render differs in the live object, and otherwise just
refresh the status from the event.

The comparison follows server-side apply's semantics: fields we do not render (defaults,
other managers' fields) are ignored; every field we render must be present and equal.
"""

from __future__ import annotations

from typing import Any

# Ready reasons compute_status derives from the Deployment alone; any other reason is a
# problem only a full reconcile can re-evaluate (a missing Secret, a refused apply, ...).
ROLLOUT_REASONS = frozenset(
    {"Creating", "RollingOut", "AllReplicasReady", "ScaledToZero", "ProgressDeadlineExceeded"})


def contains(live: Any, wanted: Any) -> bool:
    """Whether `live` holds everything in `wanted` (maps by key, lists item by item)."""
    if isinstance(wanted, dict):
        if not isinstance(live, dict):
            return False
        return all(_empty(value) and key not in live or contains(live.get(key), value)
                   for key, value in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(live, list) and len(live) == len(wanted)
                and all(contains(got, want) for got, want in zip(live, wanted, strict=True)))
    if live == wanted:
        return True
    # The API server returns quantities and int-or-string fields as strings ("1" for 1).
    return isinstance(wanted, int | float) and not isinstance(wanted, bool) and \
        isinstance(live, str) and live == str(wanted)


def _empty(value: Any) -> bool:
    """Values the API server drops on write: a missing key means the same."""
    return value is None or value == {} or value == []


def drifted(rendered: list[dict[str, Any]], live: dict[str, Any]) -> bool:
    """True when `live` (a child from a watch event) lacks or differs in a rendered field.

    A child we no longer render counts as drifted: the full reconcile decides about it.
    """
    for manifest in rendered:
        if (manifest.get("kind"), manifest.get("apiVersion")) == (
                live.get("kind"), live.get("apiVersion")):
            return not contains(live, manifest)
    return True


def status_only_refresh_ok(status: dict[str, Any]) -> bool:
    """Whether the current status may be refreshed from a Deployment without a reconcile."""
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return bool(ready) and ready[0].get("reason") in ROLLOUT_REASONS
