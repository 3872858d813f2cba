"""Retries of what a child's event could not finish: later, doubling, once per key."""

from __future__ import annotations

import threading
import time

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
    # 0.01, then 0.02, then 0.04 and the cap: each wait at least its delay.
    assert all(w >= d for w, d in zip(waits, (0.01, 0.02, 0.04, 0.04), strict=True)), waits
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
