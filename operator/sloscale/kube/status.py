"""The InferenceService status write both sides use: optimistic concurrency, retried on 409."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from sloscale.kube.errors import StatusConflict

log = logging.getLogger(__name__)
# A status write that keeps meeting a newer object is given up to the caller's retry.
STATUS_ATTEMPTS = 5

# The current object -> the status to merge-patch, or None when nothing is to be written.
ComputeStatus = Callable[[dict[str, Any]], dict[str, Any] | None]


class StatusClient(Protocol):
    def newest(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def get_inferenceservice(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def patch_status(self, namespace: str, name: str, status: dict[str, Any],
                     resource_version: str | None) -> None: ...


def is_later(version: str, than: str) -> bool:
    """Whether resourceVersion `version` is newer than `than`, compared as the integers etcd
    makes them; False when either is not one (opaque versions tell no order)."""
    try:
        return int(version) > int(than)
    except ValueError:
        return False


def with_newer_write(body: dict[str, Any],
                     written: tuple[str, Any, dict[str, Any]]) -> dict[str, Any]:
    """`body` with the (resourceVersion, generation, status) of a later write in it, or
    `body` itself when it is as new (or a version is not the integer etcd makes)."""
    meta = body["metadata"]
    if not is_later(written[0], meta.get("resourceVersion", "0")):
        return body
    return {**body, "status": written[2],
            "metadata": {**meta, "resourceVersion": written[0], "generation": written[1]}}


def write_status(client: StatusClient, body: dict[str, Any], compute: ComputeStatus,
                 attempts: int = STATUS_ATTEMPTS) -> None:
    """Patch compute(current) on the version it was computed from; on a 409, re-read and retry.

    A write without a resourceVersion would replace lists (conditions) as this, possibly
    stale, body knew them, dropping what the other writer (the controller or the autoscaler)
    wrote since. The first attempt works from `body` (no extra read); a service deleted
    meanwhile has nobody to report to. The last conflict is raised for the caller to retry.
    """
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    current: dict[str, Any] | None = client.newest(body)
    for attempt in range(1, attempts + 1):
        assert current is not None
        status = compute(current)
        if status is None:
            return
        try:
            client.patch_status(namespace, name, status,
                                current["metadata"].get("resourceVersion"))
            return
        except StatusConflict:
            if attempt == attempts:
                raise
            log.info("status of %s/%s: conflict (409), re-reading and retrying (attempt %d)",
                     namespace, name, attempt + 1)
        current = client.get_inferenceservice(namespace, name)
        if current is None:
            return
