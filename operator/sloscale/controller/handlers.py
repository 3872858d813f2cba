"""kopf handlers: thin wiring from events to `reconcile`; no decisions are made here."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import kopf

from sloscale.api import FIELD_MANAGER, GROUP, KIND, PLURAL, VERSION
from sloscale.controller.drift import drifted, status_only_refresh_ok
from sloscale.controller.indexes import owned, scales_a_deployment, watched_children
from sloscale.controller.reconcile import (
    Outcome,
    reconcile,
    refresh_status,
    rendered_children,
)
from sloscale.controller.shard_loop import mine, owns_service
from sloscale.controller.storage import TolerantDiffBaseStorage, TolerantProgressStorage
from sloscale.kube.watched import object_in

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 300.0
HANDLER_THREADS = 16


class ApiBackoffs:
    """Delays between retries of a failed API request: kopf's own, then every 30 s for ever.

    kopf's default sequence ends after about 54 s and then lets the error stop the watcher,
    so an API server away for a minute (an upgrade, an etcd restore) would stop the operator.
    kopf iterates this afresh for every request, so each starts from the short delays again.
    """

    FIRST = (1.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0)
    THEN_S = 30.0

    def __iter__(self) -> Iterator[float]:
        return itertools.chain(self.FIRST, itertools.repeat(self.THEN_S))


def backoff_s(retry: int) -> float:
    return min(MAX_BACKOFF_S, 5.0 * 2 ** min(retry, 10))


def run_reconcile(memo: kopf.Memo, body: dict[str, Any]) -> Outcome:
    """`memo` is what `sloscale run` set up before kopf started: `kube` and `settings`."""
    kube = memo.kube

    def post(kind: str, reason: str, message: str) -> None:
        kube.post_event(body, kind, reason, message, FIELD_MANAGER)

    with memo.settings.service_locks.held(body["metadata"]["uid"]):
        return reconcile(kube, memo.settings, body, post, datetime.now(UTC))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    # The indexes are live from here on; kopf starts no handler before they are filled.
    memo.kube.watched = watched_children(memo.kube, kwargs)
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = TolerantProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = TolerantDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration",
        keep=None if memo.get("shards") is None else lambda body: mine(body, memo))
    settings.posting.level = logging.WARNING  # our own Events say what changed
    # Handlers are sync and wait on the API server most of the time: more threads than
    # asyncio's default (cores + 4) keep a burst of creations from queueing behind each other.
    settings.execution.max_workers = HANDLER_THREADS
    settings.networking.error_backoffs = ApiBackoffs()


# Sharded, each process handles the services of its shards only (shard_loop.py).
@kopf.on.resume(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.create(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.update(GROUP, VERSION, PLURAL, when=mine)
def reconcile_inferenceservice(body: kopf.Body, retry: int, memo: kopf.Memo, **_: Any) -> None:
    try:
        outcome = run_reconcile(memo, dict(body))
    except Exception as error:
        # The API server away or restarting, a status write that kept conflicting: retried
        # soon, like a refused child (kopf's own default for other errors is a minute).
        raise kopf.TemporaryError(f"{type(error).__name__}: {error}",
                                  delay=backoff_s(retry)) from error
    if outcome.problem is None:
        return
    message = f"{outcome.problem.reason}: {outcome.problem.message}"
    if outcome.permanent:
        raise kopf.PermanentError(message)
    raise kopf.TemporaryError(message, delay=backoff_s(retry))


@kopf.on.event(GROUP, VERSION, PLURAL)
async def forget_rendering(type: str | None, body: kopf.Body, memo: kopf.Memo,
                           **_: Any) -> None:
    """Async: every event of every service passes here, and only a deletion does anything."""
    if type == "DELETED":
        meta = body["metadata"]
        memo.settings.render_cache.forget((meta["namespace"], meta["name"], meta["uid"]))


def _owner_name(body: kopf.Body) -> tuple[str, str] | None:
    for owner in body.get("metadata", {}).get("ownerReferences", []) or []:
        if owner.get("kind") == KIND and owner.get("apiVersion", "").startswith(f"{GROUP}/"):
            return owner["name"], owner["uid"]
    return None


# Matched by owner, not by our label: a child whose label was removed by hand is still ours.
@kopf.on.event("apps", "v1", "deployments", when=kopf.all_([owned, mine]))
@kopf.on.event("v1", "services", when=kopf.all_([owned, mine]))
@kopf.on.event("policy", "v1", "poddisruptionbudgets", when=kopf.all_([owned, mine]))
def child_changed(body: kopf.Body, type: str | None, namespace: str, memo: kopf.Memo,
                  inferenceservices: kopf.Index[tuple[str, str], dict[str, Any]],
                  **_: Any) -> None:
    """A child changed or vanished: converge its owner again if it drifted, else refresh status.

    Most events are echoes of our own writes or a Deployment's rollout progress; those cost
    no read (the owner comes from kopf's index) and at most one status patch instead of a
    full reconcile.
    """
    owner = _owner_name(body)
    if owner is None:
        return
    name, uid = owner
    try:
        isvc = object_in(inferenceservices, namespace, name)
        if isvc is None or isvc["metadata"].get("uid") != uid:
            return
        if isvc["metadata"].get("deletionTimestamp"):
            return
        child = dict(body)
        if type == "DELETED" or not status_only_refresh_ok(isvc.get("status") or {}):
            run_reconcile(memo, isvc)  # rendering for the drift check first would be done twice
            return
        rendered = rendered_children(memo.kube, memo.settings, isvc)
        if rendered is None or drifted(rendered, child):
            run_reconcile(memo, isvc)
        elif child.get("kind") == "Deployment":
            with memo.settings.service_locks.held(uid):
                refresh_status(memo.kube, isvc, datetime.now(UTC))
    except Exception:  # one bad object must never stop the operator
        log.exception("reconciling %s/%s after a child changed; retried later", namespace, name)
        retry_later(memo, inferenceservices, namespace, name, uid)


def retry_later(memo: kopf.Memo, inferenceservices: kopf.Index[tuple[str, str], Any],
                namespace: str, name: str, uid: str) -> None:
    memo.settings.retries.schedule(uid, lambda: reconcile_again(
        memo, inferenceservices, namespace, name, uid))


def reconcile_again(memo: kopf.Memo, inferenceservices: kopf.Index[tuple[str, str], Any],
                    namespace: str, name: str, uid: str) -> None:
    """An event's reconcile or status refresh that raised, run again on the service as the
    watch has it now: nothing if it went or another shard owns it now; an error raises to be
    retried once more (a problem the reconcile reports in the status is its own: kopf's
    handler retries it)."""
    isvc = object_in(inferenceservices, namespace, name)
    if isvc is None or isvc["metadata"].get("uid") != uid or \
            isvc["metadata"].get("deletionTimestamp") or \
            not owns_service(memo, namespace, name):
        return
    run_reconcile(memo, isvc)


@kopf.on.event("autoscaling", "v2", "horizontalpodautoscalers", when=scales_a_deployment)
def hpa_changed(body: kopf.Body, type: str | None, namespace: str, memo: kopf.Memo,
                inferenceservices: kopf.Index[tuple[str, str], dict[str, Any]],
                **_: Any) -> None:
    """An HPA that scaled one of our Deployments went away: with our autoscaling off, its
    replicas are spec.replicas' again. (One arriving needs nothing here: its first scaling
    is a Deployment event, and the rendering then leaves the replicas to it.)"""
    if type != "DELETED":
        return
    name = body["spec"]["scaleTargetRef"]["name"]
    if not owns_service(memo, namespace, name):
        return
    isvc = object_in(inferenceservices, namespace, name)
    if isvc is None or isvc["metadata"].get("deletionTimestamp"):
        return
    try:
        run_reconcile(memo, isvc)
    except Exception:  # one bad object must never stop the operator
        log.exception("reconciling %s/%s after HPA %s went; retried later", namespace, name,
                      body["metadata"].get("name"))
        retry_later(memo, inferenceservices, namespace, name, isvc["metadata"]["uid"])
