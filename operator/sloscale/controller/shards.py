"""Sharded mode: several operator processes share the fleet, each the shards it holds.

A service's shard is a stable hash of namespace/name. Shard i is held through the Lease
`sloscale-shard-<i>` (coordination.k8s.io/v1); every process also renews a member Lease, so
each knows how many share the fleet and holds its fair share, ceil(shards / members). A
holder stops acting on a shard a third of a lease before its Lease could expire, so the next
holder, which takes only an expired or released Lease, never overlaps it. A dead process's
shards are taken over once its Leases expire: within one lease period and a renewal round.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)
SHARD_PREFIX = "sloscale-shard-"
MEMBER_PREFIX = "sloscale-member-"
MEMBER_LABEL = "sloscale.io/shard-member"
# Acting stops this share of a lease before its expiry (client-go's renew deadline is 2/3).
SAFETY = 1 / 3
FORGET_AFTER = 20  # lease periods after which a silent member's Lease is deleted


def shard_of(namespace: str, name: str, shards: int) -> int:
    """Stable across processes and restarts (Python's hash() is salted per process)."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def owner_shard(body: Mapping[str, Any], shards: int, owner_kind: str) -> int | None:
    """The shard of an object's owning InferenceService (the object's own for one)."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace", "")
    if body.get("kind") == owner_kind:
        return shard_of(namespace, meta.get("name", ""), shards)
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == owner_kind:
            return shard_of(namespace, owner.get("name", ""), shards)
    return None


@dataclass(frozen=True)
class LeaseView:
    """What one Lease says, times in seconds since the epoch."""

    holder: str | None
    renewed_s: float | None
    duration_s: float
    version: str | None = None  # resourceVersion, for a write that loses to a concurrent one

    def live(self, now_s: float) -> bool:
        return bool(self.holder) and self.renewed_s is not None and (
            now_s < self.renewed_s + self.duration_s)


@dataclass(frozen=True)
class Plan:
    renew: frozenset[int]
    acquire: tuple[int, ...]
    release: frozenset[int]


def fair_share(shards: int, members: int) -> int:
    return math.ceil(shards / max(1, members))


def plan(identity: str, leases: Mapping[int, LeaseView | None], members: int,
         now_s: float) -> Plan:
    """Renew what we hold; beyond our fair share release the highest shards, below it take
    free ones (never held, released, or expired) lowest first."""
    mine = sorted(i for i, lease in leases.items()
                  if lease is not None and lease.holder == identity and lease.live(now_s))
    share = fair_share(len(leases), members)
    release = frozenset(mine[share:])
    free = [i for i, lease in sorted(leases.items()) if lease is None or not lease.live(now_s)]
    acquire = tuple(free[:max(0, share - len(mine))])
    return Plan(frozenset(mine) - release, acquire, release)


def live_members(leases: Iterable[LeaseView], identity: str, now_s: float) -> int:
    """Processes sharing the fleet: live member Leases, ourselves always among them."""
    return len({lease.holder for lease in leases if lease.live(now_s)} | {identity})


def _micro_time(at_s: float) -> str:
    return datetime.fromtimestamp(at_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def lease_view(lease: Mapping[str, Any]) -> LeaseView:
    spec = lease.get("spec") or {}
    return LeaseView(spec.get("holderIdentity") or None, _seconds(spec.get("renewTime")),
                     float(spec.get("leaseDurationSeconds") or 0),
                     (lease.get("metadata") or {}).get("resourceVersion"))


@dataclass
class ShardLeases:
    """This process's shards: the Lease rounds (I/O) and the question every writer asks.

    `api` is a kubernetes CoordinationV1Api.
    """

    api: Any
    namespace: str
    identity: str
    shards: int
    duration_s: float = 15.0
    clock: Callable[[], float] = time.time
    held_until: dict[int, float] = field(default_factory=dict)  # monotonic deadline per shard

    @property
    def retry_s(self) -> float:
        return self.duration_s / 5

    def owns(self, shard: int | None) -> bool:
        return shard is not None and time.monotonic() < self.held_until.get(shard, 0.0)

    def owns_service(self, namespace: str, name: str) -> bool:
        return self.owns(shard_of(namespace, name, self.shards))

    def held(self) -> frozenset[int]:
        return frozenset(i for i in self.held_until if self.owns(i))

    def round(self) -> frozenset[int]:
        """Renew the member Lease, then renew, release and acquire shard Leases; the shards
        newly held."""
        started, now_s = time.monotonic(), self.clock()
        self._write(self._member_name(), None, self._shard_body(self.identity, now_s))
        members = live_members(self._members(now_s), self.identity, now_s)
        current = {i: self._read(self._shard_name(i)) for i in range(self.shards)}
        decided = plan(self.identity, current, members, now_s)
        for shard in decided.release:
            self.held_until.pop(shard, None)  # stop acting before anyone may take it
            self._write(self._shard_name(shard), current[shard], self._shard_body(None, now_s))
            log.info("shard %d released (%d members)", shard, members)
        gained = set()
        for shard in sorted(decided.renew | set(decided.acquire)):
            body = self._shard_body(self.identity, now_s)
            if self._write(self._shard_name(shard), current[shard], body):
                if shard not in self.held():
                    gained.add(shard)
                self.held_until[shard] = started + self.duration_s * (1 - SAFETY)
            else:
                self.held_until.pop(shard, None)
        if gained:
            log.info("shards %s acquired (%d members)", sorted(gained), members)
        return frozenset(gained)

    def release_all(self) -> None:
        """On a clean stop: hand everything over now instead of after a lease period."""
        now_s = self.clock()
        for shard in sorted(self.held()):
            self.held_until.pop(shard, None)
            lease = self._read(self._shard_name(shard))
            self._write(self._shard_name(shard), lease, self._shard_body(None, now_s))
        self._delete(self._member_name())

    # -- Lease I/O -----------------------------------------------------------------------

    def _shard_name(self, shard: int) -> str:
        return f"{SHARD_PREFIX}{shard}"

    def _member_name(self) -> str:
        return MEMBER_PREFIX + hashlib.sha256(self.identity.encode()).hexdigest()[:12]

    def _shard_body(self, holder: str | None, now_s: float) -> dict[str, Any]:
        return {"holderIdentity": holder, "leaseDurationSeconds": round(self.duration_s),
                "renewTime": _micro_time(now_s), "acquireTime": _micro_time(now_s)}

    def _read(self, name: str) -> LeaseView | None:
        from kubernetes.client.exceptions import ApiException

        try:
            found = self.api.read_namespaced_lease(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return lease_view(self.api.api_client.sanitize_for_serialization(found))

    def _members(self, now_s: float) -> list[LeaseView]:
        """Every member Lease; those of processes long gone (a pod's name changes with each
        pod) are deleted on the way."""
        listed = self.api.list_namespaced_lease(self.namespace, label_selector=MEMBER_LABEL)
        raw = self.api.api_client.sanitize_for_serialization(listed)
        views = []
        for item in raw.get("items") or []:
            view = lease_view(item)
            forgotten = view.renewed_s is not None and (
                now_s > view.renewed_s + FORGET_AFTER * view.duration_s)
            if forgotten:
                self._delete(item["metadata"]["name"])
            views.append(view)
        return views

    def _write(self, name: str, seen: LeaseView | None, spec: dict[str, Any]) -> bool:
        """Create, or replace at the version read: False when another process got there first."""
        from kubernetes.client.exceptions import ApiException

        labels = {MEMBER_LABEL: "true"} if name.startswith(MEMBER_PREFIX) else {}
        body: dict[str, Any] = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                "metadata": {"name": name, "labels": labels}, "spec": spec}
        try:
            if seen is None and name.startswith(SHARD_PREFIX):
                self.api.create_namespaced_lease(self.namespace, body)
                return True
            if seen is None:  # our member Lease: read its version, or create it
                current = self._read(name)
                if current is None:
                    self.api.create_namespaced_lease(self.namespace, body)
                    return True
                seen = current
            if seen.holder not in (None, self.identity) and seen.live(self.clock()):
                return False
            body["metadata"]["resourceVersion"] = seen.version
            self.api.replace_namespaced_lease(name, self.namespace, body)
            return True
        except ApiException as error:
            if error.status in (409, 422):
                return False
            raise

    def _delete(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.delete_namespaced_lease(name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
