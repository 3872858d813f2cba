"""Small builders for structural OpenAPI v3 schemas with paired CEL and Python rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: CEL for admission, the same rule in Python for the operator.

    The operator re-checks every rule because objects can reach it without admission
    (stored before the CRD changed, or a cluster whose API server skips CEL).
    """

    cel: str
    message: str
    check: Callable[[dict[str, Any]], bool]
    field_path: str | None = None

    def to_crd(self) -> dict[str, str]:
        entry = {"rule": self.cel, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry


# Kubernetes' quantity pattern (resource.Quantity) without the minus sign: no resource here
# can be negative.
QUANTITY_RE = (
    r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

# Rules are kept beside the schema but out of the YAML; the CRD writer renders them.
RULES_KEY = "x-sloscale-rules"


def string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, "maxLength": 4096, **extra}


def integer(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "format": "int32", "description": description, **extra}


def number(description: str, **extra: Any) -> Schema:
    return {"type": "number", "description": description, **extra}


def boolean(description: str, **extra: Any) -> Schema:
    return {"type": "boolean", "description": description, **extra}


def quantity(description: str, **extra: Any) -> Schema:
    return {
        "description": description,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
        "pattern": QUANTITY_RE,
        "minimum": 0,
        **extra,
    }


def array(description: str, items: Schema, max_items: int = 256, **extra: Any) -> Schema:
    return {
        "type": "array",
        "description": description,
        "items": items,
        "maxItems": max_items,
        **extra,
    }


def free_object(description: str) -> Schema:
    """An object passed through to Kubernetes as is (validated by the pod's own API)."""
    return {"type": "object", "description": description,
            "x-kubernetes-preserve-unknown-fields": True}


def obj(
    description: str,
    properties: dict[str, Schema],
    required: tuple[str, ...] = (),
    rules: tuple[Rule, ...] = (),
    **extra: Any,
) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = list(required)
    if rules:
        schema[RULES_KEY] = list(rules)
    schema.update(extra)
    return schema


def to_crd_schema(schema: Any) -> Any:
    """Return the schema as plain data for the CRD: Python rules become CEL validations."""
    if isinstance(schema, list):
        return [to_crd_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        if key == RULES_KEY:
            out["x-kubernetes-validations"] = [rule.to_crd() for rule in value]
        else:
            out[key] = to_crd_schema(value)
    return out
