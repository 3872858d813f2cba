"""Work on a service done a moment later, once per key, and again later if it fails.

Two uses. kopf retries a create or update handler that failed, never an event handler. A
child's last event may be the only one left to write its service's status (a rollout's end),
and a status write that kept meeting another writer's 409s, or an API server away, would
otherwise leave Ready as it was for good. And a Deployment's rollout comes as a run of events
a second or two apart: its service's status refresh, done once after the first of them from
the newest watched state, writes once where a refresh per event wrote up to three times.

One daemon thread keeps the schedule, `workers` daemon threads run what is due (daemons: an
operator shutting down does not wait for queued refreshes). Each key waits once
(a second schedule of the same key before its work ran keeps the first place, unless its work
failed meanwhile and waits longer), and work that fails waits twice as long, up to `max_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from queue import SimpleQueue

log = logging.getLogger(__name__)


class RetryLater:
    def __init__(self, first_s: float = 1.0, max_s: float = 30.0, workers: int = 1,
                 name: str = "retry-later") -> None:
        self.first_s, self.max_s, self.name = first_s, max_s, name
        self._waiting: dict[Hashable, tuple[float, float, Callable[[], None]]] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self.workers = workers
        self._due: SimpleQueue[tuple[Hashable, float, Callable[[], None]]] = SimpleQueue()

    def schedule(self, key: Hashable, work: Callable[[], None], delay_s: float | None = None
                 ) -> None:
        """Run `work` after `delay_s` (default `first_s`); if it raises, again after twice
        that. A key already waiting keeps its place and its work."""
        delay = self.first_s if delay_s is None else min(delay_s, self.max_s)
        with self._wake:
            waiting = self._waiting.get(key)
            if waiting is not None:
                # A retry failing while a new failure of its key waits: the longer delay wins,
                # so steady failures back off.
                if delay > waiting[1]:
                    self._waiting[key] = (time.monotonic() + delay, delay, work)
                return
            self._waiting[key] = (time.monotonic() + delay, delay, work)
            if self._thread is None:
                self._thread = self._start(self._run, self.name)
                for number in range(self.workers):
                    self._start(self._work, f"{self.name}-{number}")
            self._wake.notify()

    def waiting(self) -> int:
        with self._wake:
            return len(self._waiting)

    def _next(self) -> tuple[Hashable, float, Callable[[], None]]:
        with self._wake:
            while True:
                now = time.monotonic()
                due = min(self._waiting.items(), key=lambda item: item[1][0], default=None)
                if due is not None and due[1][0] <= now:
                    key, (_, delay, work) = due
                    del self._waiting[key]
                    return key, delay, work
                self._wake.wait(None if due is None else due[1][0] - now)

    @staticmethod
    def _start(target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        while True:
            self._due.put(self._next())

    def _work(self) -> None:
        while True:
            key, delay, work = self._due.get()
            try:
                work()
            except Exception:  # tried again later; one failing key must not stop the others
                # The trace once; an error that stays (a refused write) is not logged in full
                # every 30 s.
                log.warning("%s of %s failed; again in %.0f s", self.name, key,
                            min(2 * delay, self.max_s), exc_info=delay == self.first_s)
                self.schedule(key, work, 2 * delay)
