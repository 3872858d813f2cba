"""Retries of what a child's event could not finish: later, doubling, once per key."""

from __future__ import annotations

import threading
import time

import kopf
import pytest

from sloscale.controller.retry import RetryLater


def test_a_failing_retry_runs_again_later_until_it_succeeds() -> None:
    retries, calls, done = RetryLater(first_s=0.01, max_s=0.04), [], threading.Event()

    def work() -> None:
        calls.append(time.monotonic())
        if len(calls) < 4:
            raise RuntimeError("409")
        done.set()

    started = time.monotonic()
    retries.schedule("a", work)
    assert done.wait(5)
    waits = [later - earlier for earlier, later in zip([started, *calls], calls, strict=False)]
    # 0.01, then 0.02, then 0.04 and the cap: each wait at least its delay, and the cap holds
    # (uncapped, the fourth would wait 0.08 s).
    assert all(w >= d for w, d in zip(waits, (0.01, 0.02, 0.04, 0.04), strict=True)), waits
    assert waits[3] < 0.075, waits
    assert retries.waiting() == 0


def test_a_key_already_waiting_keeps_its_place_and_others_run() -> None:
    retries, ran, both = RetryLater(first_s=0.05), [], threading.Event()

    def work(name: str) -> None:
        ran.append(name)
        if len(ran) == 2:
            both.set()

    retries.schedule("a", lambda: work("a first"))
    retries.schedule("a", lambda: work("a second"))  # a waits already: dropped
    retries.schedule("b", lambda: work("b"), delay_s=0.0)
    assert both.wait(5)
    time.sleep(0.1)
    assert ran == ["b", "a first"]


def test_a_retry_failing_while_its_key_waits_again_keeps_the_longer_delay() -> None:
    retries = RetryLater(first_s=10.0, max_s=60.0)
    retries.schedule("a", lambda: None)  # a new failure: 10 s
    retries.schedule("a", lambda: None, delay_s=40.0)  # its earlier retry failed: 40 s
    retries.schedule("a", lambda: None, delay_s=20.0)  # shorter than what waits: dropped
    assert retries.waiting() == 1
    assert retries._waiting["a"][1] == 40.0


def test_a_retry_reconciles_the_service_as_the_watch_has_it_only_while_it_is_ours(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sloscale.controller import handlers

    reconciled: list[dict] = []
    monkeypatch.setattr(handlers, "run_reconcile", lambda memo, isvc: reconciled.append(isvc))
    live = {"metadata": {"name": "a", "namespace": "ns", "uid": "u1"}}
    index = {("ns", "a"): [live]}
    memo = kopf.Memo()  # no shards: every service is ours
    handlers.reconcile_again(memo, index, "ns", "a", "u1")
    assert reconciled == [live]
    handlers.reconcile_again(memo, index, "ns", "a", "u0")  # deleted and made again
    handlers.reconcile_again(memo, {}, "ns", "a", "u1")  # gone
    deleting = {"metadata": {**live["metadata"], "deletionTimestamp": "2026-12-03T00:00:00Z"}}
    handlers.reconcile_again(memo, {("ns", "a"): [deleting]}, "ns", "a", "u1")
    monkeypatch.setattr(handlers, "owns_service", lambda memo, namespace, name: False)
    handlers.reconcile_again(memo, index, "ns", "a", "u1")  # another shard's now
    assert reconciled == [live]
