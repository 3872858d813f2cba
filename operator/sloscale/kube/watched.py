"""Objects as the operator's watches last saw them: reads from memory instead of a GET each.

kopf already watches the InferenceServices and the children (for the handlers); its indexes
keep the latest version of each. With a thousand services, a GET per child per event (and
before each apply) was most of the operator's API traffic and much of its CPU. A kind no
watch covers (the ServiceMonitor, whose CRD may come and go) is read by a GET as before.

What is read here may lag a write this process made a moment ago by the time its watch event
takes to arrive; callers that need the current version (optimistic concurrency) still get it
from the API server's answer or a 409.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

# (namespace, name) -> the objects the watch stored under it (one, for names are unique)
Index = Mapping[tuple[str, str], Iterable[dict[str, Any]]]
Get = Callable[[str, str, str, str], dict[str, Any] | None]


def _first(index: Index, key: tuple[str, str]) -> dict[str, Any] | None:
    # The event loop replaces entries while handler threads read: a store changing during
    # iteration is read again.
    for _ in range(3):
        try:
            store = index.get(key)
            return next(iter(store), None) if store is not None else None
        except RuntimeError:
            continue
    return None


class WatchedObjects:
    """Children by (apiVersion, kind) from watch-fed indexes, else from `get` (the API)."""

    def __init__(self, indexes: Mapping[tuple[str, str], Index], get: Get,
                 hpas_by_target: Index | None = None) -> None:
        self.indexes = dict(indexes)
        self._get = get
        self.hpas_by_target = hpas_by_target

    def covers(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self.indexes

    def child(self, api_version: str, kind: str, namespace: str,
              name: str) -> dict[str, Any] | None:
        index = self.indexes.get((api_version, kind))
        if index is None:
            return self._get(api_version, kind, namespace, name)
        return _first(index, (namespace, name))


def _reread(read: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """`read()`, again when the event loop changed a store while it was read (a last try
    lets the error out)."""
    for _ in range(3):
        try:
            return read()
        except RuntimeError:
            continue
    return read()


def objects_in(index: Index, namespace: str, name: str) -> list[dict[str, Any]]:
    """Every object stored under (namespace, name): several where the key is not the name
    (two HPAs may aim at one Deployment)."""
    return _reread(lambda: list(index.get((namespace, name)) or []))


def all_objects(index: Index) -> list[dict[str, Any]]:
    """Every object an index holds (a copy of the list, safe to keep)."""
    return _reread(lambda: [obj for store in list(index.values()) for obj in list(store)])


def object_in(index: Index, namespace: str, name: str) -> dict[str, Any] | None:
    return _first(index, (namespace, name))
