"""Sharded mode inside kopf: the Lease rounds beside the handlers, the handlers' filter, and
the services of a shard just taken over reconciled (kopf resumes objects only at its start).

Every process watches every InferenceService (its indexes stay whole), but handlers, kopf's
own annotation writes and the autoscaler act only on the shards `memo.shards` holds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from sloscale.api import KIND
from sloscale.controller.shards import ShardLeases, owner_shard
from sloscale.kube.watched import all_objects

log = logging.getLogger(__name__)


def leases_of(memo: Any) -> ShardLeases | None:
    return getattr(memo, "shards", None)


def mine(body: kopf.Body, memo: kopf.Memo, **_: Any) -> bool:
    """A handler filter: this process acts on the object (an InferenceService or a child)."""
    shards = leases_of(memo)
    return shards is None or shards.owns(owner_shard(body, shards.shards, KIND))


def owns_service(memo: Any, namespace: str, name: str) -> bool:
    shards = leases_of(memo)
    return shards is None or shards.owns_service(namespace, name)


async def _take_over(memo: kopf.Memo, shards: ShardLeases, gained: frozenset[int],
                     inferenceservices: kopf.Index[tuple[str, str], dict[str, Any]]) -> None:
    """Converge each service of the gained shards once, as kopf's resume would have."""
    from sloscale.controller.handlers import run_reconcile  # handlers import this module

    taken = [isvc for isvc in all_objects(inferenceservices)
             if owner_shard(isvc, shards.shards, KIND) in gained]
    log.info("taking over %d services of shards %s", len(taken), sorted(gained))
    for isvc in taken:
        meta = isvc["metadata"]
        if not shards.owns_service(meta["namespace"], meta["name"]):
            continue  # lost again meanwhile
        try:
            outcome = await asyncio.to_thread(run_reconcile, memo, isvc)
            if outcome.problem is not None:
                log.warning("%s/%s after takeover: %s: %s", meta["namespace"], meta["name"],
                            outcome.problem.reason, outcome.problem.message)
        except Exception:  # one bad object must never stop the others
            log.exception("reconciling %s/%s after takeover", meta["namespace"], meta["name"])


async def _rounds(memo: kopf.Memo, shards: ShardLeases, stopped: asyncio.Event,
                  inferenceservices: kopf.Index[tuple[str, str], dict[str, Any]]) -> None:
    takeovers: set[asyncio.Task[None]] = set()
    while not stopped.is_set():
        try:
            await asyncio.wait_for(stopped.wait(), timeout=shards.retry_s)
            break
        except TimeoutError:
            pass
        try:
            gained = await asyncio.to_thread(shards.round)
        except Exception as error:  # the API server away: what we hold runs out by itself
            log.warning("shard leases not renewed: %s: %s", type(error).__name__, error)
            continue
        if gained:
            task = asyncio.create_task(_take_over(memo, shards, gained, inferenceservices))
            takeovers.add(task)
            task.add_done_callback(takeovers.discard)
    for task in takeovers:
        task.cancel()


@kopf.on.startup()
async def start_shards(memo: kopf.Memo,
                       inferenceservices: kopf.Index[tuple[str, str], dict[str, Any]],
                       **_: Any) -> None:
    """The first round before kopf's watches start: its resume then sees our shards."""
    shards = leases_of(memo)
    if shards is None:
        return
    try:
        await asyncio.to_thread(shards.round)
    except Exception as error:  # the next rounds try again
        log.warning("shard leases: first round failed: %s: %s", type(error).__name__, error)
    stopped = asyncio.Event()
    memo.shard_rounds = (stopped, asyncio.create_task(
        _rounds(memo, shards, stopped, inferenceservices)))
    log.info("sharded: %d shards, lease %.0fs in %s, holding %s", shards.shards,
             shards.duration_s, shards.namespace, sorted(shards.held()))


@kopf.on.cleanup()
async def stop_shards(memo: kopf.Memo, **_: Any) -> None:
    shards, running = leases_of(memo), getattr(memo, "shard_rounds", None)
    if shards is None or running is None:
        return
    stopped, task = running
    stopped.set()
    await task
    try:
        await asyncio.to_thread(shards.release_all)
    except Exception as error:  # they expire by themselves
        log.warning("shard leases not released: %s: %s", type(error).__name__, error)
