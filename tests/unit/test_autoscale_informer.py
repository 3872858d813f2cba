"""The informer's store (list, then watch events) and its thread's way back into sync."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sloscale.autoscale.informer import Gone, Informer, Store, list_all


def obj(uid: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": uid, "resourceVersion": version}, **extra}


def keep_name(item: dict[str, Any]) -> dict[str, Any]:
    return {"name": item["metadata"]["name"]}


def test_store_follows_adds_changes_deletes_and_bookmarks() -> None:
    store = Store(lambda item: {"name": item["metadata"]["name"], "x": item.get("x")})
    store.replace([obj("a", "5", x=1), obj("b", "5", x=1)], "5")
    store.apply({"type": "MODIFIED", "object": obj("a", "6", x=2)})
    store.apply({"type": "ADDED", "object": obj("c", "7", x=1)})
    store.apply({"type": "DELETED", "object": obj("b", "8")})
    store.apply({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
    assert sorted(store.items(), key=lambda i: i["name"]) == [
        {"name": "a", "x": 2}, {"name": "c", "x": 1}]
    assert store.resource_version == "9"


def test_store_raises_gone_on_an_expired_version_and_fails_on_other_errors() -> None:
    store = Store(keep_name)
    with pytest.raises(Gone):
        store.apply({"type": "ERROR", "object": {"code": 410, "message": "too old"}})
    with pytest.raises(RuntimeError, match="500"):
        store.apply({"type": "ERROR", "object": {"code": 500, "message": "boom"}})


def test_list_all_reads_every_page_and_the_version() -> None:
    pages = {None: {"items": [obj("a", "1")], "metadata": {"continue": "t1"}},
             "t1": {"items": [obj("b", "1")], "metadata": {"resourceVersion": "42"}}}
    items, version = list_all(lambda token: pages[token])
    assert [i["metadata"]["uid"] for i in items] == ["a", "b"] and version == "42"


class Server:
    """Lists and watches of one kind, as an API server answers them; the first watch
    breaks with an error, so the informer must drop out of sync and list again."""

    def __init__(self) -> None:
        self.lists = 0
        self.watches = 0
        self.release = threading.Event()
        self.informer: Informer | None = None
        self.seen_while_relisting: Any = "not listed again"

    def list_page(self, token: str | None) -> dict[str, Any]:
        self.lists += 1
        if self.lists == 2 and self.informer is not None:
            self.seen_while_relisting = self.informer.items()
        items = [obj("a", "1")] if self.lists == 1 else [obj("a", "1"), obj("b", "3")]
        return {"items": items, "metadata": {"resourceVersion": str(self.lists)}}

    def watch_lines(self, version: str) -> Iterator[str]:
        self.watches += 1
        if self.watches == 1:
            self.release.wait(5)
            raise ConnectionError("connection reset")
        yield json.dumps({"type": "ADDED", "object": obj("c", "4")})
        time.sleep(0.05)


def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_informer_is_out_of_sync_after_an_error_until_it_has_listed_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sloscale.autoscale import informer as module

    monkeypatch.setattr(module, "RETRY_S", 0.2)
    server = Server()
    informer = Informer("pods", server.list_page, server.watch_lines, keep_name)
    server.informer = informer
    assert informer.items() is None  # not started: the caller must list
    informer.start()
    try:
        wait_until(lambda: informer.items() is not None)
        assert informer.items() == [{"name": "a"}]
        server.release.set()  # the watch breaks
        wait_until(lambda: server.lists == 2)
        wait_until(lambda: informer.items() is not None and len(informer.items() or []) == 3)
        assert sorted(i["name"] for i in informer.items() or []) == ["a", "b", "c"]
        assert server.seen_while_relisting is None  # stale items were never offered
    finally:
        informer.stop()
