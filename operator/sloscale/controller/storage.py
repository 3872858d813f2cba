"""kopf's state in our annotations, read so that a hand-edited value never stops the operator.

kopf keeps the last handled spec and each handler's progress as JSON in annotations on the
InferenceService. Anyone who may edit the object may break them; kopf would then fail on
every event of that object. A value that is not a JSON object reads as absent instead: the
object is handled as new (the reconcile is idempotent) and kopf writes the value afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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


# What kopf's diff base reads of the metadata; the rest (managedFields above all) it drops.
ESSENCE_METADATA = ("name", "namespace", "uid", "labels", "annotations")


class TolerantDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    def __init__(self, *, keep: Callable[[kopf.Body], bool] | None = None,
                 **kwargs: Any) -> None:
        """`keep`: which objects this process writes its diff base on (sharded: its own;
        kopf writes it even where every handler was filtered out)."""
        super().__init__(**kwargs)
        self.keep = keep

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        if self.keep is None or self.keep(body):
            super().store(body=body, patch=patch, essence=essence)

    def build(self, *, body: kopf.Body,
              extra_fields: Any = None) -> kopf.BodyEssence:
        """kopf's essence, from a body without what it drops anyway.

        kopf deep-copies the whole object before dropping status and most metadata, on
        every event, our own status writes' echoes included: with a thousand services that
        copy was a tenth of the operator's CPU. Extra fields may name status: left to kopf.
        """
        if extra_fields:
            return super().build(body=body, extra_fields=extra_fields)
        meta = body.get("metadata") or {}
        slim = {key: value for key, value in body.items() if key != "status"}
        slim["metadata"] = {key: meta[key] for key in ESSENCE_METADATA if key in meta}
        return super().build(body=kopf.Body(slim))

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
