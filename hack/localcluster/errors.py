"""The one error type of the local cluster tooling: a named step, what broke, what to do."""

from __future__ import annotations


class StepFailed(RuntimeError):
    """A step of building or starting the local cluster failed."""

    def __init__(self, step: str, cause: str, remedy: str) -> None:
        self.step, self.cause, self.remedy = step, cause, remedy
        super().__init__(f"step '{step}' failed: {cause}\n  what to do: {remedy}")
