"""Errors the Kubernetes adapter raises, importable without loading the client."""

from __future__ import annotations


class ApplyError(Exception):
    """The API server refused a child; the message is the server's own."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # HTTP status: 422 is a manifest invalid as merged


class StatusConflict(Exception):
    """The InferenceService changed since it was read (409): the status must be recomputed."""
