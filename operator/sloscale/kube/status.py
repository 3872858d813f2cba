"""The InferenceService status write both sides use: optimistic concurrency, retried on 409."""

from __future__ import annotations

import logging
import threading
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


class WrittenStatuses:
    """Our last status write's answer per service, kept until a watched version at least as
    new is seen: merged into a watched copy that has not seen it yet (`newest`), a status is
    computed from what we wrote, not from before it (a 409, a re-read and a second write,
    several times per service in a burst). The controller's handler threads and the
    autoscaler share one, hence the lock."""

    def __init__(self) -> None:
        # (namespace, name) -> (resourceVersion, generation, status) of the answer
        self._answers: dict[tuple[str, str], tuple[str, Any, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def remember(self, namespace: str, name: str, answer: dict[str, Any]) -> None:
        """A status write's answer; answers may come back out of order: the newest is kept."""
        meta = answer.get("metadata") or {}
        written = (meta.get("resourceVersion", ""), meta.get("generation"),
                   answer.get("status") or {})
        with self._lock:
            known = self._answers.get((namespace, name))
            if known is None or not is_later(known[0], written[0]):
                self._answers[(namespace, name)] = written

    def newest(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` (a watched version) with our last write's answer in it where the answer is
        newer; once the watch has caught up (or versions are opaque) the answer is let go."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._lock:
            written = self._answers.get(key)
        if written is None:
            return body
        found = with_newer_write(body, written)
        if found is body:
            with self._lock:
                if self._answers.get(key) is written:  # not a newer answer stored meanwhile
                    del self._answers[key]
        return found


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
