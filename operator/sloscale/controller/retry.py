"""What a child's event could not finish, done again later.

kopf retries a create or update handler that failed, never an event handler. A child's last
event may be the only one left to write its service's status (a rollout's end), and a status
write that kept meeting another writer's 409s, or an API server away, would otherwise leave
Ready as it was for good. One daemon thread runs the retries; each key waits once (a second
failure of the same service before its retry keeps the first place, unless its retry failed
meanwhile and waits longer), and a retry that fails again waits twice as long, up to `max_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)


class RetryLater:
    def __init__(self, first_s: float = 1.0, max_s: float = 30.0) -> None:
        self.first_s, self.max_s = first_s, max_s
        self._waiting: dict[Hashable, tuple[float, float, Callable[[], None]]] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

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
                thread = threading.Thread(target=self._run, name="retry-later", daemon=True)
                thread.start()
                self._thread = thread
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

    def _run(self) -> None:
        while True:
            key, delay, work = self._next()
            try:
                work()
            except Exception:  # tried again later; one failing key must not stop the others
                # The trace once; an error that stays (a refused write) is not logged in full
                # every 30 s.
                log.warning("retry of %s failed; again in %.0f s", key,
                            min(2 * delay, self.max_s), exc_info=delay == self.first_s)
                self.schedule(key, work, 2 * delay)
