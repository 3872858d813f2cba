"""Multi-replica mode: which replica is active, read from kopf's peering object.

kopf pauses the handlers of every replica but the live one with the highest priority. The
autoscaler loop is not a kopf handler, so it asks the same question of the same object
before each tick: two replicas must never both write a Deployment's replicas.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)
PEERING_GROUP = "kopf.dev"
PEERING_VERSION = "v1"
DEFAULT_LIFETIME_S = 60  # kopf assumes this for peers that do not say
PRIORITY_RANGE = (1, 2**31 - 1)


def own_identity() -> str:
    """The pod's name (POD_ID, set by the chart) or a name unique to this process."""
    pod = os.environ.get("POD_ID")
    if pod:
        return pod
    return f"sloscale@{os.uname().nodename}/{os.getpid()}/{random.randrange(16**6):06x}"


def random_priority() -> int:
    """Replicas of one Deployment share their arguments; equal priorities would pause all."""
    return random.randint(*PRIORITY_RANGE)


def _lastseen(record: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(record["lastseen"]))
    except (KeyError, ValueError):
        return None


def is_active(peers: Mapping[str, Any], identity: str, now: datetime) -> bool:
    """kopf's rule: we run iff we are live and no other live peer has our priority or more."""
    live: dict[str, int] = {}
    for peer, record in peers.items():
        if not isinstance(record, Mapping):
            continue
        seen = _lastseen(record)
        lifetime_s = int(record.get("lifetime", DEFAULT_LIFETIME_S))
        if seen is not None and seen + timedelta(seconds=lifetime_s) > now:
            live[peer] = int(record.get("priority", 0))
    if identity not in live:
        return False
    mine = live.pop(identity)
    return all(priority < mine for priority in live.values())


@dataclass
class PeeringGate:
    """Reads the peering object (cluster-wide, or in the first watched namespace)."""

    api: Any  # kubernetes.client.CustomObjectsApi
    name: str
    identity: str
    namespace: str | None = None

    def active(self) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            if self.namespace is None:
                found = self.api.get_cluster_custom_object(
                    PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings", self.name
                )
            else:
                found = self.api.get_namespaced_custom_object(
                    PEERING_GROUP, PEERING_VERSION, self.namespace, "kopfpeerings", self.name
                )
        except ApiException as error:  # no peering object: nobody may write
            log.warning("peering %s unreadable (%s): autoscaler paused", self.name, error.reason)
            return False
        now = datetime.now().astimezone()
        return is_active(found.get("status") or {}, self.identity, now)
