"""Items of one kind kept current from a watch: the loop reads memory, not a list per tick.

Listing every pod and Deployment each tick was most of a tick's cost with a thousand
services (the JSON of every object, decoded every few seconds, on the API server's side
too). An informer lists once, then follows the watch; each change is decoded once.

`Store` is the pure part (a list result and watch events in, reduced items out);
`Informer` runs it on a thread. While it is not in sync (starting, or after any error
until a fresh list succeeds) `items()` is None and the caller lists as before, so a
broken watch never feeds the loop stale pods.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)
# The API server ends each watch after this long; it is then resumed where it stopped.
WATCH_S = 240
# A connection silent for longer than this (no event, no bookmark) is taken as dead.
READ_TIMEOUT_S = WATCH_S + 60
RETRY_S = 5.0

Item = dict[str, Any]
Reduce = Callable[[Item], Item]


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list afresh."""


class Store:
    """Reduced items by uid and the resourceVersion they are current at."""

    def __init__(self, keep: Reduce) -> None:
        self.keep = keep
        self.resource_version: str | None = None
        self._items: dict[str, Item] = {}

    def replace(self, items: list[Item], resource_version: str) -> None:
        self._items = {item["metadata"]["uid"]: self.keep(item) for item in items}
        self.resource_version = resource_version

    def apply(self, event: dict[str, Any]) -> None:
        """One watch event; a 410 ERROR raises Gone, any other ERROR a RuntimeError."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", ""))
            raise RuntimeError(f"watch error: {obj.get('code')} {obj.get('message')}")
        meta = obj.get("metadata") or {}
        if kind in ("ADDED", "MODIFIED"):
            self._items[meta["uid"]] = self.keep(obj)
        elif kind == "DELETED":
            self._items.pop(meta.get("uid"), None)
        if meta.get("resourceVersion"):  # BOOKMARKs carry only this
            self.resource_version = meta["resourceVersion"]

    def items(self) -> list[Item]:
        return list(self._items.values())


# A list call: (continue token) -> one page as parsed JSON. A watch call: (resourceVersion)
# -> the stream's lines. Both are bound to their resource and selector by the adapter.
ListPage = Callable[[str | None], dict[str, Any]]
WatchLines = Callable[[str], Iterator[str]]


def list_all(list_page: ListPage, keep: Reduce | None = None) -> tuple[list[Item], str]:
    """Every item, read in pages (each reduced by `keep` as its page arrives, so that a
    thousand pods' full JSON is never held at once), and the list's resourceVersion."""
    items, token = [], None
    while True:
        page = list_page(token)
        found = page.get("items") or []
        items += [keep(item) for item in found] if keep else found
        meta = page.get("metadata") or {}
        token = meta.get("continue")
        if not token:
            return items, meta.get("resourceVersion", "")


class Informer:
    """A Store filled by a list and kept current by a watch, on a daemon thread."""

    def __init__(self, name: str, list_page: ListPage, watch_lines: WatchLines,
                 keep: Reduce) -> None:
        self.name = name
        self._list_page, self._watch_lines = list_page, watch_lines
        self._store = Store(keep)
        self._lock = threading.Lock()
        self._synced = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer-{name}", daemon=True)

    def start(self) -> Informer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def items(self) -> list[Item] | None:
        """The current items, or None while not in sync (the caller lists instead)."""
        with self._lock:
            return self._store.items() if self._synced else None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._relist()
                while not self._stop.is_set():
                    self._follow()
            except Gone:
                log.info("informer %s: watch expired, listing afresh", self.name)
            except Exception as error:  # noqa: BLE001 - any failure: out of sync, then retry
                log.warning("informer %s: %s: %s; listing again in %.0fs", self.name,
                            type(error).__name__, error, RETRY_S)
                with self._lock:
                    self._synced = False
                self._stop.wait(RETRY_S)

    def _relist(self) -> None:
        items, version = list_all(self._list_page)
        with self._lock:
            self._store.replace(items, version)
            self._synced = True

    def _follow(self) -> None:
        """One watch from where the store is; returns when the server ends it."""
        with self._lock:
            version = self._store.resource_version or ""
        for line in self._watch_lines(version):
            if self._stop.is_set():
                return
            if line.strip():
                event = json.loads(line)
                with self._lock:
                    self._store.apply(event)
