"""kopf's state in our annotations, read so that a hand-edited value never stops the operator.

kopf keeps the last handled spec and each handler's progress as JSON in annotations on the
InferenceService. Anyone who may edit the object may break them; kopf would then fail on
every event of that object. A value that is not a JSON object reads as absent instead: the
object is handled as new (the reconcile is idempotent) and kopf writes the value afresh.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

log = logging.getLogger(__name__)


def _ignored(what: str, body: kopf.Body, why: object) -> None:
    log.warning("%s/%s: %s annotation ignored: %s", body.metadata.namespace, body.metadata.name,
                what, why)


def _object_or_none(value: Any, what: str, body: kopf.Body) -> Any:
    if value is None or isinstance(value, dict):
        return value
    _ignored(what, body, "not a JSON object")
    return None


class TolerantDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        what = "last-handled-configuration"
        try:
            return _object_or_none(super().fetch(body=body), what, body)
        except ValueError as error:  # json.JSONDecodeError
            _ignored(what, body, error)
            return None


class TolerantProgressStorage(kopf.AnnotationsProgressStorage):
    def fetch(self, *, key: kopf.HandlerId, body: kopf.Body) -> kopf.ProgressRecord | None:
        what = f"progress ({key})"
        try:
            return _object_or_none(super().fetch(key=key, body=body), what, body)
        except ValueError as error:
            _ignored(what, body, error)
            return None
